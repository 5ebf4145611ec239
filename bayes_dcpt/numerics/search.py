"""Vectorised root and minimum search, one problem per posterior draw.

Decisions are solved for every draw at once (thousands of one-dimensional problems): a bisection that keeps
the feasible end of each bracket, a golden-section minimiser, and a grid scan that brackets the golden section
(robust to curves that are not unimodal over the whole range); :func:`last_meeting` reads the last point of a
scanned curve that meets a level (a probability, say), interpolated in the bracket after it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["bisect_last_feasible", "golden_min", "grid_then_golden", "last_meeting"]

_BISECT_ITERS = 52
_GOLDEN_ITERS = 64
_INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0


def bisect_last_feasible(g: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
                         n_iter: int = _BISECT_ITERS) -> np.ndarray:
    """Bisection per draw on brackets with ``g(lo) <= 0 < g(hi)``; returns the feasible end."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        good = g(mid) <= 0
        lo = np.where(good, mid, lo)
        hi = np.where(good, hi, mid)
    return lo


def golden_min(f: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray,
               n_iter: int = _GOLDEN_ITERS) -> np.ndarray:
    """Golden-section minimisation of ``f`` per draw on ``[a, b]`` (one evaluation per step)."""
    a, b = np.asarray(a, float).copy(), np.asarray(b, float).copy()
    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(n_iter):
        left = ~(fc > fd)  # minimum in [a, d] (NaN on the right side counts as worse)
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        x = np.where(left, b - _INV_PHI * (b - a), a + _INV_PHI * (b - a))
        fx = f(x)
        c, d, fc, fd = (np.where(left, x, d), np.where(left, c, x), np.where(left, fx, fd), np.where(left, fc, fx))
    return 0.5 * (a + b)


def grid_then_golden(f_grid: np.ndarray, grid: np.ndarray, f: Callable[[np.ndarray], np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Minimise per draw: the best grid point's neighbours bracket a golden-section search.

    Returns the argmin per draw and its grid index (``-1`` when every grid value is NaN).
    """
    S, G = f_grid.shape
    finite = np.isfinite(f_grid)
    idx = np.where(finite.any(axis=1), np.argmin(np.where(finite, f_grid, np.inf), axis=1), -1)
    i = np.clip(idx, 0, G - 1)
    a, b = grid[np.maximum(i - 1, 0)], grid[np.minimum(i + 1, G - 1)]
    x = golden_min(f, a, b)
    # keep the best grid point when it beats the refined one (e.g. a minimum at the end of the range)
    fg = f_grid[np.arange(S), i]
    better = f(x) < fg - 1e-13 * np.abs(fg)
    x = np.where(better, x, grid[i])
    x = np.where(idx < 0, np.nan, x)
    return x, idx


def last_meeting(grid: np.ndarray, P: np.ndarray, prob: float) -> float:
    """``sup{r : P(r) >= prob}`` on a scanned ``grid``, interpolated in the bracket after it (NaN: no r meets it)."""
    idx = np.flatnonzero(P >= prob - 1e-12)
    if not idx.size:
        return float("nan")
    i = int(idx[-1])
    r = float(grid[i])
    if i + 1 < len(grid) and P[i] > P[i + 1]:
        r += float((grid[i + 1] - grid[i]) * (P[i] - prob) / (P[i] - P[i + 1]))
    return min(r, 1.0)
