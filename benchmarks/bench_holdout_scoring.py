"""How many draws the stacked refits are scored with in ``law="auto"``: time and scores, side by side.

``law="auto"`` stacks its held-out refits with the stacking weights and scores the stacked predictor on each
split (the errors that calibrate the discrepancy). It used as many draws as the candidates' full fits: 4,000 with
the CLI's 4 chains x 1,000, although each refit has 800 (2 chains x 400), so the 4,000 repeat the refits' draws
five times over. At 32,400 rows a split holds 16,000-54,000 held-out log losses, and scoring is proportional to
draws x log losses. Side by side in one process, on the same refit posterior (a nutpie fit of L3 on the split's
training rows with the refits' settings, ``extrapolation.refit_settings()``) and split:

* ``4,000 draws``: the stacked refit resampled to the full fits' draw count (before);
* ``refit draws``: as many draws as the refit has (after, ``fitting.auto._stacked_scores``).

Beside the seconds: the held-out elpd, MAPE and 90% coverage each gives (they must agree up to Monte Carlo noise).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_holdout_scoring.py --sizes 25,200``
(``benchmarks/results/holdout_scoring.csv``).

``--compare band``: the predictive band of the held-out rows as it was computed before (the law evaluated again
for the band and once more inside ``sample_observations``, and ``np.nanquantile``, which loops over the held-out
rows in Python) against the package's (the law's values reused, a vectorised quantile when no draw is NaN), the
same refit scored at its own draws by both; the bands must agree to 1e-12 relative
(``benchmarks/results/holdout_scoring_band.csv``).
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
from _common import machine, md_table
from bench_scale import scale_set

from bayes_dcpt.fitting import holdout
from bayes_dcpt.fitting.dcpt import fit as fit_one
from bayes_dcpt.fitting.extrapolation import refit_settings
from bayes_dcpt.fitting.holdout import make_splits, score_split
from bayes_dcpt.fitting.stacked import stacked_posterior

OUT = Path(__file__).parent / "results"


def _scored(post, split, n_draws: int) -> tuple[float, dict]:
    stacked = stacked_posterior([post], np.array([1.0]), n_draws, 1)
    t0 = time.perf_counter()
    s = score_split(stacked, split, law="stacked", seed=1)
    sec = time.perf_counter() - t0
    p = s.points
    return sec, {"elpd": float(s.runs["lpd"].sum()), "MAPE %": 100 * float(p["ape"].mean()),
                 "coverage": float(p["inside"].mean())}


def _band_before(post, target, test, seed, ci, logm):
    """``holdout._band`` as it was: the law evaluated twice more, ``np.nanquantile`` (the baseline)."""
    frame = test[["domain", "n_params", "tokens", "r_domain", "run_id"]].reset_index(drop=True)
    with np.errstate(all="ignore"):
        draws = np.log(post.sample_observations(frame, target, seed=seed))
        post.mean_log_loss(frame, target)
    q = np.nanquantile(draws, [(1 - ci) / 2, 1 - (1 - ci) / 2, 0.05, 0.95], axis=0)
    return np.exp(q[0]), np.exp(q[1]), (q[3] - q[2]) / (2 * holdout._Z90)


def _timed(post, split) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    s = score_split(post, split, law="L3", seed=1)
    return time.perf_counter() - t0, s.points


def measure_band(n_ck: int) -> list[dict]:
    df = scale_set(n_ck)
    rows = []
    for split in make_splits(df, ("tokens", "size")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = fit_one(split.train, "L3", "both", seed=1, warn=False, **refit_settings()).posterior
        _timed(post, split)  # warm-up: first-call costs out of both timings
        now = holdout._band
        holdout._band = _band_before
        try:
            t_before, p_before = _timed(post, split)
        finally:
            holdout._band = now
        t_after, p_after = _timed(post, split)
        cols = ["lo", "hi", "log_sd", "inside"]
        row = {"rows": int((df["tokens"] > 0).sum()), "split": split.kind, "held-out log losses": len(p_after),
               "before s": t_before, "after s": t_after, "speed-up": t_before / t_after,
               "bands identical": bool(all(np.allclose(p_before[c], p_after[c], rtol=1e-12, atol=0) for c in cols)),
               "90% coverage": float(p_after["inside"].mean())}
        print(row, flush=True)
        rows.append(row)
    return rows


def measure(n_ck: int, full_draws: int) -> list[dict]:
    df = scale_set(n_ck)
    rows = []
    for split in make_splits(df, ("tokens", "size")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = fit_one(split.train, "L3", "both", seed=1, warn=False, **refit_settings())
        post = f.posterior
        _scored(post, split, 200)  # warm-up: first-call costs out of both timings
        t_full, s_full = _scored(post, split, full_draws)
        t_own, s_own = _scored(post, split, post.n_draws)
        row = {"rows": int((df["tokens"] > 0).sum()), "split": split.kind,
               "held-out log losses": int(sum((split.test[f"loss_{t}"].notna()).sum() for t in ("general", "domain"))),
               f"{full_draws} draws s": t_full, f"refit draws ({post.n_draws}) s": t_own,
               "speed-up": t_full / t_own,
               **{f"{k} ({full_draws})": v for k, v in s_full.items()},
               **{f"{k} ({post.n_draws})": v for k, v in s_own.items()}}
        print(row, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="25,200", help="checkpoints per run of the scale set")
    ap.add_argument("--full-draws", type=int, default=4000, help="draws of the full fits (the CLI: 4 x 1000)")
    ap.add_argument("--compare", choices=("draws", "band"), default="draws")
    a = ap.parse_args()
    print(machine())
    if a.compare == "band":
        out = [r for n in a.sizes.split(",") for r in measure_band(int(n))]
    else:
        out = [r for n in a.sizes.split(",") for r in measure(int(n), a.full_draws)]
    OUT.mkdir(exist_ok=True)
    pd.DataFrame(out).to_csv(OUT / f"holdout_scoring{'_band' if a.compare == 'band' else ''}.csv", index=False)
    print(md_table(pd.DataFrame(out)))


if __name__ == "__main__":
    main()
