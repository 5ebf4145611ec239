"""How far a prediction lies outside the data, and how fast the law's error grows out there.

A law fitted to probes is trusted most where the probes are; beyond them (more tokens, a larger model, a ratio
nobody ran) its error grows with the distance, and the posterior of the law's parameters does not know that: it
assumes the law is right. This module measures the data's *envelope* and a prediction's *distances* beyond it, and
estimates from held-out errors (:mod:`~bayes_dcpt.fitting.holdout`) how the log error's standard deviation grows
with each distance (the model discrepancy ``kappa``, Kennedy & O'Hagan 2001 in its simplest form)::

    log y - E[log f] ~ Normal(0, v + sum_a (kappa_a Delta_a)^2),   a in {tokens, size, ratio}

``v`` is the held-out predictive variance without the discrepancy. Distances (natural-log units for tokens and
size, share units for the ratio), for a row of domain ``d`` at size N, tokens D and domain share r::

    Delta_tokens = max(0, log(D / d_max[N]))          d_max[N]: the largest tokens probed at size N in domain d
                                                      (at a size nobody probed: the largest at any size)
    Delta_size   = max(0, log(N / n_max)) + max(0, log(n_min / N))
    Delta_ratio  = min over probed ratios r' of |r - r'|

The same module holds the stacking of held-out predictive densities (Yao, Vehtari, Simpson & Gelman 2018) that
weighs the laws of ``law="auto"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import minimize
from scipy.special import logsumexp

from bayes_dcpt.data import schema as _data
from bayes_dcpt.posterior.extrapolation import thin_domains
from bayes_dcpt.posterior.streams import stream_deviations

__all__ = ["AXES", "attach_data_context", "data_envelope", "estimate_kappa", "extrapolation_distances",
           "fit_thin_domains", "size_key", "stacking_weight_interval", "stacking_weights"]

#: The directions of extrapolation, in the order of ``ctx["discrepancy"][target]``.
AXES = ("tokens", "size", "ratio")
_KAPPA_MAX = 5.0
#: Degrees of freedom of the half-t prior on a discrepancy slope (``estimate_kappa(uncertainty=True)``): heavy
#: enough a tail that a large slope the data show is not shrunk (a half-normal pulled a true 0.05 to 0.045 from
#: 1,000 errors), with a finite prior variance.
PRIOR_DOF = 3.0


def size_key(n_params: float) -> str:
    """The key of a model size in ``envelope[domain]["d_max"]``: ``str(float(n_params))``, e.g. ``"443232.0"``."""
    return str(float(n_params))


def data_envelope(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per domain, where the CPT probes are: ``n_min``, ``n_max``, ``d_max`` and ``d_min`` per size, the ratios.

    Returns ``{domain: {"n_max": float, "n_min": float, "d_max": {size_key(N): max tokens at N},
    "d_min": {size_key(N): min tokens at N}, "ratios": [r]}}`` from the rows with ``tokens > 0`` (the base rows are
    not probes of CPT). ``d_min`` is the earliest fitted checkpoint (the LR warm-up's rows are left out of ``df``
    by the fit): the law describes no data before it. ``ratios`` are the domain shares ``r_domain`` probed, sorted.
    """
    cpt = _data.fit_rows(df)
    out: dict[str, dict[str, Any]] = {}
    for dom, g in cpt.groupby("domain"):
        by_size = g.groupby("n_params")["tokens"]
        out[str(dom)] = {
            "n_max": float(g["n_params"].max()),
            "n_min": float(g["n_params"].min()),
            "d_max": {size_key(n): float(v) for n, v in by_size.max().items()},
            "d_min": {size_key(n): float(v) for n, v in by_size.min().items()},
            "ratios": sorted(float(r) for r in g["r_domain"].dropna().unique()),
        }
    return out


def fit_thin_domains(fit: Any) -> dict[str, dict[str, float]]:
    """:func:`~bayes_dcpt.posterior.extrapolation.thin_domains` of a fit: its posterior's envelope, else its data's.

    Empty for a fit without fitted data (a loaded fit keeps its data; a bare posterior has none).
    """
    env = (getattr(getattr(fit, "posterior", None), "ctx", None) or {}).get("envelope")
    if env is None:
        data = getattr(fit, "fitted_data", None)
        if not callable(data):
            return {}
        env = data_envelope(data())
    return thin_domains(env)


def attach_data_context(post: Any, df: pd.DataFrame, *, streams: bool = True) -> None:
    """Store on ``post.ctx`` what predictions beyond the data read: the envelope and the data streams' deviations.

    ``df``: the rows the model was fitted to (``fit.fitted_data()``: the LR warm-up left out, as the fit leaves it
    out; the streams' residuals are the law's on those rows).

    ``streams``: what runs of other sizes on the same data stream deviated from the law
    (:mod:`bayes_dcpt.posterior.streams`); saved fits from before it leave it out and predict as they did.
    """
    post.ctx["envelope"] = data_envelope(df)
    if streams:
        post.ctx["streams"] = stream_deviations(post, df)


def extrapolation_distances(frame: pd.DataFrame, envelope: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The distances ``Delta_tokens``, ``Delta_size``, ``Delta_ratio`` of each row beyond ``envelope``.

    ``frame`` has ``domain, n_params, tokens, r_domain`` (raw counts); a domain missing from the envelope gets NaN.
    Returns a frame with columns ``tokens``, ``size``, ``ratio`` aligned with ``frame``'s rows.
    """
    n = len(frame)
    out = {a: np.full(n, np.nan) for a in AXES}
    doms = frame["domain"].astype(str).to_numpy()
    N = frame["n_params"].to_numpy(float)
    D = frame["tokens"].to_numpy(float)
    r = frame["r_domain"].to_numpy(float)
    for dom in np.unique(doms):
        env = envelope.get(str(dom))
        if env is None:
            continue
        m = doms == dom
        d_max = {float(k): float(v) for k, v in env["d_max"].items()}
        widest = max(d_max.values())
        dm = np.array([d_max.get(float(x), widest) for x in N[m]])
        with np.errstate(divide="ignore", invalid="ignore"):
            out["tokens"][m] = np.maximum(0.0, np.log(D[m] / dm))
            out["size"][m] = np.maximum(0.0, np.log(N[m] / env["n_max"])) + np.maximum(0.0,
                                                                                       np.log(env["n_min"] / N[m]))
        ratios = np.asarray(env["ratios"], float)
        out["ratio"][m] = np.min(np.abs(r[m, None] - ratios[None, :]), axis=1) if ratios.size else np.nan
    return pd.DataFrame(out, index=frame.index)


def _neg_log_lik(u: np.ndarray, e2: np.ndarray, v: np.ndarray, d2: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of errors ``e`` (``e2 = e^2``) and its gradient in ``u = kappa^2``.

    On the variance scale ``u``, not in ``kappa``: the gradient in ``kappa`` is ``2 kappa`` times this one, so it
    vanishes at ``kappa = 0`` whatever the data, and a first step that overshot to the bound stopped there as if
    converged (the long-CPT grid's early-origin errors, whose NLL is least at 0.0035, gave 0).
    """
    s = v + d2 @ u
    nll = 0.5 * float(np.sum(np.log(s) + e2 / s))
    ds = 0.5 * (1.0 / s - e2 / s**2)  # d nll / d s
    return nll, ds @ d2


def estimate_kappa(log_error: Any, variance: Any, distances: Mapping[str, Any], *, units: Any = None,
                   uncertainty: bool = False, prior_scale: float = 1.0, prior_dof: float = PRIOR_DOF,
                   min_points: int = 3, coverage: float | None = None) -> dict[str, float | None]:
    """Discrepancy slopes from held-out log errors: the maximum-likelihood slopes, or with their uncertainty.

    Parameters
    ----------
    log_error
        ``log y - E[log f]`` of each held-out measurement.
    variance
        Its predictive variance without the discrepancy (the held-out refit's band, on the log scale).
    distances
        ``{axis: Delta}`` per measurement for the axes to estimate (e.g. ``{"tokens": ..., "size": ...}``).
    units
        The independent unit of each measurement (its run): a run's held-out errors share its offset and the
        law's misfit along its curve, so the evidence about a slope is counted per run, not per checkpoint. None:
        every measurement is its own unit.
    uncertainty
        ``False`` (default): the maximum-likelihood slopes. ``True``: each slope is ``sqrt(E[kappa^2])`` under its
        posterior (Notes), so that the band's variance averages over what the held-out errors leave open. Measured
        side by side, not the default (Notes).
    prior_scale, prior_dof
        The slope's half-t prior: scale (in units of ``sqrt(median variance)`` per unit of distance) and degrees of
        freedom (``inf``: half-normal).
    min_points
        An axis with fewer measurements at a positive distance is not estimated (``None``).
    coverage
        None (default): the likelihood's slopes. A level (e.g. 0.9): each axis's slope is the split-conformal one,
        at which a new run's held-out measurement would fall inside its central ``coverage`` Normal band with that
        probability, each run weighing as one (:func:`_coverage_kappa`; the other axes at their
        maximum-likelihood slopes; ``uncertainty`` does not apply). Measured side by side, not the default
        (BENCHMARKS.md, "The warm-up in the held-out refits").

    Returns
    -------
    dict
        ``{axis: kappa}`` (>= 0; the log error's extra sd per unit of distance), ``None`` where not estimable.

    Notes
    -----
    With ``uncertainty=True`` the posterior of each slope, the other axes at their maximum-likelihood values, is
    computed on a grid: the Normal likelihood above raised to the power ``runs / measurements`` (the evidence of
    one measurement per run) times a half-t prior (``prior_dof``, default 3) with scale ``prior_scale *
    sqrt(median variance)`` -- a priori the error grows by about the noise the data show per e-fold of distance
    (natural-log units) -- and the band uses ``kappa_eff = sqrt(E[kappa^2])``. It was built because, calibrated on
    a few held-out runs, the maximum-likelihood slope often lands on 0 while bands reaching two to four times
    further cover 63-77%. Measured on the same fits and refits (BENCHMARKS.md, "The discrepancy slope with its
    uncertainty"), it does not fix that: the token splits under-cover because the errors beyond the data are
    larger than those the calibration saw, not because the slope is uncertain; and where the calibration has a
    handful of runs (the size splits) the prior widens bands to 0.97-1.00. So the default stays the
    maximum-likelihood slope.
    """
    e = np.asarray(log_error, float)
    v = np.asarray(variance, float)
    u = np.arange(len(e)) if units is None else np.asarray(units)
    axes = list(distances)
    d = np.stack([np.asarray(distances[a], float) for a in axes], axis=1) if axes else np.zeros((len(e), 0))
    ok = np.isfinite(e) & np.isfinite(v) & (v > 0) & np.all(np.isfinite(d), axis=1)
    e, v, d, u = e[ok], v[ok], d[ok], u[ok]
    usable = [int(np.sum(d[:, j] > 0)) >= min_points for j in range(len(axes))]
    out: dict[str, float | None] = {a: None for a in axes}
    if not any(usable):
        return out
    cols = [j for j, ok_ in enumerate(usable) if ok_]
    d2 = d[:, cols] ** 2
    e2 = e**2
    # start from the moment estimate of each axis on its own points (on the variance scale, u = kappa^2)
    x0 = np.array([max(np.mean((e2 - v)[d[:, j] > 0] / d2[d[:, j] > 0, k]), 0.0) for k, j in enumerate(cols)])
    res = minimize(_neg_log_lik, np.minimum(x0, _KAPPA_MAX**2), args=(e2, v, d2), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, _KAPPA_MAX**2)] * len(cols))
    ml = np.sqrt(np.maximum(np.asarray(res.x, float), 0.0))
    if coverage is not None:
        return {**out, **{axes[j]: _coverage_kappa(k, ml, e2, v, d2, u, coverage) for k, j in enumerate(cols)}}
    for k, j in enumerate(cols):
        out[axes[j]] = float(ml[k]) if not uncertainty else _posterior_kappa(k, ml, e2, v, d2, u, prior_scale,
                                                                                 prior_dof)
    return out


def _coverage_kappa(k: int, ml: np.ndarray, e2: np.ndarray, v: np.ndarray, d2: np.ndarray, units: np.ndarray,
                    level: float) -> float:
    """The smallest slope of axis ``k`` whose ``level`` bands hold a ``level`` share of its held-out measurements.

    Measurement ``i`` at distance ``Delta_i`` is inside its central ``level`` Normal band when ``e_i^2 <= z^2 (b_i +
    kappa^2 Delta_i^2)`` (``b_i``: its variance without this axis's term), so it needs ``kappa_i = sqrt(max(0,
    e_i^2 / z^2 - b_i)) / Delta_i``; the slope is a quantile of the ``kappa_i``, each run's measurements weighing
    ``1 / (its count)``: split-conformal calibration with the band's sd as the scale, at the finite-sample level
    ``ceil((n + 1) level) / n`` of ``n`` runs (Vovk et al. 2005; Lei et al. 2018), so that a new run falls inside
    with probability ``level`` whatever the errors' distribution (nine runs: their largest need; 45: the 0.93
    quantile), where the likelihood's slope fits their bulk.
    """
    on = d2[:, k] > 0
    base = v[on] + (np.delete(d2[on], k, axis=1) @ np.delete(ml, k) ** 2 if len(ml) > 1 else 0.0)
    z2 = float(stats.norm.ppf(0.5 + level / 2.0)) ** 2
    need = np.sqrt(np.maximum(e2[on] / z2 - base, 0.0) / d2[on, k])
    _, inv, counts = np.unique(units[on], return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv]
    order = np.argsort(need)
    cum = np.cumsum(w[order]) / w.sum()
    q = min(1.0, np.ceil((len(counts) + 1) * level) / len(counts))
    return float(min(need[order][min(np.searchsorted(cum, q - 1e-12), len(need) - 1)], _KAPPA_MAX))


def _posterior_kappa(k: int, ml: np.ndarray, e2: np.ndarray, v: np.ndarray, d2: np.ndarray, units: np.ndarray,
                     prior_scale: float, prior_dof: float, n_grid: int = 400) -> float:
    """``sqrt(E[kappa_k^2])`` on a grid: the tempered likelihood (other slopes at ``ml``) times a half-t prior."""
    on = d2[:, k] > 0
    base = v[on] + (np.delete(d2[on], k, axis=1) @ np.delete(ml, k) ** 2 if len(ml) > 1 else 0.0)
    scale = prior_scale * float(np.sqrt(np.median(v)))
    temper = len(np.unique(units[on])) / int(on.sum())
    reach = float(np.median(np.sqrt(d2[on, k])))
    grid = np.linspace(0.0, max(10.0 * scale / reach, 4.0 * float(ml[k])), n_grid)
    s = base[None, :] + grid[:, None] ** 2 * d2[on, k][None, :]
    loglik = -0.5 * np.sum(np.log(s) + e2[on][None, :] / s, axis=1)
    z2 = (grid / scale) ** 2
    logp = temper * loglik + (-0.5 * z2 if not np.isfinite(prior_dof) else -0.5 * (prior_dof + 1) * np.log1p(
        z2 / prior_dof))
    p = np.exp(logp - logsumexp(logp))
    return float(min(np.sqrt(np.sum(p * grid**2)), _KAPPA_MAX))


def stacking_weights(lpd: Any, unit_weights: Any = None) -> np.ndarray:
    """Stacking weights of predictive densities (Yao et al. 2018): maximise ``sum_i log sum_k w_k p_k(y_i)``.

    ``lpd`` is ``(n, K)``: the log predictive density of held-out unit ``i`` (a run) under candidate ``k``. A
    candidate whose density is not finite on a unit gets density 0 there. ``unit_weights`` (``(n,)``, default all
    1) weighs each unit's term (the Bayesian bootstrap of :func:`stacking_weight_interval`). Returns ``(K,)``
    weights on the simplex.
    """
    lp = np.asarray(lpd, float)
    if lp.ndim != 2 or lp.shape[1] < 1:
        raise ValueError("lpd must be (units, candidates)")
    K = lp.shape[1]
    if K == 1:
        return np.ones(1)
    lp = np.where(np.isfinite(lp), lp, -np.inf)
    keep = np.isfinite(lp).any(axis=1)
    lp = lp[keep]
    a = np.ones(len(keep)) if unit_weights is None else np.asarray(unit_weights, float)
    a = a[keep]
    lp = lp - lp.max(axis=1, keepdims=True)
    dens = np.exp(lp)

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        zz = np.r_[z, 0.0]
        w = np.exp(zz - logsumexp(zz))
        mix = dens @ w
        f = -float(np.sum(a * np.log(mix)))
        g_w = -(a[:, None] * dens / mix[:, None]).sum(axis=0)  # d f / d w
        g_z = w * (g_w - g_w @ w)  # through the softmax
        return f, g_z[:-1]

    res = minimize(objective, np.zeros(K - 1), jac=True, method="L-BFGS-B")
    zz = np.r_[res.x, 0.0]
    w = np.exp(zz - logsumexp(zz))
    w[w < 1e-6] = 0.0
    return w / w.sum()


#: Bayesian-bootstrap replicates behind :func:`stacking_weight_interval`.
WEIGHT_BOOTSTRAP = 200


def stacking_weight_interval(lpd: Any, prob: float = 0.9, n_boot: int = WEIGHT_BOOTSTRAP,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """How firmly the held-out units settle the stacking weights: a ``prob`` interval per candidate, ``(lo, hi)``.

    The Bayesian bootstrap over the held-out units (Rubin 1981; as Yao et al. 2018 use it for pseudo-BMA+): each
    replicate weighs the units by a Dirichlet(1, ..., 1) draw and re-solves the stacking weights. Few held-out
    runs, or laws that predict them about equally well, give wide intervals: the law choice is then not settled by
    the data, and another seed's refits (whose Monte Carlo error moves each run's density a little) may move the
    weights.
    """
    lp = np.asarray(lpd, float)
    if lp.ndim != 2 or lp.shape[1] < 2 or lp.shape[0] < 2:  # one law or one unit: nothing to resample
        w = stacking_weights(lp)
        return w.copy(), w.copy()
    rng = np.random.default_rng(seed)
    reps = np.array([stacking_weights(lp, rng.dirichlet(np.ones(lp.shape[0])) * lp.shape[0])
                     for _ in range(n_boot)])
    q = (1.0 - prob) / 2.0
    return np.quantile(reps, q, axis=0), np.quantile(reps, 1.0 - q, axis=0)
