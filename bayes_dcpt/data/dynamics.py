"""The measurement schema of the CPT dynamics law: the D-CPT schema plus the LR schedules of every run.

The schedule travels with the measurements. On top of :mod:`bayes_dcpt.data.schema`'s columns (``domain,
n_params, tokens, r_domain, loss_general, loss_domain, run_id``) every row has::

    step           int    CPT optimizer steps done at this evaluation (0 on the base-model rows)
    schedule       str    the run's CPT LR schedule: a spec (see bayes_dcpt.laws.lr_schedules), a JSON list of
                          per-step LRs, ``file:<path>``, or a name resolved by the ``schedules`` mapping;
                          the same on every row of a run; may be empty on base rows (tokens == 0)
    base_schedule  str    the base model's pre-training LR schedule, the same for every row of one base
                          model (domain, n_params); filled in from the other rows of that base when empty
    lr             float  optional: the LR of the last step taken; checked against the schedule

S1 and S2 are computed from the schedules exactly (:func:`bayes_dcpt.laws.lr_schedules.phase_areas`); nobody
computes them by hand. Errors name the column and the 1-based rows, as :mod:`bayes_dcpt.data.schema` does;
each check is a small function that appends its problems, so one call reports every problem of a table.

Quickstart::

    >>> from bayes_dcpt.data import dynamics as dd
    >>> df = dd.load_dynamics("schedules.csv")                 # validated, canonical schedule specs
    >>> feats = dd.area_features(df, momentum=0.999)          # S1pt, S1cpt, S2pt, S2cpt per row
    >>> df = dd.load_dynamics(frame, schedules={"wsd": "wsd(peak=1e-3, steps=256, warmup=10)"})
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import DataValidationError, Problem, row_numbers
from bayes_dcpt.laws.lr_schedules import (
    DEFAULT_MOMENTUM,
    PhaseAreas,
    Schedule,
    ScheduleError,
    parse_schedule,
    phase_areas,
)

__all__ = [
    "AREA_COLUMNS",
    "DYNAMICS_COLUMNS",
    "area_features",
    "load_dynamics",
    "prediction_rows",
    "schedule_of",
    "validate_dynamics",
]

DYNAMICS_COLUMNS = ("step", "schedule", "base_schedule")
AREA_COLUMNS = ("S1pt", "S1cpt", "S2pt", "S2cpt")
#: Relative tolerance of the optional ``lr`` column against the schedule (float32 loggers round).
LR_RTOL = 1e-4

_PARSED: dict[str, Schedule] = {}
_AREAS: dict[tuple[str, str, float], PhaseAreas] = {}


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def schedule_of(spec: str) -> Schedule:
    """The :class:`~bayes_dcpt.laws.lr_schedules.Schedule` of a canonical spec string (cached)."""
    s = _PARSED.get(spec)
    if s is None:
        s = parse_schedule(spec)
        _PARSED[spec] = s
    return s


def _canonical(value: Any, names: Mapping[str, Any] | None, base_dir: Path | None) -> str:
    """Resolve a cell (name, spec, list, Schedule) to its canonical spec string (raises ScheduleError)."""
    if names is not None and isinstance(value, str) and value.strip() in names:
        value = names[value.strip()]
    sched = parse_schedule(value, base_dir=base_dir)
    spec = sched.spec()
    _PARSED.setdefault(spec, sched)
    return spec


def validate_dynamics(frame: pd.DataFrame, *, schedules: Mapping[str, Any] | None = None,
                      base_dir: str | Path | None = None, source: str | None = None) -> pd.DataFrame:
    """Validate the dynamics columns of a table already valid in the D-CPT schema.

    Returns a copy with ``step`` as integers and ``schedule``/``base_schedule`` as canonical spec strings;
    raises :class:`DataValidationError` listing every problem (column and rows).
    """
    df = frame.copy()
    base_dir = Path(base_dir) if base_dir is not None else None
    problems = _missing_dynamics_columns(df)
    if problems:
        raise DataValidationError(problems, source)
    base = (df["tokens"] == 0).to_numpy()
    sv = _check_steps(df["step"], base, problems)
    sched, bsched = _resolve_schedules(df, base, schedules, base_dir, problems)
    if problems:
        raise DataValidationError(problems, source)

    df["step"] = sv.astype(np.int64)
    df["schedule"] = sched.where(~pd.Series(base, index=df.index), None).astype(object)
    df["base_schedule"] = bsched.astype(object)
    _check_steps_in_schedules(df, base, problems)
    if problems:
        raise DataValidationError(problems, source)
    df.attrs["bayes_dcpt_dynamics"] = True
    return df


def _missing_dynamics_columns(df: pd.DataFrame) -> list[Problem]:
    problems: list[Problem] = []
    for c in DYNAMICS_COLUMNS:
        if c not in df:
            hint = {"step": "CPT optimizer steps done at each evaluation (0 on base rows)",
                    "schedule": "the run's CPT LR schedule, e.g. cosine(peak=1e-3, steps=256, warmup=10)",
                    "base_schedule": "the base model's pre-training LR schedule"}[c]
            problems.append(Problem(c, f"required column is missing ({hint})"))
    return problems


def _check_steps(raw: pd.Series, base: np.ndarray, problems: list[Problem]) -> np.ndarray:
    """The ``step`` column as floats (0 where a base row omits it); appends its problems."""
    step = pd.to_numeric(raw, errors="coerce")
    missing = step.isna().to_numpy()
    bad_num = missing & ~raw.map(_blank).to_numpy()
    if bad_num.any():
        problems.append(Problem("step", "not a number", row_numbers(bad_num)))
    step = step.where(~(missing & base), 0.0)
    miss = step.isna().to_numpy() & ~bad_num
    if miss.any():
        problems.append(Problem("step", "missing value; only base rows (tokens == 0) may omit it", row_numbers(miss)))
    sv = step.to_numpy(float)
    ok = np.isfinite(sv)
    frac = ok & (sv != np.round(np.where(ok, sv, 0)))
    if frac.any():
        problems.append(Problem("step", "must be a whole number of optimizer steps", row_numbers(frac)))
    neg = ok & (sv < 0)
    if neg.any():
        problems.append(Problem("step", "must be >= 0", row_numbers(neg)))
    zero_cpt = ok & (sv == 0) & ~base
    if zero_cpt.any():
        problems.append(Problem("step", "a CPT row (tokens > 0) must have step >= 1", row_numbers(zero_cpt)))
    base_nz = ok & (sv != 0) & base
    if base_nz.any():
        problems.append(Problem("step", "base-model rows (tokens == 0) are CPT step 0", row_numbers(base_nz)))
    return sv


def _resolve_schedules(df: pd.DataFrame, base: np.ndarray, schedules: Mapping[str, Any] | None,
                       base_dir: Path | None, problems: list[Problem]) -> tuple[pd.Series, pd.Series]:
    """Canonical ``schedule`` and ``base_schedule`` specs (empty base cells filled per base model); appends problems."""
    out_spec = {}
    for col in ("schedule", "base_schedule"):
        specs, bad = _canonical_column(df[col].tolist(), schedules, base_dir)
        for msg, idx in bad.items():
            problems.append(Problem(col, msg, tuple(i + 1 for i in idx)))
        out_spec[col] = specs
    sched = pd.Series(out_spec["schedule"], index=df.index, dtype=object)
    bsched = pd.Series(out_spec["base_schedule"], index=df.index, dtype=object)
    bad_rows = set()
    for p in problems:
        if p.column in ("schedule", "base_schedule"):
            bad_rows.update(r - 1 for r in p.rows)
    unreadable = np.isin(np.arange(len(df)), list(bad_rows))
    no_sched = sched.isna().to_numpy() & ~base & ~unreadable
    if no_sched.any():
        problems.append(Problem("schedule", "missing CPT schedule (only base rows may omit it)", row_numbers(no_sched)))
    # one schedule per run
    runs = df["run_id"].astype(str).to_numpy()
    for rid in pd.unique(runs[~base]):
        m = (runs == rid) & ~base
        vals = set(sched[m].dropna())
        if len(vals) > 1:
            problems.append(Problem("schedule", f"run {rid!r} has different schedules on different rows",
                                    row_numbers(m)))
    _fill_base_schedules(df, bsched, unreadable, problems)
    return sched, bsched


def _canonical_column(vals: list[Any], schedules: Mapping[str, Any] | None,
                      base_dir: Path | None) -> tuple[list[str | None], dict[str, list[int]]]:
    """Canonical specs of one column (None for blank or unreadable cells) and ``message -> 0-based rows``."""
    specs: list[str | None] = []
    bad: dict[str, list[int]] = {}
    for i, v in enumerate(vals):
        if _blank(v):
            specs.append(None)
            continue
        try:
            specs.append(_canonical(v, schedules, base_dir))
        except ScheduleError as exc:
            specs.append(None)
            bad.setdefault(str(exc), []).append(i)
    return specs, bad


def _fill_base_schedules(df: pd.DataFrame, bsched: pd.Series, unreadable: np.ndarray,
                         problems: list[Problem]) -> None:
    """One base schedule per base model (domain, n_params): fill empty cells in ``bsched`` from the group."""
    key = df["domain"].astype(str) + "|" + df["n_params"].map(lambda n: f"{float(n):.9g}")
    for k in pd.unique(key):
        m = (key == k).to_numpy()
        vals = set(bsched[m].dropna())
        if len(vals) > 1:
            problems.append(Problem("base_schedule", f"base model {k.replace('|', ' N=')} has different base "
                                    "schedules on different rows (one base model, one pre-training run)",
                                    row_numbers(m)))
        elif len(vals) == 1:
            bsched[m] = next(iter(vals))
        else:
            m2 = m & ~unreadable
            if m2.any():
                problems.append(Problem("base_schedule", f"no pre-training schedule for base model "
                                        f"{k.replace('|', ' N=')} on any row", row_numbers(m2)))


def _check_steps_in_schedules(df: pd.DataFrame, base: np.ndarray, problems: list[Problem]) -> None:
    """Steps within each run's schedule, growing with tokens, and the optional ``lr`` column on the schedule."""
    cpt_idx = np.flatnonzero(~base)
    over = [i for i in cpt_idx if df["step"].iat[i] > schedule_of(df["schedule"].iat[i]).steps]
    if over:
        eg = over[0]
        problems.append(Problem("step", f"beyond the end of the run's schedule (e.g. step {df['step'].iat[eg]} of a "
                                f"{schedule_of(df['schedule'].iat[eg]).steps}-step schedule)", row_numbers(np.isin(
                                    np.arange(len(df)), over))))
    # steps grow with tokens inside a run
    runs = df["run_id"].astype(str).to_numpy()
    order_bad = np.zeros(len(df), bool)
    for rid in pd.unique(runs[~base]):
        m = np.flatnonzero((runs == rid) & ~base)
        sub = df.iloc[m].sort_values("tokens", kind="stable")
        s = sub["step"].to_numpy()
        if (np.diff(s) <= 0).any():
            order_bad[m] = True
    if order_bad.any():
        problems.append(Problem("step", "steps must increase with tokens within a run", row_numbers(order_bad)))
    if "lr" in df and not problems:
        _check_lr(df, base, problems)


def _check_lr(df: pd.DataFrame, base: np.ndarray, problems: list[Problem]) -> None:
    """The optional ``lr`` column against the schedule at each row's step."""
    lr = pd.to_numeric(df["lr"], errors="coerce").to_numpy(float)
    have = np.isfinite(lr) & ~base
    mism = np.zeros(len(df), bool)
    for i in np.flatnonzero(have):
        expect = schedule_of(df["schedule"].iat[i]).lrs()[df["step"].iat[i] - 1]
        if not np.isclose(lr[i], expect, rtol=LR_RTOL, atol=1e-12 * max(expect, 1e-30)):
            mism[i] = True
    if mism.any():
        i = int(np.flatnonzero(mism)[0])
        expect = schedule_of(df["schedule"].iat[i]).lrs()[df["step"].iat[i] - 1]
        problems.append(Problem("lr", f"does not match the schedule at that step (e.g. row {i + 1}: lr "
                                f"{lr[i]:.6g}, the schedule gives {expect:.6g} at step {df['step'].iat[i]}); "
                                "is the schedule or the step column wrong?", row_numbers(mism)))


def load_dynamics(source: Any, *, schedules: Mapping[str, Any] | None = None,
                  base_dir: str | Path | None = None) -> pd.DataFrame:
    """Load and validate CPT measurements with their LR schedules (file path, frame or store).

    Parameters
    ----------
    source
        A ``.csv``/``.parquet`` file, a DataFrame, or an experiment store (``.sqlite``; the probe runner
        records the schedules there).
    schedules
        Optional ``name -> schedule`` mapping (spec string, dict, per-step array or
        :class:`~bayes_dcpt.laws.lr_schedules.Schedule`) for names used in the ``schedule``/``base_schedule``
        columns.
    base_dir
        Folder that ``file:`` schedule paths are relative to (default: the data file's folder).
    """
    if (isinstance(source, pd.DataFrame) and source.attrs.get("bayes_dcpt_dynamics") and schedules is None
            and all(c in source for c in (*DYNAMICS_COLUMNS, *_data.REQUIRED_COLUMNS, "run_id"))):
        return source
    src = None
    if isinstance(source, (str, Path)):
        src = str(source)
        if base_dir is None:
            base_dir = Path(source).parent
        from bayes_dcpt.data.store import read_measurements

        df = read_measurements(source)
    else:
        df = _data.load(source)
    return validate_dynamics(df, schedules=schedules, base_dir=base_dir, source=src)


def _areas(cpt: str | None, pt: str | None, momentum: float) -> PhaseAreas:
    k = (cpt or "", pt or "", float(momentum))
    a = _AREAS.get(k)
    if a is None:
        a = phase_areas(schedule_of(cpt) if cpt else None, schedule_of(pt) if pt else None, momentum)
        if len(_AREAS) > 512:
            _AREAS.clear()
        _AREAS[k] = a
    return a


def area_features(df: pd.DataFrame, momentum: float = DEFAULT_MOMENTUM) -> pd.DataFrame:
    """``S1pt, S1cpt, S2pt, S2cpt`` of every row (a frame aligned with ``df``), from its schedules and step."""
    out = np.zeros((len(df), 4))
    cpt = df["schedule"].to_numpy(object)
    pt = df["base_schedule"].to_numpy(object)
    steps = df["step"].to_numpy()
    keys = pd.Series([f"{c}\x00{p}" for c, p in zip(cpt, pt, strict=True)])
    for _key, idx in keys.groupby(keys).groups.items():
        idx = np.asarray(list(idx))
        c = cpt[idx[0]]
        c = None if _blank(c) else c
        p = pt[idx[0]]
        p = None if _blank(p) else p
        a = _areas(c, p, momentum).at(steps[idx].astype(np.int64))
        for j, name in enumerate(AREA_COLUMNS):
            out[idx, j] = a[name]
    return pd.DataFrame(out, columns=list(AREA_COLUMNS), index=df.index)


def prediction_rows(frame: pd.DataFrame | Mapping[str, Any], *, domains: list[str],
                    base_schedules: Mapping[tuple[str, float], str] | None = None,
                    tokens_per_step: Mapping[tuple[str, float], float] | None = None,
                    schedules: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Validate rows to predict (curves): ``domain, n_params, r_domain, schedule`` and ``step`` (or ``tokens``).

    ``base_schedule`` defaults to the fitted base model's (``base_schedules[(domain, n_params)]``); ``step``
    defaults to ``tokens / tokens_per_step`` (the fitted runs' tokens per step at that base model), and
    ``tokens`` to ``step * tokens_per_step``. Returns the rows with canonical schedule specs.
    """
    df = pd.DataFrame(frame).reset_index(drop=True) if not isinstance(frame, pd.DataFrame) else \
        frame.reset_index(drop=True).copy()
    if "domain" not in df and len(domains) == 1:
        df["domain"] = domains[0]
    _check_prediction_columns(df)
    _coerce_prediction_numbers(df, domains)
    keys = list(zip(df["domain"], df["n_params"].astype(float), strict=True))
    _fill_base_schedules_of_rows(df, keys, base_schedules)
    _fill_steps_and_tokens(df, keys, tokens_per_step)
    _resolve_row_schedules(df, schedules)
    df["step"] = df["step"].to_numpy(float).astype(np.int64)
    return df


def _check_prediction_columns(df: pd.DataFrame) -> None:
    problems: list[Problem] = []
    for c in ("domain", "n_params", "r_domain", "schedule"):
        if c not in df:
            problems.append(Problem(c, "required column is missing from the prediction rows"))
    if "step" not in df and "tokens" not in df:
        problems.append(Problem("step", "give step (CPT optimizer steps) or tokens for every row"))
    if problems:
        raise DataValidationError(problems)


def _coerce_prediction_numbers(df: pd.DataFrame, domains: list[str]) -> None:
    """Known domains; numeric ``n_params``, ``r_domain``, ``step``/``tokens`` (r_domain 0 at the base model)."""
    problems: list[Problem] = []
    df["domain"] = df["domain"].astype(str)
    unknown = ~df["domain"].isin(domains)
    if unknown.any():
        problems.append(Problem("domain", f"unknown domain(s) {sorted(set(df.loc[unknown, 'domain']))}; the fit "
                                f"knows {domains}", row_numbers(unknown)))
    at_base = np.zeros(len(df), bool)
    for c in ("step", "tokens"):
        if c in df:
            at_base |= (pd.to_numeric(df[c], errors="coerce") == 0).to_numpy()
    if at_base.any():  # the base model (CPT step 0) has no mixture: r_domain does not enter the law there
        df["r_domain"] = df["r_domain"].where(~(at_base & df["r_domain"].map(_blank).to_numpy()), 0.0)
    for c in ("n_params", "r_domain", *(c for c in ("step", "tokens") if c in df)):
        v = pd.to_numeric(df[c], errors="coerce")
        optional = c in ("step", "tokens")
        blank = df[c].map(_blank).astype(bool) if optional else pd.Series(False, index=df.index)
        bad = v.isna() & ~blank
        if bad.any():
            problems.append(Problem(c, "not a number" if optional else "missing or not a number", row_numbers(bad)))
        df[c] = v
    if problems:
        raise DataValidationError(problems)


def _fill_base_schedules_of_rows(df: pd.DataFrame, keys: list[tuple[str, float]],
                                 base_schedules: Mapping[tuple[str, float], str] | None) -> None:
    """Check the size and ratio ranges; fill empty ``base_schedule`` cells from the fitted base models."""
    problems: list[Problem] = []
    if (df["n_params"] <= 0).any():
        problems.append(Problem("n_params", "model size must be > 0", row_numbers(df["n_params"] <= 0)))
    bad_r = (df["r_domain"] < 0) | (df["r_domain"] > 1)
    if bad_r.any():
        problems.append(Problem("r_domain", "must be in [0, 1]", row_numbers(bad_r)))
    if "base_schedule" not in df:
        df["base_schedule"] = None
    bs = []
    for i, (k, v) in enumerate(zip(keys, df["base_schedule"], strict=True)):
        if _blank(v):
            found = _lookup(base_schedules, k)
            if found is None:
                problems.append(Problem("base_schedule", f"no base schedule given and none fitted for "
                                        f"{k[0]} N={k[1]:.6g}", (i + 1,)))
            bs.append(found)
        else:
            bs.append(v)
    df["base_schedule"] = bs
    if problems:
        raise DataValidationError(problems)


def _fill_steps_and_tokens(df: pd.DataFrame, keys: list[tuple[str, float]],
                           tokens_per_step: Mapping[tuple[str, float], float] | None) -> None:
    """``step`` from ``tokens`` and ``tokens`` from ``step`` with the fitted tokens per step of each base model."""
    tps = [_lookup(tokens_per_step, k) for k in keys]
    if "step" not in df:
        df["step"] = np.nan
    if "tokens" not in df:
        df["tokens"] = np.nan
    need = df["step"].isna().to_numpy()
    no_tps = need & np.array([t is None for t in tps])
    if no_tps.any():
        raise DataValidationError([Problem("step", "missing, and the tokens per step of this base model are not "
                                           "known from the fit; give step", row_numbers(no_tps))])
    tps_arr = np.array([np.nan if t is None else t for t in tps], float)
    df.loc[need, "step"] = np.round(df.loc[need, "tokens"].to_numpy(float) / tps_arr[need])
    fill_tok = df["tokens"].isna().to_numpy()
    df.loc[fill_tok, "tokens"] = df.loc[fill_tok, "step"].to_numpy(float) * np.where(
        np.isfinite(tps_arr[fill_tok]), tps_arr[fill_tok], np.nan)


def _resolve_row_schedules(df: pd.DataFrame, schedules: Mapping[str, Any] | None) -> None:
    """Canonical ``schedule``/``base_schedule`` specs of every row, and whole steps within the schedule."""
    problems: list[Problem] = []
    specs, bspecs = [], []
    for i in range(len(df)):
        try:
            specs.append(_canonical(df["schedule"].iat[i], schedules, None))
        except ScheduleError as exc:
            problems.append(Problem("schedule", str(exc), (i + 1,)))
            specs.append(None)
        try:
            bspecs.append(_canonical(df["base_schedule"].iat[i], schedules, None))
        except ScheduleError as exc:
            problems.append(Problem("base_schedule", str(exc), (i + 1,)))
            bspecs.append(None)
    if problems:
        raise DataValidationError(problems)
    df["schedule"], df["base_schedule"] = specs, bspecs
    st = df["step"].to_numpy(float)
    bad = (st < 0) | (st != np.round(st))
    if bad.any():
        problems.append(Problem("step", "must be a whole number >= 0", row_numbers(bad)))
    over = np.array([s > schedule_of(sp).steps for s, sp in zip(st, specs, strict=True)])
    if over.any():
        problems.append(Problem("step", "beyond the end of the row's schedule", row_numbers(over)))
    if problems:
        raise DataValidationError(problems)


def _lookup(mapping: Mapping[tuple[str, float], Any] | None, key: tuple[str, float]) -> Any:
    if not mapping:
        return None
    for (d, n), v in mapping.items():
        if d == key[0] and np.isclose(float(n), key[1], rtol=1e-9):
            return v
    return None
