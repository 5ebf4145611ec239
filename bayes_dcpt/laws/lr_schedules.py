"""Learning-rate schedules and their exact forward and annealing areas (S1, S2) for the CPT dynamics law.

A :class:`Schedule` is either a named shape with its parameters or an explicit per-step LR array:

* ``constant``: linear warmup to ``peak``, then ``peak``;
* ``cosine``: warmup, then cosine from ``peak`` towards ``final``;
* ``linear``: warmup, then a straight line from ``peak`` to ``final`` at the last step;
* ``wsd`` (warmup-stable-decay): warmup, ``peak``, then a decay over the last ``decay_frac`` of the steps
  to ``final``, of shape ``decay`` = ``linear`` | ``cosine`` | ``sqrt`` (``sqrt``: the "1 - sqrt" cooldown);
* ``explicit``: any per-step LR sequence (e.g. what a probe recorded, or your own trainer's log).

The warmup is linear: ``lr_i = peak * i / warmup`` for steps ``i = 1..warmup`` (1-based optimizer steps).
The probe runner (:mod:`bayes_dcpt.probe`) trains with exactly :meth:`Schedule.lrs`, so a recorded LR
trace equals the schedule bit for bit.

Spec strings (what the ``schedule`` and ``base_schedule`` data columns hold)::

    cosine(peak=1e-3, steps=256, warmup=10, final=1e-4)
    wsd(peak=1e-3, steps=256, warmup=10, final=1e-4, decay_frac=0.2, decay=linear)
    {"kind": "constant", "peak": 5e-4, "steps": 256}          # JSON works too
    [0.0001, 0.0002, 0.0003]                                   # an explicit per-step list
    file:lrs/run7.npy                                          # explicit, from .npy / .csv / .txt

The areas (Tissue et al. 2024; Wang et al. 2025, ``../shared/laws.md`` section 6.3), for the LR ``eta_i``
of optimizer step ``i`` and the annealing momentum ``lambda`` (0.999 by default)::

    S1(t) = sum_{i <= t} eta_i                                        (forward area)
    m_i   = lambda * m_{i-1} + (eta_{i-1} - eta_i),  m_0 = 0,  eta_0 := max_i eta_i of the first phase
    S2(t) = sum_{i <= t} m_i = sum_{i <= t} sum_{k <= i} (eta_{k-1} - eta_k) lambda^(i-k)   (annealing area)

``eta_0`` is the first phase's peak LR: the momentum starts at rest at the peak, so a warmup from zero at the
start of training is not a (negative) anneal -- Tissue et al. leave the warmup out of S2 -- and after it
``S2`` is exactly the annealing area below the peak. Without a warmup ``eta_0 = eta_1``.

For continual pre-training the steps of the base pre-training (PT) and of the CPT phase run one after the
other; the LR changes are split by phase (a change at the first CPT step, from the last PT LR to the first
CPT LR, belongs to CPT), and by linearity ``S2 = S2pt + S2cpt`` exactly, where ``S2pt`` keeps evolving
during CPT as the PT momentum decays. A re-warmup (the CPT LR rising above the PT's final LR) makes
``S2cpt`` negative: the loss bumps up; an anneal makes it positive: the loss falls. ``S1pt`` is the PT's
whole forward area and ``S1cpt(s)`` the CPT area after ``s`` CPT steps. The CPT warmup is a re-warmup and
counts like any other LR change.

Quickstart::

    >>> from bayes_dcpt.laws.lr_schedules import Schedule, parse_schedule, phase_areas
    >>> pt = parse_schedule("cosine(peak=3e-3, steps=512, warmup=50, final=3e-4)")
    >>> cpt = Schedule("wsd", steps=256, peak=1e-3, warmup=10, final=1e-4)
    >>> a = phase_areas(cpt, pt, momentum=0.999)      # arrays over CPT steps 0..256
    >>> a.S1cpt[-1], a.S2cpt[-1]
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayes_dcpt.errors import InputError

__all__ = [
    "DECAY_SHAPES",
    "DEFAULT_MOMENTUM",
    "KINDS",
    "PhaseAreas",
    "Schedule",
    "ScheduleError",
    "annealing_area",
    "forward_area",
    "parse_schedule",
    "phase_areas",
]

KINDS = ("constant", "cosine", "linear", "wsd", "explicit")
DECAY_SHAPES = ("linear", "cosine", "sqrt")
#: The annealing momentum of Tissue et al. (2024) and Wang et al. (2025).
DEFAULT_MOMENTUM = 0.999
_MAX_STEPS = 10_000_000


class ScheduleError(InputError):
    """A schedule spec or its parameters are invalid (the message names the parameter)."""


# ============================================================================================ schedule
@dataclass(frozen=True, eq=False)
class Schedule:
    """A learning-rate schedule over ``steps`` optimizer steps.

    Parameters
    ----------
    kind
        ``constant``, ``cosine``, ``linear``, ``wsd`` or ``explicit``.
    steps
        Total optimizer steps (for ``explicit``: the length of ``values``).
    peak
        LR after the warmup (``explicit``: the largest value, informational).
    warmup
        Linear warmup steps (``lr_i = peak * i / warmup`` for ``i <= warmup``).
    final
        LR at the end of the decay (``cosine``, ``linear``, ``wsd``; default ``0.1 * peak``); a
        ``constant`` schedule has ``final = peak``.
    decay_frac
        ``wsd``: fraction of the steps in the final decay (rounded to whole steps, at least one).
    decay
        ``wsd``: decay shape, ``linear`` (default), ``cosine`` or ``sqrt``.
    values
        ``explicit``: the LR of every step, in order.
    """

    kind: str
    steps: int = 0
    peak: float = 0.0
    warmup: int = 0
    final: float | None = None
    decay_frac: float = 0.2
    decay: str = "linear"
    values: tuple[float, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ScheduleError(f"unknown schedule kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.kind == "explicit":
            if self.values is None:
                raise ScheduleError("an explicit schedule needs its per-step values")
            arr = np.asarray(self.values, dtype=float)
            if arr.ndim != 1 or arr.size == 0:
                raise ScheduleError("an explicit schedule needs a non-empty 1-D list of learning rates")
            if not np.all(np.isfinite(arr)) or (arr < 0).any():
                bad = int(np.flatnonzero(~np.isfinite(arr) | (arr < 0))[0]) + 1
                raise ScheduleError(f"explicit schedule: learning rates must be finite and >= 0 (step {bad})")
            object.__setattr__(self, "values", tuple(float(v) for v in arr))
            object.__setattr__(self, "steps", int(arr.size))
            object.__setattr__(self, "peak", float(arr.max()))
            return
        if self.values is not None:
            raise ScheduleError(f"a {self.kind} schedule takes no explicit values")
        steps = _whole("steps", self.steps, 1)
        if steps > _MAX_STEPS:
            raise ScheduleError(f"steps must be at most {_MAX_STEPS:,}, got {steps}")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "warmup", _whole("warmup", self.warmup, 0))
        if self.warmup > steps:
            raise ScheduleError(f"warmup ({self.warmup}) must not exceed steps ({steps})")
        peak = _real("peak", self.peak)
        if peak <= 0:
            raise ScheduleError(f"peak must be > 0, got {self.peak!r}")
        object.__setattr__(self, "peak", peak)
        if self.kind == "constant":
            if self.final is not None and not math.isclose(float(self.final), peak, rel_tol=1e-12):
                raise ScheduleError("a constant schedule has final = peak; use cosine, linear or wsd to decay")
            object.__setattr__(self, "final", peak)
        else:
            final = 0.1 * peak if self.final is None else _real("final", self.final)
            if final < 0 or final > peak:
                raise ScheduleError(f"final must be in [0, peak] = [0, {peak:g}], got {final:g}")
            object.__setattr__(self, "final", final)
        if self.kind == "wsd":
            frac = _real("decay_frac", self.decay_frac)
            if not 0 < frac <= 1:
                raise ScheduleError(f"decay_frac must be in (0, 1], got {self.decay_frac!r}")
            object.__setattr__(self, "decay_frac", frac)
            if self.decay not in DECAY_SHAPES:
                raise ScheduleError(f"decay must be one of {', '.join(DECAY_SHAPES)}, got {self.decay!r}")

    # ---------------------------------------------------------------------------------------- values
    def lrs(self) -> np.ndarray:
        """The LR of every optimizer step, shape ``(steps,)`` (entry ``i - 1`` is step ``i``)."""
        return self._lr0(np.arange(self.steps))

    def lr_at(self, step0: int) -> float:
        """The LR of the optimizer step with 0-based index ``step0`` (the same arithmetic as :meth:`lrs`)."""
        s = int(step0)
        if not 0 <= s < self.steps:
            raise ScheduleError(f"step index {s} is outside the schedule's 0..{self.steps - 1}")
        return float(self._lr0(np.array([s]))[0])

    def _lr0(self, s: np.ndarray) -> np.ndarray:
        """Vectorised LR at 0-based step indices ``s``."""
        if self.kind == "explicit":
            return np.asarray(self.values, float)[s]
        s = np.asarray(s, dtype=np.int64)
        sf = s.astype(float)
        peak, W, T = self.peak, self.warmup, self.steps
        lo = float(self.final)
        if self.kind == "constant":
            out = np.full(s.shape, peak)
        elif self.kind == "cosine":
            t = np.minimum(np.maximum(sf - W, 0.0) / max(T - W, 1), 1.0)
            out = lo + 0.5 * (peak - lo) * (1.0 + np.cos(np.pi * t))
        elif self.kind == "linear":
            t = np.clip((sf - W + 1.0) / max(T - W, 1), 0.0, 1.0)
            out = peak + (lo - peak) * t
        else:  # wsd
            n_dec = self.decay_steps
            start = T - n_dec
            t = np.clip((sf - start + 1.0) / n_dec, 0.0, 1.0)
            shape = {"linear": t, "cosine": 0.5 * (1.0 - np.cos(np.pi * t)), "sqrt": np.sqrt(t)}[self.decay]
            out = np.where(s < start, peak, peak + (lo - peak) * shape)
        if W > 0:
            out = np.where(s < W, peak * (sf + 1.0) / W, out)
        return np.asarray(out, float)

    @property
    def decay_steps(self) -> int:
        """``wsd``: the number of decay steps (``round(decay_frac * steps)``, at least one)."""
        return max(round(float(self.decay_frac * self.steps)), 1)

    # ------------------------------------------------------------------------------------ identity
    def spec(self) -> str:
        """Canonical spec string (parsed back by :func:`parse_schedule` to the same LRs, bit for bit).

        Explicit schedules give a JSON list.
        """
        if self.kind == "explicit":
            return json.dumps([float(v) for v in self.values])
        parts = [f"peak={_exact(self.peak)}", f"steps={self.steps}"]
        if self.warmup:
            parts.append(f"warmup={self.warmup}")
        if self.kind != "constant":
            parts.append(f"final={_exact(float(self.final))}")
        if self.kind == "wsd":
            parts.append(f"decay_frac={_exact(self.decay_frac)}")
            if self.decay != "linear":
                parts.append(f"decay={self.decay}")
        return f"{self.kind}({', '.join(parts)})"

    def key(self) -> str:
        """A short stable identity: the spec for named schedules, a hash of the values for explicit ones."""
        if self.kind != "explicit":
            return self.spec()
        h = hashlib.sha256(np.asarray(self.values, float).tobytes()).hexdigest()[:12]
        return f"explicit(steps={self.steps}, sha={h})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``{"kind": ..., ...}``; explicit schedules carry ``values``)."""
        if self.kind == "explicit":
            return {"kind": "explicit", "values": [float(v) for v in self.values]}
        d: dict[str, Any] = {"kind": self.kind, "peak": self.peak, "steps": self.steps, "warmup": self.warmup,
                             "final": float(self.final)}
        if self.kind == "wsd":
            d.update(decay_frac=self.decay_frac, decay=self.decay)
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __str__(self) -> str:
        return self.key()

    def truncated(self, steps: int) -> Schedule:
        """The first ``steps`` steps as an explicit schedule (e.g. a run stopped early)."""
        n = _whole("steps", steps, 1)
        if n > self.steps:
            raise ScheduleError(f"cannot truncate a {self.steps}-step schedule to {n} steps")
        return Schedule("explicit", values=tuple(self.lrs()[:n]))


def _exact(x: float) -> str:
    """The shortest text that reads back to exactly ``x`` (specs must reproduce the LRs bit for bit)."""
    return repr(float(x))


def _whole(name: str, v: Any, low: int) -> int:
    if isinstance(v, bool):
        raise ScheduleError(f"{name} must be a whole number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ScheduleError(f"{name} must be a whole number, got {v!r}") from None
    if not math.isfinite(f) or f != round(f):
        raise ScheduleError(f"{name} must be a whole number, got {v!r}")
    if f < low:
        raise ScheduleError(f"{name} must be >= {low}, got {v!r}")
    return int(f)


def _real(name: str, v: Any) -> float:
    if isinstance(v, bool):
        raise ScheduleError(f"{name} must be a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ScheduleError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ScheduleError(f"{name} must be finite, got {v!r}")
    return f


# ============================================================================================== parsing
_NAMED = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$", re.S)
_KEYS = {"peak", "steps", "warmup", "final", "decay_frac", "decay", "min_ratio", "lr", "total_steps",
         "warmup_steps", "min_lr_ratio"}


def parse_schedule(spec: Any, base_dir: str | Path | None = None) -> Schedule:
    """A :class:`Schedule` from a spec string, a dict, a list of LRs, an array or a Schedule.

    Accepted keys of named specs: ``peak`` (alias ``lr``), ``steps`` (``total_steps``), ``warmup``
    (``warmup_steps``), ``final`` or ``min_ratio`` (``min_lr_ratio``: ``final = min_ratio * peak``),
    ``decay_frac``, ``decay``. ``file:<path>`` reads an explicit schedule (``.npy``, or text/CSV with one LR
    per line, optionally under a header ``lr``) relative to ``base_dir``.

    Raises
    ------
    ScheduleError
        For anything that is not a valid schedule (the message says what and where).
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, np.ndarray) or (isinstance(spec, Sequence) and not isinstance(spec, str)):
        return Schedule("explicit", values=tuple(np.asarray(spec, dtype=float).ravel()))
    if isinstance(spec, Mapping):
        return _from_mapping(dict(spec))
    if not isinstance(spec, str):
        raise ScheduleError(f"cannot read a schedule from a {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise ScheduleError("empty schedule spec")
    if text.startswith("file:"):
        return _from_file(text[5:].strip(), base_dir)
    if text[0] in "[{":
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ScheduleError(f"schedule spec is not valid JSON: {exc}") from exc
        if isinstance(obj, list):
            try:
                vals = tuple(float(v) for v in obj)
            except (TypeError, ValueError) as exc:
                raise ScheduleError("an explicit schedule list must hold numbers") from exc
            return Schedule("explicit", values=vals)
        return _from_mapping(obj)
    m = _NAMED.match(text)
    if m is None:
        if text in KINDS:
            raise ScheduleError(f"schedule {text!r} needs its parameters, e.g. {text}(peak=1e-3, steps=1000)")
        raise ScheduleError(f"cannot read schedule spec {text!r}; write e.g. cosine(peak=1e-3, steps=1000, "
                            "warmup=10, final=1e-4)")
    kind, body = m.group(1).lower(), m.group(2)
    kw: dict[str, Any] = {"kind": kind}
    for part in [p for p in body.split(",") if p.strip()]:
        if "=" not in part:
            raise ScheduleError(f"schedule spec {text!r}: {part.strip()!r} is not key=value")
        k, v = (s.strip() for s in part.split("=", 1))
        kw[k.lower()] = v
    return _from_mapping(kw, text)


def _from_mapping(d: dict[str, Any], where: str | None = None) -> Schedule:
    src = f"schedule {where!r}: " if where else "schedule: "
    kind = str(d.pop("kind", d.pop("type", ""))).lower().strip()
    if not kind:
        raise ScheduleError(f"{src}missing 'kind' ({', '.join(KINDS)})")
    if kind == "explicit":
        vals = d.pop("values", d.pop("lrs", None))
        if vals is None:
            raise ScheduleError(f"{src}an explicit schedule needs 'values'")
        return Schedule("explicit", values=tuple(np.asarray(vals, dtype=float).ravel()))
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise ScheduleError(f"{src}unknown parameter(s) {unknown}; known: peak, steps, warmup, final, "
                            "min_ratio, decay_frac, decay")
    alias = {"lr": "peak", "total_steps": "steps", "warmup_steps": "warmup", "min_lr_ratio": "min_ratio"}
    kw: dict[str, Any] = {}
    for k, v in d.items():
        k = alias.get(k, k)
        if k in kw:
            raise ScheduleError(f"{src}parameter {k!r} given twice")
        kw[k] = v
    if "peak" not in kw or "steps" not in kw:
        raise ScheduleError(f"{src}needs peak and steps")
    ratio = kw.pop("min_ratio", None)
    if ratio is not None:
        if "final" in kw:
            raise ScheduleError(f"{src}give final or min_ratio, not both")
        if kind != "constant":
            kw["final"] = _real("min_ratio", ratio) * _real("peak", kw["peak"])
    if "decay" in kw:
        kw["decay"] = str(kw["decay"]).strip().lower()
    num = {k: (v if k == "decay" else _number_text(k, v)) for k, v in kw.items()}
    try:
        return Schedule(kind, **num)
    except ScheduleError as exc:
        raise ScheduleError(f"{src}{exc}") from None
    except TypeError as exc:  # pragma: no cover - guarded by the key check
        raise ScheduleError(f"{src}{exc}") from None


def _number_text(name: str, v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            raise ScheduleError(f"{name} must be a number, got {v!r}") from None
    return v


def _from_file(path: str, base_dir: str | Path | None) -> Schedule:
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    if not p.is_file():
        raise ScheduleError(f"schedule file not found: {p}")
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            lines = [ln.split(",")[-1].strip() for ln in p.read_text().splitlines() if ln.strip()]
            if lines and not _is_number(lines[0]):
                lines = lines[1:]  # a header such as "lr" or "step,lr"
            arr = np.asarray([float(x) for x in lines], float)
    except (OSError, ValueError) as exc:
        raise ScheduleError(f"cannot read the schedule file {p}: {exc}") from exc
    return Schedule("explicit", values=tuple(np.asarray(arr, float).ravel()))


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


# ============================================================================================== areas
def forward_area(lrs: Any) -> np.ndarray:
    """``S1(t) = sum_{i <= t} eta_i`` for ``t = 0..T``: shape ``(T + 1,)`` with ``S1(0) = 0``."""
    eta = np.asarray(lrs, float)
    return np.concatenate([[0.0], np.cumsum(eta)])


def _momentum(delta: np.ndarray, lam: float) -> np.ndarray:
    """The recursion ``m_i = lam * m_{i-1} + delta_i`` (``m_0 = 0``), as a first-order IIR filter."""
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -lam], delta)


def _check_momentum(momentum: float) -> float:
    lam = _real("momentum", momentum)
    if not 0 <= lam <= 1:
        raise ScheduleError(f"the annealing momentum lambda must be in [0, 1], got {momentum!r}")
    return lam


def annealing_area(lrs: Any, momentum: float = DEFAULT_MOMENTUM, eta0: float | None = None) -> np.ndarray:
    """``S2(t)`` for ``t = 0..T`` of one LR sequence: shape ``(T + 1,)`` with ``S2(0) = 0``.

    ``eta0`` is the LR before the first step (default: the sequence's peak, so a warmup is not an anneal).
    """
    eta = np.asarray(lrs, float)
    lam = _check_momentum(momentum)
    if eta.size == 0:
        return np.zeros(1)
    prev = np.concatenate([[eta.max() if eta0 is None else float(eta0)], eta[:-1]])
    return np.concatenate([[0.0], np.cumsum(_momentum(prev - eta, lam))])


@dataclass(frozen=True)
class PhaseAreas:
    """The four areas of the CPT law along a CPT run, at CPT steps ``0..T_cpt`` (index = CPT step).

    ``S1pt`` is a scalar (the whole PT forward area); the others are arrays of length ``T_cpt + 1``.
    """

    S1pt: float
    S1cpt: np.ndarray
    S2pt: np.ndarray
    S2cpt: np.ndarray
    momentum: float

    def at(self, steps: Any) -> dict[str, np.ndarray]:
        """The four areas at CPT steps ``steps`` (integers in ``0..T_cpt``)."""
        s = np.asarray(steps)
        if s.size and (np.any(s < 0) or np.any(s >= self.S1cpt.size) or np.any(s != np.round(s))):
            raise ScheduleError(f"CPT steps must be whole numbers in 0..{self.S1cpt.size - 1}")
        s = s.astype(np.int64)
        return {"S1pt": np.full(s.shape, self.S1pt), "S1cpt": self.S1cpt[s], "S2pt": self.S2pt[s],
                "S2cpt": self.S2cpt[s]}


def phase_areas(cpt: Schedule | Any | None, pt: Schedule | Any | None = None,
                momentum: float = DEFAULT_MOMENTUM) -> PhaseAreas:
    """The areas ``S1pt, S1cpt(s), S2pt(s), S2cpt(s)`` of a CPT run that continues a PT run, exactly.

    Parameters
    ----------
    cpt
        The CPT schedule (anything :func:`parse_schedule` reads); ``None``: no CPT steps (the base model).
    pt
        The base pre-training schedule; ``None``: CPT from scratch (``S1pt = S2pt = 0``).
    momentum
        The annealing momentum ``lambda`` in ``[0, 1]``.

    Notes
    -----
    The LR sequence is the PT steps followed by the CPT steps, with ``eta_0`` equal to the peak LR of the
    first phase (PT, or CPT when there is no PT). Each LR change ``eta_{k-1} - eta_k`` belongs to the phase of
    step ``k``; the momentum recursion runs separately on the two sets of changes (it is linear), so
    ``S2pt + S2cpt`` is the annealing area of the concatenated sequence. Cost ``O(T_pt + T_cpt)``.
    """
    lam = _check_momentum(momentum)
    eta_pt = parse_schedule(pt).lrs() if pt is not None else np.zeros(0)
    eta_c = parse_schedule(cpt).lrs() if cpt is not None else np.zeros(0)
    Tp, Tc = eta_pt.size, eta_c.size
    eta = np.concatenate([eta_pt, eta_c])
    if eta.size == 0:
        return PhaseAreas(0.0, np.zeros(1), np.zeros(1), np.zeros(1), lam)
    first = eta_pt if Tp else eta_c
    prev = np.concatenate([[first.max()], eta[:-1]])
    delta = prev - eta
    d_pt = np.where(np.arange(eta.size) < Tp, delta, 0.0)
    d_c = delta - d_pt
    s2pt_all = np.concatenate([[0.0], np.cumsum(_momentum(d_pt, lam))])
    s2c_all = np.concatenate([[0.0], np.cumsum(_momentum(d_c, lam))])
    idx = Tp + np.arange(Tc + 1)  # global step after s CPT steps
    return PhaseAreas(
        S1pt=float(eta_pt.sum()),
        S1cpt=forward_area(eta_c),
        S2pt=s2pt_all[idx],
        S2cpt=s2c_all[idx],
        momentum=lam,
    )
