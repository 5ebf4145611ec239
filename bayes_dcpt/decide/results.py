"""What a decision returns: the per-draw answer of one usage for one domain, its summary, and one per domain.

A :class:`Decision` keeps the whole posterior of the answer (one row per draw, flags included) so that
every summary -- median, equal-tailed interval, probability statements, the risk-aware answer -- is computed
from it on demand, for any interval level and respecting importance weights. :class:`DecisionSet` holds one
decision per domain. ``Decision.plot()`` is late-bound (:mod:`bayes_dcpt.hooks`): figures live in
:mod:`bayes_dcpt.viz`, a layer above this one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt import hooks
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.decide.inputs import unit_interval
from bayes_dcpt.decide.measured import check_against, contains
from bayes_dcpt.decide.wording import Probability, percent, probability, risk_answers
from bayes_dcpt.encoding import to_jsonable
from bayes_dcpt.errors import InputError, UnknownDomainError
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.numerics.search import last_meeting
from bayes_dcpt.posterior.extrapolation import EARLY, reach_remedy, reach_words, thin_words

__all__ = ["INFEASIBLE_CAUTION", "Decision", "DecisionSet", "DecisionSummary", "format_value", "one_or_set",
           "one_run_crossing"]

#: Usage 1: from this share of the posterior weight with no feasible ratio on, the summary's note is a CAUTION.
INFEASIBLE_CAUTION = 0.1


def format_value(v: Any, spec: str = ".4g") -> str:
    """``v`` formatted with ``spec`` for a table; ``"n/a"`` when it is missing or not finite."""
    try:
        return "n/a" if v is None or not np.isfinite(v) else format(float(v), spec)
    except TypeError:
        return str(v)


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
        Probability statements over all draws, keyed by a stable name (e.g. ``"r_star_at_least_half"``), each a
        :class:`~bayes_dcpt.decide.wording.Probability` (``.value``, ``.statement``: ``"P(r* >= 0.5)"``).
    risk_aware
        Usage 1 only: ``{"prob", "r_domain", "method", ..., "one_run": {"r_domain", "feasible"}}`` (``one_run``: the
        largest r whose single run stays within the threshold with probability ``prob``); ``None`` otherwise.
    measured
        Usage 1 when the data measure the constraint: the measured crossing and whether r*'s interval agrees
        (:meth:`Decision.measured_check`); ``None`` otherwise.
    notes
        What a reader must know to read the table: an empty table's reason, a disagreement with the data.
    nearest
        Usage 1 asked where the data do not measure it: the same check at the nearest (N, D) they measure
        (:meth:`Decision.nearest_check`); ``None`` otherwise.
    """

    usage: str
    domain: str
    ci: float
    table: pd.DataFrame
    counts: dict[str, int]
    probabilities: dict[str, Probability]
    risk_aware: dict[str, Any] | None = None
    measured: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    nearest: dict[str, Any] | None = None

    @property
    def flags(self) -> list[str]:
        """The notes that warn: the answer disagrees with the measurements, or many draws are infeasible."""
        return [n for n in self.notes if n.startswith(("DISAGREES", "CAUTION"))]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (JSON-ready)."""
        return {"usage": self.usage, "domain": self.domain, "ci": self.ci,
                "table": to_jsonable(self.table.reset_index().to_dict(orient="records")),
                "counts": dict(self.counts), "probabilities": self.probabilities_json(),
                "risk_aware": to_jsonable(self.risk_aware), "measured": to_jsonable(self.measured),
                "nearest": to_jsonable(self.nearest), "notes": list(self.notes)}

    def __str__(self) -> str:
        lines = [f"{self.usage} decision for domain {self.domain!r} ({self.ci:.0%} intervals)",
                 self.table.to_string(float_format=lambda v: f"{v:.5g}") if len(self.table) else "(no quantity)"]
        lines.append("counts: " + ", ".join(f"{k}={v}" for k, v in self.counts.items()))
        lines.extend(f"{p.statement} = {p.value:.3f}" for p in self.probabilities.values())
        lines.extend(f"{a.label}: {a.value('.4g')}" for a in risk_answers(self.risk_aware).values())
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    __repr__ = __str__

    def probabilities_json(self) -> dict[str, dict[str, Any]]:
        """The probability statements as ``{key: {"value", "statement", "r_domain"}}`` (JSON-ready)."""
        return {k: p.to_dict() for k, p in self.probabilities.items()}


def one_run_crossing(grid: np.ndarray, within: np.ndarray, lo: float, hi: float) -> dict[str, float]:
    """The ratio at which *one run's* measured general loss crosses the threshold: median and ``[lo, hi]`` interval.

    ``within``: P(one run at r stays within) on ``grid`` (usage 1 computes it), read as the survival function
    of the crossing: its ``q`` quantile is ``sup{r : P(r) >= 1 - q}`` (0 where even r = 0 breaks it with that
    probability, 1 where r = 1 keeps it). r*'s interval is about the law, the expected run; this one is about the
    run a team trains (its offset and checkpoint noise included), i.e. what the crossing measured by runs at
    that size can show. Its mean is the area under ``within``.
    """
    def q(p: float) -> float:
        r = last_meeting(grid, within, 1.0 - p)
        return 0.0 if not np.isfinite(r) else r

    return {"median": q(0.5), "lo": q(lo), "hi": q(hi), "mean": float(np.trapezoid(within, grid))}


#: Usage 1: the label of the ratio at which one run crosses the threshold (:func:`one_run_crossing`).
ONE_RUN_LABEL = "ratio where one run crosses the threshold (its offset and noise included)"

#: Quantities summarised per usage: (column, label with unit).
_QUANTITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "tradeoff": (("r_domain", "optimal domain share r*"), ("loss_general", "general loss at r* (nats)"),
                 ("loss_domain", "domain loss at r* (nats)"), ("general_increase", "general-loss increase at r*"),
                 ("base_loss", "base model's general loss L0 (nats)")),
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
        """The readable answer at interval level ``ci`` (weights respected).

        Median, equal-tailed ``ci`` interval and mean of every quantity, draw counts, probability statements
        and (usage 1) the risk-aware answer.
        """
        ci = unit_interval("ci", ci, open_=True)
        lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
        counts = dict(self.extras.get("counts", {}))
        if self.weights is not None:
            counts["effective_draws (importance weights)"] = round(1.0 / np.sum(self.draw_weights() ** 2))
        probs = dict(self.extras.get("probabilities", {}))
        measured, nearest = self.measured_check(ci), self.nearest_check(ci)
        notes = (*self._thin_note(), *self._reach_note(), *self._check_notes(measured, nearest, ci))
        if self.usage == "critical-curve":
            return DecisionSummary(self.usage, self.domain, ci, self._curve_table(lo, hi, measured), counts, probs,
                                   None, None, notes)
        table = self._quantity_table(lo, hi)
        if self.usage == "tradeoff":
            notes = (*self._infeasible_notes(table, lo, hi, ci), *notes)
        if "r_domain" not in table.index:
            why = (f"no posterior draw meets the constraint ({counts.get('infeasible', 0)} of "
                   f"{counts.get('n_draws', self.n_draws)} infeasible)" if self.usage == "tradeoff"
                   else "no posterior draw gives an answer")
            notes = (f"{why}: no r* to summarise", *notes)
        probs.update(self._usage_probabilities())
        return DecisionSummary(self.usage, self.domain, ci, table, counts, probs, self.extras.get("risk_aware"),
                               measured, notes, nearest)

    @property
    def measured_crossing(self) -> float | None:
        """Usage 1: the critical ratio read off the measurements at the asked N and D (None: not measured)."""
        m = self.extras.get("measured")
        return float(m["crossing"]) if self.usage == "tradeoff" and m else None

    def measured_check(self, ci: float = CI_PROB) -> dict[str, Any] | None:
        """The measured crossing against r*'s ``ci`` interval (:mod:`bayes_dcpt.decide.measured`), or None.

        Usage 1: ``{crossing, kind, bracket, ..., "interval": [lo, hi], "predicted_interval": [lo, hi], "pit",
        "agrees": bool, "one_run_interval": [lo, hi], "one_run_contains": bool}`` (the last two: the interval of
        the ratio where one run crosses the threshold, :func:`one_run_crossing`); the critical curve:
        ``{tokens: that}`` for every budget the data measure.
        """
        m = self.extras.get("measured")
        if not m:
            return None
        if self.usage == "tradeoff":
            out = check_against(m, self.posterior["r_domain"].to_numpy(float), self.draw_weights(), ci)
            return self._with_one_run(out, m, self.curves.get("r"), self.curves.get("one_run_within"), ci)
        out = {}
        within = self.curves.get("one_run_within")
        for j, (tok, g) in enumerate(self.posterior.groupby("tokens", sort=True)):
            if float(tok) in m:
                out[float(tok)] = self._with_one_run(
                    check_against(m[float(tok)], g["r_domain"].to_numpy(float),
                                  self.draw_weights()[g["draw"].to_numpy()], ci),
                    m[float(tok)], self.curves.get("r_grid"), None if within is None else within[j], ci)
        return out

    @staticmethod
    def _with_one_run(out: dict[str, Any], m: dict[str, Any], grid: Any, within: Any, ci: float) -> dict[str, Any]:
        """A measured check with the one-run crossing's ``ci`` interval and whether it holds the measured crossing."""
        if grid is not None and within is not None:
            one = one_run_crossing(np.asarray(grid, float), np.asarray(within, float), (1 - ci) / 2,
                                   1 - (1 - ci) / 2)
            out["one_run_interval"] = [one["lo"], one["hi"]]
            out["one_run_contains"] = contains(m, one["lo"], one["hi"])
        return out

    def nearest_check(self, ci: float = CI_PROB) -> dict[str, Any] | None:
        """Usage 1 asked where the data do not measure it: :meth:`measured_check` at the nearest (N, D) they do.

        The law's r* there (its own draws) against the crossing measured there; ``n_params`` and ``tokens`` say
        where. None when the asked (N, D) is measured (see :meth:`measured_check`) or no cell is.
        """
        near = self.extras.get("nearest")
        if not near or self.usage != "tradeoff":
            return None
        return check_against(near["measured"], np.asarray(near["r_star"], float), self.draw_weights(), ci)

    def check_notes(self, ci: float = CI_PROB) -> tuple[str, ...]:
        """The notes of the checks against the measurements (the asked cell's, else the nearest measured one's).

        Part of :meth:`summary`'s notes; apart for readers that show them beside the answer (the report).
        """
        return self._check_notes(self.measured_check(ci), self.nearest_check(ci), ci)

    def _check_notes(self, measured: dict[str, Any] | None, nearest: dict[str, Any] | None,
                     ci: float) -> tuple[str, ...]:
        return (*self._notes(measured, ci), *self._nearest_notes(nearest, ci))

    def _nearest_notes(self, near: dict[str, Any] | None, ci: float) -> tuple[str, ...]:
        """The nearest measured cell's check, worded as a check of the law there, not of the answer asked."""
        if not near:
            return ()
        verdict, why, text = self._check_words(near["tokens"], near, ci)
        at = f"(N = {near['n_params']:.4g}, D = {near['tokens']:.4g}: the nearest size and tokens the data measure)"
        if verdict == "disagrees":
            return (f"DISAGREES where the data measure it {at}, {why}: the law's r* there misses the measured "
                    f"crossing, so its answer at the asked size and tokens, beyond them, is doubtful too; {text}"
                    + self._remedy(),)
        lead = f"the law's r* where the data measure it {at}"
        return ((f"{lead} agrees with the data: " if verdict == "agrees" else
                 f"{lead} is within what the measurements' noise allows, though r*'s interval misses the measured "
                 "value: ") + text,)

    def _notes(self, measured: dict[str, Any] | None, ci: float) -> tuple[str, ...]:
        """A note per measured crossing (a ``DISAGREES`` flag when r*'s interval misses it)."""
        if not measured:
            return ()
        items = [(self.inputs.get("tokens"), measured)] if self.usage == "tradeoff" else list(measured.items())
        notes = []
        for tok, c in items:
            verdict, why, text = self._check_words(tok, c, ci)
            notes.append({"disagrees": f"DISAGREES with the data, {why}: the law misses them here; {text}"
                                       + self._remedy(),
                          "noise": "within what the measurements' noise allows, though r*'s interval misses the "
                                   "measured value: " + text,
                          "agrees": "agrees with the data: " + text}[verdict])
        return tuple(notes)

    @staticmethod
    def _check_words(tok: float, c: dict[str, Any], ci: float) -> tuple[str, str, str]:
        """One measured crossing's check: its verdict, why it disagrees, and the facts.

        Verdicts: ``disagrees``, ``noise`` (within the measurements' noise though r*'s interval misses it), ``agrees``.
        """
        where = {"interior": f"interpolated between r = {c['bracket'][0]:.3g} and {c['bracket'][1]:.3g}",
                 "above": "every measured ratio is within the threshold: r* >= the largest",
                 "below": "no measured ratio is within the threshold: r* < the smallest"}[c["kind"]]
        lo, hi = c["interval"]
        noise = ""
        if "crossing_interval" in c:
            noise = " (with its measurement noise {} .. {})".format(*(format_value(v, ".3g")
                                                                      for v in c["crossing_interval"]))
        predicted = ""
        if "predicted_interval" in c:
            predicted = (", the fit predicts these measurements to cross in [{}, {}] (the measured one at its "
                         "predictive quantile {:.3f})").format(*(format_value(v, ".3g")
                                                               for v in c["predicted_interval"]), c["pit"])
        one = ""
        if "one_run_interval" in c:
            one = ", one run's crossing in [{}, {}]".format(*(format_value(v, ".3g") for v in c["one_run_interval"]))
        text = (f"measured crossing r = {c['crossing']:.3g}{noise} at D = {tok:.4g} ({where}; {c['n_runs']} "
                f"run(s), base loss {c['base_loss_source']}) vs r*'s {ci:.0%} interval "
                f"[{format_value(lo, '.3g')}, {format_value(hi, '.3g')}]{one}{predicted}")
        why = ("outside what the fit predicts these measurements to show" if predicted
               else "beyond the measurements' noise")
        return ("disagrees" if not c["agrees"] else "noise" if not c["contains"] else "agrees"), why, text

    def _thin_note(self) -> tuple[str, ...]:
        """A CAUTION when the domain was probed at one size or one ratio where the other domains span several."""
        thin = self.inputs.get("thinly_probed")
        if not thin:
            return ()
        return (f"CAUTION: {self.domain} was probed at {thin_words(thin)} only: how its losses change beyond that "
                "comes from the prior or the other domains, and its bands there are not calibrated; probe it at a "
                "second size and ratio before acting on this answer",)

    def _reach_note(self) -> tuple[str, ...]:
        """A CAUTION when the question lies farther beyond the data than the fit measured its law's error."""
        far = self.inputs.get("beyond_reach")
        if not far:
            return ()
        what = "the answer (its median size and tokens)" if self.usage == "compute" else "this question"
        remedy = reach_remedy(far) + ("; bayes-dcpt suggest ranks the probes" if set(far) - {EARLY} else "")
        return (f"CAUTION: {what} lies beyond what the fit's data checked: " + reach_words(far) + ". Read "
                f"the interval as the law's answer, not a measured one, and {remedy} before acting on it",)

    def _remedy(self) -> str:
        """What to try when r* disagrees with a measured crossing, when the fit says what (else nothing)."""
        if self.inputs.get("law") == "cpt" and not self.inputs.get("share_power", True):
            return (". Try the CPT law's share exponent (fit(..., share_power=True), `bayes-dcpt fit --share-power`):"
                    " the general loss's rise then bends in r per domain, which brought r* to the measured crossing "
                    "in more cells of the example grid (BENCHMARKS.md, \"The share's exponent\")")
        return ""

    def _infeasible_notes(self, table: pd.DataFrame, lo: float, hi: float, ci: float) -> tuple[str, ...]:
        """Usage 1: the table's r* is over the feasible draws; say what the infeasible ones change, loudly if many.

        A draw where even ``r = 0`` breaks the limit answers "no domain data" (r* = 0, as the planner counts it);
        the interval over all draws with that reading is added to the table as ``r_domain_or_zero``. From
        :data:`INFEASIBLE_CAUTION` of the weight on, the note is a CAUTION: the law puts the general loss at this
        size above the limit with no domain data at all, which usually means its level at this N extrapolates
        badly (measure the base model there, check the fit's adequacy). The share is worded by
        :func:`~bayes_dcpt.decide.wording.percent` with its draw count beside it, so 3 draws of 4,000 never read as
        "0%".
        """
        if "feasible" not in self.posterior:
            return ()
        w = self.draw_weights()
        feas = self.posterior["feasible"].to_numpy(bool)
        share = float(np.sum(w[~feas]))
        if share <= 0 or feas.sum() == 0:  # none infeasible, or none feasible (the table has no r* at all)
            return ()
        r0 = np.where(feas, self.posterior["r_domain"].to_numpy(float), 0.0)
        q = weighted_quantile(r0, (lo, 0.5, hi), w)
        table.loc["r_domain_or_zero"] = {"description": "r* counting infeasible draws as 0 (no domain data)",
                                         "median": q[1], "lo": q[0], "hi": q[2], "mean": float(np.sum(w * r0)),
                                         "valid_share": 1.0}
        text = (f"{percent(share)} of the posterior weight ({int((~feas).sum())} of {feas.size} draws) finds no "
                "ratio that keeps the general loss within the limit (even r = 0 breaks it); r* above is over the "
                "other draws; counting those as r* = 0 (no domain data), r* has median "
                f"{q[1]:.3g} and {ci:.0%} interval [{q[0]:.3g}, {q[2]:.3g}]")
        if share >= INFEASIBLE_CAUTION:
            text = ("CAUTION: " + text + ". The law puts the general loss at this size above the limit without "
                    "any domain data: its level at this N may extrapolate badly (measure the base model at this "
                    "size, check the fit's adequacy, compare laws)")
        return (text,)

    def _quantity_table(self, lo: float, hi: float) -> pd.DataFrame:
        """One row per quantity of the usage that is defined for some draw: median, interval, mean, share."""
        w = self.draw_weights()
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
                         "valid_share": min(1.0, float(np.sum(w[ok])))})  # a share: no 1.0000000000000004
        within = self.curves.get("one_run_within")
        if self.usage == "tradeoff" and within is not None and rows and rows[0]["quantity"] == "r_domain":
            rows.insert(1, {"quantity": "one_run_crossing", "description": ONE_RUN_LABEL,
                            **one_run_crossing(np.asarray(self.curves["r"], float), np.asarray(within, float), lo, hi),
                            "valid_share": 1.0})
        cols = ["quantity", "description", "median", "lo", "hi", "mean", "valid_share"]
        return pd.DataFrame(rows, columns=cols).set_index("quantity")

    def _curve_table(self, lo: float, hi: float, measured: dict[float, Any] | None = None) -> pd.DataFrame:
        """The critical curve: one row per token budget with the ``r*`` band, the risk-aware answers and counts.

        ``risk_aware`` is the law's, ``risk_aware_one_run`` the one for a single run (its noise included),
        ``one_run_lo`` / ``one_run_hi`` the interval of the ratio where one run crosses the threshold
        (:func:`one_run_crossing`).

        With measurements, ``measured_crossing`` and ``agrees`` columns (NaN / None where not measured).
        """
        w = self.draw_weights()
        rows = []
        within = self.curves.get("one_run_within")
        for j, (tok, g) in enumerate(self.posterior.groupby("tokens", sort=True)):
            gw = w[g["draw"].to_numpy()]
            r = g["r_domain"].to_numpy(float)
            q = weighted_quantile(r, (lo, 0.5, hi), gw)
            one = (one_run_crossing(np.asarray(self.curves["r_grid"], float), np.asarray(within[j], float), lo, hi)
                   if within is not None else {"lo": np.nan, "hi": np.nan})
            rows.append({"tokens": tok, "median": q[1], "lo": q[0], "hi": q[2],
                         "risk_aware": self.extras["risk_aware"][float(tok)]["r_domain"],
                         "risk_aware_one_run": self.extras["risk_aware"][float(tok)].get("one_run", {}).get(
                             "r_domain", np.nan), "one_run_lo": one["lo"], "one_run_hi": one["hi"],
                         "infeasible": int((~g["feasible"]).sum()),
                         "always_satisfied": int(g["always_satisfied"].sum())})
            if measured:
                m = measured.get(float(tok))
                rows[-1].update({"measured_crossing": m["crossing"] if m else np.nan,
                                 "contains": m["contains"] if m else None, "agrees": m["agrees"] if m else None,
                                 "one_run_contains": m.get("one_run_contains") if m else None})
        return pd.DataFrame(rows).set_index("tokens")

    def _usage_probabilities(self) -> dict[str, Probability]:
        """The probability statement each usage's summary adds to those computed at solve time."""
        if self.usage == "tradeoff":
            return {"r_star_at_least_half": probability("r_star_at_least_half", self.prob("r_domain", ">=", 0.5))}
        if self.usage == "limited-data":
            return {"interior_optimum": probability("interior_optimum", self._flag_share("interior"))}
        if self.usage == "compute":
            return {"more_compute_to_size": probability("more_compute_to_size", self.prob("a", ">", 0.5))}
        return {}

    def to_json(self, ci: float = CI_PROB) -> dict[str, Any]:
        """What ``bayes-dcpt optimize --json`` prints for this domain, under ``domains`` (JSON-ready).

        ``r_domain: {median, lo, hi}``, the predicted losses and other quantities in the same form, counts,
        probabilities, the risk-aware answer and inputs.
        """
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
        out["probabilities"] = s.probabilities_json()
        if s.risk_aware is not None:
            out["risk_aware"] = to_jsonable(s.risk_aware)
        if s.measured is not None:
            out["measured_check"] = to_jsonable(s.measured)
        if s.nearest is not None:
            out["nearest_measured_check"] = to_jsonable(s.nearest)
        out["notes"] = list(s.notes)
        out["flags"] = s.flags
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


def one_or_set(decisions: list[Decision]) -> Decision | DecisionSet:
    """What a usage returns: the decision itself for one domain, a :class:`DecisionSet` for several."""
    return decisions[0] if len(decisions) == 1 else DecisionSet(decisions)
