"""Figures of :class:`~bayes_dcpt.decide.results.Decision` answers (matplotlib; no pyplot state, any backend).

One figure per usage, registered as ``Decision.plot()`` (:mod:`bayes_dcpt.hooks`: the decide layer never
imports this one). Every figure is readable in grey-scale: medians are solid lines, credible bands are light
grey fills with hatching, thresholds are dashed, ``r*`` and its interval are dotted lines and a hatched span,
and the risk-aware answer is dash-dotted.

Quickstart::

    >>> from bayes_dcpt import decide
    >>> fig = decide.tradeoff(post, n_params=1.8e9, tokens=10e9).plot()
    >>> fig.savefig("tradeoff.png", dpi=150)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayes_dcpt.hooks import provides
from bayes_dcpt.numerics.quantiles import quantile_band, weighted_quantile

if TYPE_CHECKING:  # pragma: no cover
    from bayes_dcpt.decide.results import Decision

__all__ = ["plot_decision"]

_BAND = {"facecolor": "0.85", "edgecolor": "0.45", "hatch": "///", "linewidth": 0.0}
_RSPAN = {"facecolor": "none", "edgecolor": "0.3", "hatch": "\\\\\\", "linewidth": 0.0}


def _figure(nrows: int, ncols: int = 1, *, figsize: tuple[float, float], sharex: bool = False) -> tuple[Any, Any]:
    """A standalone Figure (no pyplot state, so it works under any backend, including Agg)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex)
    return fig, axes


def _mark_r(ax: Any, d: Decision, ci: float, *, label: bool) -> None:
    """Mark the median ``r*``, its ``ci`` interval and the risk-aware ``r`` on ``ax`` (legend labels if ``label``)."""
    r = d.posterior["r_domain"].to_numpy(float)
    lo, med, hi = weighted_quantile(r, ((1 - ci) / 2, 0.5, 1 - (1 - ci) / 2), d.draw_weights())
    if np.isfinite(med):
        ax.axvspan(lo, hi, label=f"r* {ci:.0%} interval" if label else None, **_RSPAN)
        ax.axvline(med, color="black", linestyle=":", linewidth=1.5, label=f"median r* = {med:.3f}" if label else None)
    ra = d.extras.get("risk_aware")
    if ra and ra.get("feasible"):
        ax.axvline(ra["r_domain"], color="0.2", linestyle="-.", linewidth=1.2,
                   label=f"risk-aware r = {ra['r_domain']:.3f} (P >= {ra['prob']:g})" if label else None)


def _band_plot(ax: Any, x: np.ndarray, y: np.ndarray, w: np.ndarray, ci: float, label: str) -> None:
    """The weighted median of per-draw curves ``y`` (draws x points) against ``x``, with its ``ci`` band."""
    b = quantile_band(y, w, ci)
    ax.fill_between(x, b[0], b[2], label=f"{ci:.0%} band", **_BAND)
    ax.plot(x, b[1], color="black", linestyle="-", linewidth=1.6, label=label)


def _hist(ax: Any, x: np.ndarray, w: np.ndarray, xlabel: str, *, bins: Any = 40, log: bool = False) -> None:
    """The weighted posterior histogram of ``x`` (undefined values left out)."""
    ok = np.isfinite(x)
    if ok.any():
        xx = np.log10(x[ok]) if log else x[ok]
        ax.hist(xx, bins=bins, weights=w[ok], color="0.7", edgecolor="black", hatch="..", linewidth=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("posterior probability")


def _plot_tradeoff(d: Decision, ci: float) -> Any:
    """Usage 1: the ``r*`` posterior over the general-loss increase and (if fitted) the domain loss against ``r``."""
    c, w, inp = d.curves, d.draw_weights(), d.inputs
    has_dom = "loss_domain" in c
    fig, axes = _figure(3 if has_dom else 2, 1, figsize=(7.0, 9.0 if has_dom else 6.5), sharex=True)
    ax0 = axes[0, 0]
    r = d.posterior["r_domain"].to_numpy(float)
    edges = np.linspace(0, 1, 51)
    _hist(ax0, r, w, "", bins=edges)
    if "one_run_within" in c:  # where one run crosses: the same bins of 1 - P(one run at r stays within)
        P = np.interp(edges, c["r"], c["one_run_within"])
        mass = np.clip(P[:-1] - P[1:], 0.0, None)
        mass[0] += 1.0 - P[0]
        ax0.stairs(mass, edges, color="0.3", linestyle="--", linewidth=1.4,
                   label="where one run crosses (its offset and noise included)")
    n_inf = int(d.extras["counts"]["infeasible"])
    n_all = int(d.extras["counts"]["always_satisfied"])
    ax0.set_title(f"{d.domain}: posterior of r* (N = {inp['n_params']:.3g}, D = {inp['tokens']:.3g} tokens); "
                  f"infeasible draws {n_inf}, always satisfied {n_all}", fontsize=9)
    _mark_r(ax0, d, ci, label=True)
    ax0.legend(fontsize=8, loc="upper left")

    ax1 = axes[1, 0]
    scale = 100.0 if inp["relative"] else 1.0
    unit = "general-loss increase over base (%)" if inp["relative"] else "general-loss increase over base (nats)"
    _band_plot(ax1, c["r"], c["general_increase"] * scale, w, ci, "median increase")
    ax1.axhline(inp["max_general_increase"] * scale, color="black", linestyle="--", linewidth=1.2,
                label=f"threshold {inp['max_general_increase'] * scale:g}{' %' if inp['relative'] else ''}")
    _mark_r(ax1, d, ci, label=False)
    ax1.set_ylabel(unit)
    ax1.legend(fontsize=8, loc="upper left")
    if has_dom:
        ax2 = axes[2, 0]
        _band_plot(ax2, c["r"], c["loss_domain"], w, ci, "median domain loss")
        _mark_r(ax2, d, ci, label=False)
        ax2.set_ylabel("domain loss (nats)")
        ax2.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("domain share of the CPT mixture r_domain")
    axes[-1, 0].set_xlim(0, 1)
    return fig


def _plot_limited(d: Decision, ci: float) -> Any:
    """Usage 2: the ``r*`` posterior over the domain loss along ``D = D_d / r``."""
    c, w, inp = d.curves, d.draw_weights(), d.inputs
    fig, axes = _figure(2, 1, figsize=(7.0, 6.5), sharex=True)
    r = d.posterior["r_domain"].to_numpy(float)
    _hist(axes[0, 0], r, w, "", bins=np.linspace(0, 1, 51))
    axes[0, 0].set_title(f"{d.domain}: posterior of r* with D_d = {inp['domain_tokens']:.3g} domain tokens "
                         f"(interior optimum in {d.extras['counts']['interior']} of {d.n_draws} draws)", fontsize=9)
    _mark_r(axes[0, 0], d, ci, label=True)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    ax = axes[1, 0]
    _band_plot(ax, c["r"], c["loss_domain"], w, ci, "median domain loss at D = D_d / r")
    _mark_r(ax, d, ci, label=False)
    ax.set_ylabel("domain loss (nats)")
    ax.set_xlabel("domain share of the CPT mixture r_domain (total tokens D = D_d / r)")
    ax.set_xlim(0, 1)
    b = np.nanquantile(c["loss_domain"], [0.02, 0.98])
    if np.all(np.isfinite(b)) and b[1] > b[0]:
        ax.set_ylim(b[0] - 0.05 * (b[1] - b[0]), b[1] + 0.05 * (b[1] - b[0]))
    ax.legend(fontsize=8, loc="upper right")
    return fig


def _plot_compute(d: Decision, ci: float) -> Any:
    """Usage 3: the per-draw optima on the iso-FLOP line, and the optimised loss against ``r`` when joint."""
    w, inp = d.draw_weights(), d.inputs
    joint = "loss_opt" in d.curves
    fig, axes = _figure(1, 2 if joint else 1, figsize=(11.0 if joint else 6.5, 5.0))
    ax = axes[0, 0]
    N = d.posterior["n_params_opt"].to_numpy(float)
    D = d.posterior["tokens_opt"].to_numpy(float)
    ok = np.isfinite(N) & np.isfinite(D)
    ax.scatter(N[ok], D[ok], s=8, marker="o", facecolors="none", edgecolors="0.35", linewidths=0.6,
               label="per-draw optimum")
    if ok.any():
        lo, hi = np.nanmin(N[ok]) / 3, np.nanmax(N[ok]) * 3
        nn = np.geomspace(lo, hi, 50)
        ax.plot(nn, inp["flops"] / (6 * nn), color="black", linestyle="--", linewidth=1.0,
                label=f"iso-FLOP C = {inp['flops']:.3g}")
        mN, mD = weighted_quantile(N, (0.5,), w)[0], weighted_quantile(D, (0.5,), w)[0]
        ax.plot([mN], [mD], marker="*", markersize=14, color="black", linestyle="none",
                label=f"median N = {mN:.3g}, D = {mD:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("optimal model size N (parameters)")
    ax.set_ylabel("optimal CPT tokens D")
    rtxt = "r optimised" if joint else f"r = {inp['r_domain']:g}"
    ax.set_title(f"{d.domain}: compute-optimal allocation ({rtxt}; {inp['target']} loss)", fontsize=9)
    ax.legend(fontsize=8)
    if joint:
        ax2 = axes[0, 1]
        _band_plot(ax2, d.curves["r"], d.curves["loss_opt"], w, ci, f"median optimal {inp['target']} loss")
        _mark_r(ax2, d, ci, label=True)
        ax2.set_xlabel("domain share of the CPT mixture r_domain")
        ax2.set_ylabel(f"{inp['target']} loss at the compute-optimal N, D (nats)")
        ax2.legend(fontsize=8)
    return fig


def _plot_curve(d: Decision, ci: float) -> Any:
    """The critical curve: ``r*`` against CPT tokens with its band and the risk-aware ``r``."""
    fig, axes = _figure(1, 1, figsize=(7.0, 4.8))
    ax = axes[0, 0]
    toks, R, w = d.curves["tokens"], d.curves["r"], d.draw_weights()
    b = quantile_band(R, w, ci)
    ax.fill_between(toks, b[0], b[2], label=f"{ci:.0%} band", **_BAND)
    ax.plot(toks, b[1], color="black", linestyle="-", marker="o", markersize=3, label="median r*")
    ra = [d.extras["risk_aware"][float(t)]["r_domain"] for t in toks]
    ax.plot(toks, ra, color="0.2", linestyle="-.", label=f"risk-aware r (P >= {d.inputs['prob']:g})")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("CPT tokens D")
    ax.set_ylabel("critical domain share r*")
    inc = d.inputs["max_general_increase"]
    thr = f"{inc:.3g}{' (relative)' if d.inputs['relative'] else ' nats'}"
    ax.set_title(f"{d.domain}: critical mixture ratio against tokens (N = {d.inputs['n_params']:.3g}, "
                 f"general-loss increase <= {thr})", fontsize=9)
    ax.legend(fontsize=8)
    return fig


@provides("Decision.plot")
def plot_decision(d: Decision, *, ci: float = 0.9) -> Any:
    """The figure of one decision (see :meth:`Decision.plot`)."""
    fn = {"tradeoff": _plot_tradeoff, "limited-data": _plot_limited, "compute": _plot_compute,
          "critical-curve": _plot_curve}[d.usage]
    return fn(d, ci)
