"""Base models for probes: pretrain a preset from scratch on the general corpus, and read back its schedule.

:func:`pretrain` trains with the shared loop (:mod:`~bayes_dcpt.probe.loop`), evaluates the general loss at
a few evenly spaced points, and saves the model with a ``probe_meta.json`` (settings, loss curve,
throughput, the LR schedule as a spec string) and the per-step LR trace (``lr_trace.npy``).
:func:`base_schedule` reads both back, so a probe records the schedule its base model was trained with
(what the CPT dynamics law needs).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.probe.configs import PretrainConfig, ProbeConfigError, ProbeResult
from bayes_dcpt.probe.corpora import Corpus
from bayes_dcpt.probe.loop import ProgressFn, TrainJob, train
from bayes_dcpt.probe.networks import LoadedModel, build_preset, save_base
from bayes_dcpt.probe.runtime import Runtime, barrier, mfu, runtime
from bayes_dcpt.probe.timeline import train_schedule

__all__ = ["LR_TRACE_FILE", "base_schedule", "pretrain"]

#: The per-step LR record of a pretraining run, saved beside its weights.
LR_TRACE_FILE = "lr_trace.npy"


def base_schedule(loaded: LoadedModel) -> tuple[str | None, np.ndarray | None]:
    """The pre-training LR schedule of a base model (spec string) and its recorded per-step trace.

    Both come from the ``probe_meta.json`` (and ``lr_trace.npy``) that :func:`pretrain` writes; a base
    model from elsewhere has neither (``None``): give its schedule in the data's ``base_schedule`` column.
    """
    pre = loaded.meta.get("pretrain") if isinstance(loaded.meta, dict) else None
    if not isinstance(pre, dict):
        return None, None
    spec = pre.get("lr_schedule")
    if spec is None and isinstance(pre.get("train"), dict) and pre.get("tokens"):
        tr = pre["train"]
        try:
            steps = int(pre["tokens"]) // (int(tr["batch_size"]) * int(tr["seq_len"]))
            spec = train_schedule(steps, tr["lr"], tr.get("schedule", "cosine"), tr.get("warmup_steps", 0),
                                  tr.get("min_lr_ratio", 0.1), tr.get("decay_frac", 0.2),
                                  tr.get("decay", "linear")).spec()
        except (KeyError, TypeError, ValueError, BayesDCPTError):
            spec = None
    trace = None
    path = loaded.meta.get("path")
    if path and (Path(path) / LR_TRACE_FILE).is_file():
        trace = np.load(Path(path) / LR_TRACE_FILE, allow_pickle=False)
    return spec, trace


def _eval_points(total: int, per_step: int, n_points: int) -> list[int]:
    """0 and ``n_points`` evenly spaced token counts up to ``total``, on whole optimizer steps."""
    n_pts = max(n_points, 1)
    return sorted({0} | {max(1, round(total * (k + 1) / n_pts / per_step)) * per_step for k in range(n_pts)})


def pretrain(cfg: PretrainConfig, progress: ProgressFn | None = None) -> ProbeResult:
    """Train a preset from scratch on the general corpus and save it as a base model directory."""
    cfg.check()
    wall0 = time.perf_counter()
    with runtime(cfg.train) as rt:  # under torchrun: joins the process group, and leaves it once saved
        return _pretrain(cfg, rt, progress, wall0)


def _pretrain(cfg: PretrainConfig, rt: Runtime, progress: ProgressFn | None, wall0: float) -> ProbeResult:
    """:func:`pretrain` on its runtime."""
    st = cfg.train
    loaded = build_preset(cfg.preset, seed=cfg.seed, max_len=max(1024, st.seq_len + 1))
    corpus = Corpus(
        Path(cfg.general),
        name="general",
        val_fraction=cfg.val_fraction,
        val_tokens=cfg.val_tokens,
        text_field=cfg.text_field,
        encoder=loaded.tokenizer.encode,
        eos=loaded.tokenizer.eos_id,
    )
    stats = corpus.check()
    per_step = st.batch_size * st.seq_len
    total = (int(cfg.tokens) // per_step) * per_step
    if total < per_step:
        raise ProbeConfigError(f"tokens ({cfg.tokens}) must be at least one step ({per_step} tokens)")
    curve: list[dict[str, Any]] = []
    trace: list[float] = []

    def on_eval(tokens: int, step: int, lr: float, losses: dict[str, float]) -> None:
        curve.append({"tokens": tokens, "step": step, "lr": lr, "loss_general": losses["general"]})

    job = TrainJob({"general": corpus, "domain": None, "r": 0.0}, total, _eval_points(total, per_step, cfg.eval_points),
                   {"general": corpus.validation()}, cfg.seed, on_eval, progress=progress, lr_trace=trace)
    timing = train(loaded, st, job, rt)
    tok_s = timing["tokens_trained"] / timing["train_seconds"] if timing["train_seconds"] > 0 else 0.0
    wall = time.perf_counter() - wall0
    out = None
    if rt.main:
        meta = {
            "pretrain": {
                "corpus": str(cfg.general),
                "corpus_stats": stats,
                "tokens": total,
                "seed": cfg.seed,
                "train": asdict(st),
                "lr_schedule": st.lr_schedule(total // per_step).spec(),
                "curve": curve,
                "tokens_per_second": tok_s,
                "wall_seconds": wall,
                "torch": torch.__version__,
                "device": str(rt.device),
            }
        }
        out = str(save_base(loaded, cfg.out, meta))
        np.save(Path(out) / LR_TRACE_FILE, np.asarray(trace, dtype=np.float64), allow_pickle=False)
    barrier(rt)
    return ProbeResult(
        f"pretrain|{cfg.preset}|seed={cfg.seed}",
        loaded.n_params,
        curve,
        timing["tokens_trained"],
        timing["train_seconds"],
        wall,
        tok_s,
        mfu(loaded, st, tok_s, rt),
        out=out,
        main=rt.main,
    )
