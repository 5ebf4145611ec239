"""``law="auto"``: fit several laws, weight them by how they *extrapolate*, predict with the stacked posterior.

A law is used beyond its data (later tokens, a larger model), and the law that interpolates best is not the one
that extrapolates best: PSIS-LOO leaves one checkpoint out of the middle of a curve and rewards interpolation. So
:func:`fit_auto` refits each candidate on held-out splits of the data (each run's last third of log D; the
largest model size; the last two-thirds of log D; :mod:`~bayes_dcpt.fitting.holdout`), and weighs the candidates
by stacking (Yao, Vehtari, Simpson & Gelman 2018) of their held-out log predictive densities, one per held-out
run, the splits pooled. The refits go split by split, and a law the first split clearly rules out is not
refitted on the next ones (:func:`screened_out`). Only the laws with weight are then fitted to all the data (the
weights need the refits alone). The stacked posterior (:mod:`~bayes_dcpt.fitting.stacked`) draws from the full
fits in proportion to the weights; the same refits, stacked with the same weights, measure how its error grows
beyond the data (the discrepancy stored in ``posterior.ctx``, :mod:`~bayes_dcpt.fitting.extrapolation`). Beside
each weight: the held-out elpd, MAPE and coverage per split, the sampler diagnostics and posterior predictive
checks, and the paper's requirement checks.

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
from bayes_dcpt.fitting.config import check_cpt_options, resolve_parametrization
from bayes_dcpt.fitting.dcpt import _identifiable_run_effect
from bayes_dcpt.fitting.dcpt import fit as fit_one
from bayes_dcpt.fitting.design import run_capacity
from bayes_dcpt.fitting.diagnostics import APPROXIMATE_SAMPLERS, SETTLED_RHAT
from bayes_dcpt.fitting.discrepancy import attach_data_context, stacking_weight_interval, stacking_weights
from bayes_dcpt.fitting.extrapolation import (
    DEFAULT_SPLITS,
    MODEL_SETTINGS,
    REFIT_RETRY_MAX_OBS,
    attach,
    discrepancy_from_scores,
    holdout_table,
    law_holdout_scores,
    log_losses,
    refit_settings,
    retry_for,
    retry_within,
    stream_components,
)
from bayes_dcpt.fitting.holdout import HoldoutScore, make_splits, score_split
from bayes_dcpt.fitting.progress import stage
from bayes_dcpt.fitting.samplers import recordable
from bayes_dcpt.fitting.stacked import stack_laws, stacked_posterior
from bayes_dcpt.laws.registry import get_law
from bayes_dcpt.posterior.streams import stream_deviations, stream_summary

__all__ = ["AUTO_DEFAULTS", "DEFAULT_CANDIDATES", "SCREEN_SE", "SCREEN_WEIGHT", "AutoDiagnostics", "AutoFit",
           "fit_auto", "load_auto", "predicts_zero_ratio", "screened_out", "stack_draws", "stack_laws"]

#: Candidate laws, in order; ``cpt`` only when the data have base rows for every (domain, size).
DEFAULT_CANDIDATES = ("cpt", "L3", "L1", "L7")
#: A law is screened out after a split when its stacking weight there is below SCREEN_WEIGHT and its held-out
#: elpd is more than SCREEN_SE standard errors below the best law's (see :func:`screened_out`).
SCREEN_WEIGHT = 1e-3
SCREEN_SE = 4.0
#: A law's weight is "not settled" by the held-out runs when its 90% Bayesian-bootstrap interval
#: (:func:`~bayes_dcpt.fitting.discrepancy.stacking_weight_interval`) is wider than this: ``law="auto"`` then says
#: so, since another seed or a few more runs could move the answer from one law to another.
UNSETTLED_WIDTH = 0.5
#: Sampler settings of the candidates' full fits unless given (see BENCHMARKS.md for the measurement).
AUTO_DEFAULTS: dict[str, Any] = {"draws": 500, "tune": 500, "chains": 2}
#: A candidate with weight whose full fit fails its sampler checks is sampled once more with these settings, when
#: the caller left the draws to the default and the data have fewer than ``REFIT_RETRY_MAX_OBS`` log losses.
#: Measured on the example grid (BENCHMARKS.md, "How firmly the held-out runs settle auto's weights"): L1's fit
#: (weight 0.33) had R-hat 1.026 and ESS 118 at 4 x 1000 (the general loss's far-level spread over three domains);
#: 4 x 2000 at target_accept 0.95 gave R-hat 1.010, 4 x 3000 at 0.9 a stuck chain (R-hat 1.15), and 4 x 3000 at
#: 0.95 passed (R-hat 1.007, ESS >= 715, 0 divergences) in 54 s.
FULL_RETRY: dict[str, Any] = {"draws": 3000, "tune": 1000, "chains": 4, "target_accept": 0.95}


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


def predicts_zero_ratio(names: Sequence[str], model: dict[str, Any]) -> bool:
    """Whether every law in ``names`` fits (and so is scored on) the rows of zero own ratio.

    The weights compare the candidates on the rows they all fit; the stacked predictor's discrepancy is measured on
    the rows its *weighted* laws fit. Measured on the example grid (python, last third of tokens held out, all weight
    on ``cpt``): scored without the ratio-0 runs, as the weights were, the domain loss's token slope came out 0.0024
    against 0.0082 from the same law's own calibration, and the stacked band covered 0.67 against 0.90.
    """
    return all(get_law(n).family == "cpt" or bool(model.get("zero_ratio", False)) for n in names)


def _lpd_matrix(scores: dict[str, list[HoldoutScore]]) -> pd.DataFrame:
    """Held-out runs (split, target, run) x laws: each run's log predictive density, the runs every law scored."""
    cols = {}
    for name, sc in scores.items():
        runs = pd.concat([s.runs for s in sc], ignore_index=True) if sc else pd.DataFrame(
            columns=["split", "target", "run_id", "lpd"])
        cols[name] = runs.set_index(["split", "target", "run_id"])["lpd"]
    return pd.concat(cols, axis=1, join="inner")


def _stacked_scores(scores: dict[str, list[HoldoutScore]], weights: dict[str, float], splits: list,
                    model: dict[str, Any], seed: int, streams: dict[str, Any] | None = None,
                    fitted: Any = None) -> list[HoldoutScore]:
    """The refits of every split stacked with ``weights``, scored: the stacked predictor's held-out errors.

    Scored on the rows of the laws *with weight* (:func:`predicts_zero_ratio`), not on the rows every candidate fits.
    ``streams``: the stacked fit's data-stream variances (``extrapolation.stream_components``), with which each
    stacked refit predicts a held-out size as the stacked fit will; ``fitted`` maps a split's training rows to
    the rows the candidates fit (the LR warm-up left out).

    The stacked refit has as many draws as the largest refit: more would repeat the refits' draws (at 32,400 rows
    scoring 4,000 draws, the full fits' count with the CLI's settings, took 107 s on the tokens split against 25 s
    with the refits' 800; BENCHMARKS.md, scale).
    """
    zero_ratio = predicts_zero_ratio([c for c, w in weights.items() if w > 0], model)
    out = []
    for split in splits:
        posts, w, unconverged, fitted_sizes = [], [], [], []
        for name, sc in scores.items():
            hit = [s for s in sc if s.split == split.kind]
            if hit and weights[name] > 0:
                posts.append(hit[0].info["posterior"])
                w.append(weights[name])
                unconverged += [f"{name}: {u}" for u in hit[0].info.get("unconverged", ())]
                fitted_sizes.append(hit[0].info.get("fitted_sizes"))
        if not posts:
            continue
        post = stacked_posterior(posts, np.asarray(w), max(p.n_draws for p in posts), seed)
        if streams:
            post.ctx["streams"] = stream_deviations(post, fitted(split.train), components=streams)
        out.append(score_split(post, split, law="stacked", zero_ratio=zero_ratio, seed=seed))
        out[-1].info["unconverged"] = unconverged  # the stacked refit is as converged as its parts
        if sizes := [n for n in fitted_sizes if n is not None]:  # its parts fitted the same rows' sizes
            out[-1].info["fitted_sizes"] = min(sizes)
    return out


def _model_settings(df: pd.DataFrame, kw: dict[str, Any]) -> dict[str, Any]:
    """The candidates' model settings from ``kw`` (popped), resolved on all of ``df`` as their full fits would be."""
    model = {k: kw.pop(k) for k in MODEL_SETTINGS if k in kw}
    model["parametrization"] = resolve_parametrization(model.get("parametrization", "auto"), df)
    model["run_effect"] = _identifiable_run_effect(df, model.get("run_effect", True))
    return model


def elpd_gap(lpd: pd.DataFrame, best: str, name: str) -> tuple[float, float]:
    """How far law ``name``'s pooled held-out elpd is below ``best``'s, and the se of that paired difference."""
    diff = (lpd[best] - lpd[name]).to_numpy(float)
    return float(diff.sum()), float(np.sqrt(diff.size * np.var(diff, ddof=1))) if diff.size > 1 else np.nan


def screened_out(lpd: pd.DataFrame) -> dict[str, str]:
    """Laws one split's held-out scores already rule out: ``{law: reason}``.

    ``lpd`` is (held-out runs of one split) x laws. A law is ruled out when its stacking weight on the split is 0
    (below :data:`SCREEN_WEIGHT`: the others' predictions leave nothing for it) *and* its held-out elpd is below the
    best law's by more than :data:`SCREEN_SE` standard errors of the paired difference. Such a law could regain
    weight only by predicting a later split better than every other law by a wide margin; its refits there are
    the costliest ones (a misfitting law saturates its NUTS trees), so ``law="auto"`` skips them (BENCHMARKS.md,
    scale: the base-anchored law's size refit alone was 422 s at 32,400 rows).
    """
    if lpd.shape[1] < 2 or len(lpd) < 2:
        return {}
    w = stacking_weights(lpd.to_numpy())
    total = lpd.sum()
    best = total.idxmax()
    out = {}
    for i, name in enumerate(lpd.columns):
        gap, se = elpd_gap(lpd, best, name)
        if name != best and w[i] < SCREEN_WEIGHT and np.isfinite(gap) and gap > SCREEN_SE * se:
            out[name] = f"held-out elpd {gap:.1f} below {best} ({gap / se if se > 0 else np.inf:.1f} se), weight 0"
    return out


def _refit_split(df: pd.DataFrame, c: str, target: str, model: dict[str, Any], split: Any, k: int, zr: bool,
                 seed: int, refit: dict[str, Any], slots: dict[str, int]) -> list[HoldoutScore]:
    """Law ``c``'s held-out refit on ``split`` (the ``k``-th), scored; ``slots[c]`` raised to what it compiled with."""
    got = law_holdout_scores(df, c, target, model, [split], zero_ratio=zr, seed=seed, refit=refit, keep=True,
                             run_slots=slots[c], first=k)
    slots[c] = max([slots[c], *(int(s.info.get("run_slots", 0)) for s in got)])
    return got


def _disagree(got: list[HoldoutScore]) -> float | None:
    """The R-hat of a refit whose chains disagree (above :data:`SETTLED_RHAT`), else None."""
    if not got or not got[0].info.get("unconverged"):
        return None
    rhat = float(got[0].info.get("rhat_max", np.nan))
    return rhat if not rhat <= SETTLED_RHAT else None


def _split_refits(df: pd.DataFrame, active: list[str], target: str, model: dict[str, Any], split: Any, k: int,
                  zr: bool, seed: int, refit: dict[str, Any], slots: dict[str, int], screen: bool,
                  notes: list[str]) -> tuple[dict[str, list[HoldoutScore]], list[str]]:
    """Every active law's refit on one split, an unconverged one sampled again; and the laws screened out first.

    A refit that fails its checks is sampled again with ``refit["retry"]`` (None: never) on data of fewer than
    :data:`~bayes_dcpt.fitting.extrapolation.REFIT_RETRY_MAX_OBS` log losses: the near misses first, then the
    refits whose chains disagree (R-hat above :data:`SETTLED_RHAT`). With ``screen``, such a refit is not sampled
    again when another law's refit converged and the split's held-out scores already rule its law out
    (:func:`screened_out`); the law is screened out here. On the example and long-CPT grids (19 such refits),
    sampling again moved a refit's held-out elpd by at most 27 nats where the laws screened out lay 147-577 below
    the best, every screening decision was the same on the first refit's scores as on the retried ones', and a
    retry took 3-5x a first refit's time (BENCHMARKS.md, "Refits whose chains disagree").
    """
    got = {c: _refit_split(df, c, target, model, split, k, zr, seed, {**refit, "retry": None}, slots)
           for c in active}

    def failed() -> list[str]:
        return [c for c in active if got[c] and got[c][0].info.get("unconverged")]

    first = {c: got[c][0] for c in failed()}
    retry = retry_for(refit, log_losses(df, target)) if first else None
    if retry is None:
        return got, []

    def again(c: str) -> None:
        got[c] = _refit_split(df, c, target, model, split, k, zr, seed, {**refit, **retry, "retry": None}, slots)
        for s in got[c]:  # as one refit sampled again: the first attempt's problems and time
            s.info["retried_after"] = list(first[c].info["unconverged"])
            s.seconds += first[c].seconds

    far = sorted((c for c in first if _disagree(got[c]) is not None), key=lambda c: _disagree(got[c]) or 0.0)
    for c in sorted((c for c in first if c not in far), key=lambda c: float(first[c].info["rhat_max"])):
        again(c)
    out: list[str] = []
    if screen and far and (ok := [c for c in active if got[c] and c not in failed()]):
        lpd = _lpd_matrix({c: got[c] for c in active if got[c]})
        for c, why in screened_out(lpd).items():
            if c in far:
                out.append(c)
                notes.append(f"{c} screened out at the {split.kind!r} split ({why}) on a refit whose chains "
                             f"disagree (R-hat {_disagree(got[c]):.3f} > {SETTLED_RHAT}) where {', '.join(ok)} "
                             "converged: not sampled again nor refitted on later splits, weight 0 (screen=False "
                             "samples it again and weighs it)")
    for c in far:
        if c not in out:
            again(c)
    return got, out


def _held_out(df: pd.DataFrame, names: list[str], target: str, model: dict[str, Any], split_list: list, zr: bool,
              seed: int, refit: dict[str, Any] | None, slots: dict[str, int], notes: list[str],
              screen: bool) -> tuple[dict[str, list[HoldoutScore]], dict[str, str]]:
    """Each candidate's held-out refits and scores, split by split, and the laws screened out on the way.

    With ``screen``, a split screens out the laws whose refits' chains disagree and whose first scores already rule
    them out where another law's refit converged (:func:`_split_refits`: not sampled again), and, after each split
    but the last, the laws its held-out scores rule out (:func:`screened_out`); neither is refitted on the later
    splits. A candidate no split could refit is left out, with a note. ``refit["retry"]``: the settings an
    unconverged refit is sampled again with (None: never), on data of fewer than
    :data:`~bayes_dcpt.fitting.extrapolation.REFIT_RETRY_MAX_OBS` log losses (:func:`~bayes_dcpt.fitting.
    extrapolation.retry_for`).

    ``slots``: each candidate's run capacity, raised in place to the largest its refits compiled with, so that its
    later refits and its full fit reuse one compiled model (compiling is most of a refit's time: BENCHMARKS.md,
    "`law="auto"` on ~700 points" and "... and `auto`'s compiled models"). The CPT law counts a run once per loss
    it fits, the zero own-ratio losses too: its capacity on the example grid is twice what one slot per run gives,
    and its size split (fewer runs) compiled a model of its own.
    """
    refit = dict(refit or {})
    asked = recordable(refit_settings(refit))  # what each refit records: the settings asked, the retry's included
    scores: dict[str, list[HoldoutScore]] = {c: [] for c in names}
    screened: dict[str, str] = {}
    for k, split in enumerate(split_list):
        active = [c for c in names if c not in screened]
        got, apart = _split_refits(df, active, target, model, split, k, zr, seed, refit, slots, screen, notes)
        for c in active:
            for s in got[c]:
                s.info["refit"] = asked
            scores[c] += got[c]
        screened.update(dict.fromkeys(apart, split.kind))
        active = [c for c in active if c not in apart]
        if screen and k < len(split_list) - 1 and len(active) > 1:
            lpd = _lpd_matrix({c: hit for c in active if (hit := [s for s in scores[c] if s.split == split.kind])})
            for c, why in screened_out(lpd).items():
                screened[c] = split.kind
                later = ", ".join(repr(s.kind) for s in split_list[k + 1:])
                notes.append(f"{c} screened out after the {split.kind!r} split ({why}): not refitted on {later}, "
                             "weight 0 (screen=False refits every law on every split)")
    for c in names:
        if not scores[c] and split_list:
            notes.append(f"{c} left out: none of its held-out refits could be fitted")
            del scores[c]
    if len(scores) < 2:
        raise BayesDCPTError(f"law='auto': fewer than two candidate laws could be refitted ({'; '.join(notes)})")
    return scores, screened


def _weigh(scores: dict[str, list[HoldoutScore]], notes: list[str],
           screened: dict[str, str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Stacking weights of the laws not screened out (over the runs they all scored); the screened ones weigh 0."""
    lpd = _lpd_matrix({c: sc for c, sc in scores.items() if c not in screened})
    if len(lpd):
        w = stacking_weights(lpd.to_numpy())
        out = {n: float(w[i]) for i, n in enumerate(lpd.columns)}
        return lpd, {n: out.get(n, 0.0) for n in scores}
    # no split the data allow (one size and one checkpoint per run): equal weights, said so
    notes.append("no held-out split is possible with these data: the laws are weighted equally")
    return lpd, {n: 1.0 / len(scores) for n in scores}


def _retry_settings(fit_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``fit_kwargs`` with :data:`FULL_RETRY`'s sampler settings (never fewer draws or a lower target_accept)."""
    kw = dict(fit_kwargs)
    for k in ("draws", "tune", "chains"):
        kw[k] = max(int(kw.get(k) or 0), FULL_RETRY[k])
    given = dict(kw.get("sampler_kwargs") or {})
    given["target_accept"] = max(float(given.get("target_accept", 0.0)), FULL_RETRY["target_accept"])
    kw["sampler_kwargs"] = given
    return kw


def _fit_again(df: pd.DataFrame, c: str, target: str, seed: int, notes: list[str], fit_kwargs: dict[str, Any],
               first: Any) -> Any:
    """Candidate ``c`` sampled again (:data:`FULL_RETRY`) after its full fit ``first`` failed its sampler checks."""
    d = first.diagnostics(warn=False)
    kw = _retry_settings(fit_kwargs)
    problems = "; ".join(d.problems)
    settings = f"{kw['chains']} x {kw['draws']} draws at target_accept {kw['sampler_kwargs']['target_accept']:g}"
    try:
        with stage(f"{c}: sampled again ({settings}): {problems}"):
            again = fit_one(df, c, target, seed=seed, **kw)
    except FitError as exc:  # the first fit stands, with its failed checks said
        notes.append(f"{c}: its full fit failed the sampler checks ({problems}); sampling it again failed ({exc}), "
                     "so the first fit is kept")
        return first
    d2 = again.diagnostics(warn=False)
    notes.append(f"{c}: its full fit failed the sampler checks ({problems}) and was sampled again with {settings}: "
                 f"{'every check passes' if d2.sampler_ok else '; '.join(d2.problems)}")
    return again


def _worth_retrying(fits: dict[str, Any], weights: dict[str, float], c: str, notes: list[str]) -> bool:
    """Whether the failed full fit of weighted candidate ``c`` is sampled again.

    The retry (more draws, a higher target_accept) mends too few effective draws and a few divergences: the
    default law's full fit that missed R-hat by 0.001 passes after it. Chains that disagree do not come together
    with it (long-CPT grid, token split: L1 at R-hat 1.734 gave 1.733 again, L7 1.100 gave 1.042, 70 s of a 305 s
    fit, and both then left the stack). So when another weighted law's fit passes, a fit whose R-hat exceeds
    :data:`~bayes_dcpt.fitting.diagnostics.SETTLED_RHAT` is not sampled again; it leaves the stack
    (:func:`_drop_unconverged`). With no passing law every failed fit is retried, as the stack's last chance.
    """
    d = fits[c].diagnostics(warn=False)
    passing = [o for o in fits if o != c and weights[o] > 0 and fits[o].diagnostics(warn=False).sampler_ok]
    rhat = float(d.rhat_max)
    if not passing or not rhat > SETTLED_RHAT:
        return True
    notes.append(f"{c}: its full fit failed the sampler checks ({'; '.join(d.problems)}); with R-hat {rhat:.3f} "
                 f"its chains disagree, which more draws do not mend, and {', '.join(passing)} "
                 f"{'passes' if len(passing) == 1 else 'pass'}: not sampled again")
    return False


def _fit_weighted(df: pd.DataFrame, weights: dict[str, float], target: str, seed: int, notes: list[str],
                  fit_kwargs: dict[str, Any], fit_unweighted: bool, retry: bool = False,
                  slots: dict[str, int] | None = None) -> dict[str, Any]:
    """Full fits of the candidates with weight (all with ``fit_unweighted``); a failed one loses its weight.

    ``retry``: a candidate with weight whose fit fails its sampler checks is sampled again when that may mend it
    (:func:`_worth_retrying`, :func:`_fit_again`), after every candidate's first fit. ``slots``: each candidate's
    run capacity (its refits' compiled model), over ``fit_kwargs["run_slots"]``.
    """
    fits = {}
    todo = [c for c, w in weights.items() if w > 0 or fit_unweighted]
    own = {c: {**fit_kwargs, "run_slots": (slots or {}).get(c, fit_kwargs.get("run_slots"))} for c in todo}
    for i, c in enumerate(todo, start=1):
        try:
            with stage(f"{c}: fit to all the data ({i} of {len(todo)}, weight {weights[c]:.2f})"):
                fits[c] = fit_one(df, c, target, seed=seed, **own[c])
        except FitError as exc:
            notes.append(f"{c} left out: {exc}")
            weights[c] = 0.0
    if not fits or sum(weights.values()) <= 0:
        raise BayesDCPTError(f"law='auto': no candidate with weight could be fitted ({'; '.join(notes)})")
    if retry:
        failed = [c for c in fits if weights[c] > 0 and not fits[c].diagnostics(warn=False).sampler_ok]
        # the near misses first: one of them passing can spare the others' retries
        failed.sort(key=lambda c: float(fits[c].diagnostics(warn=False).rhat_max))
        for c in failed:
            if _worth_retrying(fits, weights, c, notes):
                fits[c] = _fit_again(df, c, target, seed, notes, own[c], fits[c])
        _drop_unconverged(fits, weights, notes)
    total = sum(weights.values())
    for c in weights:
        weights[c] /= total
    skipped = [c for c in weights if c not in fits]
    if skipped:
        notes.append(f"{', '.join(skipped)} not fitted to all the data: held-out stacking weight 0, so the stacked "
                     "posterior never draws from them (fit_unweighted=True fits them too)")
    return fits


def stack_draws(fits: dict[str, Any], weights: dict[str, float]) -> int:
    """The stack's draw count: the largest among the fits with weight.

    A law left out of the stack does not set it: a dropped law's 12,000 retry draws made the stack resample the
    4,000 draws of the law it kept three times over.
    """
    return max(f.posterior.n_draws for k, f in fits.items() if weights[k] > 0)


def _drop_unconverged(fits: dict[str, Any], weights: dict[str, float], notes: list[str]) -> None:
    """Give the weight of a law whose full fit still fails its sampler checks to the laws that pass.

    Its draws are not the law's posterior (on the long grid, chains in two modes), so stacking them passes a
    sampler's failure on as a law's answer. When no weighted law passes, nothing changes and the fit says so.
    """
    used = [c for c in fits if weights[c] > 0]
    bad = [c for c in used if not fits[c].diagnostics(warn=False).sampler_ok]
    if not bad or len(bad) == len(used):
        return
    good = [c for c in used if c not in bad]
    for c in bad:
        notes.append(f"{c} left out of the stack: its full fit fails the sampler checks (above), so its held-out "
                     f"weight {weights[c]:.2f} goes to {', '.join(good)}, whose fits pass")
        weights[c] = 0.0


def fit_auto(data: Any, target: str = "both", *, candidates: Sequence[str] | None = None, seed: int = 0,
             n_draws: int | None = None, splits: Sequence[str] = DEFAULT_SPLITS, refit: dict[str, Any] | None = None,
             discrepancy: bool = True, fit_unweighted: bool = False, screen: bool = True,
             **fit_kwargs: Any) -> AutoFit:
    """Weight the candidate laws by held-out stacking, fit those with weight and build the stacked posterior.

    The weights come from the held-out refits alone (the candidates' full fits play no part in them), so the
    refits run first and only the laws with weight are fitted to all the data: at 32,400 rows a law with weight 0
    costs its refits, not a full fit as well (BENCHMARKS.md, scale).

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
        Store the discrepancy measured by the stacked refits on the stacked posterior (and each fitted candidate's
        on its own); it costs no further refit.
    fit_unweighted
        Also fit the candidates with weight 0 to all the data (their diagnostics and checks in :meth:`table`);
        by default they are reported by their held-out scores only.
    screen
        Skip a law's refits on the later splits once an earlier split rules it out (:func:`screened_out`: weight 0
        there and its held-out elpd more than :data:`SCREEN_SE` se below the best), and do not sample again a refit
        whose chains disagree when its first scores rule its law out (:func:`_split_refits`); False refits every
        law on every split and samples every unconverged refit again.
    **fit_kwargs
        Settings of every candidate's full fit (:func:`bayes_dcpt.fitting.dcpt.fit`), over :data:`AUTO_DEFAULTS`;
        the model settings among them (:data:`~bayes_dcpt.fitting.extrapolation.MODEL_SETTINGS`) shape the refits
        too. Without ``draws``, a law with weight whose full fit fails its sampler checks is sampled once more
        with :data:`FULL_RETRY` (4 x 3000 draws at target_accept 0.95; data under 10,000 log losses, NUTS), and a
        note says what each attempt gave.
    """
    t0 = time.perf_counter()
    df = _data.load(data)
    notes: list[str] = []
    names = _candidates(df, target, candidates, notes)
    check_cpt_options(names, fit_kwargs, f"and law='auto' weighs no cpt candidate here ({', '.join(names)}"
                                         f"{'; ' + '; '.join(notes) if notes else ''})")
    kw = {**AUTO_DEFAULTS, "warn": False, **fit_kwargs}
    warn = bool(kw.pop("warn"))
    model = _model_settings(df, kw)
    slots = dict.fromkeys(names, run_capacity(int(_data.fit_rows(df)["run_id"].nunique())))
    # every law is scored on the same rows: the zero own-ratio rows only when every candidate fits them
    zr = predicts_zero_ratio(names, model)
    split_list = make_splits(df, splits, burn_in=model.get("burn_in", "warmup"))
    # an unconverged refit is sampled again with no more draws than the candidates' own fits
    refit = {"retry": retry_within(kw), **(refit or {})}
    scores, screened = _held_out(df, names, target, model, split_list, zr, seed, refit, slots, notes, screen)
    lpd, weights = _weigh(scores, notes, screened)
    # the candidates do not warn one by one: the pooled diagnostics of the used ones do (below)
    # an unconverged full fit of a law with weight is sampled again, unless the caller chose the draws
    retry_full = (fit_kwargs.get("draws") is None and kw.get("sampler", "nutpie") not in APPROXIMATE_SAMPLERS
                  and log_losses(df, target) < REFIT_RETRY_MAX_OBS)
    fits = _fit_weighted(df, weights, target, seed, notes, {**kw, **model, "warn": False}, fit_unweighted,
                         retry_full, slots)
    posts = [f.posterior for f in fits.values()]
    n = n_draws or stack_draws(fits, weights)
    stacked = stacked_posterior(posts, np.array([weights[k] for k in fits]), n, seed)
    table = holdout_table([s for sc in scores.values() for s in sc])
    extrapolation = None
    if discrepancy:
        for name, f in fits.items():
            attach(f, scores[name], float(sum(s.seconds for s in scores[name])), refit)
        first = next(iter(fits.values()))
        attach_data_context(stacked, first.fitted_data())  # the envelope and streams; the stacked refits take these
        with stage("scoring the stacked refits"):
            st = _stacked_scores(scores, weights, split_list, model, seed,
                                 stream_components(stacked.ctx.get("streams") or {}), first.config.fitted_data)
        kappa = discrepancy_from_scores(st, stacked.targets)
        stacked.ctx["discrepancy"] = kappa
        extrapolation = {"discrepancy": kappa, "streams": stream_summary(stacked.ctx),
                         "splits": [s.kind for s in split_list],
                         "holdout": holdout_table(st).to_dict(orient="records")}
    for sc in scores.values():
        for s in sc:
            s.info.pop("posterior", None)
    reqs = {name: requirement_failures(f) for name, f in fits.items()}
    comparison = _comparison(lpd, weights, screened, seed)
    if (why := unsettled(comparison)) is not None:
        notes.append(why)
    auto = AutoFit(fits, comparison, weights, reqs, stacked, holdout=table,
                   method="holdout-stacking", notes=notes, seed=seed, extrapolation=extrapolation,
                   seconds=time.perf_counter() - t0)
    if warn:  # one ConvergenceWarning: the used candidates' sampler checks and the refits that did not converge
        auto.diagnostics(warn=True)
    return auto


def _comparison(lpd: pd.DataFrame, weights: dict[str, float], screened: dict[str, str],
                seed: int = 0) -> pd.DataFrame:
    """Per law: pooled held-out elpd over the runs every law scored, its se, the difference to the best, weight.

    ``weight_lo`` / ``weight_hi``: the held-out stacking weight's 90% Bayesian-bootstrap interval over the runs
    (:func:`~bayes_dcpt.fitting.discrepancy.stacking_weight_interval`; 0 for a law screened out). A law screened
    out (``screened``: law -> the split after which) was not scored on every split: its elpd is NaN here (its
    scores are in the held-out table) and ``screened`` names the split.
    """
    lo, hi = (stacking_weight_interval(lpd.to_numpy(), seed=seed) if len(lpd) and lpd.shape[1]
              else (np.array([]), np.array([])))
    interval = {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(lpd.columns)}
    rows = []
    for name, w in weights.items():
        v = lpd[name].to_numpy(float) if name in lpd else np.array([])
        w_lo, w_hi = interval.get(name, (0.0, 0.0) if name in screened else (np.nan, np.nan))
        rows.append({"law": name, "elpd": float(v.sum()) if v.size else np.nan,
                     "se": float(np.sqrt(v.size * np.var(v, ddof=1))) if v.size > 1 else np.nan,
                     "n_runs": int(v.size), "weight": w, "weight_lo": w_lo, "weight_hi": w_hi})
    comp = pd.DataFrame(rows).set_index("law").sort_values("elpd", ascending=False)
    best = comp.index[0]
    comp["elpd_diff"] = comp["elpd"].iloc[0] - comp["elpd"]
    comp["dse"] = [elpd_gap(lpd, best, n)[1] if n in lpd else np.nan for n in comp.index]
    comp["rank"] = np.arange(len(comp))
    comp["screened"] = [screened.get(n) for n in comp.index]
    return comp


def unsettled(comparison: pd.DataFrame) -> str | None:
    """A note when the held-out runs do not settle the weights (an interval wider than :data:`UNSETTLED_WIDTH`)."""
    if not {"weight_lo", "weight_hi"} <= set(comparison.columns):
        return None
    wide = comparison[(comparison["weight_hi"] - comparison["weight_lo"]) > UNSETTLED_WIDTH]
    if wide.empty:
        return None
    parts = ", ".join(f"{n} {r['weight']:.2f} [{r['weight_lo']:.2f}, {r['weight_hi']:.2f}]" for n, r in wide.iterrows())
    return (f"the held-out runs do not settle the choice of law: weight (90% Bayesian-bootstrap interval over "
            f"the {int(comparison['n_runs'].max())} held-out runs) {parts}; another seed or a few more runs may move "
            "the weight between these laws, so read the stacked bands, not one law's")
