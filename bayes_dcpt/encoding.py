"""JSON for every output the package writes: numpy scalars and arrays as plain Python, NaN and inf as null.

One converter for the CLI's ``--json``, decision summaries, model cards and the planner loop's records, so that
a pipeline reading them sees the same conventions everywhere (strict JSON: no ``NaN`` tokens).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["dumps", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy types turned into Python ones, non-finite floats into ``None``, keys into strings."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`to_jsonable` ``(obj)`` (strict: a NaN would raise, never be written)."""
    return json.dumps(to_jsonable(obj), allow_nan=False, **kwargs)
