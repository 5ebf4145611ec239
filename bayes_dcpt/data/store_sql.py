"""The experiment store's SQLite layer: the tables, opening a file safely, and write transactions.

Kept apart from :class:`~bayes_dcpt.data.store.Store` so the on-disk format (schema version, tables, checks)
can be read in one place. Opening refuses a file that is not SQLite or not a bayes-dcpt store before
anything is written; writes take the lock at once (``BEGIN IMMEDIATE``) so several probe processes can share
one file (WAL journal, ``busy_timeout``). Tables::

    runs         run_id PK, model, n_params, base_checkpoint, domain, r_domain, corpus_general,
                 corpus_domain, seed, status {pending, running, done, failed}, started_at, finished_at,
                 wall_seconds, config (JSON: schedule and the rest), host
    evaluations  run_id FK, tokens, step, eval_set {general, domain}, loss, lr, created_at,
                 UNIQUE(run_id, tokens, eval_set)
    lr_traces    run_id, phase {pretrain, cpt}, n_steps, lrs (float64 array, zlib-compressed bytes),
                 PRIMARY KEY(run_id, phase)
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bayes_dcpt.errors import BayesDCPTError

__all__ = [
    "EVAL_SETS",
    "LOSS_RTOL",
    "RUN_FIELDS",
    "SCHEMA_VERSION",
    "SQLITE_MAGIC",
    "STATUSES",
    "TRACE_PHASES",
    "StoreConflictError",
    "StoreError",
    "check_store_file",
    "setup_store",
    "write_transaction",
]

STATUSES = ("pending", "running", "done", "failed")
EVAL_SETS = ("general", "domain")
#: Two losses for the same (run, tokens, eval set) count as "the same measurement" within this relative
#: tolerance (float32 evaluation with different thread counts differs in the last digits).
LOSS_RTOL = 1e-6
SCHEMA_VERSION = 1
#: The first bytes of every SQLite 3 file.
SQLITE_MAGIC = b"SQLite format 3\x00"

RUN_FIELDS = (
    "model",
    "n_params",
    "base_checkpoint",
    "domain",
    "r_domain",
    "corpus_general",
    "corpus_domain",
    "seed",
    "status",
    "started_at",
    "finished_at",
    "wall_seconds",
    "config",
    "host",
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,
    model           TEXT,
    n_params        REAL,
    base_checkpoint TEXT,
    domain          TEXT,
    r_domain        REAL CHECK (r_domain IS NULL OR (r_domain >= 0 AND r_domain <= 1)),
    corpus_general  TEXT,
    corpus_domain   TEXT,
    seed,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN {STATUSES!r}),
    started_at      TEXT,
    finished_at     TEXT,
    wall_seconds    REAL,
    config          TEXT,
    host            TEXT
);
CREATE TABLE IF NOT EXISTS evaluations (
    run_id     TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    tokens     REAL NOT NULL CHECK (tokens >= 0),
    step       INTEGER,
    eval_set   TEXT NOT NULL CHECK (eval_set IN {EVAL_SETS!r}),
    loss       REAL NOT NULL CHECK (loss > 0),
    lr         REAL,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, tokens, eval_set)
);
CREATE INDEX IF NOT EXISTS evaluations_run ON evaluations (run_id);
"""
#: Added after schema version 1 was released; created on open in older stores (additive, no migration).
_TRACES = """
CREATE TABLE IF NOT EXISTS lr_traces (
    run_id   TEXT NOT NULL,
    phase    TEXT NOT NULL CHECK (phase IN ('pretrain', 'cpt')),
    n_steps  INTEGER NOT NULL,
    lrs      BLOB NOT NULL,
    PRIMARY KEY (run_id, phase)
)
"""
TRACE_PHASES = ("pretrain", "cpt")


class StoreError(BayesDCPTError):
    """The store file cannot be used (not SQLite, corrupt, not a bayes-dcpt store) or a value is invalid."""


class StoreConflictError(StoreError):
    """A measurement that is already stored was written again with a different loss (``run_id``, ``tokens``)."""

    def __init__(self, message: str, run_id: str | None = None, tokens: float | None = None) -> None:
        super().__init__(message)
        self.run_id, self.tokens = run_id, tokens


def check_store_file(p: Path) -> None:
    """Refuse a path that cannot be a store (a folder, a non-SQLite file, a missing folder) before opening it."""
    if p.is_dir():
        raise StoreError(f"{p} is a directory, not a store file")
    if p.exists():
        try:
            with p.open("rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise StoreError(f"{p}: cannot read the store: {exc.strerror or exc}") from exc
        if head and head != SQLITE_MAGIC:
            raise StoreError(
                f"{p} is not a SQLite database (wrong header); give a new file name or the right file"
            )
    elif not p.parent.exists():
        raise StoreError(f"{p}: the folder {p.parent} does not exist")


@contextmanager
def write_transaction(con: sqlite3.Connection, path: Path, timeout: float) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the lock now (``BEGIN IMMEDIATE``); commits, or rolls back on an error."""
    deadline = time.monotonic() + timeout
    while True:  # BEGIN IMMEDIATE takes the write lock now (busy_timeout covers most waits)
        try:
            con.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise StoreError(f"{path}: cannot get the write lock: {exc}") from exc
            time.sleep(0.05)
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def setup_store(con: sqlite3.Connection, path: Path, timeout: float) -> None:
    """Check an opened file is a bayes-dcpt store (or empty), set the pragmas, and create missing tables."""
    con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    # reading the schema raises DatabaseError for a corrupt file before anything is written
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "meta" not in tables:
        raise StoreError(
            f"{path} is a SQLite database but not a bayes-dcpt store "
            f"(tables: {', '.join(sorted(tables))})"
        )
    if "meta" in tables:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or int(row[0]) > SCHEMA_VERSION:
            raise StoreError(f"{path}: unknown store schema version {row[0] if row else None}")
    mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # e.g. a file system without shared memory
        con.execute("PRAGMA journal_mode = DELETE")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("PRAGMA foreign_keys = ON")
    if not tables:
        with write_transaction(con, path, timeout):
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            con.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?), ('app', 'bayes-dcpt')",
                (str(SCHEMA_VERSION),),
            )
    if "lr_traces" not in tables:
        with write_transaction(con, path, timeout):
            con.execute(_TRACES)
