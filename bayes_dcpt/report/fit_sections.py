"""The sections of a report about the fit itself, one function per section, each returning its blocks.

The data summary, the law and its priors, the parameter table with its intervals, the sampler diagnostics
(flagged in red when bad, with a rank plot of the worst-mixing parameters) and the fitted curves with
credible bands against the data. The sections about what the fit answers (r*, compute, the plan) are in
:mod:`~bayes_dcpt.report.answer_sections`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.constants import BFMI_MIN, ESS_MIN, RHAT_MAX
from bayes_dcpt.data import schema as _data
from bayes_dcpt.report.blocks import Block, Heading, Image, Para, Table, fmt, fmt_frame

__all__ = ["curves_section", "data_section", "diagnostics_section", "law_section", "parameters_section"]


def data_section(fit: Any) -> list[Block]:
    """Summary of the measurements and the base-model losses (the trade-off's reference)."""
    s = _data.summarize(fit.data)
    kv = pd.DataFrame(
        [
            ("rows", f"{s['rows']} ({s['base_rows']} base-model rows with tokens == 0)"),
            ("domains", ", ".join(s["domains"])),
            ("model sizes N (parameters)", ", ".join(f"{n:,.0f}" for n in s["n_params"])),
            ("domain shares r_domain", ", ".join(f"{r:g}" for r in s["r_domain"])),
            ("CPT tokens", f"{s['tokens_min']:,.0f} to {s['tokens_max']:,.0f}"),
            ("runs", f"{s['runs']} ({s['rows_per_run_min']} to {s['rows_per_run_max']} checkpoints per run)"),
            ("losses", f"general {s['loss_general_rows']} rows, domain {s['loss_domain_rows']} rows"),
            ("data hash", _data.data_hash(fit.data)),
        ],
        columns=["field", "value"],
    )
    blocks: list[Block] = [
        Heading(2, "Data", "data"),
        Table(kv, caption="Summary of the measurements the fit was given"),
    ]
    ref = _data.base_losses(fit.data)
    if len(ref):
        t = ref.rename(
            columns={
                "n_params": "N (parameters)",
                "loss_general": "general loss (nats/token)",
                "loss_domain": "domain loss (nats/token)",
            }
        )
        blocks.append(
            Table(fmt_frame(t), caption="Base-model losses L0 (tokens == 0): the reference of the trade-off threshold")
        )
    return blocks


def law_section(fit: Any) -> list[Block]:
    """The law, the model around it (likelihood, pooling, constraints) and the priors with their reasons."""
    from bayes_dcpt.fitting import prior_table

    cfg = fit.config
    offsets = ""
    if cfg.run_effect:
        marginal = getattr(cfg, "run_offsets", "latent") == "marginal"
        offsets = ", per-run random offsets" + (" (integrated out)" if marginal else " (sampled)")
    pooled = len(fit.domains) > 1 and cfg.hierarchical is not False
    return [
        Heading(2, "Law and priors", "law"),
        Para(
            f"Law {fit.law.name}: {fit.law.title}. Targets: {', '.join(fit.targets)}; domains: "
            f"{', '.join(fit.domains)}. N and D enter the law in billions."
        ),
        Para(
            f"Model: {'Student-t' if cfg.robust else 'Normal'} likelihood on log loss"
            f"{offsets}; "
            f"{'partial pooling across domains' if pooled else 'no pooling'}"
            f" ({cfg.parametrization}); paper's C > C0 constraint {'on' if cfg.monotone else 'off'}; prior scale "
            f"{cfg.prior_scale:g}; losses measured with none of their own corpus (own ratio 0) "
            f"{'fitted' if cfg.zero_ratio else 'not fitted'}."
        ),
        Table(prior_table(fit.law, cfg.anchored), caption="Priors as sampled, with their reasons"),
    ]


def parameters_section(fit: Any, ci: float) -> list[Block]:
    """Posterior summary of every reported parameter; cells breaking R-hat or ESS in red."""
    s = fit.summary(ci=ci)
    s = s.reset_index(names="parameter")
    for c in ("ess_bulk", "ess_tail"):
        if c in s:
            s[c] = s[c].round().astype("Int64")
    bad = pd.DataFrame(False, index=s.index, columns=s.columns)
    if "r_hat" in s:
        bad["r_hat"] = s["r_hat"].astype(float) > RHAT_MAX
    for c in ("ess_bulk", "ess_tail"):
        if c in s:
            bad[c] = s[c].astype(float) < ESS_MIN
    n_bad = int(bad.any(axis=1).sum())
    return [
        Heading(2, f"Parameters ({ci:.0%} intervals)", "parameters"),
        Para(
            f"Posterior mean, sd and {ci:.0%} highest-density interval of every reported parameter "
            f"(hierarchical means mu_* and spreads sd_* included), with R-hat and effective sample "
            f"sizes. Cells in red break R-hat <= {RHAT_MAX} or ESS >= {ESS_MIN}"
            + (f": {n_bad} parameter(s)." if n_bad else ": none.")
        ),
        Table(fmt_frame(s), bad, caption=f"Posterior summary ({ci:.0%} HDI)"),
    ]


def _sampler_line(sc: Mapping[str, Any], seconds: float) -> str:
    return (
        f"Sampler {sc.get('sampler')}: {sc.get('chains')} chains x {sc.get('draws')} draws after "
        f"{sc.get('tune')} tuning steps, seed {sc.get('seed')}"
        + (f", options {sc.get('options')}" if sc.get("options") else "")
        + (f"; saved with every {sc['thin']}th draw ({sc.get('draws_saved')} per chain)" if sc.get("thin") else "")
        + f"; {seconds:.0f} s."
    )


def _checks_table(d: Any) -> Table:
    rows = [
        ("divergent transitions", d.divergences, "0", d.divergences > 0),
        ("R-hat (max)", d.rhat_max, f"<= {RHAT_MAX}", not d.rhat_max <= RHAT_MAX),
        ("bulk ESS (min)", d.ess_bulk_min, f">= {ESS_MIN}", not d.ess_bulk_min >= ESS_MIN),
        ("tail ESS (min)", d.ess_tail_min, f">= {ESS_MIN}", not d.ess_tail_min >= ESS_MIN),
        ("E-BFMI (min)", d.bfmi_min, f">= {BFMI_MIN}", bool(np.isfinite(d.bfmi_min) and d.bfmi_min < BFMI_MIN)),
    ]
    t = pd.DataFrame(
        [(a, fmt(b), c, "BAD" if bad else "ok") for a, b, c, bad in rows],
        columns=["check", "value", "safe range", "status"],
    )
    mask = pd.DataFrame(False, index=t.index, columns=t.columns)
    for i, r in enumerate(rows):
        mask.iloc[i, [1, 3]] = r[3]
    return Table(t, mask, caption="Convergence checks over every reported parameter")


def _rank_figure(fit: Any, dpi: int) -> Block:
    from bayes_dcpt.viz import curves as plotting
    from bayes_dcpt.viz import diagnostics

    try:
        worst = diagnostics.worst_parameters(fit, 4)
        fig = diagnostics.rank_plot(fit, worst)
        return Image(
            plotting.figure_png(fig, dpi=dpi),
            "rank plot of the worst-mixing parameters",
            f"Rank plots (ArviZ) of the four worst-mixing parameters ({', '.join(worst)}): each "
            "chain's fractional-rank ECDF difference; chains that mix well stay inside the "
            "envelope, points mark where a chain leaves it.",
            "rank",
        )
    except Exception as exc:  # a plotting failure must not lose the report; say so instead
        return Para(f"rank plot unavailable: {type(exc).__name__}: {exc}", bad=True)


def diagnostics_section(fit: Any, dpi: int) -> list[Block]:
    """The sampler's settings, the convergence checks with their verdict, and a rank plot of the worst mixers."""
    d = fit.diagnostics(warn=False)
    blocks: list[Block] = [
        Heading(2, "Sampler diagnostics", "diagnostics"),
        Para(_sampler_line(fit.sampler_config, d.seconds)),
    ]
    if d.approximate:
        blocks.append(
            Para(
                f"{d.sampler} is an approximation: no convergence diagnostics; check against NUTS "
                "before trusting the intervals.",
                bad=True,
            )
        )
        return blocks
    blocks.append(_checks_table(d))
    if d.ok:
        blocks.append(Para("All checks pass.", good=True))
    else:
        blocks.append(
            Para(
                "PROBLEMS: " + "; ".join(d.problems) + ". Do not trust these intervals before fixing "
                "this (more tuning or draws, a higher target_accept, or a simpler law).",
                bad=True,
            )
        )
    blocks.append(_rank_figure(fit, dpi))
    return blocks


def curves_section(fit: Any, ci: float, dpi: int) -> list[Block]:
    """Per domain: loss against tokens for each ratio, and loss against the ratio, with credible bands."""
    from bayes_dcpt.viz import curves as plotting

    blocks: list[Block] = [
        Heading(2, "Fitted curves against the data", "curves"),
        Para(
            f"Lines: posterior mean of the law; grey bands: its {ci:.0%} credible band (the law "
            "itself, without run offsets or checkpoint noise); markers: measurements (hollow: "
            "measured with none of the loss's own corpus, not fitted: the law does not hold "
            "there). Shaded region: beyond the largest measured tokens."
        ),
    ]
    for dom in fit.domains:
        blocks.append(Heading(3, f"Domain {dom}", f"curves-{dom}"))
        fig = plotting.loss_curves(fit, domain=dom, ci=ci)
        blocks.append(
            Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: loss against CPT tokens",
                f"{dom}: general and domain loss against CPT tokens (log scale) for each domain "
                "share r_domain, one row per model size.",
                f"curves_{dom}",
            )
        )
        fig = plotting.loss_vs_ratio(fit, domain=dom, ci=ci)
        blocks.append(
            Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: loss against the domain share",
                f"{dom}: general and domain loss against the domain share at the largest measured "
                "tokens, one line per model size.",
                f"ratio_{dom}",
            )
        )
    return blocks
