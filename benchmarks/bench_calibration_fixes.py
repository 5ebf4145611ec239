"""The discrepancy's calibration with the LR warm-up left out of its refits, its optimiser fixed, and matched to 90%.

Three changes to how the held-out refits calibrate the bands (``fitting.extrapolation``), scored side by side on
the same fits (thirtieth session):

* **splits**: the held-out splits left the LR warm-up's checkpoints in (``make_splits(..., burn_in="none")``): the
  refits were conditioned on them, the size split scored them, the token origins were placed on a range that
  began inside the warm-up, and a run cut at an origin inside its warm-up had its last warm-up checkpoint taken for
  the peak and fitted. Fixed: the splits are made from the rows the fit fits (``burn_in="warmup"``).
* **optimiser**: the maximum-likelihood slope was sought in ``kappa``, where the gradient vanishes at 0: a first
  step that overshot to the bound stopped there as if converged. Fixed: sought on the variance scale.
* **coverage**: the split-conformal slope, at which a new held-out run falls inside its 90% band with probability
  0.9 (``estimate_kappa(coverage=0.9)``: the ``ceil((n + 1) 0.9) / n`` quantile of the runs' needed slopes, the
  band's sd as the scale), against the likelihood's (the default).

Per split one fit with the CLI's defaults (``bd.fit(train, seed=0)``, its law and draws), its data streams, and
two sets of held-out refits (the old splits and the fixed ones); each variant's slopes attached to the same fit,
the split's held-out rows predicted (90% bands) and scored by ``check_predictions`` after each run's LR warm-up
(the rows the law is fitted to; ``all rows``: with them). Splits as in ``bench_cli_defaults.py``.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_calibration_fixes.py [--datasets example,long]``; raw rows in
``benchmarks/results/calibration_fixes.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from bench_cli_defaults import splits

import bayes_dcpt as bd
from bayes_dcpt import data as _data
from bayes_dcpt.fitting import extrapolation as _ext
from bayes_dcpt.fitting.discrepancy import attach_data_context
from bayes_dcpt.fitting.extrapolation import DEFAULT_SPLITS, discrepancy_from_scores, holdout_scores
from bayes_dcpt.fitting.holdout import make_splits
from bayes_dcpt.posterior.heldout import check_predictions
from bayes_dcpt.posterior.streams import stream_deviations

OUT = Path(__file__).parent / "results"
CI = 0.9
#: (splits, optimiser, estimator options)
VARIANTS = {
    "before (warm-up in the splits, optimiser in kappa)": ("old", "old", {}),
    "warm-up in the splits, optimiser fixed": ("old", "new", {}),
    "splits fixed, optimiser in kappa": ("new", "old", {}),
    "splits fixed, optimiser fixed (likelihood, the default)": ("new", "new", {}),
    "splits fixed, split-conformal slopes": ("new", "new", {"coverage": CI}),
}


def _old_estimate(log_error: Any, variance: Any, distances: Mapping[str, Any], *, units: Any = None,
                  min_points: int = 3, **_: Any) -> dict[str, float | None]:
    """The maximum-likelihood slopes as sought before the thirtieth session: L-BFGS-B in ``kappa`` itself."""
    e, v = np.asarray(log_error, float), np.asarray(variance, float)
    axes = list(distances)
    d = np.stack([np.asarray(distances[a], float) for a in axes], axis=1)
    ok = np.isfinite(e) & np.isfinite(v) & (v > 0) & np.all(np.isfinite(d), axis=1)
    e, v, d = e[ok], v[ok], d[ok]
    usable = [int(np.sum(d[:, j] > 0)) >= min_points for j in range(len(axes))]
    out: dict[str, float | None] = {a: None for a in axes}
    if not any(usable):
        return out
    cols = [j for j, u in enumerate(usable) if u]
    d2, e2 = d[:, cols] ** 2, e**2

    def nll(kappa: np.ndarray) -> tuple[float, np.ndarray]:
        s = v + d2 @ (kappa**2)
        ds = 0.5 * (1.0 / s - e2 / s**2)
        return 0.5 * float(np.sum(np.log(s) + e2 / s)), (ds @ d2) * 2.0 * kappa

    x0 = np.array([np.sqrt(max(np.mean((e2 - v)[d[:, j] > 0] / d2[d[:, j] > 0, k]), 1e-6))
                   for k, j in enumerate(cols)])
    res = minimize(nll, np.minimum(x0, 5.0), jac=True, method="L-BFGS-B", bounds=[(0.0, 5.0)] * len(cols))
    for k, j in enumerate(cols):
        out[axes[j]] = float(res.x[k])
    return out


@contextmanager
def _optimiser(which: str):
    """The old optimiser in place of the package's (``extrapolation`` calls ``estimate_kappa`` by that name)."""
    keep = _ext.estimate_kappa
    if which == "old":
        _ext.estimate_kappa = _old_estimate
    try:
        yield
    finally:
        _ext.estimate_kappa = keep


def _cells(check: Any, label: str, split: str, secs: float, kappa: Mapping[str, Any], every: Any) -> list[dict]:
    rows = []
    pooled = check.table.drop_duplicates("target", keep="last").set_index("target")
    all_rows = every.table.drop_duplicates("target", keep="last").set_index("target")
    for t, c in pooled.iterrows():
        if c["where"] != "held out":
            continue
        rows.append({"split": split, "target": t, "variant": label, "MAPE %": c["mape"], "coverage 90%": c["coverage"],
                     "runs": c["runs"], "plausible lo": c["plausible_lo"], "plausible hi": c["plausible_hi"],
                     "established miss": bool(c["clear"]), "width %": c["width"],
                     "coverage all rows": all_rows.loc[t, "coverage"], "MAPE all rows": all_rows.loc[t, "mape"],
                     "kappa tokens": kappa[t].get("tokens"), "kappa size": kappa[t].get("size"),
                     "kappa ratio": kappa[t].get("ratio"), "seconds": secs})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="example,long")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    print(machine())
    rows: list[dict] = []
    for name in a.datasets.split(","):
        for split, train, test in splits(name):
            t0 = time.perf_counter()
            f = bd.fit(train, seed=0, warn=False, discrepancy=False)
            f.posterior.ctx["streams"] = stream_deviations(f.posterior, f.fitted_data())
            scores = {"old": holdout_scores(f, make_splits(f.data, DEFAULT_SPLITS, burn_in="none"), seed=0),
                      "new": holdout_scores(f, DEFAULT_SPLITS, seed=0)}
            secs = time.perf_counter() - t0
            attach_data_context(f.posterior, f.fitted_data(), streams=False)
            test = _data.fit_rows(_data.load(test)).reset_index(drop=True)
            print(f"{split}: {f.law.name}, {secs:.0f} s")
            for label, (sp, opt, opts) in VARIANTS.items():
                with _optimiser(opt):
                    kappa = discrepancy_from_scores(scores[sp], f.targets, **opts)
                f.posterior.ctx["discrepancy"] = kappa
                pred = f.predict(test, CI, seed=0)
                check = check_predictions(pred, CI, fitted=train, warmup=True)
                every = check_predictions(pred, CI, fitted=train)
                rows += _cells(check, label, split, secs, kappa, every)
                print(f"  {label}: " + "; ".join(f"{r['target']} {r['MAPE %']:.2f}% {r['coverage 90%']:.2f}"
                                                 for r in rows[-2:]))
            OUT.mkdir(exist_ok=True)
            pd.DataFrame(rows).to_csv(OUT / "calibration_fixes.csv", index=False)
    table = pd.DataFrame(rows)
    cols = ["split", "target", "variant", "MAPE %", "coverage 90%", "coverage all rows", "width %", "kappa tokens",
            "kappa size"]
    print(md_table(table[cols]))


if __name__ == "__main__":
    main()
