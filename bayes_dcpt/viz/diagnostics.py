"""Figures of the sampler's health: which parameters mix worst, and ArviZ rank plots of them.

A rank plot shows each chain's fractional-rank ECDF difference (the ECDF of its ranks minus the uniform one):
chains that sample the same posterior stay near zero, a chain stuck in one part of the posterior bends away, and
black points mark the ranks where ArviZ's multi-chain uniformity test finds the largest departures. The report
draws the worst four; its verdict is R-hat and ESS, so the per-panel test p-values are not drawn.

Quickstart::

    >>> from bayes_dcpt import viz
    >>> fig = viz.rank_plot(fit)          # the six worst-mixing parameters
    >>> viz.worst_parameters(fit, 4)      # their names, worst first
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bayes_dcpt.errors import InputError

__all__ = ["rank_plot", "worst_parameters"]


def _as_dataset(obj: Any) -> Any:
    """ArviZ 1.x returns diagnostics as a DataTree node (or a Dataset); give the Dataset."""
    if hasattr(obj, "children") and "posterior" in obj.children:
        obj = obj["posterior"]
    return obj.to_dataset() if hasattr(obj, "to_dataset") else obj


def worst_parameters(fit: Any, n: int = 6) -> list[str]:
    """The ``n`` reported parameters that mix worst (highest R-hat, then lowest bulk ESS), worst first."""
    import arviz as az

    names = [v for v in fit.var_names if v in fit.idata["posterior"].data_vars]
    if not names:
        return []
    rh = _as_dataset(az.rhat(fit.idata, var_names=names))
    es = _as_dataset(az.ess(fit.idata, var_names=names, method="bulk"))
    rows = [(-float(np.nanmax(np.asarray(rh[v]))), float(np.nanmin(np.asarray(es[v]))), v) for v in names]
    rows.sort()
    return [v for _, _, v in rows[:n]]


def rank_plot(fit: Any, var_names: Sequence[str] | None = None, *, n: int = 6) -> Any:
    """ArviZ rank plot (fractional-rank ECDF differences per chain).

    Well-mixed chains stay near zero; a chain that spends too long in one part of the posterior bends away
    (black points: where the multi-chain uniformity test finds it departs most; the test's p-values are not
    drawn). ``var_names`` default: the ``n`` worst-mixing parameters
    (:func:`worst_parameters`). Chains differ by line style as well as colour. The figure is closed in
    pyplot after drawing (ArviZ creates it through pyplot), so no pyplot state is left behind.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from arviz_plots import plot_rank

    if getattr(fit, "_diagnostics", None) is not None and fit._diagnostics.approximate:
        raise InputError("a rank plot needs MCMC chains; this fit is an approximation (laplace/advi)")
    names = list(var_names) if var_names else worst_parameters(fit, n)
    if not names:
        raise InputError("no parameters to draw")
    post = fit.idata["posterior"]
    panels = sum(
        int(np.prod([post[v].sizes[d] for d in post[v].dims if d not in ("chain", "draw")] or [1]))
        for v in names
    )
    cols = min(4, panels)
    rows = int(np.ceil(panels / cols))
    pc = plot_rank(
        fit.idata,
        var_names=names,
        backend="matplotlib",
        aes={"color": ["chain"], "linestyle": ["chain"]},
        figure_kwargs={"figsize": (3.0 * cols, 2.6 * rows + 0.4), "layout": "constrained"},
    )
    fig = pc.viz["figure"].item()
    for ax in fig.axes:  # the per-panel test p-values are not the verdict of the report (R-hat, ESS): drop them
        for text in list(ax.texts):
            if text.get_text().startswith("p="):
                text.remove()
    plt.close(fig)
    return fig
