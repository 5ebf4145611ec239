"""Candidate probe runs for the planner: menus, CSV reading with validation, checkpoint schedules.

A candidate is one probe run that the user could launch::

    domain           str    the domain corpus of the CPT mixture
    n_params         float  model size N of the base checkpoint it continues from (> 0)
    tokens           float  the probe's CPT token budget D_max (> 0)
    r_domain         float  share of domain data in the mixture, in [0, 1]
    n_checkpoints    int    optional: evaluations along the run (default 8, dense early and sparse late)
    first_fraction   float  optional: first evaluation at this fraction of ``tokens`` (default 0.02)
    checkpoints      str    optional: explicit ';'-separated token counts of the evaluations (overrides both)
    pretrain_tokens  float  optional: tokens to pre-train the base model first when no checkpoint of that
                            size exists (0 or empty: the checkpoint exists); see :mod:`bayes_dcpt.plan.cost`
    schedule         str    optional: the probe's CPT LR schedule (a design variable for the CPT dynamics
                            law, see :mod:`bayes_dcpt.laws.lr_schedules`); checkpoints then map to optimizer steps
                            (``step = round(checkpoint / tokens * schedule steps)``)
    base_schedule    str    optional: the base model's pre-training schedule (default: the fitted one)

Other columns (a name, a ``run_id`` of a measured pool) are kept. One probe yields the general and the
domain loss at each of its checkpoints: one vector observation.

Quickstart::

    >>> from bayes_dcpt.plan.candidates import candidates_from_menus, read_candidates
    >>> cands = candidates_from_menus(["code"], [0.5e9, 1.8e9], [2e9, 5e9], [0.1, 0.3, 0.5, 0.7])
    >>> cands = read_candidates("candidates.csv")   # errors name the column and the rows
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import DataValidationError, Problem, row_numbers
from bayes_dcpt.plan.simulate import checkpoints as _geom_checkpoints

__all__ = [
    "CANDIDATE_COLUMNS",
    "DEFAULT_FIRST_FRACTION",
    "DEFAULT_N_CHECKPOINTS",
    "candidates_from_menus",
    "checkpoint_frame",
    "eval_checkpoints",
    "read_candidates",
    "validate_candidates",
]

CANDIDATE_COLUMNS = ("domain", "n_params", "tokens", "r_domain")
DEFAULT_N_CHECKPOINTS = 8
DEFAULT_FIRST_FRACTION = 0.02
_MAX_CHECKPOINTS = 64


def _parse_checkpoints(value: Any) -> np.ndarray | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return np.asarray(value, float)
    text = str(value).strip()
    if not text:
        return None
    return np.asarray([float(p) for p in text.replace(",", ";").split(";") if p.strip()], float)


def validate_candidates(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate a candidate table: return it typed, or raise :class:`DataValidationError` (column and rows).

    Rows are numbered from 1 (the first data row).
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(
            [Problem("data", f"expected a table of candidates, got {type(frame).__name__}")], source
        )
    df, problems = _data.normalise_columns(frame)
    if problems:
        raise DataValidationError(problems, source)
    if len(df) == 0:
        raise DataValidationError([Problem("data", "the candidate table has no rows")], source)
    for c in CANDIDATE_COLUMNS:
        if c not in df:
            aka = ", ".join(_data.ALIASES.get(c, ()))
            problems.append(Problem(c, f"required column is missing (accepted names: {c}, {aka})"))
    if problems:
        raise DataValidationError(problems, source)
    out = df.copy()
    dom = out["domain"]
    miss = dom.isna() | (dom.astype(str).str.strip() == "")
    if miss.any():
        problems.append(Problem("domain", "missing domain name", row_numbers(miss)))
    out["domain"] = dom.astype(str).str.strip()
    _parse_numbers(out, problems)
    _check_ranges(out, problems)
    if "checkpoints" in out:
        out["checkpoints"] = _parse_checkpoint_column(out, problems)
    for col in ("schedule", "base_schedule"):
        if col in out:
            out[col] = _parse_schedule_column(out, col, problems)
    if problems:
        raise DataValidationError(problems, source)
    if "n_checkpoints" in out:
        out["n_checkpoints"] = out["n_checkpoints"].astype("Int64")
    out = out.reset_index(drop=True)
    out.attrs["bayes_dcpt_candidates"] = True
    if source:  # a later check against the fit (unknown domain) names the file too
        out.attrs["source"] = source
    return out


def _flag(problems: list[Problem], col: str, bad: Any, msg: str) -> None:
    """Add a problem naming the rows where ``bad`` holds (none when it holds nowhere)."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        problems.append(Problem(col, msg, row_numbers(bad)))


def _parse_numbers(out: pd.DataFrame, problems: list[Problem]) -> None:
    """Make the numeric columns floats in place; flag missing (where required), non-numeric and infinite values."""
    for c in ("n_params", "tokens", "r_domain", "n_checkpoints", "first_fraction", "pretrain_tokens"):
        if c not in out:
            continue
        raw = out[c]
        num = pd.to_numeric(raw, errors="coerce").astype(float)
        optional = c in ("n_checkpoints", "first_fraction", "pretrain_tokens")
        bad = num.isna() & ~(optional & (raw.isna() | (raw.astype(str).str.strip() == "")))
        if bad.any():
            problems.append(Problem(c, "missing or not a number", row_numbers(bad)))
        if np.isinf(num).any():
            problems.append(Problem(c, "infinite value", row_numbers(np.isinf(num))))
        out[c] = num


def _check_ranges(out: pd.DataFrame, problems: list[Problem]) -> None:
    """Flag values outside their range: sizes and budgets > 0, shares in [0, 1], schedules of evaluations."""
    _flag(problems, "n_params", out["n_params"] <= 0, "model size must be > 0")
    _flag(problems, "tokens", out["tokens"] <= 0, "the probe's token budget must be > 0")
    _flag(problems, "r_domain", (out["r_domain"] < 0) | (out["r_domain"] > 1), "must be in [0, 1]")
    if "n_checkpoints" in out:
        nc = out["n_checkpoints"]
        _flag(
            problems,
            "n_checkpoints",
            nc.notna() & ((nc < 1) | (nc != np.round(nc)) | (nc > _MAX_CHECKPOINTS)),
            f"must be a whole number from 1 to {_MAX_CHECKPOINTS}",
        )
    if "first_fraction" in out:
        ff = out["first_fraction"]
        _flag(problems, "first_fraction", ff.notna() & ((ff <= 0) | (ff > 1)), "must be in (0, 1]")
    if "pretrain_tokens" in out:
        _flag(
            problems,
            "pretrain_tokens",
            out["pretrain_tokens"] < 0,
            "must be >= 0 (0 or empty: the base checkpoint exists)",
        )


def _parse_checkpoint_column(out: pd.DataFrame, problems: list[Problem]) -> pd.Series:
    """The explicit checkpoint lists in a canonical ``;``-separated form; flag unparsable or invalid ones."""
    bad_parse, bad_order = [], []
    parsed = []
    for i, (v, tok) in enumerate(zip(out["checkpoints"], out["tokens"], strict=True)):
        try:
            ck = _parse_checkpoints(v)
        except ValueError:
            bad_parse.append(i)
            parsed.append(None)
            continue
        if ck is not None and (
            ck.size == 0
            or not np.all(np.isfinite(ck))
            or (ck <= 0).any()
            or np.any(np.diff(ck) <= 0)
            or ck[-1] > tok * (1 + 1e-9)
            or ck.size > _MAX_CHECKPOINTS
        ):
            bad_order.append(i)
        parsed.append(None if ck is None else ";".join(f"{x:.10g}" for x in ck))
    rows = np.arange(len(out))
    _flag(problems, "checkpoints", np.isin(rows, bad_parse), "not a ';'-separated list of token counts")
    _flag(
        problems,
        "checkpoints",
        np.isin(rows, bad_order),
        f"token counts must be > 0, increasing, at most {_MAX_CHECKPOINTS} and within the row's tokens",
    )
    return pd.Series(parsed, index=out.index, dtype=object)


def _parse_schedule_column(out: pd.DataFrame, col: str, problems: list[Problem]) -> pd.Series:
    """LR schedules in their canonical spec (``schedule`` is required on every row, ``base_schedule`` not)."""
    from bayes_dcpt.laws.lr_schedules import ScheduleError, parse_schedule

    specs, bad = [], {}
    for i, v in enumerate(out[col]):
        if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip()):
            if col == "schedule":
                bad.setdefault("missing schedule", []).append(i)
            specs.append(None)
            continue
        try:
            specs.append(parse_schedule(v).spec())
        except ScheduleError as exc:
            bad.setdefault(str(exc), []).append(i)
            specs.append(None)
    for msg, idx in bad.items():
        problems.append(Problem(col, msg, tuple(i + 1 for i in idx)))
    return pd.Series(specs, index=out.index, dtype=object)


def read_candidates(path: str | Path) -> pd.DataFrame:
    """Read and validate a candidate CSV/TSV/Parquet file (see the module docstring for the columns)."""
    raw = _data.read_table(path)
    first = raw.attrs.get("first_line")  # a CSV's data row 1 is line 2: errors name both
    try:
        out = validate_candidates(raw, source=str(path))
    except DataValidationError as exc:
        raise exc.at_first_line(first) from None
    out.attrs["first_line"] = first
    return out


def candidates_from_menus(
    domains: Sequence[str],
    n_params: Sequence[float],
    tokens: Sequence[float],
    r_domain: Sequence[float],
    *,
    n_checkpoints: int = DEFAULT_N_CHECKPOINTS,
    first_fraction: float = DEFAULT_FIRST_FRACTION,
    pretrain_tokens: dict[float, float] | None = None,
) -> pd.DataFrame:
    """Full factorial candidate table from menus of domains, base-model sizes, token budgets and ratios.

    Parameters
    ----------
    domains, n_params, tokens, r_domain
        Menus; ``n_params`` should list the base models you have (raw parameter counts).
    n_checkpoints, first_fraction
        Evaluation schedule of every probe (geometric: dense early, sparse late).
    pretrain_tokens
        ``{n_params: tokens}`` for base sizes whose checkpoint must first be pre-trained.
    """
    for name, menu in (
        ("domains", domains),
        ("n_params", n_params),
        ("tokens", tokens),
        ("r_domain", r_domain),
    ):
        if len(menu) == 0:
            raise DataValidationError([Problem(name, "the menu is empty")])
    rows = [
        {
            "domain": str(d),
            "n_params": float(n),
            "tokens": float(t),
            "r_domain": float(r),
            "n_checkpoints": int(n_checkpoints),
            "first_fraction": float(first_fraction),
        }
        for d in domains
        for n in n_params
        for t in tokens
        for r in r_domain
    ]
    df = pd.DataFrame(rows)
    if pretrain_tokens:
        df["pretrain_tokens"] = [float(pretrain_tokens.get(float(n), 0.0)) for n in df["n_params"]]
    return validate_candidates(df)


def eval_checkpoints(
    cands: pd.DataFrame,
    n_checkpoints: int = DEFAULT_N_CHECKPOINTS,
    first_fraction: float = DEFAULT_FIRST_FRACTION,
) -> list[np.ndarray]:
    """Token counts of the evaluations of each candidate (explicit ``checkpoints`` win over the schedule)."""
    out = []
    for i in range(len(cands)):
        row = cands.iloc[i]
        ck = _parse_checkpoints(row["checkpoints"]) if "checkpoints" in cands else None
        if ck is None:
            n = (
                row["n_checkpoints"]
                if "n_checkpoints" in cands and pd.notna(row["n_checkpoints"])
                else n_checkpoints
            )
            f = (
                row["first_fraction"]
                if "first_fraction" in cands and pd.notna(row["first_fraction"])
                else first_fraction
            )
            ck = _geom_checkpoints(float(row["tokens"]), int(n), float(f))
        out.append(np.asarray(ck, float))
    return out


def checkpoint_frame(cands: pd.DataFrame, scheds: list[np.ndarray]) -> pd.DataFrame:
    """One row per (candidate, checkpoint) with the schema's input columns and ``cand``/``ckpt`` indices."""
    lens = np.array([len(s) for s in scheds])
    idx = np.repeat(np.arange(len(cands)), lens)
    out = pd.DataFrame(
        {
            "cand": idx,
            "ckpt": np.concatenate([np.arange(n) for n in lens]) if len(lens) else np.zeros(0, int),
            "domain": cands["domain"].to_numpy()[idx],
            "n_params": cands["n_params"].to_numpy(float)[idx],
            "tokens": np.concatenate(scheds) if scheds else np.zeros(0),
            "r_domain": cands["r_domain"].to_numpy(float)[idx],
        }
    )
    if "schedule" in cands:
        # a schedule design variable: each checkpoint is the optimizer step at that share of the run
        from bayes_dcpt.laws.lr_schedules import parse_schedule

        steps = np.array([parse_schedule(s).steps for s in cands["schedule"]], float)
        frac = out["tokens"].to_numpy(float) / cands["tokens"].to_numpy(float)[idx]
        out["schedule"] = cands["schedule"].to_numpy(object)[idx]
        out["step"] = np.clip(np.round(frac * steps[idx]), 1, steps[idx]).astype(np.int64)
        if "base_schedule" in cands:
            out["base_schedule"] = cands["base_schedule"].to_numpy(object)[idx]
    return out
