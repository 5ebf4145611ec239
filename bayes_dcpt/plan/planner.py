"""What to run next: rank candidate probe runs by the information they give about your target, per GPU-hour.

After a fit, :func:`suggest` scores every candidate probe (a table of ``domain, n_params, tokens, r_domain``,
see :mod:`bayes_dcpt.plan.candidates`) by the moment-matched goal-oriented information ("MM-GOIG",
``../shared/planner.md``): how much one run -- its general and domain loss at every checkpoint, with a
per-run offset in the noise -- is expected to shrink the uncertainty of the target quantity (the optimal or
critical ratio r*, the loss of a target run, a set of target points), divided by its cost in GPU-hours
(:mod:`bayes_dcpt.plan.cost`). A batch of ``k`` probes (one per GPU) is chosen greedily with Gaussian
conditioning, so that it is not ``k`` copies of one probe; a GPU-hour budget is never exceeded. The top
candidates are checked by importance reweighting (simulated outcomes, PSIS), and a stopping rule says when
more probes are not worth it.

This module composes the steps, each in its own module: the checks against the fit
(:mod:`~bayes_dcpt.plan.screening`), the scores (:mod:`~bayes_dcpt.plan.scoring`), the reweighting check
(:mod:`~bayes_dcpt.plan.verification`) and the batch (:mod:`~bayes_dcpt.plan.batch`); targets are in
:mod:`~bayes_dcpt.plan.targets` and the result in :mod:`~bayes_dcpt.plan.result` (both re-exported here).

Quickstart::

    >>> from bayes_dcpt import plan as planner
    >>> cands = planner.candidates_from_menus(["code"], [0.5e9, 1.8e9], [2e9, 5e9], [0.1, 0.3, 0.5, 0.7, 0.9])
    >>> tgt = planner.critical_ratio_target("code", 7e9, 1e11, max_general_increase=0.03)   # 3% relative
    >>> plan = planner.suggest(post, cands, tgt, k=3, budget_gpu_hours=200)
    >>> print(plan.summary()); plan.to_csv("plan.csv"); plan.plot()
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.hooks import provides
from bayes_dcpt.plan.batch import batch_table, choose_batch, stopping_checks
from bayes_dcpt.plan.candidates import (
    DEFAULT_FIRST_FRACTION,
    DEFAULT_N_CHECKPOINTS,
    candidates_from_menus,
    read_candidates,
    validate_candidates,
)
from bayes_dcpt.plan.cost import CostModel
from bayes_dcpt.plan.options import SuggestOptions
from bayes_dcpt.plan.result import Plan, plan_table
from bayes_dcpt.plan.scoring import Scored, predicted_bands, score_candidates, scoring_draws
from bayes_dcpt.plan.screening import screen_candidates
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
from bayes_dcpt.plan.verification import check_by_reweighting, first_pick_by_check
from bayes_dcpt.posterior.draws import Posterior, as_posterior
from bayes_dcpt.posterior.extrapolation import reach_remedy, reach_words

__all__ = [
    "Plan",
    "Target",
    "TargetDraws",
    "as_target",
    "candidates_from_menus",
    "critical_ratio_target",
    "decision_target",
    "loss_target",
    "make_target",
    "plan_table",
    "read_candidates",
    "suggest",
    "suggest_for",
    "target_callable",
    "target_draws",
    "validate_candidates",
]


def suggest(
    post: Posterior, candidates: pd.DataFrame, target: Any, *, k: int = 3, budget_gpu_hours: float | None = None,
    cost_model: CostModel | None = None, kappa: float = 1.0, verify_top: int = 10, seed: int = 0,
    stop_width: float | None = None, min_info_per_gpu_hour: float | None = None, allow_repeats: bool = True,
    singleton_check: bool = True, n_checkpoints: int = DEFAULT_N_CHECKPOINTS,
    first_fraction: float = DEFAULT_FIRST_FRACTION, max_draws: int = 2000, n_verify: int = 200,
    ci: float = CI_PROB, require_base: bool = True,
) -> Plan:
    """Rank candidate probes by expected information about ``target`` per GPU-hour and choose a batch.

    Parameters
    ----------
    post
        The fitted posterior (its importance weights, if any, are used).
    candidates
        Candidate probes (see :mod:`bayes_dcpt.plan.candidates`); validated here.
    target
        A :class:`Target`, draws ``(S,)``/``(S, m)``, a callable ``post -> draws``, or a table of target
        points.
    k
        Maximum number of probes in the batch (one per GPU).
    budget_gpu_hours
        Hard cap on the batch's GPU-hours. With ``singleton_check`` the plan maximises information within it
        (Leskovec et al. 2007: ratio-greedy vs the best affordable single probe, completed greedily).
    cost_model
        GPU-hour model (default :class:`~bayes_dcpt.plan.cost.CostModel`).
    kappa
        Cost exponent of the score ``U_z / gpu_hours^kappa`` (1: information per GPU-hour; 0: ignore cost).
    verify_top
        Check the top candidates by importance reweighting (``n_verify`` simulated outcomes each).
    seed
        Seed of the draw subsample, the verification and the predicted bands: same seed, same plan.
    stop_width
        Tolerance on the target's interval width: stop when reached (now, or by the batch so far).
    min_info_per_gpu_hour
        Do not propose probes giving fewer nats per GPU-hour than this.
    allow_repeats
        A candidate may be chosen twice in one batch (an independent replicate run).
    n_checkpoints, first_fraction
        Default evaluation schedule of candidates without their own.
    max_draws
        Score on at most this many draws (a seeded subsample; weights kept).
    ci
        Interval probability of the widths (equal-tailed).
    require_base
        Refuse candidates whose base model size is not among the fit's base models unless they pay for
        pre-training (``pretrain_tokens``).

    Returns
    -------
    Plan

    Notes
    -----
    Noise: each probe's outputs are the log losses at its checkpoints, general and domain, with covariance
    ``E[sigma^2] I + E[tau^2] 11^T`` per loss (posterior averages; Student-t checkpoint noise enters through
    its variance ``sigma^2 nu / (nu - 2)``, with ``nu`` floored at 2.5). ``U_theta`` is the information
    about the law's outputs (the noise parameters excluded). Widths after a probe scale the current
    equal-tailed interval by the Gaussian posterior-to-prior standard-deviation ratio of the target.
    """
    post = as_posterior(post)
    opts = SuggestOptions(
        k=k, budget_gpu_hours=budget_gpu_hours, cost_model=cost_model or CostModel(), kappa=kappa,
        verify_top=verify_top, seed=seed, stop_width=stop_width, min_info_per_gpu_hour=min_info_per_gpu_hour,
        allow_repeats=allow_repeats, singleton_check=singleton_check, n_checkpoints=n_checkpoints,
        first_fraction=first_fraction, max_draws=max_draws, n_verify=n_verify, ci=ci,
    )
    cands, notes = screen_candidates(post, candidates, require_base)
    tgt = as_target(target)
    td = tgt.evaluate(post)
    notes += td.notes
    draws = scoring_draws(post, cands, td, opts, notes)
    scored = score_candidates(draws, cands, opts)
    predicted_bands(scored.scores, draws, opts)
    verified = check_by_reweighting(scored, draws, opts)
    forced_first, first_pick = first_pick_by_check(scored, verified, opts, notes)
    checks, stop_reasons = stopping_checks(scored, td, opts, post.weights)
    picks, info, first_pick = choose_batch(scored, cands, opts, forced_first, first_pick, stop_reasons, notes)
    table = batch_table(picks, cands, scored.scores)
    notes += other_domain_notes(table, tgt.domains, post.has_discrepancy)
    far = reach_notes(post, tgt.where)
    notes += far
    checks["target_beyond_reach"] = bool(far)  # its widths rest on the law carried out there (the note says how far)
    return _plan(table, scored, td, opts, info=info, checks=checks, stop_reasons=stop_reasons, notes=notes,
                 first_pick=first_pick)


def other_domain_notes(table: pd.DataFrame, target_domains: Sequence[str], shared_discrepancy: bool) -> list[str]:
    """A note when the batch probes domains the target is not about: say through what they inform it.

    A probe of domain B tells about a quantity of domain A only through what the fit shares between domains: the
    law's error beyond the data (one discrepancy shift per draw, common to every domain, when the fit calibrated
    one) and the population-level priors. Ranking such a probe first is then a bet that the domains err alike
    there; users should see that bet, not guess it from the table.
    """
    if not len(target_domains) or table.empty or "domain" not in table:
        return []
    other = table[~table["domain"].astype(str).isin([str(d) for d in target_domains])]
    if other.empty:
        return []
    ranks = ", ".join(f"#{int(r)}" for r in other["rank"])
    via = ("the law's error beyond the data, which the fit takes to be one shift common to every domain, and the "
           "priors the domains share" if shared_discrepancy else "the priors the domains share")
    return [f"probe(s) {ranks} are of {', '.join(sorted(set(other['domain'].astype(str))))}, not of the target's "
            f"{', '.join(target_domains)}: they inform the target only through {via}, so their rank rests on the "
            "domains erring alike"]


def reach_notes(post: Posterior, where: Sequence[tuple[str, float, float, float]]) -> list[str]:
    """A CAUTION when the target lies farther out than the fit measured its law's error (first point in full).

    The planner ranks probes by how much they narrow the target's interval; out there that interval's width is the
    measured growth carried on, so the ranking rests on it too.
    """
    if not where:
        return []
    frame = pd.DataFrame(list(where), columns=["domain", "n_params", "tokens", "r_domain"])
    far = [a for a in post.frame_beyond_reach(frame) if a]
    if not far:
        return []
    return ["CAUTION: the target lies beyond what the fit's data checked: " + reach_words(far[0]) + "; its "
            "interval, and how much each probe narrows it, rest on that: " + reach_remedy(far[0])]


def _plan(table: pd.DataFrame, scored: Scored, td: TargetDraws, opts: SuggestOptions, *, info: float,
          checks: dict[str, Any], stop_reasons: list[str], notes: list[str], first_pick: str) -> Plan:
    """Assemble the :class:`Plan` of a batch table and the scores behind it."""
    if td.n_nan:
        checks["target_infeasible_draws"] = td.n_nan
    return Plan(
        table=table,
        scores=scored.scores,
        target=td.name,
        target_unit=td.unit,
        target_labels=td.labels,
        current_width=scored.current_width,
        width_after_batch=float(table["width_after_batch"].iloc[-1]) if len(table) else scored.current_width,
        info_batch=float(info),
        total_gpu_hours=float(table["gpu_hours"].sum()) if len(table) else 0.0,
        budget_gpu_hours=opts.budget_gpu_hours,
        k=int(opts.k),
        kappa=float(opts.kappa),
        ci=opts.ci,
        stop=bool(stop_reasons),
        stop_reasons=stop_reasons,
        checks=checks,
        notes=notes,
        cost_model=opts.cost_model,
        first_pick=first_pick,
    )


@provides("suggest")
def suggest_for(fit: Any, candidates: Any, target: Any = "tradeoff", *, k: int = 3,
                budget_gpu_hours: float | None = None, cost_model: CostModel | None = None, **kwargs: Any) -> Plan:
    """:func:`suggest` for a fit or posterior with the target given as a usage name and its inputs.

    What ``fit.suggest(...)`` calls; ``candidates`` may be a table or a CSV path.
    """
    tgt, rest = make_target(target, **kwargs)
    if isinstance(candidates, (str, Path)):
        candidates = read_candidates(candidates)
    return suggest(fit, candidates, tgt, k=k, budget_gpu_hours=budget_gpu_hours, cost_model=cost_model, **rest)
