"""The model discrepancy's slopes pooled over the domains against each domain's own, on the same fits and refits.

Why: the CLI-defaults benchmark found the example's domain loss over-covered (0.96-0.99) in the fit of all three
domains: one slope per target, and ``codec_tables`` (which the law misses most) sets it for the other two. Since
2026-12-04 the calibration also estimates each domain's own slopes, shrunk towards the pooled one
(``discrepancy_from_scores``, ``DOMAIN_PRIOR_RUNS``). This scores the variants on the same fit: one
``bd.fit`` per split with the CLI's defaults (law ``cpt`` where the base rows are there; 4 chains x 1000 draws,
1000 tuning steps), its held-out refits once (``holdout_scores``, the refits ``calibrate`` makes), then the slopes
attached pooled (``by_domain=False``, the earlier behaviour), per domain unshrunk (``prior_runs=0``) or shrunk
(the default), and the held-out rows of the split
predicted with each (90% posterior predictive bands). Cells: MAPE % (the same for both: the law is the same) and
90% coverage per domain and target.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_discrepancy_scope.py [--datasets example,long]``; raw rows in
``benchmarks/results/discrepancy_scope.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from _evaluate import CI, _score
from bench_cli_defaults import KEYS, splits

import bayes_dcpt as bd
from bayes_dcpt import data as _data
from bayes_dcpt.fitting.discrepancy import data_envelope
from bayes_dcpt.fitting.extrapolation import discrepancy_from_scores, holdout_scores

OUT = Path(__file__).parent / "results"
#: pooled (one slope per target, as before), each domain's own unshrunk, and shrunk towards the pooled (default)
VARIANTS = {"pooled": {"by_domain": False}, "per domain, unshrunk": {"prior_runs": 0.0},
            "per domain, shrunk (default)": {}}
FIT = {"draws": 1000, "tune": 1000, "chains": 4, "seed": 0, "warn": False, "discrepancy": False}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="example,long")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    print(machine())
    rows: list[dict] = []
    for name in a.datasets.split(","):
        for split, train, test in splits(name):
            t0 = time.perf_counter()
            f = bd.fit(train, **FIT)
            scores = holdout_scores(f, seed=0)
            secs = time.perf_counter() - t0
            test = _data.fit_rows(_data.load(test)).reset_index(drop=True)
            print(f"{split}: {f.law.name}, {secs:.0f} s")
            for label, opts in VARIANTS.items():
                kappa = discrepancy_from_scores(scores, f.targets, **opts)
                f.posterior.ctx["discrepancy"] = kappa
                f.posterior.ctx["envelope"] = data_envelope(f.data)
                print(f"  {label}: {kappa}")
                pred = f.predict(test[KEYS], CI, kind="predictive", seed=1)
                label = f"{f.law.name}, slopes {label}"
                for dom in sorted(test["domain"].astype(str).unique()):
                    m = (test["domain"] == dom).to_numpy()
                    for t in f.targets:
                        r = _score(label, "posterior predictive", split, t, test[m].reset_index(drop=True),
                                   pred[m].reset_index(drop=True), secs)
                        rows.append({"domain": dom, **r})
            OUT.mkdir(exist_ok=True)
            pd.DataFrame(rows).to_csv(OUT / "discrepancy_scope.csv", index=False)
    table = pd.DataFrame(rows)
    cols = ["split", "domain", "target", "method", "MAPE %", "coverage 90%"]
    print(md_table(table[[c for c in cols if c in table]]))


if __name__ == "__main__":
    main()
