"""One probe, start to finish: continue a base model on the mixture at ratio r and store every loss as measured.

The base model is evaluated first (tokens == 0, stored once per (domain, N) under the base run id), then at
every point of :func:`~bayes_dcpt.probe.timeline.eval_tokens`. Before anything trains, the store decides
what the run does: skip a run already done, refuse to mix with stored measurements unless resuming or
forcing, and never write a measurement twice. The run's status is ``running`` while it trains, ``done``
(with throughput and the LR trace) at the end, ``failed`` if anything breaks.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bayes_dcpt.probe.checkpoint import checkpoint_path
from bayes_dcpt.probe.configs import ProbeConfig, ProbeConfigError, ProbeResult
from bayes_dcpt.probe.corpora import Corpus
from bayes_dcpt.probe.loop import ProgressFn, TrainJob, train
from bayes_dcpt.probe.networks import PRESETS, LoadedModel, build_preset, load_base
from bayes_dcpt.probe.pretraining import base_schedule
from bayes_dcpt.probe.runtime import Runtime, barrier, broadcast, mfu, runtime
from bayes_dcpt.probe.timeline import eval_tokens

__all__ = ["probe_run_id", "run_probe"]


def probe_run_id(domain_name: str, n_params: float, r_domain: float, seed: int, schedule_tag: str | None = None) -> str:
    """The run id of a probe: ``<domain>|N=<n>|r=<r>|seed=<seed>`` (as :mod:`bayes_dcpt.data.schema` derives it).

    ``|sched=<tag>`` is appended when the probe is one of several schedules of a grid.
    """
    rid = f"{domain_name}|N={float(n_params):.6g}|r={float(r_domain):.6g}|seed={seed}"
    return rid + (f"|sched={schedule_tag}" if schedule_tag else "")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load(base: str, seed: int, trust_remote_code: bool, max_len: int) -> LoadedModel:
    if base in PRESETS and not Path(base).exists():
        return build_preset(base, seed=seed, max_len=max(max_len, 1024))
    return load_base(base, trust_remote_code=trust_remote_code)


def _max_len(loaded: LoadedModel) -> int | None:
    cfg = getattr(loaded.model, "config", None)
    return getattr(cfg, "max_position_embeddings", None)


def _corpora(cfg: ProbeConfig, tok: Any) -> dict[str, Corpus]:
    """The general and domain corpora of the probe, each checked (readable, long enough, validation held out)."""
    corpora = {}
    for name, path, vpath in (
        ("general", cfg.general, cfg.val_general),
        ("domain", cfg.domain, cfg.val_domain),
    ):
        c = Corpus(
            Path(path),
            name=f"{name} ({cfg.domain_name})" if name == "domain" else name,
            val_fraction=cfg.val_fraction,
            val_tokens=cfg.val_tokens,
            val_path=Path(vpath) if vpath else None,
            text_field=cfg.text_field,
            encoder=tok.encode,
            eos=tok.eos_id,
        )
        c.check()
        corpora[name] = c
    return corpora


def _config_json(
    cfg: ProbeConfig, loaded: LoadedModel, points: list[int], per_step: int, pt_spec: str | None, rt: Runtime
) -> dict[str, Any]:
    """Everything about the run that the store keeps with it (settings, schedules, software, hardware)."""
    st, tok = cfg.train, loaded.tokenizer
    return {
        "probe": {k: v for k, v in asdict(cfg).items() if k != "train"},
        "train": asdict(st),
        "eval_points": points,
        "schedule": st.lr_schedule(int(cfg.tokens) // per_step).spec(),
        "base_schedule": pt_spec,
        "schedule_tag": cfg.schedule_tag,
        "tokens_per_step": per_step,
        "n_params_total": loaded.n_params_total,
        "tokenizer": tok.name,
        "loss_unit": "nats per byte" if tok.name == "bytes" else "nats per token",
        "torch": torch.__version__,
        "device": str(rt.device),
        "world_size": rt.world,
    }


def _decide(
    store: Any, run_id: str, base_id: str, ckpt: Path | None, resume: bool, force: bool
) -> dict[str, Any]:
    """What the run does given the store: ``action`` go, skip (done) or a refusal message; evaluations to skip."""
    decision: dict[str, Any] = {"action": "go", "skip": [], "replace": False}
    old = store.run(run_id)
    stored = store.evaluations(run_id)
    if old is not None and old["status"] == "done" and not force and len(stored):
        decision["action"] = "skip"
    elif len(stored) and not resume and not force:
        decision["action"] = (
            f"run {run_id!r} already has {len(stored)} stored measurements; resume it "
            "(--resume) or start it over (--force)"
        )
    skip: set[int] = set()
    if force and not resume:
        decision["replace"] = True
        if ckpt is not None and ckpt.exists() and decision["action"] == "go":
            ckpt.unlink()
    elif resume:
        both = stored.groupby("tokens")["eval_set"].nunique()
        skip = {int(t) for t, k in both.items() if k == 2}
    if not decision["replace"] and store.evaluations(base_id)["eval_set"].nunique() == 2:
        skip.add(0)
    decision["skip"] = sorted(skip)
    return decision


def _register(
    store: Any,
    cfg: ProbeConfig,
    loaded: LoadedModel,
    ids: tuple[str, str],
    pt: tuple[str | None, np.ndarray | None],
    config_json: dict[str, Any],
) -> None:
    """Record the base model's run (done) and this probe's run (running) before the first evaluation."""
    from bayes_dcpt.data.store import host_name

    base_id, run_id = ids
    pt_spec, pt_trace = pt
    common = {
        "model": loaded.name,
        "n_params": float(loaded.n_params),
        "base_checkpoint": str(cfg.base),
        "domain": cfg.domain_name,
        "corpus_general": str(cfg.general),
        "host": host_name(),
    }
    store.upsert_run(
        base_id,
        **common,
        corpus_domain=str(cfg.domain),
        status="done",
        config={"n_params_total": loaded.n_params_total, "tokenizer": loaded.tokenizer.name, "base_schedule": pt_spec},
    )
    if pt_trace is not None:
        store.set_lr_trace(base_id, "pretrain", pt_trace)
    store.upsert_run(
        run_id,
        **common,
        r_domain=float(cfg.r_domain),
        corpus_domain=str(cfg.domain),
        seed=cfg.seed,
        status="running",
        started_at=_now(),
        config=config_json,
    )


class _Recorder:
    """Receives every evaluation: stores it at once (with the LR trace so far) and keeps it for the result."""

    def __init__(self, store: Any, base_id: str, run_id: str, replace: bool, trace: list[float]):
        self.store, self.base_id, self.run_id, self.replace, self.trace = store, base_id, run_id, replace, trace
        self.evaluations: list[dict[str, Any]] = []

    def __call__(self, tokens: int, step: int, lr: float, losses: dict[str, float]) -> None:
        rid = self.base_id if tokens == 0 else self.run_id
        rows = [
            {"run_id": rid, "tokens": tokens, "eval_set": s, "loss": v, "step": step, "lr": lr if tokens else None}
            for s, v in losses.items()
        ]
        if self.store is not None:
            self.store.add_evaluations(rows, replace=self.replace)
            if tokens:
                self.store.set_lr_trace(self.run_id, "cpt", self.trace[:step])
        self.evaluations.extend(rows)


def _not_going(decision: dict[str, Any], store: Any, run_id: str, n_params: int, main: bool) -> ProbeResult:
    """The result of a run already done (skipped), or the refusal raised; closes the store either way."""
    stored_rows = store.evaluations(run_id).to_dict(orient="records") if store is not None else []
    if store is not None:
        store.close()
    if decision["action"] == "skip":
        return ProbeResult(run_id, n_params, stored_rows, 0, 0.0, 0.0, 0.0, None, skipped=True, main=main)
    raise ProbeConfigError(decision["action"])


def _mark_failed(store: Any, run_id: str) -> None:
    if store is None:
        return
    try:
        store.set_status(run_id, "failed", finished_at=_now())
    except Exception:  # the store itself may be the problem; keep the original error
        pass


def _train_and_store(
    cfg: ProbeConfig,
    loaded: LoadedModel,
    job: TrainJob,
    rec: _Recorder,
    rt: Runtime,
    config_json: dict[str, Any],
    wall0: float,
) -> ProbeResult:
    """Train the probe, then mark its run done with its throughput and LR trace; its checkpoint is removed."""
    timing = train(loaded, cfg.train, job, rt)
    tok_s = timing["tokens_trained"] / timing["train_seconds"] if timing["train_seconds"] > 0 else 0.0
    mfu_ = mfu(loaded, cfg.train, tok_s, rt)
    wall = time.perf_counter() - wall0
    if rec.store is not None:
        rec.store.set_lr_trace(rec.run_id, "cpt", rec.trace)
        done = {**config_json, "tokens_per_second": tok_s, "mfu": mfu_, "resumed_from_step": timing["start_step"]}
        rec.store.set_status(rec.run_id, "done", finished_at=_now(), wall_seconds=wall, config=done)
    if job.ckpt_path is not None and rt.main and job.ckpt_path.exists():
        job.ckpt_path.unlink()  # the run is complete and stored: its resume checkpoint has done its job
    barrier(rt)
    return ProbeResult(
        rec.run_id,
        loaded.n_params,
        rec.evaluations,
        timing["tokens_trained"],
        timing["train_seconds"],
        wall,
        tok_s,
        mfu_,
        resumed_from_step=timing["start_step"],
        main=rt.main,
    )


def run_probe(
    cfg: ProbeConfig,
    db: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> ProbeResult:
    """Run one probe and append every evaluation to the store ``db`` as it is measured.

    Parameters
    ----------
    cfg
        The probe (validated here, before anything is trained).
    db
        The experiment store (SQLite file).
    resume
        Continue from the run's checkpoint (``cfg.checkpoint_dir``) if there is one; measurements already
        stored are not repeated.
    force
        Re-run a run that is already stored (replacing its measurements).
    progress
        Called after every optimizer step with a dict (step, tokens, loss, lr, tokens_per_second).

    Returns
    -------
    ProbeResult
    """
    cfg.check()
    wall0 = time.perf_counter()
    with runtime(cfg.train) as rt:  # under torchrun: joins the process group, and leaves it once stored
        return _run(cfg, db, rt, resume, force, progress, wall0)


def _run(cfg: ProbeConfig, db: str | Path, rt: Runtime, resume: bool, force: bool, progress: ProgressFn | None,
         wall0: float) -> ProbeResult:
    """:func:`run_probe` on its runtime: load, decide (go, skip or refuse), train and store."""
    from bayes_dcpt.data.store import Store, base_run_id

    st = cfg.train
    loaded = _load(cfg.base, cfg.seed, cfg.trust_remote_code, st.seq_len + 1)
    max_len = _max_len(loaded)
    if max_len and st.seq_len + 1 > max_len:
        raise ProbeConfigError(f"seq_len {st.seq_len} exceeds the model's context ({max_len} positions)")
    corpora = _corpora(cfg, loaded.tokenizer)
    per_step = st.batch_size * st.seq_len
    extra = (cfg.probe_budget, 2 * cfg.probe_budget) if cfg.probe_budget else ()
    points = eval_tokens(int(cfg.tokens), per_step, cfg.eval_first, cfg.eval_per_octave, extra, cfg.eval_every)
    run_id = cfg.run_id or probe_run_id(cfg.domain_name, loaded.n_params, cfg.r_domain, cfg.seed, cfg.schedule_tag)
    pt_spec, pt_trace = base_schedule(loaded)
    base_id = base_run_id(cfg.domain_name, loaded.n_params)
    ckpt = checkpoint_path(cfg.checkpoint_dir, run_id)
    val = {name: c.validation() for name, c in corpora.items()}
    config_json = _config_json(cfg, loaded, points, per_step, pt_spec, rt)

    store = Store(db) if rt.main else None
    decision: dict[str, Any] = {"action": "go", "skip": [], "replace": False}
    if store is not None:
        decision = _decide(store, run_id, base_id, ckpt, resume, force)
    decision = broadcast(decision, rt)
    if decision["action"] != "go":
        return _not_going(decision, store, run_id, loaded.n_params, rt.main)
    try:
        if store is not None:
            _register(store, cfg, loaded, (base_id, run_id), (pt_spec, pt_trace), config_json)
        rec = _Recorder(store, base_id, run_id, bool(decision["replace"]), [])
        mixture = {"general": corpora["general"], "domain": corpora["domain"], "r": cfg.r_domain}
        job = TrainJob(mixture, int(cfg.tokens), points, val, cfg.seed, rec, ckpt, cfg.checkpoint_every,
                       set(decision["skip"]), progress, rec.trace)
        return _train_and_store(cfg, loaded, job, rec, rt, config_json, wall0)
    except BaseException:
        _mark_failed(store, run_id)
        raise
    finally:
        if store is not None:
            store.close()
