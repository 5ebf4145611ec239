"""Calibrate a fit's bands for extrapolation: held-out refits, their scores, and the discrepancy they imply.

:func:`holdout_scores` refits a fit's law (same law, same configuration, the compiled model reused) on each
held-out split of its data (:mod:`~bayes_dcpt.fitting.holdout`) and scores the held-out rows. :func:`calibrate`
turns the scores into the discrepancy slopes of :mod:`~bayes_dcpt.fitting.discrepancy` and stores them on the fit's
posterior, where predictions and decisions read them::

    posterior.ctx["discrepancy"] = {target: {"tokens": kappa, "size": kappa, "ratio": kappa,  # None: not measured
                                             "domains": {domain: {"tokens": kappa, ...}},     # each domain's own
                                             "reach": {"tokens": distance, ...},              # measured out to
                                             "size_from_one_size": True}}  # only when the size refit had one size
    posterior.ctx["envelope"]    = {domain: {"n_max", "n_min", "d_max"/"d_min": {str(float(N)): tokens}, "ratios"}}
    posterior.ctx["streams"]     = what runs of other sizes on the same data stream deviated (posterior.streams)

With several domains, each domain's bands use the slopes its own held-out errors measure (the pooled ones where
too few of its points lie beyond the data): a domain the law misses must not widen the others' bands.

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

from bayes_dcpt.constants import RHAT_MAX
from bayes_dcpt.data.schema import fit_rows, targets_of
from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.diagnostics import APPROXIMATE_SAMPLERS
from bayes_dcpt.fitting.discrepancy import AXES, attach_data_context, estimate_kappa
from bayes_dcpt.fitting.holdout import HoldoutScore, Split, make_splits, score_split
from bayes_dcpt.fitting.progress import stage
from bayes_dcpt.fitting.samplers import NUTPIE_DEFAULTS, recordable
from bayes_dcpt.posterior.extrapolation import ONE_SIZE_REFIT
from bayes_dcpt.posterior.streams import stream_deviations, stream_summary

__all__ = ["DEFAULT_SPLITS", "DOMAIN_PRIOR_RUNS", "MODEL_SETTINGS", "REFIT_DEFAULTS", "REFIT_ESS_MIN", "REFIT_MAXDEPTH",
           "REFIT_RETRY", "REFIT_RETRY_MAX_OBS", "calibrate", "discrepancy_from_scores",
           "holdout_scores", "holdout_table", "law_holdout_scores", "model_settings", "refit_law", "refit_settings",
           "retry_for", "retry_within", "stream_components"]

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
#: A scoring refit whose chains disagree (R-hat above :data:`~bayes_dcpt.fitting.diagnostics.RHAT_MAX`) or whose
#: draws are too few to average a run's density (ESS under :data:`REFIT_ESS_MIN`) is sampled again with these
#: settings (``refit={"retry": None}``: never). On the long-CPT grid every 2 x 400 refit of the CPT law had R-hat
#: 1.011-1.021, and two seeds of the same model put its held-out elpd 78 apart (3.4 se); with the retries, 8-12
#: apart. The example's early-origin refit stays unconverged even so (R-hat 1.027 at 4 x 1,000; BENCHMARKS.md,
#: "Held-out elpd ... two seeds").
REFIT_RETRY: dict[str, Any] = {"draws": 1000, "tune": 1000, "chains": 4}
#: Effective draws below which a scoring refit is sampled again (:data:`REFIT_RETRY`).
REFIT_ESS_MIN = 100
#: Refits of data with this many log losses or more are not retried (counted on the data the full fit has, not only
#: on the refit's part): at 32,400 rows (64,800 log losses) the D-CPT fit's three retried refits took its
#: calibration from 60 to 521 s, and the 5-minute fit to 11 minutes; counted on each refit's own part, the
#: early-origin split's (3,240 log losses) was still retried and the calibration took 134-138 s (BENCHMARKS.md,
#: "Sixteenth round"). A refit left unconverged is said with the fit (``refit_unconverged``).
REFIT_RETRY_MAX_OBS = 10_000


#: Pseudo-runs of the pooled discrepancy slope in a domain's own (:func:`discrepancy_from_scores`): a domain's slope
#: is its own measured on its held-out runs, shrunk towards the pooled one as if that had been measured on this
#: many of its runs. Measured on the example and long-CPT grids (BENCHMARKS.md, "The discrepancy per domain").
DOMAIN_PRIOR_RUNS = 5.0

#: The keyword arguments of :func:`bayes_dcpt.fitting.dcpt.fit` that define the model (its configuration); the
#: rest are sampler settings, which the refits take from ``refit`` and :data:`REFIT_DEFAULTS`.
MODEL_SETTINGS = ("robust", "run_effect", "hierarchical", "parametrization", "monotone", "probe_tokens",
                  "prior_scale", "zero_ratio", "domain_levels", "run_offsets", "burn_in", "noise_scope",
                  "replay_scope", "rate_scope", "rewarm", "share_power", "transfer", "xi_sd", "replay_size")


def model_settings(fit: Any) -> dict[str, Any]:
    """The model settings of ``fit`` (its configuration, resolved on its data) as keyword arguments of ``fit``."""
    cfg = fit.config
    return {k: getattr(cfg, k) for k in MODEL_SETTINGS if hasattr(cfg, k)}


def _refit(data: pd.DataFrame, law: Any, target: str, model: Mapping[str, Any], slots: int | None, seed: int,
           settings: Mapping[str, Any], full_obs: int = 0) -> tuple[Any, tuple[str, ...]]:
    """A scoring refit; sampled again with the ``retry`` settings when its chains say it has not converged.

    Only refits of fewer than :data:`REFIT_RETRY_MAX_OBS` log losses, of data (``full_obs``: the full fit's log
    losses) of fewer than that, are retried. Returns the fit and the first refit's problems when it was retried
    (empty when it was not).
    """
    from bayes_dcpt.fitting.dcpt import fit as fit_one

    kw = refit_settings(settings)
    kw.pop("retry", None)
    f = fit_one(data, law, target, seed=seed, warn=False, run_slots=slots, **dict(model), **kw)
    retry = retry_for(settings, max(len(f.design.obs), full_obs))
    first = _unconverged(f._diagnostics) if retry else []
    if first:
        f = fit_one(data, law, target, seed=seed, warn=False, run_slots=slots, **dict(model), **{**kw, **retry})
    return f, tuple(first)


def retry_for(settings: Mapping[str, Any] | None, n_obs: int) -> dict[str, Any] | None:
    """The settings an unconverged scoring refit is sampled again with: :func:`refit_settings`' ``retry``.

    None when no retry is asked, or on data of ``n_obs`` log losses, at least :data:`REFIT_RETRY_MAX_OBS`.
    """
    return refit_settings(settings)["retry"] if n_obs < REFIT_RETRY_MAX_OBS else None


def log_losses(data: pd.DataFrame, target: str) -> int:
    """How many log losses of ``target`` (``"both"``: the two) ``data`` has: the size a retry is decided on."""
    return int(sum(data[f"loss_{t}"].notna().sum() for t in targets_of(target) if f"loss_{t}" in data))


def retry_within(own: Mapping[str, Any]) -> dict[str, int]:
    """:data:`REFIT_RETRY` capped at a fit's own ``draws``, ``tune`` and ``chains``: never more than the fit itself.

    A setting the fit leaves to its default (None) does not cap: the default is never fewer than the retry's.
    """
    return {k: REFIT_RETRY[k] if own.get(k) is None else min(int(own[k]), REFIT_RETRY[k]) for k in REFIT_RETRY}


def _unconverged(d: Any) -> list[str]:
    """Why a scoring refit's draws cannot be trusted to average densities: disagreeing chains, too few draws."""
    if d.approximate:
        return []
    out = [f"R-hat {d.rhat_max:.3f} > {RHAT_MAX}"] if d.rhat_max > RHAT_MAX else []
    ess = min(d.ess_bulk_min, d.ess_tail_min)
    return out + ([f"ESS {ess:.0f} < {REFIT_ESS_MIN}"] if ess < REFIT_ESS_MIN else [])


def refit_settings(settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sampler settings of a scoring refit: ``settings`` over :data:`REFIT_DEFAULTS`, NUTS trees capped.

    nutpie refits get ``maxdepth`` :data:`REFIT_MAXDEPTH` and nutpie's default target_accept (0.9) unless
    ``settings["sampler_kwargs"]`` names them: the dense-data fits' 0.95
    (:data:`~bayes_dcpt.fitting.config.DENSE_TARGET_ACCEPT`) is for their last rare divergences, and on the
    32,400-row set it took the calibration refits from 60 to 147 s (BENCHMARKS.md, "Sixteenth round"). MCMC
    refits get ``retry`` (:data:`REFIT_RETRY` unless given; None: no retry), dropped when it asks for no more
    draws, tuning or chains than the refit itself.
    """
    kw = {**REFIT_DEFAULTS, **dict(settings or {})}
    if kw.get("sampler") == "nutpie":
        kw["sampler_kwargs"] = {"maxdepth": REFIT_MAXDEPTH, "target_accept": NUTPIE_DEFAULTS["target_accept"],
                                **dict(kw.get("sampler_kwargs") or {})}
    retry = kw.get("retry", REFIT_RETRY) if kw.get("sampler") not in APPROXIMATE_SAMPLERS else None
    more = retry and any(int(retry.get(k, kw.get(k, 0))) > int(kw.get(k, 0)) for k in ("draws", "tune", "chains"))
    kw["retry"] = dict(retry) if more else None
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
    return _refit(data, fit.law, fit.config.target, model_settings(fit), _run_slots(fit), seed, settings)[0]


def holdout_scores(fit: Any, splits: Sequence[str] | Sequence[Split] = DEFAULT_SPLITS, *,
                   zero_ratio: bool | None = None, seed: int = 0, refit: Mapping[str, Any] | None = None,
                   keep: bool = False, per_point: bool = False) -> list[HoldoutScore]:
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
    per_point
        Also score each held-out checkpoint on its own (:func:`~bayes_dcpt.fitting.holdout.score_split`).
    """
    zr = bool(getattr(fit.config, "zero_ratio", False) or fit.law.family == "cpt") if zero_ratio is None \
        else zero_ratio
    return law_holdout_scores(fit.data, fit.law, fit.config.target, model_settings(fit), splits, zero_ratio=zr,
                              seed=seed, refit=refit, keep=keep, run_slots=_run_slots(fit),
                              streams=stream_components(_streams_of(fit)), per_point=per_point)


def _streams_of(fit: Any) -> dict[str, Any]:
    """``fit``'s data streams: those its posterior carries (measured on its fitted rows), else measured now."""
    have = fit.posterior.ctx.get("streams")
    return have if have is not None else stream_deviations(fit.posterior, fit.fitted_data())


def stream_components(streams: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """``{target: {domain: {"omega2", "total"}}}``: the data streams' variances in a fit's ``ctx["streams"]``.

    ``streams`` is what :func:`~bayes_dcpt.posterior.streams.stream_deviations` returns.

    The held-out refits take them (:func:`law_holdout_scores`): a refit on the smaller sizes predicts the held-out
    size with the streams, as the fit will predict a new size, so the size discrepancy is the error left after them
    (a refit on one size could not measure them, and its discrepancy kept the streams' part: bands too wide).
    """
    return {t: st["domains"] for t, st in streams.items()}


def law_holdout_scores(data: pd.DataFrame, law: Any, target: str, model: Mapping[str, Any],
                       splits: Sequence[str] | Sequence[Split] = DEFAULT_SPLITS, *, zero_ratio: bool,
                       seed: int = 0, refit: Mapping[str, Any] | None = None, keep: bool = False,
                       run_slots: int | None = None, first: int = 0,
                       streams: Mapping[str, Any] | None = None, per_point: bool = False) -> list[HoldoutScore]:
    """:func:`holdout_scores` of a law that has not been fitted to all of ``data`` (``law="auto"`` weighs first).

    ``model`` are the model settings (:data:`MODEL_SETTINGS`) the full fit would use, resolved on ``data`` (so the
    refits keep its parameterisation); ``run_slots`` the full fit's run capacity (one compiled model for all);
    ``first`` the position of ``splits[0]`` in a longer list scored piecewise (each refit's seed follows it);
    ``streams`` the shared data streams' variances of the full fit (:func:`stream_components`): the refits predict
    a held-out size on a probed stream with them, each from the deviations its own fitted rows show (None: without).
    """
    items = (make_splits(data, splits, burn_in=model.get("burn_in", "warmup"))
             if all(isinstance(s, str) for s in splits) else list(splits))
    name = getattr(law, "name", str(law))
    full_obs = log_losses(data, target)
    out = []
    for k, split in enumerate(items, start=first):
        t0 = time.perf_counter()
        try:
            with stage(f"{name}: held-out refit, {split.kind} split"):
                f, retried = _refit(split.train, law, target, model, run_slots, seed + 17 * (k + 1),
                                    dict(refit or {}), full_obs)
                if streams:
                    f.posterior.ctx["streams"] = stream_deviations(f.posterior, f.fitted_data(), components=streams)
                score = score_split(f.posterior, split, law=f.law.name, zero_ratio=zero_ratio, seed=seed,
                                    per_point=per_point)
        except FitError as exc:  # the split leaves too little of some target to fit: it measures nothing
            warnings.warn(f"held-out split {split.kind!r} skipped for {name}: {exc}", UserWarning, stacklevel=2)
            continue
        score.seconds = time.perf_counter() - t0
        d = f._diagnostics
        score.info = {"description": split.description, "refit": _recorded(refit),
                      "fitted_sizes": int(fit_rows(split.train)["n_params"].nunique()),
                      "sampler_ok": bool(d.sampler_ok), "problems": list(d.problems),
                      "run_slots": int(f.design.run_capacity),
                      "retried_after": list(retried), "unconverged": _unconverged(d),
                      "rhat_max": float(d.rhat_max),
                      **({"posterior": f.posterior} if keep else {})}
        out.append(score)
    return out


def discrepancy_from_scores(scores: Sequence[HoldoutScore], targets: Sequence[str], *, by_domain: bool = True,
                            prior_runs: float | None = None, coverage: float | None = None,
                            **options: Any) -> dict[str, dict[str, Any]]:
    """``{target: {"tokens": kappa, "size": kappa, "ratio": kappa, "reach": {axis: distance}}}`` from held-out scores.

    ``None``: not measured. ``reach``: the farthest distance beyond the training data at which a held-out point
    measured the error along each axis (:func:`_reach`); the slopes carry the bands on beyond it by assumption.
    ``"size_from_one_size": True`` when the size split's refit fitted a single size (:func:`_one_size_refit`).

    Each target's held-out measurements of every split are pooled; an axis is estimated from the measurements at
    a positive distance along it (:func:`~bayes_dcpt.fitting.discrepancy.estimate_kappa`): the maximum-likelihood
    slope by default; ``coverage=0.9``: the slope whose 90% bands would hold a new held-out run with probability
    0.9 (split-conformal over the runs; measured, not the default: it set the long grid's late general loss in range,
    0.74 -> 0.90, but took datablations' late domain loss from 0.87 to 0.60-0.71 and widened the example's
    codec_tables bands on two pure-domain runs: BENCHMARKS.md, "The warm-up in the held-out refits"). ``options``
    go to ``estimate_kappa`` (e.g. ``uncertainty=True``); a held-out run of a split counts as one unit of
    evidence.

    With ``by_domain`` (default) and held-out measurements of several domains, each domain's own slopes are
    estimated too, under ``"domains"``: ``{target: {..., "domains": {domain: {axis: kappa}}}}``, so that a domain
    the law misses does not widen the bands of the domains it describes
    (:func:`bayes_dcpt.posterior.extrapolation.discrepancy_slopes`). A domain's slope is its own maximum-likelihood
    slope shrunk towards the pooled one, on the variance scale: ``kappa_d^2 = (u_d kappa_own^2 + u_0
    kappa_pooled^2) / (u_d + u_0)``, ``u_d`` the domain's held-out runs beyond the data along that axis and
    ``u_0`` = ``prior_runs`` (default :data:`DOMAIN_PRIOR_RUNS`); ``None`` (the pooled slope) where too few of its
    points lie beyond the data. Unshrunk (``prior_runs=0``), a domain's few held-out runs understate its error
    at larger distances (BENCHMARKS.md, "The discrepancy per domain").

    With two token origins (``"tokens"`` and ``"tokens_early"``) the slopes are estimated once with each (and the
    other splits) and each axis takes the larger: every origin measures the law's error at its own distances, and
    that error need not grow linearly with the distance. On the example grid it grows faster from the early origin
    on (its slope was 0 from the late origin alone), on the long-CPT grid the late checkpoints jump with the data
    order; pooled, the many small errors of one origin dilute the other's (BENCHMARKS.md, "Two token origins").
    """
    origins = [k for k in ("tokens", "tokens_early") if any(s.split == k for s in scores)]
    pts = pd.concat([s.points for s in scores], ignore_index=True) if scores else pd.DataFrame()
    one_size = _one_size_refit(scores)
    if len(origins) > 1:
        each = [discrepancy_from_scores([s for s in scores if s.split == o or s.split not in origins], targets,
                                        by_domain=by_domain, prior_runs=prior_runs, coverage=coverage, **options)
                for o in origins]
        return {t: {**_larger_slopes([k[t] for k in each]), "reach": _reach(pts, t), **one_size} for t in targets}
    out: dict[str, dict[str, Any]] = {}
    options = {**options, "coverage": coverage}
    for t in targets:
        p = pts[pts["target"] == t] if len(pts) else pts
        out[t] = {**_slopes(p, options), "reach": _reach(pts, t), **one_size}
        if by_domain and "domain" in p and p["domain"].nunique() > 1:
            u0 = DOMAIN_PRIOR_RUNS if prior_runs is None else float(prior_runs)
            out[t]["domains"] = {str(d): _shrunk(_slopes(g, options), out[t], g, u0) for d, g in p.groupby("domain")}
    return out


def _one_size_refit(scores: Sequence[HoldoutScore]) -> dict[str, bool]:
    """``{"size_from_one_size": True}`` when the size split's refit fitted a single model size, else ``{}``.

    Such a refit (a fit of two sizes, the larger held out) has no size trend to extrapolate: its band at the held-out
    size is the prior's on the law's size exponents, wide enough to hold whatever the law misses there, so the size
    slope it measures is near 0 whatever the error of the two-size fit beyond its sizes (BENCHMARKS.md, "The size
    error a one-size refit cannot see"). :func:`~bayes_dcpt.posterior.extrapolation.beyond_reach` then cautions every
    question beyond the probed sizes.
    """
    n = [s.info.get("fitted_sizes") for s in scores if s.split == "size"]
    return {ONE_SIZE_REFIT: True} if any(k == 1 for k in n) else {}


def _units(p: pd.DataFrame) -> pd.Series:
    """The independent unit of each held-out point: its run within its split."""
    return p["split"].astype(str) + "|" + p["run_id"].astype(str)


def _shrunk(own: Mapping[str, Any], pooled: Mapping[str, Any], g: pd.DataFrame, u0: float) -> dict[str, Any]:
    """A domain's slopes shrunk towards the pooled ones (variance scale, ``u0`` pseudo-runs of the pooled)."""
    out: dict[str, Any] = {}
    for a in AXES:
        if own.get(a) is None or pooled.get(a) is None:
            out[a] = own.get(a)
            continue
        u = float(_units(g[g[f"delta_{a}"] > 0]).nunique())
        out[a] = float(np.sqrt((u * own[a] ** 2 + u0 * pooled[a] ** 2) / (u + u0))) if u + u0 > 0 else own[a]
    return out


def _slopes(p: pd.DataFrame, options: Mapping[str, Any]) -> dict[str, Any]:
    """``{axis: kappa}`` of held-out points ``p`` (``None`` where not estimable)."""
    if p.empty:
        return {a: None for a in AXES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        k = estimate_kappa(p["log_error"], p["log_sd"] ** 2, {a: p[f"delta_{a}"] for a in AXES},
                           units=_units(p).to_numpy(), **options)
    return {a: k.get(a) for a in AXES}


def _reach(pts: pd.DataFrame, target: str) -> dict[str, float | None]:
    """``{axis: farthest distance}`` at which ``target``'s held-out points measured the law's error (None: none).

    The slopes are measured out to here; beyond it a band's growth is the slope carried on, an assumption
    (:func:`bayes_dcpt.posterior.extrapolation.beyond_reach` says so with a question asked farther out).
    """
    p = pts[pts["target"] == target] if len(pts) else pts
    out: dict[str, float | None] = {}
    for a in AXES:
        d = p[f"delta_{a}"].to_numpy(float) if f"delta_{a}" in p else np.zeros(0)
        d = d[np.isfinite(d) & (d > 0)]
        out[a] = float(d.max()) if d.size else None
    return out


def _larger_slopes(each: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per axis the larger slope of several origins' estimates, per domain too."""
    out: dict[str, Any] = {a: _larger(*(k.get(a) for k in each)) for a in AXES}
    domains = sorted({d for k in each for d in (k.get("domains") or {})})
    if domains:
        out["domains"] = {d: {a: _larger(*((k.get("domains") or {}).get(d, {}).get(a) for k in each))
                              for a in AXES} for d in domains}
    return out


def _larger(*values: float | None) -> float | None:
    """The largest of the measured slopes (``None``: no origin measured it)."""
    known = [float(v) for v in values if v is not None]
    return max(known) if known else None


def holdout_table(scores: Sequence[HoldoutScore]) -> pd.DataFrame:
    """One row per (law, split, target): held-out elpd (se), runs, points, MAPE (%), coverage, refit seconds.

    ``refit_ok``: the refit passed the full fit's sampler checks; ``refit_unconverged``: why its draws cannot be
    trusted to average the held-out densities (:func:`_unconverged`, after any retry; empty when they can), so
    that the score, and the weights and discrepancy measured from it, may move with the seed.
    """
    if not scores:
        return pd.DataFrame(columns=["law", "split", "target", "elpd", "se", "n_runs", "n_points", "mape",
                                     "coverage", "seconds", "refit_ok", "refit_unconverged"])
    return pd.concat([s.summary().assign(seconds=s.seconds, refit_ok=s.info.get("sampler_ok", True),
                                         refit_unconverged="; ".join(s.info.get("unconverged", ())))
                      for s in scores], ignore_index=True)


def attach(fit: Any, scores: Sequence[HoldoutScore], seconds: float, refit: Mapping[str, Any] | None) -> Any:
    """Store the discrepancy, the envelope and the held-out summary on ``fit`` (and its posterior)."""
    kappa = discrepancy_from_scores(scores, fit.targets)
    fit.posterior.ctx["discrepancy"] = kappa
    attach_data_context(fit.posterior, fit.fitted_data(), streams="streams" not in fit.posterior.ctx)
    fit.extrapolation = {"discrepancy": kappa, "streams": stream_summary(fit.posterior.ctx),
                         "splits": [s.split for s in scores],
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
    # the data streams measured once, on the rows the fit fitted: the refits take their variances, the fit keeps them
    fit.posterior.ctx["streams"] = stream_deviations(fit.posterior, fit.fitted_data())
    scores = holdout_scores(fit, splits, seed=seed, refit=refit)
    return attach(fit, scores, time.perf_counter() - t0, refit)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN as None)."""
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else (v.item() if hasattr(v, "item") else v))
             for k, v in row.items()} for row in table.to_dict(orient="records")]
