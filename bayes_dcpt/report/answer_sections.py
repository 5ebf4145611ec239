"""The sections of a report about what the fit answers, one function per section, each returning its blocks.

The header and the key answers up front, then the posterior of the critical ratio r* with the trade-off
curves and threshold (usage 1 of the D-CPT paper, with the risk-aware answer and the infeasible-draw counts),
the compute allocation (usage 3), the planner's next suggested probes, and the commands that reproduce the
fit and the report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import pandas as pd

from bayes_dcpt._version import __version__
from bayes_dcpt.decide.wording import risk_answers
from bayes_dcpt.fitting.diagnostics import number_or_na
from bayes_dcpt.report.blocks import Block, Heading, Image, Para, Pre, Table, fmt, fmt_frame, interval
from bayes_dcpt.report.fit_sections import ordinal, problems_words, rhat_words, run_words, weighs_laws

__all__ = ["arg", "compute_section", "header", "key_answers", "plan_section", "refit_path", "reproduce_section",
           "tradeoff_section", "verdict_paras"]


def header(ci: float, source: str | None) -> list[Block]:
    """When and by which version the report was written, from which fit, and the interval probability."""
    return [
        Para(
            f"Written {time.strftime('%Y-%m-%d %H:%M')} by bayes-dcpt {__version__}"
            + (f" from {source}" if source else "")
            + f". Intervals: {ci:.0%}."
        )
    ]


def _answer_line(dom: str, dec: Any, ci: float) -> str:
    s = dec.summary(ci)
    tb, answers = s.table, risk_answers(s.risk_aware)
    if "r_domain" in tb.index:
        r = tb.loc["r_domain"]
        return (
            f"{dom}: r* = {r['median']:.3f} ({ci:.0%} interval {r['lo']:.3f} to {r['hi']:.3f}); "
            f"risk-aware r = {answers['law'].value() if answers else 'none'}"
            + (f" (for one run: {answers['one_run'].value()})" if "one_run" in answers else "") + "; "
            + (f"one run crosses the threshold at r = {tb.loc['one_run_crossing', 'lo']:.3f} to "
               f"{tb.loc['one_run_crossing', 'hi']:.3f} ({ci:.0%}); " if "one_run_crossing" in tb.index else "")
            + f"infeasible draws {s.counts['infeasible']} of {s.counts['n_draws']}"
            + "".join(f". {n}" for n in s.flags)
        )
    return f"{dom}: no draw meets the constraint (infeasible {s.counts['infeasible']} of {s.counts['n_draws']})"


def verdict_paras(diag: Any, adequacy: Any) -> list[Para]:
    """Two lines: did the sampler converge, and does the law describe the data (red when not)."""
    if diag.approximate:
        sampler = Para(f"sampler: {diag.sampler} is an approximation, without convergence diagnostics", bad=True)
    else:
        # R-hat's value, or why there is none; on a failed fit the problems say why
        rhat = rhat_words(diag) if diag.sampler_ok else number_or_na(diag.rhat_max, ".4f")
        stats = (f"{diag.sampler}, {run_words(diag.chains, diag.draws)}: divergences {diag.divergences}, "
                 f"R-hat max {rhat}, ESS bulk/tail min {number_or_na(diag.ess_bulk_min, '.0f')}/"
                 f"{number_or_na(diag.ess_tail_min, '.0f')}, BFMI min {number_or_na(diag.bfmi_min, '.2f')}")
        sampler = Para(f"sampler: OK ({stats})", good=True) if diag.sampler_ok else \
            Para(f"sampler: PROBLEMS ({problems_words(diag.problems)}; {stats}): do not trust the intervals", bad=True)
    if adequacy is None:
        return [sampler]
    if adequacy.ok and not diag.misfit:
        return [sampler, Para(f"fit: OK, {adequacy.summary()}", good=True)]
    n = f"{len(adequacy.failures)} of {len(adequacy.checks)} checks fail" if adequacy.failures else \
        f"{len(diag.misfit)} checks fail"
    return [sampler, Para(f"fit: MISFIT, the law does not describe the data ({n}; see Diagnostics): the answers "
                          "below are not to be trusted where it fails", bad=True)]


def key_answers(decs: Mapping[str, Any], plan: Any, diag: Any, notes: list[str], ci: float,
                adequacy: Any = None) -> list[Block]:
    """The verdict on the fit, r* per domain, the top suggested probe and the notes about defaults."""
    blocks: list[Block] = [Heading(2, "Key answers", "key"), *verdict_paras(diag, adequacy)]
    lines = [_answer_line(dom, dd, ci) for dom, dd in decs.items()]
    if plan is not None and len(plan.table):
        top = plan.table.iloc[0]
        lines.append(
            f"next probe: {top['domain']}, N = {top['n_params']:,.0f}, D = {top['tokens']:,.0f} tokens, "
            f"r_domain = {top['r_domain']:.3g}, {top['gpu_hours']:.3g} GPU-hours"
        )
    blocks += [Para(ln) for ln in lines]
    blocks += [Para(f"note: {n}") for n in notes]
    return blocks


def _tradeoff_table(decs: Mapping[str, Any], ci: float) -> pd.DataFrame:
    rows = []
    for dom, d in decs.items():
        s = d.summary(ci)
        tb = s.table
        r = tb.loc["r_domain"] if "r_domain" in tb.index else None
        ra = s.risk_aware or {}
        answers = risk_answers(ra)
        rows.append(
            {
                "domain": dom,
                "median r*": fmt(r["median"], ".3f") if r is not None else "n/a",
                f"{ci:.0%} interval": interval(r["lo"], r["hi"], ".3f") if r is not None else "n/a",
                f"risk-aware r (P >= {ra.get('prob', 0.9):g})": answers["law"].value() if answers else "none",
                "risk-aware r for one run": answers["one_run"].value() if "one_run" in answers else "n/a",
                f"one run crosses the threshold ({ci:.0%})": interval(
                    tb.loc["one_run_crossing", "lo"], tb.loc["one_run_crossing", "hi"], ".3f")
                if "one_run_crossing" in tb.index else "n/a",
                "domain loss at r* (median)": fmt(tb.loc["loss_domain", "median"], ".4g")
                if "loss_domain" in tb.index
                else "n/a",
                "base general loss L0": fmt(d.inputs["base_loss"], ".4g"),
                "draws": s.counts["n_draws"],
                "infeasible": s.counts["infeasible"],
                "always satisfied": s.counts["always_satisfied"],
            }
        )
    return pd.DataFrame(rows)


def _threshold(inp: Mapping[str, Any]) -> str:
    if inp["relative"]:
        return f"{inp['max_general_increase']:.3g} ({inp['max_general_increase']:.1%} of the base loss)"
    return f"{inp['max_general_increase']:.3g} nats"


def tradeoff_section(decs: Mapping[str, Any], inp: Mapping[str, Any], ci: float, dpi: int) -> list[Block]:
    """r* per domain (usage 1): the question asked, the table of answers and each domain's decision plot."""
    from bayes_dcpt.viz import curves as plotting

    blocks: list[Block] = [
        Heading(2, "Critical mixture ratio r* (trade-off)", "tradeoff"),
        Para(
            f"Usage 1 of the D-CPT paper, solved for every posterior draw: the largest domain share r* whose general "
            f"loss for a model of N = {inp['n_params']:,.0f} parameters after D = {inp['tokens']:,.0f} CPT tokens "
            f"stays within {_threshold(inp)} above the base model's. The risk-aware r is the largest share whose "
            f"constraint holds with probability >= {inp['prob']:g}; the one for one run asks the same of a single "
            "run's measured loss, its own offset and noise included (what a team training one run lives with). "
            "Infeasible draws (even r = 0 breaks the "
            "threshold) are counted, never dropped; the interval of r* is over the feasible draws."
        ),
    ]
    t = _tradeoff_table(decs, ci)
    mask = pd.DataFrame(False, index=t.index, columns=t.columns)
    mask["infeasible"] = t["infeasible"].astype(int) > 0
    blocks.append(Table(t, mask, caption=f"r* per domain ({ci:.0%} equal-tailed intervals)"))
    # r* checked against the crossing the runs measure: at the asked N and D, else where they measure it nearest
    blocks += [Para(f"{dom}: {n}", bad=n.startswith("DISAGREES")) for dom, d in decs.items() for n in d.check_notes(ci)]
    for dom, d in decs.items():
        fig = d.plot(ci=ci)
        blocks.append(
            Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: posterior of r* and trade-off curves",
                f"{dom}: posterior of r* (top), the general-loss increase against r with the "
                "threshold (dashed), and the domain loss against r; dotted: median r*, hatched: "
                f"its {ci:.0%} interval, dash-dotted: the risk-aware r.",
                f"tradeoff_{dom}",
            )
        )
    return blocks


def _compute_row(dom: str, d: Any, ci: float) -> dict[str, Any]:
    tb = d.summary(ci).table
    return {
        "domain": dom,
        "r_domain": fmt(d.inputs["r_domain"], ".3f"),
        "N_opt median": fmt(tb.loc["n_params_opt", "median"], ".3g"),
        f"N_opt {ci:.0%}": interval(tb.loc["n_params_opt", "lo"], tb.loc["n_params_opt", "hi"]),
        "D_opt median": fmt(tb.loc["tokens_opt", "median"], ".3g"),
        f"D_opt {ci:.0%}": interval(tb.loc["tokens_opt", "lo"], tb.loc["tokens_opt", "hi"]),
        "domain loss median": fmt(tb.loc["loss_domain", "median"], ".4g") if "loss_domain" in tb.index else "n/a",
        "degenerate draws": d.extras["counts"].get("degenerate", 0),
    }


def compute_section(
    comp: Mapping[str, Any], flops: float, ci: float, dpi: int, skipped: Mapping[str, str]
) -> list[Block]:
    """Compute-optimal N and D per domain at its risk-aware ratio (usage 3), and the domains without one."""
    from bayes_dcpt.viz import curves as plotting

    blocks: list[Block] = [
        Heading(2, "Compute allocation", "compute"),
        Para(
            f"Usage 3: for a budget of C = {flops:.3g} FLOPs (6 N D of the run above), the model size "
            "N and CPT tokens D that minimise the domain loss at each domain's risk-aware ratio "
            "(closed form of appendix G.3 per draw)."
        ),
    ]
    rows = [_compute_row(dom, d, ci) for dom, d in comp.items()]
    if rows:
        blocks.append(Table(pd.DataFrame(rows), caption=f"Compute-optimal N and D ({ci:.0%} intervals)"))
    for dom, why in skipped.items():
        blocks.append(Para(f"{dom}: no compute allocation ({why}).", bad=not why.startswith("not applicable")))
    for dom, d in comp.items():
        fig = d.plot(ci=ci)
        blocks.append(
            Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: compute-optimal allocation",
                f"{dom}: per-draw compute-optimal (N, D) on the iso-FLOP line; star: the median.",
                f"compute_{dom}",
            )
        )
    return blocks


#: Columns of the plan's batch table shown in the report, with their display names.
_PLAN_COLUMNS = {
    "rank": "rank",
    "domain": "domain",
    "n_params": "N",
    "tokens": "tokens",
    "r_domain": "r_domain",
    "gpu_hours": "GPU-hours",
    "U_z": "U_z (nats)",
    "U_z_per_gpu_hour": "U_z per GPU-hour",
    "width_after_batch": "r* width after",
    "pred_loss_domain_lo": "domain loss lo",
    "pred_loss_domain_hi": "domain loss hi",
}


def _plan_figure(plan: Any, dpi: int) -> Image:
    from bayes_dcpt.viz import curves as plotting

    fig = plan.plot()
    try:
        png = plotting.figure_png(fig, dpi=dpi)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return Image(
        png,
        "planner: information against cost",
        "Left: expected information against cost for every candidate (stars: the batch); "
        "middle: expected r* interval width against cumulative GPU-hours; right: predicted "
        "losses of the batch's probes at their last checkpoint.",
        "plan",
    )


def plan_section(plan: Any, plan_domain: str | None, n_cands: int, dpi: int, why_not: str | None) -> list[Block]:
    """The planner's suggested batch: how it ranks, the batch table, its summary and its figure."""
    blocks: list[Block] = [Heading(2, "Next suggested probes", "plan")]
    if plan is None:
        return [*blocks, Para(f"No plan: {why_not}", bad=True)]
    blocks.append(
        Para(
            f"The planner ranks {n_cands} candidate probe runs by the expected information they give about r* of "
            f"domain {plan_domain} per GPU-hour, and picks a batch of {plan.k} (one per GPU; a repeated row is an "
            "independent replicate). U_z: expected information about the target (nats); width after: expected "
            f"{plan.ci:.0%} interval width of r* after the batch so far."
        )
    )
    tb = plan.table
    cols = [c for c in _PLAN_COLUMNS if c in tb]
    show = tb[cols].rename(columns={c: n for c, n in _PLAN_COLUMNS.items() if c != n})
    blocks.append(Table(fmt_frame(show), caption=f"Suggested batch (target: {plan.target})"))
    blocks.append(Pre(plan.summary()))
    blocks.append(_plan_figure(plan, dpi))
    return blocks


def arg(x: float) -> str:
    """A number as a command-line argument: ``2097152`` for a whole number, else 6 significant digits."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:.6g}"


def _report_command(
    fit_path: str, inp: Mapping[str, Any], base_loss: Any, domain: str | None, k: int, budget: float | None, fmt_: str
) -> str:
    cmd = (
        f"bayes-dcpt report {fit_path} --out report.{'md' if fmt_ == 'md' else 'html'} "
        f"--n-params {arg(inp['n_params'])} --tokens {arg(inp['tokens'])} "
        f"--max-general-increase {inp['max_general_increase']:g}"
    )
    if not inp["relative"]:
        cmd += " --absolute"
    if isinstance(base_loss, (int, float)):
        cmd += f" --base-loss {base_loss:g}"
    if domain:
        cmd += f" --domain {domain}"
    return cmd + f" --k {k}" + (f" --budget-gpu-hours {budget:g}" if budget else "")


def _fit_command(fit: Any, out: str) -> str:
    """``bayes-dcpt fit`` with the law, target, sampler settings and model options of ``fit``, writing ``out``."""
    sc = fit.sampler_config
    if weighs_laws(fit):  # law="auto": the same candidates, weighed again
        cfg, law = fit.best.config, f"auto --auto-laws {','.join(fit.weights)}"
    else:
        cfg, law = fit.config, fit.law.name
    cmd = (f"bayes-dcpt fit DATA.csv --law {law} --target {cfg.target} --draws {sc.get('draws')} "
           f"--tune {sc.get('tune')} --chains {sc.get('chains')} --seed {sc.get('seed')}")
    if sc.get("sampler", "nutpie") != "nutpie":
        cmd += f" --sampler {sc.get('sampler')}"
    if (sc.get("options") or {}).get("target_accept") is not None:
        cmd += f" --target-accept {sc['options']['target_accept']:g}"
    if not getattr(cfg, "run_effect", True):
        cmd += " --no-run-effect"
    if getattr(cfg, "run_offsets", "marginal") != "marginal":
        cmd += f" --run-offsets {cfg.run_offsets}"
    if getattr(cfg, "domain_levels", "separate") != "separate":
        cmd += f" --domain-levels {cfg.domain_levels}"
    if not getattr(cfg, "robust", True):
        cmd += " --normal"
    return cmd + f" --out {out}"


def refit_path(source: str | None) -> str:
    """Where the reproduced fit is written: ``<stem>-refit.nc`` in the working folder (never over the source)."""
    if not source:
        return "refit.nc"
    p = PurePath(source)
    return f"{p.stem}-refit{p.suffix or '.nc'}"


def reproduce_section(
    fit: Any,
    source: str | None,
    inp: Mapping[str, Any],
    base_loss: Any,
    domain: str | None,
    k: int,
    budget: float | None,
    fmt_: str,
) -> list[Block]:
    """The commands that refit the model (to a new file, never over the source) and rewrite this report."""
    from bayes_dcpt.data import schema as _data

    sc = fit.sampler_config
    fit_path = source or "FIT.nc"
    lines = [
        f"# fit ({run_words(sc.get('chains'), sc.get('draws'), sc.get('tune'))}, seed {sc.get('seed')}); "
        f"DATA.csv: the measurements fitted (data hash {_data.data_hash(fit.data)})",
        _fit_command(fit, refit_path(source)),
        "# this report",
        _report_command(fit_path, inp, base_loss, domain, k, budget, fmt_),
    ]
    if sc.get("thin"):
        lines.insert(2, f"# (the source file keeps every {ordinal(sc['thin'])} draw: {sc.get('draws_saved')} per "
                        "chain)")
    return [Heading(2, "Reproduce", "reproduce"), Pre("\n".join(lines))]
