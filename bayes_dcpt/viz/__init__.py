"""Every figure of the package: fitted curves against the data, sampler diagnostics, decisions, plans.

Figures are standalone matplotlib ``Figure`` objects (no pyplot state), so they work under any backend and never
switch the user's. They are readable in grey-scale. Importing this package registers the ``.plot()`` methods of
:class:`~bayes_dcpt.decide.Decision`, :class:`~bayes_dcpt.decide.ScheduleDecision` and :class:`~bayes_dcpt.plan.Plan`.
"""

from bayes_dcpt.viz.curves import figure_png, loss_curves, loss_vs_ratio
from bayes_dcpt.viz.decisions import plot_decision
from bayes_dcpt.viz.diagnostics import rank_plot, worst_parameters
from bayes_dcpt.viz.plan import plot_plan
from bayes_dcpt.viz.schedules import plot_schedule_decision

__all__ = [
    "figure_png",
    "loss_curves",
    "loss_vs_ratio",
    "plot_decision",
    "plot_plan",
    "plot_schedule_decision",
    "rank_plot",
    "worst_parameters",
]
