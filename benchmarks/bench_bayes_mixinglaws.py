"""Bayesian fit vs the paper's point fit and the Epoch-style bootstrap on the Pythia-70M CPT sweep.

Data: ``../shared/data/mixinglaws`` (5 python shares x 10 CPT checkpoints, one model size, general =
weighted Pile loss, domain = Python loss). The D-CPT paper's generalisation protocols that these data allow
(one model size, so no size hold-out here; see ``bench_generalisation_example.py`` and
``bench_slimpajama.py`` for that):

* ``ratio``: fit on 4 ratios, predict the held-out r = 0.7148 run (the Data Mixing Laws authors' own
  situation); the bootstrap has ``--n-boot`` resamples (1,000 by default: the acceptance benchmark of the
  Bayesian core: wall time, width and coverage against point fit + 1,000 bootstraps, same run);
* ``tokens``: fit CPT steps <= 7k, predict the last third (8k-10k steps);
* ``pairs``: hold out two ratios, every one of the C(5,2) = 10 pairs, fit on the other three (the paper's
  7-of-9 protocol scaled to 5 ratios); metrics averaged over the pairs, coverage pooled.

The Bayesian fit runs twice per split: with the per-run random effect (default) and without
(``run_effect=False``), to show on data whether modelling the correlation of one run's checkpoints
improves calibration. Then the critical ratio r* (general loss back to the base model's after 10k steps)
from the Bayesian fits, in the format of ``bench_critical_ratio_mixinglaws.py``.

Run: ``.venv/bin/python benchmarks/bench_bayes_mixinglaws.py [--n-boot 1000] [--pair-boot 20]
[--draws 1000 --chains 4] [--only ratio,tokens,pairs,critical]``; raw rows in
``benchmarks/results/bayes_mixinglaws_<only>.csv`` (per pair: ``bayes_mixinglaws_pairs.csv``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from _evaluate import compact, evaluate_split

from bayes_dcpt.datasets import DatasetUnavailable, load_mixinglaws_cpt

OUT = Path(__file__).parent / "results"
HELD = 0.71484375
STEP = 2**20


def _agg_pairs(rows: pd.DataFrame) -> pd.DataFrame:
    g = rows.groupby(["target", "method", "interval"], sort=False)
    out = g.agg(
        **{
            "n_test": ("n_test", "sum"),
            "MAPE %": ("MAPE %", "mean"),
            "R2": ("R2", "mean"),
            "Huber": ("Huber", "mean"),
            "coverage 90%": ("coverage 90%", "mean"),
            "width % of loss": ("width % of loss", "mean"),
            "seconds": ("seconds", "sum"),
        }
    ).reset_index()
    out.insert(0, "split", "hold out 2 of 5 ratios (10 pairs; means)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--pair-boot", type=int, default=20, help="bootstrap resamples per ratio pair")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--only", default="ratio,tokens,pairs,critical")
    a = ap.parse_args()
    try:
        df = load_mixinglaws_cpt()
    except DatasetUnavailable as exc:
        print(f"skipped: {exc}")
        return
    only = set(a.only.split(","))
    mcmc = {"draws": a.draws, "tune": a.tune, "chains": a.chains}
    bayes = {
        f"Bayes (nutpie {a.chains}x{a.draws})": {**mcmc},
        "Bayes, no run effect": {**mcmc, "run_effect": False},
    }
    print(
        f"machine: {machine()}; MCMC: {a.chains} chains x {a.draws} draws (+{a.tune} tune), nutpie",
        flush=True,
    )
    base = df["tokens"] == 0
    is_held = np.isclose(df["r_domain"].fillna(-1), HELD)
    all_rows = []
    fits = {}
    if "ratio" in only:
        rows, objs = evaluate_split(
            "hold out r=0.7148 (fit 4 ratios)", df[~is_held], df[is_held], n_boot=a.n_boot, bayes=bayes
        )
        fits["4 ratios (0.7148 held out)"] = objs[next(iter(bayes))]
        all_rows += rows
    if "tokens" in only:
        tr = base | (df["tokens"] <= 7000 * STEP)
        rows, _ = evaluate_split(
            "last third of tokens (fit <=7k steps, predict 8k-10k)",
            df[tr],
            df[~tr],
            n_boot=a.n_boot // 5,
            bayes=bayes,
        )
        all_rows += rows
    pair_rows = []
    if "pairs" in only:
        ratios = sorted(df.loc[~base, "r_domain"].unique())
        for pair in itertools.combinations(ratios, 2):
            held = df["r_domain"].isin(pair)
            rows, _ = evaluate_split(
                f"pair {pair[0]:.3f}+{pair[1]:.3f}", df[~held], df[held], n_boot=a.pair_boot, bayes=bayes
            )
            pair_rows += rows
    table = pd.DataFrame(all_rows)
    if pair_rows:
        pr = pd.DataFrame(pair_rows)
        OUT.mkdir(exist_ok=True)
        pr.to_csv(OUT / "bayes_mixinglaws_pairs.csv", index=False)
        table = pd.concat([table, _agg_pairs(pr)], ignore_index=True)
    if len(table):
        OUT.mkdir(exist_ok=True)
        table.to_csv(OUT / f"bayes_mixinglaws_{a.only.replace(',', '_')}.csv", index=False)
        pt = table[table["method"] == "point fit (paper)"].groupby("split")["seconds"].first()
        table["x point-fit time"] = table["seconds"] / table["split"].map(pt)
        print(
            md_table(
                compact(table, ("x point-fit time", "sampling s", "divergences", "R-hat max", "ESS bulk min"))
            )
        )
    if "critical" in only:
        from bench_critical_ratio_mixinglaws import observed_crossing, row_for

        from bayes_dcpt.fitting import fit

        L0 = float(df.loc[base, "loss_general"].iloc[0])
        obs_r = observed_crossing(df, L0)[0]
        crit = []
        for split, train in (("all 5 ratios", df), ("4 ratios (0.7148 held out)", df[~is_held])):
            for label, kw in bayes.items():
                if label.startswith("Bayes (") and split in fits:
                    f, secs = fits[split]
                else:
                    t0 = time.perf_counter()
                    f = fit(train, "dcpt", "both", seed=1, warn=False, **kw)
                    secs = time.perf_counter() - t0
                crit.append(row_for(label, split, f.posterior, df, secs, obs_r))
        print(
            f"\nCritical ratio (observed crossing r = {obs_r:.4f}, "
            f"Data Mixing Laws prediction r = {HELD:.4f})"
        )
        print(md_table(pd.DataFrame(crit)))


if __name__ == "__main__":
    main()
