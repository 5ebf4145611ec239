"""The training loop shared by pretraining and probes: mixture batches, optimizer steps, evaluations, checkpoints.

AdamW (no weight decay on vectors), gradient clipping, the learning rate of every step from the run's
schedule (recorded as trained), bf16 autocast and ``torch.compile`` on CUDA, fp32 on CPU. Each batch holds
``round(B * r)`` domain sequences in expectation (``floor(B r)`` plus one more with probability
``frac(B r)``, from a seeded generator), so the mixture is exact in expectation with the least variance.
The model is evaluated at every point of the run's evaluation schedule (0 = before training) and a
checkpoint follows every evaluation, so a resumed run continues exactly where the checkpoint left it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bayes_dcpt.probe.checkpoint import restore_checkpoint, save_checkpoint
from bayes_dcpt.probe.configs import ProbeConfigError, TrainSettings
from bayes_dcpt.probe.corpora import TokenStream
from bayes_dcpt.probe.evaluation import evaluate
from bayes_dcpt.probe.networks import LoadedModel
from bayes_dcpt.probe.runtime import Runtime, autocast, compile_wanted, fused_adamw, synchronize

__all__ = ["Mixture", "ProgressFn", "TrainJob", "stream_seed", "train"]

ProgressFn = Callable[[dict[str, Any]], None]


class Mixture:
    """Global batches with ``n_dom ~ floor(B r) + Bernoulli(frac(B r))`` domain sequences."""

    def __init__(
        self, general: TokenStream, domain: TokenStream | None, r: float, batch: int, rng: np.random.Generator
    ):
        self.general, self.domain, self.r, self.batch, self.rng = general, domain, r, batch, rng

    def next(self) -> np.ndarray:
        """The next global batch: domain sequences first, then general ones."""
        want = self.batch * self.r
        n_dom = math.floor(want)
        if self.rng.random() < want - n_dom:
            n_dom += 1
        parts = []
        if n_dom and self.domain is not None:
            parts.append(self.domain.take(n_dom))
        if self.batch - n_dom:
            parts.append(self.general.take(self.batch - n_dom))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def stream_seed(seed: int, which: int) -> int:
    """An independent seed for stream ``which`` (1 general, 2 domain, 3 mixture) of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, which]).generate_state(1)[0])


@dataclass
class TrainJob:
    """What one training run does.

    ``mixture`` holds the general corpus, the domain corpus (or None) and the domain share ``r``;
    ``points`` are the token counts to evaluate at (0 = before training); ``on_eval(tokens, step, lr,
    losses)`` receives every evaluation on rank 0. Evaluations at ``skip_eval`` are not repeated (already
    stored). The LR of every optimizer step is appended to ``lr_trace`` (restored from the checkpoint on
    resume), so the run's schedule is recorded as trained, not only at evaluations.
    """

    mixture: dict[str, Any]
    total_tokens: int
    points: list[int]
    val: dict[str, np.ndarray]
    seed: int
    on_eval: Callable[[int, int, float, dict[str, float]], None]
    ckpt_path: Path | None = None
    checkpoint_every: int = 0
    skip_eval: set[int] = field(default_factory=set)
    progress: ProgressFn | None = None
    lr_trace: list[float] | None = None


def _optimizer(model: torch.nn.Module, settings: TrainSettings, rt: Runtime) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(settings.beta1, settings.beta2),
        fused=fused_adamw(rt.device),
    )


def _mixture(job: TrainJob, settings: TrainSettings, state: dict[str, Any]) -> Mixture:
    """The run's batches, positioned where ``state`` (fresh, or from a checkpoint) says."""
    seq_len, seed = settings.seq_len, job.seed
    buf = settings.shuffle_sequences()
    gen = TokenStream(job.mixture["general"], seq_len, stream_seed(seed, 1), buffer=buf, position=state["gen_pos"])
    dom = (
        TokenStream(job.mixture["domain"], seq_len, stream_seed(seed, 2), buffer=buf, position=state["dom_pos"])
        if job.mixture.get("domain") is not None
        else None
    )
    rng = np.random.default_rng(stream_seed(seed, 3))
    if state.get("mix_rng"):
        rng.bit_generator.state = state["mix_rng"]
    return Mixture(gen, dom, float(job.mixture["r"]), settings.batch_size, rng)


def _wrap(model: torch.nn.Module, settings: TrainSettings, rt: Runtime) -> torch.nn.Module:
    """The module that trains: DDP around the model under ``torchrun``, compiled on CUDA (or when asked)."""
    train_model: torch.nn.Module = model
    if rt.ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    if compile_wanted(settings.compile, rt.device):
        train_model = torch.compile(train_model)
    return train_model


def _step(
    train_model: torch.nn.Module,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    local: np.ndarray,
    lr: float,
    settings: TrainSettings,
    rt: Runtime,
) -> float:
    """One optimizer step on this rank's share of the batch at learning rate ``lr``; returns its loss."""
    for g in opt.param_groups:
        g["lr"] = lr
    x = torch.from_numpy(local).to(rt.device, non_blocking=True)
    with autocast(rt):
        logits = train_model(input_ids=x[:, :-1]).logits
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    loss.backward()
    if settings.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    last_loss = float(loss.detach())
    synchronize(rt)
    return last_loss


def _evaluate_at(
    job: TrainJob, model: torch.nn.Module, settings: TrainSettings, rt: Runtime, tokens: int, step: int, lr: float
) -> None:
    if tokens in job.skip_eval:
        return
    T, eb = settings.seq_len, settings.eval_batch_size
    losses = {name: evaluate(model, arr, T, eb, rt) for name, arr in job.val.items()}
    if rt.main:
        job.on_eval(tokens, step, lr, losses)


def _checkpoint_at(
    job: TrainJob,
    rt: Runtime,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    mix: Mixture,
    trace: list[float],
    step: int,
) -> None:
    if job.ckpt_path is None or not rt.main:
        return
    st = {
        "step": step,
        "gen_pos": mix.general.position,
        "dom_pos": mix.domain.position if mix.domain else 0,
        "mix_rng": mix.rng.bit_generator.state,
        "lrs": trace[:step],
    }
    save_checkpoint(job.ckpt_path, model, opt, st)


def _progress_event(step: int, total_steps: int, per_step: int, loss: float, lr: float, tok_s: float) -> dict:
    return {
        "step": step + 1,
        "total_steps": total_steps,
        "tokens": (step + 1) * per_step,
        "total_tokens": total_steps * per_step,
        "loss": loss,
        "lr": lr,
        "tokens_per_second": tok_s,
    }


def train(loaded: LoadedModel, settings: TrainSettings, job: TrainJob, rt: Runtime) -> dict[str, Any]:
    """Train and evaluate ``loaded`` as ``job`` says; returns timing, the start step and the LR trace."""
    B, T = settings.batch_size, settings.seq_len
    if B % rt.world:
        raise ProbeConfigError(f"batch_size {B} must be divisible by the number of processes ({rt.world})")
    per_step = B * T
    total_steps = job.total_tokens // per_step
    lrs = settings.lr_schedule(total_steps).lrs()
    trace: list[float] = job.lr_trace if job.lr_trace is not None else []
    model = loaded.model.to(rt.device)
    model.train()
    opt = _optimizer(model, settings, rt)
    torch.manual_seed(job.seed)
    start_step = 0
    state: dict[str, Any] = {"gen_pos": 0, "dom_pos": 0, "mix_rng": None}
    if job.ckpt_path is not None and job.ckpt_path.is_file():
        state = restore_checkpoint(job.ckpt_path, model, opt)
        start_step = int(state["step"])
    trace[:] = [float(v) for v in state.get("lrs", lrs[:start_step].tolist())][:start_step]
    mix = _mixture(job, settings, state)
    train_model = _wrap(model, settings, rt)

    point_set = set(job.points)
    if start_step == 0 and 0 in point_set:
        _evaluate_at(job, model, settings, rt, 0, 0, 0.0)
    train_seconds, tokens_trained, last_loss = 0.0, 0, float("nan")
    t_start = time.perf_counter()
    for step in range(start_step, total_steps):
        t0 = time.perf_counter()
        batch = mix.next()
        local = batch[rt.rank :: rt.world] if rt.world > 1 else batch
        lr = float(lrs[step])
        trace.append(lr)
        last_loss = _step(train_model, model, opt, local, lr, settings, rt)
        train_seconds += time.perf_counter() - t0
        tokens_trained += per_step
        done = (step + 1) * per_step
        if job.progress is not None and rt.main:
            tok_s = tokens_trained / max(train_seconds, 1e-9)
            job.progress(_progress_event(step, total_steps, per_step, last_loss, lr, tok_s))
        if done in point_set:
            _evaluate_at(job, model, settings, rt, done, step + 1, lr)
            _checkpoint_at(job, rt, model, opt, mix, trace, step + 1)
        elif job.checkpoint_every and (step + 1) % job.checkpoint_every == 0:
            _checkpoint_at(job, rt, model, opt, mix, trace, step + 1)
    return {
        "train_seconds": train_seconds,
        "tokens_trained": tokens_trained,
        "loop_seconds": time.perf_counter() - t_start,
        "start_step": start_step,
        "last_loss": last_loss,
        "lr_trace": trace,
    }
