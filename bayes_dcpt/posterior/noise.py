"""One simulation of measurement noise: where a new measurement of a run will fall, given the law's value.

The same noise model as the likelihood (:mod:`bayes_dcpt.numerics.runblock`), on the log-loss scale: the
checkpoints of one run share an offset ``u ~ Normal(0, tau)`` and each has noise ``e ~ Normal(0, sigma)`` or
Student-t(nu). With ``mixing`` (the default robust fit) a run's offset and noise share one Student-t scale,
``w ~ InvGamma(nu/2, nu/2)``; otherwise each checkpoint's noise is Student-t around a normal offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["log_noise"]


def log_noise(rng: np.random.Generator, noise: Mapping[str, Any], runs: Any, n_draws: int, *,
              mixing: bool, new_run: bool = True, sd: np.ndarray | None = None) -> np.ndarray:
    """Additive noise on the log loss, one row per draw: shape ``(n_draws, len(runs))``.

    ``noise`` holds per-draw ``sigma`` (and ``tau``, ``nu`` when fitted); entries of ``runs`` that are equal
    share a run offset. ``new_run=False`` leaves the offsets out (noise around a run already measured). ``sd``
    (``(n_draws, len(runs))``) replaces ``sigma`` when each checkpoint has its own noise scale.
    """
    runs = np.asarray(runs)
    n = len(runs)
    _, inv = np.unique(runs.astype(str), return_inverse=True)
    n_runs = int(inv.max()) + 1 if n else 0
    sigma = np.asarray(noise["sigma"], float)[:, None] if sd is None else np.asarray(sd, float)
    if new_run and "tau" in noise and "nu" in noise and mixing:
        nu = np.asarray(noise["nu"], float)[:, None]
        w = np.sqrt(nu / rng.chisquare(np.broadcast_to(nu, (n_draws, n_runs))))[:, inv]
        u = rng.standard_normal((n_draws, n_runs))[:, inv] * np.asarray(noise["tau"], float)[:, None]
        return w * (u + rng.standard_normal((n_draws, n)) * sigma)
    if "nu" in noise:
        e = rng.standard_t(np.broadcast_to(np.asarray(noise["nu"], float)[:, None], (n_draws, n))) * sigma
    else:
        e = rng.standard_normal((n_draws, n)) * sigma
    if new_run and "tau" in noise:
        u = rng.standard_normal((n_draws, n_runs)) * np.asarray(noise["tau"], float)[:, None]
        e = e + u[:, inv]
    return e
