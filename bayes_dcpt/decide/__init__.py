"""Decisions under uncertainty: the D-CPT paper's usages and the LR-schedule choice, solved per posterior draw.

Users want "which ratio, how big, how many tokens, and how sure are we", not parameters: every function here
takes a fit or a :class:`~bayes_dcpt.posterior.Posterior`, answers its question for every draw and returns a
:class:`Decision` whose answer is a distribution (median, interval, risk-aware value, counts of infeasible draws).

* :mod:`~bayes_dcpt.decide.ratio`: usage 1, the trade-off (:func:`tradeoff`, with the risk-aware answer) and
  the critical-ratio curve against tokens (:func:`critical_ratio_curve`);
* :mod:`~bayes_dcpt.decide.limited`: usage 2, limited domain data (:func:`limited_data`);
* :mod:`~bayes_dcpt.decide.compute`: usage 3, compute allocation (:func:`compute_allocation`);
* :mod:`~bayes_dcpt.decide.usages`: the usages by name (:func:`optimize`, :data:`USAGES`);
* :mod:`~bayes_dcpt.decide.lr_choice`: which LR schedule and replay ratio (:func:`choose_schedule`);
* :mod:`~bayes_dcpt.decide.results`, :mod:`~bayes_dcpt.decide.table`: what a decision returns and how it prints;
  :mod:`~bayes_dcpt.decide.draws`: the law per draw (with its calibrated error beyond the data);
  :mod:`~bayes_dcpt.decide.measured`: the trade-off checked against the measured crossing;
  :mod:`~bayes_dcpt.decide.inputs`: input checks.

Conventions: ``r_domain`` is the domain share (the general loss is evaluated at its own ratio
``1 - r_domain``); ``n_params``, ``tokens`` and FLOPs are raw counts (the laws use billions inside).
Intervals are equal-tailed (``ci=0.9`` by default) and respect the posterior's weights. Draws for which a
constraint cannot be met (``infeasible``) or never binds (``always_satisfied``) are flagged and counted,
never dropped: quantiles of ``r*`` are over the feasible draws, probabilities are over all draws. With several
fitted domains and ``domain=None`` every usage answers for each domain and returns a :class:`DecisionSet`.
A decision's ``inputs`` say where its numbers come from: the base loss (given, measured, or predicted per draw by
the base-loss law) and how far the question lies beyond the data.

Quickstart::

    >>> from bayes_dcpt import decide
    >>> d = decide.tradeoff(post, n_params=1.8e9, tokens=10e9, max_general_increase=0.03)
    >>> d.summary()                    # median, 90% interval, counts, P(...) and the risk-aware r
    >>> fig = d.plot()                 # the r* posterior over the trade-off curves
    >>> decide.compute_allocation(post, flops=5e19, r_domain=0.5).summary()
"""

from bayes_dcpt.decide.compute import allocation_constants, compute_allocation
from bayes_dcpt.decide.inputs import number, positive, unit_interval
from bayes_dcpt.decide.limited import limited_data
from bayes_dcpt.decide.lr_choice import ScheduleDecision, candidate_grid, choose_schedule
from bayes_dcpt.decide.ratio import critical_ratio_curve, tradeoff
from bayes_dcpt.decide.results import Decision, DecisionSet, DecisionSummary
from bayes_dcpt.decide.table import decision_table
from bayes_dcpt.decide.usages import USAGES, optimize, usage_inputs

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
