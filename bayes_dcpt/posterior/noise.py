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

    ``noise`` holds per-draw ``sigma`` (and ``tau``, ``nu`` when fitted), each ``(n_draws,)`` or one per draw and
    entry ``(n_draws, len(runs))`` (noise per domain: :meth:`~bayes_dcpt.posterior.Posterior.noise_rows`; a run's
    entries share one domain, its offset takes its first entry's). Entries of ``runs`` that are equal share a run
    offset. ``new_run=False`` leaves the offsets out (noise around a run already measured). ``sd``
    (``(n_draws, len(runs))``) replaces ``sigma`` when each checkpoint has its own noise scale.
    """
    runs = np.asarray(runs)
    n = len(runs)
    _, first, inv = np.unique(runs.astype(str), return_index=True, return_inverse=True)
    n_runs = len(first)

    def rows(v: Any) -> np.ndarray:  # per draw and entry, broadcastable to (n_draws, n)
        v = np.asarray(v, float)
        return v[:, None] if v.ndim == 1 else v

    def per_run(v: Any) -> np.ndarray:  # per draw and run, broadcastable to (n_draws, n_runs)
        v = np.asarray(v, float)
        return v[:, None] if v.ndim == 1 else v[:, first]

    sigma = rows(noise["sigma"]) if sd is None else np.asarray(sd, float)
    if new_run and "tau" in noise and "nu" in noise and mixing:
        nu = per_run(noise["nu"])
        w = np.sqrt(nu / rng.chisquare(np.broadcast_to(nu, (n_draws, n_runs))))[:, inv]
        u = (rng.standard_normal((n_draws, n_runs)) * per_run(noise["tau"]))[:, inv]
        return w * (u + rng.standard_normal((n_draws, n)) * sigma)
    if "nu" in noise:
        e = rng.standard_t(np.broadcast_to(rows(noise["nu"]), (n_draws, n))) * sigma
    else:
        e = rng.standard_normal((n_draws, n)) * sigma
    if new_run and "tau" in noise:
        u = rng.standard_normal((n_draws, n_runs)) * per_run(noise["tau"])
        e = e + u[:, inv]
    return e
