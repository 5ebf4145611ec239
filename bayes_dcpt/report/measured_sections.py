"""The report's section on runs measured since the fit: their losses against the bands the fit predicted for them.

A fit is judged by how it extrapolates, and a team that has trained the run its probes predicted (the larger
model, the longer budget) wants one page that says whether the prediction held: the check of
:mod:`bayes_dcpt.posterior.heldout` (error and its sign, coverage with the range the runs allow, which side misses,
the paper's point fits beside it when asked) and, per domain, the measured curves drawn over the predictive bands.
``bayes-dcpt report --measured runs.csv`` (``build_report(measured=...)``) adds it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bayes_dcpt.posterior.heldout import DISPLAY_LEGEND
from bayes_dcpt.report.blocks import Block, Heading, Image, Para, Table

__all__ = ["measured_section"]


def measured_section(fit: Any, check: Any, runs: pd.DataFrame, ci: float, dpi: int) -> list[Block]:
    """The check's verdict, its table, what it found, and each domain's measured runs over the predictive bands."""
    from bayes_dcpt.viz import curves as plotting

    blocks: list[Block] = [
        Heading(2, "Runs measured since the fit: did the predictions hold?", "measured"),
        Para(check.summary(), bad=check.ok is False, good=check.ok is True and not check.outside),
    ]
    if not check.table.empty:
        shown = check.display()
        bad = pd.DataFrame(False, index=shown.index, columns=shown.columns)
        bad["verdict"] = check.table["clear"].to_numpy(bool)
        blocks.append(Table(shown, bad, caption=DISPLAY_LEGEND))
    blocks += [Para(p, bad=True) for p in check.problems]
    blocks += [Para(f"Not established by its runs: {p}") for p in check.outside]
    blocks += [Para(p, bad=True) for p in check.worse_than_baselines]
    held = runs[runs["domain"].astype(str).isin(fit.domains)]
    for dom in sorted(held["domain"].astype(str).unique()):
        fig = plotting.loss_curves(fit, domain=dom, data=held[held["domain"].astype(str) == dom], ci=ci,
                                   kind="predictive", extend=1.0, shade_from_fit=True)
        blocks.append(Image(plotting.figure_png(fig, dpi=dpi), f"{dom}: measured runs against the predicted bands",
                            f"{dom}: the measured runs (markers) over the fit's {ci:.0%} predictive bands (a new "
                            "run's measurement: the law, a run's offset and noise, and the law's error beyond the "
                            "data), one row per model size; shaded: tokens beyond what the fit had at that size.",
                            f"measured_{dom}"))
    return blocks
