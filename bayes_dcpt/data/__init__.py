"""Measurements in, validated frames out: the CPT schema, the experiment store, loss curves, DLC features.

Everything downstream reads measurements through this package. :func:`load` validates a table against the
schema (one problem per column and row, never a bare traceback); :class:`Store` keeps probe runs in SQLite
(idempotent, safe for parallel probes); :func:`load_dynamics` reads whole loss curves with their LR
schedules; :func:`dlc_features` computes the Cross-Domain law's domain features from early checkpoints;
:func:`in_warmup` tells the checkpoints inside a run's LR warm-up (by its schedule, else its logged LRs), which
the fits leave out.
"""

from bayes_dcpt.data.dlc import attach_features, dlc_features
from bayes_dcpt.data.dynamics import (
    AREA_COLUMNS,
    DYNAMICS_COLUMNS,
    area_features,
    load_dynamics,
    prediction_rows,
    schedule_of,
    validate_dynamics,
)
from bayes_dcpt.data.schema import (
    ALIASES,
    INPUT_COLUMNS,
    LOSS_COLUMNS,
    REQUIRED_COLUMNS,
    TARGETS,
    after_burn_in,
    base_losses,
    data_hash,
    fit_rows,
    in_warmup,
    load,
    normalise_columns,
    read_table,
    summarize,
    targets_of,
    to_long,
    validate,
)
from bayes_dcpt.data.store import Store, StoreConflictError, StoreError, base_run_id, read_measurements

__all__ = [
    "ALIASES",
    "AREA_COLUMNS",
    "DYNAMICS_COLUMNS",
    "INPUT_COLUMNS",
    "LOSS_COLUMNS",
    "REQUIRED_COLUMNS",
    "TARGETS",
    "Store",
    "StoreConflictError",
    "StoreError",
    "after_burn_in",
    "area_features",
    "attach_features",
    "base_losses",
    "base_run_id",
    "data_hash",
    "dlc_features",
    "fit_rows",
    "in_warmup",
    "load",
    "load_dynamics",
    "normalise_columns",
    "prediction_rows",
    "read_measurements",
    "read_table",
    "schedule_of",
    "summarize",
    "targets_of",
    "to_long",
    "validate",
    "validate_dynamics",
]
