"""Per-run offsets integrated out of the likelihood (closed form), and the pointwise terms that LOO needs.

A run's checkpoints share one offset: ``y_ik = m_ik + u_k + e_ik`` with ``u_k ~ Normal(0, tau)`` and
``e_ik ~ Normal(0, sigma)``. Integrating ``u_k`` out leaves, per run, a multivariate normal with the
compound-symmetric covariance ``Sigma = sigma^2 I + tau^2 11'``, whose inverse and determinant are closed
form (Sherman-Morrison)::

    den = sigma^2 + n tau^2
    log|Sigma| = (n - 1) log sigma^2 + log den
    Q = e' Sigma^-1 e = (sum e^2 - tau^2 (sum e)^2 / den) / sigma^2

Why: sampled as latent variables, the offsets of the runs that share a mixture ratio trade off against the
law's ratio term (each run is one (N, r) cell), and NUTS crawls along that ridge: on the sampler benchmark's
960-point joint fit the minimum ESS rose from 24-54 to 180-230 and a warm refit fell from 40 s to 4 s once the
offsets were integrated out (BENCHMARKS.md). The posterior of the law's parameters is the same model.

Robust form (``robust=True``): the run's vector is multivariate Student-t with the same scale matrix, i.e. one
normal scale mixture per run, ``(u_k, e_k) | w_k ~ Normal(0, w_k Sigma)``, ``w_k ~ InvGamma(nu/2, nu/2)``:
an outlying run (a diverged or mislabelled probe) is down-weighted as a whole, and every single measurement is
still Student-t with ``nu`` degrees of freedom and scale ``sqrt(sigma^2 + tau^2)``. With one measurement
per run it is the univariate Student-t.

LOO: the pointwise term of a non-factorised model is ``log p(y_i | y_-i, theta)`` (Burkner, Gabry & Vehtari
2021, "Efficient leave-one-out cross-validation for Bayesian non-factorized normal and Student-t models",
Computational Statistics 36): for the normal, mean ``y_i - g_i / cbar_ii`` and variance ``1 / cbar_ii`` with
``g = Sigma^-1 e`` and ``cbar_ii`` the diagonal of ``Sigma^-1``; for the Student-t, ``nu + n - 1`` degrees of
freedom and the scale multiplied by ``(nu + q_-i) / (nu + n - 1)``, ``q_-i`` the quadratic form of the other
``n - 1`` members of the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln

__all__ = ["marginal_log_likelihood", "run_groups", "run_loglik", "run_loo_pointwise"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def run_groups(runs: list[str], targets: tuple[str, ...], capacity: int) -> np.ndarray:
    """Target index of every run slot (runs are keyed ``"<target>::<run_id>"``; empty slots get 0)."""
    out = np.zeros(capacity, dtype=np.int64)
    out[:len(runs)] = [targets.index(k.split("::", 1)[0]) for k in runs]
    return out


def run_loglik(e: Any, run_idx: Any, run_group: Any, sigma: Any, tau: Any, nu: Any | None,
               capacity: int) -> Any:
    """Joint log-likelihood (PyTensor scalar) of residuals ``e`` with the run offsets integrated out.

    ``run_idx`` maps each observation to its run (< ``capacity``), ``run_group`` each run slot to the index of
    its ``sigma`` / ``tau`` / ``nu`` (the target). Empty run slots contribute exactly zero.
    """
    import pytensor.tensor as pt

    zero = pt.zeros(capacity)
    s1 = pt.inc_subtensor(zero[run_idx], e)
    s2 = pt.inc_subtensor(zero[run_idx], e**2)
    n = pt.inc_subtensor(zero[run_idx], pt.ones_like(e))
    var_e, var_u = sigma[run_group] ** 2, tau[run_group] ** 2
    den = var_e + n * var_u
    logdet = (n - 1.0) * pt.log(var_e) + pt.log(den)
    q = (s2 - var_u * s1**2 / den) / var_e
    if nu is None:
        lp = -0.5 * (n * _LOG_2PI + logdet + q)
    else:
        v = nu[run_group]
        lp = (pt.gammaln(0.5 * (v + n)) - pt.gammaln(0.5 * v) - 0.5 * n * pt.log(v * np.pi) - 0.5 * logdet
              - 0.5 * (v + n) * pt.log1p(q / v))
    return pt.sum(lp)


def run_loo_pointwise(e: np.ndarray, run_idx: np.ndarray, sigma: np.ndarray, tau: np.ndarray,
                      nu: np.ndarray | None = None) -> np.ndarray:
    """``log p(y_i | y_-i, theta)`` per draw and observation, shape ``(S, n)`` (numpy).

    ``e`` is ``(S, n)`` residuals from the law; ``sigma``, ``tau`` and ``nu`` are ``(S, n)`` (each
    observation's own values); ``run_idx`` is ``(n,)``. Summed over a run's members these are not its joint
    log-likelihood; they are the leave-one-out predictive terms that PSIS-LOO needs (non-factorised model).
    """
    e = np.asarray(e, float)
    _, inv = np.unique(np.asarray(run_idx), return_inverse=True)
    onehot = np.zeros((e.shape[1], inv.max() + 1))
    onehot[np.arange(e.shape[1]), inv] = 1.0
    n = onehot.sum(axis=0)[inv]
    var_e, var_u = np.asarray(sigma, float) ** 2, np.asarray(tau, float) ** 2
    s1 = (e @ onehot)[:, inv]
    s2 = ((e**2) @ onehot)[:, inv]
    den = var_e + n * var_u
    cbar = (1.0 - var_u / den) / var_e  # diagonal of Sigma^-1
    g = (e - var_u * s1 / den) / var_e  # Sigma^-1 e
    resid = g / cbar  # y_i minus its conditional mean given the rest of its run
    var_c = 1.0 / cbar
    if nu is None:
        return -0.5 * (_LOG_2PI + np.log(var_c) + resid**2 / var_c)
    nu = np.asarray(nu, float)
    q_rest = (s2 - var_u * s1**2 / den) / var_e - resid**2 / var_c
    dof = nu + n - 1.0
    scale2 = var_c * (nu + np.maximum(q_rest, 0.0)) / dof
    return (gammaln(0.5 * (dof + 1.0)) - gammaln(0.5 * dof) - 0.5 * np.log(dof * np.pi * scale2)
            - 0.5 * (dof + 1.0) * np.log1p(resid**2 / (dof * scale2)))


def marginal_log_likelihood(idata: Any, posterior: Any, obs: Any, targets: tuple[str, ...]) -> Any:
    """The ``log_likelihood`` group (``obs_log_loss``, dims chain, draw, obs) of a fit with integrated offsets.

    ``obs`` are the fitted observations (``target``, ``loss``, ``run_idx`` and what ``posterior.mean_log_loss``
    needs), in the model's order; ``posterior`` holds the same draws as ``idata`` (chain-major).
    """
    import xarray as xr

    post = idata["posterior"]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    ll = np.empty((chains * draws, len(obs)))
    for t in targets:
        m = (obs["target"] == t).to_numpy()
        rows = obs[m]
        e = np.log(rows["loss"].to_numpy(float))[None] - posterior.mean_log_loss(rows, t)
        nz = posterior.noise[t]

        def each(v: np.ndarray, shape: tuple[int, int] = e.shape) -> np.ndarray:
            return np.broadcast_to(np.asarray(v, float)[:, None], shape)

        ll[:, m] = run_loo_pointwise(e, rows["run_idx"].to_numpy(), each(nz["sigma"]), each(nz["tau"]),
                                     each(nz["nu"]) if "nu" in nz else None)
    ds = xr.Dataset({"obs_log_loss": (("chain", "draw", "obs"), ll.reshape(chains, draws, len(obs)))},
                    coords={"chain": post["chain"].values, "draw": post["draw"].values, "obs": np.arange(len(obs))})
    return xr.DataTree(ds)
