"""The batch: stopping checks, the greedy budgeted choice of ``k`` probes, and the table of the chosen ones.

Probes are added one at a time by their information about the target per (marginal) GPU-hour, each
conditional on the earlier picks (Gaussian conditioning), so a batch is not ``k`` copies of one probe; a base
model pre-trained for one pick is not paid again, and the GPU-hour budget is never exceeded. Ratio-greedy can
waste a budget on cheap probes, so with a budget it is compared with the greedy batch that starts from the
most informative affordable probe, and the better one is kept (Leskovec et al. 2007).

A probe picked again is an independent replicate run (its own run offset and checkpoint noise; the same law and the
same model discrepancy, which a replicate cannot average away). It is picked only when its information given the
earlier picks, per GPU-hour, beats every design not yet in the batch, and its row says so with both numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.plan.cost import base_keys
from bayes_dcpt.plan.information import Conditioner
from bayes_dcpt.plan.options import SuggestOptions
from bayes_dcpt.plan.scoring import Scored
from bayes_dcpt.plan.targets import TargetDraws
from bayes_dcpt.plan.verification import reliably_checked

__all__ = ["BATCH_COLUMNS", "batch_table", "choose_batch", "constant_value", "greedy_batch", "stopping_checks"]

#: Columns of a batch table besides the candidates' own (the order of an empty table's columns).
BATCH_COLUMNS = (
    "gpu_hours",
    "cum_gpu_hours",
    "U_theta",
    "U_z",
    "U_z_per_gpu_hour",
    "U_theta_alone",
    "U_z_alone",
    "width_after_probe",
    "width_after_batch",
    "repeat",
    "best_new_U_z_per_gpu_hour",
    "why",
)


def constant_value(z: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | None:
    """The target's value when every draw of positive weight gives the same one (per component), else None.

    Draws of weight 0 (importance-reweighted away after probes landed) say nothing about the target: a value only
    they take does not make it uncertain.
    """
    z = np.asarray(z, float)
    if weights is not None:
        z = z[np.asarray(weights, float) > 0]
    if not z.size:
        return None
    tol = 1e-12 * np.maximum(1.0, np.abs(z[0]))
    return z[0] if np.all(np.ptp(z, axis=0) <= tol) else None


def stopping_checks(scored: Scored, td: TargetDraws, opts: SuggestOptions,
                    weights: np.ndarray | None = None) -> tuple[dict[str, Any], list[str]]:
    """The stopping rule before any pick: the target's width reached, no probe informative enough, or nothing to learn.

    Nothing to learn: every posterior draw gives the target the same value (e.g. r* = 1, domain data only, in every
    draw of a limited-data question): its interval has width 0, every probe's information about it is 0, and a
    batch chosen among zeros would be noise presented as a plan.

    ``weights``: the posterior's importance weights (None: uniform); only draws of positive weight count.

    Returns the checks (for the plan) and the reasons to stop (empty: go on).
    """
    hours, alone = scored.hours, scored.alone
    current_width = scored.current_width
    stop_width, min_info = opts.stop_width, opts.min_info_per_gpu_hour
    best_info_per_hour = float(np.max(alone["U_z"] / hours)) if len(hours) else 0.0
    clipped_share = td.n_clipped / td.z.size
    constant = constant_value(td.z, weights)
    checks = {
        "current_width": current_width,
        "stop_width": stop_width,
        "target_clipped_share": clipped_share,
        # an interval made of boundary values (infeasible draws) is not a resolved target
        "width_reached": bool(stop_width is not None and current_width <= stop_width and clipped_share <= 0.5),
        "best_info_per_gpu_hour": best_info_per_hour,
        "min_info_per_gpu_hour": min_info,
        "info_below_threshold": bool(min_info is not None and best_info_per_hour < min_info),
        "target_constant": constant is not None,
    }
    stop_reasons: list[str] = []
    if checks["width_reached"]:
        stop_reasons.append(
            f"the {opts.ci:.0%} interval width {current_width:.4g} is within the tolerance {stop_width:.4g}"
        )
    if checks["target_constant"]:
        value = ", ".join(f"{v:.4g}" for v in constant) + (f" {td.unit}" if td.unit else "")
        if td.n_nan == td.z.shape[0]:
            value = f"every draw infeasible, counted as {value}"
        which = "draw of positive weight" if weights is not None and np.any(np.asarray(weights) <= 0) else "draw"
        stop_reasons.append(f"every posterior {which} gives the target the same value ({value}): its "
                            f"{opts.ci:.0%} interval has width 0 and no probe can narrow it (nothing to learn; "
                            "ask about another target, e.g. another size, tokens or threshold)")
    if checks["info_below_threshold"]:
        stop_reasons.append(f"no candidate gives {min_info:.3g} nats per GPU-hour (best {best_info_per_hour:.3g})")
    return checks, stop_reasons


def _feasible(marg: np.ndarray, spent: float, used: np.ndarray, opts: SuggestOptions) -> np.ndarray:
    """Candidates that still fit the budget (and, without repeats, were not picked yet)."""
    feas = np.ones(len(marg), bool)
    if opts.budget_gpu_hours is not None:
        feas &= marg <= opts.budget_gpu_hours - spent + 1e-9
    if not opts.allow_repeats:
        feas &= ~used
    return feas


def greedy_batch(
    scored: Scored, cands: pd.DataFrame, opts: SuggestOptions, start: int | None
) -> tuple[list[dict[str, Any]], float]:
    """Pick up to ``k`` probes greedily (starting with ``start`` if given); returns the picks and I(z; batch)."""
    cd = Conditioner(scored.ensemble)
    keys = base_keys(cands)
    alone = scored.alone
    picks: list[dict[str, Any]] = []
    spent = 0.0
    paid: set[tuple[float, float]] = set()
    used = np.zeros(len(cands), bool)
    while len(picks) < opts.k:
        marg = opts.cost_model.marginal_hours(cands, paid)
        sc = cd.scores()
        feas = _feasible(marg, spent, used, opts)
        if not feas.any():
            break
        if start is not None and not picks:
            c = start
            if not feas[c]:
                break
        else:
            c = int(np.argmax(np.where(feas, sc["U_z"] / marg**opts.kappa, -np.inf)))
        if opts.min_info_per_gpu_hour is not None and sc["U_z"][c] / marg[c] < opts.min_info_per_gpu_hour:
            break
        best_new, why = _against_new_designs(sc["U_z"], marg, feas & ~used, c, bool(used[c]), opts.kappa)
        cd.condition(c)
        spent += float(marg[c])
        if keys[c] is not None:
            paid.add(keys[c])
        used[c] = True
        picks.append(
            {
                "cand": c,
                "gpu_hours": float(marg[c]),
                "cum_gpu_hours": spent,
                "U_theta": float(sc["U_theta"][c]),
                "U_z": float(sc["U_z"][c]),
                "U_z_per_gpu_hour": float(sc["U_z"][c] / marg[c]),
                "U_theta_alone": float(alone["U_theta"][c]),
                "U_z_alone": float(alone["U_z"][c]),
                "width_after_probe": float(scored.width_from_var(alone["v_post"][c])),
                "width_after_batch": float(scored.width_from_var(np.diag(cd.target_cov))),
                "repeat": bool(any(p["cand"] == c for p in picks)),
                "best_new_U_z_per_gpu_hour": best_new,
                "why": why,
            }
        )
        if opts.stop_width is not None and picks[-1]["width_after_batch"] <= opts.stop_width:
            break
    return picks, cd.target_information()


def _against_new_designs(u_z: np.ndarray, marg: np.ndarray, new: np.ndarray, c: int, repeat: bool,
                         kappa: float) -> tuple[float, str]:
    """The best design not yet picked (its U_z per GPU-hour, given the earlier picks) and why ``c`` was picked.

    Only a replicate needs a reason: the greedy picks it over every new design by ``U_z / GPU-h^kappa``.
    """
    score = np.where(new, u_z / marg**kappa, -np.inf)
    if not new.any():
        return float("nan"), "replicate: no new design fits the budget" if repeat else ""
    j = int(np.argmax(score))
    best = float(u_z[j] / marg[j])
    if not repeat:
        return best, ""
    unit = "nats/GPU-h" if kappa == 1 else f"nats/GPU-h, ranked by U_z/GPU-h^{kappa:g}"
    return best, (f"replicate: more information per GPU-hour than any new design "
                  f"({u_z[c] / marg[c]:.3g} vs {best:.3g} {unit})")


def choose_batch(
    scored: Scored,
    cands: pd.DataFrame,
    opts: SuggestOptions,
    forced_first: int | None,
    first_pick: str,
    stop_reasons: list[str],
    notes: list[str],
) -> tuple[list[dict[str, Any]], float, str]:
    """The batch (empty when a stopping rule fired): the picks, I(z; batch) and how the first was chosen.

    With a budget and ``singleton_check``, the greedy batch from the most informative affordable probe
    replaces the ratio-greedy one when it gives more information. Reasons for an empty batch are added to
    ``stop_reasons``.
    """
    if stop_reasons:
        return [], 0.0, first_pick
    budget, hours, alone = opts.budget_gpu_hours, scored.hours, scored.alone
    picks, info = greedy_batch(scored, cands, opts, forced_first)
    if budget is not None and opts.singleton_check and len(cands):
        afford = hours <= budget
        if afford.any():
            best_single = int(np.argmax(np.where(afford, alone["U_z"], -np.inf)))
            if not picks or picks[0]["cand"] != best_single:
                alt, alt_info = greedy_batch(scored, cands, opts, best_single)
                if alt_info > info + 1e-12:
                    picks, info, first_pick = alt, alt_info, "budget"
                    notes.append(
                        "budgeted greedy: starting from the most informative affordable probe gives "
                        "more information within the budget than the ratio-greedy batch"
                    )
    if not picks:
        if budget is not None and not (hours <= budget).any():
            stop_reasons.append(f"no candidate fits the budget of {budget:.4g} GPU-h (cheapest {hours.min():.4g})")
        elif opts.min_info_per_gpu_hour is not None:
            stop_reasons.append(f"no candidate gives {opts.min_info_per_gpu_hour:.3g} nats per GPU-hour")
    return picks, info, first_pick


def batch_table(picks: list[dict[str, Any]], cands: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per pick, in pick order: rank, the candidate, the pick's numbers, its bands and checks."""
    cand_cols = list(cands.columns)
    rows = []
    for r, p in enumerate(picks, start=1):
        c = p["cand"]
        row = {"rank": r, **{col: cands.iloc[c][col] for col in cand_cols}}
        row.update({kk: v for kk, v in p.items() if kk != "cand"})
        for col in scores.columns:
            if col.startswith(("pred_loss_", "is_")):
                row[col] = scores.iloc[c][col]
        row["verified"] = reliably_checked(scores, c)  # checked, and the check can be trusted
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(columns=["rank", *cand_cols, *BATCH_COLUMNS, "verified"])
    return table
