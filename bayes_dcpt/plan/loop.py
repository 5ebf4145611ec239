"""Closed-loop experiment planning: suggest -> run -> update (or refit) -> suggest ..., resumable.

:class:`PlannerLoop` alternates

1. choosing a batch of ``k`` probes (the planner's :func:`~bayes_dcpt.plan.planner.suggest`, or a baseline:
   ``"uniform"`` grid coverage, ``"random"``, ``"cheapest"`` first);
2. running them through an executor (:mod:`bayes_dcpt.plan.executors`: a simulated world, a table of
   measured runs, or the probe runner);
3. updating the posterior by PSIS reweighting (:func:`bayes_dcpt.plan.update.update`) when that is reliable
   (k-hat < 0.7 and an ESS of at least ``min_ess``), else calling ``refit(all_data) -> Posterior`` (the seam
   for the PyMC fit; :class:`bayes_dcpt.fitting.smc.SMCRefit` is a fast numpy stand-in);

and records every round (probes, GPU-hours, the target's interval width, the update diagnostics, and how the
new runs sat in the bands the posterior predicted for them before they ran: each round's probes are data no fit has
seen, so the loop checks its own honesty as it goes, :func:`LoopResult.new_runs_check`). With a
``state_dir`` every result is stored as it lands (``data.csv``, ``rounds.jsonl``, ``posterior.npz``,
``plan_round<N>.csv``, ``config.json``; :mod:`bayes_dcpt.plan.persistence`) and :meth:`PlannerLoop.resume`
continues after an interruption. The baselines are in :mod:`bayes_dcpt.plan.baselines`; this module
re-exports the executors, baselines and posterior files it uses.

Quickstart::

    >>> from bayes_dcpt.plan.loop import PlannerLoop, SimulatorExecutor
    >>> loop = PlannerLoop(candidates=cands, target=tgt, executor=SimulatorExecutor(world), refit=refit,
    ...                    posterior=post, data=df, k=4, budget_gpu_hours=500, stop_width=0.05,
    ...                    state_dir="run1")
    >>> result = loop.run(); result.history
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.plan.baselines import STRATEGIES, baseline_order
from bayes_dcpt.plan.candidates import validate_candidates
from bayes_dcpt.plan.cost import CostModel
from bayes_dcpt.plan.executors import Executor, SimulatorExecutor, TableExecutor
from bayes_dcpt.plan.persistence import load_posterior, read_loop_state, save_posterior, write_atomic, write_round
from bayes_dcpt.plan.planner import suggest
from bayes_dcpt.plan.targets import Target, as_target
from bayes_dcpt.plan.update import UpdateResult, update
from bayes_dcpt.posterior.draws import Posterior, weighted_quantile
from bayes_dcpt.posterior.heldout import check_predictions, judge_coverage

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


# ============================================================================================== loop
_RESUMED_SETTINGS = (
    "strategy", "k", "budget_gpu_hours", "stop_width", "min_info_per_gpu_hour", "kappa", "seed", "min_ess",
)


@dataclass
class LoopResult:
    """History of a closed loop: one row per round, the data gathered and the final posterior."""

    history: pd.DataFrame
    data: pd.DataFrame
    posterior: Posterior
    stopped: str = ""
    ci: float = CI_PROB
    run_shares: dict[str, list[float]] = field(default_factory=dict)

    def new_runs_check(self) -> dict[str, dict[str, float]]:
        """Per target, how the loop's new runs sat in the bands predicted for them before each was run.

        ``{target: {"runs", "inside", "plausible_lo", "plausible_hi", "established"}}``: the mean over the runs of
        each run's share inside the ``ci`` predictive band of the posterior of the round before, the coverage the
        runs allow and whether a miss is established, judged as ``predict`` judges measured runs
        (:func:`~bayes_dcpt.posterior.heldout.judge_coverage`). A loop whose posterior keeps missing its own next
        probes is deciding on a wrong law.
        """
        out = {}
        for t, shares in self.run_shares.items():
            if shares:
                inside = float(np.mean(shares))
                j = judge_coverage(inside, np.asarray(shares, float), self.ci)
                out[t] = {"runs": len(shares), "inside": inside, "plausible_lo": j["plausible_lo"],
                          "plausible_hi": j["plausible_hi"], "established": j["clear"]}
        return out


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


def _probe_records(probes: pd.DataFrame, idx: np.ndarray, hours: np.ndarray) -> list[dict[str, Any]]:
    """One JSON-ready record per probe of a round: its candidate index, design, run id and GPU-hours."""
    return [
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
    ]


@dataclass
class PlannerLoop:
    """Alternate suggest -> execute -> update/refit until a stopping rule fires.

    Parameters
    ----------
    candidates
        Candidate table (for a pool, with ``run_id``; executed runs are removed from it).
    target
        Planner target (:class:`~bayes_dcpt.plan.targets.Target` or anything
        :func:`~bayes_dcpt.plan.targets.as_target` accepts); its interval width is what the loop tracks.
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
            self._open_state_dir()

    # --------------------------------------------------------------------------------- persistence
    def _open_state_dir(self) -> None:
        """Create the state directory, refuse one holding another loop, write the config (and round 0)."""
        self.state_dir = Path(self.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cfg = self._config()
        cfg_path = self.state_dir / "config.json"
        if cfg_path.exists() and not self.history:
            old = json.loads(cfg_path.read_text())
            if old != cfg:
                raise BayesDCPTError(
                    f"{self.state_dir} holds another loop ({old}); use PlannerLoop.resume or a new directory"
                )
        write_atomic(cfg_path, json.dumps(cfg, indent=1))
        if not (self.state_dir / "rounds.jsonl").exists():
            self._save(0)

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
        record = self.history[-1] if round_ > 0 else None
        write_round(Path(self.state_dir), self.data, self.posterior, round_, plan_table, record)

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
        cfg, history, data, post = read_loop_state(d)
        settings = {k: cfg[k] for k in _RESUMED_SETTINGS}
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
            return self._choose_by_planner(round_, avail, remaining)
        return self._choose_by_baseline(round_, avail, remaining, hours)

    def _choose_by_planner(
        self, round_: int, avail: np.ndarray, remaining: float | None
    ) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any], pd.DataFrame | None]:
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

    def _choose_by_baseline(
        self, round_: int, avail: np.ndarray, remaining: float | None, hours: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any], pd.DataFrame | None]:
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
        if self._reached(before):
            self.stopped = f"interval width {before['width']:.4g} <= {self.stop_width:.4g}"
            return None
        probes, idx, info, plan_table = self._choose(round_)
        if probes.empty:
            self.stopped = info.get("stop") or "no probe chosen"
            return None
        hours, res, reliable, scored = self._execute_and_update(round_, probes, idx)
        after = self.target_summary()
        rec = {
            "round": round_,
            "strategy": self.strategy,
            "probes": _probe_records(probes, idx, hours),
            "gpu_hours": float(hours.sum()),
            "cum_gpu_hours": self.spent + float(hours.sum()),
            "width_before": before["width"],
            "width_after": after["width"],
            "median_before": before["median"],
            "median_after": after["median"],
            "lo_after": after["lo"],
            "hi_after": after["hi"],
            "clipped_share_before": before["clipped_share"],
            "clipped_share_after": after["clipped_share"],
            "khat": res.khat,
            "ess": res.ess,
            "reweighted": bool(reliable),
            "refit": not reliable,
            "seconds": time.perf_counter() - t0,
            **scored,
            **info,
        }
        self.history.append(rec)
        self._save(round_, plan_table)
        return rec

    def _execute_and_update(
        self, round_: int, probes: pd.DataFrame, idx: np.ndarray
    ) -> tuple[np.ndarray, UpdateResult, bool, dict[str, Any]]:
        """Run the probes, add their rows to the data, and reweight the posterior (or refit when unreliable).

        Returns the probes' GPU-hours, the reweighting result, whether it was used, and how the new rows sat in
        the bands the posterior predicted for them (:meth:`_scored`).
        """
        rows = self.executor.run(
            probes.drop(columns=["_cand"], errors="ignore").reset_index(drop=True), round=round_
        )
        rows = _data.load(rows).copy()
        scored = self._scored(rows, round_)
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
        return hours, res, reliable, scored

    def _scored(self, rows: pd.DataFrame, round_: int) -> dict[str, Any]:
        """The new rows against the current posterior's ``ci`` predictive bands, before it learns from them.

        Per target: ``inside_<target>`` (share of the measurements inside), ``mape_<target>`` and
        ``run_inside_<target>`` (each new run's share, what :meth:`LoopResult.new_runs_check` pools).
        """
        cpt = _data.fit_rows(rows)
        if cpt.empty:
            return {}
        with np.errstate(all="ignore"):
            pred = self.posterior.predict(cpt, self.ci, seed=self.seed + round_)
        pred = pred.reset_index(drop=True)
        check = check_predictions(pred, self.ci, zero_ratio=bool(getattr(self.posterior, "fits_zero_ratio", True)),
                                  warmup=bool(getattr(self.posterior, "leaves_out_warmup", False)))
        out: dict[str, Any] = {}
        for _, r in check.table.drop_duplicates("target", keep="last").iterrows():  # every domain together
            t = r["target"]
            out |= {f"inside_{t}": float(r["coverage"]), f"mape_{t}": float(r["mape"]),
                    f"run_inside_{t}": [float(v) for v in check.run_shares(t)]}
        return out

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
        shares: dict[str, list[float]] = {}
        for r in self.history:
            for k, v in r.items():
                if k.startswith("run_inside_"):
                    shares.setdefault(k[len("run_inside_"):], []).extend(v)
        return LoopResult(hist.drop(columns=[c for c in hist if str(c).startswith("run_inside_")]), self.data,
                          self.posterior, self.stopped, self.ci, shares)

