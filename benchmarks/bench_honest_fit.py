"""Honest fit: law="dcpt", "cpt" and "auto" against the point fits of L3 and L1 on extrapolation splits.

For every split, in one run and on the same train/test rows (``_evaluate._score``: MAPE of the point
prediction, share of held-out measurements inside the 90% interval, interval width):

* ``point L3``, ``point L1``: the paper's point fit (:func:`bayes_dcpt.fitting.pointfit.fit_point`), interval =
  law + residual noise (``to_posterior``; no parameter uncertainty);
* ``dcpt``: ``bd.fit(law="dcpt")`` with its default extrapolation calibration (``discrepancy=`` the refit settings);
* ``cpt``: ``bd.fit(law="cpt")`` (the base-anchored law) where the data have base rows (tokens == 0);
* ``auto``: ``bd.fit(law="auto")``, candidates ("cpt", "L3", "L1") with base rows, else ("L3", "L1", "L7");
* ``<method> (no streams)``: the same fit, predicted without the deviations its data streams showed at the other
  sizes (``bayes_dcpt.posterior.streams``; only where the held-out rows are on probed streams at a new size).

Bayesian intervals are posterior predictive (a new run's measurement). "meets target" = MAPE no worse than the
better point fit on that split and target, and 90% coverage in [0.80, 0.95].

Splits (the held-out rows are never looked at before scoring; the settings were fixed before the run):

* ``example`` (packaged example grid, one domain per fit, ``--domains python`` by default): hold out the largest
  size (443k; train = the two smaller sizes' runs + the base rows of all three sizes: a CPT at a new size starts
  from a base model whose loss is known, and the decision below needs it); last third of tokens (262k, 524k);
  ratios 0.25 and 0.75 (fit 0, 0.5, 1).
* ``long`` (packaged long-CPT grid, 2 domains x 3 sizes x 7 ratios, 17 checkpoints to 2^21): tokens (fit
  checkpoints <= 2^19 tokens, predict 2^19 < D <= 2^21; the late checkpoints have data-order jumps) and size (fit the
  two smaller sizes + the base rows of all three sizes, predict the largest).
* ``mixinglaws`` (Pythia-70M CPT sweep): hold out r = 0.7148.
* ``datablations`` (C4 + Python, pre-training, no base rows): fit D <= 42B, predict 42-84B.
* ``slimpajama`` (github / c4, last checkpoint per run): fit N <= 680M, predict 937M-2.7B (all mixtures).

Decision at scale (``example``, ``long``; ``mixinglaws``: the critical ratio, T = 0, at 10k steps from the fits
without r = 0.7148, observed crossing 0.7203): the size split's fits (two smaller sizes + all base rows) answer the
trade-off r* (max_general_increase 0.02 and 0.03, relative) at the largest size and the largest token count, per
domain; the 90% interval of r* is compared with the crossing measured at that size (the measured general-loss
increase over the base model interpolated linearly in r, ``bayes_dcpt.decide.measured``; ``data=`` the full grid),
and the measured crossing with the interval the fit predicts for those measurements (new runs at the measured
ratios with their noise and the discrepancy, read off the same way; ``pit`` = its predictive quantile).

Cost: wall time of each method as a multiple of the point fit of L3 on the same split (same process; the
Bayesian rows include compilation the first time a model structure is seen, and their held-out refits).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_honest_fit.py --datasets example,long [--quick]``; raw rows in
``benchmarks/results/honest_fit_<dataset>.csv`` (decisions: ``honest_fit_<dataset>_decisions.csv``).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table  # noqa: E402
from _evaluate import CI, _many, _score  # noqa: E402

import bayes_dcpt as bd  # noqa: E402
from bayes_dcpt import data as _data  # noqa: E402
from bayes_dcpt import datasets  # noqa: E402
from bayes_dcpt.fitting.auto import _has_base_rows  # noqa: E402
from bayes_dcpt.fitting.pointfit import fit_point  # noqa: E402

OUT = Path(__file__).parent / "results"
THRESHOLDS = (0.02, 0.03)
PAPER_R_MIXINGLAWS = 0.71484375


# ------------------------------------------------------------------------------------------------ splits
class Split:
    def __init__(self, name: str, train: pd.DataFrame, test: pd.DataFrame, targets: tuple[str, ...],
                 decision: dict[str, Any] | None = None, full: pd.DataFrame | None = None):
        self.name, self.train, self.test, self.targets = name, train, test, targets
        self.decision, self.full = decision, full


def _targets(df: pd.DataFrame) -> tuple[str, ...]:
    return tuple(t for t in ("general", "domain") if df[f"loss_{t}"].notna().any())


def example_splits(domains: list[str]) -> list[Split]:
    out = []
    full_all = datasets.load_example()
    for dom in domains:
        df = full_all[full_all["domain"] == dom].reset_index(drop=True)
        base = df["tokens"] == 0
        nmax = float(df["n_params"].max())
        big = np.isclose(df["n_params"], nmax)
        late = df["tokens"] >= 262144
        two = df["r_domain"].isin([0.25, 0.75])
        t = _targets(df)
        out += [
            Split(f"{dom}: hold out the largest size (443k)", df[~big | base], df[big & ~base], t,
                  decision={"n_params": nmax, "tokens": float(df["tokens"].max())}, full=df),
            Split(f"{dom}: last third of tokens (262k, 524k)", df[~late], df[late], t),
            Split(f"{dom}: hold out ratios 0.25 and 0.75", df[~two], df[two], t),
        ]
    return out


def long_splits() -> list[Split]:
    df = datasets.load_long_cpt()
    base = df["tokens"] == 0
    nmax = float(df["n_params"].max())
    big = np.isclose(df["n_params"], nmax)
    late = df["tokens"] > 2**19
    t = _targets(df)
    return [
        Split("tokens: fit D <= 2^19, predict 2^19 < D <= 2^21", df[~late], df[late], t),
        Split("size: fit the two smaller sizes (+ all base rows), predict 443k", df[~big | base], df[big & ~base], t,
              decision={"n_params": nmax, "tokens": float(df["tokens"].max())}, full=df),
    ]


def mixinglaws_splits() -> list[Split]:
    df = datasets.load_mixinglaws_cpt()
    held = np.isclose(df["r_domain"].fillna(-1), PAPER_R_MIXINGLAWS)
    # the Data Mixing Laws question: the critical ratio (T = 0) at the last step, from the 4 other ratios
    dec = {"n_params": float(df["n_params"].max()), "tokens": float(df["tokens"].max()), "thresholds": (0.0,)}
    return [Split("hold out r = 0.7148", df[~held], df[held], _targets(df), decision=dec, full=df)]


def datablations_splits() -> list[Split]:
    df = datasets.load_datablations_mix()
    late = df["tokens"] > 42e9
    return [Split("fit D <= 42B, predict 42-84B", df[~late], df[late], _targets(df))]


def slimpajama_splits() -> list[Split]:
    df = datasets.load_slimpajama("github", "c4")
    last = df.loc[df.groupby("run_id")["tokens"].idxmax()].reset_index(drop=True)
    small = last["n_params"] <= 7e8
    return [Split("fit N <= 680M, predict 937M-2.7B (all mixtures)", last[small], last[~small], _targets(last))]


# ------------------------------------------------------------------------------------------------ methods
def _grid(test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    test = _data.fit_rows(_data.load(test)).reset_index(drop=True)
    cols = ["domain", "n_params", "tokens", "r_domain", "run_id"] + (["seed"] if "seed" in test else [])
    return test, test[cols]  # the seed says which held-out runs share a probed data stream (posterior.streams)


def _diag(f: Any) -> dict[str, Any]:
    d = f.diagnostics(warn=False)
    return {"divergences": getattr(d, "divergences", np.nan), "R-hat max": getattr(d, "rhat_max", np.nan),
            "ESS bulk min": getattr(d, "ess_bulk_min", np.nan), "sampler ok": getattr(d, "sampler_ok", None),
            "misfit": bool(getattr(d, "misfit", ())), "sampling s": getattr(d, "seconds", np.nan)}


def run_split(sp: Split, a: argparse.Namespace, log=print) -> tuple[list[dict], dict[str, Any]]:
    target = "both" if len(sp.targets) == 2 else sp.targets[0]
    test, grid = _grid(sp.test)
    train = _data.load(sp.train)
    has_base = _has_base_rows(train, target)
    rows: list[dict] = []
    fits: dict[str, Any] = {}
    mcmc = {"draws": a.draws, "tune": a.tune, "chains": a.chains, "cores": a.cores, "seed": 1, "warn": False}
    refit = ({"sampler": "laplace"} if a.refit == "laplace" else
             {"sampler": "nutpie", "draws": a.refit_draws, "tune": a.refit_draws, "chains": 2})
    info = {"n_train": int((train["tokens"] > 0).sum()), "n_base_rows": int((train["tokens"] == 0).sum())}
    for law in ("L3", "L1"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pf = fit_point(train, law, target)
        secs = time.perf_counter() - t0
        pp = _many(pf.to_posterior(train)).predict(grid, CI, kind="predictive")
        pm = pf.predict(grid)
        for t in sp.targets:
            pp[f"loss_{t}_mean"] = pm[f"loss_{t}_pred"].to_numpy()
            rows.append(_score(f"point {law}", "law + residual noise", sp.name, t, test, pp, secs, info))
        log(f"  {sp.name}: point {law} {secs:.1f} s")
    bayes: dict[str, dict[str, Any]] = {"dcpt": {"law": "dcpt", "discrepancy": refit}}
    if has_base:
        bayes["cpt"] = {"law": "cpt", "discrepancy": refit}
    if not a.no_auto:
        cands = ("cpt", "L3", "L1") if has_base else ("L3", "L1", "L7")
        bayes["auto"] = {"law": "auto", "candidates": cands, "refit": refit}
    for label, kw in bayes.items():
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = bd.fit(train, target=target, **{**mcmc, **kw})
        except Exception as exc:  # a library failure is a result: recorded, not hidden
            secs = time.perf_counter() - t0
            log(f"  {sp.name}: {label} FAILED after {secs:.1f} s: {exc!r}")
            traceback.print_exc()
            for t in sp.targets:
                rows.append({"split": sp.name, "target": t, "method": label, "interval": "failed",
                             "seconds": secs, "error": repr(exc), **info})
            continue
        secs = time.perf_counter() - t0
        fits[label] = f
        extra = {**info, **_diag(f)}
        if label == "auto":
            extra["weights"] = " ".join(f"{k}={v:.2f}" for k, v in f.weights.items())
        pred = f.predict(grid, CI, kind="predictive", seed=1)
        for t in sp.targets:
            rows.append(_score(label, "posterior predictive", sp.name, t, test, pred, secs, extra))
        if f.posterior.ctx.get("streams"):  # the same fit scored without the streams' deviations, side by side
            streams = f.posterior.ctx.pop("streams")
            plain = f.predict(grid, CI, kind="predictive", seed=1)
            f.posterior.ctx["streams"] = streams
            for t in sp.targets:
                rows.append(_score(f"{label} (no streams)", "posterior predictive", sp.name, t, test, plain, secs,
                                   extra))
        log(f"  {sp.name}: {label} {secs:.1f} s; {f.diagnostics(warn=False)}"
            + (f"; weights {extra['weights']}" if label == "auto" else ""))
    return rows, fits


def target_check(table: pd.DataFrame) -> pd.DataFrame:
    """Per split and target: best point-fit MAPE, and whether each Bayesian row meets the target."""
    table = table.copy()
    best = (table[table["method"].str.startswith("point")].groupby(["split", "target"])["MAPE %"].min()
            .rename("best point MAPE %"))
    table = table.join(best, on=["split", "target"])
    pt = table[table["method"] == "point L3"].groupby("split")["seconds"].first()
    table["x point L3 time"] = table["seconds"] / table["split"].map(pt)
    bay = ~table["method"].str.startswith("point")
    cov = table["coverage 90%"]
    table["meets target"] = np.where(
        bay, np.where((table["MAPE %"] <= table["best point MAPE %"]) & (cov >= 0.80) & (cov <= 0.95), "yes", "no"),
        "")
    return table


# ------------------------------------------------------------------------------------------------ decisions
def decisions_at_scale(sp: Split, fits: dict[str, Any], log=print) -> list[dict]:
    rows = []
    d = sp.decision
    for label, f in fits.items():
        for T in d.get("thresholds", THRESHOLDS):
            try:
                dec = f.optimize("tradeoff", n_params=d["n_params"], tokens=d["tokens"], max_general_increase=T,
                                 data=sp.full)
            except Exception as exc:
                log(f"  decision {label} T={T}: FAILED {exc!r}")
                traceback.print_exc()
                rows.append({"split": sp.name, "method": label, "T": T, "error": repr(exc)})
                continue
            decs = [dec] if hasattr(dec, "inputs") else [dec[k] for k in dec]  # Decision or DecisionSet
            for one in decs:
                s = one.summary(CI)
                tab = s.table
                med, lo, hi = (float(tab.loc["r_domain", k]) for k in ("median", "lo", "hi"))
                m = one.measured_check(CI) or {}
                rows.append({
                    "split": sp.name, "method": label, "domain": one.domain, "T": T,
                    "N": d["n_params"], "D": d["tokens"],
                    "r* median": med, "r* 90% lo": lo, "r* 90% hi": hi,
                    "measured crossing": m.get("crossing", np.nan), "measured kind": m.get("kind", ""),
                    "measured 90%": (f"{m['crossing_interval'][0]:.3f}-{m['crossing_interval'][1]:.3f}"
                                     if "crossing_interval" in m else ""),
                    "contains measured": m.get("contains"),
                    "predicted measured 90%": (f"{m['predicted_interval'][0]:.3f}-{m['predicted_interval'][1]:.3f}"
                                               if "predicted_interval" in m else ""),
                    "pit": m.get("pit", np.nan), "agrees (predictive check)": m.get("agrees"),
                    "infeasible/always": f"{s.counts.get('infeasible')}/{s.counts.get('always_satisfied')}",
                    "base loss": (m.get("base_loss", np.nan)),
                })
    return rows


# ------------------------------------------------------------------------------------------------ report
def compact_report(name: str) -> str:
    """The compact markdown tables of ``honest_fit_<name>.csv`` (one row per split and target; cells MAPE % / cov.)."""
    path = OUT / f"honest_fit_{name}.csv"
    if not path.exists():
        return f"{name}: not run"
    t = pd.read_csv(path)
    order = ("point L3", "point L1", "dcpt", "dcpt (no streams)", "cpt", "cpt (no streams)", "auto",
             "auto (no streams)")
    methods = [m for m in order if m in set(t["method"])]
    rows = []
    for (split, target), g in t.groupby(["split", "target"], sort=False):
        g = g.set_index("method")
        row = {"split": split, "target": target, "n train / test": f"{int(g['n_train'].iloc[0])} / "
               f"{int(g['n_test'].dropna().iloc[0])}"}
        for m in methods:
            if m not in g.index or pd.isna(g.loc[m, "MAPE %"]):
                row[m] = "not run" if m not in g.index else "failed"
                continue
            cell = f"{g.loc[m, 'MAPE %']:.2f} / {g.loc[m, 'coverage 90%']:.2f}"
            if not m.startswith("point"):
                cell += " ✓" if g.loc[m, "meets target"] == "yes" else " ✗"
            row[m] = cell
        rows.append(row)
    out = md_table(pd.DataFrame(rows))
    cost = []
    for split, g in t.groupby("split", sort=False):
        g = g.drop_duplicates("method").set_index("method")
        c = {"split": split, "train rows": int(g["n_train"].iloc[0]), "point L3 s": f"{g.loc['point L3', 'seconds']:.0f}"}
        for m in ("point L1", "dcpt", "cpt", "auto"):
            if m in g.index:
                c[f"{m} (x point L3)"] = f"{g.loc[m, 'seconds'] / g.loc['point L3', 'seconds']:.1f}"
        if "auto" in g.index and "weights" in g:
            c["auto weights"] = g.loc["auto", "weights"]
        cost.append(c)
    out += "\n\n" + md_table(pd.DataFrame(cost))
    dpath = OUT / f"honest_fit_{name}_decisions.csv"
    if dpath.exists():
        d = pd.read_csv(dpath)
        d["r* median [90%]"] = [f"{a:.3f} [{b:.3f}, {c:.3f}]" for a, b, c in
                                zip(d["r* median"], d["r* 90% lo"], d["r* 90% hi"], strict=True)]
        d["measured crossing [noise 90%]"] = [f"{a:.3f} [{b}]" for a, b in
                                              zip(d["measured crossing"], d["measured 90%"], strict=True)]
        cols = ["method", "domain", "T", "r* median [90%]", "infeasible/always", "measured crossing [noise 90%]",
                "contains measured"]
        cols += [c for c in ("predicted measured 90%", "pit", "agrees (predictive check)", "agrees (intervals overlap)")
                 if c in d]
        out += "\n\n" + md_table(d[cols])
    return out


# ------------------------------------------------------------------------------------------------ main
LOADERS = {"example": None, "long": long_splits, "mixinglaws": mixinglaws_splits,
           "datablations": datablations_splits, "slimpajama": slimpajama_splits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="example,long,mixinglaws,datablations,slimpajama")
    ap.add_argument("--domains", default="python", help="example grid domains (one fit per domain)")
    ap.add_argument("--splits", default="", help="only splits whose name contains one of these (comma list)")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--refit", choices=("nutpie", "laplace"), default="nutpie")
    ap.add_argument("--refit-draws", type=int, default=300)
    ap.add_argument("--no-auto", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2x100 draws, laplace refits")
    ap.add_argument("--suffix", default="", help="appended to the CSV names (e.g. _other_domains)")
    ap.add_argument("--report", action="store_true", help="only print the compact tables of the saved CSVs")
    a = ap.parse_args()
    if a.report:
        for name in a.datasets.split(","):
            print(f"\n### {name}{a.suffix}\n\n{compact_report(name + a.suffix)}")
        return
    if a.quick:
        a.draws, a.tune, a.refit = 100, 100, "laplace"
    print(f"machine: {machine()}; MCMC nutpie {a.chains} chains x {a.draws} draws (+{a.tune} tune); refits: "
          f"{a.refit}" + (f" {a.refit_draws}+{a.refit_draws} x 2 chains" if a.refit == "nutpie" else ""), flush=True)
    OUT.mkdir(exist_ok=True)
    for name in a.datasets.split(","):
        t_ds = time.perf_counter()
        try:
            sps = example_splits(a.domains.split(",")) if name == "example" else LOADERS[name]()
        except datasets.DatasetUnavailable as exc:
            print(f"\n### {name}: skipped ({exc})")
            continue
        if a.splits:
            sps = [s for s in sps if any(k in s.name for k in a.splits.split(","))]
        rows, drows = [], []
        for sp in sps:
            print(f"{name} / {sp.name}: {int((sp.train['tokens'] > 0).sum())} train rows, "
                  f"{int((sp.test['tokens'] > 0).sum())} test rows", flush=True)
            r, fits = run_split(sp, a, log=lambda s: print(s, flush=True))
            rows += r
            quick = "_quick" if a.quick else ""
            table = target_check(pd.DataFrame(rows))
            table.to_csv(OUT / f"honest_fit_{name}{a.suffix}{quick}.csv", index=False)
            if sp.decision:
                drows += decisions_at_scale(sp, fits, log=lambda s: print(s, flush=True))
                pd.DataFrame(drows).to_csv(OUT / f"honest_fit_{name}{a.suffix}_decisions{quick}.csv", index=False)
        cols = ["split", "target", "method", "n_test", "MAPE %", "coverage 90%", "width % of loss", "meets target",
                "seconds", "x point L3 time"]
        print(f"\n### {name} ({time.perf_counter() - t_ds:.0f} s)")
        print(md_table(table[[c for c in cols if c in table]], ".3g"))
        if drows:
            print(md_table(pd.DataFrame(drows), ".3g"))


if __name__ == "__main__":
    main()
