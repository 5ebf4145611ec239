"""What makes a table's runs inconsistent: one checkpoint twice with different losses, a run that changes its mixture.

A run is one CPT of one base model (domain, size) on one mixture (ratio): every law reads a run's checkpoints as
points on one curve, and the fit gives each run its own offset. Rows of one ``run_id`` that change domain, size or
ratio between checkpoints (a copy-paste slip, a reused run name, a ratio schedule the laws do not model) would be
fitted as one curve through two mixtures, silently. :func:`run_problems` names them; :func:`duplicate_problems`
names a checkpoint measured twice with different losses. Both take the typed frame ``validate`` builds (base rows
already under their own run ids) and return :class:`~bayes_dcpt.errors.Problem` s naming the 1-based rows.

The base model's rows (tokens == 0) are not checked: every run of one (domain, size) shares them under one id
(``base|domain|N=...``), and a log importer writes each run's step 0 with that run's ratio, which does not enter
the law there.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bayes_dcpt.errors import Problem

__all__ = ["duplicate_problems", "run_problems"]

#: The columns a run holds fixed, in the order its problems are reported.
RUN_FIXED = ("domain", "n_params", "r_domain")


def duplicate_problems(out: pd.DataFrame, losses: Sequence[str]) -> list[Problem]:
    """The ``(run_id, tokens)`` pairs that appear with different values of a loss column, one problem per column."""
    problems = []
    key = ["run_id", "tokens"]
    dup = out.duplicated(subset=key, keep=False)
    if not dup.any():
        return problems
    sub = out[dup]
    for loss in losses:
        spread = sub.groupby(key, dropna=False)[loss].transform(lambda s: s.nunique(dropna=True))
        conflict = spread > 1
        if conflict.any():
            rows = tuple(int(i) + 1 for i in sub.index[conflict.to_numpy()])
            problems.append(
                Problem(loss, "the same (run_id, tokens) appears with different losses; which one is right?", rows)
            )
    return problems


def run_problems(out: pd.DataFrame) -> list[Problem]:
    """The runs whose checkpoints disagree on domain, size or ratio: one problem per column, naming run and rows.

    E.g. ``r_domain: run 'py-small' changes its value between checkpoints (0.5, 0.25); a run is one mixture of one
    model: give each its own run_id (rows 3, 7)``. The rows named are all the run's rows, so the user sees both.
    """
    problems = []
    cpt = out[out["tokens"] > 0]
    for col in RUN_FIXED:
        vals = cpt[col].astype(str) if col == "domain" else cpt[col]
        n_values = vals.groupby(cpt["run_id"]).transform("nunique")
        bad = (n_values > 1).to_numpy()
        if not bad.any():
            continue
        runs = list(dict.fromkeys(cpt.loc[bad, "run_id"]))
        first = cpt[cpt["run_id"] == runs[0]][col]
        seen = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in dict.fromkeys(first))
        more = f" (and {len(runs) - 1} more run{'s' if len(runs) > 2 else ''})" if len(runs) > 1 else ""
        problems.append(Problem(col, f"run '{runs[0]}'{more} changes its value between checkpoints ({seen}); a run "
                                "is one mixture of one model, which every law reads as one curve: give each its own "
                                "run_id", tuple(int(i) + 1 for i in cpt.index[bad])))
    return problems
