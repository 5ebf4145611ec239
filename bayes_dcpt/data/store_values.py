"""How Python, numpy and pandas values become SQLite values in the experiment store, and back.

Measurements arrive from frames (numpy scalars, NaN for missing), from the probe runner (dicts of config)
and from the CLI (strings); the store keeps plain scalars, NULL and JSON. One place decides each
conversion so an imported table and a probe's own writes store the same value the same way.
"""

from __future__ import annotations

import json
import math
import os
import socket
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bayes_dcpt.data.schema import BASE_RUN_PREFIX
from bayes_dcpt.data.store_sql import StoreError

__all__ = [
    "float_or_none",
    "fmt_g",
    "host_name",
    "int_or_none",
    "now_iso",
    "parse_base_id",
    "same_value",
    "seed_value",
    "sql_value",
]


def now_iso() -> str:
    """The current UTC time as an ISO string (milliseconds), the store's timestamps."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def fmt_g(x: float) -> str:
    """A number in messages (six significant digits)."""
    return f"{x:.6g}"


def sql_value(value: Any) -> Any:
    """Python scalars for SQLite; NaN/None -> NULL; dicts/lists -> JSON."""
    if value is None:
        return None
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return value
    return value


def seed_value(value: Any) -> Any:
    """A seed as an integer when it is one (``3.0``, ``"3"``), else as :func:`sql_value` stores it."""
    value = sql_value(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equal, numbers within a relative 1e-9 (a stored run's fields against an imported table's)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def int_or_none(v: Any) -> int | None:
    """An integer, or None for a missing or unreadable value."""
    v = sql_value(v)
    try:
        return None if v is None else int(float(v))
    except (TypeError, ValueError):
        return None


def float_or_none(v: Any) -> float | None:
    """A float, or None for a missing or unreadable value."""
    v = sql_value(v)
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def parse_base_id(run_id: str) -> tuple[str, float]:
    """``base|<domain>|N=<n_params>`` -> ``(domain, n_params)`` (raises :class:`StoreError` otherwise)."""
    try:
        head, n = run_id[len(BASE_RUN_PREFIX) :].rsplit("|N=", 1)
        return head, float(n)
    except ValueError as exc:
        raise StoreError(f"{run_id!r} is not a base-model run id (base|<domain>|N=<n_params>)") from exc


def host_name() -> str:
    """The name of the machine (recorded with each run)."""
    return socket.gethostname() or os.environ.get("HOSTNAME", "unknown")
