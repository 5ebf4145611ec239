"""Why the CPT law's transfer fits failed the sampler checks, and what the rate exponent and the transfer's prior do.

The opt-in transfer (``fit(..., transfer=True)``) was fitted on the size splits of the packaged grids (the two smaller
sizes with every base row, as ``bench_cli_defaults.splits``) and the example's token split, under four
parametrisations: the general loss's rate exponent ``psi`` per domain or one for all domains (``rate_scope``), and
the prior sd of ``log xi`` 1.5 or 0.75 (``xi_sd``); every other setting the CLI's default (4 x 1000 draws, no
calibration refits: they do not change the main fit's sampling). Per fit: the largest R-hat and smallest bulk ESS over
every reported parameter, and which parameter holds the largest R-hat.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_transfer_sampling.py [--seeds 0,1] [--splits ...]`` (about 15
minutes alone on 2 cores); rows in ``benchmarks/results/transfer_sampling.csv``.
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
from bench_cli_defaults import splits

import bayes_dcpt

OUT = Path(__file__).parent / "results" / "transfer_sampling.csv"
FORMS = {"psi per domain, xi sd 1.5 (before)": ("domain", 1.5), "psi per domain, xi sd 0.75": ("domain", 0.75),
         "one general psi, xi sd 1.5": ("general", 1.5), "one general psi, xi sd 0.75 (landed)": ("general", 0.75)}
SPLITS = {"example size": ("example", 1), "example tokens": ("example", 0), "long size": ("long", 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--splits", default="example size,long size")
    a = ap.parse_args()
    rows = []
    for split in a.splits.split(","):
        grid, i = SPLITS[split]
        _, train, _ = splits(grid)[i]
        for form, (scope, xi_sd) in FORMS.items():
            for seed in map(int, a.seeds.split(",")):
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f = bayes_dcpt.fit(train, transfer=True, rate_scope=scope, xi_sd=xi_sd, discrepancy=False, seed=seed,
                                       warn=False)
                s = f.summary()
                d = f.diagnostics()
                rows.append({"split": split, "form": form, "seed": seed, "rows": len(train),
                             "R-hat max": float(s["r_hat"].max()), "worst": str(s["r_hat"].idxmax()),
                             "ESS bulk min": float(s["ess_bulk"].min()), "divergences": d.divergences,
                             "sampler ok": bool(d.sampler_ok), "seconds": time.perf_counter() - t0})
                print(rows[-1], flush=True)
    OUT.parent.mkdir(exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(OUT, index=False)
    agg = table.groupby(["split", "form"], sort=False).agg(
        rhat=("R-hat max", lambda x: " / ".join(f"{v:.3f}" for v in x)),
        ok=("sampler ok", lambda x: f"{int(np.sum(x))} of {len(x)}"))
    print(agg.to_string())


if __name__ == "__main__":
    main()
