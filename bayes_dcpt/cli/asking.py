"""What the decision commands (optimize, suggest) need from their options, and how suggest prints its plan.

:func:`require_run` names the options a usage needs (``--n-params``, ``--tokens``, ``--flops``) before anything is
computed, with values from the fit's data as an example; :func:`print_plan` prints a plan at any terminal width.
"""

from __future__ import annotations

from typing import Any

from bayes_dcpt.cli.tables import num, print_table
from bayes_dcpt.cli.verdict import print_wrapped
from bayes_dcpt.decide.wording import risk_answers
from bayes_dcpt.errors import BayesDCPTError

__all__ = ["example_run", "print_decisions", "print_plan", "require_domain", "require_run"]

#: What each usage needs, as options: all of one of the alternatives.
_NEEDS = {
    "tradeoff": (("n_params", "tokens"),),
    "limited-data": (("n_params", "tokens"),),
    "critical-curve": (("n_params", "tokens"),),
    "compute": (("flops",), ("n_params", "tokens")),
}
_WHAT = {"n_params": "the model size N of the planned run", "tokens": "its CPT tokens D",
         "flops": "the compute budget in FLOPs"}


def _opt(name: str) -> str:
    return "--" + name.replace("_", "-")


def example_run(fit: Any) -> str:
    """``--n-params 443232 --tokens 2097152``: the largest measured model size and 4 x the largest CPT tokens."""
    try:
        data = fit.data
        cpt = data[data["tokens"] > 0]
        return f"--n-params {float(data['n_params'].max()):.0f} --tokens {4 * float(cpt['tokens'].max()):.0f}"
    except (AttributeError, KeyError, ValueError):  # a fit without its data (law="auto")
        return "--n-params 4e8 --tokens 2e10"


def require_run(command: str, usage: str, fit: Any, **given: Any) -> None:
    """Raise naming the missing options when ``usage`` lacks what it needs (e.g. ``--n-params and --tokens``)."""
    alternatives = _NEEDS.get(usage)
    if not alternatives or any(all(given.get(k) is not None for k in alt) for alt in alternatives):
        return
    alt = min(alternatives, key=lambda a: sum(given.get(k) is None for k in a))
    missing = [k for k in alt if given.get(k) is None]
    names = " and ".join(_opt(k) for k in missing)
    what = "; ".join(f"{_opt(k)}: {_WHAT[k]}" for k in missing)
    other = (" (or " + " and ".join(_opt(k) for k in alternatives[1]) + ")") if len(alternatives) > 1 else ""
    raise BayesDCPTError(f"{command} {usage} needs {names}{other} ({what}); e.g. {example_run(fit)} (the largest "
                         "measured size, 4x the largest measured CPT tokens)")


def require_domain(command: str, fit: Any, domain: str | None) -> None:
    """Raise naming ``--domain`` when the fit has several domains and none is chosen."""
    domains = list(getattr(fit, "domains", None) or getattr(getattr(fit, "posterior", None), "domains", []) or [])
    if domain is None and len(domains) > 1:
        raise BayesDCPTError(f"{command} needs --domain: the fit has several domains ({', '.join(domains)})")


def _describe_target(target: str, n_params: Any, tokens: Any, domain: str | None, inc: Any, relative: bool) -> str:
    what = {"tradeoff": "r*", "limited-data": "r* with limited domain data", "compute": "the compute-optimal r"}
    run = f"N = {float(n_params):,.0f} parameters, D = {float(tokens):,.0f} CPT tokens" \
        if n_params is not None and tokens is not None else "the planned run"
    limit = ""
    if target == "tradeoff" and inc is not None:
        limit = f", general loss within {float(inc) * 100:g}%" if relative else f", general loss within {inc:g} nats"
    return f"{what.get(target, target)}{' of ' + domain if domain else ''} at {run}{limit}"


def print_plan(console: Any, plan: Any, *, target: str, n_params: Any, tokens: Any, domain: str | None,
               max_general_increase: Any, relative: bool = True) -> None:
    """The batch as a table (vertical when too wide), then its expected effect, checks, notes and cost model."""
    u = f" {plan.target_unit}" if plan.target_unit else ""
    title = "next probes, to learn " + _describe_target(target, n_params, tokens, domain, max_general_increase,
                                                       relative)
    headers = ["#", "domain", "N", "tokens", "r_domain", "GPU-h", "U_z nats", "U_z/GPU-h", "width after"]
    rows = []
    for _, r in plan.table.iterrows():
        rows.append([str(int(r["rank"])), str(r["domain"]), f"{r['n_params']:,.0f}", f"{r['tokens']:,.0f}",
                     num(r["r_domain"], ".3g"), num(r["gpu_hours"], ".3g"), num(r["U_z"], ".3f"),
                     num(r["U_z_per_gpu_hour"], ".3g"), num(r["width_after_batch"], ".4g")])
    print_table(console, title, headers, rows, labels=2)
    if plan.table.empty:
        console.print("no probe proposed", highlight=False)
    lines = [f"{plan.ci:.0%} interval width of the target: {plan.current_width:.4g}{u} now, "
             f"{plan.width_after_batch:.4g}{u} expected after the batch ({len(plan.table)} probe(s), "
             f"{plan.total_gpu_hours:.4g} GPU-h"
             + (f" of a {plan.budget_gpu_hours:.4g} GPU-h budget" if plan.budget_gpu_hours else "") + ")"
             + ("; both widths are the law's carried out to a target beyond what the fit's data checked (CAUTION "
                "below)" if plan.checks.get("target_beyond_reach") else "")]
    if plan.stop:
        lines.append("STOP: " + "; ".join(plan.stop_reasons))
    lines += [f"note: {n}" for n in plan.notes]
    lines.append(f"cost: {plan.cost_model.describe()}")
    for ln in lines:
        console.print(ln, markup=False, highlight=False)


def print_decisions(console: Any, dec: Any, ci: float) -> None:
    """Each domain's answers as a table (vertical when too wide), then its draw counts.

    Per quantity the median and the interval, then the risk-aware answer and the probabilities, then the notes
    (``FLAG:`` where the answer disagrees with the measurements or needs care): what ``decide.decision_table``
    shows, at any terminal width. One column holds medians, probabilities and single ratios, so it is headed
    ``estimate`` with a legend saying which is which; the vertical layout names each number itself (``median``
    beside an interval, ``probability``, ``value``), never ``median`` for what is not one.
    """
    items = list(dec.values()) if hasattr(dec, "values") else [dec]
    for d in items:
        s = d.summary(ci)
        if d.usage == "critical-curve":
            rows = [[f"{tok:,.0f}", num(r["median"]), f"{num(r['lo'])} .. {num(r['hi'])}", num(r["risk_aware"]),
                     num(r["risk_aware_one_run"]), f"{num(r['one_run_lo'])} .. {num(r['one_run_hi'])}",
                     str(int(r["infeasible"]))] for tok, r in s.table.iterrows()]
            print_table(console, f"{d.domain}: r* against the CPT tokens D ({ci:.0%} equal-tailed intervals)",
                        ["tokens D", "median r*", f"{ci:.0%} interval", "risk-aware r", "for one run",
                         "one run crosses", "infeasible"], rows)
            rows = [[p.statement, f"{p.value:.3f}"] for p in s.probabilities.values()]
            if rows:
                print_table(console, "", ["statement", "probability"], rows)
        else:
            headers, rows, names, legend = _decision_rows(s, ci)
            print_table(console, f"{d.domain}: {d.usage} ({ci:.0%} equal-tailed intervals)", headers, rows,
                        legend=legend, names=names)
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.counts.items() if k != "n_draws")
        console.print(f"draws: {s.counts.get('n_draws', d.n_draws)}" + (f" ({counts})" if counts else ""),
                      markup=False, highlight=False)
        for n in s.notes:  # the warning ones (DecisionSummary.flags) first-class, as in the report and --json
            flag = n in s.flags
            print_wrapped(console, n, first="FLAG: " if flag else "note: ", rest="  ", style="bold" if flag else None)
        console.print("", markup=False)


def _decision_rows(s: Any, ci: float) -> tuple[list[str], list[list[str]], list[list[str]], str]:
    """Headers, rows, each row's cell names (for the vertical layout) and the legend of a summary's answers.

    A quantity's row has the median and the ``ci`` interval (named ``median`` and ``90% interval``); a risk-aware
    answer is one ratio (``value``) and a probability statement one probability (``probability``). When rows of
    more than one kind share the column it is headed ``estimate`` and the legend names the kinds present; the
    note column is dropped when no row has a note.
    """
    interval = f"{ci:.0%} interval"
    rows: list[list[str]] = []
    names: list[list[str]] = []
    for _, r in s.table.iterrows():
        note = "" if r["valid_share"] > 0.9999 else f"defined for {r['valid_share']:.1%} of draws"
        rows.append([str(r["description"]), num(r["median"]), f"{num(r['lo'])} .. {num(r['hi'])}", note])
        names.append(["median", interval, "note"])
    for a in risk_answers(s.risk_aware).values():
        rows.append([a.label, a.value(".4g"), "", "" if a.r is not None else a.why_none])
        names.append(["value", "", "note"])
    for p in s.probabilities.values():
        rows.append([p.statement, f"{p.value:.3f}", "", ""])
        names.append(["probability", "", "note"])
    kinds = [k for k, there in (("a single ratio on risk-aware rows", s.risk_aware), ("a probability on P(...) rows",
                                                                                     s.probabilities)) if there]
    legend = (f"estimate: the posterior median where a {interval} follows; " + ", ".join(kinds)) if kinds else ""
    headers = ["quantity", "estimate" if kinds else "median", interval, "note"]
    if not any(r[3] for r in rows):
        headers, rows, names = headers[:3], [r[:3] for r in rows], [n[:2] for n in names]
    return headers, rows, names, legend
