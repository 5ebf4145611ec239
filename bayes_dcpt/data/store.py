"""The experiment store: probe runs and their evaluations in one SQLite file, safe for several writers.

Each evaluated checkpoint is written (and committed) the moment it is measured, so a crashed or killed
probe loses nothing it measured, and several probe processes can write to the same file at once (WAL
journal, ``busy_timeout``, ``BEGIN IMMEDIATE`` write transactions). Writes are idempotent: a measurement
is keyed by ``(run_id, tokens, eval_set)``; writing the same key with the same loss again is a no-op,
with a different loss it is a :class:`StoreConflictError` naming the run and the tokens (unless
``replace=True``).

Quickstart::

    >>> from bayes_dcpt.data.store import Store
    >>> with Store("runs.sqlite") as st:
    ...     st.upsert_run("code|N=1e5|r=0.5", domain="code", n_params=1e5, r_domain=0.5, seed=0)
    ...     st.add_evaluation("code|N=1e5|r=0.5", tokens=65536, eval_set="domain", loss=1.93, step=32)
    ...     df = st.to_frame()                  # the schema of bayes_dcpt.data.schema (validated)
    >>> Store("runs.sqlite").import_frame("more_probes.csv")   # {'inserted': ..., 'skipped': ..., 'rows': ...}

The tables, file checks and transactions are in :mod:`~bayes_dcpt.data.store_sql`, value conversions in
:mod:`~bayes_dcpt.data.store_values`, and the conversion to and from the wide measurement table in
:mod:`~bayes_dcpt.data.store_frames`; this module re-exports the names callers use.

A run's LR schedules travel in ``config`` (``schedule``: the CPT schedule spec, ``base_schedule``: the
base model's pre-training schedule spec, see :mod:`bayes_dcpt.laws.lr_schedules`); :meth:`Store.to_frame`
exports them as the ``schedule`` and ``base_schedule`` columns the CPT dynamics law reads, and
:meth:`Store.lr_trace` returns the recorded per-step LRs (stored per optimizer step, as trained).

Base-model measurements (tokens == 0) belong to a run named like :func:`bayes_dcpt.data.schema.validate`
names them, ``base|<domain>|N=<n_params>``, with ``r_domain`` NULL (see :func:`base_run_id`).
"""

from __future__ import annotations

import json
import math
import sqlite3
import zlib
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.schema import base_run_id
from bayes_dcpt.data.store_frames import (
    EXPORT_COLS,
    frame_records,
    schedules_from_configs,
    summary_counts,
    wide_frame,
)
from bayes_dcpt.data.store_sql import (
    EVAL_SETS,
    LOSS_RTOL,
    RUN_FIELDS,
    SQLITE_MAGIC,
    STATUSES,
    TRACE_PHASES,
    StoreConflictError,
    StoreError,
    check_store_file,
    setup_store,
    write_transaction,
)
from bayes_dcpt.data.store_values import fmt_g, host_name, now_iso, parse_base_id, same_value, seed_value, sql_value

__all__ = [
    "EVAL_SETS",
    "LOSS_RTOL",
    "STATUSES",
    "Store",
    "StoreConflictError",
    "StoreError",
    "base_run_id",
    "host_name",
    "read_measurements",
]

class _RollBack(Exception):
    """Raised inside a write transaction to roll it back (a dry run)."""


class Store:
    """An experiment store in one SQLite file (created when absent).

    Parameters
    ----------
    path
        The database file. A file that is not a SQLite database (or not a bayes-dcpt store) raises
        :class:`StoreError` and is left untouched.
    timeout
        Seconds a writer waits for another writer's lock before giving up (``busy_timeout``).
    """

    def __init__(self, path: str | Path, timeout: float = 60.0):
        self.path = Path(path)
        self.timeout = float(timeout)
        check_store_file(self.path)
        try:
            self._con = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store: {exc}") from exc
        try:
            setup_store(self._con, self.path, self.timeout)
        except sqlite3.DatabaseError as exc:
            self._con.close()
            raise StoreError(
                f"{self.path}: not a usable SQLite database ({exc}); nothing was changed"
            ) from exc
        except StoreError:
            self._con.close()
            raise

    # ------------------------------------------------------------------------------------ life cycle
    def close(self) -> None:
        """Close the connection (idempotent)."""
        con = getattr(self, "_con", None)
        if con is not None:
            con.close()
            self._con = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # ------------------------------------------------------------------------------------ transactions
    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._conn(), self.path, self.timeout)

    def _conn(self) -> sqlite3.Connection:
        if self._con is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._con

    # ------------------------------------------------------------------------------------------- runs
    def upsert_run(self, run_id: str, **fields: Any) -> None:
        """Create the run or update the given fields (others are kept). ``config`` may be a dict."""
        with self._write() as con:
            self._upsert_run(con, run_id, fields)

    def _upsert_run(self, con: sqlite3.Connection, run_id: str, fields: Mapping[str, Any]) -> None:
        if not isinstance(run_id, str) or not run_id.strip():
            raise StoreError(f"run_id must be a non-empty string, got {run_id!r}")
        unknown = sorted(set(fields) - set(RUN_FIELDS))
        if unknown:
            raise StoreError(f"unknown run field(s) {unknown}; known: {', '.join(RUN_FIELDS)}")
        vals = {k: (seed_value(v) if k == "seed" else sql_value(v)) for k, v in fields.items()}
        if "status" in vals and vals["status"] not in STATUSES:
            raise StoreError(f"run {run_id!r}: status must be one of {STATUSES}, not {vals['status']!r}")
        r = vals.get("r_domain")
        if r is not None and not (0.0 <= float(r) <= 1.0):
            raise StoreError(f"run {run_id!r}: r_domain must be in [0, 1], got {r}")
        con.execute("INSERT OR IGNORE INTO runs (run_id) VALUES (?)", (run_id,))
        if vals:
            sets = ", ".join(f"{k} = ?" for k in vals)
            con.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", (*vals.values(), run_id))

    def set_status(self, run_id: str, status: str, **fields: Any) -> None:
        """Set a run's status (and any other fields, e.g. ``finished_at``, ``wall_seconds``)."""
        self.upsert_run(run_id, status=status, **fields)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run as a dict (``config`` decoded), or None."""
        cur = self._conn().execute("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        row = cur.fetchone()
        if row is None:
            return None
        out = dict(zip([d[0] for d in cur.description], row, strict=True))
        if out.get("config"):
            try:
                out["config"] = json.loads(out["config"])
            except ValueError:
                pass
        return out

    def runs(self) -> pd.DataFrame:
        """All runs with their number of stored evaluations."""
        return pd.read_sql_query(
            "SELECT r.*, (SELECT COUNT(*) FROM evaluations e WHERE e.run_id = r.run_id) AS n_evaluations "
            "FROM runs r ORDER BY r.run_id",
            self._conn(),
        )

    # ------------------------------------------------------------------------------------ evaluations
    def add_evaluation(
        self,
        run_id: str,
        tokens: float,
        eval_set: str,
        loss: float,
        step: int | None = None,
        lr: float | None = None,
        *,
        replace: bool = False,
    ) -> bool:
        """Store one measurement and commit at once; True if a row was written (False: already stored)."""
        ins, _ = self.add_evaluations(
            [
                {
                    "run_id": run_id,
                    "tokens": tokens,
                    "eval_set": eval_set,
                    "loss": loss,
                    "step": step,
                    "lr": lr,
                }
            ],
            replace=replace,
        )
        return ins == 1

    def add_evaluations(self, rows: Iterable[Mapping[str, Any]], *, replace: bool = False) -> tuple[int, int]:
        """Store many measurements in one transaction (all or nothing); returns ``(inserted, skipped)``.

        Each row needs ``run_id, tokens, eval_set, loss`` and may have ``step, lr``. The run must exist
        (see :meth:`upsert_run`) unless it is a base id, which is created on the fly.
        """
        rows = list(rows)
        with self._write() as con:
            return self._add_evaluations(con, rows, replace)

    def _add_evaluations(
        self, con: sqlite3.Connection, rows: list[Mapping[str, Any]], replace: bool
    ) -> tuple[int, int]:
        inserted = skipped = 0
        known: set[str] = set()
        for row in rows:
            run_id = row["run_id"]
            tokens = float(sql_value(row["tokens"]))
            eval_set = row["eval_set"]
            loss = sql_value(row["loss"])
            where = f"run {run_id!r} at tokens={fmt_g(tokens)} ({eval_set})"
            if eval_set not in EVAL_SETS:
                raise StoreError(f"{where}: eval_set must be 'general' or 'domain'")
            if loss is None or not math.isfinite(float(loss)) or float(loss) <= 0:
                raise StoreError(f"{where}: loss must be a finite number > 0, got {row['loss']!r}")
            if not math.isfinite(tokens) or tokens < 0:
                raise StoreError(f"{where}: tokens must be >= 0")
            loss = float(loss)
            if run_id not in known:
                if con.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                    if not str(run_id).startswith("base|"):
                        raise StoreError(f"{where}: unknown run; create it with upsert_run first")
                    dom, n = parse_base_id(run_id)
                    con.execute(
                        "INSERT INTO runs (run_id, status, domain, n_params) VALUES (?, 'done', ?, ?)",
                        (run_id, dom, n),
                    )
                known.add(run_id)
            step = sql_value(row.get("step"))
            lr = sql_value(row.get("lr"))
            old = con.execute(
                "SELECT loss FROM evaluations WHERE run_id = ? AND tokens = ? AND eval_set = ?",
                (run_id, tokens, eval_set),
            ).fetchone()
            if old is not None:
                if math.isclose(old[0], loss, rel_tol=LOSS_RTOL):
                    skipped += 1
                    continue
                if not replace:
                    raise StoreConflictError(
                        f"{where}: already stored with loss {old[0]:.6g}, now {loss:.6g}; "
                        "pass replace=True (or --replace) to overwrite", run_id=run_id, tokens=tokens
                    )
                con.execute(
                    "UPDATE evaluations SET loss = ?, step = ?, lr = ?, created_at = ? "
                    "WHERE run_id = ? AND tokens = ? AND eval_set = ?",
                    (loss, step, lr, now_iso(), run_id, tokens, eval_set),
                )
                inserted += 1
                continue
            con.execute(
                "INSERT INTO evaluations (run_id, tokens, step, eval_set, loss, lr, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, tokens, None if step is None else int(step), eval_set, loss, lr, now_iso()),
            )
            inserted += 1
        return inserted, skipped

    def evaluations(self, run_id: str | None = None) -> pd.DataFrame:
        """The evaluations table (long: one row per measurement), optionally of one run."""
        q = "SELECT * FROM evaluations"
        args: tuple = ()
        if run_id is not None:
            q += " WHERE run_id = ?"
            args = (run_id,)
        return pd.read_sql_query(q + " ORDER BY run_id, tokens, eval_set", self._conn(), params=args)

    # -------------------------------------------------------------------------------------- LR traces
    def set_lr_trace(self, run_id: str, phase: str, lrs: Any) -> None:
        """Record the LR of every optimizer step of one phase (``"pretrain"`` or ``"cpt"``) of a run.

        Written again as the run proceeds (the trace grows); stored compressed (float64, zlib).
        """
        if phase not in TRACE_PHASES:
            raise StoreError(f"phase must be one of {TRACE_PHASES}, not {phase!r}")
        arr = np.ascontiguousarray(np.asarray(lrs, dtype="<f8").ravel())
        if not np.all(np.isfinite(arr)):
            raise StoreError(f"run {run_id!r}: the LR trace has non-finite values")
        blob = zlib.compress(arr.tobytes(), 6)
        with self._write() as con:
            con.execute(
                "INSERT INTO lr_traces (run_id, phase, n_steps, lrs) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(run_id, phase) DO UPDATE SET n_steps = excluded.n_steps, lrs = excluded.lrs",
                (run_id, phase, int(arr.size), blob),
            )

    def lr_trace(self, run_id: str, phase: str = "cpt") -> np.ndarray | None:
        """The recorded per-step LRs of a run's phase (``None`` when not recorded)."""
        row = self._conn().execute(
            "SELECT n_steps, lrs FROM lr_traces WHERE run_id = ? AND phase = ?", (run_id, phase)
        ).fetchone()
        if row is None:
            return None
        arr = np.frombuffer(zlib.decompress(row[1]), dtype="<f8").astype(float)
        if arr.size != int(row[0]):
            raise StoreError(f"{self.path}: the LR trace of {run_id!r} ({phase}) is corrupt")
        return arr

    def lr_traces(self, phase: str = "cpt") -> dict[str, np.ndarray]:
        """Every recorded trace of one phase: ``{run_id: lrs}``."""
        ids = [r[0] for r in self._conn().execute("SELECT run_id FROM lr_traces WHERE phase = ?", (phase,))]
        return {rid: self.lr_trace(rid, phase) for rid in ids}

    # -------------------------------------------------------------------------------- frames in / out
    def to_frame(self, status: Iterable[str] | None = None) -> pd.DataFrame:
        """All measurements in the wide schema of :mod:`bayes_dcpt.data.schema`, validated.

        One row per (run, tokens) with ``domain, n_params, tokens, r_domain, loss_general, loss_domain,
        run_id, seed, step, lr``, and ``schedule``/``base_schedule`` when the runs recorded their LR
        schedules (the probe runner does). ``status`` keeps only runs in those states (default: all).
        """
        q = (
            "SELECT e.run_id, e.tokens, e.step, e.eval_set, e.loss, e.lr, r.domain, r.n_params, r.r_domain, "
            "r.seed, r.status FROM evaluations e JOIN runs r ON r.run_id = e.run_id"
        )
        long = pd.read_sql_query(q, self._conn())
        if status is not None:
            long = long[long["status"].isin(list(status))]
        if long.empty:
            raise StoreError(f"{self.path}: the store has no measurements yet")
        return _data.load(wide_frame(long, self._schedules()))

    def _schedules(self) -> dict[str, dict[str, str]]:
        """``run_id -> {"schedule": spec, "base_schedule": spec}`` from the runs' configs (when recorded)."""
        rows = self._conn().execute("SELECT run_id, config FROM runs WHERE config IS NOT NULL")
        return schedules_from_configs(rows)

    def import_frame(
        self,
        source: str | Path | pd.DataFrame,
        *,
        replace: bool = False,
        dry_run: bool = False,
        run_config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, int]:
        """Validate a table with :func:`bayes_dcpt.data.schema.load` and store it; nothing is written if invalid.

        Returns ``{"inserted": ..., "skipped": ..., **counts}``: ``inserted`` and ``skipped`` (already stored) count
        losses, one per (run, tokens, eval set), and ``counts`` is what the table holds, as ``data validate`` counts
        it (:func:`~bayes_dcpt.data.store_frames.summary_counts`: ``rows``, ``base_rows``, ``runs`` = CPT runs,
        ``losses``, ...); ``inserted + skipped == losses``. Re-importing the same table skips every loss. A
        measurement stored with a different loss raises :class:`StoreConflictError`.
        ``dry_run=True`` does the whole import in a transaction that is rolled back: the counts (and any
        conflict) are what a real import would give, and nothing is written. ``run_config`` adds fields to the
        ``config`` of runs created by this import (e.g. where they were imported from).
        """
        df = _data.load(source)
        src = str(source) if isinstance(source, (str, Path)) else "table"
        run_rows, evals = frame_records(df, src)
        counts = summary_counts(_data.summarize(df))
        result: dict[str, int] = {}
        try:
            with self._write() as con:
                result = self._import_records(con, src, run_rows, evals, replace, run_config or {})
                if dry_run:
                    raise _RollBack
        except _RollBack:
            pass
        except StoreConflictError as exc:  # name the table and its row, not only the run (nothing was written)
            at = (df["run_id"].astype(str) == str(exc.run_id)) & np.isclose(df["tokens"], exc.tokens or 0.0)
            src = str(df.attrs.get("source") or src)
            where = f", {_data.data_row(df, int(np.flatnonzero(at)[0]))}" if at.any() else ""
            raise StoreConflictError(f"{src}{where}: {exc}", exc.run_id, exc.tokens) from None
        return {**result, **counts}

    def _import_records(
        self,
        con: sqlite3.Connection,
        src: str,
        run_rows: dict[str, dict[str, Any]],
        evals: list[dict[str, Any]],
        replace: bool,
        run_config: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, int]:
        """The runs and evaluations of :meth:`import_frame` inside its write transaction."""
        for rid, info in run_rows.items():
            old = con.execute(
                "SELECT domain, n_params, r_domain FROM runs WHERE run_id = ?", (rid,)
            ).fetchone()
            if old is not None:
                for k, v in zip(("domain", "n_params", "r_domain"), old, strict=True):
                    if v is not None and info[k] is not None and not same_value(v, info[k]):
                        raise StoreConflictError(
                            f"{src}: run {rid!r} is stored with {k}={v} but the table says {info[k]}"
                        )
            fields = {k: v for k, v in info.items() if v is not None and k != "_sched"}
            if old is None:
                fields["status"] = "done"
                fields["corpus_domain"] = None
                cfg = {**run_config.get(rid, {}), **info["_sched"]}  # the LR schedules travel with them too
                if cfg:
                    fields["config"] = cfg
            self._upsert_run(con, rid, fields)
        ins, skip = self._add_evaluations(con, evals, replace)
        return {"inserted": ins, "skipped": skip}

    def export(self, path: str | Path) -> Path:
        """Write :meth:`to_frame` to a ``.csv`` or ``.parquet`` file."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise StoreError(f"{p}: export to .csv or .parquet, not {suffix or 'no suffix'!r}")
        df = self.to_frame()
        df = df.drop(columns=[c for c in df.columns if c not in EXPORT_COLS])
        if suffix == ".csv":
            df.to_csv(p, index=False)
        else:
            df.to_parquet(p, index=False)
        return p


_SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def read_measurements(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A validated frame from a store (``.sqlite``/``.sqlite3``/``.db`` or any SQLite file) or a data file."""
    if isinstance(source, pd.DataFrame):
        return _data.load(source)
    p = Path(source)
    is_sqlite = p.suffix.lower() in _SQLITE_SUFFIXES
    if not is_sqlite and p.is_file():
        with p.open("rb") as fh:
            is_sqlite = fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    if is_sqlite:
        if not p.exists():
            raise StoreError(f"no such store: {p}")
        with Store(p) as st:
            return st.to_frame()
    return _data.load(p)
