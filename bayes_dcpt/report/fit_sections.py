"""The sections of a report about the fit itself, one function per section, each returning its blocks.

The data summary, the law and its priors, the parameter table with its intervals, the diagnostics (the
sampler's checks flagged in red when bad, with a rank plot of the worst-mixing parameters; whether the law
describes the data, with a table of the failed posterior predictive checks) and the fitted curves with
credible bands against the data, every model size, the panels where the law misses the data framed in red.
The sections about what the fit answers (r*, compute, the plan) are in :mod:`~bayes_dcpt.report.answer_sections`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.constants import BFMI_MIN, ESS_MIN, RHAT_MAX
from bayes_dcpt.data import schema as _data
from bayes_dcpt.fitting.diagnostics import RHAT_NEEDS_CHAINS, number_or_na
from bayes_dcpt.fitting.discrepancy import fit_thin_domains
from bayes_dcpt.report.blocks import Block, Heading, Image, Para, Table, fmt, fmt_frame
from bayes_dcpt.report.wording import extrapolation_line, thin_domains_line

__all__ = ["ONE_CHAIN", "adequacy_blocks", "checkpoints_per_run", "curves_section", "data_section",
           "diagnostics_section", "law_section", "parameters_section", "problems_words", "rhat_words",
           "run_words"]

#: Why a fit of one chain has no R-hat, where the report would show its value (R-hat compares chains).
ONE_CHAIN = "n/a (one chain; run 2 or more)"


def checkpoints_per_run(s: Mapping[str, Any]) -> str:
    """``7 checkpoints`` (or ``5 to 7 checkpoints``) from a data summary's rows per run."""
    lo, hi = s["rows_per_run_min"], s["rows_per_run_max"]
    return f"{lo} checkpoint{'s' if lo != 1 else ''}" if lo == hi else f"{lo} to {hi} checkpoints"


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
            ("runs", f"{s['runs']} ({checkpoints_per_run(s)} per run)"),
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
    """The law, the model around it (likelihood, pooling, constraints) and the priors with their reasons.

    A ``law="auto"`` fit: first its candidate laws with their held-out weights (and how firmly the held-out runs
    settle them) and what it noted, then the model and priors of its heaviest law.
    """
    if weighs_laws(fit):
        return _candidates_section(fit) + law_section(fit.best)[1:]
    return _one_law_section(fit)


def weighs_laws(fit: Any) -> bool:
    """Whether ``fit`` is a ``law="auto"`` fit: candidate laws with weights and a heaviest one (``best``)."""
    return hasattr(fit, "weights") and hasattr(fit, "best")


#: The columns of a ``law="auto"`` fit's candidate table the report shows.
_CANDIDATE_COLUMNS = {"law": "law", "weight": "weight", "weight_lo": "weight 5%", "weight_hi": "weight 95%",
                      "elpd_holdout": "held-out elpd", "se": "se", "screened": "screened out after",
                      "fitted": "fitted to all data", "sampler_ok": "sampler ok", "adequate": "describes the data"}


def _candidates_section(fit: Any) -> list[Block]:
    """The candidate laws of a ``law="auto"`` fit, weighed by their held-out predictions, and its notes."""
    t = fit.table()
    t = t[[c for c in _CANDIDATE_COLUMNS if c in t]].rename(columns=_CANDIDATE_COLUMNS)
    bad = pd.DataFrame(False, index=t.index, columns=t.columns)
    for c in ("sampler ok", "describes the data"):
        if c in t:
            bad[c] = t[c].eq(False) & t["weight"].gt(0)
    blocks: list[Block] = [
        Heading(2, "Law and priors", "law"),
        Para(f"law='auto': {len(t)} candidate laws weighed by stacking their predictions of held-out data "
             "(later tokens, the largest size); the answers draw from each law in proportion to its weight. "
             "Weight 5%/95%: the Bayesian bootstrap over the held-out runs (how firmly they settle the weight). "
             f"The model and priors below are those of the heaviest law, {fit.best.law.name}."),
        Table(fmt_frame(t), bad, caption="Candidate laws, weighed"),
    ]
    blocks += [Para(f"Note: {n}") for n in getattr(fit, "notes", [])]
    return blocks


def _one_law_section(fit: Any) -> list[Block]:
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
            f"{'fitted' if cfg.zero_ratio else 'not fitted'}; noise scales (sigma, tau, nu) per "
            f"{'(target, domain)' if getattr(cfg, 'noise_scope', 'target') == 'domain' else 'target'}."
        ),
        Table(prior_table(fit.law, cfg.anchored), caption="Priors as sampled, with their reasons"),
    ]


def parameters_section(fit: Any, ci: float) -> list[Block]:
    """Posterior summary of every reported parameter; cells breaking R-hat or ESS in red."""
    s = fit.summary(ci=ci)
    s = s.reset_index(names=["law", "parameter"] if s.index.nlevels == 2 else "parameter")  # law="auto": per law
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
    chains = (getattr(fit, "sampler_config", None) or {}).get("chains")
    one_chain = "r_hat" in s and chains is not None and chains < 2  # R-hat compares chains: none to show
    return [
        Heading(2, f"Parameters ({ci:.0%} intervals)", "parameters"),
        Para(
            f"Posterior mean, sd and {ci:.0%} highest-density interval of every reported parameter "
            f"(hierarchical means mu_* and spreads sd_* included), with R-hat and effective sample "
            f"sizes. Cells in red break R-hat <= {RHAT_MAX} or ESS >= {ESS_MIN}"
            + (f": {n_bad} parameter(s)." if n_bad else ": none.")
            + (" R-hat is n/a throughout: it compares chains, and this fit ran one (run 2 or more)." if one_chain
               else "")
        ),
        Table(fmt_frame(s), bad, caption=f"Posterior summary ({ci:.0%} HDI)"),
    ]


def ordinal(k: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``21st``, ..."""
    k = int(k)
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _count(n: Any, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def run_words(chains: Any, draws: Any, tune: Any = None) -> str:
    """A sampler run in words: ``2 chains of 1000 draws after 1000 tuning steps`` (``1 chain of 30 draws``)."""
    out = " of ".join(_count(n, w) for n, w in ((chains, "chain"), (draws, "draw")) if n is not None)
    return out + (f" after {_count(tune, 'tuning step')}" if tune is not None else "")


def rhat_words(d: Any, spec: str = ".4f") -> str:
    """The largest R-hat of diagnostics ``d``, or why there is none (:data:`ONE_CHAIN`)."""
    if d.chains is not None and d.chains < 2 and not np.isfinite(d.rhat_max):
        return ONE_CHAIN
    return number_or_na(d.rhat_max, spec)


def problems_words(problems: Any) -> str:
    """A fit's sampler problems for a reader of the report: the one-chain one in words, not as ``chains=2``."""
    return "; ".join(p.replace(RHAT_NEEDS_CHAINS, "R-hat n/a with one chain: run 2 chains or more") for p in problems)


def _sampler_line(sc: Mapping[str, Any], seconds: float) -> str:
    return (
        f"Sampler {sc.get('sampler')}: {run_words(sc.get('chains'), sc.get('draws'), sc.get('tune'))}, "
        f"seed {sc.get('seed')}"
        + (f", options {sc.get('options')}" if sc.get("options") else "")
        + (f"; saved with every {ordinal(sc['thin'])} draw ({sc.get('draws_saved')} per chain)"
           if sc.get("thin") else "")
        + f"; {seconds:.0f} s."
    )


def _checks_table(d: Any) -> Table:
    rows = [
        ("divergent transitions", d.divergences, "0", d.divergences > 0),
        ("R-hat (max)", rhat_words(d, ".4g"), f"<= {RHAT_MAX}", not d.rhat_max <= RHAT_MAX),
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


def _rank_figure(fit: Any, dpi: int, chains: Any = None) -> Block:
    from bayes_dcpt.viz import curves as plotting
    from bayes_dcpt.viz import diagnostics

    if chains is not None and chains < 2:
        return Para("No rank plot: it compares chains, and this fit ran one (run 2 or more).")
    try:
        worst = diagnostics.worst_parameters(fit, 4)
        fig = diagnostics.rank_plot(fit, worst)
        return Image(
            plotting.figure_png(fig, dpi=dpi),
            "rank plot of the worst-mixing parameters",
            f"Rank plots (ArviZ) of the four worst-mixing parameters ({', '.join(worst)}; highest R-hat first): "
            "each chain's fractional-rank ECDF minus the uniform one. Chains that sample the same posterior stay "
            "near zero; a chain stuck in one part of the posterior bends away, and black points mark where the "
            "multi-chain uniformity test finds it departs most. The verdict is the table above (R-hat, ESS, "
            "divergences, BFMI); the plot shows which parameters and chains are behind it.",
            "rank",
        )
    except Exception as exc:  # a plotting failure must not lose the report; say so instead
        return Para(f"rank plot unavailable: {type(exc).__name__}: {exc}", bad=True)


#: How each adequacy check reads in the report's table.
_CHECK_NAMES = {
    "coverage": "coverage of the predictive band",
    "trend_tokens": "shape of the curves along log D",
    "trend_ratio": "shape in the ratio r",
    "trend_size": "trend along log N",
    "loo_pit": "calibration (leave-one-out PIT)",
    "tails": "noise tails",
}


def adequacy_blocks(fit: Any) -> list[Block]:
    """Whether the law describes the data: the verdict of the posterior predictive checks and a table of failures."""
    from bayes_dcpt.fitting.diagnostics import misfit_remedies
    from bayes_dcpt.report.wording import cli_words

    blocks: list[Block] = [Heading(3, "Does the law describe the data?", "adequacy")]
    a = fit.adequacy() if callable(getattr(fit, "adequacy", None)) else None
    if a is None:
        return [*blocks, Para("No posterior predictive checks for this kind of fit.")]
    about = (
        "Posterior predictive checks per target, domain and model size: coverage of the predictive band, "
        "residual trends along log D within runs, along the ratio and along log N, leave-one-out calibration "
        f"and the noise tails (p-values Bonferroni-corrected, family-wise level {a.alpha:g})."
    )
    if a.ok:
        return [*blocks, Para(about), Para(f"Yes: {a.summary()}.", good=True)]
    n_fail, n_all = len(a.failures), len(a.checks)
    tries = "; ".join(cli_words(r) for r in misfit_remedies(a, fit.law.family, len(fit.domains)))
    blocks += [
        Para(about),
        Para(
            f"NO: the law does not describe the data ({n_fail} of {n_all} checks fail). Its predictions and "
            "decisions are not to be trusted where it fails (the panels framed in red in the fitted curves)."
            + (f" What to try: {tries}." if tries else ""),
            bad=True,
        ),
    ]
    rows = [
        {
            "check": _CHECK_NAMES.get(c.check, c.check),
            "where": c.where(),
            "statistic": fmt(c.statistic, ".3g"),
            "expected": c.reference or "n/a",
            "p-value": fmt(c.p_value, ".2g"),
            "finding": c.message,
        }
        for c in a.failures
    ]
    t = pd.DataFrame(rows)
    mask = pd.DataFrame(False, index=t.index, columns=t.columns)
    mask["check"] = True
    blocks.append(Table(t, mask, caption=f"Failed checks ({n_fail} of {n_all}), worst first"))
    return blocks


def diagnostics_section(fit: Any, dpi: int) -> list[Block]:
    """The sampler's settings and checks with their verdict, a rank plot, and whether the law describes the data."""
    d = fit.diagnostics(warn=False)
    blocks: list[Block] = [
        Heading(2, "Diagnostics: the sampler and the fit", "diagnostics"),
        Heading(3, "Did the sampler converge?", "sampler"),
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
        return blocks + adequacy_blocks(fit) + _extrapolation_blocks(fit)
    blocks.append(_checks_table(d))
    if d.sampler_ok:
        blocks.append(Para("Yes: every convergence check passes (R-hat, ESS, divergences, BFMI).", good=True))
    else:
        blocks.append(
            Para(
                "NO: " + problems_words(d.problems) + ". Do not trust these intervals before fixing "
                "this (more tuning or draws: --tune, --draws; a higher --target-accept; or a simpler law).",
                bad=True,
            )
        )
    blocks.append(_rank_figure(fit, dpi, d.chains))
    return blocks + adequacy_blocks(fit) + _extrapolation_blocks(fit)


def _extrapolation_blocks(fit: Any) -> list[Block]:
    """What the fit's bands beyond its data rest on (held-out splits, shared data streams, thinly probed domains)."""
    line, thin = extrapolation_line(fit), thin_domains_line(fit_thin_domains(fit))
    if line is None and thin is None:
        return []
    paras = [Para(line.removeprefix("extrapolation: "))] if line is not None else []
    paras += [Para(thin, bad=True)] if thin is not None else []
    return [Heading(3, "Bands beyond the data", "extrapolation"), *paras]


def curves_section(fit: Any, ci: float, dpi: int) -> list[Block]:
    """Per domain: loss against tokens for each ratio, and loss against the ratio, with credible bands."""
    from bayes_dcpt.viz import curves as plotting

    blocks: list[Block] = [
        Heading(2, "Fitted curves against the data", "curves"),
        Para(
            f"Lines: posterior mean of the law; grey bands: its {ci:.0%} credible band (the law "
            "itself, without run offsets or checkpoint noise); markers: measurements"
            + ("" if getattr(getattr(fit, "posterior", None), "fits_zero_ratio", False) else
               " (hollow: measured with none of the loss's own corpus, not fitted: the law does not hold there)")
            + ". Shaded region: beyond the largest measured tokens."
        ),
    ]
    adequacy = fit.adequacy() if callable(getattr(fit, "adequacy", None)) else None
    misfit = plotting.misfit_map(adequacy)
    if misfit:
        blocks.append(
            Para(
                "Panels framed in red, with a note: where the posterior predictive checks fail (the law does not "
                "describe those measurements; see Diagnostics).",
                bad=True,
            )
        )
    for (t, d, _n), checks in misfit.items():
        if d == "*":
            blocks.append(
                Para(f"Every domain's {t} loss: {'; '.join(plotting.MISFIT_LABELS.get(c, c) for c in checks)}.",
                     bad=True)
            )
    for dom in fit.domains:
        blocks.append(Heading(3, f"Domain {dom}", f"curves-{dom}"))
        fig = plotting.loss_curves(fit, domain=dom, ci=ci, misfit=misfit)
        blocks.append(
            Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: loss against CPT tokens",
                f"{dom}: general and domain loss against CPT tokens (log scale) for each domain "
                "share r_domain, one row per model size"
                + (" (red frame: the law misses the data there)." if any(k[1] == dom for k in misfit) else "."),
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
