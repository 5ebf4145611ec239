"""The risk-aware answers and probability statements of a decision, worded once for every place that shows them.

A tradeoff decision has two risk-aware answers: the law's (the largest ``r`` whose *expected* general loss stays
within the threshold with probability ``prob``) and the one for one run (the largest ``r`` at which a single run's
*measured* loss stays within it, its offset and checkpoint noise included). The summary's text, the rich decision
table, the CLI's tables, the demo's line and the report all show both; they take the labels, the "none" and the
reason for it from here, so the five surfaces cannot drift apart.

A decision's probability statements (:class:`Probability`) are keyed by a stable name for code and JSON
(``"law_within_at_median"``), and carry the sentence a reader sees (``"P(constraint holds at the median r* =
0.7688)"``) and the ratio they are about: a pipeline never has to parse a number out of a key.

:func:`percent` words a share of the posterior weight (infeasible draws, say) so that a few draws of thousands
never read as "0%" nor all but a few as "100%".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["STATEMENTS", "Probability", "RiskAnswer", "percent", "probability", "risk_answers"]

#: The sentence of each probability statement, by its key (``{at}``: the ratio it is about).
STATEMENTS = {
    "law_within_at_median": "P(constraint holds at the median r* = {at:.4f})",
    "one_run_within_at_median": "P(one run at the median r* = {at:.4f} stays within it)",
    "one_run_within_at_risk_aware": "P(one run at the risk-aware r = {at:.4f} stays within it)",
    "r_star_at_least_half": "P(r* >= 0.5)",
    "r_star_rises_with_budget": "P(r* at the largest budget > r* at the smallest)",
    "interior_optimum": "P(interior optimum r* < 1)",
    "more_compute_to_size": "P(a > 0.5): extra compute goes more to N than to D",
    "best": "P(best = {name} at r={at:g})",
}


@dataclass(frozen=True)
class Probability:
    """One probability statement of a decision: its value, the sentence a reader sees, the ratio it is about.

    ``float(p)`` is its value. Decisions key these by a stable name (:data:`STATEMENTS`), the same in Python and in
    ``--json``, where each is ``{"value", "statement", "r_domain"}`` (``r_domain`` only when it is about one ratio).
    """

    value: float
    statement: str
    at: float | None = None

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the value, the sentence and, when it is about one ratio, that ratio."""
        return {"value": float(self.value), "statement": self.statement,
                **({"r_domain": float(self.at)} if self.at is not None else {})}


def probability(key: str, value: float, at: float | None = None, **names: str) -> Probability:
    """The statement ``key`` of :data:`STATEMENTS` with its value (``at``: the ratio it is about)."""
    return Probability(float(value), STATEMENTS[key].format(at=at, **names), None if at is None else float(at))


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
