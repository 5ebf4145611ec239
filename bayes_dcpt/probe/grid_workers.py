"""Executors of a grid's jobs: processes on this machine, or Ray tasks.

``local`` runs ``workers`` probe processes at once on this machine (each with ``cpu_count // workers``
threads, or one GPU each: ``CUDA_VISIBLE_DEVICES`` is set per worker); ``ray`` submits each probe as a Ray
task to a running cluster (``address``) or a local Ray instance. Every job writes to the same store, so the
``db`` path must be reachable from every worker. Progress events travel back through a queue.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict
from typing import Any

from bayes_dcpt.probe.grid_spec import GridError

__all__ = ["job_payload", "ray_resources", "run_local", "run_ray", "worker_gpu"]

_WORKER: dict[str, Any] = {}


def _init_worker(counter, n_gpus: int, threads: int, events) -> None:
    with counter.get_lock():
        idx = counter.value
        counter.value += 1
    gpu = worker_gpu(idx, n_gpus)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    os.environ["OMP_NUM_THREADS"] = str(threads)
    _WORKER.update(index=idx, threads=threads, events=events)


def worker_gpu(index: int, n_gpus: int) -> str | None:
    """The GPU a local worker process sees (``CUDA_VISIBLE_DEVICES``): workers round-robin over the GPUs.

    None without GPUs (the worker trains on CPU). With more workers than GPUs, several share one GPU.
    """
    if n_gpus <= 0:
        return None
    return str(int(index) % int(n_gpus))


def ray_resources(cluster_gpus: int, threads: int) -> dict[str, int]:
    """What one Ray probe task asks for: ``threads`` CPUs, and one whole GPU when the cluster has any."""
    return {"num_cpus": max(1, int(threads)), "num_gpus": 1 if cluster_gpus > 0 else 0}


def _reporter(label: str, events) -> Callable[[dict[str, Any]], None] | None:
    if events is None:
        return None
    last = [0.0]

    def report(ev: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or ev["step"] == ev["total_steps"]:
            last[0] = now
            try:
                events.put_nowait({"label": label, **ev})
            except Exception:
                pass

    return report


def _do_job(kind: str, payload: dict[str, Any], db: str, threads: int, events=None) -> dict[str, Any]:
    """Run one pretraining or probe job in this process; returns a small summary."""
    import torch
    from transformers.utils import logging as hf_logging

    from bayes_dcpt.probe.configs import PretrainConfig, ProbeConfig, TrainSettings
    from bayes_dcpt.probe.pretraining import pretrain
    from bayes_dcpt.probe.run import run_probe

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(max(1, threads))
    payload = dict(payload)
    payload["train"] = TrainSettings(**payload["train"])
    label = payload.pop("_label")
    t0 = time.perf_counter()
    if kind == "pretrain":
        res = pretrain(PretrainConfig(**payload), progress=_reporter(label, events))
    else:
        res = run_probe(ProbeConfig(**payload), db=db, resume=True, progress=_reporter(label, events))
    return {
        "label": label,
        "kind": kind,
        "run_id": res.run_id,
        "n_params": res.n_params,
        "skipped": res.skipped,
        "tokens_per_second": res.tokens_per_second,
        "wall_seconds": time.perf_counter() - t0,
        "train_seconds": res.train_seconds,
        "tokens_trained": res.tokens_trained,
        "resumed_from_step": res.resumed_from_step,
    }


def _pool_job(kind: str, payload: dict[str, Any], db: str) -> dict[str, Any]:
    return _do_job(kind, payload, db, _WORKER.get("threads", 1), _WORKER.get("events"))


def job_payload(cfg: Any, label: str) -> dict[str, Any]:
    """A job's config as plain data for a worker process or a Ray task, with its progress label."""
    d = asdict(cfg)
    d["_label"] = label
    return d


def _drain(events, on_event) -> None:
    if events is None or on_event is None:
        return
    while True:
        try:
            ev = events.get_nowait()
        except (queue.Empty, OSError, EOFError):
            return
        on_event(ev)


def run_local(phase, db: str, workers: int, threads: int, on_event) -> list[dict[str, Any]]:
    """Run a phase's jobs in ``workers`` spawned processes (in this process when one worker and <= 1 GPU)."""
    ctx = mp.get_context("spawn")
    n_gpus = _gpu_count()
    counter = ctx.Value("i", 0)
    manager = ctx.Manager() if on_event is not None else None
    events = manager.Queue() if manager is not None else None
    out = []
    try:
        if workers == 1 and n_gpus <= 1:
            for kind, payload in phase:  # in-process: simplest, and tracebacks stay readable
                import torch

                old = torch.get_num_threads()
                res = _do_job(kind, payload, db, threads, None)
                torch.set_num_threads(old)
                out.append(res)
                if on_event:
                    on_event({"done": res})
            return out
        with ProcessPoolExecutor(
            max_workers=min(workers, len(phase)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(counter, n_gpus, threads, events),
        ) as pool:
            pending = {pool.submit(_pool_job, kind, payload, db) for kind, payload in phase}
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                _drain(events, on_event)
                for f in finished:
                    res = f.result()
                    out.append(res)
                    if on_event:
                        on_event({"done": res})
    finally:
        if manager is not None:
            manager.shutdown()
    return out


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def run_ray(
    phase, db: str, workers: int, threads: int, address: str | None, on_event
) -> list[dict[str, Any]]:
    """Run a phase's jobs as Ray tasks, at most ``workers`` at once (one GPU each when the cluster has GPUs)."""
    try:
        import ray
    except ImportError as exc:
        raise GridError("the ray executor needs Ray: pip install 'bayes-dcpt[ray]'") from exc
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers * threads, 1), include_dashboard=False, log_to_driver=False)
        started = True
    try:
        n_gpus = int(ray.cluster_resources().get("GPU", 0))
        task = ray.remote(**ray_resources(n_gpus, threads))(_do_job)
        out = []
        queue_ = list(phase)
        running: dict[Any, str] = {}
        while queue_ or running:
            while queue_ and len(running) < workers:
                kind, payload = queue_.pop(0)
                ref = task.remote(kind, payload, db, threads, None)
                running[ref] = payload["_label"]
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                running.pop(ref)
                res = ray.get(ref)
                out.append(res)
                if on_event:
                    on_event({"done": res})
        return out
    finally:
        if started:
            ray.shutdown()
