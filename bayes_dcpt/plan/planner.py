"""What to run next: rank candidate probe runs by the information they give about your target, per GPU-hour.

After a fit, :func:`suggest` scores every candidate probe (a table of ``domain, n_params, tokens, r_domain``,
see :mod:`bayes_dcpt.plan.candidates`) by the moment-matched goal-oriented information ("MM-GOIG",
``../shared/planner.md``): how much one run -- its general and domain loss at every checkpoint, with a
per-run offset in the noise -- is expected to shrink the uncertainty of the target quantity (the optimal or
critical ratio r*, the loss of a target run, a set of target points), divided by its cost in GPU-hours
(:mod:`bayes_dcpt.plan.cost`). A batch of ``k`` probes (one per GPU) is chosen greedily with Gaussian
conditioning, so that it is not ``k`` copies of one probe; a GPU-hour budget is never exceeded. The top
candidates are checked by importance reweighting (simulated outcomes, PSIS), and a stopping rule says when
more probes are not worth it.

Targets (:class:`Target`): draws supplied directly (:func:`target_draws`), any callable ``post -> array``
(:func:`target_callable`), r* of any usage of :mod:`bayes_dcpt.decide.usages` (:func:`decision_target`, e.g.
``decision_target("tradeoff", domain="code", n_params=7e9, tokens=1e11, max_general_increase=0.03)``;
:func:`critical_ratio_target` is a shortcut for it), or the loss at target configurations
(:func:`loss_target`). Infeasible (NaN) draws are set to a boundary and counted.

Quickstart::

    >>> from bayes_dcpt import planner
    >>> cands = planner.candidates_from_menus(["code"], [0.5e9, 1.8e9], [2e9, 5e9], [0.1, 0.3, 0.5, 0.7, 0.9])
    >>> tgt = planner.critical_ratio_target("code", 7e9, 1e11, max_general_increase=0.03)   # 3% relative
    >>> plan = planner.suggest(post, cands, tgt, k=3, budget_gpu_hours=200)
    >>> print(plan.summary()); plan.to_csv("plan.csv"); plan.plot()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayes_dcpt import hooks
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.decide import usages as decide_usages
from bayes_dcpt.decide.usages import usage_inputs
from bayes_dcpt.errors import BayesDCPTError, DataValidationError, Problem
from bayes_dcpt.hooks import provides
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.plan.candidates import (
    DEFAULT_FIRST_FRACTION,
    DEFAULT_N_CHECKPOINTS,
    candidates_from_menus,
    checkpoint_frame,
    eval_checkpoints,
    read_candidates,
    validate_candidates,
)
from bayes_dcpt.plan.cost import CostModel, base_keys
from bayes_dcpt.plan.information import BlockNoise, Conditioner, Ensemble, is_information
from bayes_dcpt.posterior.draws import Posterior, as_posterior
from bayes_dcpt.posterior.frames import prediction_frame
from bayes_dcpt.posterior.noise import log_noise

__all__ = [
    "Plan",
    "Target",
    "TargetDraws",
    "as_target",
    "candidates_from_menus",
    "critical_ratio_target",
    "decision_target",
    "loss_target",
    "make_target",
    "plan_table",
    "read_candidates",
    "suggest",
    "suggest_for",
    "target_callable",
    "target_draws",
    "validate_candidates",
]

NanPolicy = Literal["lower", "upper", "raise"] | float


# ============================================================================================ targets
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
    """

    name: str
    fn: Callable[[Posterior], Any]
    unit: str = ""
    bounds: tuple[float, float] | None = None
    on_nan: NanPolicy = "raise"
    labels: tuple[str, ...] = ()

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
            notes.append(f"{n_nan} of {z.shape[0]} draws infeasible (NaN): set to {fill:g}")
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
    return Target(f"r* ({usage}{': ' + desc if desc else ''})", fn, "domain share", (0.0, 1.0), on_nan)


def loss_target(
    points: pd.DataFrame | Mapping[str, Any], loss: Literal["general", "domain"] = "domain"
) -> Target:
    """The noise-free ``loss`` at one or more target configurations (rows of ``domain, n_params, tokens,
    r_domain``), per draw: shape ``(S, n_points)``."""
    if loss not in ("general", "domain"):
        raise BayesDCPTError(f"loss must be 'general' or 'domain', not {loss!r}")
    pts = pd.DataFrame(points) if not isinstance(points, pd.DataFrame) else points.copy()

    def fn(post: Posterior) -> np.ndarray:
        frame = prediction_frame(pts, post.domains)
        return np.exp(post.mean_log_loss(frame, loss))

    labels = tuple(
        f"L_{loss}(N={float(n):.3g}, D={float(d):.3g}, r={float(r):.2f})"
        for n, d, r in zip(
            pts.get("n_params", []), pts.get("tokens", []), pts.get("r_domain", []), strict=False
        )
    )
    name = labels[0] if len(labels) == 1 else f"{loss} loss at {len(pts)} target points"
    return Target(name, fn, "nats/token", None, "raise", labels)


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
        f"critical r* at N={n_params:.3g}, D={tokens:.3g}, +{inc}", t.fn, t.unit, t.bounds, t.on_nan
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



# =============================================================================================== plan
@dataclass
class Plan:
    """A ranked batch of probe runs and the scores of every candidate.

    Attributes
    ----------
    table
        The batch, in pick order: ``rank``, the candidate columns, ``gpu_hours`` (marginal: a base model
        pre-trained for an earlier pick is not paid twice), ``cum_gpu_hours``, ``U_theta`` and ``U_z``
        (nats, conditional on the earlier picks), ``U_z_per_gpu_hour``, ``U_z_alone`` (unconditional),
        ``width_after_probe`` (expected target interval width after this probe alone),
        ``width_after_batch`` (after the batch so far), the predicted 90% loss bands at the final
        checkpoint (``pred_loss_<t>_lo/_med/_hi``) and the verification columns ``is_*`` when checked.
    scores
        Every candidate with its unconditional scores (``rank_score`` by ``U_z / gpu_hours^kappa``).
    first_pick
        How the first probe was chosen: ``"mm"`` (best moment-matched score), ``"is"`` (the importance-
        reweighting check ranked another candidate first beyond its Monte Carlo error) or ``"budget"`` (the
        budgeted greedy started from the most informative affordable probe).
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    target: str
    target_unit: str
    target_labels: list[str]
    current_width: float
    width_after_batch: float
    info_batch: float
    total_gpu_hours: float
    budget_gpu_hours: float | None
    k: int
    kappa: float
    ci: float
    stop: bool
    stop_reasons: list[str]
    checks: dict[str, Any]
    notes: list[str]
    cost_model: CostModel
    first_pick: str = "mm"

    # ------------------------------------------------------------------------------------- output
    def to_csv(self, path: str | Path) -> Path:
        """Write the batch table to ``path`` (CSV); returns the path."""
        p = Path(path)
        self.table.to_csv(p, index=False)
        return p

    def summary(self) -> str:
        """A few lines: the target, the batch, the expected interval width and the stopping checks."""
        u = f" {self.target_unit}" if self.target_unit else ""
        lines = [
            f"target: {self.target}",
            f"current {self.ci:.0%} interval width: {self.current_width:.4g}{u}",
        ]
        if self.table.empty:
            lines.append("no probe proposed")
        for _, r in self.table.iterrows():
            lines.append(
                f"  #{int(r['rank'])}: {r['domain']} N={r['n_params']:.3g} D={r['tokens']:.3g} "
                f"r={r['r_domain']:.3g} "
                f"| {r['gpu_hours']:.3g} GPU-h | U_z {r['U_z']:.3f} nats ({r['U_z_per_gpu_hour']:.3g}/GPU-h) "
                f"| width after batch {r['width_after_batch']:.4g}"
            )
        lines.append(
            f"batch: {len(self.table)} probe(s), {self.total_gpu_hours:.4g} GPU-h"
            + (f" of a {self.budget_gpu_hours:.4g} GPU-h budget" if self.budget_gpu_hours else "")
            + f", I(z; batch) = {self.info_batch:.3f} nats, expected width {self.width_after_batch:.4g}{u}"
        )
        c = self.checks
        lines.append(
            "stopping checks: width "
            + (
                f"{c['current_width']:.4g} vs tolerance {c['stop_width']:.4g}"
                if c.get("stop_width")
                else "(no tolerance set)"
            )
            + f"; best information per GPU-hour {c['best_info_per_gpu_hour']:.3g} nats/GPU-h"
            + (f" vs threshold {c['min_info_per_gpu_hour']:.3g}" if c.get("min_info_per_gpu_hour") else "")
        )
        if self.stop:
            lines.append("STOP: " + "; ".join(self.stop_reasons))
        for n in self.notes:
            lines.append(f"note: {n}")
        lines.append(f"cost: {self.cost_model.describe()}")
        return "\n".join(lines)

    def plot(self, *, figsize: tuple[float, float] = (13.0, 4.2)) -> Any:
        """Three panels: information vs cost of every candidate (batch marked), expected interval width
        against cumulative GPU-hours, and the predicted loss bands of the batch. Returns the Figure
        (:func:`bayes_dcpt.viz.plan.plot_plan`)."""
        return hooks.call("Plan.plot", self, figsize=figsize)


def plan_table(plan: Plan) -> Any:
    """A :class:`rich.table.Table` of the batch (for the CLI)."""
    from rich.table import Table

    u = f" [{plan.target_unit}]" if plan.target_unit else ""
    t = Table(
        title=f"Next probes for {plan.target}",
        caption=(
            f"current {plan.ci:.0%} width {plan.current_width:.4g}{u} -> {plan.width_after_batch:.4g} "
            "after the batch; "
            f"{plan.total_gpu_hours:.4g} GPU-h"
            + ("; STOP: " + "; ".join(plan.stop_reasons) if plan.stop else "")
        ),
    )
    for name, just in (
        ("#", "right"),
        ("domain", "left"),
        ("N", "right"),
        ("tokens", "right"),
        ("r_domain", "right"),
        ("GPU-h", "right"),
        ("U_z [nats]", "right"),
        ("U_z/GPU-h", "right"),
        ("U_theta [nats]", "right"),
        ("width after", "right"),
        ("loss_domain band", "right"),
        ("IS check", "left"),
    ):
        t.add_column(name, justify=just)
    for _, r in plan.table.iterrows():
        band = (
            f"{r['pred_loss_domain_lo']:.3f}-{r['pred_loss_domain_hi']:.3f}"
            if "pred_loss_domain_lo" in r and pd.notna(r["pred_loss_domain_lo"])
            else ""
        )
        check = ""
        if "is_U_z" in r and pd.notna(r.get("is_U_z")):
            check = f"{r['is_U_z']:.3f}+-{r['is_U_z_se']:.3f} (k^ {r['is_khat_median']:.2f})"
        t.add_row(
            str(int(r["rank"])),
            str(r["domain"]),
            f"{r['n_params']:.3g}",
            f"{r['tokens']:.3g}",
            f"{r['r_domain']:.3g}",
            f"{r['gpu_hours']:.3g}",
            f"{r['U_z']:.3f}",
            f"{r['U_z_per_gpu_hour']:.3g}",
            f"{r['U_theta']:.2f}",
            f"{r['width_after_batch']:.4g}",
            band,
            check,
        )
    return t


# ============================================================================================ suggest
def _canonical(cands: pd.DataFrame) -> pd.DataFrame:
    """Sort candidates into a canonical order (so the plan does not depend on the input order) and drop
    exact duplicate rows."""
    df = cands.copy()
    df["row"] = np.arange(1, len(df) + 1)
    extra = [c for c in df.columns if c not in ("domain", "n_params", "tokens", "r_domain", "row")]
    keys = [df[c].astype(str).to_numpy() for c in reversed(extra)]
    keys += [
        df["r_domain"].to_numpy(float),
        df["tokens"].to_numpy(float),
        df["n_params"].to_numpy(float),
        df["domain"].astype(str).to_numpy(),
    ]
    order = np.lexsort(keys)
    df = df.iloc[order].reset_index(drop=True)
    dup = df.drop(columns=["row"]).astype(str).duplicated()
    df = df[~dup.to_numpy()].reset_index(drop=True)
    df.attrs["n_duplicates"] = int(dup.sum())
    return df


def _check_candidates(post: Posterior, cands: pd.DataFrame, require_base: bool) -> None:
    problems = []
    unknown = ~cands["domain"].isin(post.domains)
    if unknown.any():
        names = sorted(set(cands.loc[unknown, "domain"]))
        problems.append(
            Problem(
                "domain",
                f"unknown domain(s) {names}; the fit knows {post.domains}",
                tuple(int(i) + 1 for i in np.flatnonzero(unknown.to_numpy())),
            )
        )
    ref = post.reference
    if require_base and ref is not None and len(ref):
        have = np.unique(ref["n_params"].to_numpy(float))
        known = np.isclose(cands["n_params"].to_numpy(float)[:, None], have[None, :], rtol=1e-6).any(axis=1)
        pays = np.zeros(len(cands), bool)
        if "pretrain_tokens" in cands:
            pays = np.nan_to_num(cands["pretrain_tokens"].to_numpy(float)) > 0
        bad = ~known & ~pays
        if bad.any():
            sizes = ", ".join(f"{x:.4g}" for x in have)
            problems.append(
                Problem(
                    "n_params",
                    f"no base checkpoint of this size (base models: {sizes}); add a "
                    "pretrain_tokens column to pay for pre-training it, or pass require_base=False",
                    tuple(int(i) + 1 for i in np.flatnonzero(bad)),
                )
            )
    if problems:
        raise DataValidationError(problems, source="candidates")


def _noise_moments(post: Posterior, idx: np.ndarray, w: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per target, ``(E[var of a checkpoint's noise], E[tau^2])`` over the (weighted) draws."""
    out = {}
    for t in post.targets:
        nz = post.noise.get(t)
        if nz is None or "sigma" not in nz:
            raise BayesDCPTError(f"the posterior has no noise draws for the {t} loss (noise['{t}']['sigma'])")
        s2 = np.asarray(nz["sigma"], float)[idx] ** 2
        if "nu" in nz:
            nu = np.maximum(np.asarray(nz["nu"], float)[idx], 2.5)
            s2 = s2 * nu / (nu - 2.0)
        t2 = np.asarray(nz["tau"], float)[idx] ** 2 if "tau" in nz else np.zeros_like(s2)
        out[t] = (s2, t2)
    return out


def _eti_width(z: np.ndarray, w: np.ndarray | None, ci: float) -> np.ndarray:
    q = weighted_quantile(z, [(1 - ci) / 2, 1 - (1 - ci) / 2], w, axis=0)
    return np.asarray(q[1] - q[0], float).reshape(-1)


def suggest(
    post: Posterior,
    candidates: pd.DataFrame,
    target: Any,
    *,
    k: int = 3,
    budget_gpu_hours: float | None = None,
    cost_model: CostModel | None = None,
    kappa: float = 1.0,
    verify_top: int = 10,
    seed: int = 0,
    stop_width: float | None = None,
    min_info_per_gpu_hour: float | None = None,
    allow_repeats: bool = True,
    singleton_check: bool = True,
    n_checkpoints: int = DEFAULT_N_CHECKPOINTS,
    first_fraction: float = DEFAULT_FIRST_FRACTION,
    max_draws: int = 2000,
    n_verify: int = 200,
    ci: float = CI_PROB,
    require_base: bool = True,
) -> Plan:
    """Rank candidate probes by expected information about ``target`` per GPU-hour and choose a batch.

    Parameters
    ----------
    post
        The fitted posterior (its importance weights, if any, are used).
    candidates
        Candidate probes (see :mod:`bayes_dcpt.plan.candidates`); validated here.
    target
        A :class:`Target`, draws ``(S,)``/``(S, m)``, a callable ``post -> draws``, or a table of target
        points.
    k
        Maximum number of probes in the batch (one per GPU).
    budget_gpu_hours
        Hard cap on the batch's GPU-hours. With ``singleton_check`` the plan maximises information within it
        (Leskovec et al. 2007: ratio-greedy vs the best affordable single probe, completed greedily).
    cost_model
        GPU-hour model (default :class:`~bayes_dcpt.plan.cost.CostModel`).
    kappa
        Cost exponent of the score ``U_z / gpu_hours^kappa`` (1: information per GPU-hour; 0: ignore cost).
    verify_top
        Check the top candidates by importance reweighting (``n_verify`` simulated outcomes each).
    seed
        Seed of the draw subsample, the verification and the predicted bands: same seed, same plan.
    stop_width
        Tolerance on the target's interval width: stop when reached (now, or by the batch so far).
    min_info_per_gpu_hour
        Do not propose probes giving fewer nats per GPU-hour than this.
    allow_repeats
        A candidate may be chosen twice in one batch (an independent replicate run).
    n_checkpoints, first_fraction
        Default evaluation schedule of candidates without their own.
    max_draws
        Score on at most this many draws (a seeded subsample; weights kept).
    ci
        Interval probability of the widths (equal-tailed).
    require_base
        Refuse candidates whose base model size is not among the fit's base models unless they pay for
        pre-training (``pretrain_tokens``).

    Returns
    -------
    Plan

    Notes
    -----
    Noise: each probe's outputs are the log losses at its checkpoints, general and domain, with covariance
    ``E[sigma^2] I + E[tau^2] 11^T`` per loss (posterior averages; Student-t checkpoint noise enters through
    its variance ``sigma^2 nu / (nu - 2)``, with ``nu`` floored at 2.5). ``U_theta`` is the information
    about the law's outputs (the noise parameters excluded). Widths after a probe scale the current
    equal-tailed interval by the Gaussian posterior-to-prior standard-deviation ratio of the target.
    """
    post = as_posterior(post)
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise BayesDCPTError(f"k must be a whole number >= 1, got {k!r}")
    if budget_gpu_hours is not None and not (np.isfinite(budget_gpu_hours) and budget_gpu_hours > 0):
        raise BayesDCPTError(f"budget_gpu_hours must be > 0, got {budget_gpu_hours!r}")
    if not (np.isfinite(kappa) and kappa >= 0):
        raise BayesDCPTError(f"kappa must be >= 0, got {kappa!r}")
    if stop_width is not None and not stop_width > 0:
        raise BayesDCPTError(f"stop_width must be > 0, got {stop_width!r}")
    if not 0 < ci < 1:
        raise BayesDCPTError(f"ci must be in (0, 1), got {ci!r}")
    cost_model = cost_model or CostModel()
    cands = candidates if candidates.attrs.get("bayes_dcpt_candidates") else validate_candidates(candidates)
    _check_candidates(post, cands, require_base)
    cands = _canonical(cands)
    notes: list[str] = []
    if cands.attrs.get("n_duplicates"):
        notes.append(f"{cands.attrs['n_duplicates']} duplicate candidate row(s) dropped")
    tgt = as_target(target)
    td = tgt.evaluate(post)
    notes += td.notes
    C = len(cands)

    # -------------------------------------------------------------------- draws used for scoring
    S_all = post.n_draws
    w_all = post.weights if post.weights is not None else np.full(S_all, 1.0 / S_all)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(S_all, size=max_draws, replace=False)) if S_all > max_draws else np.arange(S_all)
    sub = post.subset(idx)
    w = w_all[idx].copy()
    z = td.z[idx]
    scheds = eval_checkpoints(cands, n_checkpoints, first_fraction)
    long = checkpoint_frame(cands, scheds)
    targets = sub.targets
    logF = {t: sub.mean_log_loss(long, t) for t in targets}  # (S, rows)
    finite = np.ones(len(idx), bool)
    for t in targets:
        finite &= np.isfinite(logF[t]).all(axis=1)
    if not finite.all():
        notes.append(
            f"{int((~finite).sum())} of {len(idx)} draws give a non-finite law on some candidate; "
            "they get weight 0 in the scores"
        )
        w = np.where(finite, w, 0.0)
        for t in targets:
            logF[t] = np.where(finite[:, None], logF[t], 0.0)
    if w.sum() <= 0:
        raise BayesDCPTError("no posterior draw gives finite losses on the candidates")
    w = w / w.sum()
    noise = _noise_moments(sub, np.arange(len(idx)), w)

    # ---------------------------------------------------------- features: whitened output components
    lens = np.array([len(s) for s in scheds])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    nt = len(targets)
    Kmax = int(lens.max()) * nt

    def block(c_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F = np.zeros((len(c_idx), len(idx), Kmax))
        R = np.tile(np.eye(Kmax), (len(c_idx), 1, 1))
        for j, c in enumerate(c_idx):
            kc = lens[c]
            for b, t in enumerate(targets):
                cols = slice(b * kc, (b + 1) * kc)
                F[j, :, cols] = logF[t][:, starts[c] : starts[c] + kc]
                s2, t2 = noise[t]
                R[j, cols, cols] = float(w @ t2) + float(w @ s2) * np.eye(kc)
        return F, R

    chunk = max(1, int(4e7 // max(len(idx) * Kmax * 8, 1)))
    ens = Ensemble.from_chunks([block(np.arange(a, min(a + chunk, C))) for a in range(0, C, chunk)], z, w)
    cond = Conditioner(ens)
    sc0 = cond.scores()
    v0 = np.diag(cond.target_cov)
    width_now_comp = _eti_width(td.z, w_all, ci)
    current_width = float(width_now_comp.max())

    def width_from_var(vp: np.ndarray) -> np.ndarray:
        ratio = np.where(v0 > 0, np.sqrt(np.clip(vp / np.where(v0 > 0, v0, 1.0), 0, 1)), 1.0)
        return (ratio * width_now_comp).max(axis=-1)

    comp = cost_model.components(cands)
    hours = comp["gpu_hours"].to_numpy()
    score0 = sc0["U_z"] / hours**kappa
    scores = cands.copy()
    scores["gpu_hours"] = hours
    scores["U_theta"] = sc0["U_theta"]
    scores["U_z"] = sc0["U_z"]
    scores["U_z_per_gpu_hour"] = sc0["U_z"] / hours
    scores["score"] = score0
    scores["width_after_probe"] = width_from_var(sc0["v_post"])
    order0 = np.lexsort((np.arange(C), -score0))
    rank = np.empty(C, int)
    rank[order0] = np.arange(1, C + 1)
    scores["rank_score"] = rank
    scores["n_components"] = ens.rank

    # ---------------------------------------------------------------------- predicted loss bands
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    last = starts + lens - 1
    brng = np.random.default_rng([seed, 1])
    for t in targets:
        mu = logF[t][:, last]  # (S, C): each candidate's final checkpoint, a new run each
        y = np.exp(mu + log_noise(brng, sub.noise[t], np.arange(C), len(idx),
                                  mixing=bool(sub.ctx.get("run_mixing"))))
        q = weighted_quantile(y, [lo_q, 0.5, hi_q], w, axis=0)
        scores[f"pred_loss_{t}_lo"], scores[f"pred_loss_{t}_med"], scores[f"pred_loss_{t}_hi"] = (
            q[0],
            q[1],
            q[2],
        )

    # ------------------------------------------------------------- importance-reweighting check
    verified = order0[: max(0, min(verify_top, C))]
    is_cols = ["is_U_z", "is_U_z_se", "is_U_z_entropy", "is_khat_median", "is_frac_khat_bad", "is_ess_median"]
    for c_ in is_cols:
        scores[c_] = np.nan
    for c in verified:
        kc = lens[c]
        Fc = np.concatenate([logF[t][:, starts[c] : starts[c] + kc] for t in targets], axis=1)
        sig_cols, tau_cols = [], []
        for t in targets:
            s2, t2 = noise[t]
            sig_cols.append(np.sqrt(s2))
            tau_cols.append(np.sqrt(t2))
        bn = BlockNoise(
            tuple(np.arange(b * kc, (b + 1) * kc) for b in range(nt)),
            np.stack(sig_cols, axis=1),
            np.stack(tau_cols, axis=1),
        )
        res = is_information(Fc, bn, z, w, n_sim=n_verify, seed=int(seed) * 1_000_003 + int(c))
        scores.loc[c, "is_U_z"] = res["U_z_is"]
        scores.loc[c, "is_U_z_se"] = res["U_z_is_se"]
        scores.loc[c, "is_U_z_entropy"] = res["U_z_is_entropy"]
        scores.loc[c, "is_khat_median"] = res["khat_median"]
        scores.loc[c, "is_frac_khat_bad"] = res["frac_khat_bad"]
        scores.loc[c, "is_ess_median"] = res["ess_median"]
    first_pick = "mm"
    forced_first: int | None = None
    if len(verified) >= 2:
        ok = scores.loc[verified, "is_frac_khat_bad"].to_numpy() < 0.5
        if ok.all():
            is_score = scores.loc[verified, "is_U_z"].to_numpy() / hours[verified] ** kappa
            se = scores.loc[verified, "is_U_z_se"].to_numpy() / hours[verified] ** kappa
            j = int(np.argmax(is_score))
            if j != 0 and is_score[j] - is_score[0] > 2 * np.hypot(se[j], se[0]):
                forced_first = int(verified[j])
                first_pick = "is"
                notes.append(
                    "importance reweighting ranks another candidate first beyond its Monte Carlo error; "
                    "the batch starts with it"
                )

    # ------------------------------------------------------------------------------- greedy batch
    keys = base_keys(cands)
    best_info_per_hour = float(np.max(sc0["U_z"] / hours)) if C else 0.0
    checks = {
        "current_width": current_width,
        "stop_width": stop_width,
        "target_clipped_share": td.n_clipped / td.z.size,
        # an interval made of boundary values (infeasible draws) is not a resolved target
        "width_reached": bool(
            stop_width is not None and current_width <= stop_width and td.n_clipped / td.z.size <= 0.5
        ),
        "best_info_per_gpu_hour": best_info_per_hour,
        "min_info_per_gpu_hour": min_info_per_gpu_hour,
        "info_below_threshold": bool(
            min_info_per_gpu_hour is not None and best_info_per_hour < min_info_per_gpu_hour
        ),
    }
    stop_reasons: list[str] = []
    if checks["width_reached"]:
        stop_reasons.append(
            f"the {ci:.0%} interval width {current_width:.4g} is within the tolerance {stop_width:.4g}"
        )
    if checks["info_below_threshold"]:
        stop_reasons.append(
            f"no candidate gives {min_info_per_gpu_hour:.3g} nats per GPU-hour "
            f"(best {best_info_per_hour:.3g})"
        )

    def greedy(start: int | None) -> tuple[list[dict[str, Any]], float]:
        cd = Conditioner(ens)
        picks: list[dict[str, Any]] = []
        spent = 0.0
        paid: set[tuple[float, float]] = set()
        used = np.zeros(C, bool)
        while len(picks) < k:
            marg = cost_model.marginal_hours(cands, paid)
            sc = cd.scores()
            s = sc["U_z"] / marg**kappa
            feas = np.ones(C, bool)
            if budget_gpu_hours is not None:
                feas &= marg <= budget_gpu_hours - spent + 1e-9
            if not allow_repeats:
                feas &= ~used
            if not feas.any():
                break
            if start is not None and not picks:
                c = start
                if not feas[c]:
                    break
            else:
                s_masked = np.where(feas, s, -np.inf)
                c = int(np.argmax(s_masked))
            if min_info_per_gpu_hour is not None and sc["U_z"][c] / marg[c] < min_info_per_gpu_hour:
                break
            vp_alone = sc0["v_post"][c]
            cd.condition(c)
            vb = np.diag(cd.target_cov)
            spent += float(marg[c])
            if keys[c] is not None:
                paid.add(keys[c])
            used[c] = True
            picks.append(
                {
                    "cand": c,
                    "gpu_hours": float(marg[c]),
                    "cum_gpu_hours": spent,
                    "U_theta": float(sc["U_theta"][c]),
                    "U_z": float(sc["U_z"][c]),
                    "U_z_per_gpu_hour": float(sc["U_z"][c] / marg[c]),
                    "U_theta_alone": float(sc0["U_theta"][c]),
                    "U_z_alone": float(sc0["U_z"][c]),
                    "width_after_probe": float(width_from_var(vp_alone)),
                    "width_after_batch": float(width_from_var(vb)),
                    "repeat": bool(any(p["cand"] == c for p in picks)),
                }
            )
            if stop_width is not None and picks[-1]["width_after_batch"] <= stop_width:
                break
        return picks, cd.target_information()

    if stop_reasons:
        picks, info = [], 0.0
    else:
        picks, info = greedy(forced_first)
        if budget_gpu_hours is not None and singleton_check and C:
            afford = hours <= budget_gpu_hours
            if afford.any():
                best_single = int(np.argmax(np.where(afford, sc0["U_z"], -np.inf)))
                if not picks or picks[0]["cand"] != best_single:
                    alt, alt_info = greedy(best_single)
                    if alt_info > info + 1e-12:
                        picks, info = alt, alt_info
                        first_pick = "budget"
                        notes.append(
                            "budgeted greedy: starting from the most informative affordable probe gives "
                            "more information within the budget than the ratio-greedy batch"
                        )
        if not picks:
            if budget_gpu_hours is not None and not (hours <= budget_gpu_hours).any():
                stop_reasons.append(
                    f"no candidate fits the budget of {budget_gpu_hours:.4g} GPU-h "
                    f"(cheapest {hours.min():.4g})"
                )
            elif min_info_per_gpu_hour is not None:
                stop_reasons.append(f"no candidate gives {min_info_per_gpu_hour:.3g} nats per GPU-hour")

    cand_cols = [c for c in cands.columns]
    rows = []
    for r, p in enumerate(picks, start=1):
        c = p["cand"]
        row = {"rank": r, **{col: cands.iloc[c][col] for col in cand_cols}}
        row.update({kk: v for kk, v in p.items() if kk != "cand"})
        for col in scores.columns:
            if col.startswith(("pred_loss_", "is_")):
                row[col] = scores.iloc[c][col]
        row["verified"] = bool(np.isfinite(scores.iloc[c]["is_U_z"]))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        table = pd.DataFrame(
            columns=[
                "rank",
                *cand_cols,
                "gpu_hours",
                "cum_gpu_hours",
                "U_theta",
                "U_z",
                "U_z_per_gpu_hour",
                "U_theta_alone",
                "U_z_alone",
                "width_after_probe",
                "width_after_batch",
                "repeat",
                "verified",
            ]
        )
    total = float(table["gpu_hours"].sum()) if len(table) else 0.0
    width_after = float(table["width_after_batch"].iloc[-1]) if len(table) else current_width
    if td.n_nan:
        checks["target_infeasible_draws"] = td.n_nan
    return Plan(
        table=table,
        scores=scores,
        target=td.name,
        target_unit=td.unit,
        target_labels=td.labels,
        current_width=current_width,
        width_after_batch=width_after,
        info_batch=float(info),
        total_gpu_hours=total,
        budget_gpu_hours=budget_gpu_hours,
        k=int(k),
        kappa=float(kappa),
        ci=ci,
        stop=bool(stop_reasons),
        stop_reasons=stop_reasons,
        checks=checks,
        notes=notes,
        cost_model=cost_model,
        first_pick=first_pick,
    )


@provides("suggest")
def suggest_for(fit: Any, candidates: Any, target: Any = "tradeoff", *, k: int = 3,
                budget_gpu_hours: float | None = None, cost_model: CostModel | None = None, **kwargs: Any) -> Plan:
    """:func:`suggest` for a fit or posterior with the target given as a usage name and its inputs.

    What ``fit.suggest(...)`` calls; ``candidates`` may be a table or a CSV path.
    """
    tgt, rest = make_target(target, **kwargs)
    if isinstance(candidates, (str, Path)):
        candidates = read_candidates(candidates)
    return suggest(fit, candidates, tgt, k=k, budget_gpu_hours=budget_gpu_hours, cost_model=cost_model, **rest)
