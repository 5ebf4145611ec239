"""The result of :func:`~bayes_dcpt.plan.planner.suggest`: the chosen batch, every candidate's scores, the checks.

:class:`Plan` is plain data plus its text forms (:meth:`Plan.summary`, a CSV, :func:`plan_table` for the CLI).
Its figure lives in :mod:`bayes_dcpt.viz.plan`, a higher layer, so :meth:`Plan.plot` is late-bound through
:mod:`bayes_dcpt.hooks` and this module never imports matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_dcpt import hooks
from bayes_dcpt.plan.cost import CostModel

__all__ = ["Plan", "plan_table"]


@dataclass
class Plan:
    """A ranked batch of probe runs and the scores of every candidate.

    Attributes
    ----------
    table
        The batch, in pick order: ``rank``, the candidate columns, ``gpu_hours`` (marginal: a base model
        pre-trained for an earlier pick is not paid twice), ``cum_gpu_hours``, ``U_theta`` and ``U_z``
        (nats, conditional on the earlier picks), ``U_z_per_gpu_hour``, ``U_z_alone`` (unconditional),
        ``repeat`` (an independent replicate of an earlier pick), ``best_new_U_z_per_gpu_hour`` (the best design
        not yet picked, at that step) and ``why`` (for a replicate: why it beat every new design),
        ``width_after_probe`` (expected target interval width after this probe alone),
        ``width_after_batch`` (after the batch so far), the predicted 90% loss bands at the final
        checkpoint (``pred_loss_<t>_lo/_med/_hi``) and the verification columns ``is_*`` when checked.
    scores
        Every candidate with its unconditional scores (``rank_score`` by ``U_z / gpu_hours^kappa``).
    first_pick
        How the first probe was chosen: ``"mm"`` (best moment-matched score), ``"is"`` (the importance-
        reweighting check ranked another candidate first beyond its Monte Carlo error) or ``"budget"`` (the
        budgeted greedy started from the most informative affordable probe).
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    target: str
    target_unit: str
    target_labels: list[str]
    current_width: float
    width_after_batch: float
    info_batch: float
    total_gpu_hours: float
    budget_gpu_hours: float | None
    k: int
    kappa: float
    ci: float
    stop: bool
    stop_reasons: list[str]
    checks: dict[str, Any]
    notes: list[str]
    cost_model: CostModel
    first_pick: str = "mm"

    # ------------------------------------------------------------------------------------- output
    def to_csv(self, path: str | Path) -> Path:
        """Write the batch table to ``path`` (CSV); returns the path."""
        p = Path(path)
        self.table.to_csv(p, index=False)
        return p

    def to_json(self) -> dict[str, Any]:
        """The plan's answer beside its table: target, widths, stopping checks and every note.

        The CAUTIONs (a target beyond what the fit checked) are also ``flags``, as ``optimize --json`` has them.
        """
        return {"target": self.target, "target_unit": self.target_unit, "ci": self.ci,
                "current_width": self.current_width, "width_after_batch": self.width_after_batch,
                "info_batch": self.info_batch, "total_gpu_hours": self.total_gpu_hours,
                "budget_gpu_hours": self.budget_gpu_hours, "k": self.k, "first_pick": self.first_pick,
                "stop": self.stop, "stop_reasons": list(self.stop_reasons), "checks": dict(self.checks),
                "flags": [n for n in self.notes if n.startswith("CAUTION")], "notes": list(self.notes)}

    def summary(self) -> str:
        """A few lines: the target, the batch, the expected interval width and the stopping checks."""
        u = f" {self.target_unit}" if self.target_unit else ""
        lines = [
            f"target: {self.target}",
            f"current {self.ci:.0%} interval width: {self.current_width:.4g}{u}",
        ]
        if self.table.empty:
            lines.append("no probe proposed")
        for _, r in self.table.iterrows():
            lines.append(
                f"  #{int(r['rank'])}: {r['domain']} N={r['n_params']:.3g} D={r['tokens']:.3g} "
                f"r={r['r_domain']:.3g} "
                f"| {r['gpu_hours']:.3g} GPU-h | U_z {r['U_z']:.3f} nats ({r['U_z_per_gpu_hour']:.3g}/GPU-h) "
                f"| width after batch {r['width_after_batch']:.4g}"
                + (f" | {r['why']}" if isinstance(r.get("why"), str) and r.get("why") else "")
            )
        lines.append(
            f"batch: {len(self.table)} probe(s), {self.total_gpu_hours:.4g} GPU-h"
            + (f" of a {self.budget_gpu_hours:.4g} GPU-h budget" if self.budget_gpu_hours else "")
            + f", I(z; batch) = {self.info_batch:.3f} nats, expected width {self.width_after_batch:.4g}{u}"
        )
        c = self.checks
        lines.append(
            "stopping checks: width "
            + (
                f"{c['current_width']:.4g} vs tolerance {c['stop_width']:.4g}"
                if c.get("stop_width")
                else "(no tolerance set)"
            )
            + f"; best information per GPU-hour {c['best_info_per_gpu_hour']:.3g} nats/GPU-h"
            + (f" vs threshold {c['min_info_per_gpu_hour']:.3g}" if c.get("min_info_per_gpu_hour") else "")
        )
        if self.stop:
            lines.append("STOP: " + "; ".join(self.stop_reasons))
        for n in self.notes:
            lines.append(f"note: {n}")
        lines.append(f"cost: {self.cost_model.describe()}")
        return "\n".join(lines)

    def plot(self, *, figsize: tuple[float, float] = (13.0, 4.2)) -> Any:
        """The plan's figure (:func:`bayes_dcpt.viz.plan.plot_plan`); returns the Figure.

        Three panels: information vs cost of every candidate (batch marked), expected interval width against
        cumulative GPU-hours, and the predicted loss bands of the batch.
        """
        return hooks.call("Plan.plot", self, figsize=figsize)


def plan_table(plan: Plan) -> Any:
    """A :class:`rich.table.Table` of the batch (for the CLI)."""
    from rich.table import Table

    u = f" [{plan.target_unit}]" if plan.target_unit else ""
    t = Table(
        title=f"Next probes for {plan.target}",
        caption=(
            f"current {plan.ci:.0%} width {plan.current_width:.4g}{u} -> {plan.width_after_batch:.4g} "
            "after the batch; "
            f"{plan.total_gpu_hours:.4g} GPU-h"
            + ("; STOP: " + "; ".join(plan.stop_reasons) if plan.stop else "")
        ),
    )
    for name, just in (
        ("#", "right"),
        ("domain", "left"),
        ("N", "right"),
        ("tokens", "right"),
        ("r_domain", "right"),
        ("GPU-h", "right"),
        ("U_z [nats]", "right"),
        ("U_z/GPU-h", "right"),
        ("U_theta [nats]", "right"),
        ("width after", "right"),
        ("loss_domain band", "right"),
        ("IS check", "left"),
    ):
        t.add_column(name, justify=just)
    whys = [str(w) for w in plan.table.get("why", pd.Series(dtype=object)) if isinstance(w, str) and w]
    if whys:
        t.add_column("why", justify="left")
    for _, r in plan.table.iterrows():
        band = (
            f"{r['pred_loss_domain_lo']:.3f}-{r['pred_loss_domain_hi']:.3f}"
            if "pred_loss_domain_lo" in r and pd.notna(r["pred_loss_domain_lo"])
            else ""
        )
        check = ""
        if "is_U_z" in r and pd.notna(r.get("is_U_z")):
            check = f"{r['is_U_z']:.3f}+-{r['is_U_z_se']:.3f} (k^ {r['is_khat_median']:.2f})"
        t.add_row(
            str(int(r["rank"])),
            str(r["domain"]),
            f"{r['n_params']:.3g}",
            f"{r['tokens']:.3g}",
            f"{r['r_domain']:.3g}",
            f"{r['gpu_hours']:.3g}",
            f"{r['U_z']:.3f}",
            f"{r['U_z_per_gpu_hour']:.3g}",
            f"{r['U_theta']:.2f}",
            f"{r['width_after_batch']:.4g}",
            band,
            check,
            *([r["why"] if isinstance(r.get("why"), str) else ""] if whys else []),
        )
    return t
