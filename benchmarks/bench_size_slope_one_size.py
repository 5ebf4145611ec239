"""How much of a held-out size's band is the size discrepancy, when the refit that measured it had one size.

A fit of two sizes calibrates its size discrepancy slope with held-out refits of one size predicting the other
(``fitting.extrapolation``). A one-size refit cannot identify the law's capability exponents (they are the prior's),
so the error it measures may belong to a fit of one size rather than to the fit of two. This benchmark takes the
default-law fits of the size split (the two smaller sizes + every base row, ``bench_rstar_scale_cli.py`` writes them
to ``DIR/<grid>/default.nc``) and scores the largest size's CPT rows, as ``bench_cli_defaults.py`` does, with the
fit's calibrated size slopes and with the size slope of one target set to 0 (the same posterior draws otherwise).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_size_slope_one_size.py --work DIR`` (seconds; the fits of
``bench_rstar_scale_cli.py --work DIR`` must exist); rows in ``benchmarks/results/size_slope_one_size.csv``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import md_table
from _evaluate import _score
from bench_cli_defaults import splits

import bayes_dcpt as bd

OUT = Path(__file__).parent / "results"


def _zero_size_slope(fit: bd.CPTFit, target: str) -> None:
    disc = fit.posterior.ctx["discrepancy"][target]
    disc["size"] = 0.0
    for d in disc.get("domains", {}).values():
        d["size"] = 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="the --work DIR of bench_rstar_scale_cli.py (its fits)")
    a = ap.parse_args()
    rows = []
    for name in ("example", "long"):
        split, _, test = splits(name)[1]
        test = test.reset_index(drop=True)
        for variant in ("as calibrated", "domain size slope 0", "general size slope 0"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = bd.load_fit(Path(a.work) / name / "default.nc")
            disc = fit.posterior.ctx["discrepancy"]
            slopes = {t: disc[t]["size"] for t in disc}
            if variant != "as calibrated":
                _zero_size_slope(fit, variant.split()[0])
            pred = fit.predict(test, kind="predictive")
            for t in ("general", "domain"):
                y = test[f"loss_{t}"]
                inside = (pred[f"loss_{t}_lo"] <= y) & (y <= pred[f"loss_{t}_hi"])
                per_dom = inside[y.notna()].groupby(test["domain"]).mean().round(2).to_dict()
                rows.append(_score(f"cli default, {variant}", "posterior predictive", split, t, test, pred, 0.0,
                                   {"calibrated size slope (pooled)": slopes[t], "coverage per domain": per_dom}))
    table = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / "size_slope_one_size.csv", index=False)
    print(md_table(table[["split", "target", "method", "n_test", "MAPE %", "coverage 90%", "width % of loss",
                          "calibrated size slope (pooled)", "coverage per domain"]]))


if __name__ == "__main__":
    main()
