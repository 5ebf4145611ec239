"""The risk-aware answers of a tradeoff decision, worded once for every place that shows them.

A tradeoff decision has two risk-aware answers: the law's (the largest ``r`` whose *expected* general loss stays
within the threshold with probability ``prob``) and the one for one run (the largest ``r`` at which a single run's
*measured* loss stays within it, its offset and checkpoint noise included). The summary's text, the rich decision
table, the CLI's tables, the demo's line and the report all show both; they take the labels, the "none" and the
reason for it from here, so the five surfaces cannot drift apart.

:func:`percent` words a share of the posterior weight (infeasible draws, say) so that a few draws of thousands
never read as "0%" nor all but a few as "100%".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RiskAnswer", "percent", "risk_answers"]


@dataclass(frozen=True)
class RiskAnswer:
    """One risk-aware answer: which one it is, how it is labelled, its ratio (``None``: no ratio qualifies).

    ``label`` is the label with the probability, ``why_none`` what to say when no ratio qualifies and ``detail``
    what the answer includes when one does.
    """

    key: str
    label: str
    r: float | None
    why_none: str
    detail: str

    def value(self, spec: str = ".3f") -> str:
        """The ratio formatted with ``spec``, or ``"none"`` when no ratio qualifies."""
        return "none" if self.r is None else format(self.r, spec)

    @property
    def note(self) -> str:
        """What the answer includes when it exists, why there is none otherwise."""
        return self.detail if self.r is not None else self.why_none


def _ratio(entry: Mapping[str, Any]) -> float | None:
    r = entry.get("r_domain")
    if not entry.get("feasible") or r is None or not np.isfinite(r):
        return None
    return float(r)


def risk_answers(ra: Mapping[str, Any] | None) -> dict[str, RiskAnswer]:
    """The law's risk-aware answer and, where it was computed, the one for one run (empty without ``ra``).

    Keyed ``"law"`` and ``"one_run"``, in that order.
    """
    if not ra:
        return {}
    prob = float(ra.get("prob", 0.9))
    out = {"law": RiskAnswer("law", f"risk-aware r (P(constraint holds) >= {prob:g})", _ratio(ra),
                             "no r meets the constraint with this probability", str(ra.get("method", "")))}
    if "one_run" in ra:
        out["one_run"] = RiskAnswer("one_run", f"risk-aware r for one run (P(it stays within) >= {prob:g})",
                                    _ratio(ra["one_run"]),
                                    "no r keeps one run within the threshold with this probability",
                                    "its offset and noise included")
    return out


def percent(share: float) -> str:
    """``share`` (0..1) as a percentage that never hides whether it is none, some or all of the weight.

    ``0%``, ``<0.1%``, ``0.1%``, ``12%``, ``99.5%``, ``>99.9%``, ``100%``: whole percents from 10% to 90%, one
    decimal below and above, so 5 draws of 4,000 read ``0.1%``, not ``0%``; a share that is neither 0 nor 1
    never prints as either.
    """
    share = float(share)
    if not np.isfinite(share):
        return "n/a"
    if share <= 0 or share >= 1:
        return "0%" if share <= 0 else "100%"
    text = f"{share:.0%}" if 0.1 <= share <= 0.9 else f"{share:.1%}"
    if text in ("0.0%", "0%"):
        return "<0.1%"
    if text in ("100.0%", "100%"):
        return ">99.9%"
    return text
