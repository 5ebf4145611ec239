"""Compute cost of probe runs: 6 N D training FLOPs converted to GPU-hours.

A probe that continues pre-training an existing base checkpoint pays only for its CPT tokens. A probe whose
base model does not exist yet also pays for pre-training it: give the candidate table a ``pretrain_tokens``
column (0 or empty where the checkpoint exists). Probes of one batch that share a base model to be
pre-trained pay for it once (:meth:`CostModel.marginal_hours`).

Every constant is user-settable; the defaults describe one NVIDIA A100 (312 TFLOP/s dense bf16 peak) at
40% model-FLOPs utilisation, plus a fixed 0.25 GPU-hour per run for launch, checkpoint saving and the
evaluations at every checkpoint::

    GPU-hours = 6 N (D_cpt + D_pretrain) / (gpu_flops * mfu * 3600) + overhead_hours

Quickstart::

    >>> from bayes_dcpt.plan.cost import CostModel
    >>> cm = CostModel(gpu_flops=989e12, mfu=0.35)   # an H100
    >>> cm.gpu_hours(candidates)                      # one value per row
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_dcpt.errors import BayesDCPTError

__all__ = ["A100_BF16_FLOPS", "CostModel"]

#: Dense bf16 peak of one NVIDIA A100 (FLOP/s).
A100_BF16_FLOPS = 312e12


@dataclass(frozen=True)
class CostModel:
    """GPU-hours of a probe run from its model size and token budget.

    Parameters
    ----------
    gpu_flops
        Peak FLOP/s of one GPU (default: A100 dense bf16, 312e12).
    mfu
        Model-FLOPs utilisation achieved in training, in (0, 1] (default 0.4).
    overhead_hours
        Fixed GPU-hours per run: launch, loading, checkpointing and evaluations (default 0.25).
    flops_per_param_token
        Training FLOPs per parameter and token (default 6: forward + backward).
    """

    gpu_flops: float = A100_BF16_FLOPS
    mfu: float = 0.4
    overhead_hours: float = 0.25
    flops_per_param_token: float = 6.0

    def __post_init__(self) -> None:
        for name in ("gpu_flops", "flops_per_param_token"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise BayesDCPTError(f"CostModel.{name} must be a positive number, got {v!r}")
        if not (np.isfinite(self.mfu) and 0 < self.mfu <= 1):
            raise BayesDCPTError(f"CostModel.mfu must be in (0, 1], got {self.mfu!r}")
        if not (np.isfinite(self.overhead_hours) and self.overhead_hours >= 0):
            raise BayesDCPTError(f"CostModel.overhead_hours must be >= 0, got {self.overhead_hours!r}")

    @property
    def flops_per_gpu_hour(self) -> float:
        """Useful training FLOPs delivered by one GPU in one hour."""
        return self.gpu_flops * self.mfu * 3600.0

    def hours_for(self, n_params: float | np.ndarray, tokens: float | np.ndarray) -> np.ndarray:
        """Training GPU-hours (no overhead) for ``tokens`` tokens of an ``n_params`` model."""
        return (
            self.flops_per_param_token
            * np.asarray(n_params, float)
            * np.asarray(tokens, float)
            / (self.flops_per_gpu_hour)
        )

    def components(self, candidates: pd.DataFrame) -> pd.DataFrame:
        """Per row: ``cpt_hours``, ``pretrain_hours``, ``overhead_hours`` and their sum ``gpu_hours``."""
        n = candidates["n_params"].to_numpy(float)
        cpt = self.hours_for(n, candidates["tokens"].to_numpy(float))
        if "pretrain_tokens" in candidates:
            pt = np.nan_to_num(pd.to_numeric(candidates["pretrain_tokens"], errors="coerce").to_numpy(float))
        else:
            pt = np.zeros(len(candidates))
        pre = self.hours_for(n, pt)
        over = np.full(len(candidates), self.overhead_hours)
        return pd.DataFrame(
            {"cpt_hours": cpt, "pretrain_hours": pre, "overhead_hours": over, "gpu_hours": cpt + pre + over},
            index=candidates.index,
        )

    def gpu_hours(self, candidates: pd.DataFrame) -> np.ndarray:
        """Total GPU-hours of each candidate run on its own (CPT + pre-training if needed + overhead)."""
        return self.components(candidates)["gpu_hours"].to_numpy()

    def marginal_hours(
        self, candidates: pd.DataFrame, paid_bases: Iterable[tuple[float, float]] = ()
    ) -> np.ndarray:
        """GPU-hours of each candidate given base models already paid for in the same batch.

        ``paid_bases`` holds ``(n_params, pretrain_tokens)`` keys of base models that an earlier probe of the
        batch pre-trains; a candidate that needs the same base does not pay for it again.
        """
        comp = self.components(candidates)
        keys = base_keys(candidates)
        paid = set(paid_bases)
        pre = comp["pretrain_hours"].to_numpy().copy()
        for i, key in enumerate(keys):
            if key is not None and key in paid:
                pre[i] = 0.0
        return comp["cpt_hours"].to_numpy() + pre + comp["overhead_hours"].to_numpy()

    def describe(self) -> str:
        """One line stating the assumptions (for plan summaries and reports)."""
        return (
            f"{self.flops_per_param_token:g}*N*D FLOPs at {self.gpu_flops / 1e12:g} TFLOP/s "
            f"x {self.mfu:.0%} MFU "
            f"+ {self.overhead_hours:g} GPU-h per run"
        )


def base_keys(candidates: pd.DataFrame) -> list[tuple[float, float] | None]:
    """``(n_params, pretrain_tokens)`` of rows that must pre-train their base model, else ``None``."""
    if "pretrain_tokens" not in candidates:
        return [None] * len(candidates)
    pt = np.nan_to_num(pd.to_numeric(candidates["pretrain_tokens"], errors="coerce").to_numpy(float))
    n = candidates["n_params"].to_numpy(float)
    return [(float(a), float(b)) if b > 0 else None for a, b in zip(n, pt, strict=True)]
