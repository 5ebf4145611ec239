"""Decisions as a terminal table (rich): what ``bayes-dcpt optimize`` prints.

One row per (domain, quantity) with the median and the equal-tailed interval, then the risk-aware answer,
the probability statements, the draw counts and the notes (a measured crossing the answer disagrees with is a
FLAG row), so that a reader sees at once how sure the answer is and whether the data contradict it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.decide.results import Decision, DecisionSet, format_value
from bayes_dcpt.decide.wording import risk_answers
from bayes_dcpt.errors import InputError

__all__ = ["decision_table"]


def decision_table(decisions: Decision | DecisionSet | Sequence[Decision], ci: float = CI_PROB) -> Any:
    """A rich :class:`~rich.table.Table` of one or more decisions.

    One row per (domain, quantity) with the median and the ``ci`` interval, then the counts, probabilities
    and the risk-aware answer. The column of numbers holds medians, ratios and probabilities, so it is headed
    ``estimate`` and the caption says which is which.
    """
    from rich.table import Table

    if isinstance(decisions, Decision):
        items = [decisions]
    elif isinstance(decisions, DecisionSet):
        items = list(decisions.values())
    else:
        items = list(decisions)
    if not items:
        raise InputError("decision_table needs at least one decision")
    usage = items[0].usage
    t = Table(title=f"{usage}: per-draw answers ({ci:.0%} equal-tailed intervals)", title_justify="left",
              caption=f"estimate: the posterior median where a {ci:.0%} interval follows; otherwise a probability "
                      "(P(...) rows), a single ratio (risk-aware rows) or a count (draws)", caption_justify="left")
    for col, kw in (("domain", {"style": "bold"}), ("quantity", {}), ("estimate", {"justify": "right"}),
                    (f"{ci:.0%} interval", {"justify": "right"}), ("note", {})):
        t.add_column(col, **kw)
    for d in items:
        _add_rows(t, d, ci)
    return t


def _add_rows(t: Any, d: Decision, ci: float) -> None:
    """The rows of one decision: its quantities (or budgets), risk-aware answer, probabilities and counts."""
    from rich.text import Text

    fmt = format_value
    s = d.summary(ci)
    if d.usage == "critical-curve":
        for tok, row in s.table.iterrows():
            t.add_row(d.domain, f"r* at D = {tok:.4g} tokens", fmt(row["median"]),
                      f"{fmt(row['lo'])} .. {fmt(row['hi'])}",
                      f"risk-aware {fmt(row['risk_aware'])} (one run {fmt(row['risk_aware_one_run'])}; one run "
                      f"crosses {fmt(row['one_run_lo'])} .. {fmt(row['one_run_hi'])}); "
                      f"infeasible {int(row['infeasible'])}, "
                      f"always satisfied {int(row['always_satisfied'])}")
    else:
        for _, row in s.table.iterrows():
            note = "" if row["valid_share"] > 0.9999 else f"defined for {row['valid_share']:.1%} of draws"
            t.add_row(d.domain, str(row["description"]), fmt(row["median"]),
                      f"{fmt(row['lo'])} .. {fmt(row['hi'])}", note)
    for a in risk_answers(s.risk_aware).values():
        t.add_row(d.domain, a.label, a.value(".4g"), "", a.note)
    for p in s.probabilities.values():
        t.add_row(d.domain, p.statement, f"{p.value:.3f}", "", "")
    t.add_row(d.domain, "draws", str(s.counts.get("n_draws", d.n_draws)), "",
              ", ".join(f"{k}: {v}" for k, v in s.counts.items() if k != "n_draws"))
    for n in s.notes:
        flag = n in s.flags
        t.add_row(d.domain, "FLAG" if flag else "note", "", "", Text(n, style="bold" if flag else ""))
