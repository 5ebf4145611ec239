"""Chinchilla's data (Epoch's digitisation): our posterior intervals beside the Epoch-style bootstrap.

Data: ``../shared/data/epoch_chinchilla`` (245 points digitised from Hoffmann et al.'s Figure 4; the 5
highest losses dropped as in the replication, 240 left). Law: L = E + A/N^alpha + B/D^beta.

* the replication's procedure (Besiroglu et al. 2024): Huber (delta 1e-3) on log loss by L-BFGS-B from a
  grid, then a bootstrap of the points (``--n-boot`` refits) for percentile intervals. We re-run that
  procedure here (``bayes_dcpt.fit_point`` / ``bootstrap``): the replication's own intervals are not in
  ``SOURCE.md``, only its point estimates, quoted from memory there ("verify");
* the Bayesian fit (nutpie; no run effect: every run is one point) with the package's priors;
* Hoffmann et al.'s published values for reference.

Reported: the point estimates and the 90% intervals of E, A, B, alpha, beta, their widths relative to the
bootstrap's, whether each interval contains the replication's quoted value, the wall time of each method
(as a multiple of the point fit), and a 5-fold cross-validated MAPE and 90% coverage of held-out points.

Run: ``.venv/bin/python benchmarks/bench_epoch_chinchilla.py [--n-boot 1000] [--draws 1000 --chains 4]``.
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

from bayes_dcpt import datasets
from bayes_dcpt.fitting import fit
from bayes_dcpt.fitting.pointfit import bootstrap, fit_point, metrics

EPOCH = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}  # SOURCE.md (quoted, "verify")
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
NAMES = list(EPOCH)


def _in_billions(p: dict) -> dict:
    """Published constants (N, D in raw counts) in the package's units (N, D in billions)."""
    return {**p, "A": p["A"] / 1e9 ** p["alpha"], "B": p["B"] / 1e9 ** p["beta"]}


def load() -> pd.DataFrame:
    return datasets.load_epoch_chinchilla()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--folds", type=int, default=5)
    a = ap.parse_args()
    try:
        df = load()
    except datasets.DatasetUnavailable as exc:
        print(f"skipped: {exc}")
        return
    kw = {"draws": a.draws, "tune": a.tune, "chains": a.chains, "seed": 1, "warn": False, "run_effect": False}
    print(
        f"machine: {machine()}; {len(df)} points; "
        f"nutpie {a.chains} chains x {a.draws} draws (+{a.tune} tune); "
        f"bootstrap {a.n_boot} resamples",
        flush=True,
    )
    t0 = time.perf_counter()
    point = fit_point(df, "chinchilla", "general")
    t_point = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = bootstrap(df, "chinchilla", "general", n=a.n_boot, by="point", point=point, seed=0)
    t_boot = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit(df, "chinchilla", "general", **kw)
    t_bayes = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(df, "chinchilla", "general", **{**kw, "seed": 2})
    t_bayes_warm = time.perf_counter() - t0
    d = f.diagnostics(warn=False)
    print(
        f"  point fit {t_point:.1f} s; bootstrap {t_boot:.1f} s; "
        f"Bayes cold {t_bayes:.1f} s, warm {t_bayes_warm:.1f} s; {d}"
    )
    bi = boot.intervals(0.9).set_index("param")
    ps = f.posterior.summary(0.9).set_index("param")
    # Published A and B are for N and D in raw counts; our laws take billions: A_b = A / 1e9^alpha, B_b = B / 1e9^beta
    hoff, epoch = _in_billions(HOFFMANN), _in_billions(EPOCH)
    rows = []
    for n in NAMES:
        bw = bi.loc[n, "hi"] - bi.loc[n, "lo"]
        pw = ps.loc[n, "hi"] - ps.loc[n, "lo"]
        rows.append(
            {
                "parameter": n,
                "Hoffmann (N, D in billions)": hoff[n],
                "Epoch quoted (N, D in billions)": epoch[n],
                "point fit": point["general"].params[n],
                "bootstrap 90%": f"{bi.loc[n, 'lo']:.4g} - {bi.loc[n, 'hi']:.4g}",
                "posterior mean": ps.loc[n, "mean"],
                "posterior 90%": f"{ps.loc[n, 'lo']:.4g} - {ps.loc[n, 'hi']:.4g}",
                "width posterior / bootstrap": pw / bw,
                "Epoch in bootstrap": bool(bi.loc[n, "lo"] <= epoch[n] <= bi.loc[n, "hi"]),
                "Epoch in posterior": bool(ps.loc[n, "lo"] <= epoch[n] <= ps.loc[n, "hi"]),
            }
        )
    print(md_table(pd.DataFrame(rows)))
    print(
        f"\nwall time as a multiple of the point fit ({t_point:.1f} s): bootstrap x{t_boot / t_point:.1f}, "
        f"Bayes cold x{t_bayes / t_point:.1f} (compilation included), warm x{t_bayes_warm / t_point:.1f}"
    )

    # k-fold cross-validation of held-out points: MAPE and coverage
    rng = np.random.default_rng(0)
    fold = rng.permutation(len(df)) % a.folds
    cv = []
    for k in range(a.folds):
        tr, te = df[fold != k], df[fold == k]
        y = te["loss_general"].to_numpy()
        pf = fit_point(tr, "chinchilla", "general")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = bootstrap(tr, "chinchilla", "general", n=max(a.n_boot // 5, 50), point=pf, seed=k)
            fb = fit(tr, "chinchilla", "general", **{**kw, "seed": 10 + k})
        bp = bt.to_posterior()
        bp = bp.subset(np.resize(np.arange(bp.n_draws), 4000)).predict(te, 0.9)
        band = bt.predict(te, 0.9)
        pr = fb.predict(te, 0.9, seed=k)
        for label, mean, lo, hi in (
            (
                "point fit + bootstrap law band",
                pf.predict(te)["loss_general_pred"],
                band["loss_general_lo"],
                band["loss_general_hi"],
            ),
            (
                "point fit + bootstrap predictive",
                pf.predict(te)["loss_general_pred"],
                bp["loss_general_lo"],
                bp["loss_general_hi"],
            ),
            (
                "Bayes posterior predictive",
                pr["loss_general_mean"],
                pr["loss_general_lo"],
                pr["loss_general_hi"],
            ),
        ):
            m = metrics(y, mean)
            cv.append(
                {
                    "method": label,
                    "fold": k,
                    "MAPE %": m["mape"],
                    "coverage": float(np.mean((lo <= y) & (y <= hi))),
                    "width %": float(np.mean((hi - lo) / y) * 100),
                }
            )
    cv = (
        pd.DataFrame(cv).groupby("method", sort=False)[["MAPE %", "coverage", "width %"]].mean().reset_index()
    )
    print(
        f"\n{a.folds}-fold cross-validation (bootstrap {max(a.n_boot // 5, 50)} resamples per fold): "
        "means over folds"
    )
    print(md_table(cv))


if __name__ == "__main__":
    main()
