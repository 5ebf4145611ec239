"""The risk-aware answers of a tradeoff decision, worded once for every place that shows them.

A tradeoff decision has two risk-aware answers: the law's (the largest ``r`` whose *expected* general loss stays
within the threshold with probability ``prob``) and the one for one run (the largest ``r`` at which a single run's
*measured* loss stays within it, its offset and checkpoint noise included). The summary's text, the rich decision
table, the CLI's tables, the demo's line and the report all show both; they take the labels, the "none" and the
reason for it from here, so the five surfaces cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RiskAnswer", "risk_answers"]


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
