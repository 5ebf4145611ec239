"""What to run next: targets, candidate probes, their cost and information, the batch, updates and loops.

:func:`suggest` ranks candidate probe runs by the information they give about a target quantity (r*, a loss)
per GPU-hour and picks a budgeted batch; :func:`update` reweights a posterior when probes land; :class:`PlannerLoop`
closes the loop (suggest, run, update or refit), against a simulated world (:class:`World`), a table of real
runs, or the probe runner.
"""

from bayes_dcpt.plan.baselines import baseline_order
from bayes_dcpt.plan.candidates import (
    CANDIDATE_COLUMNS,
    candidates_from_menus,
    checkpoint_frame,
    eval_checkpoints,
    read_candidates,
    validate_candidates,
)
from bayes_dcpt.plan.cost import CostModel
from bayes_dcpt.plan.executors import SimulatorExecutor, TableExecutor
from bayes_dcpt.plan.loop import LoopResult, PlannerLoop, gpu_hours_to_width
from bayes_dcpt.plan.persistence import load_posterior, save_posterior
from bayes_dcpt.plan.planner import suggest, suggest_for
from bayes_dcpt.plan.result import Plan, plan_table
from bayes_dcpt.plan.simulate import World, probe_grid
from bayes_dcpt.plan.simulate_dynamics import DynamicsWorld
from bayes_dcpt.plan.targets import (
    Target,
    TargetDraws,
    as_target,
    critical_ratio_target,
    decision_target,
    loss_target,
    make_target,
    target_callable,
    target_draws,
)
from bayes_dcpt.plan.update import UpdateResult, run_log_likelihood, update

__all__ = [
    "CANDIDATE_COLUMNS",
    "CostModel",
    "DynamicsWorld",
    "LoopResult",
    "Plan",
    "PlannerLoop",
    "SimulatorExecutor",
    "TableExecutor",
    "Target",
    "TargetDraws",
    "UpdateResult",
    "World",
    "as_target",
    "baseline_order",
    "candidates_from_menus",
    "checkpoint_frame",
    "critical_ratio_target",
    "decision_target",
    "eval_checkpoints",
    "gpu_hours_to_width",
    "load_posterior",
    "loss_target",
    "make_target",
    "plan_table",
    "probe_grid",
    "read_candidates",
    "run_log_likelihood",
    "save_posterior",
    "suggest",
    "suggest_for",
    "target_callable",
    "target_draws",
    "update",
    "validate_candidates",
]
