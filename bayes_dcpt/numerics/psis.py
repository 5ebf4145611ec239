"""Pareto-smoothed importance sampling (PSIS), vectorised over rows of log weights.

Used to update a posterior cheaply when a probe lands (reweight the draws by the new runs' likelihood) and to
check the planner's information estimates; ``k-hat`` above 0.7 means the weights cannot be trusted and the
model must be refitted (Vehtari, Simpson, Gelman, Yao & Gabry 2024). The algorithm and constants follow
arviz-stats 1.x (``_psislw``); the tests compare the two.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from bayes_dcpt.errors import BayesDCPTError

__all__ = ["ess", "psis"]


def _tail_length(n: int) -> int:
    """Number of draws in the fitted tail (as arviz-stats: 3 sqrt(S) for S > 225, else S / 5)."""
    return int(np.floor(3 * np.sqrt(n))) if n > 225 else int(np.floor(n / 5))


def _gpdfit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zhang & Stephens (2009) GPD fit with the weakly informative prior on k, row-wise on sorted ``x``.

    ``x`` (rows, M) is ascending and >= 0. Returns ``(k, sigma)`` per row; ``k`` is NaN where the first
    quartile equals the minimum (the tail is far from a generalised Pareto distribution).
    """
    n = x.shape[1]
    m_est = 30 + int(np.sqrt(n))
    xstar = x[:, int(n / 4 + 0.5) - 1]
    bad = ~(xstar > x[:, 0])
    xs = np.where(bad, 1.0, xstar)
    xmax = np.where(bad, 1.0, x[:, -1])
    b = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        b = b[None, :] / (3.0 * xs[:, None]) + 1.0 / xmax[:, None]  # (rows, m)
        k_ary = np.log1p(-b[:, :, None] * x[:, None, :]).mean(axis=2)  # (rows, m)
        len_scale = n * (np.log(-b / k_ary) - k_ary - 1.0)
    len_scale = np.where(np.isfinite(len_scale), len_scale, -np.inf)
    bad |= ~np.isfinite(len_scale).any(axis=1)
    len_scale[bad] = 0.0
    w = np.exp(len_scale - logsumexp(len_scale, axis=1, keepdims=True))
    w = np.where(w >= 10 * np.finfo(float).eps, w, 0.0)
    w = w / w.sum(axis=1, keepdims=True)
    b_post = (b * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.log1p(-b_post[:, None] * x).mean(axis=1)
        sigma = -k / b_post
    k = (n * k + 10 * 0.5) / (n + 10)
    k = np.where(bad, np.nan, k)
    return k, sigma


def psis(log_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed importance sampling, row-wise over the last axis.

    Parameters
    ----------
    log_weights
        Unnormalised log importance ratios, shape ``(..., S)``.

    Returns
    -------
    log_w
        Smoothed, normalised log weights (``logsumexp == 0`` along the last axis).
    khat
        Pareto shape estimate per row (``-inf`` when the largest weights are all equal, i.e. bounded
        weights; NaN when the tail is too degenerate to fit).

    Notes
    -----
    The algorithm and constants follow arviz-stats 1.x (``_psislw``): the ``3 sqrt(S)`` largest weights are
    replaced by the quantiles of a generalised Pareto distribution fitted to them, capped at the largest
    raw weight. It is vectorised over rows so that the planner can check hundreds of simulated outcomes
    at once; the tests compare it with arviz-stats.
    """
    lw = np.asarray(log_weights, float)
    shape = lw.shape
    lw = lw.reshape(-1, shape[-1]).copy()
    rows, n = lw.shape
    lw[~np.isfinite(lw)] = -np.inf
    if not np.isfinite(lw.max(axis=1)).all():
        raise BayesDCPTError("every row of importance log-weights needs at least one finite value")
    lw -= lw.max(axis=1, keepdims=True)
    m = _tail_length(n)
    khat = np.full(rows, -np.inf)
    if m >= 5 and n > m:
        order = np.argsort(lw, axis=1, kind="stable")
        srt = np.take_along_axis(lw, order, axis=1)
        tail = srt[:, n - m :]
        cut = srt[:, n - m - 1]
        spread = tail[:, -1] - tail[:, 0]
        fit = spread > np.finfo(float).tiny
        if fit.any():
            ecut = np.exp(cut[fit])
            x = np.exp(tail[fit]) - ecut[:, None]
            k, sigma = _gpdfit(x)
            khat[fit] = k
            ok = np.isfinite(k) & (sigma > 0)
            if ok.any():
                p = np.arange(0.5, m) / m
                kk, ss = k[ok][:, None], sigma[ok][:, None]
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    q = np.where(
                        np.abs(kk) < 1e-12, -ss * np.log1p(-p), ss * np.expm1(-kk * np.log1p(-p)) / kk
                    )
                    sm = np.log(q + ecut[ok][:, None])
                sm = np.minimum(sm, tail[fit][ok][:, -1:])
                idx = np.flatnonzero(fit)[ok]
                srt[idx, n - m :] = sm
                np.put_along_axis(lw, order, srt, axis=1)
    lw -= logsumexp(lw, axis=1, keepdims=True)
    return lw.reshape(shape), khat.reshape(shape[:-1])


def ess(weights: np.ndarray) -> np.ndarray:
    """Effective sample size ``1 / sum(w^2)`` of normalised weights (last axis)."""
    w = np.asarray(weights, float)
    w = w / w.sum(axis=-1, keepdims=True)
    return 1.0 / np.sum(w**2, axis=-1)
