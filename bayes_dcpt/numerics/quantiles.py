"""One weighted quantile, the rule behind every interval the package reports.

Posterior draws are equally weighted after MCMC and unequally weighted after an importance update; intervals
must mean the same thing in both cases. The rule: draws that are NaN or have zero weight do not count; when the
remaining weights are equal it is numpy's default (linear interpolation between order statistics), otherwise the
inverse of the weighted empirical CDF (the first sorted value whose cumulative weight reaches the level).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["quantile_band", "weighted_quantile"]


def weighted_quantile(x: Any, q: Any, weights: Any = None, axis: int = 0) -> np.ndarray:
    """Quantiles ``q`` of ``x`` along ``axis`` under optional draw ``weights``; shape ``(len(q), *rest)``.

    A slice with no usable draw gives NaN.
    """
    q = np.atleast_1d(np.asarray(q, float))
    x = np.moveaxis(np.asarray(x, float), axis, 0)
    shape_w = (-1,) + (1,) * (x.ndim - 1)
    if weights is not None:
        w = np.asarray(weights, float)
        pos = w > 0
        if pos.any() and np.allclose(w[pos], w[pos][0]):
            x = np.where(pos.reshape(shape_w), x, np.nan)
            weights = None
    if weights is None:
        if not np.isnan(x).any():  # numpy's nanquantile loops over the slices in Python: only when needed
            return np.quantile(x, q, axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN
            return np.nanquantile(x, q, axis=0)
    wb = np.broadcast_to(w.reshape(shape_w), x.shape)
    xs = np.where(wb > 0, x, np.nan)
    order = np.argsort(xs, axis=0)  # NaN last
    xs = np.take_along_axis(xs, order, axis=0)
    ws = np.where(np.isnan(xs), 0.0, np.take_along_axis(wb, order, axis=0))
    cw = np.cumsum(ws, axis=0)
    total = cw[-1]
    out = []
    for level in q:
        idx = np.argmax(cw >= level * total - 1e-12 * total, axis=0)
        val = np.take_along_axis(xs, np.expand_dims(idx, 0), axis=0)[0]
        out.append(np.where(total > 0, val, np.nan))
    return np.stack(out)


def quantile_band(x: Any, weights: Any, ci: float) -> np.ndarray:
    """Columnwise ``(lo, median, hi)`` of the central ``ci`` interval of an ``(S, G)`` array: shape ``(3, G)``."""
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    return weighted_quantile(x, (lo, 0.5, hi), weights, axis=0)
