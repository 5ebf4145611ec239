"""Grids of probes from a spec file: pretrain the size ladder, then run every (size, domain, ratio, seed).

:func:`run_grid` checks every probe of the grid before anything trains, pretrains the missing base
models, then runs the probes through an executor (:mod:`~bayes_dcpt.probe.grid_workers`: local processes or
Ray). Runs already done in the store are skipped, so re-running a grid only runs what is missing. The spec
file format is described in :mod:`~bayes_dcpt.probe.grid_spec`, whose names are re-exported here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bayes_dcpt.probe.grid_spec import GridError, GridSpec, Job, load_spec, pretrain_config, probe_config
from bayes_dcpt.probe.grid_workers import job_payload, run_local, run_ray

__all__ = ["GridError", "GridSpec", "Job", "load_spec", "pretrain_config", "probe_config", "run_grid"]


def run_grid(
    spec: GridSpec,
    db: str | Path,
    *,
    executor: str = "local",
    workers: int = 1,
    threads: int | None = None,
    address: str | None = None,
    checkpoint_dir: str | Path | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Pretrain the missing base models, then run every probe of the grid not yet done in ``db``.

    Parameters
    ----------
    executor
        ``local`` (processes on this machine) or ``ray``.
    workers
        Jobs at once (local) / concurrent Ray tasks.
    threads
        Torch threads per job (default ``cpu_count // workers``).
    address
        Ray cluster address (default: start a local Ray instance).
    checkpoint_dir
        Where probes keep their resume checkpoints (default ``<db folder>/checkpoints``).
    on_event
        Called with progress events (``{"label", "step", "total_steps", "tokens", "loss", ...}``) and
        job completions (``{"done": summary}``).

    Returns
    -------
    dict
        ``{"jobs": [...summaries], "wall_seconds", "corpora": gather info or None}``.
    """
    from bayes_dcpt.data.store import Store

    if executor not in ("local", "ray"):
        raise GridError(f"executor must be local or ray, not {executor!r}")
    if workers < 1:
        raise GridError("workers must be >= 1")
    t0 = time.perf_counter()
    corpora_info = _gather(spec)
    with Store(db):  # fail early on a bad store file, before any training
        pass
    db = str(Path(db).resolve())
    ckdir = str(Path(checkpoint_dir) if checkpoint_dir else Path(db).parent / "checkpoints")
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    summaries: list[dict[str, Any]] = []
    for phase in _phases(spec, ckdir):
        if not phase:
            continue
        if executor == "local":
            summaries += run_local(phase, db, workers, threads, on_event)
        else:
            summaries += run_ray(phase, db, workers, threads, address, on_event)
    return {
        "jobs": summaries,
        "wall_seconds": time.perf_counter() - t0,
        "corpora": corpora_info,
        "threads": threads,
        "workers": workers,
        "executor": executor,
    }


def _gather(spec: GridSpec) -> dict[str, Any] | None:
    """Write the offline example corpora when the spec asks for them and they are missing (what was written)."""
    from bayes_dcpt.probe.corpora import gather_stdlib

    if spec.gather != "stdlib":
        return None
    corpora_info = None
    missing = [p for p in [spec.general, *spec.domains.values()] if not p.exists()]
    if missing:
        corpora_info = gather_stdlib(missing[0].parent)
    for name, path in [("general", spec.general), *spec.domains.items()]:
        if not path.exists():
            raise GridError(f"{name} corpus not found after gathering: {path}")
    return corpora_info


def _phases(spec: GridSpec, ckdir: str) -> tuple[list, list]:
    """The pretraining jobs (missing base models) and the probe jobs, every probe checked before anything trains."""
    from bayes_dcpt.probe.networks import PRESETS

    # check every probe before anything trains (bad ratio, missing corpus, unknown size ...)
    jobs = spec.jobs()
    configs = [probe_config(spec, j, ckdir) for j in jobs]
    for cfg in configs:
        _precheck(cfg, spec)
    pre_jobs = []
    for size in dict.fromkeys(j.size for j in jobs):
        if size in PRESETS and spec.pretrain and not (spec.base_dir(size) / "probe_meta.json").is_file():
            pre_jobs.append(("pretrain", job_payload(pretrain_config(spec, size), f"pretrain {size}")))
    probe_jobs = [("probe", job_payload(c, j.label)) for j, c in zip(jobs, configs, strict=True)]
    return pre_jobs, probe_jobs


def _precheck(cfg: Any, spec: GridSpec) -> None:
    """Settings that must hold for every probe (each probe checks its corpora again before it trains)."""
    from bayes_dcpt.probe.configs import ProbeConfigError
    from bayes_dcpt.probe.networks import PRESETS

    base = cfg.base
    if Path(base).name in PRESETS and spec.pretrain:
        base = Path(base).name  # pretrained in the first phase if missing
    try:
        cfg.base, saved = base, cfg.base
        cfg.check()
    except ProbeConfigError as exc:
        raise GridError(f"{spec.source}: {exc}") from exc
    finally:
        cfg.base = saved
