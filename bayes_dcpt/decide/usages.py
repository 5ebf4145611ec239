"""Decisions under uncertainty: the D-CPT paper's usages solved for every posterior draw.

Users want "which ratio, how big, how many tokens, and how sure are we", not parameters. Each function
below takes a :class:`~bayes_dcpt.posterior.draws.Posterior`, solves one of the D-CPT paper's usages
(section 4.3 and appendix G; ``../shared/laws.md`` section 4) separately for every draw, and returns a
:class:`Decision` whose answer is a distribution:

* :func:`tradeoff` (usage 1): the largest domain share ``r*`` whose general-loss increase over the base
  model stays within a threshold (relative ``T`` as in the D-CPT paper, or an absolute ``epsilon`` as in the
  CMR paper), plus the risk-aware answer: the largest ``r`` with ``P(increase <= T) >= prob``;
* :func:`limited_data` (usage 2): with ``D_d`` domain tokens available, the ``r`` (and total
  ``D = D_d / r``) that minimises the domain loss, with the paper's interior-optimum condition per draw;
* :func:`compute_allocation` (usage 3): for ``C = 6 N D`` FLOPs, the optimal ``N`` and ``D`` at a given
  ``r`` (closed form ``G, a, b`` of appendix G.3) or jointly over ``r``;
* :func:`critical_ratio_curve`: ``r*`` against CPT tokens with bands (the CMR paper's ``R_CMR(T)``).

:func:`optimize` dispatches by usage name (``"tradeoff"``, ``"limited-data"``, ``"compute"``,
``"critical-curve"``). With several fitted domains and ``domain=None`` every function answers for each
domain and returns a :class:`DecisionSet`.

Conventions: ``r_domain`` is the domain share (the general loss is evaluated at its own ratio
``1 - r_domain``); ``n_params``, ``tokens`` and FLOPs are raw counts (the laws use billions inside).
Intervals are equal-tailed (``ci=0.9`` by default) and respect ``post.weights``. Draws for which a
constraint cannot be met (``infeasible``) or never binds (``always_satisfied``) are flagged and counted,
never dropped: quantiles of ``r*`` are over the feasible draws, probabilities are over all draws.

Quickstart::

    >>> from bayes_dcpt import decisions
    >>> d = decisions.tradeoff(post, n_params=1.8e9, tokens=10e9, max_general_increase=0.03)
    >>> d.summary()                    # median, 90% interval, counts, P(...) and the risk-aware r
    >>> d.to_json()["r_domain"]        # {"median": ..., "lo": ..., "hi": ...}
    >>> fig = d.plot()                 # the r* posterior over the trade-off curves
    >>> decisions.compute_allocation(post, flops=5e19, r_domain=0.5).summary()
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt import hooks
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.decide.inputs import number, positive, unit_interval
from bayes_dcpt.encoding import to_jsonable
from bayes_dcpt.errors import InputError, UnknownDomainError
from bayes_dcpt.laws.registry import BILLION, chinchilla_at_ratio, get_law
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.numerics.search import bisect_last_feasible, grid_then_golden
from bayes_dcpt.posterior.draws import Posterior, as_posterior

__all__ = [
    "USAGES",
    "Decision",
    "DecisionSet",
    "DecisionSummary",
    "allocation_constants",
    "compute_allocation",
    "critical_ratio_curve",
    "decision_table",
    "limited_data",
    "optimize",
    "tradeoff",
    "usage_inputs",
]

#: Grid over ``r_domain`` on which constraints are scanned before the bracketing root-find.
R_GRID_SIZE = 201


# =============================================================================================== helpers
def _domains(post: Posterior, domain: str | None, targets: Sequence[str], usage: str) -> list[str]:
    for t in targets:
        if t not in post.targets:
            raise InputError(f"usage {usage!r} needs the {t} loss, but the fit has only {list(post.targets)}")
    known = [d for d in post.domains if all((t, d) in post.params for t in targets)]
    if domain is None:
        if not known:
            raise InputError(f"usage {usage!r}: no domain of the fit has the {' and '.join(targets)} loss")
        return known
    if domain not in post.domains:
        raise UnknownDomainError(f"unknown domain {domain!r}; the fit knows {post.domains}")
    if domain not in known:
        raise InputError(f"usage {usage!r}: domain {domain!r} has no fitted {' and '.join(targets)} loss")
    return [domain]


def _law_draws(post: Posterior, target: str, domain: str, n_params: Any, tokens: Any, r_domain: Any) -> np.ndarray:
    """The law per draw where the inputs' *first axis is the draw* (size S or 1): shape ``(S, ...)``.

    Unlike :meth:`Posterior.surface` (every draw on every input), this evaluates draw ``s`` at its own
    inputs ``[s]``, which vectorised root-finding needs.
    """
    N, D, rd = np.broadcast_arrays(*(np.asarray(v, float) for v in (n_params, tokens, r_domain)))
    if N.ndim == 0:
        N, D, rd = N[None], D[None], rd[None]
    p = post.param_draws(target, domain)
    pe = {k: np.asarray(v, float).reshape((-1,) + (1,) * (N.ndim - 1)) for k, v in p.items()}
    r = rd if target == "domain" else 1.0 - rd
    x: dict[str, Any] = {"N": N / BILLION, "D": D / BILLION, "r": r}
    if "K" in pe:
        x["K"] = pe["K"]
    with np.errstate(all="ignore"):
        out = np.asarray(post.law(np, pe, x), float)
    return np.broadcast_to(out, (post.n_draws, *out.shape[1:])).copy()


def _weights(post: Posterior) -> np.ndarray:
    S = post.n_draws
    if post.weights is None:
        return np.full(S, 1.0 / S)
    w = np.asarray(post.weights, float)
    return w / w.sum()


def _is_l3_like(post: Posterior) -> bool:
    """True for laws whose r-dependence is the D-CPT Law's (L3 and the cross-domain law built on it)."""
    return post.law.name == "L3" or post.law.family == "cross-domain"


def _base_loss(post: Posterior, domain: str, n_params: float, base_loss: Any, target: str = "general") -> float:
    if base_loss is None:
        return post.base_loss(domain, n_params, target)
    if isinstance(base_loss, Mapping):
        if domain not in base_loss:
            raise InputError(f"base_loss has no entry for domain {domain!r} (given for {sorted(base_loss)})")
        base_loss = base_loss[domain]
    return positive("base_loss", base_loss)


# ============================================================================================= results
@dataclass(frozen=True, eq=False)
class DecisionSummary:
    """The readable answer of one :class:`Decision`.

    Attributes
    ----------
    table
        One row per quantity (for the critical curve: per token budget) with ``median``, ``lo``, ``hi``,
        ``mean`` and ``valid_share`` (weighted share of draws where the quantity is defined).
    counts
        Draw counts: ``n_draws`` and the usage's flags (``infeasible``, ``always_satisfied``, ...).
    probabilities
        Probability statements over all draws, e.g. ``"P(r* >= 0.5)"``.
    risk_aware
        Usage 1 only: ``{"prob", "r_domain", "method", ...}``; ``None`` otherwise.
    """

    usage: str
    domain: str
    ci: float
    table: pd.DataFrame
    counts: dict[str, int]
    probabilities: dict[str, float]
    risk_aware: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (JSON-ready)."""
        return {"usage": self.usage, "domain": self.domain, "ci": self.ci,
                "table": to_jsonable(self.table.reset_index().to_dict(orient="records")),
                "counts": dict(self.counts), "probabilities": to_jsonable(self.probabilities),
                "risk_aware": to_jsonable(self.risk_aware)}

    def __str__(self) -> str:
        lines = [f"{self.usage} decision for domain {self.domain!r} ({self.ci:.0%} intervals)",
                 self.table.to_string(float_format=lambda v: f"{v:.5g}")]
        lines.append("counts: " + ", ".join(f"{k}={v}" for k, v in self.counts.items()))
        for k, v in self.probabilities.items():
            lines.append(f"{k} = {v:.3f}")
        if self.risk_aware is not None:
            ra = self.risk_aware
            lines.append(f"risk-aware r (P(constraint holds) >= {ra['prob']:g}): {_fmt(ra['r_domain'])}")
        return "\n".join(lines)

    __repr__ = __str__


def _fmt(v: Any, spec: str = ".4g") -> str:
    try:
        return "n/a" if v is None or not np.isfinite(v) else format(float(v), spec)
    except TypeError:
        return str(v)


#: Quantities summarised per usage: (column, label with unit).
_QUANTITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "tradeoff": (("r_domain", "optimal domain share r*"), ("loss_general", "general loss at r* (nats)"),
                 ("loss_domain", "domain loss at r* (nats)"), ("general_increase", "general-loss increase at r*")),
    "limited-data": (("r_domain", "optimal domain share r*"), ("tokens_total", "total CPT tokens D = D_d / r*"),
                     ("loss_domain", "domain loss at r* (nats)"), ("loss_general", "general loss at r* (nats)"),
                     ("interior_max_domain_tokens", "largest D_d with an interior optimum (tokens)")),
    "compute": (("r_domain", "domain share r"), ("n_params_opt", "optimal model size N (parameters)"),
                ("tokens_opt", "optimal CPT tokens D"), ("tokens_per_param", "tokens per parameter D/N"),
                ("loss_domain", "domain loss at the optimum (nats)"),
                ("loss_general", "general loss at the optimum (nats)"),
                ("a", "exponent a (N_opt ~ C^a)"), ("b", "exponent b (D_opt ~ C^b)"), ("G", "coefficient G")),
}


@dataclass(frozen=True, eq=False)
class Decision:
    """One usage answered for one domain, per posterior draw.

    Attributes
    ----------
    usage
        ``"tradeoff"``, ``"limited-data"``, ``"compute"`` or ``"critical-curve"``.
    domain
        The domain answered.
    inputs
        The inputs as used (including the base loss and threshold actually applied).
    posterior
        One row per draw (for the critical curve: per draw and token budget) with the answer
        (``r_domain``, predicted losses, ``n_params_opt``, ``tokens_opt``, ...) and flags (``feasible``,
        ``always_satisfied``, ``monotone``, ``interior``, ``degenerate``, ...). ``draw`` indexes the
        posterior draw.
    weights
        Normalised importance weights of the draws (``None``: equal weights).
    curves
        Per-draw curves used by :meth:`plot` (e.g. the general-loss increase over an ``r`` grid).
    extras
        Usage-specific facts computed at solve time (e.g. the risk-aware ``r``).
    """

    usage: str
    domain: str
    inputs: dict[str, Any]
    posterior: pd.DataFrame
    weights: np.ndarray | None = None
    curves: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------- helpers
    @property
    def n_draws(self) -> int:
        """Number of posterior draws S."""
        return int(self.posterior["draw"].nunique())

    def draw_weights(self) -> np.ndarray:
        """Normalised weights of the draws (equal when the posterior has none)."""
        S = self.n_draws
        return np.full(S, 1.0 / S) if self.weights is None else np.asarray(self.weights, float)

    def prob(self, column: str, op: str, value: float) -> float:
        """Posterior probability of ``column <op> value`` over all draws (undefined values count as false).

        ``op`` is one of ``">=", ">", "<=", "<", "=="``; for the critical curve the statement must hold
        at every token budget.
        """
        ops = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less, "==": np.isclose}
        if op not in ops:
            raise InputError(f"op must be one of {list(ops)}, got {op!r}")
        if column not in self.posterior:
            raise InputError(f"unknown quantity {column!r}; available: {list(self.posterior.columns)}")
        with np.errstate(invalid="ignore"):
            hold = ops[op](self.posterior[column].to_numpy(float), value)
        per_draw = pd.Series(hold).groupby(self.posterior["draw"].to_numpy()).all().to_numpy()
        return float(np.sum(self.draw_weights() * per_draw))

    def _flag_share(self, col: str) -> float:
        return float(np.sum(self.draw_weights() * self.posterior[col].to_numpy(bool)))

    # ------------------------------------------------------------------------------------- summary
    def summary(self, ci: float = CI_PROB) -> DecisionSummary:
        """Median, equal-tailed ``ci`` interval and mean of every quantity, draw counts, probability
        statements and (usage 1) the risk-aware answer; weights respected."""
        ci = unit_interval("ci", ci, open_=True)
        lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
        w = self.draw_weights()
        counts = dict(self.extras.get("counts", {}))
        if self.weights is not None:
            counts["effective_draws (importance weights)"] = int(round(1.0 / np.sum(w**2)))
        if self.usage == "critical-curve":
            rows = []
            for tok, g in self.posterior.groupby("tokens", sort=True):
                gw = w[g["draw"].to_numpy()]
                r = g["r_domain"].to_numpy(float)
                q = weighted_quantile(r, (lo, 0.5, hi), gw)
                rows.append({"tokens": tok, "median": q[1], "lo": q[0], "hi": q[2],
                             "risk_aware": self.extras["risk_aware"][float(tok)]["r_domain"],
                             "infeasible": int((~g["feasible"]).sum()),
                             "always_satisfied": int(g["always_satisfied"].sum())})
            table = pd.DataFrame(rows).set_index("tokens")
            probs = dict(self.extras.get("probabilities", {}))
            return DecisionSummary(self.usage, self.domain, ci, table, counts, probs, None)
        rows = []
        for col, label in _QUANTITIES[self.usage]:
            if col not in self.posterior:
                continue
            x = self.posterior[col].to_numpy(float)
            ok = np.isfinite(x)
            if not ok.any():
                continue
            q = weighted_quantile(x, (lo, 0.5, hi), w)
            if col == "general_increase":
                label += " (fraction of the base loss)" if self.inputs.get("relative") else " (nats)"
            rows.append({"quantity": col, "description": label, "median": q[1], "lo": q[0], "hi": q[2],
                         "mean": float(np.sum(w[ok] * x[ok]) / np.sum(w[ok])),
                         "valid_share": float(np.sum(w[ok]))})
        table = pd.DataFrame(rows).set_index("quantity")
        probs = dict(self.extras.get("probabilities", {}))
        if self.usage == "tradeoff":
            probs["P(r* >= 0.5)"] = self.prob("r_domain", ">=", 0.5)
        elif self.usage == "limited-data":
            probs["P(interior optimum r* < 1)"] = self._flag_share("interior")
        elif self.usage == "compute":
            probs["P(a > 0.5): extra compute goes more to N than to D"] = self.prob("a", ">", 0.5)
        return DecisionSummary(self.usage, self.domain, ci, table, counts, probs, self.extras.get("risk_aware"))

    def to_json(self, ci: float = CI_PROB) -> dict[str, Any]:
        """What ``bayes-dcpt optimize --json`` prints: ``r_domain: {median, lo, hi}``, the predicted losses
        and other quantities in the same form, counts, probabilities, the risk-aware answer and inputs."""
        s = self.summary(ci)
        out: dict[str, Any] = {"usage": self.usage, "domain": self.domain, "ci": ci, "n_draws": self.n_draws,
                               "inputs": to_jsonable(self.inputs)}
        if self.weights is not None:
            out["effective_draws"] = float(1.0 / np.sum(self.draw_weights() ** 2))
        if self.usage == "critical-curve":
            out["curve"] = to_jsonable(s.table.reset_index().to_dict(orient="records"))
        else:
            for q, row in s.table.iterrows():
                out[str(q)] = to_jsonable({"median": row["median"], "lo": row["lo"], "hi": row["hi"],
                                         "mean": row["mean"], "valid_share": row["valid_share"]})
        out["counts"] = to_jsonable(s.counts)
        out["probabilities"] = to_jsonable(s.probabilities)
        if s.risk_aware is not None:
            out["risk_aware"] = to_jsonable(s.risk_aware)
        return out

    def plot(self, *, ci: float = CI_PROB) -> Any:
        """A matplotlib Figure of the answer (Agg-safe; grey-scale readable).

        Usage 1: the ``r*`` posterior over the trade-off curves (general-loss increase and domain loss
        against ``r`` with bands, the threshold and ``r*`` marked); usage 2: the domain loss along
        ``D = D_d / r`` and the ``r*`` posterior; usage 3: the ``(N_opt, D_opt)`` draws on the iso-FLOP line
        (and the optimised loss against ``r`` when optimised jointly); critical curve: ``r*`` against tokens.
        """
        return hooks.call("Decision.plot", self, ci=unit_interval("ci", ci, open_=True))

    def __repr__(self) -> str:
        return f"Decision(usage={self.usage!r}, domain={self.domain!r}, n_draws={self.n_draws})"


class DecisionSet(Mapping[str, Decision]):
    """One :class:`Decision` per domain (what a usage returns for a fit of several domains)."""

    def __init__(self, decisions: Sequence[Decision]):
        if not decisions:
            raise InputError("a DecisionSet needs at least one decision")
        self._d = {d.domain: d for d in decisions}
        self.usage = decisions[0].usage

    def __getitem__(self, domain: str) -> Decision:
        if domain not in self._d:
            raise UnknownDomainError(f"no decision for domain {domain!r}; have {list(self._d)}")
        return self._d[domain]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def summary(self, ci: float = CI_PROB) -> pd.DataFrame:
        """The per-domain summary tables stacked, with a ``domain`` column."""
        parts = [self._d[k].summary(ci).table.reset_index().assign(domain=k) for k in self._d]
        out = pd.concat(parts, ignore_index=True)
        return out[["domain", *[c for c in out.columns if c != "domain"]]]

    def to_json(self, ci: float = CI_PROB) -> dict[str, Any]:
        """``{"usage": ..., "domains": {domain: Decision.to_json()}}``."""
        return {"usage": self.usage, "domains": {k: d.to_json(ci) for k, d in self._d.items()}}

    def plot(self, *, ci: float = CI_PROB) -> list[Any]:
        """One figure per domain."""
        return [d.plot(ci=ci) for d in self._d.values()]

    def __repr__(self) -> str:
        return f"DecisionSet(usage={self.usage!r}, domains={list(self._d)})"


def _wrap(decisions: list[Decision]) -> Decision | DecisionSet:
    return decisions[0] if len(decisions) == 1 else DecisionSet(decisions)


# ====================================================================================== usage 1: trade-off
def _tradeoff_draws(post: Posterior, domain: str, n_params: float, tokens: float, threshold: float,
                    grid: np.ndarray) -> dict[str, np.ndarray]:
    """Largest feasible ``r_domain`` per draw for ``L_g(N, D, 1 - r) <= threshold``.

    Scans a grid, then bisects the bracket after the last feasible grid point (exact to ~1e-15 for each
    draw whatever the shape of the curve; when the curve is monotone this is the unique root).
    """
    def g(r: np.ndarray) -> np.ndarray:
        return _law_draws(post, "general", domain, n_params, tokens, r) - threshold

    vals = g(grid[None, :])
    ok = vals <= 0
    any_ok = ok.any(axis=1)
    always = ok[:, -1]
    last = len(grid) - 1 - np.argmax(ok[:, ::-1], axis=1)
    lo = grid[last]
    hi = grid[np.minimum(last + 1, len(grid) - 1)]
    r = bisect_last_feasible(lambda m: g(m), lo, hi)
    r = np.where(always, 1.0, r)
    r = np.where(any_ok, r, np.nan)
    with np.errstate(invalid="ignore"):
        monotone = np.all(np.diff(vals, axis=1) >= -1e-12 * np.maximum(1.0, np.abs(threshold)), axis=1)
    return {"r": r, "always": always, "infeasible": ~any_ok, "monotone": monotone & np.isfinite(vals).all(axis=1),
            "grid_values": vals, "grid_ok": ok}


def _risk_aware(r_star: np.ndarray, monotone: np.ndarray, grid_ok: np.ndarray, grid: np.ndarray,
                w: np.ndarray, prob: float) -> dict[str, Any]:
    """``sup{r : P(constraint holds at r) >= prob}``.

    When every draw's constraint curve is monotone, the set where draw s holds is ``[0, r*_s]``, so the
    answer is exactly the weighted upper-tail quantile of ``r*`` (infeasible draws count as never
    holding). Otherwise the probability is scanned on the grid.
    """
    if monotone.all():
        v = np.where(np.isnan(r_star), -np.inf, r_star)
        order = np.argsort(-v, kind="stable")
        cw = np.cumsum(w[order])
        k = min(int(np.searchsorted(cw, prob - 1e-12)), len(v) - 1)
        val, method = float(v[order][k]), "exact"
    else:
        P = w @ grid_ok.astype(float)
        idx = np.flatnonzero(P >= prob - 1e-12)
        val, method = (float(grid[idx[-1]]) if idx.size else -np.inf), "grid"
    feasible = bool(np.isfinite(val))
    return {"prob": prob, "r_domain": val if feasible else float("nan"), "feasible": feasible, "method": method}


def tradeoff(
    post: Posterior,
    *,
    domain: str | None = None,
    n_params: float,
    tokens: float,
    max_general_increase: float = 0.03,
    relative: bool = True,
    base_loss: float | Mapping[str, float] | None = None,
    prob: float = 0.9,
) -> Decision | DecisionSet:
    """Usage 1: the largest domain share whose general-loss increase stays within a threshold, per draw.

    Solves ``max r  s.t.  L_g(N, D, 1 - r) <= (1 + T) L_g^0`` (``relative=True``, the D-CPT paper) or
    ``<= L_g^0 + epsilon`` (``relative=False``, the CMR paper's ``epsilon = 0.05``) for every draw. With
    the domain loss falling in ``r`` this is the paper's ``argmin_r L_d`` under the constraint.
    ``max_general_increase=0`` gives the critical ratio of the Data Mixing Laws paper (the general loss
    returns exactly to the base loss).

    Parameters
    ----------
    post
        Posterior with the general loss (the domain loss, when fitted, is predicted at ``r*``).
    domain
        Domain to answer; ``None``: every fitted domain (a :class:`DecisionSet` when there are several).
    n_params, tokens
        Model size N and total CPT tokens D (raw counts, > 0).
    max_general_increase
        ``T`` (relative, 0.03 = 3%) or ``epsilon`` (absolute, in loss units); must be >= 0.
    relative
        Whether the threshold is relative to the base loss.
    base_loss
        The base model's general loss ``L_g^0`` (a number or ``{domain: number}``). Default: the
        posterior's reference (the data's tokens == 0 rows at this ``n_params``).
    prob
        Probability level of the risk-aware answer: the largest ``r`` with
        ``P(increase <= threshold) >= prob``.

    Returns
    -------
    Decision or DecisionSet
        ``posterior`` columns: ``draw, r_domain, loss_general, loss_domain, general_increase, feasible,
        always_satisfied, monotone``. Infeasible draws (even ``r = 0`` breaks the threshold) have
        ``r_domain = NaN``; always-satisfied draws (``r = 1`` is within it) have ``r_domain = 1``.
    """
    n_params = positive("n_params", n_params)
    tokens = positive("tokens", tokens)
    T = number("max_general_increase", max_general_increase)
    if T < 0:
        raise InputError(f"max_general_increase must be >= 0 (0 = no increase over the base loss), got {T!r}")
    prob = unit_interval("prob", prob, open_=True)
    grid = np.linspace(0.0, 1.0, R_GRID_SIZE)
    out = []
    for dom in _domains(post, domain, ("general",), "tradeoff"):
        L0 = _base_loss(post, dom, n_params, base_loss)
        threshold = L0 * (1.0 + T) if relative else L0 + T
        res = _tradeoff_draws(post, dom, n_params, tokens, threshold, grid)
        w = _weights(post)
        r = res["r"]
        feas = ~res["infeasible"]
        r_eval = np.where(feas, r, 0.0)
        lg = np.where(feas, _law_draws(post, "general", dom, n_params, tokens, r_eval), np.nan)
        has_dom = ("domain", dom) in post.params
        ld = np.where(feas, _law_draws(post, "domain", dom, n_params, tokens, r_eval), np.nan) if has_dom \
            else np.full_like(r, np.nan)
        incr = (lg - L0) / L0 if relative else lg - L0
        frame = pd.DataFrame({"draw": np.arange(post.n_draws), "r_domain": r, "loss_general": lg,
                              "loss_domain": ld, "general_increase": incr, "feasible": feas,
                              "always_satisfied": res["always"], "monotone": res["monotone"]})
        ra = _risk_aware(r, res["monotone"], res["grid_ok"], grid, w, prob)
        if ra["feasible"]:
            ra["loss_general_median"] = float(weighted_quantile(
                _law_draws(post, "general", dom, n_params, tokens, ra["r_domain"]), (0.5,), w)[0])
            if has_dom:
                ra["loss_domain_median"] = float(weighted_quantile(
                    _law_draws(post, "domain", dom, n_params, tokens, ra["r_domain"]), (0.5,), w)[0])
        med = weighted_quantile(r, (0.5,), w)[0]
        probs = {}
        if np.isfinite(med):
            holds = _law_draws(post, "general", dom, n_params, tokens, med) <= threshold
            probs[f"P(constraint holds at the median r* = {med:.4f})"] = float(np.sum(w * holds))
        counts = {"n_draws": post.n_draws, "infeasible": int(res["infeasible"].sum()),
                  "always_satisfied": int(res["always"].sum()), "non_monotone": int((~res["monotone"]).sum())}
        gv = res["grid_values"] + threshold
        curves = {"r": grid, "general_increase": (gv - L0) / L0 if relative else gv - L0}
        if has_dom:
            curves["loss_domain"] = _law_draws(post, "domain", dom, n_params, tokens, grid[None, :])
        inputs = {"domain": dom, "n_params": n_params, "tokens": tokens, "max_general_increase": T,
                  "relative": bool(relative), "base_loss": L0, "threshold_loss": threshold, "prob": prob,
                  "law": post.law.name}
        out.append(Decision("tradeoff", dom, inputs, frame, post.weights, curves,
                            {"counts": counts, "risk_aware": ra, "probabilities": probs}))
    return _wrap(out)


def critical_ratio_curve(
    post: Posterior,
    *,
    domain: str | None = None,
    n_params: float,
    tokens_grid: Sequence[float],
    max_general_increase: float = 0.03,
    relative: bool = True,
    base_loss: float | Mapping[str, float] | None = None,
    prob: float = 0.9,
) -> Decision | DecisionSet:
    """The critical mixture ratio ``r*(D)`` against CPT tokens, per draw (the CMR paper's ``R_CMR(T)``).

    Usage 1 solved at every token budget in ``tokens_grid``; ``posterior`` has one row per (draw,
    tokens). The summary table has, per budget, the median and interval of ``r*``, the risk-aware ``r``
    and the counts of infeasible and always-satisfied draws.
    """
    n_params = positive("n_params", n_params)
    toks = np.atleast_1d(np.asarray(tokens_grid, dtype=object))
    if toks.size == 0:
        raise InputError("tokens_grid must hold at least one token budget")
    toks = np.array([positive("tokens_grid", t) for t in toks], float)
    toks = np.unique(toks)
    T = number("max_general_increase", max_general_increase)
    if T < 0:
        raise InputError(f"max_general_increase must be >= 0, got {T!r}")
    prob = unit_interval("prob", prob, open_=True)
    grid = np.linspace(0.0, 1.0, R_GRID_SIZE)
    out = []
    for dom in _domains(post, domain, ("general",), "critical-curve"):
        L0 = _base_loss(post, dom, n_params, base_loss)
        threshold = L0 * (1.0 + T) if relative else L0 + T
        w = _weights(post)
        frames, ras = [], {}
        R = np.empty((post.n_draws, toks.size))
        for j, D in enumerate(toks):
            res = _tradeoff_draws(post, dom, n_params, D, threshold, grid)
            R[:, j] = res["r"]
            frames.append(pd.DataFrame({"draw": np.arange(post.n_draws), "tokens": D, "r_domain": res["r"],
                                        "feasible": ~res["infeasible"], "always_satisfied": res["always"],
                                        "monotone": res["monotone"]}))
            ras[float(D)] = _risk_aware(res["r"], res["monotone"], res["grid_ok"], grid, w, prob)
        frame = pd.concat(frames, ignore_index=True)
        counts = {"n_draws": post.n_draws, "n_tokens": int(toks.size),
                  "infeasible (draw x budget)": int((~frame["feasible"]).sum()),
                  "always_satisfied (draw x budget)": int(frame["always_satisfied"].sum()),
                  "non_monotone (draw x budget)": int((~frame["monotone"]).sum())}
        probs = {}
        if toks.size > 1:
            with np.errstate(invalid="ignore"):
                up = R[:, -1] > R[:, 0]
            probs["P(r* at the largest budget > r* at the smallest)"] = float(np.sum(w * up))
        inputs = {"domain": dom, "n_params": n_params, "tokens_grid": toks.tolist(), "max_general_increase": T,
                  "relative": bool(relative), "base_loss": L0, "threshold_loss": threshold, "prob": prob,
                  "law": post.law.name}
        out.append(Decision("critical-curve", dom, inputs, frame, post.weights, {"tokens": toks, "r": R},
                            {"counts": counts, "risk_aware": ras, "probabilities": probs}))
    return _wrap(out)


# =============================================================================== usage 2: limited domain data
def _limited_l3(post: Posterior, domain: str, domain_tokens: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form condition and root of dL/dr for the D-CPT Law along D = D_d / r.

    ``L(r) = E + A/N^alpha + B r^(eta+beta) / D_d^beta + C / (r+eps)^gamma`` is convex with
    ``dL/dr(0) < 0``; the optimum is interior iff ``dL/dr(1) > 0``, i.e.
    ``D_d < (B (eta+beta) (1+eps)^(gamma+1) / (gamma C))^(1/beta)`` (laws.md section 4, usage 2).
    Returns ``(r*, interior, D_d threshold in tokens)``.
    """
    p = post.param_draws("domain", domain)
    B, eta, beta, C, gamma, eps = (np.asarray(p[k], float) for k in ("B", "eta", "beta", "C", "gamma", "eps"))
    Dd = domain_tokens / BILLION
    with np.errstate(all="ignore"):
        thresh = (B * (eta + beta) * (1 + eps) ** (gamma + 1) / (gamma * C)) ** (1 / beta) * BILLION
        interior = domain_tokens < thresh

        def dldr(r: np.ndarray) -> np.ndarray:
            return B * (eta + beta) * r ** (eta + beta - 1) / Dd**beta - gamma * C / (r + eps) ** (gamma + 1)

        lo, hi = np.zeros_like(B), np.ones_like(B)
        for _ in range(60):  # bisection on dL/dr to machine precision
            mid = 0.5 * (lo + hi)
            neg = dldr(mid) < 0
            lo, hi = np.where(neg, mid, lo), np.where(neg, hi, mid)
    r = np.where(interior, 0.5 * (lo + hi), 1.0)
    return r, interior, thresh


def _limited_numeric(post: Posterior, domain: str, n_params: float, domain_tokens: float,
                     grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Any law: minimise ``L_d(N, D_d / r, r)`` per draw by grid scan plus golden section; ``(r*, interior)``."""

    def f(r: np.ndarray) -> np.ndarray:
        return _law_draws(post, "domain", domain, n_params, domain_tokens / r, r)

    r, _ = grid_then_golden(f(grid[None, :]), grid, f)
    return r, (r < 1 - 1e-9) & np.isfinite(r)


def limited_data(
    post: Posterior,
    *,
    domain: str | None = None,
    n_params: float,
    domain_tokens: float,
) -> Decision | DecisionSet:
    """Usage 2: with ``D_d`` domain tokens available, the ``r`` (total ``D = D_d / r``) minimising the domain loss.

    Per draw ``r* = argmin_r L_d(N, D_d / r, r)``. For the D-CPT Law this is the root of
    ``dL/dr = B(eta+beta) r^(eta+beta-1) / D_d^beta - gamma C / (r+eps)^(gamma+1)`` when the paper's
    interior condition ``D_d < (B(eta+beta)(1+eps)^(gamma+1) / (gamma C))^(1/beta)`` holds, and ``r* = 1``
    (domain data only) otherwise; other laws are minimised numerically.

    Returns
    -------
    Decision or DecisionSet
        ``posterior`` columns: ``draw, r_domain, tokens_total, loss_domain, loss_general (if fitted),
        interior, interior_max_domain_tokens (D-CPT Law)``.
    """
    n_params = positive("n_params", n_params)
    domain_tokens = positive("domain_tokens", domain_tokens)
    grid = np.unique(np.concatenate([np.geomspace(1e-4, 0.02, 40), np.linspace(0.02, 1.0, 197)]))
    out = []
    for dom in _domains(post, domain, ("domain",), "limited-data"):
        if _is_l3_like(post):
            r, interior, thresh = _limited_l3(post, dom, domain_tokens)
            method = "closed form (D-CPT Law)"
        else:
            r, interior = _limited_numeric(post, dom, n_params, domain_tokens, grid)
            thresh = np.full(post.n_draws, np.nan)
            method = "numerical (grid + golden section)"
        D = domain_tokens / r
        ld = _law_draws(post, "domain", dom, n_params, D, r)
        lg = _law_draws(post, "general", dom, n_params, D, r) if ("general", dom) in post.params \
            else np.full_like(r, np.nan)
        frame = pd.DataFrame({"draw": np.arange(post.n_draws), "r_domain": r, "tokens_total": D,
                              "loss_domain": ld, "loss_general": lg, "interior": interior,
                              "interior_max_domain_tokens": thresh})
        counts = {"n_draws": post.n_draws, "interior": int(interior.sum()),
                  "boundary r*=1 (domain data only)": int((~interior & np.isfinite(r)).sum()),
                  "undefined": int((~np.isfinite(r)).sum())}
        curves = {"r": grid, "loss_domain": _law_draws(post, "domain", dom, n_params, domain_tokens / grid[None, :],
                                                       grid[None, :])}
        inputs = {"domain": dom, "n_params": n_params, "domain_tokens": domain_tokens, "method": method,
                  "law": post.law.name}
        out.append(Decision("limited-data", dom, inputs, frame, post.weights, curves, {"counts": counts}))
    return _wrap(out)


# ============================================================================== usage 3: compute allocation
def allocation_constants(A: Any, alpha: Any, B0: Any, beta: Any) -> dict[str, np.ndarray]:
    """The Chinchilla efficient frontier (D-CPT appendix G.3, N and D in billions).

    ``G = (alpha A / (beta B0))^(1/(alpha+beta))``, ``a = beta/(alpha+beta)``, ``b = alpha/(alpha+beta)``;
    then ``N_opt = G (C/6)^a`` and ``D_opt = G^-1 (C/6)^b`` with ``C/6`` in units of ``1e18``.
    """
    A, alpha, B0, beta = (np.asarray(v, float) for v in (A, alpha, B0, beta))
    with np.errstate(all="ignore"):
        s = alpha + beta
        return {"G": (alpha * A / (beta * B0)) ** (1.0 / s), "a": beta / s, "b": alpha / s}


def _optimum_closed(c: Mapping[str, np.ndarray], flops: float) -> dict[str, np.ndarray]:
    k = allocation_constants(c["A"], c["alpha"], c["B0"], c["beta"])
    K = flops / 6.0 / BILLION**2
    with np.errstate(all="ignore"):
        N = k["G"] * K ** k["a"]
        D = K ** k["b"] / k["G"]
        loss = c["E0"] + c["A"] * N ** (-c["alpha"]) + c["B0"] * D ** (-c["beta"])
    bad = ~(np.isfinite(N) & np.isfinite(D) & (N > 0) & (D > 0) & np.isfinite(loss))
    nan = lambda v: np.where(bad, np.nan, v)  # noqa: E731
    return {"N": nan(N), "D": nan(D), "loss": nan(loss), "G": nan(k["G"]), "a": nan(k["a"]), "b": nan(k["b"]),
            "degenerate": bad}


def _chinchilla_consts(post: Posterior, target: str, domain: str, r_domain: Any) -> dict[str, np.ndarray] | None:
    """Per-draw (E0, A, alpha, B0, beta) at domain share ``r_domain`` (shape (S,) or (1, G)), or None."""
    law = post.law
    r_dom = np.asarray(r_domain, float)
    r_law = r_dom if target == "domain" else 1.0 - r_dom
    nd = max(r_law.ndim, 1)
    p = {k: np.asarray(v, float).reshape((-1,) + (1,) * (nd - 1)) for k, v in post.param_draws(target, domain).items()}
    with np.errstate(all="ignore"):
        if law.at_ratio is not None:
            c = chinchilla_at_ratio(law, p, r_law)
        elif law.family == "cross-domain":
            l3 = get_law("L3")
            c = chinchilla_at_ratio(l3, {k: p[k] for k in l3.param_names}, r_law)
            c["E0"] = c["E0"] + p["F"] * p["K"] ** (-p["mu"])
        elif law.name == "chinchilla":
            c = {"E0": p["E"], "A": p["A"], "alpha": p["alpha"], "B0": p["B"], "beta": p["beta"]}
        else:
            return None
    shape = np.broadcast_shapes(*(np.shape(v) for v in c.values()), (post.n_draws,) + r_law.shape[1:])
    return {k: np.broadcast_to(np.asarray(v, float), shape) for k, v in c.items()}


def _numeric_n_opt(post: Posterior, target: str, domain: str, flops: float, r_domain: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Any law: minimise ``L(N, C / (6 N), r)`` over log N per draw (r per draw); ``(N, D, loss)``."""
    u_grid = np.linspace(np.log(1e6), np.log(1e16), 241)
    r = np.asarray(r_domain, float)

    def f(u: np.ndarray) -> np.ndarray:
        N = np.exp(u)
        rr = r[:, None] if u.ndim == 2 else r
        return _law_draws(post, target, domain, N, flops / (6.0 * N), rr)

    fg = f(np.broadcast_to(u_grid, (post.n_draws, u_grid.size)))
    u, _ = grid_then_golden(fg, u_grid, f)
    N = np.exp(u)
    D = flops / (6.0 * N)
    return N, D, _law_draws(post, target, domain, N, D, r)


def compute_allocation(
    post: Posterior,
    *,
    domain: str | None = None,
    flops: float,
    r_domain: float | None = None,
    target: str = "domain",
) -> Decision | DecisionSet:
    """Usage 3: the compute-optimal model size and CPT tokens for a FLOP budget ``C = 6 N D``, per draw.

    At fixed ``r`` the D-CPT Law is Chinchilla-shaped (``E0 + A/N^alpha + B0/D^beta``), so
    ``N_opt = G (C/6)^a`` and ``D_opt = (C/6)^b / G`` in closed form (appendix G.3, :func:`allocation_constants`).
    With ``r_domain=None`` the ``target`` loss at the compute-optimal ``(N, D)`` is also minimised over
    ``r`` (grid scan plus golden section per draw). Laws without a Chinchilla form at fixed ``r`` are
    optimised numerically over ``log N``.

    Parameters
    ----------
    flops
        Compute budget C in FLOPs (> 0).
    r_domain
        Domain share of the CPT mixture; ``None`` optimises it jointly.
    target
        Which loss to minimise: ``"domain"`` (default) or ``"general"``.

    Returns
    -------
    Decision or DecisionSet
        ``posterior`` columns: ``draw, r_domain, n_params_opt, tokens_opt, tokens_per_param, loss_domain,
        loss_general, a, b, G, degenerate`` (``degenerate``: the D term vanishes at this r, e.g. ``B0 = 0``
        at ``r = 0``, so no finite optimum exists).
    """
    flops = positive("flops", flops)
    if target not in ("domain", "general"):
        raise InputError(f"target must be 'domain' or 'general', got {target!r}")
    if r_domain is not None:
        r_domain = unit_interval("r_domain", r_domain)
    out = []
    for dom in _domains(post, domain, (target,), "compute"):
        S = post.n_draws
        closed = _chinchilla_consts(post, target, dom, np.zeros(S)) is not None
        # the own ratio 0 is degenerate (B0 = 0): approach it geometrically
        rgrid = np.unique(np.concatenate([np.geomspace(1e-4, 1e-2, 21), np.linspace(0.01, 1.0, 100)]))
        rgrid = rgrid if target == "domain" else 1.0 - rgrid[::-1]

        def solve(r: np.ndarray) -> dict[str, np.ndarray]:
            if closed:
                return _optimum_closed(_chinchilla_consts(post, target, dom, r), flops)
            N, D, loss = _numeric_n_opt(post, target, dom, flops, r)
            bad = ~np.isfinite(loss)
            return {"N": N / BILLION, "D": D / BILLION, "loss": loss, "G": np.full(S, np.nan), "a": np.full(S, np.nan),
                    "b": np.full(S, np.nan), "degenerate": bad}

        curves: dict[str, Any] = {}
        if r_domain is None:
            if closed:
                Lgrid = _optimum_closed(_chinchilla_consts(post, target, dom, rgrid[None, :]), flops)["loss"]
            else:
                Lgrid = np.stack([solve(np.full(S, rv))["loss"] for rv in rgrid], axis=1)
            r, _ = grid_then_golden(Lgrid, rgrid, lambda rr: solve(rr)["loss"])
            curves = {"r": rgrid, "loss_opt": Lgrid}
            mode = "jointly over r"
        else:
            r = np.full(S, r_domain)
            mode = "fixed r"
        sol = solve(np.where(np.isfinite(r), r, 0.5))
        bad = sol["degenerate"] | ~np.isfinite(r)
        N = np.where(bad, np.nan, sol["N"] * BILLION)
        D = np.where(bad, np.nan, sol["D"] * BILLION)
        losses = {}
        for t in ("domain", "general"):
            if (t, dom) in post.params:
                losses[t] = np.where(bad, np.nan, _law_draws(post, t, dom, np.where(bad, 1e9, N),
                                                             np.where(bad, 1e9, D), np.where(bad, 0.5, r)))
            else:
                losses[t] = np.full(S, np.nan)
        frame = pd.DataFrame({"draw": np.arange(S), "r_domain": r, "n_params_opt": N, "tokens_opt": D,
                              "tokens_per_param": D / N, "loss_domain": losses["domain"],
                              "loss_general": losses["general"], "a": sol["a"], "b": sol["b"], "G": sol["G"],
                              "degenerate": bad})
        counts = {"n_draws": S, "degenerate": int(bad.sum())}
        if r_domain is None:
            counts["r* at the upper end of the grid"] = int(np.sum(np.isclose(r, rgrid[-1])))
            counts["r* at the lower end of the grid"] = int(np.sum(np.isclose(r, rgrid[0])))
        inputs = {"domain": dom, "flops": flops, "r_domain": r_domain, "target": target, "mode": mode,
                  "method": "closed form (appendix G.3)" if closed else "numerical (grid + golden section)",
                  "law": post.law.name}
        out.append(Decision("compute", dom, inputs, frame, post.weights, curves, {"counts": counts}))
    return _wrap(out)


# ==================================================================================================== dispatch
USAGES: dict[str, Callable[..., Decision | DecisionSet]] = {
    "tradeoff": tradeoff,
    "limited-data": limited_data,
    "compute": compute_allocation,
    "critical-curve": critical_ratio_curve,
}
_USAGE_ALIASES = {"limited_data": "limited-data", "compute-allocation": "compute", "compute_allocation": "compute",
                  "critical_curve": "critical-curve", "critical-ratio-curve": "critical-curve", "trade-off": "tradeoff"}


def _usage_name(usage: str) -> str:
    key = str(usage).strip().lower()
    key = _USAGE_ALIASES.get(key, key)
    if key not in USAGES:
        raise InputError(f"unknown usage {usage!r}; choose one of {list(USAGES)}")
    return key


def usage_inputs(usage: str) -> tuple[str, ...]:
    """The keyword inputs a usage accepts (for the CLI: which options to pass)."""
    fn = USAGES[_usage_name(usage)]
    return tuple(n for n, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY)


@hooks.provides("optimize")
def optimize(post: Any, usage: str, **inputs: Any) -> Decision | DecisionSet:
    """Answer one usage by name, for a fit or a posterior.

    ``usage`` is ``"tradeoff"``, ``"limited-data"``, ``"compute"`` or ``"critical-curve"``.

    Inputs are the keyword arguments of :func:`tradeoff`, :func:`limited_data`,
    :func:`compute_allocation` or :func:`critical_ratio_curve`. Two conveniences for a CLI that has only
    ``--n-params`` and ``--tokens``: for ``"limited-data"``, ``tokens`` means the available domain tokens;
    for ``"compute"`` without ``flops``, the budget is ``6 * n_params * tokens`` (how best to spend the
    compute of that plan). An input the usage does not take is an error that names it.
    """
    post = as_posterior(post)
    name = _usage_name(usage)
    kw = dict(inputs)
    if name == "limited-data" and "tokens" in kw:
        if "domain_tokens" in kw:
            raise InputError("give either tokens or domain_tokens for usage 'limited-data', not both")
        kw["domain_tokens"] = kw.pop("tokens")
    if name == "compute" and "flops" not in kw and {"n_params", "tokens"} <= set(kw):
        kw["flops"] = 6.0 * positive("n_params", kw.pop("n_params")) * positive("tokens", kw.pop("tokens"))
    allowed = usage_inputs(name)
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise InputError(f"usage {name!r} does not take {unknown}; its inputs are {list(allowed)}")
    missing = [n for n, p in inspect.signature(USAGES[name]).parameters.items()
               if p.kind is p.KEYWORD_ONLY and p.default is inspect.Parameter.empty and n not in kw]
    if missing:
        raise InputError(f"usage {name!r} needs {missing}")
    return USAGES[name](post, **kw)


# ================================================================================================ rendering
def decision_table(decisions: Decision | DecisionSet | Sequence[Decision], ci: float = CI_PROB) -> Any:
    """A rich :class:`~rich.table.Table` of one or more decisions: one row per (domain, quantity) with the
    median and the ``ci`` interval, then the counts, probabilities and the risk-aware answer."""
    from rich.table import Table

    if isinstance(decisions, Decision):
        items = [decisions]
    elif isinstance(decisions, DecisionSet):
        items = list(decisions.values())
    else:
        items = list(decisions)
    if not items:
        raise InputError("decision_table needs at least one decision")
    usage = items[0].usage
    t = Table(title=f"{usage}: per-draw answers ({ci:.0%} equal-tailed intervals)", title_justify="left")
    for col, kw in (("domain", {"style": "bold"}), ("quantity", {}), ("median", {"justify": "right"}),
                    (f"{ci:.0%} interval", {"justify": "right"}), ("note", {})):
        t.add_column(col, **kw)
    for d in items:
        s = d.summary(ci)
        if d.usage == "critical-curve":
            for tok, row in s.table.iterrows():
                t.add_row(d.domain, f"r* at D = {tok:.4g} tokens", _fmt(row["median"]),
                          f"{_fmt(row['lo'])} .. {_fmt(row['hi'])}",
                          f"risk-aware {_fmt(row['risk_aware'])}; infeasible {int(row['infeasible'])}, "
                          f"always satisfied {int(row['always_satisfied'])}")
        else:
            for q, row in s.table.iterrows():
                note = "" if row["valid_share"] > 0.9999 else f"defined for {row['valid_share']:.1%} of draws"
                t.add_row(d.domain, str(row["description"]), _fmt(row["median"]),
                          f"{_fmt(row['lo'])} .. {_fmt(row['hi'])}", note)
        if s.risk_aware is not None:
            ra = s.risk_aware
            t.add_row(d.domain, f"risk-aware r (P(constraint holds) >= {ra['prob']:g})", _fmt(ra["r_domain"]), "",
                      ra["method"] if ra["feasible"] else "no r meets the constraint with this probability")
        for k, v in s.probabilities.items():
            t.add_row(d.domain, k, f"{v:.3f}", "", "")
        t.add_row(d.domain, "draws", str(s.counts.get("n_draws", d.n_draws)), "",
                  ", ".join(f"{k}: {v}" for k, v in s.counts.items() if k != "n_draws"))
    return t
