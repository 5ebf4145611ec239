"""Checks of the numbers a user passes to a decision: one clear error that names the input, never a traceback."""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_dcpt.errors import InputError

__all__ = ["number", "positive", "unit_interval"]


def number(name: str, value: Any) -> float:
    """``value`` as a finite float, or an :class:`~bayes_dcpt.errors.InputError` naming the input."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    return v


def positive(name: str, value: Any) -> float:
    """``value`` as a float > 0, or an :class:`~bayes_dcpt.errors.InputError` naming the input."""
    v = number(name, value)
    if v <= 0:
        raise InputError(f"{name} must be > 0, got {value!r}")
    return v


def unit_interval(name: str, value: Any, *, open_: bool = False) -> float:
    """``value`` as a float in [0, 1] (``(0, 1)`` when ``open_``), or an error naming the input."""
    v = number(name, value)
    if (open_ and not 0 < v < 1) or (not open_ and not 0 <= v <= 1):
        raise InputError(f"{name} must be in {'(0, 1)' if open_ else '[0, 1]'}, got {value!r}")
    return v
