"""The figure of a plan: what each candidate probe is worth, what the batch buys, and what it will measure.

Registered as ``Plan.plot`` (:mod:`bayes_dcpt.hooks`): the planner sits below this layer and never imports
matplotlib. One function per panel; each draws on the axes it is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_dcpt.hooks import provides

__all__ = ["plot_plan"]


@provides("Plan.plot")
def plot_plan(plan: Any, *, figsize: tuple[float, float] = (13.0, 4.2)) -> Any:
    """Three panels of a :class:`~bayes_dcpt.plan.result.Plan`; returns the Figure (no pyplot state, any backend).

    Information vs cost of every candidate (batch marked), expected interval width against cumulative
    GPU-hours, and the predicted loss bands of the batch.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, constrained_layout=True)
    axes = fig.subplots(1, 3)
    _information_panel(axes[0], plan)
    _width_panel(axes[1], plan)
    _bands_panel(axes[2], plan)
    fig.suptitle(f"Plan for {plan.target}", fontsize=11)
    return fig


def _information_panel(ax: Any, plan: Any) -> None:
    """Every candidate's information about the target against its cost; the batch's picks starred."""
    from matplotlib.ticker import NullFormatter

    sc, tb = plan.scores, plan.table
    ax.scatter(
        sc["gpu_hours"], sc["U_z"], s=14, c="0.6", marker="o", label="candidates", edgecolors="none"
    )
    if not tb.empty:
        ax.scatter(tb["gpu_hours"], tb["U_z_alone"], s=90, c="black", marker="*", label="batch (alone)")
        for _, r in tb.iterrows():
            ax.annotate(
                f"#{int(r['rank'])}",
                (r["gpu_hours"], r["U_z_alone"]),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=8,
            )
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide when costs span < 1 decade
    ax.set_xlabel("probe cost [GPU-hours]")
    ax.set_ylabel("expected information about target, U_z [nats]")
    ax.set_title("candidates: information vs cost", fontsize=10)
    ax.legend(fontsize=8, frameon=False)


def _width_panel(ax: Any, plan: Any) -> None:
    """The target's expected interval width as the batch's probes are added (and the tolerance, if set)."""
    tb = plan.table
    x = np.concatenate([[0.0], tb["cum_gpu_hours"].to_numpy(float)]) if not tb.empty else np.array([0.0])
    y = (
        np.concatenate([[plan.current_width], tb["width_after_batch"].to_numpy(float)])
        if not tb.empty
        else np.array([plan.current_width])
    )
    ax.step(x, y, where="post", color="black", lw=1.5, label="expected after batch so far")
    ax.plot(x, y, "ko", ms=4)
    if plan.checks.get("stop_width"):
        ax.axhline(plan.checks["stop_width"], color="0.4", ls="--", lw=1, label="tolerance")
    ax.set_xlabel("cumulative GPU-hours of the batch")
    u = f" [{plan.target_unit}]" if plan.target_unit else ""
    ax.set_ylabel(f"{plan.ci:.0%} interval width of target{u}")
    ax.set_ylim(bottom=0)
    ax.set_title("expected target uncertainty", fontsize=10)
    ax.legend(fontsize=8, frameon=False)


def _bands_panel(ax: Any, plan: Any) -> None:
    """Predicted general and domain loss bands at each probe's final checkpoint."""
    tb = plan.table
    if not tb.empty:
        xs = np.arange(len(tb))
        for j, (t, mk, ls, off) in enumerate((("general", "o", "-", -0.1), ("domain", "s", "--", 0.1))):
            col = f"pred_loss_{t}_med"
            if col not in tb:
                continue
            med = tb[col].to_numpy(float)
            lo, hi = tb[f"pred_loss_{t}_lo"].to_numpy(float), tb[f"pred_loss_{t}_hi"].to_numpy(float)
            eb = ax.errorbar(
                xs + off,
                med,
                yerr=[med - lo, hi - med],
                fmt=mk,
                color=("black", "0.45")[j],
                capsize=3,
                label=f"{t} loss",
            )
            eb[-1][0].set_linestyle(ls)
        ax.set_xticks(xs)
        ax.set_xticklabels(
            [
                f"#{int(r['rank'])}\nN={r['n_params']:.2g}\nr={r['r_domain']:.2f}"
                for _, r in tb.iterrows()
            ],
            fontsize=7,
        )
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel("probe of the batch")
    ax.set_ylabel(f"predicted loss at final checkpoint, {plan.ci:.0%} band [nats/token]")
    ax.set_title("predicted outcomes", fontsize=10)
