"""The figure of a schedule x replay-ratio decision: domain loss against general-loss increase per candidate."""

from __future__ import annotations

from typing import Any

from bayes_dcpt.hooks import provides

__all__ = ["plot_schedule_decision"]


@provides("ScheduleDecision.plot")
def plot_schedule_decision(decision: Any, *, ci: float = 0.9) -> Any:
    """Median and ``ci`` bars of every candidate, the threshold and ``P(best)`` marked (no pyplot state)."""
    from matplotlib.figure import Figure

    tab = decision.table(ci)
    fig = Figure(figsize=(6.4, 4.4), constrained_layout=True)
    ax = fig.subplots()
    markers = "osD^vP*X"
    for k, (name, g) in enumerate(tab.groupby("name", sort=False)):
        x, y = g["general_increase_median"].to_numpy(), g["loss_domain_median"].to_numpy()
        ax.errorbar(x, y, xerr=[x - g["general_increase_lo"], g["general_increase_hi"] - x],
                    yerr=[y - g["loss_domain_lo"], g["loss_domain_hi"] - y], fmt=markers[k % len(markers)],
                    color=str(0.15 + 0.5 * k / max(1, tab["name"].nunique() - 1)), capsize=2, ms=5,
                    label=str(name))
        for _, r in g.iterrows():
            ax.annotate(f"r={r['r_domain']:g}\nP={r['P_best']:.2f}", (r["general_increase_median"],
                                                                     r["loss_domain_median"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axvline(decision.inputs["max_general_increase"], color="black", ls="--", lw=1, label="threshold T")
    ax.set_xlabel("general-loss increase over the base model" + (" (relative)" if decision.inputs["relative"]
                                                                  else " (nats)"))
    ax.set_ylabel("domain loss at the end of the run (nats)")
    ax.set_title(f"schedule x replay ratio ({ci:.0%} intervals); P = P(best)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return fig
