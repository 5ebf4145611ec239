"""Training logs in, one ``key -> [(step, value)]`` series per run out: ``trainer_state.json``, TensorBoard, W&B CSV.

Each reader finds the runs under a path (a file is one run; a folder may hold many) and turns each into a
:class:`RunLog`: every logged numeric key with its (step, value) pairs in training order, and the files it
came from. What the keys mean (which is the general loss, which the domain loss, the token count) is the
mapping's business (:mod:`~bayes_dcpt.data.logmap`), what becomes a measurement the importer's
(:mod:`~bayes_dcpt.data.importers`).

* ``trainer-state``: a Hugging Face ``trainer_state.json`` (its ``log_history``); in a folder, each output
  folder is one run and its newest ``checkpoint-*/trainer_state.json`` (the largest ``global_step``) is read:
  each checkpoint's history holds every log before it.
* ``tensorboard``: event files (``events.out.tfevents.*``); each folder holding event files is one run, read
  by :mod:`~bayes_dcpt.data.tfevents`.
* ``wandb-csv``: a W&B run-history CSV export (``run.history().to_csv()`` or the run page's export: one row
  per ``wandb.log`` call, columns ``_step``, ``train/global_step``, ``eval/general_loss``, ...); each CSV file
  is one run.

Within one file a key's steps must not go back (a log is written in training order); a run's files (e.g. a
TensorBoard folder written again after a resume from a checkpoint) are taken in the order they were written,
and a later file replaces each key's earlier values from the first step it logs that key at.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pandas as pd

from bayes_dcpt.data.logmap import LogImportError
from bayes_dcpt.data.schema import ragged_lines
from bayes_dcpt.data.tfevents import EventFileError, is_event_file, read_scalars

__all__ = ["RunLog", "discover", "read_run"]

Series = dict[str, list[tuple[int, float]]]
_CKPT = re.compile(r"checkpoint-\d+")


@dataclass
class RunLog:
    """One run found under the imported path: its name there (``"."`` for the path itself) and its series."""

    name: str
    files: list[Path]
    series: Series = field(default_factory=dict)
    order: float = 0.0

    @property
    def where(self) -> str:
        """The file(s) in messages."""
        return ", ".join(str(f) for f in self.files)


def _rel(path: Path, root: Path) -> str:
    if path == root:
        return "."
    return path.relative_to(root).as_posix()


def _add(series: Series, key: str, step: int, value: float) -> None:
    series.setdefault(key, []).append((int(step), float(value)))


def _number(v: object) -> float | None:
    """A logged number as a float (NaN and inf kept: the importer names them), None for anything else."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _check_order(series: Series, file: Path) -> None:
    """Within one file, each key's steps never go back (a resumed run appends to a new file); losses named first."""
    for key in sorted(series, key=lambda k: ("loss" not in k, k)):
        pts = series[key]
        for (s0, _), (s1, _) in pairwise(pts):
            if s1 < s0:
                raise LogImportError(
                    f"{file}: key {key!r}: steps go back from {s0} to {s1}; a log is written in training order "
                    "(if the run was restarted into the same file, keep only the last attempt's entries)"
                )


# ------------------------------------------------------------------------------------- trainer_state.json
def _trainer_state(path: Path, step_key: str) -> Series:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LogImportError(f"{path}: not a readable trainer_state.json ({exc})") from exc
    hist = doc.get("log_history") if isinstance(doc, dict) else None
    if not isinstance(hist, list):
        raise LogImportError(f"{path}: no 'log_history' list; is this a Hugging Face trainer_state.json?")
    series: Series = {}
    text: dict[str, tuple[int, str]] = {}  # a key's first text value: a loss logged as text is not dropped silently
    for i, entry in enumerate(hist, start=1):
        if not isinstance(entry, dict):
            raise LogImportError(f"{path}: log_history entry {i} is not an object")
        step = entry.get(step_key)
        if step is None:
            continue
        if _number(step) is None or float(step) != int(step):
            raise LogImportError(f"{path}: log_history entry {i}: key {step_key!r} is not a step number: {step!r}")
        for k, v in entry.items():
            if k != step_key and _number(v) is not None:
                _add(series, k, int(step), float(v))
            elif isinstance(v, str):
                text.setdefault(k, (i, v))
    if hist and not any(isinstance(e, dict) and step_key in e for e in hist):
        raise LogImportError(f"{path}: key {step_key!r} (step_key) is in no log_history entry; set step_key "
                             "in the mapping")
    bad = [f"{path}: log_history entry {i}: key {k!r} is not a number: {v!r}" for k, (i, v) in text.items()
           if k in series]  # a numeric key (a loss) with a text value: refuse rather than drop the checkpoint
    if bad:
        raise LogImportError(bad)
    return series


def _global_step(path: Path) -> int:
    try:
        return int(json.loads(path.read_text(encoding="utf-8")).get("global_step", -1))
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError):
        return -1


def _find_trainer_states(root: Path) -> dict[str, list[Path]]:
    if root.is_file():
        return {".": [root]}
    by_run: dict[Path, list[Path]] = {}
    for f in sorted(root.rglob("trainer_state.json")):
        run_dir = f.parent.parent if _CKPT.fullmatch(f.parent.name) else f.parent
        by_run.setdefault(run_dir, []).append(f)
    # the newest checkpoint's history holds every earlier one
    return {_rel(d, root): [max(fs, key=_global_step)] for d, fs in by_run.items()}


# ------------------------------------------------------------------------------------------- TensorBoard
def _tensorboard(path: Path) -> tuple[Series, float]:
    try:
        events = read_scalars(path)
    except EventFileError as exc:
        raise LogImportError(str(exc)) from exc
    series: Series = {}
    for ev in events:
        _add(series, ev.tag, ev.step, ev.value)
    first = min((ev.wall_time for ev in events), default=0.0)
    return series, first


def _find_event_files(root: Path) -> dict[str, list[Path]]:
    if root.is_file():
        return {".": [root]}
    by_dir: dict[Path, list[Path]] = {}
    for f in sorted(root.rglob("events.out.tfevents*")):
        if is_event_file(f):
            by_dir.setdefault(f.parent, []).append(f)
    return {_rel(d, root): fs for d, fs in by_dir.items()}


# ---------------------------------------------------------------------------------------------- W&B CSV
def _wandb_csv(path: Path, step_key: str) -> Series:
    try:
        raw_text = path.read_text(encoding="utf-8-sig")
        df = pd.read_csv(io.StringIO(raw_text))
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise LogImportError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0]})") from exc
    if ragged := ragged_lines(raw_text, ",", not raw_text.endswith(("\n", "\r"))):
        raise LogImportError([f"{path}: {p.message}" for p in ragged])  # a cut-off file: its last row is partial
    if step_key not in df.columns:
        keys = ", ".join(str(c) for c in df.columns[:12])
        raise LogImportError(f"{path}: key {step_key!r} (step_key) is not a column of the W&B history "
                             f"(columns: {keys}); set step_key in the mapping")
    steps = pd.to_numeric(df[step_key], errors="coerce")
    series: Series = {}
    for col in df.columns:
        if col == step_key:
            continue
        vals = pd.to_numeric(df[col], errors="coerce")
        has = vals.notna().to_numpy()
        if not has.any():
            continue
        cells = df[col].astype(str).str.strip()
        text = (df[col].notna() & vals.isna() & ~cells.str.lower().isin(("nan", ""))).to_numpy()
        if text.any():  # a number column with a text cell: refuse rather than drop that checkpoint
            row = int(text.argmax()) + 1
            raise LogImportError(f"{path}: key {col!r} in row {row} is not a number: {cells.iloc[row - 1]!r}")
        lost = has & steps.isna().to_numpy()
        if lost.any():
            row = int(lost.argmax()) + 1
            raise LogImportError(f"{path}: key {col!r} has a value in row {row} without a {step_key!r} step")
        for s, v in zip(steps[has], vals[has], strict=True):
            _add(series, str(col), int(s), float(v))
    return series


def _find_csvs(root: Path) -> dict[str, list[Path]]:
    if root.is_file():
        return {".": [root]}
    return {_rel(f, root): [f] for f in sorted(root.rglob("*.csv"))}


# ------------------------------------------------------------------------------------------------ merging
def _merge(parts: list[tuple[float, Path, Series]]) -> Series:
    """The series of a run written to several files, in writing order.

    A file replaces each key's earlier values from the first step it logs that key at: a resumed run logs again
    what the killed one logged after its checkpoint; what it does not log again is kept.
    """
    merged: Series = {}
    for _, _, series in sorted(parts, key=lambda t: (t[0], str(t[1]))):
        for key, pts in series.items():
            if not pts:
                continue
            first = min(s for s, _ in pts)
            merged[key] = [(s, v) for s, v in merged.get(key, []) if s < first] + list(pts)
    return merged


def discover(fmt: str, root: str | Path) -> dict[str, list[Path]]:
    """The runs under ``root`` in the log format ``fmt``: their name under ``root`` -> their files.

    Raises :class:`LogImportError` for a missing path or a path without any log of the format.
    """
    root = Path(root)
    if not root.exists():
        raise LogImportError(f"{root}: no such file or folder")
    finder = {"trainer-state": _find_trainer_states, "tensorboard": _find_event_files, "wandb-csv": _find_csvs}[fmt]
    found = finder(root)
    if not found:
        what = {"trainer-state": "trainer_state.json", "tensorboard": "events.out.tfevents.*",
                "wandb-csv": "*.csv"}[fmt]
        raise LogImportError(f"{root}: no {what} file found (is --from {fmt} the right format?)")
    return found


def read_run(fmt: str, name: str, files: list[Path], step_key: str | None) -> RunLog:
    """Read one run's files (see :func:`discover`) into its series; ``step_key`` names the step (not TensorBoard).

    Raises :class:`LogImportError` for an unreadable or truncated file, a missing step key, or steps that go
    back within one file.
    """
    parts: list[tuple[float, Path, Series]] = []
    for i, f in enumerate(files):
        if fmt == "tensorboard":
            series, order = _tensorboard(f)
        elif fmt == "trainer-state":
            series, order = _trainer_state(f, step_key or "step"), float(i)
        else:
            series, order = _wandb_csv(f, step_key or "train/global_step"), float(i)
        _check_order(series, f)
        parts.append((order, f, series))
    parts.sort(key=lambda t: (t[0], str(t[1])))
    return RunLog(name, [p[1] for p in parts], _merge(parts), parts[0][0] if parts else 0.0)
