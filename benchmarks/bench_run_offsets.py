"""The Bayesian core's sampling target: sampled (latent) against integrated-out (marginal) run offsets.

Target (issue 4): a full joint fit (general and domain loss) of about 1,000 points on 2 cores in under a
minute, zero divergences, R-hat < 1.01. Every configuration runs the package's default MCMC settings (nutpie,
4 chains x 1000 draws after 1000 tuning steps) in this one process, side by side:

* ``latent``: the run offsets sampled as latent variables (one per run; the form before this benchmark);
* ``marginal``: the offsets integrated out in closed form (:mod:`bayes_dcpt.fitting.marginal`), with nutpie's
  low-rank and diagonal mass-matrix adaptation.

For each: one cold fit (compiling included: what a user waits for on a fresh model) and warm refits with
other seeds (the compiled model cached), the worst R-hat, the smallest bulk/tail ESS, divergences, and whether
the fit meets the target. The paper's point fit of the same data in the same run is the time baseline. A
Normal-likelihood pair (latent and marginal, the same model written two ways) checks that integrating the
offsets out leaves the posterior unchanged: posterior means of the law parameters in posterior sds.

Data: ``synthetic`` (one domain of the package's default world, 4 sizes x 6 ratios x 20 checkpoints, 960
fitted log losses, sigma 0.004, tau 0.003) and ``example`` (the packaged example grid: 3 domains,
hierarchical).

Run: ``.venv/bin/python benchmarks/bench_run_offsets.py [synthetic example] [--seeds 3]``; writes
``benchmarks/results/run_offsets.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import REPO, machine, md_table
from bench_speed_samplers import synthetic

from bayes_dcpt import data as _data
from bayes_dcpt import datasets
from bayes_dcpt.fitting import fit
from bayes_dcpt.fitting.pointfit import fit_point

SETS = {"synthetic": synthetic, "example": datasets.load_example}
CONFIGS = [
    ("latent", "low_rank", True),
    ("marginal", "low_rank", True),
    ("marginal", "diag", True),
]
LAW_PARAMS = ["E", "A", "alpha", "B", "beta", "C", "gamma", "eps", "eta", "tau", "sigma"]


def run_config(df: pd.DataFrame, offsets: str, adaptation: str, robust: bool, seeds: list[int]) -> list[dict]:
    rows = []
    for i, seed in enumerate(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            f = fit(df, "dcpt", "both", seed=seed, run_offsets=offsets, robust=robust, warn=False,
                    sampler_kwargs={"adaptation": adaptation})
            wall = time.perf_counter() - t0
        d = f.diagnostics(warn=False)
        rows.append({"run offsets": offsets, "adaptation": adaptation,
                     "likelihood": "Student-t" if robust else "Normal",
                     "seed": seed, "cold": i == 0, "wall s": wall, "divergences": d.divergences,
                     "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min, "ESS tail min": d.ess_tail_min,
                     "meets target": bool(wall < 60 and d.divergences == 0 and d.rhat_max < 1.01),
                     "_fit": f})
        print(f"  {offsets:8s} {adaptation:8s} seed {seed}: {wall:.1f} s; {d}", flush=True)
    return rows


def posterior_shift(a, b) -> float:
    """Largest |mean_a - mean_b| / sd_b over the law parameters (the Normal pair: same model, two forms)."""
    pa, pb = a.idata["posterior"], b.idata["posterior"]
    out = 0.0
    for v in LAW_PARAMS:
        if v in pa.data_vars and v in pb.data_vars:
            xa, xb = np.asarray(pa[v]), np.asarray(pb[v])
            xa = xa.reshape(-1, *xa.shape[2:])
            xb = xb.reshape(-1, *xb.shape[2:])
            out = max(out, float(np.max(np.abs(xa.mean(0) - xb.mean(0)) / xb.std(0))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=["synthetic", "example"])
    ap.add_argument("--seeds", type=int, default=3, help="fits per configuration (the first one cold)")
    a = ap.parse_args()
    print(f"machine: {machine()}; nutpie, 4 chains x 1000 draws (+1000 tune), cores = 2")
    all_rows = []
    for name in a.datasets:
        df = SETS[name]()
        n_obs = len(_data.to_long(df).query("r > 0"))
        t0 = time.perf_counter()
        fit_point(df, "dcpt", "both")
        t_point = time.perf_counter() - t0
        print(f"{name}: {n_obs} fitted log losses; point fit {t_point:.1f} s", flush=True)
        rows = []
        seeds = list(range(1, a.seeds + 1))
        for offsets, adaptation, robust in CONFIGS:
            rows += run_config(df, offsets, adaptation, robust, seeds)
        normal = {o: run_config(df, o, "low_rank", False, [1])[0] for o in ("latent", "marginal")}
        shift = posterior_shift(normal["marginal"]["_fit"], normal["latent"]["_fit"])
        rows += list(normal.values())
        per_seed = pd.DataFrame([{k: v for k, v in r.items() if k != "_fit"} for r in rows])
        per_seed.insert(0, "data", name)
        per_seed["x point fit"] = per_seed["wall s"] / t_point
        all_rows.append(per_seed)
        g = per_seed.groupby(["run offsets", "adaptation", "likelihood"], sort=False)
        summary = g.agg(**{
            "fits": ("seed", "size"),
            "cold s": ("wall s", "first"),
            "warm s (median)": ("wall s", lambda s: float(np.median(s.iloc[1:])) if len(s) > 1 else np.nan),
            "x point fit (warm)": ("x point fit",
                                   lambda s: float(np.median(s.iloc[1:])) if len(s) > 1 else np.nan),
            "divergences (per fit)": ("divergences", lambda s: "/".join(str(int(x)) for x in s)),
            "R-hat max (worst)": ("R-hat max", "max"),
            "ESS bulk min (worst)": ("ESS bulk min", "min"),
            "ESS tail min (worst)": ("ESS tail min", "min"),
            "fits meeting the target": ("meets target", lambda s: f"{int(s.sum())}/{len(s)}"),
        }).reset_index()
        print(f"\n### {name}: {len(df)} rows, {n_obs} fitted log losses; point fit {t_point:.1f} s")
        print(md_table(summary))
        print("\nNormal likelihood, latent vs marginal (the same model): largest posterior-mean difference "
              f"of the law parameters = {shift:.2f} posterior sd\n", flush=True)
        out = REPO / "benchmarks" / "results" / "run_offsets.csv"
        pd.concat(all_rows, ignore_index=True).to_csv(out, index=False)  # after every data set
        print(f"per-fit rows: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
