"""Learning-rate schedules and the evaluation schedule of a probe (pure Python, no torch).

* :func:`lr_at` -- constant, cosine or WSD (warmup-stable-decay) with linear warmup.
* :func:`eval_tokens` -- where to evaluate: tokens == 0 (the base model), then exponentially spaced token
  counts (dense early, sparse late, the D-CPT paper's sampling), plus any required points such as the
  DLC probe budget ``b`` and ``2b``; all rounded to whole optimizer steps.
"""

from __future__ import annotations

import math

from bayes_dcpt.errors import BayesDCPTError

__all__ = ["SCHEDULES", "ScheduleError", "eval_tokens", "lr_at"]

SCHEDULES = ("constant", "cosine", "wsd")


class ScheduleError(BayesDCPTError):
    """Invalid schedule settings."""


def lr_at(
    step: int,
    total_steps: int,
    peak: float,
    kind: str = "constant",
    warmup: int = 0,
    min_ratio: float = 0.1,
    decay_frac: float = 0.2,
) -> float:
    """Learning rate before optimizer step ``step`` (0-based) of ``total_steps``.

    ``constant``: linear warmup then ``peak``; ``cosine``: warmup then cosine to ``min_ratio * peak``;
    ``wsd``: warmup, stable at ``peak``, then linear decay to ``min_ratio * peak`` over the last
    ``decay_frac`` of the steps.
    """
    if kind not in SCHEDULES:
        raise ScheduleError(f"unknown schedule {kind!r}; use one of {', '.join(SCHEDULES)}")
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    if kind == "constant":
        return peak
    lo = peak * min_ratio
    if kind == "cosine":
        span = max(total_steps - warmup, 1)
        t = min(max(step - warmup, 0) / span, 1.0)
        return lo + 0.5 * (peak - lo) * (1 + math.cos(math.pi * t))
    decay_steps = max(int(round(decay_frac * total_steps)), 1)
    start = total_steps - decay_steps
    if step < start:
        return peak
    t = min((step - start + 1) / decay_steps, 1.0)
    return peak + (lo - peak) * t


def eval_tokens(
    total_tokens: int,
    tokens_per_step: int,
    first: int | None = None,
    per_octave: float = 1.0,
    extra: tuple[int, ...] = (),
) -> list[int]:
    """Evaluation points in tokens: 0, then ``first * 2**(k / per_octave)`` up to ``total_tokens``.

    Every point is rounded to a whole number of optimizer steps (at least one); ``extra`` points are
    added (e.g. the DLC probe budget and its double); the last point is always ``total_tokens``.
    """
    if tokens_per_step <= 0 or total_tokens < tokens_per_step:
        raise ScheduleError(
            f"the token budget ({total_tokens}) must be at least one optimizer step "
            f"({tokens_per_step} tokens)"
        )
    if per_octave <= 0:
        raise ScheduleError("per_octave must be > 0")
    first = tokens_per_step if first is None else max(int(first), tokens_per_step)
    pts: set[int] = {0}
    k = 0
    while True:
        t = first * 2 ** (k / per_octave)
        if t > total_tokens * (1 + 1e-9):
            break
        pts.add(max(1, round(t / tokens_per_step)) * tokens_per_step)
        k += 1
    for e in extra:
        if e <= 0 or e > total_tokens:
            raise ScheduleError(f"evaluation point {e} is outside (0, {total_tokens}]")
        pts.add(max(1, round(e / tokens_per_step)) * tokens_per_step)
    pts.add((total_tokens // tokens_per_step) * tokens_per_step)
    return sorted(pts)
