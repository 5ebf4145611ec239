"""Grid spec files: what a grid pretrains and which (size, domain, ratio, seed) probes it runs, checked up front.

The spec is TOML (or JSON with the same keys); relative paths are resolved against the work folder::

    [corpora]
    gather = "stdlib"                 # optional: write the offline example corpora first (if missing)
    general = "corpora/general.jsonl"
    [domains]                         # name = corpus path
    python = "corpora/python.jsonl"
    [pretrain]                        # one base model per size, saved under bases/<size> (skipped if present)
    tokens = 2097152
    lr = 3e-3
    schedule = "cosine"
    [probe]
    sizes = ["tiny", "small"]         # presets, or base-model directories (then no pretraining)
    ratios = [0.0, 0.5, 1.0]
    seeds = [0]
    tokens = 524288
    eval_first = 8192
    probe_budget = 32768
    [train]                           # TrainSettings shared by both phases (pretrain keys override)
    seq_len = 128
    batch_size = 16

The same probe under several CPT learning-rate schedules (for the CPT dynamics law): a ``schedules``
list in ``[probe]``, each entry a name plus training keys that override ``[train]``; every (size, domain,
ratio, seed) then runs once per schedule, with ``|sched=<name>`` in its run id::

    [probe]
    eval_every = 32768                # also evaluate every 32k tokens: whole loss curves
    schedules = [
      { name = "const", schedule = "constant", lr = 1e-3, warmup_steps = 10 },
      { name = "cos",   schedule = "cosine",   lr = 1e-3, warmup_steps = 10, min_lr_ratio = 0.1 },
      { name = "wsd",   schedule = "wsd",      lr = 1e-3, warmup_steps = 10, decay_frac = 0.2 },
    ]

Every error names the file and the section or key (:class:`GridError`); :func:`probe_config` and
:func:`pretrain_config` turn a job into the configs the runner takes. Running a grid: :mod:`~bayes_dcpt.probe.grid`.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bayes_dcpt.errors import BayesDCPTError

__all__ = ["GridError", "GridSpec", "Job", "load_spec", "pretrain_config", "probe_config"]


class GridError(BayesDCPTError):
    """A grid spec file is missing, unreadable or inconsistent."""


_TRAIN_KEYS = (
    "seq_len",
    "batch_size",
    "lr",
    "schedule",
    "warmup_steps",
    "min_lr_ratio",
    "decay_frac",
    "decay",
    "weight_decay",
    "beta1",
    "beta2",
    "grad_clip",
    "eval_batch_size",
    "device",
    "compile",
    "shuffle_tokens",
)
_PROBE_KEYS = (
    "sizes",
    "ratios",
    "seeds",
    "tokens",
    "eval_first",
    "eval_per_octave",
    "eval_every",
    "schedules",
    "probe_budget",
    "val_tokens",
    "val_fraction",
    "checkpoint_every",
    "text_field",
)
_PRETRAIN_KEYS = ("tokens", "seed", "out", "eval_points", *_TRAIN_KEYS)
#: Training keys a schedule entry may override.
_SCHEDULE_KEYS = ("schedule", "lr", "warmup_steps", "min_lr_ratio", "decay_frac", "decay")


@dataclass
class GridSpec:
    """A parsed grid: what to pretrain and which probes to run."""

    general: Path
    domains: dict[str, Path]
    sizes: list[str]
    ratios: list[float]
    seeds: list[int]
    tokens: int
    gather: str | None = None
    eval_first: int | None = None
    eval_per_octave: float = 1.0
    eval_every: int | None = None
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    probe_budget: int | None = None
    val_tokens: int = 32768
    val_fraction: float = 0.05
    checkpoint_every: int = 0
    text_field: str = "text"
    train: dict[str, Any] = field(default_factory=dict)
    pretrain: dict[str, Any] = field(default_factory=dict)
    workdir: Path = Path(".")
    source: str = ""

    def base_dir(self, size: str) -> Path:
        """Where the pretrained base model of a preset size is saved (``[pretrain] out``, default ``bases/``)."""
        out = Path(self.pretrain.get("out", "bases"))
        return (self.workdir / out / size) if not out.is_absolute() else out / size

    def base_for(self, size: str) -> str:
        """The base checkpoint of a size: a pretrained preset under ``bases/`` or the directory given."""
        from bayes_dcpt.probe.networks import PRESETS

        if size in PRESETS and self.pretrain:
            return str(self.base_dir(size))
        return size if size in PRESETS else str(self._path(size))

    def _path(self, p: str | Path) -> Path:
        p = Path(p)
        return p if p.is_absolute() else self.workdir / p

    def jobs(self) -> list[Job]:
        """Every probe of the grid, largest model first (the longest jobs start first)."""
        from bayes_dcpt.probe.networks import PRESETS

        order = {name: i for i, name in enumerate(PRESETS)}
        out = []
        scheds = list(self.schedules) or [None]
        for size in sorted(self.sizes, key=lambda s: -order.get(s, 99)):
            for dom in self.domains:
                for r in self.ratios:
                    for seed in self.seeds:
                        for sc in scheds:
                            out.append(Job(size, dom, float(r), int(seed), sc))
        return out


@dataclass(frozen=True)
class Job:
    """One probe of a grid."""

    size: str
    domain: str
    r_domain: float
    seed: int
    schedule: str | None = None

    @property
    def label(self) -> str:
        """``size/domain/r=<r>/seed=<seed>[/schedule]``: how progress and summaries name the job."""
        tail = f"/{self.schedule}" if self.schedule else ""
        return f"{self.size}/{self.domain}/r={self.r_domain:g}/seed={self.seed}{tail}"


def _num(d: dict, key: str, kind: type, where: str) -> Any:
    v = d[key]
    try:
        if kind is int:
            if isinstance(v, float) and not v.is_integer():
                raise ValueError
            return int(v)
        return kind(v)
    except (TypeError, ValueError) as exc:
        raise GridError(f"{where}: {key} must be {kind.__name__}, got {v!r}") from exc


def _check_sections(raw: dict[str, Any], src: str) -> None:
    """The sections and keys of a raw spec: required ones present, no unknown ones, known schedules."""
    from bayes_dcpt.probe.timeline import SCHEDULES

    for section in ("corpora", "domains", "probe"):
        if not isinstance(raw.get(section), dict):
            raise GridError(f"{src}: missing section [{section}]")
    unknown = set(raw) - {"corpora", "domains", "probe", "pretrain", "train", "meta"}
    if unknown:
        raise GridError(f"{src}: unknown section(s) {sorted(unknown)}")
    corpora, probe = raw["corpora"], raw["probe"]
    if "general" not in corpora:
        raise GridError(f"{src}: [corpora] needs general = <path>")
    gather = corpora.get("gather")
    if gather not in (None, "stdlib"):
        raise GridError(f'{src}: [corpora] gather must be "stdlib" (or absent), got {gather!r}')
    for k in ("sizes", "ratios", "tokens"):
        if k not in probe:
            raise GridError(f"{src}: [probe] needs {k}")
    bad = set(probe) - set(_PROBE_KEYS)
    if bad:
        raise GridError(f"{src}: unknown [probe] key(s) {sorted(bad)}; known: {', '.join(_PROBE_KEYS)}")
    train = dict(raw.get("train", {}))
    bad = set(train) - set(_TRAIN_KEYS)
    if bad:
        raise GridError(f"{src}: unknown [train] key(s) {sorted(bad)}; known: {', '.join(_TRAIN_KEYS)}")
    pre = dict(raw.get("pretrain", {}))
    bad = set(pre) - set(_PRETRAIN_KEYS)
    if bad:
        raise GridError(f"{src}: unknown [pretrain] key(s) {sorted(bad)}")
    if train.get("schedule", "constant") not in SCHEDULES or pre.get("schedule", "cosine") not in SCHEDULES:
        raise GridError(f"{src}: schedule must be one of {', '.join(SCHEDULES)}")


def load_spec(path: str | Path, workdir: str | Path | None = None) -> GridSpec:
    """Read and check a grid spec (TOML or JSON); relative paths resolve against ``workdir`` (or cwd)."""
    from bayes_dcpt.probe.networks import PRESETS

    p = Path(path)
    if not p.is_file():
        raise GridError(f"grid spec not found: {p}")
    try:
        raw = json.loads(p.read_text()) if p.suffix.lower() == ".json" else tomllib.loads(p.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise GridError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {exc}") from exc
    src = str(p)
    _check_sections(raw, src)
    corpora, probe = raw["corpora"], raw["probe"]
    gather = corpora.get("gather")
    train = dict(raw.get("train", {}))
    pre = dict(raw.get("pretrain", {}))
    scheds = _schedules(probe.get("schedules", []), train, src)
    ratios = [float(r) for r in probe["ratios"]]
    for r in ratios:
        if not (0.0 <= r <= 1.0) or math.isnan(r):
            raise GridError(f"{src}: [probe] ratios must be in [0, 1], got {r}")
    sizes = [str(s) for s in probe["sizes"]]
    wd = Path(workdir) if workdir is not None else Path.cwd()
    spec = GridSpec(
        general=Path(corpora["general"]),
        domains={str(k): Path(v) for k, v in raw["domains"].items()},
        sizes=sizes,
        ratios=ratios,
        seeds=[int(s) for s in probe.get("seeds", [0])],
        tokens=_num(probe, "tokens", int, src),
        gather=gather,
        eval_first=int(probe["eval_first"]) if "eval_first" in probe else None,
        eval_per_octave=float(probe.get("eval_per_octave", 1.0)),
        eval_every=_num(probe, "eval_every", int, src) if "eval_every" in probe else None,
        schedules=scheds,
        probe_budget=int(probe["probe_budget"]) if "probe_budget" in probe else None,
        val_tokens=int(probe.get("val_tokens", 32768)),
        val_fraction=float(probe.get("val_fraction", 0.05)),
        checkpoint_every=int(probe.get("checkpoint_every", 0)),
        text_field=str(probe.get("text_field", "text")),
        train=train,
        pretrain=pre,
        workdir=wd,
        source=src,
    )
    spec.general = spec._path(spec.general)
    spec.domains = {k: spec._path(v) for k, v in spec.domains.items()}
    if not spec.domains:
        raise GridError(f"{src}: [domains] is empty")
    for s in sizes:
        if s not in PRESETS and not spec._path(s).is_dir():
            raise GridError(
                f"{src}: unknown model preset or missing directory {s!r} (presets: {', '.join(PRESETS)})"
            )
    if gather is None:
        for name, path in [("general", spec.general), *spec.domains.items()]:
            if not path.exists():
                raise GridError(f"{src}: {name} corpus not found: {path}")
    return spec


def _schedules(raw: Any, train: dict[str, Any], src: str) -> dict[str, dict[str, Any]]:
    """The ``[probe] schedules`` list: ``{name: training-key overrides}``, each checked as a schedule."""
    from bayes_dcpt.probe.timeline import ScheduleError, train_schedule

    if not isinstance(raw, list):
        raise GridError(f"{src}: [probe] schedules must be a list of tables with a name")
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict) or not str(entry.get("name", "")).strip():
            raise GridError(f"{src}: [probe] schedules entry {i} needs a name")
        name = str(entry["name"]).strip()
        if "|" in name or "/" in name:
            raise GridError(f"{src}: schedule name {name!r} must not contain '|' or '/'")
        if name in out:
            raise GridError(f"{src}: schedule name {name!r} appears twice")
        keys = {k: v for k, v in entry.items() if k != "name"}
        bad = set(keys) - set(_SCHEDULE_KEYS)
        if bad:
            raise GridError(f"{src}: schedules entry {name!r}: unknown key(s) {sorted(bad)}; known: "
                            f"{', '.join(_SCHEDULE_KEYS)}")
        merged = {**train, **keys}
        try:
            train_schedule(100, float(merged.get("lr", 5e-4)), merged.get("schedule", "constant"),
                           int(merged.get("warmup_steps", 10)), float(merged.get("min_lr_ratio", 0.1)),
                           float(merged.get("decay_frac", 0.2)), merged.get("decay", "linear"))
        except (ScheduleError, TypeError, ValueError) as exc:
            raise GridError(f"{src}: schedules entry {name!r}: {exc}") from exc
        out[name] = keys
    return out


def _settings(spec: GridSpec, overrides: dict[str, Any], base: dict[str, Any] | None = None):
    from bayes_dcpt.probe.configs import TrainSettings

    kw = {**(base or {}), **{k: v for k, v in spec.train.items()}, **overrides}
    names = {f.name for f in fields(TrainSettings)}
    return TrainSettings(**{k: v for k, v in kw.items() if k in names})


def probe_config(spec: GridSpec, job: Job, checkpoint_dir: str | None = None):
    """The :class:`~bayes_dcpt.probe.configs.ProbeConfig` of one job."""
    from bayes_dcpt.probe.configs import ProbeConfig

    return ProbeConfig(
        base=spec.base_for(job.size),
        general=str(spec.general),
        domain=str(spec.domains[job.domain]),
        domain_name=job.domain,
        r_domain=job.r_domain,
        tokens=spec.tokens,
        seed=job.seed,
        eval_first=spec.eval_first,
        eval_per_octave=spec.eval_per_octave,
        eval_every=spec.eval_every,
        schedule_tag=job.schedule,
        probe_budget=spec.probe_budget,
        val_tokens=spec.val_tokens,
        val_fraction=spec.val_fraction,
        text_field=spec.text_field,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=spec.checkpoint_every,
        train=_settings(spec, spec.schedules.get(job.schedule, {}) if job.schedule else {}),
    )


def pretrain_config(spec: GridSpec, size: str):
    """The :class:`~bayes_dcpt.probe.configs.PretrainConfig` of one size."""
    from bayes_dcpt.probe.configs import PretrainConfig

    pre = dict(spec.pretrain)
    over = {k: pre[k] for k in _TRAIN_KEYS if k in pre}
    defaults = {"lr": 3e-3, "schedule": "cosine", "warmup_steps": 50}
    return PretrainConfig(
        preset=size,
        general=str(spec.general),
        tokens=int(pre.get("tokens", 2**21)),
        out=str(spec.base_dir(size)),
        seed=int(pre.get("seed", 0)),
        val_tokens=spec.val_tokens,
        val_fraction=spec.val_fraction,
        text_field=spec.text_field,
        eval_points=int(pre.get("eval_points", 4)),
        train=_settings(spec, over, defaults) if not over else _settings(spec, {**defaults, **over}),
    )
