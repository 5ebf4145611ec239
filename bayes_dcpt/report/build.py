"""Credible-interval reports of a fit: one self-contained HTML file (or Markdown with PNGs beside it).

A report holds, in order: the key answers, the data summary, the law and its priors, the parameter
table with 90% intervals, the sampler diagnostics (flagged in red when bad), the fitted curves with
credible bands against the data (per domain: general and domain loss against tokens for each ratio, and
against the ratio at the largest tokens), the posterior of the critical ratio r* with the trade-off
curves and threshold (usage 1 of the D-CPT paper, with the risk-aware answer and the infeasible-draw
counts), the compute allocation (usage 3) and the planner's next suggested probes.

HTML reports embed every figure as a base64 PNG data URI and carry their CSS inline: no external
resource is loaded, so the file can be mailed or archived as is. Markdown reports write the PNGs to
``<stem>_files/`` beside the ``.md`` file.

Quickstart::

    >>> from bayes_dcpt.fitting import load_fit
    >>> from bayes_dcpt.report.build import build_report
    >>> rep = build_report(load_fit("fit.nc"), out="report.html")          # or format="md"
    >>> rep.tradeoff["python"].summary()       # the decisions shown in the report
    >>> rep.plan.table                         # the suggested probes (also written with plan_csv=...)

Defaults of the usage inputs (every one can be given): the trade-off asks about the largest measured
model size trained on ``4 x`` the largest measured CPT tokens with at most a 3% relative rise of the
general loss over the base model; the compute allocation spends the FLOPs of that run (``6 N D``) at each
domain's risk-aware ratio; the planner targets r* of the domain whose r* interval is widest, with
candidates from the data's domains and model sizes, ratios ``{0.1, data ratios in (0, 1), 0.9}`` and
token budgets ``{1, 2, 4} x`` the largest measured tokens.
"""

from __future__ import annotations

import base64
import html
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt._version import __version__
from bayes_dcpt.constants import BFMI_MIN, CI_PROB, ESS_MIN, RHAT_MAX
from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import InputError, UnknownDomainError

__all__ = ["FORMATS", "Report", "build_report", "default_candidates", "default_usage_inputs"]

FORMATS = ("html", "md")
#: Token budget of the trade-off question, as a multiple of the largest measured CPT tokens.
TOKENS_FACTOR = 4.0


# ============================================================================================== blocks
@dataclass
class _Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class _Para:
    text: str
    bad: bool = False
    good: bool = False


@dataclass
class _Table:
    frame: pd.DataFrame
    bad: pd.DataFrame | None = None  # boolean mask, same shape: cells flagged red
    caption: str = ""


@dataclass
class _Image:
    png: bytes
    alt: str
    caption: str
    name: str


@dataclass
class _Pre:
    text: str


# ============================================================================================== result
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

    def decisions(self) -> dict[str, Any]:
        """``{domain: Decision}`` of the trade-off."""
        t = self.tradeoff
        return dict(t.items()) if hasattr(t, "items") else {t.domain: t}


# ============================================================================================ defaults
def default_usage_inputs(
    fit: Any, *, n_params: float | None = None, tokens: float | None = None
) -> dict[str, float]:
    """The trade-off question the report asks by default: the largest measured model size that has a
    base-model row, trained on ``4 x`` the largest measured CPT tokens."""
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
    """Candidate probes for the plan: every fitted domain x measured size with a base model x ratios
    ``{0.1, data ratios strictly inside (0, 1), 0.9}`` x token budgets ``{1, 2, 4} x`` the largest measured."""
    from bayes_dcpt.plan.candidates import candidates_from_menus

    df = fit.data
    cpt = _data.fit_rows(df)
    ref = _data.base_losses(df)
    sizes = sorted(float(n) for n in (ref["n_params"].unique() if len(ref) else cpt["n_params"].unique()))
    ratios = sorted({0.1, 0.9, *(float(r) for r in cpt["r_domain"].dropna().unique() if 0 < r < 1)})
    tmax = float(cpt["tokens"].max())
    return candidates_from_menus(list(fit.domains), sizes, [tmax, 2 * tmax, 4 * tmax], ratios)


# ============================================================================================== format
def _g(v: Any, spec: str = ".4g") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if abs(int(v)) >= 10000 else str(int(v))
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "n/a"
        if float(v).is_integer() and 1000 <= abs(v) < 1e15:
            return f"{int(v):,}"
        return format(float(v), spec)
    return str(v)


def _interval(lo: Any, hi: Any, spec: str = ".3g") -> str:
    return f"{_g(lo, spec)} to {_g(hi, spec)}"


def _fmt_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.map(_g) if hasattr(df, "map") else df.applymap(_g)


# ============================================================================================ sections
def _section_data(fit: Any, blocks: list) -> None:
    s = _data.summarize(fit.data)
    blocks.append(_Heading(2, "Data", "data"))
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
    blocks.append(_Table(kv, caption="Summary of the measurements the fit was given"))
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
            _Table(
                _fmt_frame(t),
                caption="Base-model losses L0 (tokens == 0): the reference of the trade-off threshold",
            )
        )


def _section_law(fit: Any, blocks: list) -> None:
    from bayes_dcpt.fitting import prior_table

    cfg = fit.config
    blocks.append(_Heading(2, "Law and priors", "law"))
    blocks.append(
        _Para(
            f"Law {fit.law.name}: {fit.law.title}. Targets: {', '.join(fit.targets)}; domains: "
            f"{', '.join(fit.domains)}. N and D enter the law in billions."
        )
    )
    offsets = ""
    if cfg.run_effect:
        offsets = ", per-run random offsets" + (" (integrated out)" if getattr(cfg, "run_offsets", "latent") == "marginal" else " (sampled)")
    blocks.append(
        _Para(
            f"Model: {'Student-t' if cfg.robust else 'Normal'} likelihood on log loss"
            f"{offsets}; "
            f"{'partial pooling across domains' if len(fit.domains) > 1 and cfg.hierarchical is not False else 'no pooling'}"
            f" ({cfg.parametrization}); paper's C > C0 constraint {'on' if cfg.monotone else 'off'}; prior scale "
            f"{cfg.prior_scale:g}; losses measured with none of their own corpus (own ratio 0) "
            f"{'fitted' if cfg.zero_ratio else 'not fitted'}."
        )
    )
    blocks.append(_Table(prior_table(fit.law, cfg.anchored), caption="Priors as sampled, with their reasons"))


def _section_parameters(fit: Any, blocks: list, ci: float) -> None:
    blocks.append(_Heading(2, f"Parameters ({ci:.0%} intervals)", "parameters"))
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
    blocks.append(
        _Para(
            f"Posterior mean, sd and {ci:.0%} highest-density interval of every reported parameter "
            f"(hierarchical means mu_* and spreads sd_* included), with R-hat and effective sample "
            f"sizes. Cells in red break R-hat <= {RHAT_MAX} or ESS >= {ESS_MIN}"
            + (f": {n_bad} parameter(s)." if n_bad else ": none.")
        )
    )
    blocks.append(_Table(_fmt_frame(s), bad, caption=f"Posterior summary ({ci:.0%} HDI)"))


def _section_diagnostics(fit: Any, blocks: list, dpi: int) -> None:
    from bayes_dcpt.viz import curves as plotting

    d = fit.diagnostics(warn=False)
    blocks.append(_Heading(2, "Sampler diagnostics", "diagnostics"))
    sc = fit.sampler_config
    blocks.append(
        _Para(
            f"Sampler {sc.get('sampler')}: {sc.get('chains')} chains x {sc.get('draws')} draws after "
            f"{sc.get('tune')} tuning steps, seed {sc.get('seed')}"
            + (f", options {sc.get('options')}" if sc.get("options") else "")
            + (
                f"; saved with every {sc['thin']}th draw ({sc.get('draws_saved')} per chain)"
                if sc.get("thin")
                else ""
            )
            + f"; {d.seconds:.0f} s."
        )
    )
    if d.approximate:
        blocks.append(
            _Para(
                f"{d.sampler} is an approximation: no convergence diagnostics; check against NUTS "
                "before trusting the intervals.",
                bad=True,
            )
        )
        return
    rows = [
        ("divergent transitions", d.divergences, "0", d.divergences > 0),
        ("R-hat (max)", d.rhat_max, f"<= {RHAT_MAX}", not d.rhat_max <= RHAT_MAX),
        ("bulk ESS (min)", d.ess_bulk_min, f">= {ESS_MIN}", not d.ess_bulk_min >= ESS_MIN),
        ("tail ESS (min)", d.ess_tail_min, f">= {ESS_MIN}", not d.ess_tail_min >= ESS_MIN),
        (
            "E-BFMI (min)",
            d.bfmi_min,
            f">= {BFMI_MIN}",
            bool(np.isfinite(d.bfmi_min) and d.bfmi_min < BFMI_MIN),
        ),
    ]
    t = pd.DataFrame(
        [(a, _g(b), c, "BAD" if bad else "ok") for a, b, c, bad in rows],
        columns=["check", "value", "safe range", "status"],
    )
    mask = pd.DataFrame(False, index=t.index, columns=t.columns)
    for i, r in enumerate(rows):
        mask.iloc[i, [1, 3]] = r[3]
    blocks.append(_Table(t, mask, caption="Convergence checks over every reported parameter"))
    if d.ok:
        blocks.append(_Para("All checks pass.", good=True))
    else:
        blocks.append(
            _Para(
                "PROBLEMS: " + "; ".join(d.problems) + ". Do not trust these intervals before fixing "
                "this (more tuning or draws, a higher target_accept, or a simpler law).",
                bad=True,
            )
        )
    try:
        worst = plotting.worst_parameters(fit, 4)
        fig = plotting.rank_plot(fit, worst)
        blocks.append(
            _Image(
                plotting.figure_png(fig, dpi=dpi),
                "rank plot of the worst-mixing parameters",
                f"Rank plots (ArviZ) of the four worst-mixing parameters ({', '.join(worst)}): each "
                "chain's fractional-rank ECDF difference; chains that mix well stay inside the "
                "envelope, points mark where a chain leaves it.",
                "rank",
            )
        )
    except Exception as exc:  # a plotting failure must not lose the report; say so instead
        blocks.append(_Para(f"rank plot unavailable: {type(exc).__name__}: {exc}", bad=True))


def _section_curves(fit: Any, blocks: list, ci: float, dpi: int) -> None:
    from bayes_dcpt.viz import curves as plotting

    blocks.append(_Heading(2, "Fitted curves against the data", "curves"))
    blocks.append(
        _Para(
            f"Lines: posterior mean of the law; grey bands: its {ci:.0%} credible band (the law "
            "itself, without run offsets or checkpoint noise); markers: measurements (hollow: "
            "measured with none of the loss's own corpus, not fitted: the law does not hold "
            "there). Shaded region: beyond the largest measured tokens."
        )
    )
    for dom in fit.domains:
        blocks.append(_Heading(3, f"Domain {dom}", f"curves-{dom}"))
        fig = plotting.loss_curves(fit, domain=dom, ci=ci)
        blocks.append(
            _Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: loss against CPT tokens",
                f"{dom}: general and domain loss against CPT tokens (log scale) for each domain "
                "share r_domain, one row per model size.",
                f"curves_{dom}",
            )
        )
        fig = plotting.loss_vs_ratio(fit, domain=dom, ci=ci)
        blocks.append(
            _Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: loss against the domain share",
                f"{dom}: general and domain loss against the domain share at the largest measured "
                "tokens, one line per model size.",
                f"ratio_{dom}",
            )
        )


def _tradeoff_table(decs: Mapping[str, Any], ci: float) -> pd.DataFrame:
    rows = []
    for dom, d in decs.items():
        s = d.summary(ci)
        tb = s.table
        r = tb.loc["r_domain"] if "r_domain" in tb.index else None
        ra = s.risk_aware or {}
        rows.append(
            {
                "domain": dom,
                "median r*": _g(r["median"], ".3f") if r is not None else "n/a",
                f"{ci:.0%} interval": _interval(r["lo"], r["hi"], ".3f") if r is not None else "n/a",
                f"risk-aware r (P >= {ra.get('prob', 0.9):g})": _g(ra.get("r_domain"), ".3f")
                if ra.get("feasible")
                else "none",
                "domain loss at r* (median)": _g(tb.loc["loss_domain", "median"], ".4g")
                if "loss_domain" in tb.index
                else "n/a",
                "base general loss L0": _g(d.inputs["base_loss"], ".4g"),
                "draws": s.counts["n_draws"],
                "infeasible": s.counts["infeasible"],
                "always satisfied": s.counts["always_satisfied"],
            }
        )
    return pd.DataFrame(rows)


def _section_tradeoff(
    fit: Any, blocks: list, decs: Mapping[str, Any], inp: Mapping[str, Any], ci: float, dpi: int
) -> None:
    from bayes_dcpt.viz import curves as plotting

    blocks.append(_Heading(2, "Critical mixture ratio r* (trade-off)", "tradeoff"))
    thr = (
        f"{inp['max_general_increase']:.3g} ({inp['max_general_increase']:.1%} of the base loss)"
        if inp["relative"]
        else f"{inp['max_general_increase']:.3g} nats"
    )
    blocks.append(
        _Para(
            f"Usage 1 of the D-CPT paper, solved for every posterior draw: the largest domain share r* whose general "
            f"loss for a model of N = {inp['n_params']:,.0f} parameters after D = {inp['tokens']:,.0f} CPT tokens "
            f"stays within {thr} above the base model's. The risk-aware r is the largest share whose constraint "
            f"holds with probability >= {inp['prob']:g}. Infeasible draws (even r = 0 breaks the threshold) are "
            "counted, never dropped; the interval of r* is over the feasible draws."
        )
    )
    t = _tradeoff_table(decs, ci)
    mask = pd.DataFrame(False, index=t.index, columns=t.columns)
    mask["infeasible"] = t["infeasible"].astype(int) > 0
    blocks.append(_Table(t, mask, caption=f"r* per domain ({ci:.0%} equal-tailed intervals)"))
    for dom, d in decs.items():
        fig = d.plot(ci=ci)
        blocks.append(
            _Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: posterior of r* and trade-off curves",
                f"{dom}: posterior of r* (top), the general-loss increase against r with the "
                "threshold (dashed), and the domain loss against r; dotted: median r*, hatched: "
                f"its {ci:.0%} interval, dash-dotted: the risk-aware r.",
                f"tradeoff_{dom}",
            )
        )


def _section_compute(
    blocks: list, comp: Mapping[str, Any], flops: float, ci: float, dpi: int, skipped: Mapping[str, str]
) -> None:
    from bayes_dcpt.viz import curves as plotting

    blocks.append(_Heading(2, "Compute allocation", "compute"))
    blocks.append(
        _Para(
            f"Usage 3: for a budget of C = {flops:.3g} FLOPs (6 N D of the run above), the model size "
            "N and CPT tokens D that minimise the domain loss at each domain's risk-aware ratio "
            "(closed form of appendix G.3 per draw)."
        )
    )
    rows = []
    for dom, d in comp.items():
        tb = d.summary(ci).table
        rows.append(
            {
                "domain": dom,
                "r_domain": _g(d.inputs["r_domain"], ".3f"),
                "N_opt median": _g(tb.loc["n_params_opt", "median"], ".3g"),
                f"N_opt {ci:.0%}": _interval(tb.loc["n_params_opt", "lo"], tb.loc["n_params_opt", "hi"]),
                "D_opt median": _g(tb.loc["tokens_opt", "median"], ".3g"),
                f"D_opt {ci:.0%}": _interval(tb.loc["tokens_opt", "lo"], tb.loc["tokens_opt", "hi"]),
                "domain loss median": _g(tb.loc["loss_domain", "median"], ".4g")
                if "loss_domain" in tb.index
                else "n/a",
                "degenerate draws": d.extras["counts"].get("degenerate", 0),
            }
        )
    if rows:
        blocks.append(_Table(pd.DataFrame(rows), caption=f"Compute-optimal N and D ({ci:.0%} intervals)"))
    for dom, why in skipped.items():
        blocks.append(_Para(f"{dom}: no compute allocation ({why}).", bad=True))
    for dom, d in comp.items():
        fig = d.plot(ci=ci)
        blocks.append(
            _Image(
                plotting.figure_png(fig, dpi=dpi),
                f"{dom}: compute-optimal allocation",
                f"{dom}: per-draw compute-optimal (N, D) on the iso-FLOP line; star: the median.",
                f"compute_{dom}",
            )
        )


def _section_plan(
    blocks: list, plan: Any, plan_domain: str | None, n_cands: int, dpi: int, why_not: str | None
) -> None:
    from bayes_dcpt.viz import curves as plotting

    blocks.append(_Heading(2, "Next suggested probes", "plan"))
    if plan is None:
        blocks.append(_Para(f"No plan: {why_not}", bad=True))
        return
    blocks.append(
        _Para(
            f"The planner ranks {n_cands} candidate probe runs by the expected information they give about r* of "
            f"domain {plan_domain} per GPU-hour, and picks a batch of {plan.k} (one per GPU; a repeated row is an "
            "independent replicate). U_z: expected information about the target (nats); width after: expected "
            f"{plan.ci:.0%} interval width of r* after the batch so far."
        )
    )
    tb = plan.table
    cols = [
        c
        for c in (
            "rank",
            "domain",
            "n_params",
            "tokens",
            "r_domain",
            "gpu_hours",
            "U_z",
            "U_z_per_gpu_hour",
            "width_after_batch",
            "pred_loss_domain_lo",
            "pred_loss_domain_hi",
        )
        if c in tb
    ]
    show = tb[cols].rename(
        columns={
            "n_params": "N",
            "gpu_hours": "GPU-hours",
            "U_z": "U_z (nats)",
            "U_z_per_gpu_hour": "U_z per GPU-hour",
            "width_after_batch": "r* width after",
            "pred_loss_domain_lo": "domain loss lo",
            "pred_loss_domain_hi": "domain loss hi",
        }
    )
    blocks.append(_Table(_fmt_frame(show), caption=f"Suggested batch (target: {plan.target})"))
    blocks.append(_Pre(plan.summary()))
    fig = plan.plot()
    try:
        png = plotting.figure_png(fig, dpi=dpi)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    blocks.append(
        _Image(
            png,
            "planner: information against cost",
            "Left: expected information against cost for every candidate (stars: the batch); "
            "middle: expected r* interval width against cumulative GPU-hours; right: predicted "
            "losses of the batch's probes at their last checkpoint.",
            "plan",
        )
    )


# ============================================================================================ renderers
_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#111;background:#fff;max-width:1180px;
margin:1.5em auto;padding:0 1em;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #111;padding-bottom:.2em}
h2{font-size:1.3em;border-bottom:1px solid #999;margin-top:2em}
h3{font-size:1.1em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
caption{text-align:left;font-style:italic;padding-bottom:.3em}
th,td{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00000;font-weight:bold}
td.bad{background:#fde8e8}
p.bad{border-left:4px solid #b00000;padding-left:.6em}
p.good{border-left:4px solid #555;padding-left:.6em}
figure{margin:1em 0 1.6em}
figure img{max-width:100%;height:auto;border:1px solid #ccc}
figcaption{font-size:.85em;color:#333}
pre{background:#f4f4f4;border:1px solid #ccc;padding:.6em;overflow-x:auto;font-size:.8em}
nav ul{columns:2;font-size:.9em}
.keybox{border:2px solid #111;padding:.4em 1em;margin:1em 0}
@media print{body{max-width:none}figure{break-inside:avoid}}
"""


def _is_num(s: str) -> bool:
    try:
        float(str(s).replace(",", ""))
        return True
    except ValueError:
        return False


def _html_table(t: _Table) -> str:
    df = t.frame
    bad = t.bad
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{html.escape(t.caption)}</caption>")
    out.append(
        "<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns) + "</tr></thead>"
    )
    out.append("<tbody>")
    for i in range(len(df)):
        cells = []
        for j, c in enumerate(df.columns):
            v = df.iat[i, j]
            txt = _g(v)
            cls = ["num"] if _is_num(txt) else []
            flagged = bool(bad is not None and c in bad.columns and bool(bad.iat[i, bad.columns.get_loc(c)]))
            if flagged:
                cls.append("bad")
                txt = "\u26a0 " + txt
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(txt)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _render_html(title: str, blocks: list) -> str:
    toc = [
        f'<li><a href="#{b.anchor}">{html.escape(b.text)}</a></li>'
        for b in blocks
        if isinstance(b, _Heading) and b.level == 2 and b.anchor
    ]
    body = []
    for b in blocks:
        if isinstance(b, _Heading):
            anchor = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
            body.append(f"<h{b.level}{anchor}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, _Para):
            cls = ' class="bad"' if b.bad else (' class="good"' if b.good else "")
            body.append(f"<p{cls}>{html.escape(b.text)}</p>")
        elif isinstance(b, _Table):
            body.append(_html_table(b))
        elif isinstance(b, _Image):
            uri = "data:image/png;base64," + base64.b64encode(b.png).decode("ascii")
            body.append(
                f'<figure><img src="{uri}" alt="{html.escape(b.alt)}">'
                f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
            )
        elif isinstance(b, _Pre):
            body.append(f"<pre>{html.escape(b.text)}</pre>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<nav><ul>{''.join(toc)}</ul></nav>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_table(t: _Table) -> str:
    df, bad = t.frame, t.bad
    lines = []
    if t.caption:
        lines.append(f"*{_md_escape(t.caption)}*")
        lines.append("")
    lines.append("| " + " | ".join(_md_escape(c) for c in df.columns) + " |")
    lines.append("|" + "|".join("---" for _ in df.columns) + "|")
    for i in range(len(df)):
        cells = []
        for j, c in enumerate(df.columns):
            txt = _md_escape(_g(df.iat[i, j]))
            if bad is not None and c in bad.columns and bool(bad.iat[i, bad.columns.get_loc(c)]):
                txt = f"**\u26a0 {txt}**"
            cells.append(txt)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _render_md(title: str, blocks: list, out: Path) -> tuple[str, list[Path]]:
    img_dir = out.parent / f"{out.stem}_files"
    written: list[Path] = []
    parts = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, _Heading):
            parts += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, _Para):
            txt = b.text
            parts += [f"**\u26a0 {txt}**" if b.bad else txt, ""]
        elif isinstance(b, _Table):
            parts += [_md_table(b), ""]
        elif isinstance(b, _Image):
            img_dir.mkdir(parents=True, exist_ok=True)
            p = img_dir / f"{len(written) + 1:02d}_{_safe(b.name)}.png"
            p.write_bytes(b.png)
            written.append(p)
            parts += [
                f"![{_md_escape(b.alt)}]({img_dir.name}/{p.name})",
                "",
                f"*{_md_escape(b.caption)}*",
                "",
            ]
        elif isinstance(b, _Pre):
            parts += ["```", b.text, "```", ""]
    return "\n".join(parts) + "\n", written


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


# ================================================================================================ main
def _check_format(fmt: str | None, out: Path) -> str:
    if fmt is None:
        return "md" if out.suffix.lower() in (".md", ".markdown") else "html"
    f = str(fmt).strip().lower()
    if f == "markdown":
        f = "md"
    if f not in FORMATS:
        raise InputError(f"format must be html or md, not {fmt!r}")
    return f


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
) -> Report:
    """Write the credible-interval report of a fit (HTML, self-contained; or Markdown with PNGs beside it).

    Parameters
    ----------
    fit
        A :class:`~bayes_dcpt.fitting.Fit` (from :func:`~bayes_dcpt.fitting.fit` or :func:`~bayes_dcpt.fitting.load_fit`).
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

    Returns
    -------
    Report
        The path written and the decisions and plan it shows.

    Raises
    ------
    InputError, UnknownDomainError
        A bad option value (named in the message); nothing is written then.
    """
    from bayes_dcpt.decide.inputs import unit_interval

    out = Path(out)
    fmt = _check_format(format, out)
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
    notes: list[str] = []
    usage = default_usage_inputs(fit, n_params=n_params, tokens=tokens)
    if n_params is None or tokens is None:
        notes.append(
            f"trade-off question (default): N = {usage['n_params']:,.0f} parameters (the largest measured "
            f"size with a base model), D = {usage['tokens']:,.0f} tokens ({TOKENS_FACTOR:g} x the largest "
            "measured)"
            if n_params is None and tokens is None
            else f"trade-off question: N = {usage['n_params']:,.0f}, D = {usage['tokens']:,.0f} tokens"
        )
    inp = {**usage, "max_general_increase": max_general_increase, "relative": bool(relative), "prob": prob}
    tkw = dict(inp)
    if base_loss is not None:
        tkw["base_loss"] = base_loss
    # decisions first: they validate every usage input before anything is drawn or written
    trade = fit.optimize("tradeoff", **tkw)
    decs = dict(trade.items()) if hasattr(trade, "items") else {trade.domain: trade}
    for d in decs.values():
        inp["base_loss_" + d.domain] = d.inputs["base_loss"]
    flops = 6.0 * inp["n_params"] * inp["tokens"]
    comp: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if "domain" in fit.targets:
        for dom, d in decs.items():
            ra = d.summary(ci).risk_aware or {}
            r = ra.get("r_domain") if ra.get("feasible") else None
            if r is None or not np.isfinite(r) or r <= 0:
                skipped[dom] = "no ratio meets the trade-off constraint with the required probability"
                continue
            comp[dom] = fit.optimize("compute", domain=dom, flops=flops, r_domain=float(r), target="domain")
    else:
        skipped = {d: "the fit has no domain loss" for d in decs}

    the_plan, plan_domain, why_not, n_cands = None, None, None, 0
    if plan:
        widths = {}
        for dom, d in decs.items():
            tb = d.summary(ci).table
            if "r_domain" in tb.index:
                widths[dom] = float(tb.loc["r_domain", "hi"] - tb.loc["r_domain", "lo"])
        plan_domain = domain or (
            max(widths, key=lambda x: (np.nan_to_num(widths[x], nan=-1.0), x)) if widths else fit.domains[0]
        )
        if domain is None:
            notes.append(f"plan target: r* of domain {plan_domain} (the widest {ci:.0%} interval of r*)")
        if candidates is None:
            cands = default_candidates(fit)
        elif isinstance(candidates, (str, Path)):
            from bayes_dcpt.plan.candidates import read_candidates

            cands = read_candidates(candidates)
        else:
            cands = candidates
        n_cands = len(cands)
        skw = {k_: v for k_, v in tkw.items() if k_ != "prob"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            the_plan = fit.suggest(
                cands, "tradeoff", k=k, budget=budget, seed=seed, domain=plan_domain, **skw
            )
        if plan_csv is not None:
            Path(plan_csv).parent.mkdir(parents=True, exist_ok=True)
            the_plan.to_csv(plan_csv)

    blocks: list = []
    d = fit.diagnostics(warn=False)
    title = title or f"bayes-dcpt report: {fit.law.name} fit of {', '.join(fit.domains)}"
    blocks.append(
        _Para(
            f"Written {time.strftime('%Y-%m-%d %H:%M')} by bayes-dcpt {__version__}"
            + (f" from {source}" if source else "")
            + f". Intervals: {ci:.0%}."
        )
    )
    # key answers first
    blocks.append(_Heading(2, "Key answers", "key"))
    lines = []
    for dom, dd in decs.items():
        s = dd.summary(ci)
        tb, ra = s.table, s.risk_aware or {}
        if "r_domain" in tb.index:
            r = tb.loc["r_domain"]
            lines.append(
                f"{dom}: r* = {r['median']:.3f} ({ci:.0%} interval {r['lo']:.3f} to {r['hi']:.3f}); "
                f"risk-aware r = {_g(ra.get('r_domain'), '.3f') if ra.get('feasible') else 'none'}; "
                f"infeasible draws {s.counts['infeasible']} of {s.counts['n_draws']}"
            )
        else:
            lines.append(
                f"{dom}: no draw meets the constraint (infeasible {s.counts['infeasible']} of "
                f"{s.counts['n_draws']})"
            )
    if the_plan is not None and len(the_plan.table):
        top = the_plan.table.iloc[0]
        lines.append(
            f"next probe: {top['domain']}, N = {top['n_params']:,.0f}, D = {top['tokens']:,.0f} tokens, "
            f"r_domain = {top['r_domain']:.3g}, {top['gpu_hours']:.3g} GPU-hours"
        )
    for ln in lines:
        blocks.append(_Para(ln))
    blocks.append(_Para(f"diagnostics: {d}", bad=not d.ok, good=d.ok))
    for n in notes:
        blocks.append(_Para(f"note: {n}"))

    _section_data(fit, blocks)
    _section_law(fit, blocks)
    _section_parameters(fit, blocks, ci)
    _section_diagnostics(fit, blocks, dpi)
    _section_curves(fit, blocks, ci, dpi)
    _section_tradeoff(fit, blocks, decs, inp, ci, dpi)
    _section_compute(blocks, comp, flops, ci, dpi, skipped)
    if plan:
        _section_plan(blocks, the_plan, plan_domain, n_cands, dpi, why_not)
    blocks.append(_Heading(2, "Reproduce", "reproduce"))
    blocks.append(
        _Pre(_reproduce(fit, source, inp, base_loss, plan_domain if domain else None, k, budget, fmt))
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    images: list[Path | str] = []
    if fmt == "html":
        text = _render_html(title, blocks)
        images = [b.name for b in blocks if isinstance(b, _Image)]
    else:
        text, images = _render_md(title, blocks, out)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return Report(out, fmt, trade, comp, the_plan, plan_domain, inp, list(images), notes)


def _reproduce(
    fit: Any,
    source: str | None,
    inp: Mapping[str, Any],
    base_loss: Any,
    domain: str | None,
    k: int,
    budget: float | None,
    fmt: str,
) -> str:
    sc = fit.sampler_config
    fit_path = source or "FIT.nc"
    lines = [
        f"# fit ({sc.get('chains')} chains x {sc.get('draws')} draws, tune {sc.get('tune')}, seed {sc.get('seed')})",
        f"bayes-dcpt fit DATA.csv --law {fit.law.name} --target {fit.config.target} --draws {sc.get('draws')} "
        f"--tune {sc.get('tune')} --chains {sc.get('chains')} --seed {sc.get('seed')} --out {fit_path}",
        "# this report",
    ]
    cmd = (
        f"bayes-dcpt report {fit_path} --out report.{'md' if fmt == 'md' else 'html'} "
        f"--n-params {inp['n_params']:.6g} --tokens {inp['tokens']:.6g} "
        f"--max-general-increase {inp['max_general_increase']:g}"
    )
    if not inp["relative"]:
        cmd += " --absolute"
    if isinstance(base_loss, (int, float)):
        cmd += f" --base-loss {base_loss:g}"
    if domain:
        cmd += f" --domain {domain}"
    cmd += f" --k {k}" + (f" --budget {budget:g}" if budget else "")
    lines.append(cmd)
    return "\n".join(lines)
