"""Calibrate a fit's bands for extrapolation: held-out refits, their scores, and the discrepancy they imply.

:func:`holdout_scores` refits a fit's law (same law, same configuration, the compiled model reused) on each
held-out split of its data (:mod:`~bayes_dcpt.fitting.holdout`) and scores the held-out rows. :func:`calibrate`
turns the scores into the discrepancy slopes of :mod:`~bayes_dcpt.fitting.discrepancy` and stores them on the fit's
posterior, where predictions and decisions read them::

    posterior.ctx["discrepancy"] = {target: {"tokens": kappa, "size": kappa, "ratio": kappa}}   # None: not measured
    posterior.ctx["envelope"]    = {domain: {"n_max", "n_min", "d_max": {str(float(N)): tokens}, "ratios"}}

``fit(..., discrepancy=True)`` (the default) calls it; ``law="auto"`` reuses the refits that weigh its laws. The
refits are scoring refits: fewer draws than the fit itself (the scores need a few hundred draws, not a full
posterior), or a Laplace approximation (``refit={"sampler": "laplace"}``, far cheaper, slightly narrower
predictive bands, hence slightly larger kappas).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.discrepancy import AXES, data_envelope, estimate_kappa
from bayes_dcpt.fitting.holdout import HoldoutScore, Split, make_splits, score_split

__all__ = ["DEFAULT_SPLITS", "REFIT_DEFAULTS", "calibrate", "discrepancy_from_scores", "holdout_scores",
           "holdout_table", "refit_law"]

#: The splits calibrated by default: later tokens and the largest size (what users extrapolate to).
DEFAULT_SPLITS = ("tokens", "size")
#: Scoring refits: two chains of 400 draws after 400 tuning steps (see BENCHMARKS.md for the measurement).
REFIT_DEFAULTS: dict[str, Any] = {"sampler": "nutpie", "draws": 400, "tune": 400, "chains": 2}


def refit_law(fit: Any, data: pd.DataFrame, *, seed: int = 0, **settings: Any) -> Any:
    """``fit``'s law and configuration fitted again on ``data`` (a part of its data), reusing its compiled model.

    ``settings`` override :data:`REFIT_DEFAULTS` (``sampler``, ``draws``, ``tune``, ``chains``, ``cores``,
    ``sampler_kwargs``). Never warns: a scoring refit's diagnostics are recorded, not shouted.
    """
    from bayes_dcpt.fitting.dcpt import fit as fit_one

    cfg = fit.config
    kw = {**REFIT_DEFAULTS, **settings}
    design = getattr(fit, "_design", None)
    slots = getattr(design, "run_capacity", None)
    return fit_one(data, fit.law, cfg.target, seed=seed, robust=cfg.robust, run_effect=cfg.run_effect,
                   hierarchical=cfg.hierarchical, parametrization=cfg.parametrization, monotone=cfg.monotone,
                   probe_tokens=cfg.probe_tokens, prior_scale=cfg.prior_scale, zero_ratio=cfg.zero_ratio,
                   domain_levels=cfg.domain_levels, run_offsets=cfg.run_offsets, warn=False, run_slots=slots, **kw)


def holdout_scores(fit: Any, splits: Sequence[str] | Sequence[Split] = DEFAULT_SPLITS, *,
                   zero_ratio: bool | None = None, seed: int = 0, refit: Mapping[str, Any] | None = None,
                   keep: bool = False) -> list[HoldoutScore]:
    """Refit ``fit``'s law on each held-out split of its data and score the held-out rows.

    Parameters
    ----------
    fit
        A fit of one law (:class:`~bayes_dcpt.fitting.dcpt.Fit` or the CPT law's).
    splits
        Split names (``"tokens"``, ``"size"``, ``"ratio"``; those the data do not allow are skipped) or splits.
    zero_ratio
        Score the zero own-ratio rows too (default: as the fit fitted them). Laws compared with each other must be
        scored on the same rows.
    seed
        Seed of the refits and of the predictive simulation.
    refit
        Sampler settings of the refits (over :data:`REFIT_DEFAULTS`).
    keep
        Keep each refit's posterior in the score's ``info["posterior"]`` (``law="auto"`` stacks them).
    """
    items = make_splits(fit.data, splits) if all(isinstance(s, str) for s in splits) else list(splits)
    zr = bool(getattr(fit.config, "zero_ratio", False) or fit.law.family == "cpt") if zero_ratio is None \
        else zero_ratio
    out = []
    for k, split in enumerate(items):
        t0 = time.perf_counter()
        try:
            f = refit_law(fit, split.train, seed=seed + 17 * (k + 1), **dict(refit or {}))
            score = score_split(f.posterior, split, law=fit.law.name, zero_ratio=zr, seed=seed)
        except FitError as exc:  # the split leaves too little of some target to fit: it measures nothing
            warnings.warn(f"held-out split {split.kind!r} skipped for {fit.law.name}: {exc}", UserWarning,
                          stacklevel=2)
            continue
        score.seconds = time.perf_counter() - t0
        d = f._diagnostics
        score.info = {"description": split.description, "refit": {**REFIT_DEFAULTS, **dict(refit or {})},
                      "sampler_ok": bool(d.sampler_ok), "problems": list(d.problems),
                      **({"posterior": f.posterior} if keep else {})}
        out.append(score)
    return out


def discrepancy_from_scores(scores: Sequence[HoldoutScore], targets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{target: {"tokens": kappa, "size": kappa, "ratio": kappa}}`` from held-out scores (``None``: not measured).

    Each target's held-out measurements of every split are pooled; an axis is estimated from the measurements at
    a positive distance along it (:func:`~bayes_dcpt.fitting.discrepancy.estimate_kappa`).
    """
    pts = pd.concat([s.points for s in scores], ignore_index=True) if scores else pd.DataFrame()
    out: dict[str, dict[str, Any]] = {}
    for t in targets:
        p = pts[pts["target"] == t] if len(pts) else pts
        if p.empty:
            out[t] = {a: None for a in AXES}
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            k = estimate_kappa(p["log_error"], p["log_sd"] ** 2, {a: p[f"delta_{a}"] for a in AXES})
        out[t] = {a: k.get(a) for a in AXES}
    return out


def holdout_table(scores: Sequence[HoldoutScore]) -> pd.DataFrame:
    """One row per (law, split, target): held-out elpd (se), runs, points, MAPE (%), coverage, refit seconds."""
    if not scores:
        return pd.DataFrame(columns=["law", "split", "target", "elpd", "se", "n_runs", "n_points", "mape",
                                     "coverage", "seconds", "refit_ok"])
    return pd.concat([s.summary().assign(seconds=s.seconds, refit_ok=s.info.get("sampler_ok", True))
                      for s in scores], ignore_index=True)


def attach(fit: Any, scores: Sequence[HoldoutScore], seconds: float, refit: Mapping[str, Any] | None) -> Any:
    """Store the discrepancy, the envelope and the held-out summary on ``fit`` (and its posterior)."""
    kappa = discrepancy_from_scores(scores, fit.targets)
    fit.posterior.ctx["discrepancy"] = kappa
    fit.posterior.ctx["envelope"] = data_envelope(fit.data)
    fit.extrapolation = {"discrepancy": kappa, "splits": [s.split for s in scores],
                         "holdout": _records(holdout_table(scores)), "refit": {**REFIT_DEFAULTS, **dict(refit or {})},
                         "seconds": float(seconds)}
    return fit


def calibrate(fit: Any, splits: Sequence[str] = DEFAULT_SPLITS, *, seed: int = 0,
              refit: Mapping[str, Any] | None = None) -> Any:
    """Held-out refits of ``fit``'s law, and the discrepancy they measure stored on the fit (returned).

    Sets ``fit.posterior.ctx["discrepancy"]`` and ``["envelope"]`` (module docstring) and ``fit.extrapolation``
    (the held-out table, the splits, the refit settings and seconds; saved in the model card). Data that allow no
    split (one size and a single checkpoint per run) leave every kappa ``None``.
    """
    t0 = time.perf_counter()
    scores = holdout_scores(fit, splits, seed=seed, refit=refit)
    return attach(fit, scores, time.perf_counter() - t0, refit)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN as None)."""
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else (v.item() if hasattr(v, "item") else v))
             for k, v in row.items()} for row in table.to_dict(orient="records")]
