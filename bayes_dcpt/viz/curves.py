"""Figures of a fit: fitted loss curves with credible bands against the data.

Every function returns a standalone :class:`matplotlib.figure.Figure` (no pyplot state, so it works under
any backend, Agg included, and leaves no open figures behind). Figures are readable in grey-scale print:
the ratios (or model sizes) of a panel differ by marker shape and line style as well as by grey level,
credible bands are light fills under solid median lines, and measurements the fit did not use are hollow.

Quickstart::

    >>> from bayes_dcpt import viz
    >>> fig = viz.loss_curves(fit, domain="python")          # loss vs CPT tokens, one line per ratio
    >>> fig = viz.loss_vs_ratio(fit, domain="python")        # loss vs r_domain at the largest tokens
    >>> png = viz.figure_png(fig)                            # PNG bytes (what the report embeds)

Sampler diagnostics (rank plots) are in :mod:`~bayes_dcpt.viz.diagnostics`.

Conventions: ``r_domain`` is the domain share of the CPT mixture (the general loss is evaluated at its own
ratio ``1 - r_domain``); losses are in nats per token; bands are equal-tailed ``ci`` intervals of the law
itself (``kind="mean"``) unless ``kind="predictive"`` asks for a new run's measurement.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import InputError, UnknownDomainError
from bayes_dcpt.posterior.extrapolation import DomainEnvelope, domain_envelope

__all__ = [
    "LINESTYLES",
    "MARKERS",
    "figure_png",
    "loss_curves",
    "loss_vs_ratio",
    "misfit_map",
]

#: Marker shapes and line styles cycled over the series of a panel (distinct without colour).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1)))
LOSS_LABEL = "validation loss (nats/token)"
TOKENS_LABEL = "CPT tokens D"
RATIO_LABEL = "domain share of the CPT mixture r_domain"


def _figure(nrows: int, ncols: int, *, figsize: tuple[float, float]) -> tuple[Any, np.ndarray]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _greys(n: int) -> list[str]:
    """``n`` grey levels from black to mid grey (matplotlib grey strings)."""
    return [f"{v:.2f}" for v in np.linspace(0.0, 0.55, max(n, 1))]


def _posterior(obj: Any) -> Any:
    """A Posterior from a Fit or a Posterior."""
    return getattr(obj, "posterior", obj) if not hasattr(obj, "surface") else obj


def _data_of(obj: Any, data: pd.DataFrame | None) -> pd.DataFrame:
    if data is not None:
        return _data.load(data)
    if hasattr(obj, "data"):
        return obj.data
    raise InputError("data is required when plotting a Posterior (a Fit carries its own data)")


def _check_domain(post: Any, domain: str) -> None:
    if domain not in post.domains:
        raise UnknownDomainError(f"unknown domain {domain!r}; the fit knows {post.domains}")


def _curve_inputs(fit: Any, data: pd.DataFrame | None, domain: str, ci: float, kind: str,
                  targets: Sequence[str] | None) -> tuple[Any, pd.DataFrame, float, list[str]]:
    """Checked inputs of the curve plots: (posterior, the domain's CPT rows, ci, targets)."""
    post = _posterior(fit)
    df = _data_of(fit, data)
    _check_domain(post, domain)
    ci = _check_ci(ci)
    if kind not in ("mean", "predictive"):
        raise InputError(f"kind must be 'mean' or 'predictive', not {kind!r}")
    cpt = _data.fit_rows(df)
    cpt = cpt[cpt["domain"] == domain]
    if cpt.empty:
        raise InputError(f"no CPT measurements (tokens > 0) for domain {domain!r} to draw")
    return post, cpt, ci, list(targets or post.targets)


def _check_ci(ci: float) -> float:
    try:
        v = float(ci)
    except (TypeError, ValueError):
        raise InputError(f"ci must be a number in (0, 1), got {ci!r}") from None
    if not 0 < v < 1:
        raise InputError(f"ci must be in (0, 1), got {ci!r}")
    return v


def _band(
    post: Any,
    target: str,
    domain: str,
    n_params: float,
    tokens: np.ndarray,
    r_domain: np.ndarray,
    ci: float,
    kind: str,
) -> pd.DataFrame:
    grid = pd.DataFrame(
        {"domain": domain, "n_params": float(n_params), "tokens": tokens, "r_domain": r_domain}
    )
    return post.predict(grid, ci, kind=kind)


def _own_ratio(target: str, r_domain: Any) -> Any:
    return r_domain if target == "domain" else 1.0 - np.asarray(r_domain, float)


def _data_envelope(cpt: pd.DataFrame) -> DomainEnvelope:
    """The plotted CPT rows' envelope, so that where the data end at each size is read as the bands read it.

    :meth:`~bayes_dcpt.posterior.extrapolation.DomainEnvelope.tokens_limit`: a size's own largest tokens, at a size
    the rows do not hold the largest probed size's below it, else the widest.
    """
    by = cpt.groupby("n_params")["tokens"].max()
    sizes = by.index.to_numpy(float)
    return DomainEnvelope(sizes, by.to_numpy(float), float(sizes.min()), float(sizes.max()),
                          np.sort(cpt["r_domain"].dropna().unique().astype(float)))


def _fmt_n(n: float) -> str:
    return f"{n:,.0f}" if n < 1e6 else f"{n:.3g}"


#: How a failed adequacy check reads in a panel's note (see :mod:`bayes_dcpt.posterior.adequacy`).
MISFIT_LABELS = {
    "coverage": "points outside the band",
    "trend_tokens": "misses the shape along D",
    "trend_ratio": "misses the shape in r",
    "trend_size": "misses the trend in N",
    "loo_pit": "bands miscalibrated",
    "tails": "heavy tails absorb the misfit",
}
MISFIT_COLOR = "#b00000"


def misfit_map(adequacy: Any) -> dict[tuple[str, str, float | None], list[str]]:
    """``{(target, domain, n_params or None): [failed check, ...]}`` of an adequacy verdict (empty when it passes)."""
    out: dict[tuple[str, str, float | None], list[str]] = {}
    for c in getattr(adequacy, "failures", ()) or ():
        out.setdefault((c.target, c.domain, c.n_params), []).append(c.check)
    return out


def _panel_misfit(misfit: Mapping[tuple[str, str, float | None], Sequence[str]] | None, target: str, domain: str,
                  n: float) -> list[str]:
    """The failed checks that concern the panel of (target, domain, size n): its own and its domain's."""
    if not misfit:
        return []
    found: list[str] = []
    for (t, d, size), checks in misfit.items():
        if t == target and d == domain and (size is None or np.isclose(float(size), n)):
            found += [c for c in checks if c not in found]
    return found


def _mark_misfit(ax: Any, checks: Sequence[str]) -> None:
    """A red frame and a red second title line naming what the law misses in this panel."""
    for spine in ax.spines.values():
        spine.set_edgecolor(MISFIT_COLOR)
        spine.set_linewidth(2.5)
    note = "MISFIT: " + "; ".join(MISFIT_LABELS.get(c, c) for c in checks)
    ax.set_title(f"{ax.get_title()}\n{note}", fontsize=10, color=MISFIT_COLOR)


def loss_curves(
    fit: Any,
    *,
    domain: str,
    data: pd.DataFrame | None = None,
    ci: float = CI_PROB,
    kind: str = "mean",
    n_params: Sequence[float] | None = None,
    targets: Sequence[str] | None = None,
    extend: float = 2.0,
    misfit: Mapping[tuple[str, str, float | None], Sequence[str]] | None = None,
    shade_from_fit: bool = False,
) -> Any:
    """Loss against CPT tokens for each ratio, with the fitted curve and its credible band, over the data.

    One row of panels per model size, one column per fitted target (general, domain loss). Each ratio
    is one series: the measurements (markers; hollow when not fitted, i.e. measured with none of the
    loss's own corpus and the law does not fit those: ``post.fits_zero_ratio``) and, where the fit applies,
    the posterior mean of the law with its ``ci`` band. The x axis is logarithmic and extends ``extend`` times
    beyond the largest measured tokens (extrapolation shaded from each size's own largest measured tokens).

    Parameters
    ----------
    fit
        A :class:`~bayes_dcpt.fitting.Fit` (or a Posterior together with ``data``).
    domain
        The domain to draw.
    data
        Measurements to draw (default: the fit's data).
    ci
        Band probability (equal-tailed).
    kind
        ``"mean"`` (the law's credible band) or ``"predictive"`` (a new run's measurement).
    n_params
        Model sizes (rows); default: every size measured for the domain.
    targets
        Targets (columns); default: every fitted target.
    extend
        How far beyond the largest measured tokens to draw the curves (factor >= 1).
    misfit
        Failed adequacy checks by ``(target, domain, n_params)`` (``n_params`` None: every size), e.g.
        :func:`misfit_map` of ``fit.adequacy()``: their panels get a red frame and a note saying what the law
        misses there.
    shade_from_fit
        Shade beyond the data the *fit* had (its recorded envelope) rather than beyond the rows drawn: for runs
        measured after the fit, the shaded part is where their bands were an extrapolation.

    Returns
    -------
    matplotlib.figure.Figure
    """
    post, cpt, ci, targets = _curve_inputs(fit, data, domain, ci, kind, targets)
    if not np.isfinite(extend) or extend < 1:
        raise InputError(f"extend must be >= 1, got {extend!r}")
    sizes = sorted(float(x) for x in (n_params if n_params is not None else cpt["n_params"].unique()))
    ratios = sorted(float(x) for x in cpt["r_domain"].dropna().unique())
    greys, tmin, tmax = _greys(len(ratios)), float(cpt["tokens"].min()), float(cpt["tokens"].max())
    fit_env = domain_envelope(post.ctx.get("envelope"), domain) if shade_from_fit else None
    env = fit_env or _data_envelope(cpt)  # each size is shaded from where its own data (or the fit's) end
    where = "the fit's data" if fit_env else "the data"
    tgrid = np.geomspace(tmin / 1.2, tmax * extend, 60)
    fig, axes = _figure(len(sizes), len(targets), figsize=(5.2 * len(targets), 3.3 * len(sizes) + 0.6))
    for i, n in enumerate(sizes):
        rows_n = cpt[np.isclose(cpt["n_params"].to_numpy(float), n)]
        for j, t in enumerate(targets):
            ax = axes[i, j]
            for k, r in enumerate(ratios):
                pts = rows_n[np.isclose(rows_n["r_domain"].to_numpy(float), r)].dropna(subset=[f"loss_{t}"])
                _ratio_series(ax, post, pts, t, domain, n, r, k, greys[k], tgrid, ci, kind)
            if (edge := float(env.tokens_limit(np.asarray(n)))) < tgrid[-1]:  # nothing to shade otherwise
                ax.axvspan(edge, tgrid[-1], color="0.93", zorder=0, linewidth=0)
            ax.set_xscale("log")
            ax.set_xlabel(TOKENS_LABEL + f" (log scale; shaded: beyond {where})")
            ax.set_ylabel(f"{t} {LOSS_LABEL}")
            ax.set_title(f"{domain}: {t} loss, N = {_fmt_n(n)} parameters", fontsize=10)
            ax.grid(True, which="major", color="0.88", linewidth=0.6)
            if checks := _panel_misfit(misfit, t, domain, n):
                _mark_misfit(ax, checks)
            if i == 0:
                ax.legend(
                    fontsize=7, ncols=2, loc="best", title=f"lines: law mean, band {ci:.0%}", title_fontsize=7
                )
    return fig


def _ratio_series(
    ax: Any,
    post: Any,
    pts: pd.DataFrame,
    t: str,
    domain: str,
    n: float,
    r: float,
    k: int,
    g: str,
    tgrid: np.ndarray,
    ci: float,
    kind: str,
) -> None:
    """One ratio (the ``k``-th) on a loss-against-tokens panel: its measurements and, if fitted, the law's band."""
    col = f"loss_{t}"
    mk, ls = MARKERS[k % len(MARKERS)], LINESTYLES[k % len(LINESTYLES)]
    fitted = _own_ratio(t, r) > 0 or post.fits_zero_ratio
    label = f"r = {r:g}" + ("" if fitted else " (not fitted)")
    if len(pts):
        ax.plot(
            pts["tokens"],
            pts[col],
            linestyle="none",
            marker=mk,
            markersize=5,
            color=g,
            markerfacecolor=g if fitted else "white",
            markeredgewidth=1.0,
            label=None if fitted else label,
        )
    if fitted and (t, domain) in post.params:
        b = _band(post, t, domain, n, tgrid, np.full(tgrid.size, r), ci, kind)
        ax.fill_between(tgrid, b[f"{col}_lo"], b[f"{col}_hi"], color="0.5", alpha=0.18, linewidth=0)
        ax.plot(
            tgrid,
            b[f"{col}_mean"],
            color=g,
            linestyle=ls,
            linewidth=1.4,
            marker=mk,
            markevery=[len(tgrid) - 1],
            markersize=5,
            label=label,
        )


def loss_vs_ratio(
    fit: Any,
    *,
    domain: str,
    data: pd.DataFrame | None = None,
    tokens: float | None = None,
    ci: float = CI_PROB,
    kind: str = "mean",
    targets: Sequence[str] | None = None,
) -> Any:
    """Loss against the domain share at one token count (default: the largest measured), one line per size.

    Measurements at exactly that token count are drawn as markers; the law's posterior mean and ``ci``
    band are drawn over the ratios where the loss's own ratio is positive.

    Returns
    -------
    matplotlib.figure.Figure
    """
    post, cpt, ci, targets = _curve_inputs(fit, data, domain, ci, kind, targets)
    if tokens is None:
        tokens = float(cpt["tokens"].max())
    elif not (np.isfinite(tokens) and tokens > 0):
        raise InputError(f"tokens must be > 0, got {tokens!r}")
    sizes = sorted(float(x) for x in cpt["n_params"].unique())
    greys = _greys(len(sizes))
    at = cpt[np.isclose(cpt["tokens"].to_numpy(float), tokens)]
    fig, axes = _figure(1, len(targets), figsize=(5.2 * len(targets), 4.0))
    for j, t in enumerate(targets):
        ax = axes[0, j]
        col = f"loss_{t}"
        rgrid = np.linspace(0.0, 1.0, 81)
        if not post.fits_zero_ratio:
            rgrid = rgrid[_own_ratio(t, rgrid) > 0]
        for k, n in enumerate(sizes):
            mk, ls, g = MARKERS[k % len(MARKERS)], LINESTYLES[k % len(LINESTYLES)], greys[k]
            if (t, domain) in post.params:
                b = _band(post, t, domain, n, np.full(rgrid.size, float(tokens)), rgrid, ci, kind)
                ax.fill_between(rgrid, b[f"{col}_lo"], b[f"{col}_hi"], color="0.5", alpha=0.18, linewidth=0)
                ax.plot(
                    rgrid, b[f"{col}_mean"], color=g, linestyle=ls, linewidth=1.4, label=f"N = {_fmt_n(n)}"
                )
            pts = at[np.isclose(at["n_params"].to_numpy(float), n)].dropna(subset=[col])
            if len(pts):
                fitted = (_own_ratio(t, pts["r_domain"].to_numpy(float)) > 0) | post.fits_zero_ratio
                ax.plot(
                    pts["r_domain"][fitted],
                    pts[col][fitted],
                    linestyle="none",
                    marker=mk,
                    color=g,
                    markersize=6,
                )
                ax.plot(
                    pts["r_domain"][~fitted],
                    pts[col][~fitted],
                    linestyle="none",
                    marker=mk,
                    color=g,
                    markerfacecolor="white",
                    markersize=6,
                )
        ax.set_xlim(0, 1)
        ax.set_xlabel(RATIO_LABEL)
        ax.set_ylabel(f"{t} {LOSS_LABEL}")
        ax.set_title(f"{domain}: {t} loss at D = {tokens:,.0f} CPT tokens", fontsize=10)
        ax.grid(True, color="0.88", linewidth=0.6)
        ax.legend(
            fontsize=8, title=f"law mean, band {ci:.0%}; markers: data (hollow: not fitted)", title_fontsize=7
        )
    return fig


def figure_png(fig: Any, *, dpi: int = 110) -> bytes:
    """Render a Figure to PNG bytes (Agg, whatever the current backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
