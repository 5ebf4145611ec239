"""Credible-interval reports of a fit: one self-contained HTML file (or Markdown with PNGs beside it).

A report holds, in order: the key answers (opening with the verdict on the fit), the data summary, the law and
its priors, the parameter table with 90% intervals, the diagnostics (the sampler's checks and whether the law
describes the data, flagged in red when bad), the fitted curves with credible bands against the data (every
model size; red frames where the law misses the data), with runs measured since the fit whether its predictions
held (:mod:`~bayes_dcpt.report.measured_sections`), the posterior of the critical ratio r* with the
trade-off curves and threshold (usage 1 of the D-CPT paper), the compute allocation (usage 3) and the planner's
next suggested probes. :func:`build_report` composes the parts: :mod:`~bayes_dcpt.report.questions` asks the
questions (defaults described there), :mod:`~bayes_dcpt.report.fit_sections` and
:mod:`~bayes_dcpt.report.answer_sections` say what the report says, :mod:`~bayes_dcpt.report.render`
writes HTML or Markdown.

Quickstart::

    >>> from bayes_dcpt.fitting import load_fit
    >>> from bayes_dcpt.report.build import build_report
    >>> rep = build_report(load_fit("fit.nc"), out="report.html")          # or format="md"
    >>> rep.tradeoff["python"].summary()       # the decisions shown in the report
    >>> rep.plan.table                         # the suggested probes (also written with plan_csv=...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.errors import InputError, UnknownDomainError
from bayes_dcpt.report import answer_sections, fit_sections, measured_sections, render
from bayes_dcpt.report.blocks import Block, Para
from bayes_dcpt.report.questions import Answers, answer, default_candidates, default_usage_inputs
from bayes_dcpt.report.render import FORMATS

__all__ = ["FORMATS", "Report", "build_report", "default_candidates", "default_usage_inputs"]


@dataclass
class Report:
    """What :func:`build_report` wrote and the answers it shows.

    Attributes
    ----------
    path
        The report file.
    format
        ``"html"`` or ``"md"``.
    tradeoff
        Usage 1 per domain (:class:`~bayes_dcpt.decide.usages.DecisionSet` or one Decision).
    compute
        Usage 3 per domain (``{domain: Decision}``).
    plan
        The planner's suggestion (:class:`~bayes_dcpt.plan.planner.Plan`), or ``None`` when it could not be
        made (the reason is in ``notes``).
    plan_domain
        The domain whose r* the plan targets.
    inputs
        The usage inputs as used (defaults filled in).
    images
        Number of figures in the report (for Markdown: the PNG files written).
    notes
        Anything the reader must know (defaults chosen, sections skipped and why).
    check
        With ``measured`` runs: the check of the fit's bands against them
        (:class:`~bayes_dcpt.posterior.heldout.PredictionCheck`); ``None`` otherwise.
    """

    path: Path
    format: str
    tradeoff: Any
    compute: dict[str, Any]
    plan: Any
    plan_domain: str | None
    inputs: dict[str, Any]
    images: list[Path | str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    check: Any = None

    def decisions(self) -> dict[str, Any]:
        """``{domain: Decision}`` of the trade-off."""
        t = self.tradeoff
        return dict(t.items()) if hasattr(t, "items") else {t.domain: t}


def _check_options(
    fit: Any, out: Path, fmt: str | None, ci: float, k: Any, dpi: Any, domain: str | None
) -> tuple[str, float]:
    """The format and ``ci`` checked, and every option that must hold before anything is computed."""
    from bayes_dcpt.decide.inputs import unit_interval

    fmt = render.check_format(fmt, out)
    ci = unit_interval("ci", ci, open_=True)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a whole number >= 1, got {k!r}")
    if not isinstance(dpi, (int, np.integer)) or not 30 <= dpi <= 600:
        raise InputError(f"dpi must be a whole number in [30, 600], got {dpi!r}")
    if domain is not None and domain not in fit.domains:
        raise UnknownDomainError(f"unknown domain {domain!r}; the fit knows {fit.domains}")
    if "general" not in fit.targets:
        raise InputError(
            "the report's trade-off needs the general loss; this fit has only "
            f"{list(fit.targets)} (fit with --target both)"
        )
    return fmt, ci


def _measured_runs(fit: Any, measured: pd.DataFrame | str | Path | None) -> pd.DataFrame | None:
    """The runs measured since the fit, validated, their CPT rows of the fit's domains (None: none given)."""
    if measured is None:
        return None
    from bayes_dcpt.data.schema import fit_rows, load

    runs = fit_rows(load(measured)).reset_index(drop=True)
    unknown = sorted(set(runs["domain"].astype(str)) - set(fit.domains))
    if unknown:
        raise UnknownDomainError(f"measured runs: unknown domain(s) {unknown}; the fit knows {fit.domains}")
    if runs.empty:
        raise InputError("measured runs: no CPT rows (tokens > 0) to check the fit against")
    return runs


def _blocks(fit: Any, ans: Answers, opts: Mapping[str, Any]) -> list[Block]:
    """Every section of the report in order (``opts``: the options of :func:`build_report` as checked)."""
    ci, dpi = opts["ci"], opts["dpi"]
    diag = fit.diagnostics(warn=False)
    blocks = [
        *answer_sections.header(ci, opts["source"]),
        *answer_sections.key_answers(ans.decisions, ans.plan, diag, ans.notes, ci, adequacy=fit.adequacy()),
        *([Para("Runs measured since the fit: " + opts["check"].summary() + " (see below).",
                bad=opts["check"].ok is False)] if opts["check"] else []),
        *fit_sections.data_section(fit),
        *fit_sections.law_section(fit),
        *fit_sections.parameters_section(fit, ci),
        *fit_sections.diagnostics_section(fit, dpi),
        *fit_sections.curves_section(fit, ci, dpi),
        *(measured_sections.measured_section(fit, opts["check"], opts["runs"], ci, dpi) if opts["check"] else []),
        *answer_sections.tradeoff_section(ans.decisions, ans.inputs, ci, dpi),
        *answer_sections.compute_section(ans.compute, ans.flops, ci, dpi, ans.skipped),
    ]
    if opts["plan"]:
        blocks += answer_sections.plan_section(ans.plan, ans.plan_domain, ans.n_candidates, dpi, ans.why_not)
    domain = ans.plan_domain if opts["domain"] else None
    blocks += answer_sections.reproduce_section(
        fit, opts["source"], ans.inputs, opts["base_loss"], domain, opts["k"], opts["budget"], opts["fmt"]
    )
    return blocks


def build_report(
    fit: Any,
    *,
    out: str | Path,
    format: str | None = None,
    n_params: float | None = None,
    tokens: float | None = None,
    max_general_increase: float = 0.03,
    relative: bool = True,
    base_loss: float | Mapping[str, float] | None = None,
    prob: float = 0.9,
    domain: str | None = None,
    candidates: pd.DataFrame | str | Path | None = None,
    k: int = 3,
    budget: float | None = None,
    plan: bool = True,
    plan_csv: str | Path | None = None,
    ci: float = CI_PROB,
    seed: int = 0,
    title: str | None = None,
    source: str | None = None,
    dpi: int = 100,
    measured: pd.DataFrame | str | Path | None = None,
    baseline: bool = False,
) -> Report:
    """Write the credible-interval report of a fit (HTML, self-contained; or Markdown with PNGs beside it).

    Parameters
    ----------
    fit
        A :class:`~bayes_dcpt.fitting.Fit` (from :func:`~bayes_dcpt.fitting.fit` or
        :func:`~bayes_dcpt.fitting.load_fit`).
    out
        The report file. Its folder is created.
    format
        ``"html"`` or ``"md"``; default from the suffix of ``out`` (``.md`` -> Markdown, else HTML).
    n_params, tokens
        The run the trade-off asks about (raw counts). Default: the largest measured model size with a
        base-model row, and ``4 x`` the largest measured CPT tokens.
    max_general_increase, relative, base_loss, prob
        Trade-off threshold (relative 0.03 = 3% above the base loss, or absolute nats with
        ``relative=False``), an explicit base-model general loss (number or ``{domain: loss}``; default
        the data's tokens == 0 row at ``n_params``), and the probability of the risk-aware answer.
    domain
        The domain whose r* the planner targets; default: the domain with the widest r* interval.
    candidates
        Candidate probes (frame or CSV path, see :mod:`bayes_dcpt.plan.candidates`); default
        :func:`default_candidates`.
    k, budget
        Batch size and GPU-hour budget of the plan.
    plan
        Whether to run the planner at all.
    plan_csv
        Also write the plan's batch table to this CSV.
    ci
        Probability of every interval shown.
    seed
        Seed of the planner (same seed, same plan).
    title, source
        Report title, and where the fit came from (shown in the header).
    dpi
        Resolution of the figures.
    measured
        Runs measured since the fit (a table of the data schema, or its path): a section checks the fit's
        predictive bands against their losses and draws them over the bands
        (:meth:`~bayes_dcpt.fitting.base.BaseFit.check_predictions`), and the trade-off checks r* against the
        crossing they measure at the asked size and tokens, where they measure one.
    baseline
        With ``measured``: also score the paper's point fits of L3 and L1 on those runs, beside the fit.

    Returns
    -------
    Report
        The path written and the decisions and plan it shows.

    Raises
    ------
    InputError, UnknownDomainError
        A bad option value (named in the message); nothing is written then.
    """
    out = Path(out)
    fmt, ci = _check_options(fit, out, format, ci, k, dpi, domain)
    runs = _measured_runs(fit, measured)
    ans = answer(
        fit, n_params=n_params, tokens=tokens, max_general_increase=max_general_increase, relative=relative,
        base_loss=base_loss, prob=prob, domain=domain, candidates=candidates, k=k, budget=budget, plan=plan,
        ci=ci, seed=seed, measured=runs,
    )
    check = fit.check_predictions(runs, ci, baseline=baseline) if runs is not None else None
    if ans.plan is not None and plan_csv is not None:
        Path(plan_csv).parent.mkdir(parents=True, exist_ok=True)
        ans.plan.to_csv(plan_csv)
    opts = {"ci": ci, "dpi": dpi, "source": source, "plan": plan, "domain": domain, "base_loss": base_loss,
            "k": k, "budget": budget, "fmt": fmt, "check": check, "runs": runs}
    blocks = _blocks(fit, ans, opts)
    title = title or f"bayes-dcpt report: {fit.law.name} fit of {', '.join(fit.domains)}"
    images = render.write(title, blocks, out, fmt)
    return Report(out, fmt, ans.trade, ans.compute, ans.plan, ans.plan_domain, ans.inputs, images, ans.notes,
                  check)
