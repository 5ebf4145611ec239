"""The base model's loss at a size nobody probed, with its uncertainty: a small law in N fitted to the base rows.

Decisions compare a CPT run with its base model (a trade-off threshold is "within 3% of the base loss"), and the
base-anchored CPT law starts from it. Users usually have the base model at the size they ask about (then they pass
its measured loss); when they do not, the base rows of the probed sizes give ``L0(N) = E + (L_hi - E) (N /
N_hi)^-alpha`` per (target, domain), anchored at the largest probed size. It is fitted beside the law, by importance
sampling from its prior (three parameters, a handful of points: exact enough and milliseconds), so every fit -- an
old saved one included -- can answer at any size, and the base loss's uncertainty travels into every answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logsumexp

__all__ = ["BASE_PRIORS", "BaseLaw", "fit_base_law"]

#: Prior of the base-loss law, with its reasons.
BASE_PRIORS = {
    "L_hi": ("LogNormal(log measured loss at N_hi, 0.05)", "the anchor: the largest probed size's measured loss"),
    "E / L_hi": ("logit-Normal(logit 0.6, 1.5)", "the irreducible part of the loss: most of it at probe sizes"),
    "alpha": ("LogNormal(log 0.34, 0.6)", "Chinchilla 0.34, Epoch 0.348; 90% mass 0.13-0.91"),
    "noise": ("0.01 on the log scale (fixed)", "the evaluation noise of a checkpoint on real probe grids; three "
              "sizes fitted by three parameters leave nothing to learn it from"),
}
_NOISE = 0.01
_PRIOR_DRAWS = 40_000


@dataclass(frozen=True)
class BaseLaw:
    """Draws of the base-loss law of one (target, domain): ``E + (L_hi - E) (N / n_hi)^-alpha``."""

    E: np.ndarray
    L_hi: np.ndarray
    alpha: np.ndarray
    n_hi: float
    n_sizes: int

    def __call__(self, n_params: np.ndarray) -> np.ndarray:
        """The base loss at raw sizes whose first axis is the draw axis (size 1 or S): shape ``(S, ...)``."""
        n = np.atleast_1d(np.asarray(n_params, float))
        shape = (-1,) + (1,) * (n.ndim - 1)
        E, hi, a = (v.reshape(shape) for v in (self.E, self.L_hi, self.alpha))
        with np.errstate(all="ignore"):
            return E + (hi - E) * np.exp(-a * np.log(n / self.n_hi))


def fit_base_law(n_params: np.ndarray, losses: np.ndarray, *, n_draws: int, seed: int = 0) -> BaseLaw:
    """Posterior draws of the base-loss law from the measured base losses at sizes ``n_params``.

    Importance sampling from the prior, then systematic resampling to ``n_draws`` draws (seeded).
    """
    n = np.asarray(n_params, float)
    y = np.log(np.asarray(losses, float))
    order = np.argsort(n)
    n, y = n[order], y[order]
    n_hi = float(n[-1])
    rng = np.random.default_rng(seed)
    M = _PRIOR_DRAWS
    log_hi = y[-1] + 0.05 * rng.standard_normal(M)
    share = expit(np.log(1.5) + 1.5 * rng.standard_normal(M))
    alpha = np.exp(np.log(0.34) + 0.6 * rng.standard_normal(M))
    hi = np.exp(log_hi)
    E = share * hi
    with np.errstate(all="ignore"):
        pred = np.log(E[:, None] + (hi - E)[:, None] * np.exp(-alpha[:, None] * np.log(n[None, :] / n_hi)))
    ll = -0.5 * np.sum(((y[None, :] - pred) / _NOISE) ** 2, axis=1)
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    w = np.exp(ll - logsumexp(ll))
    pos = (rng.random() + np.arange(n_draws)) / n_draws
    idx = np.minimum(np.searchsorted(np.cumsum(w), pos), M - 1)
    return BaseLaw(E[idx], hi[idx], alpha[idx], n_hi, len(np.unique(n)))
