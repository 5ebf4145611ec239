"""Which LR schedule and replay ratio: the trade-off decision of the CPT dynamics law, per posterior draw.

"Which schedule and domain share keep the general loss within ``T`` of the base model while minimising
the domain loss?" For every candidate (schedule, ``r_domain``) and every posterior draw of a
:class:`~bayes_dcpt.posterior.dynamics.DynamicsPosterior`, the law gives the general and domain loss at the
end of the run (or the general loss's peak along the run, ``over="run"``: a re-warmup bump counts); each draw
picks the feasible candidate with the lowest domain loss. The answer is a posterior over the candidates,
like :func:`bayes_dcpt.decide.ratio.tradeoff` is for ``r``:

* ``P(best)``: the share of draws for which a candidate is the optimal choice;
* ``P(feasible)``: the probability that it keeps the general loss within the threshold;
* the risk-aware answer: among candidates with ``P(feasible) >= prob``, the one with the lowest posterior
  mean domain loss.

Quickstart::

    >>> from bayes_dcpt.decide.lr_choice import choose_schedule, candidate_grid
    >>> cands = candidate_grid({"const": "constant(peak=1e-3, steps=256, warmup=10)",
    ...                         "wsd": "wsd(peak=1e-3, steps=256, warmup=10, final=1e-4)"}, [0.25, 0.5, 0.75])
    >>> d = choose_schedule(post, cands, n_params=100_672, max_general_increase=0.03)
    >>> d.summary()             # per candidate: P(best), P(feasible), loss bands; the risk-aware choice
    >>> d.to_json()["risk_aware"]; d.plot()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt import hooks
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.decide.draws import posterior_weights, threshold_loss
from bayes_dcpt.decide.inputs import positive, unit_interval
from bayes_dcpt.decide.results import Decision, DecisionSummary
from bayes_dcpt.decide.wording import probability
from bayes_dcpt.encoding import to_jsonable
from bayes_dcpt.errors import DataValidationError, InputError, Problem
from bayes_dcpt.laws.lr_schedules import ScheduleError, parse_schedule
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.posterior.dynamics import DynamicsPosterior

__all__ = ["ScheduleDecision", "candidate_grid", "choose_schedule"]


def candidate_grid(schedules: Mapping[str, Any] | Sequence[Any], ratios: Sequence[float]) -> pd.DataFrame:
    """Full factorial candidates: every schedule (``{name: spec}`` or a list of specs) at every ``r_domain``."""
    items = list(schedules.items()) if isinstance(schedules, Mapping) else [(None, s) for s in schedules]
    if not items or len(ratios) == 0:
        raise InputError("candidate_grid needs at least one schedule and one ratio")
    rows = []
    for name, spec in items:
        sp = parse_schedule(spec).spec()
        for r in ratios:
            rows.append({"name": name or sp, "schedule": sp, "r_domain": float(r)})
    return pd.DataFrame(rows)


@dataclass(frozen=True, eq=False)
class ScheduleDecision(Decision):
    """The (schedule, replay ratio) decision for one domain (a :class:`~bayes_dcpt.decide.results.Decision`).

    ``posterior`` has one row per draw: ``choice`` (candidate index, -1 when infeasible), ``name``,
    ``schedule``, ``r_domain``, ``loss_general``, ``loss_domain``, ``general_increase``, ``feasible``.
    ``curves`` holds the per-draw losses of every candidate (``loss_general``, ``loss_domain``: ``(S, C)``)
    and the candidate table.
    """

    def table(self, ci: float = CI_PROB) -> pd.DataFrame:
        """Per candidate: ``P_best``, ``P_feasible`` and the median and ``ci`` interval of both losses."""
        ci = unit_interval("ci", ci, open_=True)
        lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
        w = self.draw_weights()
        cands = self.curves["candidates"].copy()
        lg, ld, ok = self.curves["loss_general"], self.curves["loss_domain"], self.curves["feasible"]
        choice = self.posterior["choice"].to_numpy()
        cands["P_best"] = [float(np.sum(w * (choice == j))) for j in range(len(cands))]
        cands["P_feasible"] = [float(np.sum(w * ok[:, j])) for j in range(len(cands))]
        for name, arr in (("loss_general", lg), ("loss_domain", ld), ("general_increase", self.curves["increase"])):
            q = np.stack([weighted_quantile(arr[:, j], (lo, 0.5, hi), w) for j in range(arr.shape[1])])
            cands[f"{name}_median"], cands[f"{name}_lo"], cands[f"{name}_hi"] = q[:, 1], q[:, 0], q[:, 2]
            cands[f"{name}_mean"] = [float(np.sum(w * arr[:, j])) for j in range(arr.shape[1])]
        return cands

    def summary(self, ci: float = CI_PROB) -> DecisionSummary:
        """The readable answer: candidates with their probabilities and bands, counts, the risk-aware choice.

        The table has ``P_best``, ``P_feasible`` and the ``ci`` bands of the domain loss and the general-loss
        increase (:meth:`table` has every column).
        """
        tab = self.table(ci)
        counts = dict(self.extras.get("counts", {}))
        probs = {f"best:{r['name']}": probability("best", r["P_best"], r["r_domain"], name=str(r["name"]))
                 for _, r in tab.sort_values("P_best", ascending=False).head(3).iterrows()}
        keep = ["name", "r_domain", "P_best", "P_feasible", "loss_domain_median", "loss_domain_lo", "loss_domain_hi",
                "general_increase_median", "general_increase_lo", "general_increase_hi"]
        return DecisionSummary(self.usage, self.domain, ci, tab[keep].set_index("name"), counts, probs,
                               self.extras.get("risk_aware"))

    def to_json(self, ci: float = CI_PROB) -> dict[str, Any]:
        """JSON-ready answer: the candidates with their probabilities and bands, counts, risk-aware choice."""
        s = self.summary(ci)
        return {"usage": self.usage, "domain": self.domain, "ci": ci, "n_draws": self.n_draws,
                "inputs": to_jsonable(self.inputs),
                "candidates": to_jsonable(s.table.reset_index().to_dict(orient="records")),
                "counts": to_jsonable(s.counts), "probabilities": s.probabilities_json(),
                "risk_aware": to_jsonable(s.risk_aware)}

    def plot(self, *, ci: float = CI_PROB) -> Any:
        """Domain loss against general-loss increase per candidate: a matplotlib Figure.

        Medians with ``ci`` bars, the threshold and ``P(best)`` marked
        (:func:`bayes_dcpt.viz.schedules.plot_schedule_decision`).
        """
        return hooks.call("ScheduleDecision.plot", self, ci=ci)


@hooks.provides("choose_schedule")
def choose_schedule(
    post: Any,
    candidates: pd.DataFrame | Mapping[str, Any],
    *,
    domain: str | None = None,
    n_params: float | None = None,
    max_general_increase: float = 0.03,
    relative: bool = True,
    base_loss: float | str | None = None,
    over: str = "end",
    prob: float = 0.9,
) -> ScheduleDecision:
    """The (schedule, ``r_domain``) that minimises the domain loss with the general loss within a threshold.

    Parameters
    ----------
    post
        A :class:`~bayes_dcpt.posterior.dynamics.DynamicsPosterior` with both losses.
    candidates
        Rows with ``schedule`` and ``r_domain`` (optional ``name``, ``base_schedule``, ``n_params``,
        ``domain``); see :func:`candidate_grid`.
    domain, n_params
        Where to decide (defaults: the fit's only domain; the candidates' ``n_params`` or the fit's only
        base model size).
    max_general_increase, relative
        ``T``: relative to the base loss (0.03 = 3%, the D-CPT paper) or absolute nats.
    base_loss
        The base model's general loss; default the measured base rows; ``"law"``: the law's own value at CPT
        step 0, per draw.
    over
        ``"end"``: the constraint and the objective at the last step of each schedule; ``"run"``: the
        constraint on the peak general loss along the whole run (a re-warmup bump must stay within ``T``).
    prob
        Level of the risk-aware answer.
    """
    post = getattr(post, "posterior", post)  # a fit or its posterior
    T, prob = _check_question(post, max_general_increase, over, prob)
    cands, domain, n_params = _candidates(post, candidates, domain, n_params)
    lg_end, ld_end, lg_con = _candidate_losses(post, cands, over)
    L0 = _base_losses(post, cands, domain, base_loss)
    ok = lg_con <= threshold_loss(L0, T, relative)
    inc_end = (lg_con - L0) / L0 if relative else lg_con - L0
    w = posterior_weights(post)
    post_df = _per_draw_choice(cands, ok, lg_end, ld_end, inc_end)
    ra = _risk_aware_choice(cands, ok, lg_end, ld_end, w, prob)
    counts = {"n_draws": post.n_draws, "n_candidates": len(cands),
              "infeasible": int((~post_df["feasible"].to_numpy()).sum())}
    inputs = {"domain": domain, "n_params": None if n_params is None else float(n_params),
              "max_general_increase": T, "relative": bool(relative), "over": over, "prob": prob,
              "base_loss": "law" if base_loss == "law" else float(np.median(L0)), "law": post.law.name}
    curves = {"candidates": cands[["name", "schedule", "r_domain", "n_params"]].copy(), "loss_general": lg_end,
              "loss_domain": ld_end, "feasible": ok, "increase": inc_end}
    return ScheduleDecision("schedule-choice", domain, inputs, post_df, post.weights, curves,
                            {"counts": counts, "risk_aware": ra})


def _check_question(post: Any, max_general_increase: Any, over: str, prob: Any) -> tuple[float, float]:
    """Check the posterior and the question's settings; the threshold ``T`` and ``prob`` as floats."""
    if not isinstance(post, DynamicsPosterior):
        raise InputError("choose_schedule needs the posterior of a CPT dynamics fit (bayes_dcpt.fitting.dynamics)")
    for t in ("general", "domain"):
        if t not in post.targets:
            raise InputError(f"choose_schedule needs the {t} loss, but the fit has only {list(post.targets)}")
    if over not in ("end", "run"):
        raise InputError(f"over must be 'end' or 'run', not {over!r}")
    T = float(max_general_increase)
    if not np.isfinite(T) or T < 0:
        raise InputError(f"max_general_increase must be >= 0, got {max_general_increase!r}")
    return T, unit_interval("prob", prob, open_=True)


def _candidates(post: DynamicsPosterior, candidates: pd.DataFrame | Mapping[str, Any], domain: str | None,
                n_params: float | None) -> tuple[pd.DataFrame, str, float | None]:
    """The validated candidate table (canonical schedules, ``domain``, ``n_params``, ``name`` filled).

    Also the domain and model size decided for (``n_params`` stays ``None`` when the candidates carry it).
    """
    cands = pd.DataFrame(candidates).reset_index(drop=True)
    problems = [Problem(c, "required column is missing from the candidates") for c in ("schedule", "r_domain")
                if c not in cands]
    if problems:
        raise DataValidationError(problems, source="candidates")
    if domain is None:
        if len(post.domains) != 1:
            raise InputError(f"the fit has several domains {post.domains}; pass domain=...")
        domain = post.domains[0]
    if n_params is None:
        sizes = sorted({n for d, n in post.ctx.get("base_schedules", {}) if d == domain})
        if "n_params" in cands:
            pass
        elif len(sizes) == 1:
            n_params = sizes[0]
        else:
            raise InputError(f"the fit has base models of sizes {sizes}: choose one (--n-params; n_params= in Python)")
    else:
        n_params = positive("n_params", n_params)
    cands["domain"] = cands["domain"] if "domain" in cands else domain
    if n_params is not None:
        cands["n_params"] = float(n_params)
    if "name" not in cands:
        cands["name"] = [str(s) for s in cands["schedule"]]
    bad = []
    for i, s in enumerate(cands["schedule"]):
        try:
            cands.loc[i, "schedule"] = parse_schedule(s).spec()
        except ScheduleError as exc:
            bad.append(Problem("schedule", str(exc), (i + 1,)))
    if bad:
        raise DataValidationError(bad, source="candidates")
    return cands, domain, n_params


def _candidate_losses(post: DynamicsPosterior, cands: pd.DataFrame, over: str
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw and candidate ``(S, C)``: general and domain loss at the end, and the constrained general loss.

    The constrained loss is the end value (``over="end"``) or the peak along the whole run (``over="run"``).
    """
    # one curve per candidate: the last step (over="end") or every step (over="run")
    rows, owner, last = [], [], []
    for j, c in cands.iterrows():
        steps = parse_schedule(c["schedule"]).steps
        st = np.arange(steps + 1) if over == "run" else np.array([steps])
        sub = pd.DataFrame({"domain": c["domain"], "n_params": c["n_params"], "r_domain": c["r_domain"],
                            "schedule": c["schedule"], "step": st})
        if "base_schedule" in cands and isinstance(c["base_schedule"], str) and c["base_schedule"].strip():
            sub["base_schedule"] = c["base_schedule"]
        rows.append(sub)
        owner.append(np.full(len(st), j))
        last.append(len(st) - 1)
    frame = post.rows(pd.concat(rows, ignore_index=True))
    own = np.concatenate(owner)
    G = post.law_draws(frame, "general")
    Dm = post.law_draws(frame, "domain")
    starts = np.concatenate([[0], np.cumsum([len(o) for o in owner])[:-1]])
    end_idx = starts + np.asarray(last)
    lg_end, ld_end = G[:, end_idx], Dm[:, end_idx]
    lg_con = np.stack([G[:, own == j].max(axis=1) for j in range(len(cands))], axis=1) if over == "run" else lg_end
    return lg_end, ld_end, lg_con


def _base_losses(post: DynamicsPosterior, cands: pd.DataFrame, domain: str, base_loss: Any) -> np.ndarray:
    """The base model's general loss per draw and candidate ``(S, C)``: measured, given, or the law's at step 0."""
    S, C = post.n_draws, len(cands)
    if base_loss == "law":
        b = post.rows(pd.DataFrame({"domain": domain, "n_params": cands["n_params"], "r_domain": cands["r_domain"],
                                    "schedule": cands["schedule"], "step": 0}))
        return post.law_draws(b, "general")  # (S, C)
    if base_loss is None:
        return np.array([[post.base_loss(domain, n, "general") for n in cands["n_params"]]]).repeat(S, axis=0)
    return np.full((S, C), positive("base_loss", base_loss))


def _per_draw_choice(cands: pd.DataFrame, ok: np.ndarray, lg_end: np.ndarray, ld_end: np.ndarray,
                     inc_end: np.ndarray) -> pd.DataFrame:
    """Each draw's choice: the feasible candidate with the lowest domain loss (``choice = -1``: none is feasible)."""
    S, C = ok.shape
    score = np.where(ok, ld_end, np.inf)
    choice = np.where(ok.any(axis=1), np.argmin(score, axis=1), -1)
    feas = choice >= 0
    pick = np.clip(choice, 0, C - 1)
    ar = np.arange(S)
    return pd.DataFrame({
        "draw": ar, "choice": choice,
        "name": np.where(feas, cands["name"].to_numpy(object)[pick], None),
        "schedule": np.where(feas, cands["schedule"].to_numpy(object)[pick], None),
        "r_domain": np.where(feas, cands["r_domain"].to_numpy(float)[pick], np.nan),
        "loss_general": np.where(feas, lg_end[ar, pick], np.nan),
        "loss_domain": np.where(feas, ld_end[ar, pick], np.nan),
        "general_increase": np.where(feas, inc_end[ar, pick], np.nan),
        "feasible": feas,
    })


def _risk_aware_choice(cands: pd.DataFrame, ok: np.ndarray, lg_end: np.ndarray, ld_end: np.ndarray,
                       w: np.ndarray, prob: float) -> dict[str, Any]:
    """Among candidates with ``P(feasible) >= prob``, the one with the lowest posterior mean domain loss."""
    p_feas = w @ ok.astype(float)
    mean_dom = w @ ld_end
    good = np.flatnonzero(p_feas >= prob - 1e-12)
    if not good.size:
        return {"prob": prob, "feasible": False, "r_domain": float("nan"),
                "note": f"no candidate keeps the general loss within the threshold with probability >= {prob:g}"}
    j = int(good[np.argmin(mean_dom[good])])
    return {"prob": prob, "feasible": True, "index": j, "name": str(cands["name"].iat[j]),
            "schedule": str(cands["schedule"].iat[j]), "r_domain": float(cands["r_domain"].iat[j]),
            "P_feasible": float(p_feas[j]), "loss_domain_mean": float(mean_dom[j]),
            "loss_general_median": float(weighted_quantile(lg_end[:, j], (0.5,), w)[0])}
