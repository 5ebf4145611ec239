"""``law="auto"``: fit several laws, weight them by how they *extrapolate*, predict with the stacked posterior.

A law is used beyond its data (later tokens, a larger model), and the law that interpolates best is not the one
that extrapolates best: PSIS-LOO leaves one checkpoint out of the middle of a curve and rewards interpolation. So
:func:`fit_auto` fits each candidate on all data and refits it on held-out splits (each run's last third of log D;
the largest model size; :mod:`~bayes_dcpt.fitting.holdout`), and weighs the candidates by stacking (Yao, Vehtari,
Simpson & Gelman 2018) of their held-out log predictive densities, one per held-out run, the splits pooled. The
stacked posterior (:mod:`~bayes_dcpt.fitting.stacked`) draws from the full fits in proportion to the weights; the
same refits, stacked with the same weights, measure how its error grows beyond the data (the discrepancy stored
in ``posterior.ctx``, :mod:`~bayes_dcpt.fitting.extrapolation`). Beside each weight: the held-out elpd, MAPE and
coverage per split, the sampler diagnostics and posterior predictive checks, and the paper's requirement checks.

Quickstart::

    >>> auto = bd.fit(df, law="auto")          # candidates cpt (with base rows), L3, L1, L7
    >>> auto.weights                             # held-out stacking weights
    >>> auto.table()                             # weight, held-out elpd / MAPE / coverage per split, checks
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import BayesDCPTError, FitError
from bayes_dcpt.fitting.auto_fit import AutoDiagnostics, AutoFit, load_auto, requirement_failures
from bayes_dcpt.fitting.dcpt import fit as fit_one
from bayes_dcpt.fitting.discrepancy import data_envelope, stacking_weights
from bayes_dcpt.fitting.extrapolation import (
    DEFAULT_SPLITS,
    attach,
    discrepancy_from_scores,
    holdout_scores,
    holdout_table,
)
from bayes_dcpt.fitting.holdout import HoldoutScore, make_splits, score_split
from bayes_dcpt.fitting.stacked import stack_laws, stacked_posterior
from bayes_dcpt.laws.registry import get_law

__all__ = ["AUTO_DEFAULTS", "DEFAULT_CANDIDATES", "AutoDiagnostics", "AutoFit", "fit_auto", "load_auto",
           "stack_laws"]

#: Candidate laws, in order; ``cpt`` only when the data have base rows for every (domain, size).
DEFAULT_CANDIDATES = ("cpt", "L3", "L1", "L7")
#: Sampler settings of the candidates' full fits unless given (see BENCHMARKS.md for the measurement).
AUTO_DEFAULTS: dict[str, Any] = {"draws": 500, "tune": 500, "chains": 2}


def _has_base_rows(df: pd.DataFrame, target: str) -> bool:
    """Whether every (domain, size) probed has a base-model row with the losses the CPT law is anchored at."""
    base = _data.base_losses(df)
    cols = ["loss_general"] + (["loss_domain"] if target in ("both", "domain") else [])
    have = {(str(d), float(n)) for d, n, ok in zip(base["domain"], base["n_params"],
                                                    base[cols].notna().all(axis=1), strict=True) if ok}
    probed = _data.fit_rows(df)[["domain", "n_params"]].drop_duplicates()
    return all((str(d), float(n)) in have for d, n in zip(probed["domain"], probed["n_params"], strict=True))


def _candidates(df: pd.DataFrame, target: str, candidates: Sequence[str] | None, notes: list[str]) -> list[str]:
    names = list(DEFAULT_CANDIDATES if candidates is None else candidates)
    out = []
    for c in names:
        law = get_law(c)
        if law.family == "cpt" and not _has_base_rows(df, target):
            notes.append(f"{law.name} left out: it is anchored at the base models' losses and some (domain, size) "
                         "has no base row (tokens == 0)")
            continue
        if law.name not in out:
            out.append(law.name)
    if len(out) < 2:
        raise BayesDCPTError(f"law='auto' needs at least two candidate laws, got {out}")
    return out


def _lpd_matrix(scores: dict[str, list[HoldoutScore]]) -> pd.DataFrame:
    """Held-out runs (split, target, run) x laws: each run's log predictive density, the runs every law scored."""
    cols = {}
    for name, sc in scores.items():
        runs = pd.concat([s.runs for s in sc], ignore_index=True) if sc else pd.DataFrame(
            columns=["split", "target", "run_id", "lpd"])
        cols[name] = runs.set_index(["split", "target", "run_id"])["lpd"]
    return pd.concat(cols, axis=1, join="inner")


def _stacked_scores(scores: dict[str, list[HoldoutScore]], weights: dict[str, float], splits: list,
                    zero_ratio: bool, n_draws: int, seed: int) -> list[HoldoutScore]:
    """The refits of every split stacked with ``weights``, scored: the stacked predictor's held-out errors."""
    out = []
    for split in splits:
        posts, w = [], []
        for name, sc in scores.items():
            hit = [s for s in sc if s.split == split.kind]
            if hit and weights[name] > 0:
                posts.append(hit[0].info["posterior"])
                w.append(weights[name])
        if not posts:
            continue
        post = stacked_posterior(posts, np.asarray(w), n_draws, seed)
        out.append(score_split(post, split, law="stacked", zero_ratio=zero_ratio, seed=seed))
    return out


def _fit_candidates(df: pd.DataFrame, names: list[str], target: str, seed: int, notes: list[str],
                    fit_kwargs: dict[str, Any]) -> dict[str, Any]:
    fits = {}
    for c in names:
        try:
            fits[c] = fit_one(df, c, target, seed=seed, **fit_kwargs)
        except FitError as exc:
            notes.append(f"{c} left out: {exc}")
    if len(fits) < 2:
        raise BayesDCPTError(f"law='auto': fewer than two candidate laws could be fitted ({'; '.join(notes)})")
    return fits


def fit_auto(data: Any, target: str = "both", *, candidates: Sequence[str] | None = None, seed: int = 0,
             n_draws: int | None = None, splits: Sequence[str] = DEFAULT_SPLITS, refit: dict[str, Any] | None = None,
             discrepancy: bool = True, **fit_kwargs: Any) -> AutoFit:
    """Fit the candidate laws, weight them by held-out stacking and build the stacked posterior.

    Parameters
    ----------
    data
        Schema frame or file (validated).
    target
        ``"both"``, ``"general"`` or ``"domain"``.
    candidates
        Laws to weigh (default :data:`DEFAULT_CANDIDATES`; ``cpt`` is dropped, with a note, when some probed
        (domain, size) has no base row).
    seed
        Seed of every fit, refit and of the stacked draws.
    n_draws
        Draws of the stacked posterior (default: the largest candidate's).
    splits
        Held-out splits that weigh the laws (:data:`~bayes_dcpt.fitting.extrapolation.DEFAULT_SPLITS`; add
        ``"ratio"`` for held-out ratios).
    refit
        Sampler settings of the held-out refits (:data:`~bayes_dcpt.fitting.extrapolation.REFIT_DEFAULTS`).
    discrepancy
        Store the discrepancy measured by the stacked refits on the stacked posterior (and each candidate's on
        its own); it costs no further refit.
    **fit_kwargs
        Settings of every candidate's full fit (:func:`bayes_dcpt.fitting.dcpt.fit`), over :data:`AUTO_DEFAULTS`.
    """
    t0 = time.perf_counter()
    df = _data.load(data)
    notes: list[str] = []
    names = _candidates(df, target, candidates, notes)
    kw = {**AUTO_DEFAULTS, "warn": False, **fit_kwargs}
    warn = bool(kw.pop("warn"))
    fits = _fit_candidates(df, names, target, seed, notes, kw)
    # every law is scored on the same rows: the zero own-ratio rows only when every candidate fits them
    zr = all(f.law.family == "cpt" or f.config.zero_ratio for f in fits.values())
    split_list = make_splits(df, splits)
    scores = {n: holdout_scores(f, split_list, zero_ratio=zr, seed=seed, refit=refit, keep=True)
              for n, f in fits.items()}
    lpd = _lpd_matrix(scores)
    if len(lpd):
        w = stacking_weights(lpd.to_numpy())
        weights = {n: float(w[i]) for i, n in enumerate(lpd.columns)}
    else:  # no split the data allow (one size and one checkpoint per run): equal weights, said so
        notes.append("no held-out split is possible with these data: the laws are weighted equally")
        weights = {n: 1.0 / len(fits) for n in fits}
    posts = [f.posterior for f in fits.values()]
    n = n_draws or max(p.n_draws for p in posts)
    stacked = stacked_posterior(posts, np.array([weights[k] for k in fits]), n, seed)
    table = holdout_table([s for sc in scores.values() for s in sc])
    extrapolation = None
    if discrepancy:
        for name, f in fits.items():
            attach(f, scores[name], float(sum(s.seconds for s in scores[name])), refit)
        st = _stacked_scores(scores, weights, split_list, zr, n, seed)
        kappa = discrepancy_from_scores(st, stacked.targets)
        stacked.ctx["discrepancy"] = kappa
        stacked.ctx["envelope"] = data_envelope(df)
        extrapolation = {"discrepancy": kappa, "splits": [s.kind for s in split_list],
                         "holdout": holdout_table(st).to_dict(orient="records")}
    for sc in scores.values():
        for s in sc:
            s.info.pop("posterior", None)
    reqs = {name: requirement_failures(f) for name, f in fits.items()}
    auto = AutoFit(fits, _comparison(lpd, weights), weights, reqs, stacked, holdout=table, method="holdout-stacking",
                   notes=notes, seed=seed, extrapolation=extrapolation, seconds=time.perf_counter() - t0)
    if warn:
        auto.diagnostics(warn=True)
    return auto


def _comparison(lpd: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Per law: pooled held-out elpd over the runs every law scored, its se, the difference to the best, weight."""
    rows = []
    for name, w in weights.items():
        v = lpd[name].to_numpy(float) if name in lpd else np.array([])
        rows.append({"law": name, "elpd": float(v.sum()) if v.size else np.nan,
                     "se": float(np.sqrt(v.size * np.var(v, ddof=1))) if v.size > 1 else np.nan,
                     "n_runs": int(v.size), "weight": w})
    comp = pd.DataFrame(rows).set_index("law").sort_values("elpd", ascending=False)
    best = comp.index[0]
    comp["elpd_diff"] = comp["elpd"].iloc[0] - comp["elpd"]
    comp["dse"] = [float(np.sqrt(len(lpd) * np.var(lpd[best] - lpd[n], ddof=1))) if n in lpd and len(lpd) > 1
                   else np.nan for n in comp.index]
    comp["rank"] = np.arange(len(comp))
    return comp
