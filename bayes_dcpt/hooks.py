"""Late-bound methods: results offer conveniences whose code lives in a higher layer.

A fit offers ``fit.optimize(...)`` and ``fit.suggest(...)`` although decisions and the planner sit above the
fit in the package's layers, and a decision offers ``.plot()`` although figures live in :mod:`bayes_dcpt.viz`.
The higher layer registers its implementation under a name when it is imported (``import bayes_dcpt`` imports
every layer), so no module imports a layer above its own and the import graph has no cycles -- the same
arrangement as pandas' plotting backends or xarray's accessors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bayes_dcpt.errors import BayesDCPTError

__all__ = ["call", "provides"]

_IMPLEMENTATIONS: dict[str, tuple[str, Callable[..., Any]]] = {}


def provides(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the implementation of the late-bound method ``name``."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _IMPLEMENTATIONS[name] = (fn.__module__, fn)
        return fn

    return register


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the implementation registered for ``name`` (a clear error when its layer was never imported)."""
    if name not in _IMPLEMENTATIONS:  # importing any part of bayes_dcpt runs its __init__, which registers all
        raise BayesDCPTError(f"no implementation of {name!r} is registered (was bayes_dcpt imported whole?)")
    return _IMPLEMENTATIONS[name][1](*args, **kwargs)
