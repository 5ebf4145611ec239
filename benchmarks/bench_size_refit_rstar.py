"""The size error a one-size refit cannot see: r* from the size split's refit against r* from the two-size fit.

A fit of two sizes calibrates its size discrepancy with a held-out refit of the smaller size predicting the larger
(``fitting.extrapolation``). Could that refit also calibrate r* at scale (a decision-level discrepancy: how far the
refit's r* at the held-out size misses the crossing measured there)? This benchmark takes the default-law fits of
the size split (the two smaller sizes + every base row; ``bench_rstar_scale_cli.py`` writes them to
``DIR/<grid>/default{suffix}.nc``), refits the law as the fit's calibration does on its size split (the smallest size
+ every base row; the fit's own settings and its data streams), and at every checkpoint both held-out sizes measure at
two or more ratios, for T = 2% and 3%:

* ``refit``: the one-size refit's r* at the middle size (101k) against the crossing measured there;
* ``fit``: the two-size fit's r* at the largest size (443k) against the crossing measured there;

each as median, 90% interval and whether it holds the measured crossing. It also prints the refit's held-out general
loss at 101k per ratio (mean log error against its predictive log sd): what the size slope is measured from.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_size_refit_rstar.py --work DIR [--suffix _nearest]`` (about 2
minutes with the fits; rows in ``benchmarks/results/size_refit_rstar.csv``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli_defaults import splits

import bayes_dcpt as bd
from bayes_dcpt.data import schema
from bayes_dcpt.datasets import load_example, load_long_cpt
from bayes_dcpt.fitting.extrapolation import (
    _run_slots,
    _streams_of,
    law_holdout_scores,
    model_settings,
    stream_components,
)

OUT = Path(__file__).parent / "results"
TS = (0.02, 0.03)


def _rstar(post, dom: str, n: float, d: float, t: float, data: pd.DataFrame) -> dict | None:
    dec = bd.decide.tradeoff(post, domain=dom, n_params=n, tokens=d, max_general_increase=t, data=data)
    m = dec.extras.get("measured")
    if m is None:
        return None
    lo, med, hi = np.nanquantile(dec.posterior["r_domain"], [0.05, 0.5, 0.95])
    c = float(m["crossing"])
    return {"r* median": med, "r* lo": lo, "r* hi": hi, "measured": c, "contains": bool(lo <= c <= hi),
            "error": med - c, "width": hi - lo}


def _cells(post, full: pd.DataFrame, n: float, who: str, grid: str) -> list[dict]:
    rows = []
    at = full[np.isclose(full["n_params"], n) & (full["tokens"] > 0)]
    toks = sorted(d for d, g in at.groupby("tokens") if g["r_domain"].nunique() >= 2)
    for dom in post.domains:
        for d in toks:
            for t in TS:
                if (r := _rstar(post, dom, n, d, t, full)) is not None:
                    rows.append({"grid": grid, "who": who, "domain": dom, "N": n, "tokens": d, "T": t, **r})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="the --work DIR of bench_rstar_scale_cli.py (its fits)")
    ap.add_argument("--suffix", default="", help="the fits' suffix there (default.nc, default_nearest.nc, ...)")
    a = ap.parse_args()
    rows = []
    for grid in ("example", "long"):
        full = schema.load(load_example() if grid == "example" else load_long_cpt())
        train = splits(grid)[1][1].reset_index(drop=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bd.load_fit(Path(a.work) / grid / f"default{a.suffix}.nc")
            score = law_holdout_scores(train, fit.law, fit.config.target, model_settings(fit), ("size",),
                                       zero_ratio=True, seed=0, keep=True, run_slots=_run_slots(fit),
                                       streams=stream_components(_streams_of(fit)))[0]
            refit = score.info["posterior"]
        sizes = np.sort(full.loc[full["tokens"] > 0, "n_params"].unique())
        rows += _cells(refit, train, sizes[-2], "refit of one size, r* at the middle size", grid)
        rows += _cells(fit.posterior, full, sizes[-1], "fit of two sizes, r* at the largest size", grid)
        p = score.points[score.points["target"] == "general"]
        print(grid, "size split, general loss at the held-out size (refit of one size): per ratio")
        print(p.groupby("r_domain")[["log_error", "log_sd"]].mean().round(4).to_string())
        print("calibrated size slope (general):", fit.posterior.ctx["discrepancy"]["general"]["size"])
    t = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    t.to_csv(OUT / "size_refit_rstar.csv", index=False)
    last = t.groupby(["grid", "who"])["tokens"].transform("max") == t["tokens"]
    for name, sub in (("every checkpoint", t), ("last checkpoint", t[last])):
        print(f"\n{name}")
        print(sub.groupby(["grid", "who"]).agg(cells=("contains", "size"), contains=("contains", "sum"),
                                               mean_error=("error", "mean"), mean_abs_error=("error", lambda e:
                                                                                            e.abs().mean()),
                                               median_width=("width", "median")).round(3).to_string())


if __name__ == "__main__":
    main()
