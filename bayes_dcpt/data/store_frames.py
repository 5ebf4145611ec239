"""Between the experiment store's rows and the wide measurement table of :mod:`bayes_dcpt.data.schema`.

The store keeps one row per (run, tokens, eval set) and the LR schedules in each run's JSON ``config``;
the rest of the package reads one row per (run, tokens) with ``loss_general``/``loss_domain`` and the
``schedule``/``base_schedule`` columns. :func:`wide_frame` turns the first into the second (for
:meth:`~bayes_dcpt.data.store.Store.to_frame`), :func:`frame_records` the second into runs and evaluations
(for :meth:`~bayes_dcpt.data.store.Store.import_frame`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from bayes_dcpt.data.store_sql import EVAL_SETS, StoreError
from bayes_dcpt.data.store_values import float_or_none, int_or_none

__all__ = ["EXPORT_COLS", "FRAME_COLS", "SCHEDULE_COLS", "frame_records", "schedules_from_configs", "summary_counts",
           "wide_frame"]

#: Columns of :meth:`Store.to_frame` (the schedule columns only when the store knows schedules) and exports.
FRAME_COLS = (
    "domain", "n_params", "tokens", "r_domain", "loss_general", "loss_domain", "run_id", "seed", "step", "lr"
)
SCHEDULE_COLS = ("schedule", "base_schedule")
EXPORT_COLS = (*FRAME_COLS, *SCHEDULE_COLS)


def summary_counts(s: Mapping[str, Any]) -> dict[str, int]:
    """What a measurement table holds, counted alike by ``data validate``, ``data import`` and ``data show``.

    From a :func:`bayes_dcpt.data.schema.summarize` of the table: ``rows`` (every row: a checkpoint of a CPT run,
    or a base-model row with ``tokens == 0``), ``base_rows``, ``runs`` (the CPT runs: the run ids of the rows with
    ``tokens > 0``; a base model's row is not a run), ``losses`` (the loss values, general and domain: the store
    keeps one record per loss) and the two loss columns' counts.
    """
    keys = ("rows", "base_rows", "runs", "loss_general_rows", "loss_domain_rows")
    out = {k: int(s[k]) for k in keys}
    return {**out, "losses": out["loss_general_rows"] + out["loss_domain_rows"]}


def schedules_from_configs(rows: Iterable[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """``run_id -> {"schedule": spec, "base_schedule": spec}`` from ``(run_id, config JSON)`` rows (when recorded)."""
    out: dict[str, dict[str, str]] = {}
    for rid, cfg in rows:
        try:
            c = json.loads(cfg)
        except ValueError:
            continue
        if not isinstance(c, dict):
            continue
        got = {k: c[k] for k in ("schedule", "base_schedule") if isinstance(c.get(k), str) and c[k]}
        if got:
            out[rid] = got
    return out


def wide_frame(long: pd.DataFrame, sched: dict[str, dict[str, str]]) -> pd.DataFrame:
    """One row per (run, tokens) from the joined evaluations and runs (not yet validated).

    ``sched`` is :func:`schedules_from_configs` of the runs; when it is not empty the frame gets the
    ``schedule`` and ``base_schedule`` columns.
    """
    key = ["run_id", "tokens"]
    wide = long.pivot_table(index=key, columns="eval_set", values="loss", aggfunc="first")
    wide = wide.reindex(columns=list(EVAL_SETS)).rename(columns=lambda s: f"loss_{s}")
    meta = long.groupby(key, as_index=True).agg(
        domain=("domain", "first"),
        n_params=("n_params", "first"),
        r_domain=("r_domain", "first"),
        seed=("seed", "first"),
        step=("step", "first"),
        lr=("lr", "first"),
    )
    out = meta.join(wide).reset_index()
    cols = list(FRAME_COLS)
    if sched:
        out["schedule"] = out["run_id"].map(lambda r: sched.get(r, {}).get("schedule"))
        base = out["run_id"].map(lambda r: sched.get(r, {}).get("base_schedule"))
        # a base model's schedule is known from any of its runs (or its own base run)
        key = out["domain"].astype(str) + "|" + out["n_params"].map(lambda n: f"{float(n):.9g}")
        known = pd.Series(base.to_numpy(), index=key.to_numpy()).dropna()
        known = known[~known.index.duplicated()]
        out["base_schedule"] = base.where(base.notna(), key.map(known))
        out.loc[out["tokens"] == 0, "schedule"] = None
        cols += list(SCHEDULE_COLS)
    out = out[cols].sort_values(["domain", "n_params", "run_id", "tokens"], kind="stable")
    return out.reset_index(drop=True)


def frame_records(df: pd.DataFrame, src: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The runs (``run_id -> fields``, schedules under ``"_sched"``) and evaluation rows of a validated frame.

    Raises :class:`StoreError` when rows of one run disagree on its domain, size or ratio.
    """
    run_rows: dict[str, dict[str, Any]] = {}
    evals: list[dict[str, Any]] = []
    for rec in df.to_dict(orient="records"):
        rid = str(rec["run_id"])
        base = rec["tokens"] == 0
        info = {
            "domain": rec["domain"],
            "n_params": float(rec["n_params"]),
            "r_domain": None if base else float(rec["r_domain"]),
        }
        if "seed" in rec and not base:
            info["seed"] = rec["seed"]
        sched = {k: str(rec[k]) for k in ("schedule", "base_schedule")
                 if k in rec and isinstance(rec[k], str) and rec[k].strip()}
        prev = run_rows.setdefault(rid, {**info, "_sched": {}})
        prev["_sched"].update(sched)
        for k in ("domain", "n_params", "r_domain"):
            if prev[k] != info[k] and not (prev[k] is None or info[k] is None):
                raise StoreError(
                    f"{src}: run {rid!r} has rows with different {k} ({prev[k]} and {info[k]})"
                )
        for s in EVAL_SETS:
            loss = rec.get(f"loss_{s}")
            if loss is None or (isinstance(loss, float) and math.isnan(loss)):
                continue
            evals.append(
                {
                    "run_id": rid,
                    "tokens": rec["tokens"],
                    "eval_set": s,
                    "loss": loss,
                    "step": int_or_none(rec.get("step")),
                    "lr": float_or_none(rec.get("lr")),
                }
            )
    return run_rows, evals
