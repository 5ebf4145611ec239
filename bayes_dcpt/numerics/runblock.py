"""One run-block likelihood: the checkpoints of a run share an offset, so they are not independent.

A run's log losses are ``y_i = m_i + u + e_i`` with the run offset ``u ~ Normal(0, tau)`` and the checkpoint
noise ``e_i ~ Normal(0, sigma)``. Integrating ``u`` out leaves one multivariate normal per run with the
compound-symmetric covariance ``Sigma = sigma^2 I + tau^2 11'``, whose inverse and determinant are closed form
(Sherman-Morrison), so a run enters through three sums of its residuals ``e = y - m``::

    den = sigma^2 + n tau^2
    log|Sigma| = (n - 1) log sigma^2 + log den
    Q = e' Sigma^-1 e = (sum e^2 - tau^2 (sum e)^2 / den) / sigma^2

Robust form (the fit's default): the run's vector is multivariate Student-t(nu) with the same scale matrix, one
normal scale mixture per run ``(u, e) | w ~ Normal(0, w Sigma)``, ``w ~ InvGamma(nu/2, nu/2)``: an outlying run
is down-weighted as a whole and every single measurement is Student-t.

:func:`run_terms` is that formula on the sums, written once for numpy and PyTensor (the PyMC likelihood, the
SMC refit, the planner's information and the posterior update all call it). :func:`loo_pointwise` gives the
leave-one-out terms ``log p(y_i | y_-i)`` of this non-factorised model (Burkner, Gabry & Vehtari 2021).
:func:`latent_student_log_likelihood` is the older per-checkpoint Student-t with a normal offset (fits made with
``run_offsets="latent"``), integrated by adaptive Gauss-Hermite quadrature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import gammaln, logsumexp

__all__ = [
    "RunBlocks",
    "block_log_likelihood",
    "latent_student_log_likelihood",
    "loo_conditional",
    "loo_log_density",
    "loo_pointwise",
    "run_sums",
    "run_terms",
    "weighted_run_terms",
]

LOG_2PI = float(np.log(2.0 * np.pi))
_GH_NODES = 24


def run_terms(xp: Any, s1: Any, s2: Any, n: Any, var_e: Any, var_u: Any, nu: Any = None) -> Any:
    """Log-likelihood of each run from its residual sums (``xp`` is numpy or ``pytensor.tensor``).

    ``s1 = sum e``, ``s2 = sum e^2`` and ``n`` (the run's size) broadcast against ``var_e = sigma^2``,
    ``var_u = tau^2`` and ``nu`` (``None``: Normal). A run of size 0 contributes exactly 0.
    """
    den = var_e + n * var_u
    logdet = (n - 1.0) * xp.log(var_e) + xp.log(den)
    q = (s2 - var_u * s1**2 / den) / var_e
    if nu is None:
        return -0.5 * (n * LOG_2PI + logdet + q)
    lgamma = getattr(xp, "gammaln", gammaln)
    return (lgamma(0.5 * (nu + n)) - lgamma(0.5 * nu) - 0.5 * n * xp.log(nu * np.pi) - 0.5 * logdet
            - 0.5 * (nu + n) * xp.log1p(q / nu))


def weighted_run_terms(xp: Any, w0: Any, w1: Any, w2: Any, logvar: Any, n: Any, var_u: Any, nu: Any = None) -> Any:
    """:func:`run_terms` when the checkpoints of a run have their own noise variances ``v_i``.

    The run enters through ``w0 = sum 1/v``, ``w1 = sum e/v``, ``w2 = sum e^2/v`` and ``logvar = sum log v``:
    with ``Sigma = diag(v) + tau^2 11'``, ``log|Sigma| = logvar + log(1 + tau^2 w0)`` and
    ``e' Sigma^-1 e = w2 - tau^2 w1^2 / (1 + tau^2 w0)``. Equal variances give :func:`run_terms`.
    """
    logdet = logvar + xp.log1p(var_u * w0)
    q = w2 - var_u * w1**2 / (1.0 + var_u * w0)
    if nu is None:
        return -0.5 * (n * LOG_2PI + logdet + q)
    lgamma = getattr(xp, "gammaln", gammaln)
    return (lgamma(0.5 * (nu + n)) - lgamma(0.5 * nu) - 0.5 * n * xp.log(nu * np.pi) - 0.5 * logdet
            - 0.5 * (nu + n) * xp.log1p(q / nu))


def _run_grouping(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inv, order, starts)``: each column's run (0 .. R - 1, sorted labels), the stable sort by run, run starts."""
    _, inv = np.unique(np.asarray(runs), return_inverse=True)
    order = np.argsort(inv, kind="stable")
    srt = inv[order]
    return inv, order, np.flatnonzero(np.r_[True, srt[1:] != srt[:-1]])


def run_sums(e: np.ndarray, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sum e, sum e^2, n)`` per run over the last axis of ``e``; ``runs`` labels each column (any values)."""
    inv, order, starts = _run_grouping(runs)
    es = np.asarray(e, float)[..., order]
    s1 = np.add.reduceat(es, starts, axis=-1)
    s2 = np.add.reduceat(es * es, starts, axis=-1)
    n = np.diff(np.r_[starts, len(inv)]).astype(float)
    return s1, s2, n


class RunBlocks:
    """The observations laid out as a (run, checkpoint) matrix: one row per run, padded to the longest run.

    A law evaluated on this layout takes its run-level inputs (size, ratio, the run's parameters) as ``(R, 1)``
    columns, so everything that does not change along a run (``N^-alpha``, ``(r + eps)^-gamma``, the gathers of
    the parameters) is computed once per run instead of once per checkpoint, and a run's residual sums are row
    sums: on 200 checkpoints per run the log-density and its gradient cost a fifth (BENCHMARKS.md, scale).
    ``run_idx`` labels each observation's run by ``0 .. R - 1``.
    """

    def __init__(self, run_idx: np.ndarray):
        runs = np.asarray(run_idx, np.int64)
        self.rows = runs
        self.n_runs = int(runs.max()) + 1 if runs.size else 0
        counts = np.bincount(runs, minlength=self.n_runs)
        order = np.argsort(runs, kind="stable")
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        cols = np.empty(runs.size, np.int64)
        cols[order] = np.arange(runs.size) - starts[runs[order]]
        self.cols = cols
        self.first = order[starts[counts > 0]] if runs.size else np.zeros(0, np.int64)  # each run's first obs
        self.width = int(counts.max()) if runs.size else 0
        self.counts = counts.astype(float)

    def matrix(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """``values`` (one per observation) as an ``(R, K)`` matrix, the padding filled with ``fill``."""
        out = np.full((self.n_runs, self.width), fill, float)
        out[self.rows, self.cols] = np.asarray(values, float)
        return out

    def mask(self) -> np.ndarray:
        """1 where a cell holds an observation, 0 in the padding."""
        return self.matrix(np.ones(self.rows.size))

    def per_run(self, values: np.ndarray) -> np.ndarray | None:
        """One value per run when ``values`` is constant along every run, else None."""
        v = np.asarray(values)
        first = v[self.first]
        return first if np.array_equal(first[self.rows], v) else None

    def column(self, values: np.ndarray, fill: float = 1.0) -> np.ndarray:
        """``values`` as an ``(R, 1)`` column when constant along every run, else as an ``(R, K)`` matrix."""
        run = self.per_run(np.asarray(values, float))
        return run[:, None].astype(float) if run is not None else self.matrix(values, fill)


def block_log_likelihood(e: np.ndarray, runs: np.ndarray, sigma: Any, tau: Any, nu: Any = None) -> np.ndarray:
    """Sum over runs of the run-block log-likelihood of residuals ``e`` (``(S, n)``): shape ``(S,)``.

    ``sigma``, ``tau`` and ``nu`` are per draw ``(S,)`` (or scalars); ``sigma`` may be ``(S, n)`` when each
    checkpoint has its own noise scale; ``nu=None`` is the Normal form.
    """
    col = lambda v: None if v is None else np.asarray(v, float).reshape(-1, 1)  # noqa: E731
    sigma = np.asarray(sigma, float)
    if sigma.ndim == 2:  # each checkpoint its own noise variance: the weighted form
        v = sigma**2
        w0, _, n = run_sums(1.0 / v, runs)
        w1 = run_sums(e / v, runs)[0]
        w2 = run_sums(e / sigma, runs)[1]
        lv = run_sums(np.log(v), runs)[0]
        return np.sum(weighted_run_terms(np, w0, w1, w2, lv, n[None, :], col(tau) ** 2, col(nu)), axis=-1)
    s1, s2, n = run_sums(e, runs)
    return np.sum(run_terms(np, s1, s2, n[None, :], col(sigma) ** 2, col(tau) ** 2, col(nu)), axis=-1)


def _grouped_sums(arrays: Sequence[np.ndarray], run_idx: np.ndarray) -> list[np.ndarray]:
    """Per observation, the sum over its run of each array's last axis: one sort for all of them."""
    inv, order, starts = _run_grouping(run_idx)
    return [np.add.reduceat(a[..., order], starts, axis=-1)[..., inv] for a in arrays]


def loo_conditional(e: np.ndarray, run_idx: np.ndarray, sigma: Any, tau: Any, nu: Any = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Each observation's predictive given the rest of its run: ``(resid, scale, dof)``, each ``(S, n)``.

    ``resid`` is ``y_i`` minus its conditional mean, ``scale`` the conditional scale and ``dof`` the degrees of
    freedom (``None`` for the Normal form) of a location-scale Normal / Student-t (Burkner, Gabry & Vehtari
    2021): for the Normal, variance ``1 / cbar_ii`` with ``cbar = diag(Sigma^-1)``; for the Student-t,
    ``nu + n - 1`` degrees of freedom and the scale multiplied by ``(nu + q_-i) / (nu + n - 1)``, ``q_-i`` the
    quadratic form of the other members of the run. ``sigma``, ``tau``, ``nu`` broadcast against ``e``.
    """
    e = np.asarray(e, float)
    var_e = np.broadcast_to(np.asarray(sigma, float) ** 2, e.shape)  # each checkpoint's own noise variance
    var_u = np.asarray(tau, float) ** 2
    # per run: w0 = sum 1/v, w1 = sum e/v, w2 = sum e^2/v, n; mapped back to each observation
    prec = 1.0 / var_e
    ep = e * prec
    w0, w1, w2, n = _grouped_sums([prec, ep, e * ep, np.ones(e.shape[-1])], run_idx)
    den = 1.0 + var_u * w0
    cbar = (1.0 - var_u / (var_e * den)) / var_e  # diagonal of Sigma^-1
    g = (e - var_u * w1 / den) / var_e  # Sigma^-1 e
    resid = g / cbar  # y_i minus its conditional mean given the rest of its run
    var_c = 1.0 / cbar
    if nu is None:
        return resid, np.sqrt(var_c), None
    nu = np.asarray(nu, float)
    q_rest = (w2 - var_u * w1**2 / den) - resid**2 / var_c
    dof = nu + n - 1.0
    return resid, np.sqrt(var_c * (nu + np.maximum(q_rest, 0.0)) / dof), np.broadcast_to(dof, e.shape)


def loo_log_density(resid: np.ndarray, scale: np.ndarray, dof: np.ndarray | None) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` from :func:`loo_conditional`'s ``(resid, scale, dof)``."""
    if dof is None:
        return -0.5 * (LOG_2PI + 2.0 * np.log(scale) + (resid / scale) ** 2)
    return (gammaln(0.5 * (dof + 1.0)) - gammaln(0.5 * dof) - 0.5 * np.log(dof * np.pi) - np.log(scale)
            - 0.5 * (dof + 1.0) * np.log1p((resid / scale) ** 2 / dof))


def loo_pointwise(e: np.ndarray, run_idx: np.ndarray, sigma: Any, tau: Any, nu: Any = None) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` per draw and observation, shape ``(S, n)`` (numpy).

    ``e`` is ``(S, n)`` residuals from the law; ``sigma``, ``tau`` and ``nu`` broadcast against it (each
    observation's own values); ``run_idx`` is ``(n,)``. Summed over a run's members these are not its joint
    log-likelihood; they are the leave-one-out predictive terms that PSIS-LOO needs (non-factorised model).
    """
    return loo_log_density(*loo_conditional(e, run_idx, sigma, tau, nu))


def latent_student_log_likelihood(
    e: np.ndarray, runs: np.ndarray, sigma: np.ndarray, tau: np.ndarray, nu: np.ndarray
) -> np.ndarray:
    """Sum over runs of ``log int prod_i t_nu(e_i - u; sigma) N(u; 0, tau) du`` (adaptive Gauss-Hermite): ``(S,)``.

    The likelihood of fits with sampled (``"latent"``) run offsets: each checkpoint Student-t, the offset normal.
    """
    x, wq = np.polynomial.hermite_e.hermegauss(_GH_NODES)  # probabilists': weight exp(-x^2/2)
    lwq = np.log(wq / np.sqrt(2 * np.pi))
    S = e.shape[0]
    out = np.zeros(S)
    sig, ta, nu_ = sigma[:, None], np.maximum(tau, 1e-12)[:, None], np.maximum(nu, 1e-6)[:, None]
    var_e = sig**2 * np.where(nu_ > 2.5, nu_ / (nu_ - 2.0), 5.0)
    c_t = gammaln((nu_ + 1) / 2) - gammaln(nu_ / 2) - 0.5 * np.log(nu_ * np.pi) - np.log(sig)
    for rr in np.unique(runs):
        er = e[:, runs == rr]  # (S, k)
        k = er.shape[1]
        v = 1.0 / (1.0 / ta**2 + k / var_e)  # Gaussian posterior of the offset: the starting point
        mu = v * er.sum(axis=1, keepdims=True) / var_e
        # adaptive Gauss-Hermite (Liu & Pierce 1994): centre on the integrand's mode, scale by its curvature
        ns2 = nu_ * sig**2
        for _ in range(8):
            x_ = er - mu
            d1 = np.sum((nu_ + 1) * x_ / (ns2 + x_**2), axis=1, keepdims=True) - mu / ta**2
            d2 = -np.sum((nu_ + 1) * (ns2 - x_**2) / (ns2 + x_**2) ** 2, axis=1, keepdims=True) - 1 / ta**2
            mu = np.where(d2 < 0, mu - d1 / np.where(d2 < 0, d2, -1.0), mu)
        x_ = er - mu
        d2 = -np.sum((nu_ + 1) * (ns2 - x_**2) / (ns2 + x_**2) ** 2, axis=1, keepdims=True) - 1 / ta**2
        sd = np.where(d2 < 0, 1.0 / np.sqrt(np.abs(d2)), np.sqrt(v))
        u = mu + sd * x[None, :]  # (S, Q)
        z = (er[:, :, None] - u[:, None, :]) / sig[:, :, None]  # (S, k, Q)
        lt = c_t[:, :, None] - (nu_[:, :, None] + 1) / 2 * np.log1p(z**2 / nu_[:, :, None])
        lg = -0.5 * (u / ta) ** 2 - np.log(ta) - 0.5 * np.log(2 * np.pi)
        lq = -0.5 * x[None, :] ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)  # density of the node under q
        integrand = lt.sum(axis=1) + lg - lq + lwq[None, :]
        out += logsumexp(integrand, axis=1)
    return out
