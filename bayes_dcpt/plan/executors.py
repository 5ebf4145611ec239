"""Executors of the closed loop: what turns a batch of chosen probes into measured rows.

:class:`SimulatorExecutor` answers from a known law (:class:`bayes_dcpt.plan.simulate.World`);
:class:`TableExecutor` reveals the measured curves of a grid of real runs (pool-based: every run of the grid
is a candidate, each can be chosen once); the probe runner (:mod:`bayes_dcpt.probe.executor`) trains them.
Anything with a ``run(probes, *, round)`` method (:class:`Executor`) will do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.plan.candidates import eval_checkpoints, validate_candidates
from bayes_dcpt.plan.simulate import World

__all__ = ["Executor", "SimulatorExecutor", "TableExecutor"]


class Executor(Protocol):
    """Runs probes and returns their measured rows (schema of :mod:`bayes_dcpt.data.schema`, with ``run_id``)."""

    def run(self, probes: pd.DataFrame, *, round: int) -> pd.DataFrame:
        """Run ``probes`` (one row per probe) in loop round ``round``; return their measured rows."""
        ...


@dataclass
class SimulatorExecutor:
    """Answers probes from a known law: losses at every checkpoint with run offsets and noise.

    Each probe becomes a new run (``run_id`` = ``sim-r<round>-p<i>``); outcomes are seeded by
    ``(seed, round)``, so a resumed loop sees the same outcomes as an uninterrupted one.
    """

    world: World
    seed: int = 0
    n_checkpoints: int = 8
    first_fraction: float = 0.02
    pool: bool = False

    def run(self, probes: pd.DataFrame, *, round: int) -> pd.DataFrame:
        """Simulate every probe at its checkpoints (a new run each), seeded by ``(seed, round)``."""
        probes = probes.reset_index(drop=True)
        scheds = eval_checkpoints(probes, self.n_checkpoints, self.first_fraction)
        parts = []
        for i, ck in enumerate(scheds):
            row = probes.iloc[i]
            parts.append(
                pd.DataFrame(
                    {
                        "domain": row["domain"],
                        "n_params": float(row["n_params"]),
                        "tokens": ck,
                        "r_domain": float(row["r_domain"]),
                        "run_id": f"sim-r{round}-p{i}",
                    }
                )
            )
        grid = pd.concat(parts, ignore_index=True)
        seed = int(np.random.SeedSequence([self.seed, round]).generate_state(1)[0])
        return self.world.simulate(grid, seed=seed, base_rows=False)


@dataclass
class TableExecutor:
    """Pool-based executor over a measured grid: choosing a run reveals its measured rows.

    :meth:`candidates` lists every run once (its ``tokens`` is the run's last checkpoint and its
    ``checkpoints`` the measured ones); :meth:`base_rows` gives the base-model rows (tokens == 0).
    """

    table: pd.DataFrame
    pool: bool = True

    def __post_init__(self) -> None:
        self.table = _data.load(self.table)

    def candidates(self) -> pd.DataFrame:
        """One candidate per measured run."""
        cpt = _data.fit_rows(self.table)
        rows = []
        for rid, g in cpt.groupby("run_id", sort=True):
            g = g.sort_values("tokens")
            rows.append(
                {
                    "domain": g["domain"].iloc[0],
                    "n_params": float(g["n_params"].iloc[0]),
                    "tokens": float(g["tokens"].iloc[-1]),
                    "r_domain": float(g["r_domain"].iloc[0]),
                    "checkpoints": ";".join(f"{x:.10g}" for x in g["tokens"]),
                    "run_id": str(rid),
                }
            )
        return validate_candidates(pd.DataFrame(rows))

    def base_rows(self) -> pd.DataFrame:
        """The base-model rows of the grid."""
        return self.table[self.table["tokens"] == 0].reset_index(drop=True)

    def run(self, probes: pd.DataFrame, *, round: int) -> pd.DataFrame:
        """The measured rows (tokens > 0) of the chosen runs, found by their ``run_id``."""
        if "run_id" not in probes:
            raise BayesDCPTError(
                "a table executor needs the probes' run_id (choose from TableExecutor.candidates())"
            )
        want = probes["run_id"].astype(str).tolist()
        known = set(self.table["run_id"].astype(str))
        missing = [r for r in want if r not in known]
        if missing:
            raise BayesDCPTError(f"runs not in the measured table: {missing[:5]}")
        t = self.table
        return t[t["run_id"].astype(str).isin(want) & (t["tokens"] > 0)].reset_index(drop=True)
