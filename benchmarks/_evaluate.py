"""Shared evaluation for the generalisation benchmarks: one train/test split, three methods, one table.

Methods, all on the same split and measured in the same run:

* ``point``: the paper's point fit (:func:`bayes_dcpt.fit_point`); its "interval" is the law plus the
  residual noise of the fit (``PointFitResult.to_posterior``: sigma = RMS log residual, no parameter
  uncertainty);
* ``bootstrap``: the Epoch-style bootstrap (:func:`bayes_dcpt.bootstrap`, resampling points, warm-started at
  the point fit). Two intervals: the percentile band of the law across refits (what the Epoch replication
  reports; parameter uncertainty only) and the predictive band of ``to_posterior()`` (law + residual noise);
* ``bayes``: the hierarchical Bayesian fit (:func:`bayes_dcpt.fit`, default sampler nutpie), its
  posterior predictive band (a new run's measurement: law + run offset + checkpoint noise) and the band of
  the law itself.

Metrics on the held-out rows (``metrics`` of :mod:`bayes_dcpt.fitting.pointfit`): MAPE (%), R^2 and the Huber sum
(delta 1e-3 on log residuals, the paper's objective) of the point prediction (the point fit's law; the
posterior mean of the law for the Bayesian fit), the share of held-out measurements inside the 90%
interval, and the interval's mean width relative to the loss (%).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt import data as _data
from bayes_dcpt.fitting.pointfit import bootstrap, fit_point, metrics
from bayes_dcpt.posterior.draws import Posterior

CI = 0.9


def _score(
    method: str,
    interval: str,
    split: str,
    target: str,
    test: pd.DataFrame,
    pred: pd.DataFrame,
    seconds: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    y = test[f"loss_{target}"].to_numpy(float)
    ok = np.isfinite(y)
    mean = pred[f"loss_{target}_mean"].to_numpy(float)[ok]
    lo = (
        pred[f"loss_{target}_lo"].to_numpy(float)[ok]
        if f"loss_{target}_lo" in pred
        else np.full(ok.sum(), np.nan)
    )
    hi = (
        pred[f"loss_{target}_hi"].to_numpy(float)[ok]
        if f"loss_{target}_hi" in pred
        else np.full(ok.sum(), np.nan)
    )
    y = y[ok]
    m = metrics(y, mean)
    cover = float(np.mean((lo <= y) & (y <= hi))) if np.isfinite(lo).all() else np.nan
    width = float(np.mean((hi - lo) / y) * 100) if np.isfinite(lo).all() else np.nan
    return {
        "split": split,
        "target": target,
        "method": method,
        "interval": interval,
        "n_test": m["n"],
        "MAPE %": m["mape"],
        "R2": m["r2"],
        "Huber": m["huber_sum"],
        "coverage 90%": cover,
        "width % of loss": width,
        "seconds": seconds,
        **(extra or {}),
    }


def _many(post: Posterior, n: int = 4000) -> Posterior:
    """Repeat the draws of a small posterior so the predictive noise is sampled well."""
    return post if post.n_draws >= n else post.subset(np.resize(np.arange(post.n_draws), n))


def evaluate_split(
    split: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    targets: tuple[str, ...] = ("general", "domain"),
    law: str = "dcpt",
    n_boot: int = 200,
    bayes: dict[str, dict[str, Any]] | None = None,
    point_kwargs: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fit every method on ``train``, score on the CPT rows of ``test``; returns (rows, fitted objects).

    ``bayes`` maps a label to keyword arguments of :func:`bayes_dcpt.fit` (one Bayesian row per label);
    its ``seconds`` include PyMC/nutpie compilation the first time a model structure is seen in the process
    (``sampling s`` is the sampler alone).
    """
    from bayes_dcpt.fitting import fit

    target = "both" if len(targets) == 2 else targets[0]
    test = _data.fit_rows(_data.load(test)).reset_index(drop=True)
    grid = test[["domain", "n_params", "tokens", "r_domain", "run_id"]]
    rows: list[dict[str, Any]] = []
    objs: dict[str, Any] = {}
    t0 = time.perf_counter()
    point = fit_point(train, law, target, **(point_kwargs or {}))
    t_point = time.perf_counter() - t0
    objs["point"] = point
    ppost = _many(point.to_posterior(train))
    pp = ppost.predict(grid, CI, kind="predictive")
    pm = point.predict(grid)
    for t in targets:
        pp[f"loss_{t}_mean"] = pm[f"loss_{t}_pred"].to_numpy()
        rows.append(_score("point fit (paper)", "law + residual noise", split, t, test, pp, t_point))
    log(f"  {split}: point fit {t_point:.1f} s")
    if n_boot:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot = bootstrap(train, law, target, n=n_boot, by="point", point=point, seed=0)
        t_boot = time.perf_counter() - t0 + t_point
        objs["bootstrap"] = boot
        band = boot.predict(grid, CI)
        bpost = _many(boot.to_posterior())
        bp = bpost.predict(grid, CI, kind="predictive")
        for t in targets:
            bp[f"loss_{t}_mean"] = band[f"loss_{t}_mean"].to_numpy()
            rows.append(_score(f"bootstrap (n={n_boot})", "law band (Epoch)", split, t, test, band, t_boot))
            rows.append(_score(f"bootstrap (n={n_boot})", "law + residual noise", split, t, test, bp, t_boot))
        log(f"  {split}: bootstrap {t_boot:.1f} s")
    for label, kw in (bayes or {}).items():
        kw = {"draws": 1000, "tune": 1000, "chains": 4, "seed": 1, "warn": False, **kw}
        t0 = time.perf_counter()
        f = fit(train, law, target, **kw)
        secs = time.perf_counter() - t0
        objs[label] = (f, secs)
        d = f.diagnostics(warn=False)
        diag = {
            "sampling s": d.seconds,
            "divergences": d.divergences,
            "R-hat max": d.rhat_max,
            "ESS bulk min": d.ess_bulk_min,
        }
        pred = f.predict(grid, CI, kind="predictive", seed=1)
        band = f.predict(grid, CI, kind="mean")
        for t in targets:
            rows.append(_score(label, "posterior predictive", split, t, test, pred, secs, diag))
            rows.append(_score(label, "law band", split, t, test, band, secs, diag))
        log(f"  {split}: {label} {secs:.1f} s; {d}")
    return rows, objs


COLUMNS = [
    "split",
    "target",
    "method",
    "interval",
    "n_test",
    "MAPE %",
    "R2",
    "Huber",
    "coverage 90%",
    "width % of loss",
    "seconds",
]


def compact(df: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """The table columns in print order (diagnostic columns last, blank for non-Bayesian rows)."""
    cols = [c for c in COLUMNS if c in df] + [c for c in extra if c in df]
    out = df[cols].copy()
    for c in extra:
        if c in out:
            out[c] = out[c].map(
                lambda v: "" if pd.isna(v) else (f"{v:.3f}" if isinstance(v, float) else str(v))
            )
    return out
