"""Fits at the scale of real probe logs: where the time goes, and how the cost grows with the number of rows.

Data: the simulated set of the scale issue, ``World.default`` with 6 domains, sizes 0.5B / 1.8B / 4B, ratios
0.1-0.9 in 9 steps and ``n`` evenly spaced checkpoints per run up to 10B tokens (an evaluation every few hundred
steps): n = 6, 25, 100, 200 give 972, 4,050, 16,200 and 32,400 rows (plus 18 base rows), both losses.

1. Gradient cost (``--part grad``): milliseconds per log-density + gradient evaluation (PyTensor's numba backend,
   the one nutpie compiles) of the D-CPT model laid out one entry per observation (the layout before the run-block
   change) and one row per run, the latter also with the tokens as data (before they entered as ``log_D``), side by
   side in one process, and of the CPT model (run-block layout).
2. Fits (``--part fit``): ``bayes_dcpt.fit(df, seed=1)`` as the CLI runs it by default (the CPT law here, since
   every size has base rows; 4 chains x 1000 draws after 1000 tuning steps; held-out calibration refits), split
   into sampling, calibration and the adequacy checks, with the sampler's diagnostics and leapfrog steps per draw,
   and the paper's point fit (L3, both targets) as the baseline the times are divided by.
3. ``law="auto"`` (``--part auto``): wall time against the point fit, weights, the candidates' diagnostics.
4. Warm-up length (``--part tune``): the full fit of a candidate as ``law="auto"`` runs it with the CLI's draws
   (4 chains x 1,000 draws, auto's model settings and run slots), once per number of tuning steps, side by side in
   one process after a throw-away fit that compiles the model: sampling seconds (ratio to the longest warm-up),
   leapfrog steps per warm-up iteration and per draw, divergences, R-hat, ESS.
5. Centring of the general loss's drop along D (``--part centring``): the D-CPT fit (``dcpt.fit``, no
   calibration refits) with that drop centred (``"split"``) and non-centred (``"split_weak_d"``), side by side
   per size and seed: divergences, R-hat, ESS, leapfrog steps per draw, sampling seconds (the fit's seconds
   include each parameterisation's compilation), truth in the 90% intervals.

6. Fast-math (``--part fastmath``): milliseconds per log-density + gradient of the model ``dcpt.fit`` samples,
   through nutpie's numba callback, compiled with PyTensor's full fast-math, the package's (reassociation alone,
   ``fitting.samplers.compile_numba``) and none, alternating in one process; ``--part fit --fastmath`` samples
   with the full flags.

7. Token grids (``--part tokengrid``): milliseconds per log-density + gradient of the D-CPT model with ``D^-beta``
   computed once per (target-domain cell, token grid) (the package) against once per checkpoint, on the example
   grid and the scale set, alternating in one process.

Rows are written to ``benchmarks/results/scale_<part>.csv`` as they finish, one file per run: a later run with the
same part and tag replaces it (give each process its own ``--tag``).
Run: ``.venv/bin/python benchmarks/bench_scale.py --part grad``; ``... --part fit --sizes 6,25,100,200``;
``... --part tune --sizes 200 --laws L3,L7 --tunes 1000,500,300``; ``... --part centring --seeds 1,2``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table

OUT = Path(__file__).parent / "results"


def scale_world(seed: int = 0):
    """The simulated world of the scale set (its true parameters judge recovery)."""
    from bayes_dcpt.plan.simulate import World

    return World.default(domains=[f"d{i}" for i in range(6)], seed=seed)


def scale_set(n_checkpoints: int, seed: int = 0) -> pd.DataFrame:
    world = scale_world(seed)
    domains = world.domains
    ck = np.unique(np.linspace(10e9 / n_checkpoints, 10e9, n_checkpoints).round())
    rows = [{"domain": d, "n_params": n, "r_domain": float(r), "tokens": float(t)}
            for d in domains for n in (0.5e9, 1.8e9, 4e9) for r in np.linspace(0.1, 0.9, 9) for t in ck]
    return world.simulate(pd.DataFrame(rows), seed=seed)


def _ms_per_grad(model, n_evals: int = 100, tokens_as_data: bool = False) -> float:
    """Milliseconds per log-density + gradient (numba). ``tokens_as_data``: the model as it was before tokens entered
    as ``log_D`` (D itself as data, so every evaluation takes its logarithm)."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import graph_replace

    lp = model.logp()
    grad = pt.concatenate([pt.flatten(g) for g in pytensor.grad(lp, model.value_vars)])
    if tokens_as_data:
        log_d = model["log_D"]
        d = pytensor.shared(np.exp(log_d.get_value()), name="D", shape=log_d.type.shape)
        lp, grad = graph_replace([lp, grad], {log_d: pt.log(d)})
        fn = pytensor.function(model.value_vars, [lp, grad], mode="NUMBA")
    else:
        fn = model.compile_fn([lp, grad], inputs=model.value_vars, point_fn=False, mode="NUMBA")
    ip = model.initial_point()
    args = [ip[v.name] for v in model.value_vars]
    fn(*args)
    t0 = time.perf_counter()
    for _ in range(n_evals):
        fn(*args)
    return (time.perf_counter() - t0) / n_evals * 1e3


def part_grad(sizes: list[int]) -> pd.DataFrame:
    from bayes_dcpt.data import schema
    from bayes_dcpt.fitting.config import FitConfig
    from bayes_dcpt.fitting.cpt_model import build_cpt_model, make_cpt_design
    from bayes_dcpt.fitting.dcpt_model import build_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.laws.registry import get_law

    out = []
    for n in sizes:
        df = schema.load(scale_set(n))
        law = get_law("dcpt")
        cfg = FitConfig(law="dcpt", target="both")
        design = make_design(df, law, cfg)
        flat = _ms_per_grad(build_model(law, cfg, dataclasses.replace(design, blocks=False)))
        block_model = build_model(law, cfg, design)
        block_d = _ms_per_grad(block_model, tokens_as_data=True)
        block = _ms_per_grad(block_model)
        ccfg = FitConfig(law="cpt", target="both", zero_ratio=True)
        cpt = _ms_per_grad(build_cpt_model(ccfg, make_cpt_design(df, ccfg)))
        row = {"rows": int((df["tokens"] > 0).sum()), "log losses": len(design.obs), "dcpt flat ms": flat,
               "dcpt run-block, D as data ms": block_d, "dcpt run-block ms": block, "speed-up": flat / block,
               "log D speed-up": block_d / block, "cpt run-block ms": cpt}
        print(row, flush=True)
        out.append(row)
        pd.DataFrame(out).to_csv(OUT / "scale_grad.csv", index=False)
    return pd.DataFrame(out)


def _callback(compiled, arrays: dict):
    """``compiled`` (a nutpie numba model) with ``arrays`` as its data, and its log-density + gradient callback.

    Both are returned: the callback reads the data of the model it came from, which must stay alive.
    """
    from bayes_dcpt.fitting.samplers import _log_density

    c = compiled
    keys = {v.name for v in c.shared_var_keys} if hasattr(c, "shared_var_keys") else set(c._shared_data)
    live = c.with_data(**{k: v for k, v in arrays.items() if k in keys})
    return live, _log_density(live)


def _start(model) -> np.ndarray:
    """The model's support point as the flat vector the callbacks take."""
    ip = model.initial_point()
    return np.concatenate([np.ravel(ip[v.name]).astype(float) for v in model.value_vars])


def _alternating_ms(fns: dict, x: np.ndarray, repeats: int, n_evals: int) -> dict[str, float]:
    """Median ms per call of each callback at ``x``: ``repeats`` rounds of ``n_evals`` calls, alternating."""
    ms = {name: [] for name in fns}
    for _ in range(repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(n_evals):
                f(x)
            ms[name].append((time.perf_counter() - t0) / n_evals * 1e3)
    return {name: float(np.median(v)) for name, v in ms.items()}


def part_fastmath(sizes: list[int], repeats: int = 5, n_evals: int = 50) -> pd.DataFrame:
    """ms per log-density + gradient of the fitted D-CPT model through nutpie's numba callback, three ways.

    PyTensor's full fast-math, the package's (``samplers.compile_numba``: reassociation alone) and none. The model
    is the one ``dcpt.fit`` samples (the ``auto`` parameterisation for the size), each setting compiled once
    untimed, then ``repeats`` alternating rounds of ``n_evals`` evaluations at the support point; also the largest
    relative difference of the gradient from the build without fast-math.
    """
    from bayes_dcpt.data import schema
    from bayes_dcpt.fitting.config import FitConfig, resolve_parametrization
    from bayes_dcpt.fitting.dcpt_model import get_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.fitting.samplers import compile_numba
    from bayes_dcpt.laws.registry import get_law

    builds = {"full": pytensor_fastmath(True), "package": compile_numba, "off": pytensor_fastmath(False)}
    out = []
    for n in sizes:
        df = schema.load(scale_set(n))
        law = get_law("dcpt")
        cfg = FitConfig(law="L3", target="both", parametrization=resolve_parametrization("auto", df))
        entry = get_model(law, cfg, make_design(df, law, cfg))
        fns, keep = {}, {}  # the compiled models stay alive: the callbacks read their data
        for name, build in builds.items():
            keep[name], fns[name] = _callback(build(entry["model"]), entry["arrays"])
        x = _start(entry["model"])
        ref = fns["off"](x)[1]
        med = _alternating_ms(fns, x, repeats, n_evals)
        row = {"rows": int((df["tokens"] > 0).sum()), **{f"ms {k}": v for k, v in med.items()},
               "off / package": med["off"] / med["package"], "package / full": med["package"] / med["full"],
               **{f"gradient rel. diff {k}": float(np.max(np.abs(fns[k](x)[1] - ref)) / np.max(np.abs(ref)))
                  for k in ("full", "package")}}
        print(row, flush=True)
        out.append(row)
        pd.DataFrame(out).to_csv(OUT / "scale_fastmath.csv", index=False)
    return pd.DataFrame(out)


def part_tokengrid(sizes: list[int], repeats: int = 5, n_evals: int = 50) -> pd.DataFrame:
    """ms per log-density + gradient of the fitted D-CPT model with ``D^-beta`` once per (cell, token grid) (the
    package, ``design.token_grids``) and once per checkpoint (as before: ``laws.dcpt.d_power`` made to ignore the
    precomputed powers), both compiled by ``samplers.compile_numba``, alternating in one process; the example grid
    first (its ``dcpt`` fit's model), then the scale set at each size; also the largest relative difference of
    the log density and the gradient between the two.
    """
    from bayes_dcpt import datasets
    from bayes_dcpt.data import schema
    from bayes_dcpt.fitting.config import FitConfig, resolve_parametrization
    from bayes_dcpt.fitting.dcpt_model import build_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.fitting.samplers import compile_numba
    from bayes_dcpt.laws import dcpt as dcpt_laws
    from bayes_dcpt.laws.base import power
    from bayes_dcpt.laws.registry import get_law

    shared = dcpt_laws.d_power

    def per_checkpoint(xp, p, x):
        return power(xp, x["D"], -p["beta"])

    out = []
    for n in ["example", *sizes]:
        df = schema.load(datasets.load_example() if n == "example" else scale_set(n))
        law = get_law("dcpt")
        cfg = FitConfig(law="L3", target="both", parametrization=resolve_parametrization("auto", df))
        design = make_design(df, law, cfg)
        arrays = design.arrays()
        fns, keep = {}, {}
        for name, dp in (("per checkpoint", per_checkpoint), ("per grid", shared)):
            dcpt_laws.d_power = dp
            try:
                model = build_model(law, cfg, design)
                c = compile_numba(model)
            finally:
                dcpt_laws.d_power = shared
            keep[name], fns[name] = _callback(c, arrays)
        x = _start(model)
        med = _alternating_ms(fns, x, repeats, n_evals)
        (l0, g0), (l1, g1) = fns["per checkpoint"](x), fns["per grid"](x)
        row = {"rows": int((df["tokens"] > 0).sum()), "data": "example" if n == "example" else f"scale, {n} per run",
               "runs x targets": len(arrays["run_pair"]), "pairs": len(arrays["pair_cell"]),
               **{f"ms {k}": v for k, v in med.items()},
               "speed-up": med["per checkpoint"] / med["per grid"],
               "log density rel. diff": abs(l1 - l0) / abs(l0),
               "gradient rel. diff": float(np.max(np.abs(g1 - g0)) / np.max(np.abs(g0)))}
        print(row, flush=True)
        out.append(row)
        pd.DataFrame(out).to_csv(OUT / "scale_tokengrid.csv", index=False)
    return pd.DataFrame(out)


def recovery(fit, world) -> float:
    """Share of the world's true (target, domain, parameter) values inside the fit's 90% equal-tailed intervals."""
    post = fit.idata["posterior"]
    inside = []
    for (target, dom), params in world.params.items():
        for name, true in params.items():
            if name not in post:
                continue
            a = post[name].sel(target=target)
            if "domain" in a.dims:
                a = a.sel(domain=dom)
            lo, hi = np.quantile(np.asarray(a).ravel(), [0.05, 0.95])
            inside.append(lo <= true <= hi)
    return float(np.mean(inside))


def part_fit(sizes: list[int], backends: list[str], law_name: str = "default",
             parametrizations: tuple[str, ...] = ("auto",), tag: str = "", seeds: tuple[int, ...] = (1,),
             draws: int | None = None) -> pd.DataFrame:
    import bayes_dcpt as bd
    from bayes_dcpt.fitting import dcpt
    from bayes_dcpt.fitting.api import _refit_settings, default_law
    from bayes_dcpt.fitting.extrapolation import calibrate

    out = []
    world = scale_world()
    for n, backend, par, seed in ((n, b, p, s) for n in sizes for b in backends for p in parametrizations
                                  for s in seeds):
        df = scale_set(n)
        t0 = time.perf_counter()
        bd.fit_point(df, law="dcpt", target="both")
        point_s = time.perf_counter() - t0
        law = default_law(df) if law_name == "default" else law_name
        kw = {} if backend == "auto" else {"sampler_kwargs": {"backend": backend}}
        t0 = time.perf_counter()
        f = dcpt.fit(df, law, "both", seed=seed, warn=False, parametrization=par, draws=draws, **kw)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        calibrate(f, seed=seed, refit={**_refit_settings(True, {}), **kw})
        cal_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = f.diagnostics()
        adeq_s = time.perf_counter() - t0
        steps = np.asarray(f.idata["sample_stats"]["n_steps"])
        total = fit_s + cal_s + adeq_s
        row = {"rows": int((df["tokens"] > 0).sum()), "seed": seed, "fastmath": FASTMATH[0], "law": law,
               "backend": backend,
               "parametrization": f.config.parametrization, "point fit s": point_s,
               "fit s": fit_s,
               "of which sampling s": d.seconds, "calibration s": cal_s, "adequacy s": adeq_s, "total s": total,
               "x point fit": total / point_s, "steps/draw": float(steps.mean()), "divergences": d.divergences,
               "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min, "ESS tail min": d.ess_tail_min,
               "draws": d.draws, "problems": len(d.problems),
               "misfit checks": len(d.misfit), "truth in 90%": recovery(f, world) if law == "dcpt" else np.nan}
        print(row, flush=True)
        out.append(row)
        suffix = ("" if law_name == "default" else f"_{law_name}") + (f"_{tag}" if tag else "")
        pd.DataFrame(out).to_csv(OUT / f"scale_fit{suffix}.csv", index=False)
    return pd.DataFrame(out)


def part_auto(sizes: list[int], tag: str = "", cli_draws: bool = False) -> pd.DataFrame:
    """``bd.fit(df, law="auto")`` on the scale set: wall time against the point fit, the weights, and the worst
    sampler diagnostics over the candidates. ``cli_draws``: the candidates' full fits with the CLI's draws (4 chains
    after 1,000 tuning steps, each law's default draws: 1,000, 1,500 for dense data; what ``bayes-dcpt fit --law
    auto`` passes) instead of the Python API's ``AUTO_DEFAULTS``."""
    import bayes_dcpt as bd

    out = []
    for n in sizes:
        df = scale_set(n)
        t0 = time.perf_counter()
        bd.fit_point(df, law="dcpt", target="both")
        point_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = bd.fit(df, law="auto", target="both", seed=1,
                       **({"draws": None, "tune": 1000, "chains": 4} if cli_draws else {}))
        total = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ad = a.diagnostics()
        adeq_s = time.perf_counter() - t0
        diags = list(ad.candidates.values())
        row = {"rows": int((df["tokens"] > 0).sum()), "point fit s": point_s, "auto total s": total,
               "x point fit": total / point_s,
               "weights": " ".join(f"{k}={v:.2f}" for k, v in a.weights.items()),
               "divergences": sum(d.divergences for d in diags),
               "R-hat max": max(d.rhat_max for d in diags), "ESS bulk min": min(d.ess_bulk_min for d in diags),
               "sampling s": sum(d.seconds for d in diags), "diagnostics s": adeq_s,
               "per law": " ".join(f"{k}:div={d.divergences},rhat={d.rhat_max:.3f},ess={d.ess_bulk_min:.0f}"
                                   for k, d in ad.candidates.items()),
               "misfit checks": len(ad.misfit), "fitted laws": " ".join(a.fits),
               "refits s": float(a.holdout.drop_duplicates(["law", "split"])["seconds"].sum()),
               "refit s per law": " ".join(f"{k}={v:.0f}" for k, v in a.holdout.drop_duplicates(["law", "split"])
                                           .groupby("law", sort=False)["seconds"].sum().items()),
               "full fit s per law": " ".join(f"{k}={d.seconds:.0f}" for k, d in ad.candidates.items()),
               "full fit draws": " ".join(f"{k}={d.chains}x{d.draws}" for k, d in ad.candidates.items()),
               "screened": " ".join(f"{k}@{v}" for k, v in a.comparison["screened"].dropna().items()) or "none"}
        print(row, flush=True)
        out.append(row)
        pd.DataFrame(out).to_csv(OUT / f"scale_auto{'_' + tag if tag else ''}.csv", index=False)
    return pd.DataFrame(out)


def part_tune(sizes: list[int], laws: list[str], tunes: list[int], tag: str = "") -> pd.DataFrame:
    """Candidates' full fits at several warm-up lengths, side by side (see the module docstring, part 4)."""
    from bayes_dcpt.data import schema as data
    from bayes_dcpt.fitting import dcpt
    from bayes_dcpt.fitting.auto import _model_settings
    from bayes_dcpt.fitting.design import run_capacity

    out = []
    for n in sizes:
        df = scale_set(n)
        model = _model_settings(df, {})
        slots = run_capacity(int(data.fit_rows(df)["run_id"].nunique()))
        for law in laws:
            dcpt.fit(df, law, "both", seed=1, draws=5, tune=5, chains=1, run_slots=slots, warn=False, **model)
            base = None
            for tune in sorted(tunes, reverse=True):
                t0 = time.perf_counter()
                f = dcpt.fit(df, law, "both", seed=1, draws=1000, tune=tune, chains=4, run_slots=slots, warn=False,
                             **model)
                wall = time.perf_counter() - t0
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    d = f.diagnostics()
                warm = f.idata["warmup_sample_stats"] if "warmup_sample_stats" in f.idata else None
                base = base or d.seconds
                row = {"rows": int((df["tokens"] > 0).sum()), "law": law, "tune": tune, "draws": "4 x 1000",
                       "sampling s": d.seconds, "fit s": wall, "x longest warm-up": d.seconds / base,
                       "steps/warm-up iter": float(np.asarray(warm["n_steps"]).mean()) if warm is not None
                       and "n_steps" in warm else np.nan,
                       "steps/draw": float(np.asarray(f.idata["sample_stats"]["n_steps"]).mean()),
                       "divergences": d.divergences, "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min,
                       "ESS tail min": d.ess_tail_min}
                print(row, flush=True)
                out.append(row)
                pd.DataFrame(out).to_csv(OUT / f"scale_tune{'_' + tag if tag else ''}.csv", index=False)
    return pd.DataFrame(out)


def part_centring(sizes: list[int], seeds: list[int]) -> pd.DataFrame:
    """The split hierarchy with the general loss's D-drop centred (``"split"``) and not (``"split_weak_d"``)."""
    from bayes_dcpt.fitting import dcpt

    out, world = [], scale_world()
    for n, seed, par in ((n, s, p) for n in sizes for s in seeds for p in ("split", "split_weak_d")):
        df = scale_set(n)
        t0 = time.perf_counter()
        f = dcpt.fit(df, "dcpt", "both", seed=seed, warn=False, parametrization=par)
        fit_s = time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = f.diagnostics()
        row = {"rows": int((df["tokens"] > 0).sum()), "seed": seed, "parametrization": par, "fit s": fit_s,
               "sampling s": d.seconds, "steps/draw": float(np.asarray(f.idata["sample_stats"]["n_steps"]).mean()),
               "divergences": d.divergences, "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min,
               "truth in 90%": recovery(f, world)}
        print(row, flush=True)
        out.append(row)
        pd.DataFrame(out).to_csv(OUT / "scale_centring.csv", index=False)
    return pd.DataFrame(out)


def use_fastmath() -> None:
    """Make the package compile its numba models with PyTensor's full fast-math (as before the ninth session).

    For measuring what the flags do to the sampler at this scale (divergences, steps per draw), side by side with
    the package's setting; rows carry ``fastmath``.
    """
    from bayes_dcpt.fitting import samplers

    samplers.compile_numba = pytensor_fastmath(True)
    FASTMATH[0] = "full"


def pytensor_fastmath(on: bool):
    """A compile function for nutpie's numba backend with PyTensor's own fast-math switch (its five flags or none),
    not the package's narrowed setting."""
    import nutpie
    import pytensor

    def build(model):
        with pytensor.config.change_flags(numba__fastmath=on):
            return nutpie.compile_pymc_model(model)

    return build


#: The fast-math of the numba models sampled, as rows record it: the package's (reassociation alone) unless
#: ``--fastmath`` (PyTensor's full flags). Rows of the thirteenth round and the fourteenth's first runs say
#: ``False`` (none: the package's setting then) and ``True`` (full).
FASTMATH = ["reassoc"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["grad", "fit", "auto", "tune", "centring", "fastmath", "tokengrid"],
                    default="grad")
    ap.add_argument("--sizes", default="6,25,100,200", help="checkpoints per run")
    ap.add_argument("--backends", default="auto", help="nutpie backends to compare: auto, numba, jax")
    ap.add_argument("--law", default="default", help="the law fitted: default (the CLI's choice), dcpt, ...")
    ap.add_argument("--parametrizations", default="auto", help="hierarchy parameterisations to compare")
    ap.add_argument("--cli-draws", action="store_true", help="auto: the candidates' full fits with the CLI's draws")
    ap.add_argument("--laws", default="L3,L7", help="tune: the candidate laws fitted")
    ap.add_argument("--tunes", default="1000,500,300", help="tune: the warm-up lengths compared")
    ap.add_argument("--seeds", default="1,2", help="centring: the sampler seeds")
    ap.add_argument("--fit-seeds", default="1", help="fit: the sampler seeds")
    ap.add_argument("--draws", type=int, default=None, help="fit: draws per chain (default: the package's)")
    ap.add_argument("--tag", default="", help="suffix of the results file (scale_fit_<law>_<tag>.csv)")
    ap.add_argument("--fastmath", action="store_true",
                    help="compile numba models with PyTensor's full fast-math (the package: reassociation alone)")
    a = ap.parse_args()
    if a.fastmath:
        use_fastmath()
    sizes = [int(s) for s in a.sizes.split(",")]
    OUT.mkdir(exist_ok=True)
    print(machine())
    if a.part == "grad":
        res = part_grad(sizes)
    elif a.part == "fastmath":
        res = part_fastmath(sizes)
    elif a.part == "tokengrid":
        res = part_tokengrid(sizes)
    elif a.part == "tune":
        res = part_tune(sizes, a.laws.split(","), [int(t) for t in a.tunes.split(",")], a.tag)
    elif a.part == "centring":
        res = part_centring(sizes, [int(s) for s in a.seeds.split(",")])
    elif a.part == "auto":
        res = part_auto(sizes, a.tag, a.cli_draws)
    else:
        res = part_fit(sizes, a.backends.split(","), a.law, tuple(a.parametrizations.split(",")), a.tag,
                       tuple(int(s) for s in a.fit_seeds.split(",")), a.draws)
    print(md_table(res))


if __name__ == "__main__":
    main()
