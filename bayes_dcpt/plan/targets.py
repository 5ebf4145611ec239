"""Planner targets: the quantity a plan is about, computed per posterior draw.

A :class:`Target` turns a posterior into draws of the quantity of interest (r* of a decision, the loss at
target runs, any callable) and applies a NaN policy and bounds, so that infeasible draws are counted instead
of silently poisoning the scores. :func:`make_target` builds one from a usage name and the inputs of
:mod:`bayes_dcpt.decide.usages`, which is what ``fit.suggest("tradeoff", ...)`` and the CLI call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayes_dcpt.decide import usages as decide_usages
from bayes_dcpt.decide.usages import usage_inputs
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.posterior.draws import Posterior
from bayes_dcpt.posterior.frames import prediction_frame

__all__ = [
    "NanPolicy",
    "Target",
    "TargetDraws",
    "as_target",
    "critical_ratio_target",
    "decision_target",
    "loss_target",
    "make_target",
    "target_callable",
    "target_draws",
]

NanPolicy = Literal["lower", "upper", "raise"] | float


@dataclass
class TargetDraws:
    """Target values per posterior draw, after the NaN policy and clipping.

    Attributes
    ----------
    z
        ``(S, m)`` values (m target components).
    n_nan
        Draws with a NaN/infinite value in any component (infeasible), before the policy replaced them.
    n_clipped
        Values moved onto ``bounds`` (outside it, or NaN set to a boundary).
    """

    name: str
    z: np.ndarray
    unit: str = ""
    labels: list[str] = field(default_factory=list)
    n_nan: int = 0
    n_clipped: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A quantity of interest computed per posterior draw.

    Parameters
    ----------
    name
        Label used in tables and plots.
    fn
        ``post -> array`` of shape ``(S,)`` or ``(S, m)``.
    unit
        Unit of the values (for axis labels).
    bounds
        Admissible range; values outside are clipped onto it and counted.
    on_nan
        What an infeasible (NaN) draw becomes: ``"lower"``/``"upper"`` bound, a number, or ``"raise"``.
    labels
        Names of the m components.
    domains
        The domains the quantity is about (empty when unknown, e.g. a user's callable): the planner says so when
        it picks probes of other domains, which inform the target only through what the fit shares.
    where
        The ``(domain, n_params, tokens, r_domain)`` points the quantity is read at (empty when unknown): the
        planner cautions when they lie farther out than the fit measured its law's error.
    """

    name: str
    fn: Callable[[Posterior], Any]
    unit: str = ""
    bounds: tuple[float, float] | None = None
    on_nan: NanPolicy = "raise"
    labels: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    where: tuple[tuple[str, float, float, float], ...] = ()

    def evaluate(self, post: Posterior) -> TargetDraws:
        """Compute the draws, apply the NaN policy and the bounds, and report what was changed."""
        try:
            raw = self.fn(post)
        except BayesDCPTError:
            raise
        except Exception as exc:  # a user callable failed: say which target
            raise BayesDCPTError(
                f"target {self.name!r} could not be computed: {type(exc).__name__}: {exc}"
            ) from exc
        z = np.array(raw, dtype=float)
        if z.ndim == 1:
            z = z[:, None]
        if z.ndim != 2 or z.shape[0] != post.n_draws:
            raise BayesDCPTError(
                f"target {self.name!r} must give one value (or one row) per draw: expected "
                f"shape ({post.n_draws},) or ({post.n_draws}, m), got {np.shape(raw)}"
            )
        bad = ~np.isfinite(z)
        n_nan = int(bad.any(axis=1).sum())
        notes = []
        clipped = 0
        if n_nan:
            if n_nan == z.shape[0] and self.on_nan in ("raise",):
                raise BayesDCPTError(f"target {self.name!r} is NaN (infeasible) for every posterior draw")
            if self.on_nan == "raise":
                raise BayesDCPTError(
                    f"target {self.name!r} is NaN (infeasible) for {n_nan} of {z.shape[0]} draws; "
                    "choose a NaN policy (on_nan='lower'/'upper'/value)"
                )
            if self.on_nan in ("lower", "upper"):
                if self.bounds is None:
                    raise BayesDCPTError(f"target {self.name!r}: on_nan={self.on_nan!r} needs bounds")
                fill = self.bounds[0] if self.on_nan == "lower" else self.bounds[1]
            else:
                fill = float(self.on_nan)
            z[bad] = fill
            clipped += int(bad.sum())
            notes.append(f"{n_nan} of {z.shape[0]} draws infeasible (NaN): set to {fill:g}, and counted so in the "
                         "interval widths here (an interval over the feasible draws alone, as optimize gives for r*, "
                         "can be narrower)")
        if self.bounds is not None:
            lo, hi = self.bounds
            out = (z < lo) | (z > hi)
            if out.any():
                clipped += int(out.sum())
                notes.append(f"{int(out.sum())} values outside [{lo:g}, {hi:g}] clipped to the boundary")
                z = np.clip(z, lo, hi)
        m = z.shape[1]
        labels = (
            list(self.labels)
            if len(self.labels) == m
            else ([self.name] if m == 1 else [f"{self.name}[{i}]" for i in range(m)])
        )
        return TargetDraws(self.name, z, self.unit, labels, n_nan, clipped, notes)


def target_draws(
    z: Any,
    name: str = "target",
    unit: str = "",
    *,
    bounds: tuple[float, float] | None = None,
    on_nan: NanPolicy = "raise",
) -> Target:
    """A target given directly as draws ``(S,)`` or ``(S, m)`` aligned with the posterior's draws."""
    arr = np.asarray(z, float)
    return Target(name, lambda post: arr, unit, bounds, on_nan)


def target_callable(
    fn: Callable[[Posterior], Any],
    name: str = "target",
    unit: str = "",
    *,
    bounds: tuple[float, float] | None = None,
    on_nan: NanPolicy = "raise",
) -> Target:
    """A target computed from the posterior by any callable ``post -> (S,) or (S, m)`` array."""
    return Target(name, fn, unit, bounds, on_nan)


def decision_target(usage: str, *, on_nan: NanPolicy = "lower", **kwargs: Any) -> Target:
    """r* of a usage of :mod:`bayes_dcpt.decide.usages` (e.g. ``"tradeoff"``) as a planner target.

    Calls ``getattr(bayes_dcpt.decide.usages, usage)(post, **kwargs).posterior["r_domain"]``; infeasible draws
    (NaN) become the lower boundary 0 by default (no domain data), and are counted in the plan.
    """

    def fn(post: Posterior) -> np.ndarray:
        func = getattr(decide_usages, usage, None)
        if not callable(func):
            raise BayesDCPTError(f"unknown decision usage {usage!r}")
        res = func(post, **kwargs)
        if not hasattr(res, "posterior"):
            raise BayesDCPTError(
                f"{usage} answered for several domains; pass domain=... to choose the target's"
            )
        return np.asarray(res.posterior["r_domain"], float).reshape(post.n_draws, -1)

    desc = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    doms = (str(kwargs["domain"]),) if kwargs.get("domain") is not None else ()
    scalar = all(isinstance(kwargs.get(k), (int, float)) for k in ("n_params", "tokens"))
    where = tuple((d, float(kwargs["n_params"]), float(kwargs["tokens"]), 0.5) for d in doms) if scalar else ()
    return Target(f"r* ({usage}{': ' + desc if desc else ''})", fn, "domain share", (0.0, 1.0), on_nan,
                  domains=doms, where=where)


def loss_target(
    points: pd.DataFrame | Mapping[str, Any], loss: Literal["general", "domain"] = "domain"
) -> Target:
    """The noise-free ``loss`` at one or more target configurations, per draw: shape ``(S, n_points)``.

    ``points`` are rows of ``domain, n_params, tokens, r_domain`` (a table or a mapping of columns). Beyond the
    data each draw carries its model discrepancy, as the decisions do.
    """
    if loss not in ("general", "domain"):
        raise BayesDCPTError(f"loss must be 'general' or 'domain', not {loss!r}")
    pts = pd.DataFrame(points) if not isinstance(points, pd.DataFrame) else points.copy()

    def fn(post: Posterior) -> np.ndarray:
        frame = prediction_frame(pts, post.domains)
        return np.exp(post.log_loss_with_discrepancy(frame, loss))

    labels = tuple(
        f"L_{loss}(N={float(n):.3g}, D={float(d):.3g}, r={float(r):.2f})"
        for n, d, r in zip(
            pts.get("n_params", []), pts.get("tokens", []), pts.get("r_domain", []), strict=False
        )
    )
    name = labels[0] if len(labels) == 1 else f"{loss} loss at {len(pts)} target points"
    doms = tuple(sorted({str(d) for d in pts["domain"]})) if "domain" in pts else ()
    cols = ("domain", "n_params", "tokens", "r_domain")
    where = (tuple((str(r[0]), float(r[1]), float(r[2]), float(r[3])) for r in pts[list(cols)].itertuples(index=False))
             if all(c in pts for c in cols) else ())
    return Target(name, fn, "nats/token", None, "raise", labels, doms, where)


def critical_ratio_target(
    domain: str,
    n_params: float,
    tokens: float,
    *,
    max_general_increase: float = 0.03,
    relative: bool = True,
    base_loss: float | None = None,
) -> Target:
    """The critical ratio r* of :func:`bayes_dcpt.decide.usages.tradeoff` at a target run, as a planner target.

    Per draw, the largest domain share whose general loss at ``(n_params, tokens)`` stays within
    ``max_general_increase`` of the base model's (relative, or absolute in nats when ``relative=False``).
    Draws where even r = 0 breaks the limit are infeasible: r* = 0 and counted.
    """
    kw: dict[str, Any] = {
        "domain": domain,
        "n_params": float(n_params),
        "tokens": float(tokens),
        "max_general_increase": float(max_general_increase),
        "relative": bool(relative),
    }
    if base_loss is not None:
        kw["base_loss"] = float(base_loss)
    inc = f"{max_general_increase:.3g}" + (" (relative)" if relative else " nats")
    t = decision_target("tradeoff", **kw)
    return Target(
        f"critical r* at N={n_params:.3g}, D={tokens:.3g}, +{inc}", t.fn, t.unit, t.bounds, t.on_nan,
        domains=t.domains, where=t.where,
    )


def as_target(obj: Any) -> Target:
    """Turn a :class:`Target`, draws, a callable or a table of target points into a :class:`Target`."""
    if isinstance(obj, Target):
        return obj
    if isinstance(obj, (pd.DataFrame, Mapping)):
        return loss_target(obj)
    if callable(obj):
        return target_callable(obj)
    if isinstance(obj, (np.ndarray, list, tuple)):
        return target_draws(obj)
    if isinstance(obj, str):
        raise BayesDCPTError(
            f"target {obj!r}: pass decision_target({obj!r}, ...) with the usage's arguments, or a Target"
        )
    raise BayesDCPTError(f"cannot use a {type(obj).__name__} as a planner target")


_USAGE_FUNCS = {"tradeoff": "tradeoff", "limited-data": "limited_data", "limited_data": "limited_data",
                "compute": "compute_allocation", "compute_allocation": "compute_allocation"}


def make_target(target: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """Split ``kwargs`` into a planner target built from a usage name and the remaining suggest options.

    ``target`` is a usage name (``"tradeoff"``, ``"limited-data"``, ``"compute"``) whose inputs are taken from
    ``kwargs``, or anything :func:`as_target` accepts.
    """
    if not isinstance(target, str):
        return as_target(target), kwargs
    name = target.strip().lower()
    if name not in _USAGE_FUNCS:
        raise BayesDCPTError(f"unknown target {target!r}; use tradeoff, limited-data or compute (or a Target)")
    usage = _USAGE_FUNCS[name]
    accepted = set(usage_inputs(name))
    tkw = {k: v for k, v in kwargs.items() if k in accepted}
    rest = {k: v for k, v in kwargs.items() if k not in accepted}
    if usage == "limited_data" and "tokens" in rest and "domain_tokens" not in tkw:
        tkw["domain_tokens"] = rest.pop("tokens")
    return decision_target(usage, **tkw), rest

