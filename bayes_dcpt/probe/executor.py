"""Run the planner's suggested probes for real, through the probe runner (for ``bayes-dcpt loop``).

A :class:`ProbeExecutor` maps each suggested probe (domain, n_params, tokens, r_domain) onto a grid spec's
base models and corpora, runs it with :func:`bayes_dcpt.probe.run.run_probe` (every evaluation lands in
the experiment store at once) and returns the measured rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.errors import BayesDCPTError

__all__ = ["ProbeExecutor"]


@dataclass
class ProbeExecutor:
    """Executor of :class:`bayes_dcpt.plan.loop.PlannerLoop` that trains the probes on this machine."""

    spec_path: str | Path
    db: str | Path
    seed: int = 0
    _sizes: dict[float, str] = field(default_factory=dict, init=False)
    _spec: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        from bayes_dcpt.probe.grid_spec import load_spec

        self._spec = load_spec(self.spec_path)

    def sizes(self) -> dict[float, str]:
        """Non-embedding parameter count of each base model in the spec -> its size name.

        Base models the spec pretrains are trained first when missing (as ``probe grid`` does).
        """
        if not self._sizes:
            from bayes_dcpt.probe.grid_spec import pretrain_config
            from bayes_dcpt.probe.networks import count_params, load_base
            from bayes_dcpt.probe.pretraining import pretrain

            for size in self._spec.sizes:
                base = Path(self._spec.base_for(size))
                if self._spec.pretrain and not (base / "config.json").exists():
                    pretrain(pretrain_config(self._spec, size))
                loaded = load_base(base)
                self._sizes[float(count_params(loaded.model))] = size
        return self._sizes

    def _size_for(self, n: float) -> str:
        sizes = self.sizes()
        for k, v in sizes.items():
            if np.isclose(k, n, rtol=1e-6):
                return v
        raise BayesDCPTError(f"no base model with n_params={n:.6g} in {self.spec_path} (have {sorted(sizes)})")

    def run(self, probes: pd.DataFrame, *, round: int) -> pd.DataFrame:
        """Train every probe of the round (resuming any stored part); returns their measured CPT rows."""
        from dataclasses import replace

        from bayes_dcpt.data.store import Store
        from bayes_dcpt.probe.grid_spec import Job, probe_config
        from bayes_dcpt.probe.run import run_probe

        run_ids = []
        for _, p in probes.reset_index(drop=True).iterrows():
            job = Job(self._size_for(float(p["n_params"])), str(p["domain"]), float(p["r_domain"]), self.seed)
            if job.domain not in self._spec.domains:
                raise BayesDCPTError(f"domain {job.domain!r} has no corpus in {self.spec_path}")
            cfg = replace(probe_config(self._spec, job), tokens=int(p["tokens"]))
            res = run_probe(cfg, self.db, resume=True)
            run_ids.append(res.run_id)
        with Store(self.db) as st:
            rows = st.to_frame()
        return rows[rows["run_id"].isin(run_ids) & (rows["tokens"] > 0)].reset_index(drop=True)
