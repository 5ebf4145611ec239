"""The PyMC side of the run-block likelihood: per-run offsets integrated out, and the LOO terms of such a fit.

A run's checkpoints share one offset. Sampled as latent variables, the offsets of runs that share a mixture
ratio trade off against the law's ratio term and NUTS crawls along that ridge; integrated out in closed form
(:mod:`bayes_dcpt.numerics.runblock` has the algebra) the model is the same and mixes several times faster
(BENCHMARKS.md). Such a model does not factorise over checkpoints, so its pointwise LOO terms are the
leave-one-out predictives ``log p(y_i | y_-i, theta)`` (Burkner, Gabry & Vehtari 2021).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_dcpt.numerics.runblock import loo_pointwise, run_terms

__all__ = ["block_loglik", "marginal_log_likelihood", "run_groups", "run_loglik"]


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
    lp = run_terms(pt, s1, s2, n, sigma[run_group] ** 2, tau[run_group] ** 2,
                   None if nu is None else nu[run_group])
    return pt.sum(lp)


def block_loglik(e: Any, mask: Any, n_run: Any, group: Any, sigma: Any, tau: Any, nu: Any | None) -> Any:
    """:func:`run_loglik` in the run-block layout.

    ``e`` is ``(R, K)`` (the padding masked out by ``mask``), ``group`` each row's index of ``sigma`` / ``tau`` /
    ``nu``, ``n_run`` each run's number of checkpoints.
    """
    import pytensor.tensor as pt

    em = e * mask
    lp = run_terms(pt, pt.sum(em, axis=1), pt.sum(em * e, axis=1), n_run, sigma[group] ** 2, tau[group] ** 2,
                   None if nu is None else nu[group])
    return pt.sum(lp)


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
        logm = posterior.mean_log_loss(rows, t)
        e = np.log(rows["loss"].to_numpy(float))[None] - logm
        nz = posterior.noise_rows(t, rows["domain"])  # (S, n): each row's (its domain's) noise
        ll[:, m] = loo_pointwise(e, rows["run_idx"].to_numpy(), posterior.checkpoint_sd(rows, t, logm),
                                 nz["tau"], nz.get("nu"))
    ds = xr.Dataset({"obs_log_loss": (("chain", "draw", "obs"), ll.reshape(chains, draws, len(obs)))},
                    coords={"chain": post["chain"].values, "draw": post["draw"].values, "obs": np.arange(len(obs))})
    return xr.DataTree(ds)
