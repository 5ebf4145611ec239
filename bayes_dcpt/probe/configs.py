"""What a probe or a pretraining run is asked to do, checked before anything is loaded, and what it measured.

:class:`TrainSettings` (optimiser, schedule, hardware) is shared by :class:`ProbeConfig` (continue a base model
on a general + domain mixture) and :class:`PretrainConfig` (train a preset from scratch); every ``check()``
raises :class:`ProbeConfigError` naming the bad setting, so a grid fails before its first step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.laws.lr_schedules import Schedule
from bayes_dcpt.probe.networks import PRESETS, ModelError
from bayes_dcpt.probe.timeline import DECAY_SHAPES, SCHEDULES, train_schedule

__all__ = ["LEGACY_SHUFFLE_TOKENS", "SHUFFLE_TOKENS", "PretrainConfig", "ProbeConfig", "ProbeConfigError",
           "ProbeResult", "TrainSettings", "check_base"]


class ProbeConfigError(BayesDCPTError, ValueError):
    """A probe or pretraining setting is invalid (caught before any training starts)."""


#: Tokens each training stream shuffles together (its buffer, in whole sequences): 2^23, so that a corpus up to
#: that size is read in a fresh random order every epoch. Corpora are files in an order (sorted sources, one
#: topic after another); a small buffer streams them in that order, and a probe's loss then moves with what text
#: comes next, not with the tokens trained: the long-CPT grid's runs, streamed through 66,048 tokens (512 of its
#: 129-token sequences, the buffer until 2026-12-06), drop in general loss where the general stream passes from the
#: language reference to the docstrings (BENCHMARKS.md, "The probes' data order"). Larger corpora are mixed within
#: 2^23-token stretches (about 70 MB per stream of byte tokens).
SHUFFLE_TOKENS = 2**23
#: The shuffle of the committed LR-schedule grid (512 sequences of 129 tokens): its grid file pins it, so that it
#: reproduces the committed table (the long-CPT and example grids were made again with shuffled streams).
LEGACY_SHUFFLE_TOKENS = 512 * 129


@dataclass
class TrainSettings:
    """Optimiser, schedule and hardware settings shared by pretraining and probes.

    ``shuffle_tokens``: how many tokens of each training stream are shuffled together (:data:`SHUFFLE_TOKENS`).
    """

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
    shuffle_tokens: int = SHUFFLE_TOKENS

    def shuffle_sequences(self) -> int:
        """The training streams' shuffle buffer in whole sequences (at least one)."""
        return max(1, int(self.shuffle_tokens) // (int(self.seq_len) + 1))

    def check(self) -> None:
        """Every setting that can be wrong, before anything is loaded."""
        for name in ("seq_len", "batch_size", "eval_batch_size", "shuffle_tokens"):
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

    def lr_schedule(self, total_steps: int) -> Schedule:
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
        check_base(self.base)
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
        """The preset, the token budget and the training settings."""
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
    #: Whether this process is rank 0, the one that stored the measurements (always, without ``torchrun``):
    #: under DDP every rank returns a result, and only rank 0's should be reported or exported.
    main: bool = True


def check_base(base: str) -> None:
    """A preset name, or a model directory with a ``config.json``; else a :class:`ModelError`."""
    p = Path(base)
    if base in PRESETS:
        return
    if not p.exists():
        raise ModelError(
            f"unknown model preset or missing directory {base!r} (presets: {', '.join(PRESETS)})"
        )
    if not p.is_dir() or not (p / "config.json").is_file():
        raise ModelError(f"{base} is not a model directory (no config.json)")
