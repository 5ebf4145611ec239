"""The probe training loop: pretrain a base model, or continue it on a general + domain mixture at ratio r.

Quickstart::

    >>> from bayes_dcpt.probe import ProbeConfig, run_probe
    >>> cfg = ProbeConfig(base="bases/tiny", general="corpora/general.jsonl", domain="corpora/python.jsonl",
    ...                   domain_name="python", r_domain=0.5, tokens=2**19, seed=0)
    >>> res = run_probe(cfg, db="runs.sqlite")       # every evaluation is committed as it is measured
    >>> res.tokens_per_second, res.run_id

The loop: AdamW, gradient clipping, a constant / cosine / WSD learning rate with warmup, bf16 autocast and
``torch.compile`` on CUDA, fp32 on CPU. Each batch holds ``round(B * r)`` domain sequences in expectation
(``floor(B r)`` plus one more with probability ``frac(B r)``, from a seeded generator), so the mixture
is exact in expectation with the least variance. The base model is evaluated first (tokens == 0, stored
once per (domain, N) under the base run id), then at every point of
:func:`~bayes_dcpt.probe.timeline.eval_tokens`.
A checkpoint (model, optimizer, data positions, random states) is written after every evaluation and every
``checkpoint_every`` steps, so ``resume=True`` continues a killed probe exactly; measurements already
stored are never written twice. Under ``torchrun`` (``WORLD_SIZE > 1``) the loop runs data-parallel
(DDP; gloo on CPU, NCCL on CUDA): every rank draws the same global batch and trains on its share.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.probe.corpora import Corpus, TokenStream
from bayes_dcpt.probe.networks import (
    PRESETS,
    CheckpointError,
    LoadedModel,
    ModelError,
    build_preset,
    load_base,
    safe_torch_load,
    save_base,
)
from bayes_dcpt.probe.timeline import DECAY_SHAPES, SCHEDULES, eval_tokens, train_schedule

__all__ = [
    "LR_TRACE_FILE",
    "PretrainConfig",
    "ProbeConfig",
    "ProbeConfigError",
    "ProbeResult",
    "TrainSettings",
    "base_schedule",
    "evaluate",
    "pretrain",
    "run_probe",
]

ProgressFn = Callable[[dict[str, Any]], None]
#: The per-step LR record of a pretraining run, saved beside its weights.
LR_TRACE_FILE = "lr_trace.npy"

#: Peak dense bf16 FLOP/s of common accelerators, for model FLOP utilisation (matched by name).
PEAK_FLOPS = {
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10": 125e12,
    "L4": 121e12,
    "4090": 165e12,
    "3090": 71e12,
    "V100": 125e12,
    "T4": 65e12,
}


class ProbeConfigError(BayesDCPTError, ValueError):
    """A probe or pretraining setting is invalid (caught before any training starts)."""


@dataclass
class TrainSettings:
    """Optimiser, schedule and hardware settings shared by pretraining and probes."""

    seq_len: int = 128
    batch_size: int = 16
    lr: float = 5e-4
    schedule: str = "constant"
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    decay_frac: float = 0.2
    decay: str = "linear"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_batch_size: int = 32
    device: str = "auto"
    compile: bool | None = None
    threads: int | None = None

    def check(self) -> None:
        for name in ("seq_len", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ProbeConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ProbeConfigError(f"lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ProbeConfigError(f"unknown schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")
        if self.decay not in DECAY_SHAPES:
            raise ProbeConfigError(f"unknown decay shape {self.decay!r}; use one of {', '.join(DECAY_SHAPES)}")
        if not 0.0 <= self.min_lr_ratio <= 1.0 or not 0.0 < self.decay_frac <= 1.0:
            raise ProbeConfigError("min_lr_ratio must be in [0, 1] and decay_frac in (0, 1]")
        if self.warmup_steps < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ProbeConfigError("warmup_steps, grad_clip and weight_decay must be >= 0")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ProbeConfigError(f"device must be auto, cpu or cuda[:i], not {self.device!r}")

    def lr_schedule(self, total_steps: int):
        """The run's :class:`~bayes_dcpt.laws.lr_schedules.Schedule` over ``total_steps`` optimizer steps."""
        return train_schedule(total_steps, self.lr, self.schedule, self.warmup_steps, self.min_lr_ratio,
                              self.decay_frac, self.decay)


@dataclass
class ProbeConfig:
    """One probe: continue ``base`` on a mixture with domain share ``r_domain`` for ``tokens`` tokens.

    ``base`` is a base-model directory (``probe pretrain`` output or any local Hugging Face causal LM)
    or a preset name (then the model starts from a random initialisation: for tests and smoke runs).
    ``probe_budget`` adds evaluation points at ``b`` and ``2b`` tokens (the DLC features k2, k3).
    """

    base: str
    general: str
    domain: str
    domain_name: str
    r_domain: float
    tokens: int
    seed: int = 0
    run_id: str | None = None
    eval_first: int | None = None
    eval_per_octave: float = 1.0
    eval_every: int | None = None
    schedule_tag: str | None = None
    probe_budget: int | None = None
    val_tokens: int = 32768
    val_fraction: float = 0.05
    val_general: str | None = None
    val_domain: str | None = None
    text_field: str = "text"
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    trust_remote_code: bool = False
    train: TrainSettings = field(default_factory=TrainSettings)

    def check(self) -> None:
        """Every setting a probe can get wrong, before anything is loaded."""
        r = self.r_domain
        if not isinstance(r, (int, float)) or not math.isfinite(r) or not 0.0 <= r <= 1.0:
            raise ProbeConfigError(f"r_domain must be in [0, 1], got {r}")
        if int(self.tokens) < 1:
            raise ProbeConfigError(f"tokens must be > 0, got {self.tokens}")
        if not self.domain_name or "|" in self.domain_name:
            raise ProbeConfigError(
                f"domain_name must be a non-empty name without '|', got {self.domain_name!r}"
            )
        if self.probe_budget is not None and not 0 < 2 * self.probe_budget <= self.tokens:
            raise ProbeConfigError(
                f"probe_budget b={self.probe_budget} needs 0 < 2b <= tokens ({self.tokens}) "
                "for the DLC features"
            )
        if self.checkpoint_every < 0:
            raise ProbeConfigError("checkpoint_every must be >= 0")
        if self.eval_per_octave <= 0:
            raise ProbeConfigError("eval_per_octave must be > 0")
        if self.eval_every is not None and int(self.eval_every) < 1:
            raise ProbeConfigError(f"eval_every must be > 0 tokens, got {self.eval_every}")
        if self.schedule_tag is not None and (not self.schedule_tag or "|" in self.schedule_tag):
            raise ProbeConfigError(f"schedule_tag must be a non-empty name without '|', got {self.schedule_tag!r}")
        _check_base(self.base)
        self.train.check()


@dataclass
class PretrainConfig:
    """Pretrain a preset from scratch on the general corpus (cosine schedule) and save it to ``out``."""

    preset: str
    general: str
    tokens: int
    out: str
    seed: int = 0
    val_tokens: int = 32768
    val_fraction: float = 0.05
    text_field: str = "text"
    eval_points: int = 4
    train: TrainSettings = field(
        default_factory=lambda: TrainSettings(lr=3e-3, schedule="cosine", warmup_steps=50, min_lr_ratio=0.1)
    )

    def check(self) -> None:
        if self.preset not in PRESETS:
            raise ProbeConfigError(
                f"unknown model preset {self.preset!r}; choose one of {', '.join(PRESETS)}"
            )
        if int(self.tokens) < 1:
            raise ProbeConfigError(f"tokens must be > 0, got {self.tokens}")
        self.train.check()


@dataclass
class ProbeResult:
    """What a probe (or a pretraining run) measured."""

    run_id: str
    n_params: int
    evaluations: list[dict[str, Any]]
    tokens_trained: int
    train_seconds: float
    wall_seconds: float
    tokens_per_second: float
    mfu: float | None
    resumed_from_step: int = 0
    skipped: bool = False
    out: str | None = None


def _check_base(base: str) -> None:
    p = Path(base)
    if base in PRESETS:
        return
    if not p.exists():
        raise ModelError(
            f"unknown model preset or missing directory {base!r} (presets: {', '.join(PRESETS)})"
        )
    if not p.is_dir() or not (p / "config.json").is_file():
        raise ModelError(f"{base} is not a model directory (no config.json)")


# ------------------------------------------------------------------------------------------- hardware
@dataclass
class _Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    ddp: bool = False
    autocast: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _runtime(settings: TrainSettings) -> _Runtime:
    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and settings.device != "cpu"
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise ProbeConfigError("device cuda requested but CUDA is not available")
    rank = 0
    if world > 1:
        import torch.distributed as dist

        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        dev = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(dev)
    else:
        dev = (
            torch.device(settings.device if settings.device.startswith("cuda") else "cuda")
            if cuda
            else torch.device("cpu")
        )
    return _Runtime(dev, rank, world, world > 1, autocast=dev.type == "cuda")


def _peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, v in PEAK_FLOPS.items():
        if key in name:
            return v
    return None


def _flops_per_token(n_params: int, layers: int, hidden: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N plus attention 12 L d T (the PaLM appendix B formula)."""
    return 6.0 * n_params + 12.0 * layers * hidden * seq_len


# ----------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(
    model: torch.nn.Module, tokens: np.ndarray, seq_len: int, batch_size: int, rt: _Runtime | None = None
) -> float:
    """Mean next-token loss (nats per token) over non-overlapping windows of ``tokens``."""
    rt = rt or _Runtime(next(model.parameters()).device)
    n = (len(tokens) - 1) // seq_len
    if n < 1:
        raise ProbeConfigError(
            f"the validation slice ({len(tokens)} tokens) is shorter than one sequence ({seq_len + 1})"
        )
    idx = np.arange(n)[rt.rank :: rt.world]
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=rt.device)
    for s in range(0, len(idx), batch_size):
        rows = idx[s : s + batch_size]
        x = np.stack([tokens[i * seq_len : i * seq_len + seq_len + 1] for i in rows])
        xt = torch.from_numpy(x).to(rt.device, non_blocking=True)
        with torch.autocast(rt.device.type, dtype=torch.bfloat16, enabled=rt.autocast):
            logits = model(input_ids=xt[:, :-1]).logits
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), xt[:, 1:].reshape(-1), reduction="sum"
        )
        total[0] += loss.double()
        total[1] += xt[:, 1:].numel()
    if rt.ddp:
        import torch.distributed as dist

        dist.all_reduce(total)
    model.train(was_training)
    return float(total[0] / total[1])


# ------------------------------------------------------------------------------------------ the loop
class _Mixture:
    """Global batches with ``n_dom ~ floor(B r) + Bernoulli(frac(B r))`` domain sequences."""

    def __init__(
        self, general: TokenStream, domain: TokenStream | None, r: float, batch: int, rng: np.random.Generator
    ):
        self.general, self.domain, self.r, self.batch, self.rng = general, domain, r, batch, rng

    def next(self) -> np.ndarray:
        want = self.batch * self.r
        n_dom = int(math.floor(want))
        if self.rng.random() < want - n_dom:
            n_dom += 1
        parts = []
        if n_dom and self.domain is not None:
            parts.append(self.domain.take(n_dom))
        if self.batch - n_dom:
            parts.append(self.general.take(self.batch - n_dom))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _stream_seed(seed: int, which: int) -> int:
    return int(np.random.SeedSequence([seed, which]).generate_state(1)[0])


def _save_ckpt(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    payload = {
        "model": {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()},
        "optim": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "state": json.dumps(state),
    }
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def _train(
    loaded: LoadedModel,
    mixture_args: dict[str, Any],
    settings: TrainSettings,
    total_tokens: int,
    points: list[int],
    val: dict[str, np.ndarray],
    seed: int,
    rt: _Runtime,
    on_eval: Callable[[int, int, float, dict[str, float]], None],
    ckpt_path: Path | None,
    checkpoint_every: int,
    skip_eval: set[int],
    progress: ProgressFn | None,
    lr_trace: list[float] | None = None,
) -> dict[str, Any]:
    """Train and evaluate; returns timing. ``points`` are token counts (0 = before training).

    The LR of every optimizer step is appended to ``lr_trace`` (restored from the checkpoint on resume),
    so the run's schedule is recorded as trained, not only at evaluations.
    """
    B, T = settings.batch_size, settings.seq_len
    if B % rt.world:
        raise ProbeConfigError(f"batch_size {B} must be divisible by the number of processes ({rt.world})")
    per_step = B * T
    total_steps = total_tokens // per_step
    lrs = settings.lr_schedule(total_steps).lrs()
    trace: list[float] = lr_trace if lr_trace is not None else []
    model = loaded.model.to(rt.device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(settings.beta1, settings.beta2),
        fused=rt.device.type == "cuda",
    )
    torch.manual_seed(seed)
    start_step = 0
    state: dict[str, Any] = {"gen_pos": 0, "dom_pos": 0, "mix_rng": None}
    if ckpt_path is not None and ckpt_path.is_file():
        ck = safe_torch_load(ckpt_path)
        try:
            _unwrap(model).load_state_dict(ck["model"])
            opt.load_state_dict(ck["optim"])
            torch.set_rng_state(ck["torch_rng"])
            state = json.loads(ck["state"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{ckpt_path}: checkpoint does not match this run ({exc})") from exc
        start_step = int(state["step"])
    trace[:] = [float(v) for v in state.get("lrs", lrs[:start_step].tolist())][:start_step]
    gen = TokenStream(mixture_args["general"], T, _stream_seed(seed, 1), position=state["gen_pos"])
    dom = (
        TokenStream(mixture_args["domain"], T, _stream_seed(seed, 2), position=state["dom_pos"])
        if mixture_args.get("domain") is not None
        else None
    )
    rng = np.random.default_rng(_stream_seed(seed, 3))
    if state.get("mix_rng"):
        rng.bit_generator.state = state["mix_rng"]
    mix = _Mixture(gen, dom, float(mixture_args["r"]), B, rng)

    train_model: torch.nn.Module = model
    if rt.ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    use_compile = settings.compile if settings.compile is not None else rt.device.type == "cuda"
    if use_compile:
        train_model = torch.compile(train_model)

    def do_eval(tokens: int, step: int, lr: float) -> None:
        if tokens in skip_eval:
            return
        losses = {name: evaluate(model, arr, T, settings.eval_batch_size, rt) for name, arr in val.items()}
        if rt.main:
            on_eval(tokens, step, lr, losses)

    def checkpoint(step: int) -> None:
        if ckpt_path is None or not rt.main:
            return
        st = {
            "step": step,
            "gen_pos": gen.position,
            "dom_pos": dom.position if dom else 0,
            "mix_rng": rng.bit_generator.state,
            "lrs": trace[:step],
        }
        _save_ckpt(ckpt_path, model, opt, st)

    point_set = set(points)
    if start_step == 0 and 0 in point_set:
        do_eval(0, 0, 0.0)
    train_seconds = 0.0
    tokens_trained = 0
    last_loss = float("nan")
    lr = float(lrs[min(start_step, max(total_steps - 1, 0))]) if total_steps else settings.lr
    t_start = time.perf_counter()
    for step in range(start_step, total_steps):
        t0 = time.perf_counter()
        batch = mix.next()
        local = batch[rt.rank :: rt.world] if rt.world > 1 else batch
        lr = float(lrs[step])
        trace.append(lr)
        for g in opt.param_groups:
            g["lr"] = lr
        x = torch.from_numpy(local).to(rt.device, non_blocking=True)
        with torch.autocast(rt.device.type, dtype=torch.bfloat16, enabled=rt.autocast):
            logits = train_model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        loss.backward()
        if settings.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        last_loss = float(loss.detach())
        if rt.device.type == "cuda":
            torch.cuda.synchronize(rt.device)
        train_seconds += time.perf_counter() - t0
        tokens_trained += per_step
        done = (step + 1) * per_step
        if progress is not None and rt.main:
            progress(
                {
                    "step": step + 1,
                    "total_steps": total_steps,
                    "tokens": done,
                    "total_tokens": total_steps * per_step,
                    "loss": last_loss,
                    "lr": lr,
                    "tokens_per_second": tokens_trained / max(train_seconds, 1e-9),
                }
            )
        if done in point_set:
            do_eval(done, step + 1, lr)
            checkpoint(step + 1)
        elif checkpoint_every and (step + 1) % checkpoint_every == 0:
            checkpoint(step + 1)
    return {
        "train_seconds": train_seconds,
        "tokens_trained": tokens_trained,
        "loop_seconds": time.perf_counter() - t_start,
        "start_step": start_step,
        "last_loss": last_loss,
        "lr_trace": trace,
    }


def _layers_hidden(model: torch.nn.Module) -> tuple[int, int]:
    cfg = getattr(_unwrap(model), "config", None)
    return int(getattr(cfg, "num_hidden_layers", 0) or 0), int(getattr(cfg, "hidden_size", 0) or 0)


def _mfu(loaded: LoadedModel, settings: TrainSettings, tok_s: float, rt: _Runtime) -> float | None:
    peak = _peak_flops(rt.device)
    if peak is None or tok_s <= 0:
        return None
    layers, hidden = _layers_hidden(loaded.model)
    return tok_s * _flops_per_token(loaded.n_params, layers, hidden, settings.seq_len) / (peak * rt.world)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load(base: str, seed: int, trust_remote_code: bool, max_len: int) -> LoadedModel:
    if base in PRESETS and not Path(base).exists():
        return build_preset(base, seed=seed, max_len=max(max_len, 1024))
    return load_base(base, trust_remote_code=trust_remote_code)


def _max_len(loaded: LoadedModel) -> int | None:
    cfg = getattr(loaded.model, "config", None)
    return getattr(cfg, "max_position_embeddings", None)


def probe_run_id(domain_name: str, n_params: float, r_domain: float, seed: int, schedule_tag: str | None = None) -> str:
    """The run id of a probe: ``<domain>|N=<n>|r=<r>|seed=<seed>`` (as :mod:`bayes_dcpt.data.schema` derives it),
    with ``|sched=<tag>`` appended when the probe is one of several schedules of a grid."""
    rid = f"{domain_name}|N={float(n_params):.6g}|r={float(r_domain):.6g}|seed={seed}"
    return rid + (f"|sched={schedule_tag}" if schedule_tag else "")


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
    from bayes_dcpt.data.store import Store, base_run_id, host_name

    cfg.check()
    wall0 = time.perf_counter()
    st = cfg.train
    rt = _runtime(st)
    loaded = _load(cfg.base, cfg.seed, cfg.trust_remote_code, st.seq_len + 1)
    max_len = _max_len(loaded)
    if max_len and st.seq_len + 1 > max_len:
        raise ProbeConfigError(f"seq_len {st.seq_len} exceeds the model's context ({max_len} positions)")
    tok = loaded.tokenizer
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
    per_step = st.batch_size * st.seq_len
    extra = (cfg.probe_budget, 2 * cfg.probe_budget) if cfg.probe_budget else ()
    points = eval_tokens(int(cfg.tokens), per_step, cfg.eval_first, cfg.eval_per_octave, extra, cfg.eval_every)
    n_params = loaded.n_params
    run_id = cfg.run_id or probe_run_id(cfg.domain_name, n_params, cfg.r_domain, cfg.seed, cfg.schedule_tag)
    cpt_schedule = st.lr_schedule(int(cfg.tokens) // per_step)
    pt_spec, pt_trace = base_schedule(loaded)
    base_id = base_run_id(cfg.domain_name, n_params)
    ckpt = Path(cfg.checkpoint_dir) / (_safe_name(run_id) + ".pt") if cfg.checkpoint_dir else None
    val = {name: c.validation() for name, c in corpora.items()}
    config_json = {
        "probe": {k: v for k, v in asdict(cfg).items() if k != "train"},
        "train": asdict(st),
        "eval_points": points,
        "schedule": cpt_schedule.spec(),
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

    store = Store(db) if rt.main else None
    decision: dict[str, Any] = {"action": "go", "skip": [], "replace": False}
    if store is not None:
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
    decision = _broadcast(decision, rt)
    if decision["action"] != "go":
        stored_rows = store.evaluations(run_id).to_dict(orient="records") if store is not None else []
        if store is not None:
            store.close()
        if decision["action"] == "skip":
            return ProbeResult(run_id, n_params, stored_rows, 0, 0.0, 0.0, 0.0, None, skipped=True)
        raise ProbeConfigError(decision["action"])
    replace = bool(decision["replace"])
    skip = set(decision["skip"])
    try:
        if store is not None:
            common = {
                "model": loaded.name,
                "n_params": float(n_params),
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
                config={"n_params_total": loaded.n_params_total, "tokenizer": tok.name, "base_schedule": pt_spec},
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
        evaluations: list[dict[str, Any]] = []
        trace: list[float] = []

        def on_eval(tokens: int, step: int, lr: float, losses: dict[str, float]) -> None:
            rid = base_id if tokens == 0 else run_id
            rows = [
                {
                    "run_id": rid,
                    "tokens": tokens,
                    "eval_set": s,
                    "loss": v,
                    "step": step,
                    "lr": lr if tokens else None,
                }
                for s, v in losses.items()
            ]
            if store is not None:
                store.add_evaluations(rows, replace=replace)
                if tokens:
                    store.set_lr_trace(run_id, "cpt", trace[:step])
            evaluations.extend(rows)

        mixture = {"general": corpora["general"], "domain": corpora["domain"], "r": cfg.r_domain}
        timing = _train(
            loaded,
            mixture,
            st,
            int(cfg.tokens),
            points,
            val,
            cfg.seed,
            rt,
            on_eval,
            ckpt,
            cfg.checkpoint_every,
            skip,
            progress,
            trace,
        )
        tok_s = timing["tokens_trained"] / timing["train_seconds"] if timing["train_seconds"] > 0 else 0.0
        mfu = _mfu(loaded, st, tok_s, rt)
        wall = time.perf_counter() - wall0
        if store is not None:
            store.set_lr_trace(run_id, "cpt", trace)
            store.set_status(
                run_id,
                "done",
                finished_at=_now(),
                wall_seconds=wall,
                config={
                    **config_json,
                    "tokens_per_second": tok_s,
                    "mfu": mfu,
                    "resumed_from_step": timing["start_step"],
                },
            )
        if ckpt is not None and rt.main and ckpt.exists():
            ckpt.unlink()  # the run is complete and stored: its resume checkpoint has done its job
        _barrier(rt)
        return ProbeResult(
            run_id,
            n_params,
            evaluations,
            timing["tokens_trained"],
            timing["train_seconds"],
            wall,
            tok_s,
            mfu,
            resumed_from_step=timing["start_step"],
        )
    except BaseException:
        if store is not None:
            try:
                store.set_status(run_id, "failed", finished_at=_now())
            except Exception:  # the store itself may be the problem; keep the original error
                pass
        raise
    finally:
        if store is not None:
            store.close()


def _safe_name(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=+" else "_" for c in run_id)


def _barrier(rt: _Runtime) -> None:
    if rt.ddp:
        import torch.distributed as dist

        dist.barrier()


def _broadcast(obj: Any, rt: _Runtime) -> Any:
    """Rank 0's value on every rank."""
    if not rt.ddp:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def pretrain(cfg: PretrainConfig, progress: ProgressFn | None = None) -> ProbeResult:
    """Train a preset from scratch on the general corpus and save it as a base model directory."""
    cfg.check()
    wall0 = time.perf_counter()
    st = cfg.train
    rt = _runtime(st)
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
    n_pts = max(cfg.eval_points, 1)
    pts = sorted({0} | {max(1, round(total * (k + 1) / n_pts / per_step)) * per_step for k in range(n_pts)})
    curve: list[dict[str, Any]] = []
    trace: list[float] = []

    def on_eval(tokens: int, step: int, lr: float, losses: dict[str, float]) -> None:
        curve.append({"tokens": tokens, "step": step, "lr": lr, "loss_general": losses["general"]})

    timing = _train(
        loaded,
        {"general": corpus, "domain": None, "r": 0.0},
        st,
        total,
        pts,
        {"general": corpus.validation()},
        cfg.seed,
        rt,
        on_eval,
        None,
        0,
        set(),
        progress,
        trace,
    )
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
    _barrier(rt)
    return ProbeResult(
        f"pretrain|{cfg.preset}|seed={cfg.seed}",
        loaded.n_params,
        curve,
        timing["tokens_trained"],
        timing["train_seconds"],
        wall,
        tok_s,
        _mfu(loaded, st, tok_s, rt),
        out=out,
    )
