"""Which checkpoints lie inside their run's LR warm-up: the transient the fits leave out, a documented burn-in.

The loss inside the warm-up follows the rising learning rate, a transient no scaling law describes, so the fits
leave those checkpoints out by default (``FitConfig(burn_in="warmup")``), and the held-out splits, the held-out
checks and the planner's update leave them out with the fit (:func:`after_burn_in`).

Two ways to tell, per row:

* **the schedule** (columns ``step`` and ``schedule``, as the probe runner and the dynamics schema write them): a
  checkpoint is in the warm-up when its step count is below the steps the schedule takes to first reach 99% of its
  peak LR. This settles a run in progress whose checkpoints are all still warming.
* **the measured LRs** (column ``lr``), where the schedule is missing or not a spec this module reads (a name
  resolved elsewhere, a ``file:`` path): the checkpoints before the run first reaches 99% of the largest LR it
  logged. A run whose logged checkpoints are all still warming then has its last one taken for the peak: only the
  schedule can tell that the peak lies ahead.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from bayes_dcpt.laws.lr_schedules import ScheduleError, parse_schedule

__all__ = ["PEAK_SHARE", "after_burn_in", "in_warmup", "warmup_steps"]

#: A checkpoint has reached its run's peak LR at this share of it (logged LRs are rounded; a constant schedule's
#: LR after the warm-up is its peak).
PEAK_SHARE = 0.99


@lru_cache(maxsize=512)
def warmup_steps(spec: str) -> int | None:
    """The optimizer steps the schedule ``spec`` takes to first reach :data:`PEAK_SHARE` of its peak LR.

    0 for a schedule without a warm-up; None when ``spec`` is not a schedule this module reads (empty, a name, a
    ``file:`` path, which this check does not open, or not a valid spec).
    """
    text = str(spec).strip()
    if not text or text.startswith("file:"):
        return None
    try:
        sched = parse_schedule(text)
    except ScheduleError:
        return None
    if sched.kind == "explicit":  # the LR of step i (1-based) is values[i - 1]
        values = np.asarray(sched.values, float)
        return int(np.argmax(values >= PEAK_SHARE * values.max())) + 1
    # the warm-up is linear, lr_i = peak * i / warmup for i <= warmup (Schedule's docstring), then at the peak
    return max(0, math.ceil(PEAK_SHARE * sched.warmup - 1e-9)) if sched.warmup else 0


def _by_schedule(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(known, warm)``: the CPT rows whose schedule and step tell, and which of those are in the warm-up."""
    n = len(df)
    if "schedule" not in df or "step" not in df:
        return np.zeros(n, bool), np.zeros(n, bool)
    step = pd.to_numeric(df["step"], errors="coerce").to_numpy(float)
    ends = df["schedule"].map(lambda s: None if s is None or (isinstance(s, float) and np.isnan(s))
                              else warmup_steps(str(s)))
    end = pd.to_numeric(ends, errors="coerce").to_numpy(float)
    known = (df["tokens"].to_numpy(float) > 0) & np.isfinite(step) & np.isfinite(end)
    return known, known & (step < np.where(known, end, 0.0))


def in_warmup(df: pd.DataFrame) -> np.ndarray:
    """Checkpoints measured inside their run's LR warm-up: before the run first reaches its peak learning rate.

    By the run's schedule where the ``step`` and ``schedule`` columns tell, else by its logged ``lr`` (module
    docstring); a row with neither is not flagged, nor is a base-model row (``tokens == 0``).
    """
    known, out = _by_schedule(df)
    if "lr" not in df or "run_id" not in df:
        return out
    lr = pd.to_numeric(df["lr"], errors="coerce")
    cpt = (df["tokens"] > 0) & lr.notna() & ~known
    if not cpt.any():
        return out
    sub = df[cpt].assign(_lr=lr[cpt])
    peak = sub.groupby("run_id")["_lr"].transform("max")
    at_peak = sub["_lr"] >= PEAK_SHARE * peak
    first_peak = sub["tokens"].where(at_peak).groupby(sub["run_id"]).transform("min")
    out[np.flatnonzero(cpt.to_numpy())] = (sub["tokens"] < first_peak).to_numpy()
    return out


def after_burn_in(df: pd.DataFrame, burn_in: str = "warmup") -> pd.DataFrame:
    """The rows a fit with ``burn_in`` fits (``"warmup"``: no LR warm-up, :func:`in_warmup`, judged on whole runs)."""
    return df[~in_warmup(df)].reset_index(drop=True) if burn_in == "warmup" else df
