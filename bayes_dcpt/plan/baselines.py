"""Baseline strategies for the closed loop: what the planner is measured against.

``"uniform"`` covers the design space first (farthest-point traversal of log N, log D and r), ``"random"``
takes a seeded random order and ``"cheapest"`` runs the cheapest probes first (ties broken by coverage).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_dcpt.errors import BayesDCPTError

__all__ = ["STRATEGIES", "baseline_order", "spread_order"]

STRATEGIES = ("planner", "uniform", "random", "cheapest")


def spread_order(cands: pd.DataFrame) -> np.ndarray:
    """Farthest-point traversal of the design (log N, log D, r scaled to [0, 1]): uniform coverage first."""
    X = np.column_stack(
        [
            np.log(cands["n_params"].to_numpy(float)),
            np.log(cands["tokens"].to_numpy(float)),
            cands["r_domain"].to_numpy(float),
        ]
    )
    span = X.max(axis=0) - X.min(axis=0)
    X = (X - X.min(axis=0)) / np.where(span > 0, span, 1.0)
    n = len(X)
    order = [int(np.argmin(np.abs(X - X.mean(axis=0)).sum(axis=1)))]
    dmin = np.linalg.norm(X - X[order[0]], axis=1)
    for _ in range(n - 1):
        dmin[order] = -1.0
        nxt = int(np.argmax(dmin))
        order.append(nxt)
        dmin = np.minimum(dmin, np.linalg.norm(X - X[nxt], axis=1))
    return np.array(order)


def baseline_order(
    strategy: str, cands: pd.DataFrame, hours: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Preference order of the candidates under a baseline (``uniform``, ``random``, ``cheapest``)."""
    spread = spread_order(cands)
    if strategy == "uniform":
        return spread
    if strategy == "random":
        return rng.permutation(len(cands))
    if strategy == "cheapest":
        pos = np.empty(len(cands), int)
        pos[spread] = np.arange(len(cands))
        return np.lexsort((pos, hours))
    raise BayesDCPTError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
