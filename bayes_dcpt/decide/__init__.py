"""Decisions under uncertainty: the D-CPT paper's usages and the LR-schedule choice, solved per posterior draw.

Users want "which ratio, how big, how many tokens, and how sure are we", not parameters: every function here
takes a fit or a :class:`~bayes_dcpt.posterior.Posterior`, answers its question for every draw and returns a
:class:`Decision` whose answer is a distribution (median, interval, risk-aware value, counts of infeasible draws).
"""

from bayes_dcpt.decide.inputs import number, positive, unit_interval
from bayes_dcpt.decide.lr_choice import ScheduleDecision, candidate_grid, choose_schedule
from bayes_dcpt.decide.usages import (
    USAGES,
    Decision,
    DecisionSet,
    DecisionSummary,
    allocation_constants,
    compute_allocation,
    critical_ratio_curve,
    decision_table,
    limited_data,
    optimize,
    tradeoff,
    usage_inputs,
)

__all__ = [
    "USAGES",
    "Decision",
    "DecisionSet",
    "DecisionSummary",
    "ScheduleDecision",
    "allocation_constants",
    "candidate_grid",
    "choose_schedule",
    "compute_allocation",
    "critical_ratio_curve",
    "decision_table",
    "limited_data",
    "number",
    "optimize",
    "positive",
    "tradeoff",
    "unit_interval",
    "usage_inputs",
]
