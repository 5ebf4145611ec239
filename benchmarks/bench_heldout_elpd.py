"""The CPT law's opt-in terms judged as ``law="auto"`` judges laws: by held-out log predictive density.

``bench_replay_scope.py`` compares the variants by MAPE and 90% coverage on a few extrapolation cases; coverage is
a calibration measure, not a score of the whole predictive distribution. This script scores the variants the way
``law="auto"`` weighs candidate laws: each variant fitted to the whole grid (every domain, both losses) and
calibrated exactly as ``bd.fit`` does it (its data streams, then its held-out refits on the default splits: later
tokens from two origins and the largest size), and each held-out run's log predictive density kept. Reported per
grid, split and target: elpd of each variant, the paired difference with its standard error (runs as units, as
``law="auto"``'s screening computes it) and the stacking weights over all the held-out runs of the grid; each with
two scores: a run's held-out checkpoints jointly (``lpd``, what ``law="auto"`` weighs by) and the sum of each held-out
checkpoint's own density given the run's fitted checkpoints (``lpd_points``).

Variants: ``--compare share_power`` (default; forgetting linear in the domain share against ``s^eta_s`` per
domain), ``rewarm`` or ``replay_scope`` (``bench_replay_scope.VARIANTS``), or ``seed`` (the default law at seeds 1
and 2: the Monte Carlo spread of the same comparison between two fits of one model). Fits: 4 chains x 500 draws
after 500 tuning steps, seed 1 (``bench_replay_scope.MCMC``); refits with the package's settings for such a fit.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_heldout_elpd.py [--compare share_power] [--grids example]``;
rows in ``benchmarks/results/heldout_elpd_<compare>[_<tag>].csv``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import bayes_dcpt as bd
from bayes_dcpt import datasets
from bayes_dcpt.fitting.api import _refit_settings
from bayes_dcpt.fitting.discrepancy import stacking_weights
from bayes_dcpt.fitting.extrapolation import attach, holdout_scores
from bayes_dcpt.posterior.streams import stream_deviations
from benchmarks._common import REPO, machine, md_table
from benchmarks.bench_replay_scope import MCMC, VARIANTS

OUT = REPO / "benchmarks" / "results"
#: ``--compare seed``: the default CPT law against itself at another seed, to see how far two fits of the same
#: model apart the held-out elpd lands (the Monte Carlo error of the refits, which run-level se does not include).
COMPARES = {**VARIANTS, "seed": {"seed 1": {"seed": 1}, "seed 2": {"seed": 2}}}
GRIDS = {"example": datasets.load_example, "long": datasets.load_long_cpt}
#: The held-out scores compared: each run's held-out checkpoints jointly (what ``law="auto"`` weighs by), and the sum
#: of each checkpoint's own predictive density given the run's fitted checkpoints (``HoldoutScore.runs``).
SCORES = {"lpd": "run jointly", "lpd_points": "per checkpoint"}


def scored_fit(df: pd.DataFrame, kw: dict) -> tuple[object, pd.DataFrame, float]:
    """``bd.fit(df, law="cpt", **kw)`` as it calibrates, and its held-out runs (split, target, run_id, lpd)."""
    t0 = time.perf_counter()
    mcmc = {**MCMC, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bd.fit(df, law="cpt", discrepancy=False, **mcmc)
        t1 = time.perf_counter()
        f.posterior.ctx["streams"] = stream_deviations(f.posterior, f.fitted_data())  # as ``calibrate`` does
        refit = _refit_settings(True, mcmc)
        sc = holdout_scores(f, seed=mcmc["seed"], refit=refit, per_point=True)
        attach(f, sc, time.perf_counter() - t1, refit)
    runs = pd.concat([s.runs.assign(split=s.split) for s in sc], ignore_index=True)
    return f, runs[["split", "target", "run_id", "lpd", "lpd_points"]], time.perf_counter() - t0


def paired(lpd: pd.DataFrame, a: str, b: str) -> tuple[float, float, int]:
    """elpd(b) - elpd(a) over the runs both scored, its standard error, and the number of runs."""
    d = (lpd[b] - lpd[a]).to_numpy(float)
    return float(d.sum()), float(np.sqrt(d.size * np.var(d, ddof=1))) if d.size > 1 else np.nan, int(d.size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", default="share_power", choices=sorted(COMPARES))
    ap.add_argument("--grids", default="example,long")
    ap.add_argument("--tag", default="", help="suffix of the results file")
    a = ap.parse_args()
    print(f"machine: {machine()}")
    names = list(COMPARES[a.compare])
    rows = []
    for grid in a.grids.split(","):
        df = GRIDS[grid]()
        runs_of = {}
        for name in names:
            f, runs, secs = scored_fit(df, COMPARES[a.compare][name])
            d = f.diagnostics(warn=False)
            print(f"{grid} {name}: {secs:.0f} s (fit and held-out refits); {d}", flush=True)
            runs_of[name] = runs.set_index(["split", "target", "run_id"])
        for score in SCORES:
            lpd = pd.concat({n: r[score] for n, r in runs_of.items()}, axis=1, join="inner")
            w = stacking_weights(lpd.to_numpy())
            base, other = names
            groups = [("all", "both", lpd)] + [(s, t, g) for (s, t), g in lpd.groupby(level=["split", "target"])]
            for split, target, g in groups:
                diff, se, n = paired(g, base, other)
                rows.append({"grid": grid, "score": SCORES[score], "split": split, "target": target, "runs": n,
                             f"elpd {base}": float(g[base].sum()), f"elpd {other}": float(g[other].sum()),
                             "difference": diff, "se": se, "z": diff / se if se > 0 else np.nan,
                             "stacking weight of " + other: float(w[1]) if split == "all" else np.nan})
        pd.DataFrame(rows).to_csv(OUT / f"heldout_elpd_{a.compare}{'_' + a.tag if a.tag else ''}.csv", index=False)
    print(md_table(pd.DataFrame(rows), ".3g"))


if __name__ == "__main__":
    main()
