"""The trade-off's answer checked against the measurements, where the data measure it directly.

When the data hold the base model and CPT runs at the asked size N with a checkpoint at the asked tokens D, at
several ratios, the critical ratio can be read off the measurements without any law: the general-loss increase
over the base model against r, interpolated linearly between the two measured ratios that straddle the threshold
(the largest ratio within it and the next one). A law that misses the data shows here first, so a
:class:`~bayes_dcpt.decide.results.Decision` carries this crossing and says when r*'s interval disagrees with it.

Measurements are noisy (a run's offset and its checkpoint noise), and the crossing is read off by linear
interpolation between the measured ratios, which a curved law does not follow exactly: r*'s interval and the
measured value answer slightly different questions. So the check is a posterior predictive check of the decision
(Gelman, Meng & Stern 1996): the fit predicts *the measurement* -- new runs at the measured ratios, with their noise
and the law's discrepancy beyond the data, each draw read off by the same interpolation -- and the answer
*disagrees* with the data when the measured crossing falls outside that predictive interval (its predictive
quantile, ``pit``, is reported). Without a posterior to predict with, the measured losses are perturbed by the
fit's noise instead and the answer disagrees when that interval and r*'s do not overlap (a weaker test). Whether
r*'s interval contains the measured crossing itself is reported too. The crossing is a bound when every measured
ratio is within the threshold (``"above"`` the largest) or none is (``"below"`` the smallest). An answer asked
beyond the measurements (a larger model, more tokens) cannot be checked so, but the law's r* at the nearest cell
they measure (:func:`nearest_cell`) can: the same check there, worded as a check of the law.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.numerics.quantiles import weighted_quantile

__all__ = ["check_against", "contains", "measured_crossing", "nearest_cell"]

_N_SIM = 2000


def _rows_at(data: pd.DataFrame, domain: str, n_params: float) -> pd.DataFrame:
    """The rows of ``domain`` at size ``n_params`` (within 1e-6) with a measured general loss."""
    df = data[(data["domain"].astype(str) == domain)
              & np.isclose(pd.to_numeric(data["n_params"], errors="coerce").to_numpy(float), n_params, rtol=1e-6)]
    return df[pd.to_numeric(df["loss_general"], errors="coerce").notna()]


def nearest_cell(data: pd.DataFrame | None, domain: str, n_params: float, tokens: float) -> tuple[float, float] | None:
    """The (N, D) nearest the asked one at which the data measure the crossing, or None when they measure none.

    A measured cell has the base model's general loss at its size and runs at two or more ratios with a checkpoint
    at its tokens. Nearest in size first (r*'s size extrapolation is what misses on probe grids), then in tokens,
    both on the log scale. An answer beyond the data cannot be checked, but the law's r* where the data measure it
    can: a law that already misses there is not to be trusted further out.
    """
    if data is None or not len(data) or not {"domain", "n_params", "tokens", "r_domain", "loss_general"} <= set(data):
        return None
    d = data[(data["domain"].astype(str) == domain) & pd.to_numeric(data["loss_general"], errors="coerce").notna()]
    n = pd.to_numeric(d["n_params"], errors="coerce").to_numpy(float)
    t = pd.to_numeric(d["tokens"], errors="coerce").to_numpy(float)
    base = np.unique(n[t == 0])
    cpt = pd.DataFrame({"n": n, "t": t, "r": pd.to_numeric(d["r_domain"], errors="coerce").to_numpy(float)})
    cpt = cpt[(cpt["t"] > 0) & cpt["r"].notna() & (cpt["n"] > 0)]
    cpt = cpt[np.isclose(cpt["n"].to_numpy(float)[:, None], base[None, :], rtol=1e-6).any(axis=1)]  # a base row
    cells = cpt.groupby(["n", "t"])["r"].nunique()
    cells = cells[cells >= 2].index.to_frame(index=False)
    if cells.empty:
        return None
    key = np.column_stack([np.abs(np.log(cells["n"] / float(n_params))), np.abs(np.log(cells["t"] / float(tokens)))])
    best = np.lexsort((key[:, 1], key[:, 0]))[0]
    return float(cells["n"].iloc[best]), float(cells["t"].iloc[best])


def _crossings(r: np.ndarray, inc: np.ndarray, T: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crossing of each row of ``inc`` (M, R) against the sorted ratios ``r``.

    Returns the value, the kind (0 interior, 1 above, -1 below) and the index of the last ratio within ``T``.
    """
    ok = inc <= T
    n = len(r)
    last = np.where(ok.any(axis=1), n - 1 - np.argmax(ok[:, ::-1], axis=1), -1)
    i = np.clip(last, 0, n - 2)
    rows = np.arange(inc.shape[0])
    a, b = inc[rows, i], inc[rows, i + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = r[i] + (T - a) * (r[i + 1] - r[i]) / (b - a)
    kind = np.where(last < 0, -1, np.where(last == n - 1, 1, 0))
    x = np.where(kind == -1, r[0], np.where(kind == 1, r[-1], x))
    return x, kind, last


def measured_crossing(data: pd.DataFrame | None, domain: str, n_params: float, tokens: float, *,
                      max_general_increase: float, relative: bool, base_loss: float | None = None,
                      noise_var: Callable[[pd.DataFrame], np.ndarray] | None = None,
                      predict: Callable[[pd.DataFrame], np.ndarray] | None = None,
                      seed: int = 0) -> dict[str, Any] | None:
    """The measured critical ratio at ``(n_params, tokens)``, or None when the data do not measure it.

    Needs the base model's general loss (``base_loss`` when given, else the data's ``tokens == 0`` rows at this
    size) and the general loss at a checkpoint of ``tokens`` (within 1e-6) at two or more ratios. ``noise_var``
    gives the log-scale variance of a new measurement of each row (offset and checkpoint noise); the base model's
    evaluation is taken as exact (every run starts from it). ``predict`` gives posterior predictive draws of the
    general loss measured at each row of a frame, ``(S, len(frame))`` (new runs: their offsets and checkpoint noise,
    and the discrepancy); the crossing is read off every draw the same way (replicates averaged).

    Returns
    -------
    dict or None
        ``crossing`` (the interpolated ratio; for a bound, the bounding ratio), ``kind`` (``"interior"``,
        ``"above"``: every measured ratio is within the threshold, ``"below"``: none is), ``bracket`` (the two
        ratios interpolated between), ``ratios`` and ``increases`` (measured, replicates averaged), ``base_loss``,
        ``base_loss_source`` (``"given"`` or ``"measured"``), ``n_runs`` and ``crossing_draws`` (the crossing of
        each noise-perturbed set; absent without ``noise_var``) and ``predicted_draws`` (the crossing read off each
        posterior predictive replicate, ``(S, M)``: M sets of new runs per draw; absent without ``predict``).
    """
    if data is None or not len(data) or not {"domain", "n_params", "tokens", "r_domain", "loss_general"} <= set(data):
        return None
    rows = _rows_at(data, domain, float(n_params))
    toks = pd.to_numeric(rows["tokens"], errors="coerce").to_numpy(float)
    if base_loss is None:
        base = rows[toks == 0]["loss_general"].astype(float)
        if base.empty:
            return None
        L0, source = float(base.mean()), "measured"
    else:
        L0, source = float(base_loss), "given"
    at = rows[np.isclose(toks, float(tokens), rtol=1e-6) & (toks > 0)]
    at = at[pd.to_numeric(at["r_domain"], errors="coerce").notna()]
    at = at.assign(r_domain=at["r_domain"].astype(float))
    g = at.groupby("r_domain")["loss_general"]
    by_r = g.mean().sort_index()
    if len(by_r) < 2:
        return None
    r = by_r.index.to_numpy(float)
    T = float(max_general_increase)

    def increase(log_l: np.ndarray) -> np.ndarray:
        return np.exp(log_l) / L0 - 1.0 if relative else np.exp(log_l) - L0

    log_l = np.log(by_r.to_numpy(float))
    x, kind, last = _crossings(r, increase(log_l)[None, :], T)
    k, i = int(kind[0]), int(last[0])
    out = {"crossing": float(x[0]), "kind": {0: "interior", 1: "above", -1: "below"}[k],
           "bracket": [float(r[i]), float(r[i + 1])] if k == 0 else [float(x[0])] * 2, "ratios": r.tolist(),
           "increases": increase(log_l).tolist(), "base_loss": L0, "base_loss_source": source,
           "n_runs": int(at["run_id"].nunique()) if "run_id" in at else len(at), "n_params": float(n_params),
           "tokens": float(tokens)}
    if noise_var is not None:
        var = pd.Series(np.asarray(noise_var(at), float), index=at.index).groupby(at["r_domain"]).mean()
        sd = np.sqrt(var.reindex(by_r.index).to_numpy(float) / g.size().reindex(by_r.index).to_numpy(float))
        sims = log_l[None, :] + np.random.default_rng(seed).standard_normal((_N_SIM, len(r))) * sd[None, :]
        out["crossing_draws"] = _crossings(r, increase(sims), T)[0]
    if predict is not None:
        out["predicted_draws"] = _predicted_crossings(predict, at, by_r.index, lambda y: increase(np.log(y)), T)
    return out


def _predicted_crossings(predict: Callable[[pd.DataFrame], np.ndarray], at: pd.DataFrame, ratios: pd.Index,
                         increase: Callable[[np.ndarray], np.ndarray], T: float) -> np.ndarray:
    """The crossing read off posterior predictive replicates of the measured rows ``at``, ``(S, M)``.

    ``M`` sets of new runs per draw (distinct run ids, so independent offsets and noise), enough for about
    ``_N_SIM`` replicates in all: with few draws one replicate per draw would make the predicted interval a point.
    """
    y = np.asarray(predict(at), float)
    S, n = y.shape
    reps = max(1, -(-_N_SIM // S))
    if reps > 1:
        run = at["run_id"].astype(str) if "run_id" in at else pd.Series(np.arange(n).astype(str), index=at.index)
        tiled = pd.concat([at.assign(run_id=run + f" #{m}") for m in range(reps)], ignore_index=True)
        y = np.asarray(predict(tiled), float)
    y = y.reshape(S * reps, n)  # replicate-major columns: (S, reps * n) -> (S * reps, n)
    codes = pd.Categorical(at["r_domain"], categories=ratios).codes
    mean_y = np.stack([y[:, codes == j].mean(axis=1) for j in range(len(ratios))], axis=1)
    r = ratios.to_numpy(float)
    return _crossings(r, increase(mean_y), T)[0].reshape(S, reps)


def contains(check: dict[str, Any], lo: float, hi: float) -> bool:
    """Whether r*'s ``[lo, hi]`` interval (NaN: no feasible draw) contains the measured crossing (or its bound)."""
    x = check["crossing"]
    if check["kind"] == "below":
        return bool(not np.isfinite(lo) or lo <= x)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return False
    if check["kind"] == "above":
        return bool(hi >= x)
    return bool(lo <= x <= hi)


def check_against(m: dict[str, Any], r_star: np.ndarray, w: np.ndarray, ci: float) -> dict[str, Any]:
    """The measured crossing ``m`` against r*'s ``ci`` interval from its draws ``r_star`` (weights ``w``).

    Adds ``interval`` (r*'s), ``contains`` (it holds the measured crossing), ``crossing_interval`` (the measured
    crossing's own ``ci`` interval under the noise), with ``predicted_draws``: ``predicted_interval`` (the ``ci``
    interval of the crossing the fit predicts these measurements to show, per draw ``w``) and ``pit`` (the
    predictive probability of a crossing below the measured one, ties counted half), and ``agrees``: the measured
    crossing lies inside the predicted interval (without predictions: r*'s and the noise interval overlap; without
    either, ``contains``). ``crossing_draws`` and ``predicted_draws`` are dropped.
    """
    q = ((1 - ci) / 2, 1 - (1 - ci) / 2)
    lo, hi = (float(v) for v in weighted_quantile(r_star, q, w))
    out = {k: v for k, v in m.items() if k not in ("crossing_draws", "predicted_draws")}
    out.update({"interval": [lo, hi], "contains": contains(m, lo, hi)})
    if "predicted_draws" in m:
        pred = np.asarray(m["predicted_draws"], float)
        reps = pred.shape[1] if pred.ndim == 2 else 1
        pred, wr = pred.reshape(-1), np.repeat(np.asarray(w, float), reps) / reps  # M replicates per draw
        p_lo, p_hi = (float(v) for v in weighted_quantile(pred, q, wr))
        x = float(m["crossing"])
        pit = float(np.sum(wr * (pred < x - 1e-9)) + 0.5 * np.sum(wr * (np.abs(pred - x) <= 1e-9))) / float(np.sum(wr))
        out.update({"predicted_interval": [p_lo, p_hi], "pit": pit,
                    "agrees": bool(p_lo - 1e-9 <= x <= p_hi + 1e-9)})
    if "crossing_draws" in m:
        c_lo, c_hi = (float(v) for v in np.quantile(m["crossing_draws"], q))
        out["crossing_interval"] = [c_lo, c_hi]
        if not (np.isfinite(lo) and np.isfinite(hi)):
            overlap = bool(c_lo <= m["ratios"][0] and m["kind"] == "below")
        else:
            overlap = bool(max(lo, c_lo) <= min(hi, c_hi))
        out.setdefault("agrees", overlap)
    out.setdefault("agrees", out["contains"])
    return out
