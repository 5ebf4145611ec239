"""Synthetic CPT runs from the CPT dynamics law with known parameters (tests, calibration, benchmarks).

Quickstart::

    >>> from bayes_dcpt.plan.simulate_dynamics import DynamicsWorld
    >>> world = DynamicsWorld.default()
    >>> df = world.simulate(world.grid(), seed=0)      # the dynamics schema: step, schedule, base_schedule
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_dcpt.data.dynamics import AREA_COLUMNS, area_features, load_dynamics
from bayes_dcpt.data.schema import base_run_id
from bayes_dcpt.laws.dynamics import VARIANTS
from bayes_dcpt.laws.lr_schedules import DEFAULT_MOMENTUM, Schedule
from bayes_dcpt.laws.registry import BILLION, get_law

__all__ = ["DEFAULT_DYNAMICS_TRUTH", "DEFAULT_SCHEDULES", "DynamicsWorld"]

#: A truth for the replay variant on the scale of the example probes (losses in nats per byte, LRs ~1e-3):
#: re-warmup raises the loss, annealing lowers it, the general loss drifts up with the domain share.
DEFAULT_DYNAMICS_TRUTH: dict[str, dict[str, float]] = {
    "general": {"L0": 1.3, "A": 0.9, "alpha": 0.5, "C1": 0.1, "C2": 0.3, "B": 0.08, "E": 15.0, "beta": 0.6,
                "a1": 0.2, "a2": 2.0},
    "domain": {"L0": 0.7, "A": 0.9, "alpha": 0.5, "C1": 0.1, "C2": 0.35, "B": -0.12, "E": 15.0, "beta": 0.6,
               "a1": 0.2, "a2": 2.0},
}
BASE_SCHEDULE = Schedule("cosine", steps=512, peak=3e-3, warmup=50, final=3e-4)
DEFAULT_SCHEDULES: dict[str, Schedule] = {
    "const": Schedule("constant", steps=256, peak=1e-3, warmup=10),
    "cosine": Schedule("cosine", steps=256, peak=1e-3, warmup=10, final=1e-4),
    "wsd": Schedule("wsd", steps=256, peak=1e-3, warmup=10, final=1e-4, decay_frac=0.2),
    "flat": Schedule("constant", steps=256, peak=3e-4),
}


@dataclass
class DynamicsWorld:
    """True parameters of a dynamics law per target, the base schedule, and the noise."""

    law: str = "cpt-dynamics-replay"
    truth: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_DYNAMICS_TRUTH)
    base_schedule: Schedule = BASE_SCHEDULE
    domain: str = "python"
    n_params: float = 1e5
    tokens_per_step: int = 2048
    sigma: float = 0.002
    tau: float = 0.0
    momentum: float = DEFAULT_MOMENTUM

    @classmethod
    def default(cls, **kw) -> DynamicsWorld:
        """The default world (replay variant, four schedules' worth of truth)."""
        return cls(**kw)

    def grid(self, schedules: Mapping[str, Schedule] | None = None, ratios: Sequence[float] = (0.25, 0.5, 0.75),
             every: int = 8) -> pd.DataFrame:
        """Runs x checkpoints: every ``every`` steps of each schedule, at each ratio, plus the base row."""
        scheds = dict(schedules or DEFAULT_SCHEDULES)
        rows = [{"run_id": base_run_id(self.domain, self.n_params), "schedule": None, "r_domain": np.nan,
                 "step": 0, "name": "base"}]
        for name, s in scheds.items():
            steps = sorted({2, 4, *range(every, s.steps + 1, every), s.steps})
            for r in ratios:
                rid = f"{self.domain}|N={self.n_params:.6g}|r={r:g}|sched={name}"
                rows += [{"run_id": rid, "schedule": s.spec(), "r_domain": float(r), "step": int(k), "name": name}
                         for k in steps]
        df = pd.DataFrame(rows)
        df["domain"] = self.domain
        df["n_params"] = float(self.n_params)
        df["tokens"] = df["step"] * float(self.tokens_per_step)
        df["base_schedule"] = self.base_schedule.spec()
        return df

    def law_values(self, rows: pd.DataFrame, target: str) -> np.ndarray:
        """The noise-free law at validated rows (with ``step``, ``schedule``, ``base_schedule``)."""
        law = get_law(self.law)
        use_n, use_r = VARIANTS[law.name]
        feats = area_features(rows, self.momentum)
        x = {c: feats[c].to_numpy(float) for c in AREA_COLUMNS}
        if use_n:
            x["N"] = rows["n_params"].to_numpy(float) / BILLION
        if use_r:
            x["r_cpt"] = np.nan_to_num(rows["r_domain"].to_numpy(float), nan=0.0)
            x["is_domain"] = np.full(len(rows), 1.0 if target == "domain" else 0.0)
        p = {k: np.asarray(v, float) for k, v in self.truth[target].items()}
        return np.asarray(law(np, p, x), float)

    def simulate(self, grid: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
        """Noisy losses (log-normal checkpoint noise ``sigma``, per-run offset ``tau``) in the dynamics schema."""
        rng = np.random.default_rng(seed)
        df = grid.copy().reset_index(drop=True)
        for t in ("general", "domain"):
            mu = self.law_values(df, t)
            _, inv = np.unique(df["run_id"].astype(str), return_inverse=True)
            u = rng.standard_normal(inv.max() + 1) * self.tau
            df[f"loss_{t}"] = mu * np.exp(u[inv] + rng.standard_normal(len(df)) * self.sigma)
        return load_dynamics(df.drop(columns=["name"], errors="ignore"))
