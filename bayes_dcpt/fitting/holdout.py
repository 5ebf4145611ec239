"""Held-out splits of a fit's data, and how well a posterior refitted on one predicts what it did not see.

A law is used to extrapolate: to more tokens than were probed, to a larger model, to a ratio nobody ran. So it is
judged by exact leave-future-out cross-validation (Burkner, Gabry & Vehtari 2020): refit on the data with a block
held out, score the block. The blocks:

* ``"tokens"`` (leave-future-out): every run's checkpoints in the last third of the log-token range of the rows
  the fit fits (after the LR warm-up: :func:`make_splits` leaves the warm-up out first);
* ``"tokens_early"`` (leave-future-out from an earlier origin): the last two-thirds, so that the errors reach as far
  beyond the data as users extrapolate (skipped when it holds out the same rows as ``"tokens"``);
* ``"size"`` (leave-largest-size-out): the CPT rows of the largest model size; the base rows of every size stay
  in (users have their base models, the CPT law is anchored at them);
* ``"ratio"``: every other interior ratio of each domain (domains with at least four ratios).

Refits, not PSIS-LOO: holding out a third of the data moves the posterior far, the importance ratios' Pareto k
would be far above 0.7 and the estimate worthless; each refit reuses the compiled model (only the data change).

:func:`score_split` scores a posterior on a split's held-out rows: the log predictive density per held-out run,
``log mean_s p(y_run | theta_s)`` with the run-block likelihood (a run's checkpoints share an offset; in the
token splits the run's earlier, fitted checkpoints are conditioned on, ``p(y_late | y_early, theta)``), the
MAPE of the posterior-mean prediction, the coverage of the 90% predictive band of a new run, and per held-out
measurement its log error, predictive variance and distances beyond the training data (for the discrepancy,
:mod:`~bayes_dcpt.fitting.discrepancy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.discrepancy import AXES, data_envelope, extrapolation_distances
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.numerics.runblock import latent_student_log_likelihood, weighted_run_terms
from bayes_dcpt.posterior.streams import stream_shift

__all__ = ["SPLITS", "HoldoutScore", "Split", "make_splits", "score_split"]

SPLITS = ("tokens", "tokens_early", "size", "ratio")
_Z90 = 1.6448536269514722


@dataclass(frozen=True)
class Split:
    """A held-out split: fit ``train`` (schema rows, base rows included), score ``test`` (CPT rows)."""

    kind: str
    train: pd.DataFrame = field(repr=False)
    test: pd.DataFrame = field(repr=False)
    description: str = ""


def _tokens_split(df: pd.DataFrame, origin: float = 2.0 / 3.0, kind: str = "tokens") -> Split | None:
    """Leave-future-out from ``origin`` (a fraction of the CPT rows' log-token range): later checkpoints held out.

    ``None`` when the data have one token count, or (for the early origin) when the rows kept for fitting have fewer
    than two token counts: the law's drop along D would be its prior's, and the errors would measure the prior.
    """
    cpt = _data.fit_rows(df)
    lo, hi = np.log(cpt["tokens"].min()), np.log(cpt["tokens"].max())
    if hi - lo <= 0:
        return None
    cut = float(np.exp(lo + origin * (hi - lo)))
    held = (df["tokens"] > cut * (1 + 1e-9)).to_numpy()
    kept = cpt["tokens"][cpt["tokens"] <= cut * (1 + 1e-9)]
    if not held.any() or held.all() or (kind != "tokens" and kept.nunique() < 2):
        return None
    part = "third" if kind == "tokens" else "two-thirds"
    return Split(kind, df[~held].reset_index(drop=True), df[held].reset_index(drop=True),
                 f"each run's checkpoints beyond {cut:,.0f} tokens (the last {part} of log D) held out")


def _tokens_early_split(df: pd.DataFrame) -> Split | None:
    """Leave-future-out from a third of the log-token range: errors as far beyond the data as users extrapolate.

    The ``"tokens"`` origin (two-thirds) sees errors at most half the data's log-token range out, where a law that
    fits the data is still close; a user asks for 2-4x the probed tokens, often further. Calibrated from that origin
    alone the discrepancy slope was often 0 and the 90% bands of the last third of tokens covered 0.60-0.77
    (BENCHMARKS.md, "Honest fit"); the errors from this second origin reach twice as far.
    """
    return _tokens_split(df, 1.0 / 3.0, "tokens_early")


def _size_split(df: pd.DataFrame) -> Split | None:
    cpt = _data.fit_rows(df)
    sizes = np.unique(cpt["n_params"].to_numpy(float))
    if len(sizes) < 2:
        return None
    held = ((df["tokens"] > 0) & np.isclose(df["n_params"].to_numpy(float), sizes[-1])).to_numpy()
    return Split("size", df[~held].reset_index(drop=True), df[held].reset_index(drop=True),
                 f"the CPT rows of the largest size N = {sizes[-1]:,.0f} held out (its base rows kept)")


def _ratio_split(df: pd.DataFrame) -> Split | None:
    cpt = _data.fit_rows(df)
    held = np.zeros(len(df), bool)
    for dom, g in cpt.groupby("domain"):
        ratios = np.unique(g["r_domain"].dropna().to_numpy(float))
        if len(ratios) < 4:
            continue
        out = ratios[1:-1][::2]  # every other interior ratio
        held |= ((df["domain"] == dom) & (df["tokens"] > 0)
                 & np.isin(df["r_domain"].to_numpy(float), out)).to_numpy()
    if not held.any():
        return None
    return Split("ratio", df[~held].reset_index(drop=True), df[held].reset_index(drop=True),
                 "every other interior ratio of each domain held out")


def make_splits(df: pd.DataFrame, kinds: Sequence[str] = ("tokens", "size"), *,
                burn_in: str = "warmup") -> list[Split]:
    """The held-out splits of validated measurements ``df`` among ``kinds`` that the data allow.

    ``"size"`` needs at least two model sizes, ``"ratio"`` a domain with at least four ratios, ``"tokens"`` and
    ``"tokens_early"`` at least two token counts left to fit; a split the data do not allow is left out (the caller
    sees which splits came back), and so is ``"tokens_early"`` when it holds out the same rows as ``"tokens"``
    (few checkpoints: one origin is all the data have).

    ``burn_in``: the fit's (:class:`~bayes_dcpt.fitting.config.FitConfig`). With ``"warmup"`` the checkpoints
    inside their run's LR warm-up (:func:`~bayes_dcpt.data.warmup.in_warmup`, judged on the whole runs) are left
    out of every split first: the law is not fitted to them, so a refit must not be conditioned on them, nor
    score them, nor place the token origins on their range. Judged on a run cut at an origin instead, a warm-up
    checkpoint was taken for the peak (the highest LR the cut run had reached) and fitted: on the example grid
    the early origin's refit fitted the checkpoint at 40% of the peak LR (BENCHMARKS.md, "The warm-up in the
    held-out refits").
    """
    makers = {"tokens": _tokens_split, "tokens_early": _tokens_early_split, "size": _size_split,
              "ratio": _ratio_split}
    unknown = [k for k in kinds if k not in makers]
    if unknown:
        raise FitError(f"unknown held-out split(s) {unknown}; choose among {', '.join(SPLITS)}")
    df = _data.load(df)
    df = _data.after_burn_in(df, burn_in)
    out: list[Split] = []
    for k in kinds:
        s = makers[k](df)
        if s is None or (k.startswith("tokens") and any(o.kind.startswith("tokens") and len(o.test) == len(s.test)
                                                         for o in out)):
            continue  # the token origins' held-out sets are nested: the same size means the same rows
        out.append(s)
    return out


# ------------------------------------------------------------------------------------------------ scoring
@dataclass
class HoldoutScore:
    """A posterior's score on one split's held-out rows.

    ``runs``: one row per held-out (target, run) with its log predictive density ``lpd`` (the run's held-out
    checkpoints jointly), ``lpd_points`` (with ``score_split(..., per_point=True)``, else NaN: the sum of each
    held-out checkpoint's own log predictive density, each given the run's fitted checkpoints) and ``n_points``;
    ``points``: one row per held-out measurement with the prediction ``pred`` (posterior mean), the band ``lo``,
    ``hi``, ``inside``, the log error ``log_error`` (``log y - E[log f]``), the predictive log-scale sd
    ``log_sd`` and the distances ``delta_tokens``, ``delta_size``, ``delta_ratio`` beyond the training data.
    """

    law: str
    split: str
    runs: pd.DataFrame
    points: pd.DataFrame
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Per target: held-out elpd (sum of run lpds) and its se, runs, points, MAPE (%) and coverage."""
        rows = []
        for t, g in self.runs.groupby("target", sort=False):
            p = self.points[self.points["target"] == t]
            n = len(g)
            rows.append({"law": self.law, "split": self.split, "target": t, "elpd": float(g["lpd"].sum()),
                         "se": float(np.sqrt(n * np.var(g["lpd"], ddof=1))) if n > 1 else np.nan,
                         "n_runs": n, "n_points": len(p), "mape": float(100 * np.mean(p["ape"])),
                         "coverage": float(np.mean(p["inside"]))})
        return pd.DataFrame(rows)


def _scored_rows(frame: pd.DataFrame, target: str, zero_ratio: bool) -> pd.DataFrame:
    """CPT rows with a measured ``target`` loss (and a positive own ratio unless ``zero_ratio``)."""
    rows = _data.fit_rows(frame)
    rows = rows[rows[f"loss_{target}"].notna()]
    if not zero_ratio:
        own = rows["r_domain"] if target == "domain" else 1.0 - rows["r_domain"]
        rows = rows[own.to_numpy() > 0]
    return rows.reset_index(drop=True)


def _run_sums(post: Any, target: str, frame: pd.DataFrame, logm: np.ndarray, codes: np.ndarray, n_runs: int,
              streams: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """The pieces of the run-block log-likelihood of the rows of ``frame`` (run ``codes``), per draw.

    ``e`` and ``v``: each row's residual and noise variance ``(S, n)``; ``tau`` and ``nu``: each run's offset sd and
    degrees of freedom ``(S, n_runs)`` (``nu`` None: Normal); ``student``: sampled-offset fits, whose checkpoints
    are Student-t given the offset (no closed form by sums). ``streams``: each row's data-stream shift and noise
    factor (:func:`~bayes_dcpt.posterior.streams.stream_shift`), as the predictive draws apply them: the residual
    is taken from the shifted law, and the checkpoint noise and the run offset (the run's mean factor) are scaled.
    """
    S = logm.shape[0]
    nz = post.noise_rows(target, frame["domain"])  # (S, n): each row's (its domain's) noise

    def per_run(v: np.ndarray) -> np.ndarray:  # (S, n_runs): the value of each run's rows (one domain per run)
        out = np.repeat(v[:, :1], n_runs, axis=1)
        out[:, codes] = v
        return out

    e = np.log(frame[f"loss_{target}"].to_numpy(float))[None, :] - logm
    sd = np.asarray(post.checkpoint_sd(frame, target, logm), float)
    tau = per_run(nz["tau"]) if "tau" in nz else np.zeros((S, n_runs))
    run_factor = np.ones(n_runs)
    if streams is not None:
        shift, factor = streams
        e = e - shift[None, :]
        sd = sd * factor[None, :]
        run_factor = np.bincount(codes, factor, n_runs) / np.maximum(np.bincount(codes, minlength=n_runs), 1)
        tau = tau * run_factor
    nu = per_run(nz["nu"]) if "nu" in nz else None
    student = nu is not None and not post.ctx.get("run_mixing")
    sig = per_run(nz["sigma"]) * run_factor if student else None
    return {"e": e, "v": sd**2, "tau": tau, "nu": nu, "student": student, "sigma": sig}


def _block_sums(parts: dict[str, Any], codes: np.ndarray, n_runs: int) -> tuple[np.ndarray, ...]:
    """``w0 = sum 1/v``, ``w1 = sum e/v``, ``w2 = sum e^2/v``, ``sum log v`` and the count of each run's rows."""
    M = np.zeros((len(codes), n_runs))
    M[np.arange(len(codes)), codes] = 1.0
    e, v = parts["e"], parts["v"]
    return (1.0 / v) @ M, (e / v) @ M, (e**2 / v) @ M, np.log(v) @ M, M.sum(axis=0)[None, :]


def _run_log_lik(post: Any, target: str, frame: pd.DataFrame, logm: np.ndarray, codes: np.ndarray,
                 n_runs: int, streams: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Run-block log-likelihood ``(S, n_runs)`` of the rows of ``frame`` (run ``codes``), offsets integrated out."""
    if len(frame) == 0:
        return np.zeros((logm.shape[0], n_runs))
    return _parts_log_lik(_run_sums(post, target, frame, logm, codes, n_runs, streams), codes, n_runs)


def _parts_log_lik(parts: dict[str, Any], codes: np.ndarray, n_runs: int) -> np.ndarray:
    """:func:`_run_log_lik` from the pieces :func:`_run_sums` computed."""
    if parts["student"]:  # sampled-offset fits: Student-t checkpoints
        out = np.zeros((parts["e"].shape[0], n_runs))
        for k in np.unique(codes):
            m = codes == k
            out[:, k] = latent_student_log_likelihood(parts["e"][:, m], np.zeros(int(m.sum())),
                                                      parts["sigma"][:, k], parts["tau"][:, k], parts["nu"][:, k])
        return out
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return weighted_run_terms(np, *_block_sums(parts, codes, n_runs), parts["tau"]**2, parts["nu"])


def _point_log_lik(parts: dict[str, Any], codes: np.ndarray, n_test: int, n_runs: int) -> np.ndarray | None:
    """Each held-out checkpoint's log-likelihood given its run's fitted ones, ``(S, n_test)`` (None: no closed form).

    ``parts`` (:func:`_run_sums`) hold the ``n_test`` held-out rows first, then the conditioning rows; ``codes``
    their runs. A point's density is its run's block with the point added, divided by the block without it: the run
    offset is what the fitted checkpoints say, and the other held-out checkpoints of the run are left out (they are
    scored alone).
    """
    if parts["student"]:
        return None
    cond = slice(n_test, None)
    sums = _block_sums({"e": parts["e"][:, cond], "v": parts["v"][:, cond]}, codes[cond], n_runs)
    c = codes[:n_test]
    e, v = parts["e"][:, :n_test], parts["v"][:, :n_test]
    var_u = parts["tau"][:, c] ** 2
    nu = None if parts["nu"] is None else parts["nu"][:, c]
    w0, w1, w2, lv, n = (x[:, c] for x in sums)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        with_point = weighted_run_terms(np, w0 + 1.0 / v, w1 + e / v, w2 + e**2 / v, lv + np.log(v), n + 1.0,
                                        var_u, nu)
        return with_point - weighted_run_terms(np, w0, w1, w2, lv, n, var_u, nu)


def _band(post: Any, target: str, test: pd.DataFrame, seed: int, ci: float,
          logm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``ci`` predictive band of a new run and its log-scale sd (from the 90% band).

    ``logm`` is the law's log mean per draw and row, computed already for the scores.
    """
    frame = test[["domain", "n_params", "tokens", "r_domain", "run_id"]].reset_index(drop=True)
    with np.errstate(all="ignore"):
        draws = np.log(post.sample_observations(frame, target, seed=seed, log_mean=logm))
    q = weighted_quantile(draws, [(1 - ci) / 2, 1 - (1 - ci) / 2, 0.05, 0.95])  # vectorised unless NaN draws
    return np.exp(q[0]), np.exp(q[1]), (q[3] - q[2]) / (2 * _Z90)


def _score_target(post: Any, split: Split, target: str, zero_ratio: bool, seed: int, ci: float,
                  envelope: dict[str, Any], per_point: bool = False) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    test = _scored_rows(split.test, target, zero_ratio)
    if test.empty:
        return None
    test = test[test["domain"].isin(post.domains)].reset_index(drop=True)
    cond = _scored_rows(split.train, target, zero_ratio)
    cond = cond[cond["run_id"].isin(test["run_id"])].reset_index(drop=True)
    runs, codes = np.unique(test["run_id"].astype(str).to_numpy(), return_inverse=True)
    cond_codes = np.searchsorted(runs, cond["run_id"].astype(str).to_numpy())
    both = pd.concat([test, cond], ignore_index=True)
    with np.errstate(all="ignore"):
        logm_all = post.mean_log_loss(both, target)
    logm_test = logm_all[:, :len(test)]
    # a new size on a probed data stream is centred on its stream's shared deviation, as predictions centre it
    shift, factor = stream_shift(post.ctx, test, target)
    # the conditioning rows were fitted at their size (no shift), so they keep shift 0 and factor 1
    on_streams = (np.r_[shift, np.zeros(len(cond))], np.r_[factor, np.ones(len(cond))])
    all_codes = np.r_[codes, cond_codes]
    parts = _run_sums(post, target, both, logm_all, all_codes, len(runs), on_streams)
    ll_all = _parts_log_lik(parts, all_codes, len(runs))
    ll_cond = _run_log_lik(post, target, cond, logm_all[:, len(test):], cond_codes, len(runs))
    ll = np.where(np.isfinite(ll_all), ll_all - ll_cond, -np.inf)
    lpd = logsumexp(ll, axis=0) - np.log(ll.shape[0])
    ll_pt = _point_log_lik(parts, all_codes, len(test), len(runs)) if per_point else None
    if ll_pt is None:
        lpd_points = np.full(len(runs), np.nan)
    else:
        ll_pt = np.where(np.isfinite(ll_pt), ll_pt, -np.inf)
        lpd_points = np.bincount(codes, logsumexp(ll_pt, axis=0) - np.log(ll_pt.shape[0]), len(runs))
    first = test.groupby("run_id", sort=True).first()
    run_rows = pd.DataFrame({"split": split.kind, "target": target, "run_id": runs,
                             "domain": first.loc[runs, "domain"].to_numpy(),
                             "n_params": first.loc[runs, "n_params"].to_numpy(float),
                             "r_domain": first.loc[runs, "r_domain"].to_numpy(float),
                             "n_points": np.bincount(codes, minlength=len(runs)), "lpd": lpd,
                           "lpd_points": lpd_points})
    lo, hi, log_sd = _band(post, target, test, seed, ci, logm_test)
    y = test[f"loss_{target}"].to_numpy(float)
    with np.errstate(all="ignore"):
        pred = np.nanmean(np.exp(logm_test), axis=0) * np.exp(shift)
        log_error = np.log(y) - np.nanmean(logm_test, axis=0) - shift
    dist = extrapolation_distances(test, envelope)
    points = pd.DataFrame({"split": split.kind, "target": target, "domain": test["domain"].to_numpy(),
                           "n_params": test["n_params"].to_numpy(float), "tokens": test["tokens"].to_numpy(float),
                           "r_domain": test["r_domain"].to_numpy(float), "run_id": test["run_id"].to_numpy(),
                           "loss": y, "pred": pred, "lo": lo, "hi": hi, "inside": (y >= lo) & (y <= hi),
                           "ape": np.abs(pred - y) / y, "log_error": log_error, "log_sd": log_sd,
                           **{f"delta_{a}": dist[a].to_numpy() for a in AXES}})
    return run_rows, points


def score_split(post: Any, split: Split, *, law: str = "", zero_ratio: bool = False, seed: int = 0,
                ci: float = CI_PROB, per_point: bool = False) -> HoldoutScore:
    """Score posterior ``post`` (fitted on ``split.train``) on the held-out rows of ``split``.

    Parameters
    ----------
    post
        A :class:`~bayes_dcpt.posterior.Posterior` (or subclass) fitted on ``split.train``.
    split
        The split.
    law
        The name recorded with the score.
    zero_ratio
        Also score losses measured with none of their own corpus (the general loss at ``r_domain = 1``, the domain
        loss at ``r_domain = 0``). Laws compared with each other must be scored on the same rows.
    seed, ci
        Seed of the predictive simulation and probability of its band.
    per_point
        Also score each held-out checkpoint on its own (``runs["lpd_points"]``; NaN otherwise). It does not make
        the scores less seed-dependent and triples the scoring time at 32,400 rows (BENCHMARKS.md), so it is off.
    """
    envelope = data_envelope(split.train)
    runs, points = [], []
    for t in post.targets:
        res = _score_target(post, split, t, zero_ratio, seed, ci, envelope, per_point)
        if res is not None:
            runs.append(res[0])
            points.append(res[1])
    if not runs:
        raise FitError(f"split {split.kind!r}: no held-out measurement of the fitted targets to score")
    return HoldoutScore(law, split.kind, pd.concat(runs, ignore_index=True), pd.concat(points, ignore_index=True))
