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
from bayes_dcpt.fitting.progress import stage
from bayes_dcpt.fitting.samplers import recordable

__all__ = ["DEFAULT_SPLITS", "MODEL_SETTINGS", "REFIT_DEFAULTS", "REFIT_MAXDEPTH", "calibrate",
           "discrepancy_from_scores", "holdout_scores", "holdout_table", "law_holdout_scores", "model_settings",
           "refit_law", "refit_settings"]

#: The splits calibrated by default: later tokens from two origins and the largest size (what users extrapolate
#: to). The early token origin comes last, so that ``law="auto"`` screens out the laws the first two rule out
#: before refitting them on it.
DEFAULT_SPLITS = ("tokens", "size", "tokens_early")
#: Scoring refits: two chains of 400 draws after 400 tuning steps (see BENCHMARKS.md for the measurement).
REFIT_DEFAULTS: dict[str, Any] = {"sampler": "nutpie", "draws": 400, "tune": 400, "chains": 2}
#: A scoring refit's NUTS trees stop at depth 7 (127 leapfrog steps per draw; nutpie's default is 10, 1023). A law
#: whose refit needs longer trajectories is still sampled correctly, only less efficiently, and its refit is not
#: allowed to cost 8x a well-behaved law's: at 32,400 rows the base-anchored law's refit on the simulated D-CPT
#: world ran over 14 minutes uncapped while the D-CPT law's took ~28 steps per draw (BENCHMARKS.md, scale).
REFIT_MAXDEPTH = 7


#: The keyword arguments of :func:`bayes_dcpt.fitting.dcpt.fit` that define the model (its configuration); the
#: rest are sampler settings, which the refits take from ``refit`` and :data:`REFIT_DEFAULTS`.
MODEL_SETTINGS = ("robust", "run_effect", "hierarchical", "parametrization", "monotone", "probe_tokens",
                  "prior_scale", "zero_ratio", "domain_levels", "run_offsets", "burn_in", "noise_scope")


def model_settings(fit: Any) -> dict[str, Any]:
    """The model settings of ``fit`` (its configuration, resolved on its data) as keyword arguments of ``fit``."""
    cfg = fit.config
    return {k: getattr(cfg, k) for k in MODEL_SETTINGS if hasattr(cfg, k)}


def _refit(data: pd.DataFrame, law: Any, target: str, model: Mapping[str, Any], slots: int | None, seed: int,
           settings: Mapping[str, Any]) -> Any:
    from bayes_dcpt.fitting.dcpt import fit as fit_one

    return fit_one(data, law, target, seed=seed, warn=False, run_slots=slots, **dict(model),
                   **refit_settings(settings))


def refit_settings(settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sampler settings of a scoring refit: ``settings`` over :data:`REFIT_DEFAULTS`, NUTS trees capped.

    nutpie refits get ``maxdepth`` :data:`REFIT_MAXDEPTH` unless ``settings["sampler_kwargs"]`` names one.
    """
    kw = {**REFIT_DEFAULTS, **dict(settings or {})}
    if kw.get("sampler") == "nutpie":
        kw["sampler_kwargs"] = {"maxdepth": REFIT_MAXDEPTH, **dict(kw.get("sampler_kwargs") or {})}
    return kw


def _recorded(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """:func:`refit_settings` as the model card keeps them: callables (a progress callback) left out."""
    return recordable(refit_settings(settings))


def _run_slots(fit: Any) -> int | None:
    """The run capacity of ``fit``'s compiled model (a refit passes it on to reuse the model)."""
    return getattr(getattr(fit, "_design", None), "run_capacity", None)


def refit_law(fit: Any, data: pd.DataFrame, *, seed: int = 0, **settings: Any) -> Any:
    """``fit``'s law and configuration fitted again on ``data`` (a part of its data), reusing its compiled model.

    ``settings`` override :data:`REFIT_DEFAULTS` (``sampler``, ``draws``, ``tune``, ``chains``, ``cores``,
    ``sampler_kwargs``). Never warns: a scoring refit's diagnostics are recorded, not shouted.
    """
    return _refit(data, fit.law, fit.config.target, model_settings(fit), _run_slots(fit), seed, settings)


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
    zr = bool(getattr(fit.config, "zero_ratio", False) or fit.law.family == "cpt") if zero_ratio is None \
        else zero_ratio
    return law_holdout_scores(fit.data, fit.law, fit.config.target, model_settings(fit), splits, zero_ratio=zr,
                              seed=seed, refit=refit, keep=keep, run_slots=_run_slots(fit))


def law_holdout_scores(data: pd.DataFrame, law: Any, target: str, model: Mapping[str, Any],
                       splits: Sequence[str] | Sequence[Split] = DEFAULT_SPLITS, *, zero_ratio: bool,
                       seed: int = 0, refit: Mapping[str, Any] | None = None, keep: bool = False,
                       run_slots: int | None = None, first: int = 0) -> list[HoldoutScore]:
    """:func:`holdout_scores` of a law that has not been fitted to all of ``data`` (``law="auto"`` weighs first).

    ``model`` are the model settings (:data:`MODEL_SETTINGS`) the full fit would use, resolved on ``data`` (so the
    refits keep its parameterisation); ``run_slots`` the full fit's run capacity (one compiled model for all);
    ``first`` the position of ``splits[0]`` in a longer list scored piecewise (each refit's seed follows it).
    """
    items = make_splits(data, splits) if all(isinstance(s, str) for s in splits) else list(splits)
    name = getattr(law, "name", str(law))
    out = []
    for k, split in enumerate(items, start=first):
        t0 = time.perf_counter()
        try:
            with stage(f"{name}: held-out refit, {split.kind} split"):
                f = _refit(split.train, law, target, model, run_slots, seed + 17 * (k + 1), dict(refit or {}))
                score = score_split(f.posterior, split, law=f.law.name, zero_ratio=zero_ratio, seed=seed)
        except FitError as exc:  # the split leaves too little of some target to fit: it measures nothing
            warnings.warn(f"held-out split {split.kind!r} skipped for {name}: {exc}", UserWarning, stacklevel=2)
            continue
        score.seconds = time.perf_counter() - t0
        d = f._diagnostics
        score.info = {"description": split.description, "refit": _recorded(refit),
                      "sampler_ok": bool(d.sampler_ok), "problems": list(d.problems),
                      **({"posterior": f.posterior} if keep else {})}
        out.append(score)
    return out


def discrepancy_from_scores(scores: Sequence[HoldoutScore], targets: Sequence[str],
                            **options: Any) -> dict[str, dict[str, Any]]:
    """``{target: {"tokens": kappa, "size": kappa, "ratio": kappa}}`` from held-out scores (``None``: not measured).

    Each target's held-out measurements of every split are pooled; an axis is estimated from the measurements at
    a positive distance along it (:func:`~bayes_dcpt.fitting.discrepancy.estimate_kappa`, the maximum-likelihood
    slope by default; ``options`` go to it, e.g. ``uncertainty=True``, where a held-out run of a split counts as
    one unit of evidence).

    With two token origins (``"tokens"`` and ``"tokens_early"``) the slopes are estimated once with each (and the
    other splits) and each axis takes the larger: every origin measures the law's error at its own distances, and
    that error need not grow linearly with the distance. On the example grid it grows faster from the early origin
    on (its slope was 0 from the late origin alone), on the long-CPT grid the late checkpoints jump with the data
    order; pooled, the many small errors of one origin dilute the other's (BENCHMARKS.md, "Two token origins").
    """
    origins = [k for k in ("tokens", "tokens_early") if any(s.split == k for s in scores)]
    if len(origins) > 1:
        each = [discrepancy_from_scores([s for s in scores if s.split == o or s.split not in origins], targets,
                                        **options) for o in origins]
        return {t: {a: _larger(*(k[t][a] for k in each)) for a in AXES} for t in targets}
    pts = pd.concat([s.points for s in scores], ignore_index=True) if scores else pd.DataFrame()
    out: dict[str, dict[str, Any]] = {}
    for t in targets:
        p = pts[pts["target"] == t] if len(pts) else pts
        if p.empty:
            out[t] = {a: None for a in AXES}
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            k = estimate_kappa(p["log_error"], p["log_sd"] ** 2, {a: p[f"delta_{a}"] for a in AXES},
                               units=(p["split"].astype(str) + "|" + p["run_id"].astype(str)).to_numpy(),
                               **options)
        out[t] = {a: k.get(a) for a in AXES}
    return out


def _larger(*values: float | None) -> float | None:
    """The largest of the measured slopes (``None``: no origin measured it)."""
    known = [float(v) for v in values if v is not None]
    return max(known) if known else None


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
                         "holdout": _records(holdout_table(scores)), "refit": _recorded(refit),
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
