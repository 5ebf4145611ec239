"""Closed-loop experiment planning: suggest -> run -> update (or refit) -> suggest ..., resumable.

:class:`PlannerLoop` alternates

1. choosing a batch of ``k`` probes (the planner's :func:`~bayes_dcpt.plan.planner.suggest`, or a baseline:
   ``"uniform"`` grid coverage, ``"random"``, ``"cheapest"`` first);
2. running them through an :class:`Executor`: :class:`SimulatorExecutor` answers from a known law
   (:class:`bayes_dcpt.plan.simulate.World`), :class:`TableExecutor` reveals the measured curves of a grid of
   real runs (pool-based: every run of the grid is a candidate, each can be chosen once), and the probe
   runner can be wrapped the same way;
3. updating the posterior by PSIS reweighting (:func:`bayes_dcpt.plan.update.update`) when that is reliable
   (k-hat < 0.7 and an ESS of at least ``min_ess``), else calling ``refit(all_data) -> Posterior`` (the seam
   for the PyMC fit; :class:`bayes_dcpt.smc.SMCRefit` is a fast numpy stand-in);

and records every round (probes, GPU-hours, the target's interval width, the update diagnostics). With a
``state_dir`` every result is stored as it lands (``data.csv``, ``rounds.jsonl``, ``posterior.npz``,
``plan_round<N>.csv``, ``config.json``) and :meth:`PlannerLoop.resume` continues after an interruption.

Quickstart::

    >>> from bayes_dcpt.plan.loop import PlannerLoop, SimulatorExecutor
    >>> loop = PlannerLoop(candidates=cands, target=tgt, executor=SimulatorExecutor(world), refit=refit,
    ...                    posterior=post, data=df, k=4, budget_gpu_hours=500, stop_width=0.05,
    ...                    state_dir="run1")
    >>> result = loop.run(); result.history
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.data import schema as _data
from bayes_dcpt.encoding import dumps
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.laws.registry import get_law
from bayes_dcpt.plan.candidates import eval_checkpoints, validate_candidates
from bayes_dcpt.plan.cost import CostModel
from bayes_dcpt.plan.planner import Target, as_target, suggest
from bayes_dcpt.plan.simulate import World
from bayes_dcpt.plan.update import update
from bayes_dcpt.posterior.draws import Posterior, weighted_quantile

__all__ = [
    "STRATEGIES",
    "Executor",
    "LoopResult",
    "PlannerLoop",
    "SimulatorExecutor",
    "TableExecutor",
    "baseline_order",
    "gpu_hours_to_width",
    "load_posterior",
    "save_posterior",
]

STRATEGIES = ("planner", "uniform", "random", "cheapest")


# ============================================================================================ executors
class Executor(Protocol):
    """Runs probes and returns their measured rows (schema of :mod:`bayes_dcpt.data.schema`, with ``run_id``)."""

    def run(self, probes: pd.DataFrame, *, round: int) -> pd.DataFrame: ...


@dataclass
class SimulatorExecutor:
    """Answers probes from a known law: losses at every checkpoint with run offsets and noise.

    Each probe becomes a new run (``run_id`` = ``sim-r<round>-p<i>``); outcomes are seeded by
    ``(seed, round)``, so a resumed loop sees the same outcomes as an uninterrupted one.
    """

    world: World
    seed: int = 0
    n_checkpoints: int = 8
    first_fraction: float = 0.02
    pool: bool = False

    def run(self, probes: pd.DataFrame, *, round: int) -> pd.DataFrame:
        probes = probes.reset_index(drop=True)
        scheds = eval_checkpoints(probes, self.n_checkpoints, self.first_fraction)
        parts = []
        for i, ck in enumerate(scheds):
            row = probes.iloc[i]
            parts.append(
                pd.DataFrame(
                    {
                        "domain": row["domain"],
                        "n_params": float(row["n_params"]),
                        "tokens": ck,
                        "r_domain": float(row["r_domain"]),
                        "run_id": f"sim-r{round}-p{i}",
                    }
                )
            )
        grid = pd.concat(parts, ignore_index=True)
        seed = int(np.random.SeedSequence([self.seed, round]).generate_state(1)[0])
        return self.world.simulate(grid, seed=seed, base_rows=False)


@dataclass
class TableExecutor:
    """Pool-based executor over a measured grid: choosing a run reveals its measured rows.

    :meth:`candidates` lists every run once (its ``tokens`` is the run's last checkpoint and its
    ``checkpoints`` the measured ones); :meth:`base_rows` gives the base-model rows (tokens == 0).
    """

    table: pd.DataFrame
    pool: bool = True

    def __post_init__(self) -> None:
        self.table = _data.load(self.table)

    def candidates(self) -> pd.DataFrame:
        """One candidate per measured run."""
        cpt = _data.fit_rows(self.table)
        rows = []
        for rid, g in cpt.groupby("run_id", sort=True):
            g = g.sort_values("tokens")
            rows.append(
                {
                    "domain": g["domain"].iloc[0],
                    "n_params": float(g["n_params"].iloc[0]),
                    "tokens": float(g["tokens"].iloc[-1]),
                    "r_domain": float(g["r_domain"].iloc[0]),
                    "checkpoints": ";".join(f"{x:.10g}" for x in g["tokens"]),
                    "run_id": str(rid),
                }
            )
        return validate_candidates(pd.DataFrame(rows))

    def base_rows(self) -> pd.DataFrame:
        """The base-model rows of the grid."""
        return self.table[self.table["tokens"] == 0].reset_index(drop=True)

    def run(self, probes: pd.DataFrame, *, round: int) -> pd.DataFrame:
        if "run_id" not in probes:
            raise BayesDCPTError(
                "a table executor needs the probes' run_id (choose from TableExecutor.candidates())"
            )
        want = probes["run_id"].astype(str).tolist()
        known = set(self.table["run_id"].astype(str))
        missing = [r for r in want if r not in known]
        if missing:
            raise BayesDCPTError(f"runs not in the measured table: {missing[:5]}")
        t = self.table
        return t[t["run_id"].astype(str).isin(want) & (t["tokens"] > 0)].reset_index(drop=True)


# ====================================================================================== persistence
def save_posterior(post: Posterior, path: str | Path, **meta: Any) -> Path:
    """Store a posterior's draws, weights, context and reference in one ``.npz`` file (atomic write)."""
    arrays: dict[str, np.ndarray] = {}
    for (t, d), p in post.params.items():
        for name, v in p.items():
            arrays[f"p|{t}|{d}|{name}"] = np.asarray(v, float)
    for t, nz in post.noise.items():
        for name, v in nz.items():
            arrays[f"n|{t}|{name}"] = np.asarray(v, float)
    if post.weights is not None:
        arrays["weights"] = np.asarray(post.weights, float)
    header = {
        "law": post.law.name,
        "ctx": {k: float(v) for k, v in post.ctx.items()},
        "reference": post.reference.to_csv(index=False),
        "meta": meta,
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, p)
    return p


def load_posterior(path: str | Path) -> tuple[Posterior, dict[str, Any]]:
    """Read a posterior written by :func:`save_posterior`; returns it and the stored ``meta``."""
    with np.load(path) as z:
        header = json.loads(bytes(z["header"]).decode())
        params: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        noise: dict[str, dict[str, np.ndarray]] = {}
        weights = None
        for key in z.files:
            parts = key.split("|")
            if parts[0] == "p":
                params.setdefault((parts[1], parts[2]), {})[parts[3]] = z[key]
            elif parts[0] == "n":
                noise.setdefault(parts[1], {})[parts[2]] = z[key]
            elif key == "weights":
                weights = z[key]
    law = get_law(header["law"])
    order = {n: i for i, n in enumerate(law.param_names)}
    params = {k: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], 99))) for k, v in params.items()}
    post = Posterior(law, params, noise, header["ctx"], weights=weights)
    if header["reference"].strip():
        post.reference = pd.read_csv(io.StringIO(header["reference"]))
    return post, header.get("meta", {})


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ========================================================================================= baselines
def _spread_order(cands: pd.DataFrame) -> np.ndarray:
    """Farthest-point traversal of the design (log N, log D, r scaled to [0, 1]): uniform coverage first."""
    X = np.column_stack(
        [
            np.log(cands["n_params"].to_numpy(float)),
            np.log(cands["tokens"].to_numpy(float)),
            cands["r_domain"].to_numpy(float),
        ]
    )
    span = X.max(axis=0) - X.min(axis=0)
    X = (X - X.min(axis=0)) / np.where(span > 0, span, 1.0)
    n = len(X)
    order = [int(np.argmin(np.abs(X - X.mean(axis=0)).sum(axis=1)))]
    dmin = np.linalg.norm(X - X[order[0]], axis=1)
    for _ in range(n - 1):
        dmin[order] = -1.0
        nxt = int(np.argmax(dmin))
        order.append(nxt)
        dmin = np.minimum(dmin, np.linalg.norm(X - X[nxt], axis=1))
    return np.array(order)


def baseline_order(
    strategy: str, cands: pd.DataFrame, hours: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Preference order of the candidates under a baseline (``uniform``, ``random``, ``cheapest``)."""
    spread = _spread_order(cands)
    if strategy == "uniform":
        return spread
    if strategy == "random":
        return rng.permutation(len(cands))
    if strategy == "cheapest":
        pos = np.empty(len(cands), int)
        pos[spread] = np.arange(len(cands))
        return np.lexsort((pos, hours))
    raise BayesDCPTError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")


# ============================================================================================== loop
@dataclass
class LoopResult:
    """History of a closed loop: one row per round, the data gathered and the final posterior."""

    history: pd.DataFrame
    data: pd.DataFrame
    posterior: Posterior
    stopped: str = ""


def gpu_hours_to_width(history: pd.DataFrame, width: float, max_clipped_share: float = 0.5) -> float:
    """Cumulative GPU-hours at the first round with a measured width <= ``width`` (inf if never).

    Rounds where more than ``max_clipped_share`` of the target's draws sit on a boundary (infeasible) do not
    count: such an interval is narrow because the draws pile up on the boundary, not because r* is known.
    """
    h = history.sort_values("round")
    ok_after = h["clipped_share_after"] <= max_clipped_share if "clipped_share_after" in h else True
    ok_before = h["clipped_share_before"] <= max_clipped_share if "clipped_share_before" in h else True
    first_ok = bool(np.asarray(ok_before)[0]) if not isinstance(ok_before, bool) else ok_before
    if len(h) and h["width_before"].iloc[0] <= width and first_ok:
        return 0.0
    hit = h[(h["width_after"] <= width) & ok_after]
    return float(hit["cum_gpu_hours"].iloc[0]) if len(hit) else float("inf")


@dataclass
class PlannerLoop:
    """Alternate suggest -> execute -> update/refit until a stopping rule fires.

    Parameters
    ----------
    candidates
        Candidate table (for a pool, with ``run_id``; executed runs are removed from it).
    target
        Planner target (:class:`~bayes_dcpt.plan.planner.Target` or anything :func:`~bayes_dcpt.plan.planner.as_target`
        accepts); its interval width is what the loop tracks.
    executor
        Runs probes (:class:`SimulatorExecutor`, :class:`TableExecutor`, or any object with ``run``).
    refit
        ``refit(all_rows) -> Posterior``, called when reweighting is unreliable (and at the start when no
        posterior is given).
    posterior, data
        The current posterior and the data it was fitted on (base rows included).
    strategy
        ``"planner"`` or a baseline (``"uniform"``, ``"random"``, ``"cheapest"``).
    k
        Probes per round.
    budget_gpu_hours
        Total GPU-hours of the loop: never exceeded.
    stop_width
        Stop once the target's measured interval width is at most this.
    min_info_per_gpu_hour
        Planner only: stop when no probe gives this many nats per GPU-hour.
    max_rounds
        Upper bound on the rounds.
    min_ess
        Reweighting must also keep this effective sample size, else refit.
    state_dir
        Where every result is stored (and from where :meth:`resume` continues).
    suggest_kwargs
        Extra arguments for :func:`~bayes_dcpt.plan.planner.suggest` (``verify_top``, ``max_draws``, ...).
    """

    candidates: pd.DataFrame
    target: Any
    executor: Any
    refit: Callable[[pd.DataFrame], Posterior]
    posterior: Posterior | None = None
    data: pd.DataFrame | None = None
    strategy: str = "planner"
    k: int = 3
    budget_gpu_hours: float | None = None
    stop_width: float | None = None
    min_info_per_gpu_hour: float | None = None
    max_rounds: int = 20
    cost_model: CostModel = field(default_factory=CostModel)
    kappa: float = 1.0
    seed: int = 0
    min_ess: float = 100.0
    ci: float = CI_PROB
    state_dir: str | Path | None = None
    suggest_kwargs: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise BayesDCPTError(f"unknown strategy {self.strategy!r}; choose from {STRATEGIES}")
        self.candidates = validate_candidates(self.candidates)
        self._target: Target = as_target(self.target)
        self.pool = bool(getattr(self.executor, "pool", False))
        if self.pool and "run_id" not in self.candidates:
            raise BayesDCPTError(
                "a pool executor needs candidates with run_id (use TableExecutor.candidates())"
            )
        if self.data is None:
            raise BayesDCPTError("give the data the posterior was fitted on (base rows included)")
        self.data = _data.load(self.data).copy()
        if "loop_round" not in self.data:
            self.data["loop_round"] = 0
        if self.posterior is None:
            self.posterior = self.refit(self._fit_frame())
        self._used = np.zeros(len(self.candidates), bool)
        if self.state_dir is not None:
            self.state_dir = Path(self.state_dir)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            cfg = self._config()
            cfg_path = self.state_dir / "config.json"
            if cfg_path.exists() and not self.history:
                old = json.loads(cfg_path.read_text())
                if old != cfg:
                    raise BayesDCPTError(
                        f"{self.state_dir} holds another loop ({old}); use PlannerLoop.resume or a "
                        "new directory"
                    )
            _write_text(cfg_path, json.dumps(cfg, indent=1))
            if not (self.state_dir / "rounds.jsonl").exists():
                self._save(0)

    # --------------------------------------------------------------------------------- persistence
    def _config(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "k": int(self.k),
            "budget_gpu_hours": self.budget_gpu_hours,
            "stop_width": self.stop_width,
            "min_info_per_gpu_hour": self.min_info_per_gpu_hour,
            "kappa": float(self.kappa),
            "seed": int(self.seed),
            "min_ess": float(self.min_ess),
            "target": self._target.name,
            "n_candidates": len(self.candidates),
        }

    def _fit_frame(self) -> pd.DataFrame:
        return _data.load(self.data.drop(columns=["loop_round"], errors="ignore"))

    def _save(self, round_: int, plan_table: pd.DataFrame | None = None) -> None:
        if self.state_dir is None:
            return
        d = Path(self.state_dir)
        buf = io.StringIO()
        self.data.to_csv(buf, index=False)
        _write_text(d / "data.csv", buf.getvalue())
        save_posterior(self.posterior, d / "posterior.npz", round=round_)
        if plan_table is not None:
            plan_table.to_csv(d / f"plan_round{round_}.csv", index=False)
        if round_ > 0:
            with open(d / "rounds.jsonl", "a") as fh:
                fh.write(dumps(self.history[-1]) + "\n")
        elif not (d / "rounds.jsonl").exists():
            _write_text(d / "rounds.jsonl", "")

    @classmethod
    def resume(
        cls,
        state_dir: str | Path,
        *,
        candidates: pd.DataFrame,
        target: Any,
        executor: Any,
        refit: Callable[[pd.DataFrame], Posterior],
        **kwargs: Any,
    ) -> PlannerLoop:
        """Continue a loop from ``state_dir`` after an interruption (same settings as when it started)."""
        d = Path(state_dir)
        if not (d / "config.json").exists():
            raise BayesDCPTError(f"{d} holds no loop state (config.json missing)")
        cfg = json.loads((d / "config.json").read_text())
        lines = (
            [ln for ln in (d / "rounds.jsonl").read_text().splitlines() if ln.strip()]
            if (d / "rounds.jsonl").exists()
            else []
        )
        history = [json.loads(ln) for ln in lines]
        done = len(history)
        data = pd.read_csv(d / "data.csv")
        data = data[data["loop_round"] <= done].reset_index(drop=True)
        post = None
        if (d / "posterior.npz").exists():
            post, meta = load_posterior(d / "posterior.npz")
            if int(meta.get("round", -1)) != done:
                post = None
        settings = {
            k: cfg[k]
            for k in (
                "strategy",
                "k",
                "budget_gpu_hours",
                "stop_width",
                "min_info_per_gpu_hour",
                "kappa",
                "seed",
                "min_ess",
            )
        }
        settings.update(kwargs)
        loop = cls(
            candidates=candidates,
            target=target,
            executor=executor,
            refit=refit,
            posterior=post,
            data=data,
            state_dir=None,
            **settings,
        )
        loop.history = history
        loop.state_dir = d
        if loop._target.name != cfg["target"]:
            raise BayesDCPTError(f"the loop in {d} tracks {cfg['target']!r}, not {loop._target.name!r}")
        for rec in history:
            for p in rec["probes"]:
                if p.get("cand") is not None:
                    loop._used[int(p["cand"])] = True
        return loop

    # ------------------------------------------------------------------------------------ one round
    @property
    def spent(self) -> float:
        """GPU-hours spent so far."""
        return float(sum(r["gpu_hours"] for r in self.history))

    def width(self, post: Posterior | None = None) -> tuple[float, float]:
        """The target's interval width (max over components) and posterior median (first component)."""
        sm = self.target_summary(post)
        return sm["width"], sm["median"]

    def interval(self, post: Posterior | None = None) -> tuple[float, float, float]:
        """Lower end, median and upper end of the target's interval (first component)."""
        sm = self.target_summary(post)
        return sm["lo"], sm["median"], sm["hi"]

    def target_summary(self, post: Posterior | None = None) -> dict[str, float]:
        """Width, median, interval ends and the share of target values clipped to a boundary (infeasible)."""
        post = post or self.posterior
        td = self._target.evaluate(post)
        lo, hi = (1 - self.ci) / 2, 1 - (1 - self.ci) / 2
        q = weighted_quantile(td.z, [lo, 0.5, hi], post.weights, axis=0)
        return {
            "width": float(np.max(q[2] - q[0])),
            "median": float(q[1][0]),
            "lo": float(q[0][0]),
            "hi": float(q[2][0]),
            "clipped_share": td.n_clipped / td.z.size,
        }

    def _reached(self, sm: dict[str, float]) -> bool:
        # an interval made of boundary values (infeasible draws) is not a resolved target
        return self.stop_width is not None and sm["width"] <= self.stop_width and sm["clipped_share"] <= 0.5

    def _available(self) -> np.ndarray:
        avail = np.ones(len(self.candidates), bool)
        if self.pool:
            avail &= ~self._used
        return avail

    def _choose(self, round_: int) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any], pd.DataFrame | None]:
        avail = self._available()
        remaining = None if self.budget_gpu_hours is None else self.budget_gpu_hours - self.spent
        hours = self.cost_model.gpu_hours(self.candidates)
        if remaining is not None:
            avail &= hours <= remaining + 1e-9
        if not avail.any():
            return self.candidates.iloc[[]], np.zeros(0, int), {"stop": "no affordable candidate left"}, None
        if self.strategy == "planner":
            sub = self.candidates[avail].copy()
            sub["_cand"] = np.flatnonzero(avail)
            kw = {"verify_top": 5, **self.suggest_kwargs}
            plan = suggest(
                self.posterior,
                sub,
                self._target,
                k=self.k,
                budget_gpu_hours=remaining,
                cost_model=self.cost_model,
                kappa=self.kappa,
                seed=self.seed + round_,
                stop_width=self.stop_width,
                min_info_per_gpu_hour=self.min_info_per_gpu_hour,
                allow_repeats=not self.pool,
                singleton_check=False,
                ci=self.ci,
                **kw,
            )
            info = {
                "planned_info": plan.info_batch,
                "planned_width": plan.width_after_batch,
                "stop": "; ".join(plan.stop_reasons) if plan.stop else "",
            }
            if plan.table.empty:
                info["stop"] = info["stop"] or "the planner proposes no probe"
                return self.candidates.iloc[[]], np.zeros(0, int), info, plan.table
            idx = plan.table["_cand"].to_numpy(int)
            return self.candidates.iloc[idx], idx, info, plan.table.drop(columns=["_cand"])
        rng = np.random.default_rng([self.seed, round_, 17])
        order = baseline_order(self.strategy, self.candidates, hours, rng)
        fresh = order[avail[order] & ~self._used[order]]
        if len(fresh) == 0:  # every candidate tried once (menu mode): cycle again
            fresh = order[avail[order]]
        picks, total = [], 0.0
        for c in fresh:
            if len(picks) == self.k:
                break
            if remaining is None or total + hours[c] <= remaining + 1e-9:
                picks.append(int(c))
                total += hours[c]
        idx = np.array(picks, int)
        return self.candidates.iloc[idx], idx, {}, None

    def step(self) -> dict[str, Any] | None:
        """Run one round; return its record, or None when a stopping rule fired (see ``self.stopped``)."""
        round_ = len(self.history) + 1
        if round_ > self.max_rounds:
            self.stopped = f"reached max_rounds={self.max_rounds}"
            return None
        t0 = time.perf_counter()
        before = self.target_summary()
        w_before, med_before = before["width"], before["median"]
        if self._reached(before):
            self.stopped = f"interval width {w_before:.4g} <= {self.stop_width:.4g}"
            return None
        probes, idx, info, plan_table = self._choose(round_)
        if probes.empty:
            self.stopped = info.get("stop") or "no probe chosen"
            return None
        rows = self.executor.run(
            probes.drop(columns=["_cand"], errors="ignore").reset_index(drop=True), round=round_
        )
        rows = _data.load(rows).copy()
        hours = self.cost_model.gpu_hours(probes)
        rows["loop_round"] = round_
        self.data = pd.concat([self.data, rows], ignore_index=True)
        res = update(self.posterior, rows)
        reliable = res.reliable and res.ess >= self.min_ess
        if reliable:
            self.posterior = res.posterior
        else:
            self.posterior = self.refit(self._fit_frame())
        self._used[idx] = True
        after = self.target_summary()
        w_after, med_after, lo_after, hi_after = after["width"], after["median"], after["lo"], after["hi"]
        rec = {
            "round": round_,
            "strategy": self.strategy,
            "probes": [
                {
                    "cand": int(c),
                    "domain": str(r["domain"]),
                    "n_params": float(r["n_params"]),
                    "tokens": float(r["tokens"]),
                    "r_domain": float(r["r_domain"]),
                    "run_id": str(r["run_id"]) if "run_id" in r else None,
                    "gpu_hours": float(h),
                }
                for c, (_, r), h in zip(idx, probes.iterrows(), hours, strict=True)
            ],
            "gpu_hours": float(hours.sum()),
            "cum_gpu_hours": self.spent + float(hours.sum()),
            "width_before": w_before,
            "width_after": w_after,
            "median_before": med_before,
            "median_after": med_after,
            "lo_after": lo_after,
            "hi_after": hi_after,
            "clipped_share_before": before["clipped_share"],
            "clipped_share_after": after["clipped_share"],
            "khat": res.khat,
            "ess": res.ess,
            "reweighted": bool(reliable),
            "refit": not reliable,
            "seconds": time.perf_counter() - t0,
            **info,
        }
        self.history.append(rec)
        self._save(round_, plan_table)
        return rec

    def run(self) -> LoopResult:
        """Run rounds until a stopping rule fires."""
        while self.step() is not None:
            pass
        return self.result()

    def result(self) -> LoopResult:
        """The history so far as a table, the data and the current posterior."""
        hist = pd.DataFrame(
            [
                {k: v for k, v in r.items() if k != "probes"} | {"n_probes": len(r["probes"])}
                for r in self.history
            ]
        )
        return LoopResult(hist, self.data, self.posterior, self.stopped)

