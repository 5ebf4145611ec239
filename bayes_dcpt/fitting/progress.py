"""Live progress of a long fit: which stage it is in and how far its chains are.

``law="auto"`` at the scale of real probe logs runs for many minutes (held-out refits of several laws, then full
fits; BENCHMARKS.md, scale), and a spinner alone does not say whether a fit is a minute or an hour from done. A
*reporter* (any ``str -> None`` callable, e.g. the CLI's spinner) installed with :func:`reporting` receives one
line per stage (:func:`stage`: "L3: held-out refit, tokens split") and, while nutpie samples, the chains'
iterations and divergences so far (nutpie's ``progress_callback``, which the fits ask for twice a second; or every
``every`` seconds, and at the end). A reporter that raises is warned about and the fit goes on. Without a reporter
nothing is reported and nothing is passed to nutpie. Context variables, not arguments, carry it: the fitting
functions' signatures (and the model cards, which record sampler options) stay as they are.

    >>> from bayes_dcpt.fitting.progress import reporting
    >>> with reporting(print, every=30):
    ...     auto = bd.fit(df, law="auto")
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["chain_summary", "nutpie_callback", "reporting", "stage"]

_REPORT: ContextVar[tuple[Callable[[str], None], float] | None] = ContextVar("bayes_dcpt_report", default=None)
_STAGE: ContextVar[str] = ContextVar("bayes_dcpt_stage", default="")


@contextmanager
def reporting(report: Callable[[str], None] | None, every: float = 0.0) -> Iterator[None]:
    """Send the progress of the fits run inside the block to ``report`` (None: report nothing).

    ``every``: at least this many seconds between two lines of a sampler's progress (its last line, and every
    stage, are always sent); 0 passes on each of nutpie's updates (twice a second), right for a spinner.
    """
    token = _REPORT.set(None if report is None else (report, float(every)))
    try:
        yield
    finally:
        _REPORT.reset(token)


@contextmanager
def stage(label: str) -> Iterator[None]:
    """Name the stage the block runs (reported once at its start; prefixes the chains' progress inside it)."""
    token = _STAGE.set(label)
    try:
        hook = _REPORT.get()
        if hook is not None:
            _send(hook[0], label)
        yield
    finally:
        _STAGE.reset(token)


def _send(report: Callable[[str], None], line: str) -> None:
    """Hand ``line`` to the reporter; a failing reporter is warned about, it does not stop a fit of many minutes."""
    try:
        report(line)
    except Exception as exc:  # the reporter is the user's code; the fit matters more
        warnings.warn(f"the progress reporter failed ({type(exc).__name__}: {exc}); the fit goes on",
                      RuntimeWarning, stacklevel=3)


def chain_summary(chains: Sequence[Any]) -> str:
    """One short line from nutpie's per-chain progress: the phase, iterations done / all, divergences so far."""
    done = sum(int(c.finished_draws) for c in chains)
    total = sum(int(c.total_draws) for c in chains)
    div = sum(int(c.divergences) for c in chains)
    phase = "warm-up" if any(bool(c.tuning) for c in chains) else "draws"
    pct = 100.0 * done / total if total else 0.0
    return f"{phase} {done:,}/{total:,} ({pct:.0f}%), {div} divergence{'s' if div != 1 else ''}"


def nutpie_callback() -> Callable[[Sequence[Any]], None] | None:
    """The ``progress_callback`` for nutpie from the current reporter and stage (None when nothing is reported).

    nutpie calls it from its sampling thread; it only formats a line and hands it to the reporter.
    """
    hook = _REPORT.get()
    if hook is None:
        return None
    report, every = hook
    label = _STAGE.get()
    last = [-float("inf")]

    def callback(chains: Sequence[Any]) -> None:
        now = time.monotonic()
        finished = all(int(c.finished_draws) >= int(c.total_draws) for c in chains)
        if now - last[0] < every and not finished:
            return
        last[0] = now
        line = chain_summary(chains)
        _send(report, f"{label}: {line}" if label else line)

    return callback
