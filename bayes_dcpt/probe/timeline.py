"""Learning-rate schedules and the evaluation schedule of a probe (pure Python + numpy, no torch).

* :func:`lr_at` -- constant, cosine, linear or WSD (warmup-stable-decay) with linear warmup; the arithmetic
  is :class:`bayes_dcpt.laws.lr_schedules.Schedule`'s, so what a probe trains with is exactly the schedule the
  CPT dynamics law reads (:func:`train_schedule` builds it from the training settings).
* :func:`eval_tokens` -- where to evaluate: tokens == 0 (the base model), then exponentially spaced token
  counts (dense early, sparse late, the D-CPT paper's sampling), optionally every ``every`` tokens as well
  (whole loss curves for the dynamics law), plus any required points such as the DLC probe budget ``b``
  and ``2b``; all rounded to whole optimizer steps.
"""

from __future__ import annotations

from typing import Any

from bayes_dcpt.laws.lr_schedules import DECAY_SHAPES, Schedule, ScheduleError

__all__ = ["DECAY_SHAPES", "SCHEDULES", "ScheduleError", "eval_tokens", "lr_at", "train_schedule"]

SCHEDULES = ("constant", "cosine", "linear", "wsd")


def train_schedule(
    total_steps: int,
    peak: float,
    kind: str = "constant",
    warmup: int = 0,
    min_ratio: float = 0.1,
    decay_frac: float = 0.2,
    decay: str = "linear",
) -> Schedule:
    """The :class:`~bayes_dcpt.laws.lr_schedules.Schedule` of a training run (``final = min_ratio * peak``).

    A warmup longer than the run is cut to the run's length.
    """
    if kind not in SCHEDULES:
        raise ScheduleError(f"unknown schedule {kind!r}; use one of {', '.join(SCHEDULES)}")
    total = max(int(total_steps), 1)
    kw: dict[str, Any] = {"steps": total, "peak": float(peak), "warmup": min(int(warmup), total)}
    if kind != "constant":
        kw["final"] = float(peak) * float(min_ratio)
    if kind == "wsd":
        kw.update(decay_frac=float(decay_frac), decay=decay)
    return Schedule(kind, **kw)


def lr_at(
    step: int,
    total_steps: int,
    peak: float,
    kind: str = "constant",
    warmup: int = 0,
    min_ratio: float = 0.1,
    decay_frac: float = 0.2,
    decay: str = "linear",
) -> float:
    """Learning rate before optimizer step ``step`` (0-based) of ``total_steps``.

    ``constant``: linear warmup then ``peak``; ``cosine``: warmup then cosine to ``min_ratio * peak``;
    ``linear``: warmup then a straight line to ``min_ratio * peak``; ``wsd``: warmup, stable at ``peak``,
    then a decay (``decay`` shape) to ``min_ratio * peak`` over the last ``decay_frac`` of the steps.
    """
    sched = train_schedule(total_steps, peak, kind, warmup, min_ratio, decay_frac, decay)
    return sched.lr_at(min(max(int(step), 0), sched.steps - 1))


def eval_tokens(
    total_tokens: int,
    tokens_per_step: int,
    first: int | None = None,
    per_octave: float = 1.0,
    extra: tuple[int, ...] = (),
    every: int | None = None,
) -> list[int]:
    """Evaluation points in tokens: 0, then ``first * 2**(k / per_octave)`` up to ``total_tokens``.

    Every point is rounded to a whole number of optimizer steps (at least one); ``every`` adds the
    multiples of that many tokens (a whole curve: annealing drops and re-warmup bumps are visible);
    ``extra`` points are added (e.g. the DLC probe budget and its double); the last point is always
    ``total_tokens``.
    """
    if tokens_per_step <= 0 or total_tokens < tokens_per_step:
        raise ScheduleError(
            f"the token budget ({total_tokens}) must be at least one optimizer step "
            f"({tokens_per_step} tokens)"
        )
    if per_octave <= 0:
        raise ScheduleError("per_octave must be > 0")
    if every is not None and every < tokens_per_step:
        raise ScheduleError(f"eval_every ({every}) must be at least one optimizer step ({tokens_per_step} tokens)")
    first = tokens_per_step if first is None else max(int(first), tokens_per_step)
    pts: set[int] = {0}
    k = 0
    while True:
        t = first * 2 ** (k / per_octave)
        if t > total_tokens * (1 + 1e-9):
            break
        pts.add(max(1, round(t / tokens_per_step)) * tokens_per_step)
        k += 1
    if every:
        step_every = max(1, round(every / tokens_per_step))
        n_steps = total_tokens // tokens_per_step
        pts.update(s * tokens_per_step for s in range(step_every, n_steps + 1, step_every))
    for e in extra:
        if e <= 0 or e > total_tokens:
            raise ScheduleError(f"evaluation point {e} is outside (0, {total_tokens}]")
        pts.add(max(1, round(e / tokens_per_step)) * tokens_per_step)
    pts.add((total_tokens // tokens_per_step) * tokens_per_step)
    return sorted(pts)
