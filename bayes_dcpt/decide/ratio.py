"""Usage 1 of the D-CPT paper: the largest domain share that keeps the general loss within a threshold.

:func:`tradeoff` solves ``max r  s.t.  L_g(N, D, 1 - r) <= threshold`` for every posterior draw (a grid scan,
then bisection of the bracket after the last feasible grid point, so a non-monotone curve still gets its
largest feasible ``r``), and adds the risk-aware answer: the largest ``r`` with ``P(constraint holds) >= prob``.
:func:`critical_ratio_curve` solves the same question at several token budgets (the CMR paper's ``R_CMR(T)``).
The threshold is relative to the base model's general loss (``T``, the D-CPT paper) or absolute
(``epsilon``, the CMR paper). Both answers are about the law; a team usually trains *one* run, which deviates from
the law by its own offset and noise, so the probability that one run stays within the threshold is given beside
them, and the risk-aware answer for one run: the largest ``r`` with ``P(one run stays within) >= prob``. Draws where
even ``r = 0`` breaks the threshold are flagged ``infeasible`` (``r* = NaN``); draws where ``r = 1`` keeps it are
flagged ``always_satisfied`` (``r* = 1``): counted, never dropped.

The base loss enters per draw: measured where the data have it, given by the user (then the posterior takes it as
the base model's, so a base-anchored law starts from it too), or predicted by the base-loss law in N, whose
uncertainty then travels into r*. Outside the data the law carries its calibrated discrepancy
(:func:`~bayes_dcpt.decide.draws.law_draws`). Where the data measure the constraint itself, the answer is checked
against the measured crossing (:mod:`~bayes_dcpt.decide.measured`): the fit predicts what those measurements
show (new runs, their noise, the discrepancy) and the answer disagrees when the measured crossing falls outside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.decide.draws import answer_domains, law_draws, posterior_weights, reach_facts, threshold_loss
from bayes_dcpt.decide.inputs import number, positive, unit_interval
from bayes_dcpt.decide.measured import measured_crossing, nearest_cell
from bayes_dcpt.decide.results import Decision, DecisionSet, one_or_set
from bayes_dcpt.decide.wording import probability
from bayes_dcpt.errors import InputError
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.numerics.search import bisect_last_feasible, last_meeting
from bayes_dcpt.posterior.draws import Posterior
from bayes_dcpt.posterior.extrapolation import thin_domains

__all__ = ["R_GRID_SIZE", "base_reference", "critical_ratio_curve", "tradeoff"]

#: Grid over ``r_domain`` on which constraints are scanned before the bracketing root-find.
R_GRID_SIZE = 201


def _given_base(domain: str, base_loss: Any) -> float | None:
    """The base loss the user gave for ``domain`` (a number or ``{domain: number}``), or None."""
    if base_loss is None:
        return None
    if isinstance(base_loss, Mapping):
        if domain not in base_loss:
            raise InputError(f"base_loss has no entry for domain {domain!r} (given for {sorted(base_loss)})")
        base_loss = base_loss[domain]
    return positive("base_loss", base_loss)


def base_reference(post: Posterior, domain: str, n_params: float, base_loss: Any
                   ) -> tuple[Posterior, np.ndarray, dict[str, Any]]:
    """The posterior to answer with, the base general loss per draw ``(S,)`` and how it was obtained.

    A given base loss becomes the posterior's measured base model at ``n_params`` (:meth:`Posterior.with_reference`:
    a base-anchored law then starts from it too); otherwise the measured one, or the base-loss law's draws. The
    facts are ``base_loss`` (median), ``base_loss_source`` and, when predicted, ``base_loss_interval`` (90%).
    """
    given = _given_base(domain, base_loss)
    if given is not None:
        post = post.with_reference(domain, n_params, loss_general=given)
        source = "given"
    else:
        source = post.base_source(domain, n_params, "general")
    L0 = post.base_loss_draws(domain, n_params, "general")
    w = posterior_weights(post)
    facts: dict[str, Any] = {"base_loss": float(weighted_quantile(L0, (0.5,), w)[0]), "base_loss_source": source}
    if source not in ("given", "measured"):
        facts["base_loss_interval"] = [float(v) for v in weighted_quantile(L0, (0.05, 0.95), w)]
    return post, L0, facts


def _noise_var(post: Posterior) -> Any:
    """The posterior-mean log-scale variance of a new measurement of the general loss at each row of a frame."""
    w = posterior_weights(post)

    def var(rows: pd.DataFrame) -> np.ndarray:
        ve, vu = post.measurement_variance(rows.reset_index(drop=True), "general")
        return w @ (ve + vu)

    return var


def _predict_measured(post: Posterior) -> Any:
    """Posterior predictive draws of the general loss measured at each row of a frame: new runs, with discrepancy."""
    def predict(rows: pd.DataFrame) -> np.ndarray:
        return post.sample_observations(rows.reset_index(drop=True), "general", new_run=True, discrepancy=True)

    return predict


def _run_within(post: Posterior, domain: str, n_params: float, tokens: float, r: Any, law: np.ndarray,
                threshold: np.ndarray, w: np.ndarray) -> np.ndarray:
    """P(the general loss *measured* on one run at ``r`` stays within the threshold), over draws and the run's noise.

    ``r``: one ratio or several ``(G,)``; ``law``: the general loss per draw there
    (:func:`~bayes_dcpt.decide.draws.law_draws`), ``(S,)`` or ``(S, G)``. Returns ``(G,)`` (a 0-d array for one r).

    r* and its risk-aware answer are about the law (with its discrepancy); a single run also deviates from it by its
    offset and checkpoint noise (on real grids 1-3% late in training, as large as a 2-3% threshold). Log-normal with
    the fit's new-measurement variance (Student-t entering through its variance).
    """
    from scipy.special import ndtr

    rs = np.atleast_1d(np.asarray(r, float))
    rows = pd.DataFrame({"domain": domain, "n_params": n_params, "tokens": tokens, "r_domain": rs,
                         "run_id": [f"new run {i}" for i in range(len(rs))]})
    var_e, var_u = post.measurement_variance(rows, "general")
    sd = np.sqrt(np.asarray(var_e + var_u, float))
    lg = np.reshape(law, (len(w), len(rs)))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = ndtr((np.log(_per_draw(threshold, 2)) - np.log(lg)) / sd)
    out = w @ np.nan_to_num(p)
    return out.reshape(np.shape(r))


def _risk_aware_run(post: Posterior, domain: str, n_params: float, tokens: float, grid: np.ndarray,
                    law_grid: np.ndarray, threshold: np.ndarray, w: np.ndarray,
                    prob: float) -> tuple[dict[str, Any], np.ndarray]:
    """``sup{r : P(one run at r stays within the threshold) >= prob}``: the risk-aware answer for a single run.

    The probability is scanned on ``grid`` (``law_grid``: the law's general loss per draw there, ``(S, G)``) and
    interpolated linearly in the bracket after the last grid point that meets it. Below the law's risk-aware r when
    a run's own noise is comparable to the threshold, as late in CPT it is. Returned with the scanned probability
    ``(G,)``: the distribution of the ratio where one run crosses the threshold
    (:func:`~bayes_dcpt.decide.results.one_run_crossing`).
    """
    P = _run_within(post, domain, n_params, tokens, grid, law_grid, threshold, w)
    r = last_meeting(grid, P, prob)
    if not np.isfinite(r):
        return {"r_domain": float("nan"), "feasible": False, "prob_at_r0": float(P[0])}, P
    return {"r_domain": r, "feasible": True}, P


def _per_draw(v: Any, ndim: int) -> np.ndarray:
    """A per-draw ``(S,)`` (or scalar) value shaped to broadcast against ``ndim``-dimensional per-draw arrays."""
    a = np.asarray(v, float)
    return a.reshape((-1,) + (1,) * (ndim - 1)) if a.ndim else a


def _extrapolation_facts(post: Posterior, domain: str, n_params: float, tokens: float, r: float) -> dict[str, Any]:
    """How far ``(N, D, r)`` lies beyond the data and the general loss's discrepancy sd (log scale) there.

    ``thinly_probed``: the domain's single probed size and/or ratio when the other domains span several
    (:func:`~bayes_dcpt.posterior.extrapolation.thin_domains`): its bands beyond them are not calibrated.
    ``beyond_reach``: the axes along which the question lies farther out than the held-out refits measured the
    general loss's error (:func:`~bayes_dcpt.posterior.extrapolation.beyond_reach`): its band there is assumed.
    """
    thin = thin_domains(post.ctx.get("envelope")).get(str(domain))
    facts: dict[str, Any] = {"thinly_probed": thin} if thin else {}
    dist = post.extrapolation(domain, n_params, tokens, r) if n_params > 0 and tokens > 0 else None
    facts.update(reach_facts(post, domain, n_params, tokens, r, distances=dist))  # the constraint's loss
    if not post.has_discrepancy:
        return {"discrepancy": "none calibrated: the law's parameter uncertainty alone", **facts}
    if dist is None:
        dist = post.extrapolation(domain, n_params, tokens, r)
    return {"discrepancy": "calibrated: every draw carries the law's error beyond the data",
            **{f"extrapolation_{a}": float(v) for a, v in dist.items()},
            "discrepancy_sd_general": float(post.discrepancy_sd("general", domain, n_params, tokens, r)), **facts}


def _largest_feasible_r(post: Posterior, domain: str, n_params: float, tokens: float, threshold: float,
                        grid: np.ndarray) -> dict[str, np.ndarray]:
    """Largest feasible ``r_domain`` per draw for ``L_g(N, D, 1 - r) <= threshold``.

    Scans a grid, then bisects the bracket after the last feasible grid point (exact to ~1e-15 for each
    draw whatever the shape of the curve; when the curve is monotone this is the unique root).
    """
    def g(r: np.ndarray) -> np.ndarray:
        v = law_draws(post, "general", domain, n_params, tokens, r)
        return v - _per_draw(threshold, v.ndim)

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
        monotone = np.all(np.diff(vals, axis=1) >= -1e-12 * np.maximum(1.0, np.abs(_per_draw(threshold, 2))),
                          axis=1)
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


def _threshold_and_prob(max_general_increase: Any, prob: Any) -> tuple[float, float]:
    """The checked threshold ``T`` (>= 0) and risk level ``prob`` (in (0, 1)) of a usage-1 question."""
    T = number("max_general_increase", max_general_increase)
    if T < 0:
        raise InputError(f"max_general_increase must be >= 0 (0 = no increase over the base loss), got {T!r}")
    return T, unit_interval("prob", prob, open_=True)


def _question(post: Posterior, dom: str, n_params: float, base_loss: Any, T: float, relative: bool, prob: float,
              where: dict[str, Any]) -> tuple[Posterior, np.ndarray, np.ndarray, dict[str, Any]]:
    """One domain's usage-1 question: the posterior to answer with, base loss and threshold per draw, and inputs.

    ``inputs`` is what a decision records; ``where`` the tokens asked (one budget or a grid).
    """
    post_d, L0, facts = base_reference(post, dom, n_params, base_loss)
    threshold = threshold_loss(L0, T, relative)
    inputs = {"domain": dom, "n_params": n_params, **where, "max_general_increase": T, "relative": bool(relative),
              **facts, "threshold_loss": float(weighted_quantile(threshold, (0.5,), posterior_weights(post_d))[0]),
              "prob": prob, "law": post.law.name, "share_power": _share_power(post, dom)}
    return post_d, L0, threshold, inputs


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
    data: pd.DataFrame | None = None,
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
        The base model's general loss ``L_g^0`` (a number or ``{domain: number}``), taken as the base model's
        measured loss at ``n_params`` (:meth:`~bayes_dcpt.posterior.Posterior.with_reference`). Default: the
        data's tokens == 0 rows at this ``n_params``, else the base-loss law in N per draw (its uncertainty
        is carried into r*). ``inputs["base_loss_source"]`` says which.
    prob
        Probability level of the risk-aware answer: the largest ``r`` with
        ``P(increase <= threshold) >= prob`` (``extras["risk_aware"]``), and of the one for a single run: the
        largest ``r`` whose one run's measured increase stays within the threshold with that probability
        (``extras["risk_aware"]["one_run"]``, its noise and offset included).
    data
        The measurements (a schema frame, e.g. ``fit.data``): when they hold the base model and CPT runs at
        this N with a checkpoint at D at several ratios, the measured crossing is compared with r*'s interval
        (:mod:`~bayes_dcpt.decide.measured`; ``Decision.measured_check``); when they do not, the law's r* at the
        nearest (N, D) they measure is compared with the crossing there (``Decision.nearest_check``).

    Returns
    -------
    Decision or DecisionSet
        ``posterior`` columns: ``draw, r_domain, loss_general, loss_domain, general_increase, base_loss,
        feasible, always_satisfied, monotone``. Infeasible draws (even ``r = 0`` breaks the threshold) have
        ``r_domain = NaN``; always-satisfied draws (``r = 1`` is within it) have ``r_domain = 1``.
    """
    n_params = positive("n_params", n_params)
    tokens = positive("tokens", tokens)
    T, prob = _threshold_and_prob(max_general_increase, prob)
    grid = np.linspace(0.0, 1.0, R_GRID_SIZE)
    out = []
    for dom in answer_domains(post, domain, ("general",), "tradeoff"):
        post_d, L0, threshold, inputs = _question(post, dom, n_params, base_loss, T, relative, prob,
                                                  {"tokens": tokens})
        measured = measured_crossing(data, dom, n_params, tokens, max_general_increase=T, relative=bool(relative),
                                     base_loss=_given_base(dom, base_loss), noise_var=_noise_var(post_d),
                                     predict=_predict_measured(post_d))
        near = (_nearest_check(post, dom, n_params, tokens, data, T, bool(relative), grid)
                if measured is None and data is not None else None)
        out.append(_tradeoff_decision(post_d, inputs, grid, L0, threshold, measured, near))
    return one_or_set(out)


def _nearest_check(post: Posterior, dom: str, n_params: float, tokens: float, data: pd.DataFrame, T: float,
                   relative: bool, grid: np.ndarray) -> dict[str, Any] | None:
    """Where the data do not measure the asked (N, D): the law's r* and the crossing at the nearest cell they do.

    ``{"measured": measured_crossing there, "r_star": r* per draw there}``, or None. The base model there is the
    measured one (a given ``base_loss`` is for the asked size). :meth:`Decision.nearest_check` reads it.
    """
    cell = nearest_cell(data, dom, n_params, tokens)
    if cell is None:
        return None
    n_c, d_c = cell
    post_c, L0, _ = base_reference(post, dom, n_c, None)
    m = measured_crossing(data, dom, n_c, d_c, max_general_increase=T, relative=relative,
                          noise_var=_noise_var(post_c), predict=_predict_measured(post_c))
    if m is None:
        return None
    threshold = threshold_loss(L0, T, relative)
    return {"measured": m, "r_star": _largest_feasible_r(post_c, dom, n_c, d_c, threshold, grid)["r"]}


def _share_power(post: Posterior, dom: str) -> bool:
    """Whether the fit's general loss rises with its own power of the domain share (CPT law, ``share_power``)."""
    return "eta_s" in post.params.get(("general", dom), {})


def _tradeoff_decision(post: Posterior, inputs: dict[str, Any], grid: np.ndarray, L0: np.ndarray,
                       threshold: np.ndarray, measured: dict[str, Any] | None,
                       near: dict[str, Any] | None = None) -> Decision:
    """Usage 1 for one domain: ``inputs`` as :func:`tradeoff` records them, base loss and threshold per draw.

    ``measured``: the crossing the data measure at the asked (N, D); ``near``: else the check at the nearest
    cell they measure (:func:`_nearest_check`).
    """
    dom, n_params, tokens, prob = inputs["domain"], inputs["n_params"], inputs["tokens"], inputs["prob"]
    relative = inputs["relative"]
    res = _largest_feasible_r(post, dom, n_params, tokens, threshold, grid)
    w = posterior_weights(post)
    r = res["r"]
    feas = ~res["infeasible"]
    r_eval = np.where(feas, r, 0.0)
    lg = np.where(feas, law_draws(post, "general", dom, n_params, tokens, r_eval), np.nan)
    has_dom = ("domain", dom) in post.params
    ld = np.where(feas, law_draws(post, "domain", dom, n_params, tokens, r_eval), np.nan) if has_dom \
        else np.full_like(r, np.nan)
    incr = (lg - L0) / L0 if relative else lg - L0
    frame = pd.DataFrame({"draw": np.arange(post.n_draws), "r_domain": r, "loss_general": lg,
                          "loss_domain": ld, "general_increase": incr, "base_loss": L0, "feasible": feas,
                          "always_satisfied": res["always"], "monotone": res["monotone"]})
    ra = _risk_aware(r, res["monotone"], res["grid_ok"], grid, w, prob)
    ra["one_run"], within = _risk_aware_run(post, dom, n_params, tokens, grid,
                                            res["grid_values"] + threshold[:, None], threshold, w, prob)
    lg_ra = None
    if ra["feasible"]:
        lg_ra = law_draws(post, "general", dom, n_params, tokens, ra["r_domain"])
        ra["loss_general_median"] = float(weighted_quantile(lg_ra, (0.5,), w)[0])
        if has_dom:
            ra["loss_domain_median"] = float(weighted_quantile(
                law_draws(post, "domain", dom, n_params, tokens, ra["r_domain"]), (0.5,), w)[0])
    med = weighted_quantile(r, (0.5,), w)[0]
    probs = {}
    if np.isfinite(med):
        lg_med = law_draws(post, "general", dom, n_params, tokens, med)
        probs["law_within_at_median"] = probability("law_within_at_median", np.sum(w * (lg_med <= threshold)), med)
        probs["one_run_within_at_median"] = probability("one_run_within_at_median", _run_within(
            post, dom, n_params, tokens, float(med), lg_med, threshold, w), med)
    if lg_ra is not None:
        probs["one_run_within_at_risk_aware"] = probability("one_run_within_at_risk_aware", _run_within(
            post, dom, n_params, tokens, float(ra["r_domain"]), lg_ra, threshold, w), ra["r_domain"])
    counts = {"n_draws": post.n_draws, "infeasible": int(res["infeasible"].sum()),
              "always_satisfied": int(res["always"].sum()), "non_monotone": int((~res["monotone"]).sum())}
    L0c = L0[:, None]
    gv = res["grid_values"] + threshold[:, None]
    curves = {"r": grid, "general_increase": (gv - L0c) / L0c if relative else gv - L0c}
    if has_dom:
        curves["loss_domain"] = law_draws(post, "domain", dom, n_params, tokens, grid[None, :])
    curves["one_run_within"] = within
    inputs.update(_extrapolation_facts(post, dom, n_params, tokens, med if np.isfinite(med) else 0.5))
    extras = {"counts": counts, "risk_aware": ra, "probabilities": probs}
    if measured is not None:
        extras["measured"] = measured
    if near is not None:
        extras["nearest"] = near
    return Decision("tradeoff", dom, inputs, frame, post.weights, curves, extras)


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
    data: pd.DataFrame | None = None,
) -> Decision | DecisionSet:
    """The critical mixture ratio ``r*(D)`` against CPT tokens, per draw (the CMR paper's ``R_CMR(T)``).

    Usage 1 solved at every token budget in ``tokens_grid``; ``posterior`` has one row per (draw,
    tokens). The summary table has, per budget, the median and interval of ``r*``, the risk-aware ``r``
    and the counts of infeasible and always-satisfied draws; with ``data``, the measured crossing at every
    budget the data measure (see :func:`tradeoff`). The base loss is per draw, as in :func:`tradeoff`.
    """
    n_params = positive("n_params", n_params)
    toks = np.atleast_1d(np.asarray(tokens_grid, dtype=object))
    if toks.size == 0:
        raise InputError("tokens_grid must hold at least one token budget")
    toks = np.array([positive("tokens_grid", t) for t in toks], float)
    toks = np.unique(toks)
    T, prob = _threshold_and_prob(max_general_increase, prob)
    grid = np.linspace(0.0, 1.0, R_GRID_SIZE)
    out = []
    for dom in answer_domains(post, domain, ("general",), "critical-curve"):
        post_d, _, threshold, inputs = _question(post, dom, n_params, base_loss, T, relative, prob,
                                                  {"tokens_grid": toks.tolist()})
        measured = {float(D): m for D in toks if (m := measured_crossing(
            data, dom, n_params, D, max_general_increase=T, relative=bool(relative),
            base_loss=_given_base(dom, base_loss), noise_var=_noise_var(post_d),
            predict=_predict_measured(post_d))) is not None}
        out.append(_curve_decision(post_d, inputs, toks, grid, threshold, measured))
    return one_or_set(out)


def _curve_decision(post: Posterior, inputs: dict[str, Any], toks: np.ndarray, grid: np.ndarray,
                    threshold: np.ndarray, measured: dict[float, dict[str, Any]]) -> Decision:
    """The critical curve for one domain: usage 1 at every budget in ``toks`` (sorted, unique)."""
    dom, n_params = inputs["domain"], inputs["n_params"]
    w = posterior_weights(post)
    frames, ras = [], {}
    R = np.empty((post.n_draws, toks.size))
    within = np.empty((toks.size, grid.size))
    for j, D in enumerate(toks):
        res = _largest_feasible_r(post, dom, n_params, D, threshold, grid)
        R[:, j] = res["r"]
        frames.append(pd.DataFrame({"draw": np.arange(post.n_draws), "tokens": D, "r_domain": res["r"],
                                    "feasible": ~res["infeasible"], "always_satisfied": res["always"],
                                    "monotone": res["monotone"]}))
        ras[float(D)] = _risk_aware(res["r"], res["monotone"], res["grid_ok"], grid, w, inputs["prob"])
        ras[float(D)]["one_run"], within[j] = _risk_aware_run(post, dom, n_params, D, grid,
                                                              res["grid_values"] + threshold[:, None], threshold,
                                                              w, inputs["prob"])
    frame = pd.concat(frames, ignore_index=True)
    counts = {"n_draws": post.n_draws, "n_tokens": int(toks.size),
              "infeasible (draw x budget)": int((~frame["feasible"]).sum()),
              "always_satisfied (draw x budget)": int(frame["always_satisfied"].sum()),
              "non_monotone (draw x budget)": int((~frame["monotone"]).sum())}
    probs = {}
    if toks.size > 1:
        with np.errstate(invalid="ignore"):
            up = R[:, -1] > R[:, 0]
        probs["r_star_rises_with_budget"] = probability("r_star_rises_with_budget", np.sum(w * up))
    extras = {"counts": counts, "risk_aware": ras, "probabilities": probs}
    if measured:
        extras["measured"] = measured
    inputs.update(_extrapolation_facts(post, dom, n_params, float(toks[-1]), 0.5))
    return Decision("critical-curve", dom, inputs, frame, post.weights,
                    {"tokens": toks, "r": R, "r_grid": grid, "one_run_within": within}, extras)
