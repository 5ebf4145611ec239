"""What a report asks and the answers it shows: the trade-off question, the compute allocation and the plan.

Defaults of the usage inputs (every one can be given): the trade-off asks about the largest measured model
size trained on ``4 x`` the largest measured CPT tokens with at most a 3% relative rise of the general loss
over the base model; the compute allocation spends the FLOPs of that run (``6 N D``) at each domain's
risk-aware ratio; the planner targets r* of the domain whose r* interval is widest, with candidates from the
data's domains and model sizes, ratios ``{0.1, data ratios in (0, 1), 0.9}`` and token budgets ``{1, 2, 4} x``
the largest measured tokens. Every default chosen is recorded as a note for the reader.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import InputError

__all__ = ["TOKENS_FACTOR", "Answers", "answer", "default_candidates", "default_usage_inputs"]

#: Token budget of the trade-off question, as a multiple of the largest measured CPT tokens.
TOKENS_FACTOR = 4.0


@dataclass
class Answers:
    """The decisions and the plan a report shows, with the inputs as used and the notes about defaults."""

    trade: Any
    decisions: dict[str, Any]
    inputs: dict[str, Any]
    flops: float
    compute: dict[str, Any]
    skipped: dict[str, str]
    plan: Any = None
    plan_domain: str | None = None
    n_candidates: int = 0
    why_not: str | None = None
    notes: list[str] = field(default_factory=list)


def default_usage_inputs(
    fit: Any, *, n_params: float | None = None, tokens: float | None = None
) -> dict[str, float]:
    """The trade-off question the report asks by default.

    The largest measured model size that has a base-model row, trained on ``4 x`` the largest measured CPT
    tokens.
    """
    df = fit.data
    ref = _data.base_losses(df)
    cpt = _data.fit_rows(df)
    if n_params is None:
        sizes = ref.dropna(subset=["loss_general"])["n_params"] if len(ref) else pd.Series(dtype=float)
        if sizes.empty:
            raise InputError(
                "the data has no base-model rows (tokens == 0) with a general loss: give --n-params "
                "and --base-loss"
            )
        n_params = float(sizes.max())
    if tokens is None:
        tokens = TOKENS_FACTOR * float(cpt["tokens"].max())
    return {"n_params": float(n_params), "tokens": float(tokens)}


def default_candidates(fit: Any) -> pd.DataFrame:
    """Candidate probes for the plan.

    Every fitted domain x measured size with a base model x ratios ``{0.1, data ratios strictly inside
    (0, 1), 0.9}`` x token budgets ``{1, 2, 4} x`` the largest measured.
    """
    from bayes_dcpt.plan.candidates import candidates_from_menus

    df = fit.data
    cpt = _data.fit_rows(df)
    ref = _data.base_losses(df)
    sizes = sorted(float(n) for n in (ref["n_params"].unique() if len(ref) else cpt["n_params"].unique()))
    ratios = sorted({0.1, 0.9, *(float(r) for r in cpt["r_domain"].dropna().unique() if 0 < r < 1)})
    tmax = float(cpt["tokens"].max())
    return candidates_from_menus(list(fit.domains), sizes, [tmax, 2 * tmax, 4 * tmax], ratios)


def _question_note(usage: Mapping[str, float], n_params: float | None, tokens: float | None) -> str:
    if n_params is None and tokens is None:
        return (
            f"trade-off question (default): N = {usage['n_params']:,.0f} parameters (the largest measured "
            f"size with a base model), D = {usage['tokens']:,.0f} tokens ({TOKENS_FACTOR:g} x the largest "
            "measured)"
        )
    return f"trade-off question: N = {usage['n_params']:,.0f}, D = {usage['tokens']:,.0f} tokens"


def _compute_allocation(
    fit: Any, decs: Mapping[str, Any], flops: float, ci: float
) -> tuple[dict[str, Any], dict[str, str]]:
    """Usage 3 per domain at its risk-aware ratio; the domains skipped, with why."""
    comp: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if "domain" not in fit.targets:
        return comp, {d: "the fit has no domain loss" for d in decs}
    if getattr(fit.law, "family", "") == "cpt":
        why = ("not applicable to the CPT law: it predicts CPT as a change from a base model you already have, so "
               "it does not trade the model size against CPT tokens (a D-CPT fit, law='dcpt', does)")
        return comp, dict.fromkeys(decs, why)
    for dom, d in decs.items():
        ra = d.summary(ci).risk_aware or {}
        r = ra.get("r_domain") if ra.get("feasible") else None
        if r is None or not np.isfinite(r) or r <= 0:
            skipped[dom] = "no ratio meets the trade-off constraint with the required probability"
            continue
        comp[dom] = fit.optimize("compute", domain=dom, flops=flops, r_domain=float(r), target="domain")
    return comp, skipped


def _widest_domain(fit: Any, decs: Mapping[str, Any], ci: float) -> str:
    """The domain whose r* interval is widest (ties broken by name; the fit's first domain when none has r*)."""
    widths = {}
    for dom, d in decs.items():
        tb = d.summary(ci).table
        if "r_domain" in tb.index:
            widths[dom] = float(tb.loc["r_domain", "hi"] - tb.loc["r_domain", "lo"])
    return max(widths, key=lambda x: (np.nan_to_num(widths[x], nan=-1.0), x)) if widths else fit.domains[0]


def _candidates(fit: Any, candidates: pd.DataFrame | str | Path | None) -> pd.DataFrame:
    if candidates is None:
        return default_candidates(fit)
    if isinstance(candidates, (str, Path)):
        from bayes_dcpt.plan.candidates import read_candidates

        return read_candidates(candidates)
    return candidates


def _suggest(
    fit: Any,
    ans: Answers,
    tradeoff_kw: Mapping[str, Any],
    *,
    domain: str | None,
    candidates: pd.DataFrame | str | Path | None,
    k: int,
    budget: float | None,
    ci: float,
    seed: int,
) -> None:
    """Run the planner on r* of the requested (or widest) domain; fills ``ans.plan`` and its details."""
    ans.plan_domain = domain or _widest_domain(fit, ans.decisions, ci)
    if domain is None:
        ans.notes.append(f"plan target: r* of domain {ans.plan_domain} (the widest {ci:.0%} interval of r*)")
    cands = _candidates(fit, candidates)
    ans.n_candidates = len(cands)
    skw = {k_: v for k_, v in tradeoff_kw.items() if k_ != "prob"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ans.plan = fit.suggest(cands, "tradeoff", k=k, budget=budget, seed=seed, domain=ans.plan_domain, **skw)


def answer(
    fit: Any,
    *,
    n_params: float | None,
    tokens: float | None,
    max_general_increase: float,
    relative: bool,
    base_loss: float | Mapping[str, float] | None,
    prob: float,
    domain: str | None,
    candidates: pd.DataFrame | str | Path | None,
    k: int,
    budget: float | None,
    plan: bool,
    ci: float,
    seed: int,
    measured: pd.DataFrame | None = None,
) -> Answers:
    """Ask the report's questions of ``fit``: the trade-off, the compute allocation and (if ``plan``) the plan.

    The decisions come first: they validate every usage input before anything is drawn or written.
    """
    notes: list[str] = []
    usage = default_usage_inputs(fit, n_params=n_params, tokens=tokens)
    if n_params is None or tokens is None:
        notes.append(_question_note(usage, n_params, tokens))
    inp = {**usage, "max_general_increase": max_general_increase, "relative": bool(relative), "prob": prob}
    tkw = dict(inp)
    if base_loss is not None:
        tkw["base_loss"] = base_loss
    if measured is not None:  # r* checked against the crossing the runs measure, where they measure one
        tkw["data"] = measured
    trade = fit.optimize("tradeoff", **tkw)
    decs = dict(trade.items()) if hasattr(trade, "items") else {trade.domain: trade}
    for d in decs.values():
        inp["base_loss_" + d.domain] = d.inputs["base_loss"]
    flops = 6.0 * inp["n_params"] * inp["tokens"]
    comp, skipped = _compute_allocation(fit, decs, flops, ci)
    ans = Answers(trade, decs, inp, flops, comp, skipped, notes=notes)
    if plan:
        _suggest(fit, ans, tkw, domain=domain, candidates=candidates, k=k, budget=budget, ci=ci, seed=seed)
    return ans
