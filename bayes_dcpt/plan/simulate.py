"""Synthetic CPT worlds with known parameters: for tests, simulation-based calibration and the planner's benchmarks.

A :class:`World` holds true law parameters per (target, domain), base-model losses, the observation
noise (``sigma`` on the log-loss scale) and the per-run offset (``tau``: a run's checkpoints share one
draw, as real checkpoints share a run and an LR schedule). :meth:`World.simulate` returns a frame in
the schema of :mod:`bayes_dcpt.data.schema`, including the tokens == 0 base rows.

Quickstart::

    >>> from bayes_dcpt.plan.simulate import World, probe_grid
    >>> world = World.default(domains=("code", "law"))
    >>> df = world.simulate(probe_grid(), seed=0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_dcpt.data.schema import base_run_id
from bayes_dcpt.laws.registry import BILLION, Law, get_law

__all__ = ["DEFAULT_TRUTH", "World", "checkpoints", "probe_grid"]

#: A D-CPT (L3) truth that satisfies the paper's requirements (eta > 1, C > C0 for D >= 0.1B) and gives
#: curves shaped like real CPT: the domain loss falls with tokens and ratio, the general loss rises as the
#: general share shrinks. N and D in billions.
DEFAULT_TRUTH: dict[str, dict[str, float]] = {
    "general": {"E": 1.6, "A": 0.30, "alpha": 0.34, "B": 0.03, "beta": 0.30, "gamma": 0.5, "eps": 0.10,
                "eta": 1.5, "C": 0.35},
    "domain": {"E": 0.40, "A": 0.25, "alpha": 0.30, "B": 0.15, "beta": 0.35, "gamma": 0.60, "eps": 0.20,
               "eta": 1.3, "C": 1.10},
}


def checkpoints(max_tokens: float, n: int = 8, first_fraction: float = 0.02) -> np.ndarray:
    """Evaluation points spaced densely early and sparsely late (geometric), ending at ``max_tokens``."""
    return np.unique(np.geomspace(first_fraction * max_tokens, max_tokens, n).round())


def probe_grid(
    n_params: Sequence[float] = (1e8, 3e8, 1e9),
    r_domain: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
    max_tokens: float = 5e9,
    n_checkpoints: int = 8,
    domains: Sequence[str] = ("code",),
) -> pd.DataFrame:
    """A full factorial grid of probe runs: one row per (domain, n_params, r_domain, checkpoint)."""
    ck = checkpoints(max_tokens, n_checkpoints)
    rows = [
        {"domain": d, "n_params": float(n), "r_domain": float(r), "tokens": float(t)}
        for d in domains for n in n_params for r in r_domain for t in ck
    ]
    return pd.DataFrame(rows)


@dataclass
class World:
    """A known ground truth for synthetic CPT data."""

    law: Law
    params: dict[tuple[str, str], dict[str, float]]
    sigma: float = 0.004
    tau: float = 0.003
    student_df: float | None = None
    base_offset: Mapping[str, float] = field(default_factory=lambda: {"general": 0.02, "domain": 0.0})

    @classmethod
    def default(cls, domains: Iterable[str] = ("code",), *, law: str = "dcpt", spread: float = 0.15,
                seed: int = 0, sigma: float = 0.004, tau: float = 0.003,
                vary: tuple[str, ...] = ("E", "A", "B")) -> World:
        """The :data:`DEFAULT_TRUTH` with the coefficients ``vary`` varied per domain.

        Each is varied by ``spread`` on the log scale (C with B); the first domain keeps the default values.
        """
        rng = np.random.default_rng(seed)
        law_ = get_law(law)
        params = {}
        for i, d in enumerate(domains):
            for t, base in DEFAULT_TRUTH.items():
                p = dict(base)
                if i > 0:
                    for k in vary:
                        p[k] = base[k] * float(np.exp(rng.normal(0, spread)))
                    if "B" in vary:  # keep C above C0 by scaling C with B
                        p["C"] = base["C"] * p["B"] / base["B"] * float(np.exp(abs(rng.normal(0, spread))))
                params[(t, d)] = p
        return cls(law_, params, sigma=sigma, tau=tau)

    @property
    def domains(self) -> list[str]:
        """Domains of this world."""
        return sorted({d for _, d in self.params})

    def mean(self, frame: pd.DataFrame, target: str) -> np.ndarray:
        """Noise-free loss of ``target`` for schema rows (raw counts); base rows get the base loss."""
        out = np.empty(len(frame))
        for d in frame["domain"].unique():
            m = (frame["domain"] == d).to_numpy()
            sub = frame[m]
            p = self.params[(target, d)]
            r = sub["r_domain"].to_numpy(float) if target == "domain" else 1.0 - sub["r_domain"].to_numpy(float)
            x = {"N": sub["n_params"].to_numpy(float) / BILLION,
                 "D": np.maximum(sub["tokens"].to_numpy(float), 1.0) / BILLION, "r": r}
            pa = {k: np.asarray(v) for k, v in p.items()}
            val = np.asarray(self.law(np, pa, x), float)
            base = sub["tokens"].to_numpy(float) == 0
            if base.any():
                out_base = self.base_loss(sub[base], target)
                val[base] = out_base
            out[m] = val
        return out

    def base_loss(self, frame: pd.DataFrame, target: str) -> np.ndarray:
        """Loss of the base model before CPT.

        General loss: the law's r = 1 limit at infinite tokens plus a small offset (the base model was
        pre-trained on general data). Domain loss: the law at r = 0 (no domain data; flat in D).
        """
        out = np.empty(len(frame))
        for d in frame["domain"].unique():
            m = (frame["domain"] == d).to_numpy()
            p = {k: np.asarray(v) for k, v in self.params[(target, d)].items()}
            N = frame.loc[m, "n_params"].to_numpy(float) / BILLION
            r = np.ones_like(N) if target == "general" else np.zeros_like(N)
            x = {"N": N, "D": np.full_like(N, 1e12), "r": r}
            out[m] = np.asarray(self.law(np, p, x), float) + self.base_offset.get(target, 0.0)
        return out

    def simulate(self, grid: pd.DataFrame, *, seed: int = 0, base_rows: bool = True,
                 run_prefix: str = "sim") -> pd.DataFrame:
        """Noisy measurements for every row of ``grid`` (schema input columns), with base rows added.

        Noise is multiplicative: ``log L_obs = log L_true + u_run + e``, ``u_run ~ N(0, tau)`` shared by
        the checkpoints of one run (general and domain loss get independent offsets),
        ``e ~ N(0, sigma)`` (or Student-t with ``student_df``).
        """
        rng = np.random.default_rng(seed)
        g = grid.reset_index(drop=True).copy()
        if "run_id" not in g:
            g["run_id"] = (run_prefix + "|" + g["domain"] + "|N=" + g["n_params"].map("{:.6g}".format)
                           + "|r=" + g["r_domain"].map("{:.6g}".format))
        if base_rows:
            base = g.drop_duplicates(["domain", "n_params"])[["domain", "n_params"]].copy()
            base["tokens"] = 0.0
            base["r_domain"] = np.nan
            base["run_id"] = [base_run_id(d, n) for d, n in zip(base["domain"], base["n_params"], strict=True)]
            g = pd.concat([base, g[g["tokens"] > 0]], ignore_index=True)
        runs = g["run_id"].to_numpy()
        uniq, inv = np.unique(runs, return_inverse=True)
        for t in ("general", "domain"):
            mu = self.mean(g, t)
            u = rng.normal(0.0, self.tau, len(uniq))[inv]
            if self.student_df:
                e = self.sigma * rng.standard_t(self.student_df, len(g))
            else:
                e = rng.normal(0.0, self.sigma, len(g))
            g[f"loss_{t}"] = np.exp(np.log(mu) + u + e)
        return g[["domain", "n_params", "tokens", "r_domain", "loss_general", "loss_domain", "run_id"]]
