"""Bring your own runs: a Trainer's ``trainer_state.json``, TensorBoard event files or a W&B history CSV into the store.

A mapping file (:mod:`~bayes_dcpt.data.logmap`) says which logged run is which probe; the readers
(:mod:`~bayes_dcpt.data.logreaders`) turn each run's files into series of (step, value). Here each run
becomes rows of the measurement schema: one per evaluated step, ``tokens`` from the logged token count when
the log has one (the Trainer's ``num_input_tokens_seen``) or ``step x tokens_per_step``, the learning rate at
that step when it was logged, and the evaluation at step 0 as the base model's losses (``tokens == 0``, the
base run ``base|<domain>|N=<n>``), the same rows :class:`bayes_dcpt.probe.BayesDCPTCallback` writes while
the run trains.

Everything is read and checked before the store is opened for writing, and written in one transaction:
any problem (a key the mapping names that is not logged, steps that go back, a run without a base-model
evaluation, a domain not in the mapping, a truncated event file, a loss that differs from the stored one) is
one line naming the file, the run and the key, and the store is left as it was. Re-importing adds nothing.

Quickstart::

    >>> from bayes_dcpt.data.importers import import_logs
    >>> import_logs("trainer-state", "out", "runs.toml", "runs.sqlite", dry_run=True)["run_list"]
"""

from __future__ import annotations

import math
import tempfile
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.logmap import FORMATS, LogImportError, RunSpec, load_mapping
from bayes_dcpt.data.logreaders import RunLog, discover, read_run
from bayes_dcpt.data.store import Store, StoreConflictError, StoreError, base_run_id

__all__ = ["import_logs", "log_rows"]


def _match(found: dict[str, list[Path]], runs: tuple[RunSpec, ...], root: Path, mapping: Path,
           problems: list[str]) -> dict[str, list[str]]:
    """Run label -> the names (under ``root``) of the logs that are that run."""
    out: dict[str, list[str]] = {r.label: [] for r in runs}
    if len(runs) == 1 and len(found) == 1:
        out[runs[0].label] = list(found)
        return out
    for name, files in found.items():
        aliases = {name} if name != "." else {".", root.name, str(root)}
        hits = [r for r in runs if any(a == r.source or fnmatch(a, r.source) for a in aliases)]
        where = ", ".join(str(f) for f in files)
        if not hits:
            problems.append(f"{where}: no run in {mapping} has a source matching {name!r} "
                            f"(add a [runs.<name>] table with source = {name!r})")
        elif len(hits) > 1:
            labels = " and ".join(repr(h.label) for h in hits)
            problems.append(f"{where}: runs {labels} in {mapping} both match {name!r}; make their sources distinct")
        else:
            out[hits[0].label].append(name)
    return out


def _at(pts: list[tuple[int, float]]) -> dict[int, float]:
    """``step -> value`` (the last value logged at a step: a later file's, after a resume)."""
    return dict(pts)


def _keys_hint(log: RunLog) -> str:
    keys = sorted(log.series, key=lambda k: ("loss" not in k, k))
    more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
    return ", ".join(keys[:10]) + more


def _tokens(spec: RunSpec, log: RunLog, where: str) -> tuple[dict[int, float], str]:
    """The logged token count per step (empty when the run uses tokens_per_step) and how tokens are counted."""
    key = spec.tokens_key
    if key and key in log.series:
        return _at(log.series[key]), f"logged {key!r}"
    if key and "tokens_key" in spec.explicit:
        raise LogImportError(f"{where}: key {key!r} (tokens_key) is not in the log (logged: {_keys_hint(log)})")
    if spec.tokens_per_step is None:
        raise LogImportError(f"{where}: no token count: the log has no {key!r} and the mapping gives no "
                             "tokens_per_step (global batch x sequence length)")
    return {}, f"step x {spec.tokens_per_step:g}"


def log_rows(spec: RunSpec, log: RunLog) -> list[dict[str, Any]]:
    """The measurement rows (schema columns) of one run's log; step 0 is the base model.

    Raises
    ------
    LogImportError
        A loss key that is not logged, a loss that is not a finite number > 0, or token counts that are
        missing or go back; the message names the file, the run and the key.
    """
    where = spec.where(log.where)
    for field in ("general_key", "domain_key"):
        key = getattr(spec, field)
        if key not in log.series:
            raise LogImportError(f"{where}: key {key!r} ({field}) is not in the log (logged: {_keys_hint(log)})")
    general, domain = _at(log.series[spec.general_key]), _at(log.series[spec.domain_key])
    counted, _ = _tokens(spec, log, where)
    lrs = _at(log.series.get(spec.lr_key or "", []))
    rows, last = [], (-1, -1.0)
    for step in sorted(set(general) | set(domain)):
        for key, vals in ((spec.general_key, general), (spec.domain_key, domain)):
            v = vals.get(step)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise LogImportError(f"{where}: key {key!r} at step {step}: a loss must be a finite number > 0, "
                                     f"got {v!r}")
        if step == 0:
            tokens = 0.0
        elif counted:
            if step not in counted:
                raise LogImportError(f"{where}: key {spec.tokens_key!r} has no value at step {step}, where the "
                                     "losses were logged")
            tokens = counted[step]
        else:
            tokens = step * float(spec.tokens_per_step or 0)
        if step > 0 and (tokens <= 0 or tokens < last[1]):
            raise LogImportError(f"{where}: the token count at step {step} ({tokens:g}) is not above the one at "
                                 f"step {last[0]} ({last[1]:g})")
        last = (step, tokens)
        rows.append({"domain": spec.domain, "n_params": spec.n_params, "tokens": tokens,
                     "r_domain": spec.r_domain, "loss_general": general.get(step, math.nan),
                     "loss_domain": domain.get(step, math.nan), "run_id": spec.run_id, "seed": spec.seed,
                     "step": step, "lr": lrs.get(step) if step > 0 else None})
    if not rows:
        raise LogImportError(f"{where}: no evaluation logged")
    return rows


def _stored_bases(db: Path) -> set[str]:
    """Base run ids with stored measurements (an empty set for a store that does not exist yet)."""
    if not db.exists():
        return set()
    with Store(db) as st:
        ev = st.evaluations()
    return {r for r in ev["run_id"].unique() if str(r).startswith("base|")}


def _build(fmt: str, path: Path, mapping: Path, db: Path) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    """Read, match and check every run: the validated frame, a summary per run, mapped runs without logs."""
    spec_map = load_mapping(mapping, fmt)
    found = discover(fmt, path)
    problems: list[str] = []
    matched = _match(found, spec_map.runs, path, mapping, problems)
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for spec in spec_map.runs:
        names = matched[spec.label]
        if not names:
            continue
        try:
            log = read_run(fmt, names[0] if len(names) == 1 else ",".join(names),
                           [f for n in names for f in found[n]], spec.step_key)
        except LogImportError as exc:
            problems.extend(f"{line} (run {spec.label!r})" for line in exc.lines())
            continue
        try:
            run_rows = log_rows(spec, log)
        except LogImportError as exc:
            problems.extend(exc.lines())
            continue
        rows.extend(run_rows)
        cpt = [r for r in run_rows if r["tokens"] > 0]
        summary.append({"run": spec.label, "run_id": spec.run_id, "files": [str(f) for f in log.files],
                        "domain": spec.domain, "n_params": spec.n_params, "r_domain": spec.r_domain,
                        "checkpoints": len(cpt), "base": len(cpt) < len(run_rows),
                        "tokens_max": max((r["tokens"] for r in cpt), default=0.0)})
    missing = [r.label for r in spec_map.runs if not matched[r.label]]
    if not summary and not problems:
        problems.append(f"{path}: none of the runs in {mapping} was found (sources: "
                        f"{', '.join(r.source for r in spec_map.runs)}; found: {', '.join(found)})")
    stored = _stored_bases(db) if not problems else set()
    have = {(s["domain"], s["n_params"]) for s in summary if s["base"]}
    for s in summary:
        bid = base_run_id(s["domain"], s["n_params"])
        if (s["domain"], s["n_params"]) not in have and bid not in stored:
            problems.append(f"{', '.join(s['files'])}: run {s['run']!r}: no base-model evaluation (no loss logged "
                            f"at step 0) and {db} has none for {s['domain']} at N={s['n_params']:g}: evaluate "
                            "before training (TrainingArguments(eval_on_start=True)) or import the base losses first")
    if problems:
        raise LogImportError(problems)
    df = _data.validate(pd.DataFrame(rows), source=f"{path} (mapped by {mapping})")
    return df, summary, missing


def import_logs(fmt: str, path: str | Path, mapping: str | Path, db: str | Path, *, dry_run: bool = False,
                replace: bool = False) -> dict[str, Any]:
    """Import the runs under ``path`` (log format ``fmt``, runs named by ``mapping``) into the store ``db``.

    Parameters
    ----------
    fmt
        ``"trainer-state"``, ``"tensorboard"`` or ``"wandb-csv"``.
    path
        A log file, a run's folder, or a folder of runs.
    mapping
        The TOML mapping file (see :mod:`bayes_dcpt.data.logmap`).
    db
        The experiment store (created when absent, unless ``dry_run``).
    dry_run
        Check everything and count what would be written, then write nothing.
    replace
        Overwrite stored losses that differ (default: a conflict is an error and nothing is written).

    Returns
    -------
    dict
        ``inserted`` and ``skipped`` (already stored: both count losses), what the logs hold as ``data validate``
        counts a table (``rows``, ``base_rows``, ``runs`` = CPT runs, ``losses``, ...: see
        :meth:`~bayes_dcpt.data.store.Store.import_frame`), ``dry_run``, ``run_list`` (one summary per run: run id,
        files, domain, N, r, checkpoints, whether it has the base evaluation) and ``missing`` (mapped runs whose
        logs were not found under ``path``).
    """
    if fmt not in FORMATS:
        raise LogImportError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    path, mapping, db = Path(path), Path(mapping), Path(db)
    df, summary, missing = _build(fmt, path, mapping, db)
    files = {s["run_id"]: ", ".join(s["files"]) for s in summary}
    for s in summary:
        files.setdefault(base_run_id(s["domain"], s["n_params"]), files[s["run_id"]])
    config = {s["run_id"]: {"imported_from": fmt, "files": s["files"], "mapping": str(mapping)} for s in summary}
    try:
        if dry_run and not db.exists():
            with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "dry.sqlite") as st:
                res = st.import_frame(df, replace=replace, dry_run=True, run_config=config)
        else:
            with Store(db) as st:
                res = st.import_frame(df, replace=replace, dry_run=dry_run, run_config=config)
    except StoreConflictError as exc:
        rid = next((r for r in files if repr(r) in str(exc)), None)
        raise LogImportError(f"{files.get(rid, path)}: {exc}") from exc
    except StoreError as exc:
        raise LogImportError(f"{db}: {exc}" if str(db) not in str(exc) else str(exc)) from exc
    return {**res, "dry_run": dry_run, "run_list": summary, "missing": missing}
