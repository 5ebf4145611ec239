"""The settings of one :func:`~bayes_dcpt.plan.planner.suggest` call, checked once and passed as one object.

The steps of the planner (scoring, the reweighting check, the batch) each need a few of the same dozen
settings; one validated bundle keeps their signatures short and the checks in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.plan.cost import CostModel

__all__ = ["SuggestOptions"]


@dataclass(frozen=True)
class SuggestOptions:
    """The settings of :func:`~bayes_dcpt.plan.planner.suggest` (documented there), validated on creation."""

    k: int
    budget_gpu_hours: float | None
    cost_model: CostModel
    kappa: float
    verify_top: int
    seed: int
    stop_width: float | None
    min_info_per_gpu_hour: float | None
    allow_repeats: bool
    singleton_check: bool
    n_checkpoints: int
    first_fraction: float
    max_draws: int
    n_verify: int
    ci: float

    def __post_init__(self) -> None:
        k, budget = self.k, self.budget_gpu_hours
        if not (isinstance(k, (int, np.integer)) and k >= 1):
            raise BayesDCPTError(f"k must be a whole number >= 1, got {k!r}")
        if budget is not None and not (np.isfinite(budget) and budget > 0):
            raise BayesDCPTError(f"budget_gpu_hours must be > 0, got {budget!r}")
        if not (np.isfinite(self.kappa) and self.kappa >= 0):
            raise BayesDCPTError(f"kappa must be >= 0, got {self.kappa!r}")
        if self.stop_width is not None and not self.stop_width > 0:
            raise BayesDCPTError(f"stop_width must be > 0, got {self.stop_width!r}")
        if not 0 < self.ci < 1:
            raise BayesDCPTError(f"ci must be in (0, 1), got {self.ci!r}")
