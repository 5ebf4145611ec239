"""Parameter recovery and calibration of the predictive bands on simulated D-CPT worlds with known truth.

For each of ``--worlds`` synthetic worlds (one domain, L3 for both losses): the truth is the package's
default world with every coefficient (E, A, B, C) scaled by exp(N(0, 0.2)), every exponent (alpha, beta,
gamma) by exp(N(0, 0.1)) (C is kept above the paper's C0), checkpoint noise sigma ~ U(0.002, 0.006) and a
per-run offset tau ~ U(0.001, 0.005) on the log loss. Training data: 3 sizes (0.1-1B) x 5 ratios x 8
checkpoints up to 5B tokens (the package's ``probe_grid``), plus base rows. Held out: 4 new runs
(ratios 0.2 and 0.6 at 0.3B and 1B, 8 checkpoints each, fresh run offsets and noise).

Reported, over worlds:

* recovery: the share of (world, target, parameter) whose true value lies inside the 90% equal-tailed
  posterior interval, overall and per parameter;
* calibration of the predictive bands: coverage of the 90% posterior predictive interval of held-out
  measurements, and the probability integral transform (PIT: the share of predictive draws below the
  measurement) in 10 bins with a chi-square test of uniformity (the predictive form of simulation-based
  calibration; exact SBC would draw the truth from the prior, but this model's priors are anchored on the
  data's own scale, so a fixed prior to draw from does not exist);
* the law band (parameter uncertainty only) against the true noise-free loss of the held-out rows;
* sampler diagnostics per world.

Run: ``.venv/bin/python benchmarks/bench_recovery_calibration.py [--worlds 12] [--draws 500 --chains 4]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table

from bayes_dcpt import data as _data
from bayes_dcpt.fitting import fit
from bayes_dcpt.laws.registry import get_law
from bayes_dcpt.plan.simulate import DEFAULT_TRUTH, World, probe_grid

OUT = Path(__file__).parent / "results"


def make_world(seed: int) -> World:
    rng = np.random.default_rng(seed)
    law = get_law("dcpt")
    params = {}
    for t, base in DEFAULT_TRUTH.items():
        p = dict(base)
        for k in ("E", "A", "B", "C"):
            p[k] = base[k] * float(np.exp(rng.normal(0, 0.2)))
        for k in ("alpha", "beta", "gamma"):
            p[k] = base[k] * float(np.exp(rng.normal(0, 0.1)))
        c0 = float(law.param("C").lower(np, p, {"D_min": 0.1}))
        p["C"] = max(p["C"], 1.05 * c0)
        params[(t, "code")] = p
    return World(law, params, sigma=float(rng.uniform(0.002, 0.006)), tau=float(rng.uniform(0.001, 0.005)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, default=12)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=4)
    a = ap.parse_args()
    print(
        f"machine: {machine()}; {a.worlds} worlds; "
        f"nutpie {a.chains} chains x {a.draws} draws (+{a.tune} tune)"
    )
    rec, pits, diag = [], [], []
    held_grid = probe_grid(n_params=(3e8, 1e9), r_domain=(0.2, 0.6))
    for w in range(a.worlds):
        world = make_world(100 + w)
        train = world.simulate(probe_grid(), seed=w)
        test = _data.fit_rows(world.simulate(held_grid, seed=10_000 + w, run_prefix="held"))
        t0 = time.perf_counter()
        f = fit(train, "dcpt", "both", draws=a.draws, tune=a.tune, chains=a.chains, seed=w, warn=False)
        secs = time.perf_counter() - t0
        d = f.diagnostics(warn=False)
        diag.append(
            {
                "world": w,
                "seconds": secs,
                "divergences": d.divergences,
                "R-hat max": d.rhat_max,
                "ESS bulk min": d.ess_bulk_min,
                "ok": d.ok,
            }
        )
        s = f.posterior.summary(0.9)
        for _, row in s.iterrows():
            truth = world.params[(row["target"], row["domain"])].get(row["param"])
            if truth is None:
                continue
            rec.append(
                {
                    "world": w,
                    "target": row["target"],
                    "param": row["param"],
                    "truth": truth,
                    "inside": bool(row["lo"] <= truth <= row["hi"]),
                }
            )
        for t in ("general", "domain"):
            draws = f.posterior.sample_observations(test, t, seed=w)  # new runs: fresh offsets
            y = test[f"loss_{t}"].to_numpy()
            pit = np.mean(draws < y[None, :], axis=0)
            mean_draws = np.exp(f.posterior.mean_log_loss(test, t))
            true_mean = world.mean(test, t)
            lo, hi = np.quantile(mean_draws, [0.05, 0.95], axis=0)
            for i in range(len(y)):
                pits.append(
                    {
                        "world": w,
                        "target": t,
                        "pit": pit[i],
                        "law band covers truth": bool(lo[i] <= true_mean[i] <= hi[i]),
                    }
                )
        print(f"  world {w}: {secs:.1f} s; {d}", flush=True)
    rec = pd.DataFrame(rec)
    pits = pd.DataFrame(pits)
    diag = pd.DataFrame(diag)
    OUT.mkdir(exist_ok=True)
    rec.to_csv(OUT / "recovery.csv", index=False)
    pits.to_csv(OUT / "calibration_pit.csv", index=False)

    print(
        f"\nRecovery: truth inside the 90% interval for {rec['inside'].mean():.1%} of "
        f"{len(rec)} (world, target, parameter) triples"
    )
    per = rec.groupby(["target", "param"])["inside"].mean().unstack("target")
    print(
        md_table(
            per.reset_index().rename(
                columns={"general": "general: share inside", "domain": "domain: share inside"}
            )
        )
    )
    rows = []
    for t, g in pits.groupby("target"):
        counts = np.histogram(g["pit"], bins=10, range=(0, 1))[0]
        chi = stats.chisquare(counts)
        rows.append(
            {
                "target": t,
                "held-out points": len(g),
                "90% predictive coverage": float(np.mean((g["pit"] > 0.05) & (g["pit"] < 0.95))),
                "PIT below 0.05": float(np.mean(g["pit"] <= 0.05)),
                "PIT above 0.95": float(np.mean(g["pit"] >= 0.95)),
                "PIT counts (10 bins)": " ".join(map(str, counts)),
                "chi2 p (uniform)": float(chi.pvalue),
                "law band covers true mean": float(g["law band covers truth"].mean()),
            }
        )
    print("\nCalibration of the predictive bands on held-out runs")
    print(md_table(pd.DataFrame(rows)))
    print(
        f"\nDiagnostics: {int(diag['ok'].sum())}/{len(diag)} worlds pass every check; divergences total "
        f"{int(diag['divergences'].sum())}; R-hat max median {diag['R-hat max'].median():.4f} (worst "
        f"{diag['R-hat max'].max():.4f}); ESS bulk min median {diag['ESS bulk min'].median():.0f} (worst "
        f"{diag['ESS bulk min'].min():.0f}); seconds per fit median {diag['seconds'].median():.1f} "
        f"(first includes compilation: {diag['seconds'].iloc[0]:.1f})"
    )


if __name__ == "__main__":
    main()
