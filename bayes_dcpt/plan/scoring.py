"""Scoring candidate probes: the draws used, the law at every checkpoint, each probe's expected information.

What :func:`~bayes_dcpt.plan.planner.suggest` computes before it chooses a batch: a seeded subsample of the
posterior draws (weights kept), the law's log losses at every candidate checkpoint, the moment-matched
Gaussian ensemble of the probes' whitened outputs (:class:`~bayes_dcpt.plan.information.Ensemble`), every
candidate's information about the law (``U_theta``) and the target (``U_z``) with its score
``U_z / gpu_hours^kappa``, and the predicted loss band at each probe's final checkpoint.

A probe's outputs are the law plus each draw's model discrepancy where the probe leaves the data
(:meth:`~bayes_dcpt.posterior.Posterior.log_loss_with_discrepancy`): a probe towards the asked size or tokens
measures the law's error there, which the target carries too. The noise of each checkpoint is the posterior's
own (:meth:`~bayes_dcpt.posterior.Posterior.measurement_variance`: Student-t variances, the robust fit's run
offset scaled with them, a base-anchored law's noise growing with the move from the base).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.plan.candidates import checkpoint_frame, eval_checkpoints
from bayes_dcpt.plan.information import Conditioner, Ensemble
from bayes_dcpt.plan.options import SuggestOptions
from bayes_dcpt.plan.targets import TargetDraws
from bayes_dcpt.posterior.draws import Posterior
from bayes_dcpt.posterior.noise import log_noise

__all__ = [
    "Scored",
    "ScoringDraws",
    "build_ensemble",
    "draw_weights",
    "eti_width",
    "noise_moments",
    "predicted_bands",
    "score_candidates",
    "scoring_draws",
]

_CHUNK_BYTES = 4e7  # feature blocks are built a few candidates at a time, each at most this large


@dataclass
class ScoringDraws:
    """The posterior draws the scores use and the law's log losses at every candidate checkpoint.

    Attributes
    ----------
    sub
        The subsampled posterior.
    w
        Normalised weights of its draws (0 for a draw whose law is non-finite on some candidate).
    z
        Target values of its draws, ``(S, m)``.
    log_f
        Per loss, the mean log loss ``(S, rows)`` at every row of the candidates' checkpoint frame.
    noise
        Per loss, ``(variance of each checkpoint's noise (S, rows), variance of its run's offset (S, rows))``.
    lens, starts
        Number of checkpoints of each candidate and its first row in ``log_f``.
    width_now
        The target's current equal-tailed interval width per component, over all draws.
    rows
        The candidates' checkpoint frame (one row per column of ``log_f``).
    """

    sub: Posterior
    w: np.ndarray
    z: np.ndarray
    log_f: dict[str, np.ndarray]
    noise: dict[str, tuple[np.ndarray, np.ndarray]]
    lens: np.ndarray
    starts: np.ndarray
    width_now: np.ndarray
    rows: pd.DataFrame

    @property
    def targets(self) -> list[str]:
        """The losses of each probe's outputs (``general``, ``domain``)."""
        return list(self.sub.targets)

    @property
    def n_draws(self) -> int:
        """Draws in the subsample."""
        return len(self.w)

    def outputs(self, c: int) -> np.ndarray:
        """Candidate ``c``'s log losses at its checkpoints, one loss after the other: ``(S, n_losses * k_c)``."""
        kc = self.lens[c]
        return np.concatenate([self.log_f[t][:, self.starts[c] : self.starts[c] + kc] for t in self.targets], axis=1)


def draw_weights(post: Posterior) -> np.ndarray:
    """The posterior's importance weights, or uniform ones."""
    return post.weights if post.weights is not None else np.full(post.n_draws, 1.0 / post.n_draws)


def noise_moments(post: Posterior, rows: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per loss, the noise variances of a new measurement of ``rows``: checkpoint and run offset, each ``(S, rows)``.

    :meth:`~bayes_dcpt.posterior.Posterior.measurement_variance`: Student-t noise through its variance
    (``nu`` floored at 2.5), the robust fit's run offset sharing that factor, heteroscedastic noise per row.
    """
    out = {}
    for t in post.targets:
        nz = post.noise.get(t)
        if nz is None or "sigma" not in nz:
            raise BayesDCPTError(f"the posterior has no noise draws for the {t} loss (noise['{t}']['sigma'])")
        out[t] = post.measurement_variance(rows, t)
    return out


def eti_width(z: np.ndarray, w: np.ndarray | None, ci: float) -> np.ndarray:
    """Width of the weighted equal-tailed ``ci`` interval of each column of ``z``."""
    q = weighted_quantile(z, [(1 - ci) / 2, 1 - (1 - ci) / 2], w, axis=0)
    return np.asarray(q[1] - q[0], float).reshape(-1)


def scoring_draws(
    post: Posterior, cands: pd.DataFrame, td: TargetDraws, opts: SuggestOptions, notes: list[str]
) -> ScoringDraws:
    """Subsample the draws (seeded), evaluate the law at every candidate checkpoint, zero non-finite draws.

    A draw whose law is non-finite on some candidate gets weight 0 (and a note in ``notes``).
    """
    w_all = draw_weights(post)
    n_all = post.n_draws
    rng = np.random.default_rng(opts.seed)
    if n_all > opts.max_draws:
        idx = np.sort(rng.choice(n_all, size=opts.max_draws, replace=False))
    else:
        idx = np.arange(n_all)
    sub = post.subset(idx)
    w = w_all[idx].copy()
    scheds = eval_checkpoints(cands, opts.n_checkpoints, opts.first_fraction)
    long = checkpoint_frame(cands, scheds)
    log_f = {t: sub.log_loss_with_discrepancy(long, t) for t in sub.targets}  # (S, rows)
    finite = np.ones(len(idx), bool)
    for t in sub.targets:
        finite &= np.isfinite(log_f[t]).all(axis=1)
    if not finite.all():
        notes.append(
            f"{int((~finite).sum())} of {len(idx)} draws give a non-finite law on some candidate; "
            "they get weight 0 in the scores"
        )
        w = np.where(finite, w, 0.0)
        for t in sub.targets:
            log_f[t] = np.where(finite[:, None], log_f[t], 0.0)
    if w.sum() <= 0:
        raise BayesDCPTError("no posterior draw gives finite losses on the candidates")
    lens = np.array([len(s) for s in scheds])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    return ScoringDraws(
        sub=sub,
        w=w / w.sum(),
        z=td.z[idx],
        log_f=log_f,
        noise=noise_moments(sub, long),
        lens=lens,
        starts=starts,
        width_now=eti_width(td.z, w_all, opts.ci),
        rows=long,
    )


def _feature_block(draws: ScoringDraws, c_idx: np.ndarray, k_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Outputs ``F (n, S, k_max)`` and noise covariances ``R (n, k_max, k_max)`` of candidates ``c_idx``.

    Each loss's checkpoints get ``diag(E[var_i]) + E[var_u] 11^T`` (posterior averages of each checkpoint's noise
    variance and of the run offset's); unused components are zero outputs with unit noise, so they carry no
    information.
    """
    F = np.zeros((len(c_idx), draws.n_draws, k_max))
    R = np.tile(np.eye(k_max), (len(c_idx), 1, 1))
    w = draws.w
    for j, c in enumerate(c_idx):
        kc = draws.lens[c]
        for b, t in enumerate(draws.targets):
            cols = slice(b * kc, (b + 1) * kc)
            F[j, :, cols] = draws.log_f[t][:, draws.starts[c] : draws.starts[c] + kc]
            s2, t2 = draws.noise[t]
            rows = slice(draws.starts[c], draws.starts[c] + kc)
            R[j, cols, cols] = float(w @ t2[:, draws.starts[c]]) + np.diag(w @ s2[:, rows])
    return F, R


def build_ensemble(draws: ScoringDraws) -> Ensemble:
    """The moment-matched Gaussian ensemble of every candidate's whitened outputs and the target."""
    n_cands = len(draws.lens)
    k_max = int(draws.lens.max()) * len(draws.targets)
    chunk = max(1, int(_CHUNK_BYTES // max(draws.n_draws * k_max * 8, 1)))
    blocks = [
        _feature_block(draws, np.arange(a, min(a + chunk, n_cands)), k_max) for a in range(0, n_cands, chunk)
    ]
    return Ensemble.from_chunks(blocks, draws.z, draws.w)


@dataclass
class Scored:
    """Every candidate's unconditional scores and what the batch search needs from them.

    Attributes
    ----------
    scores
        One row per candidate: its columns, ``gpu_hours``, ``U_theta``, ``U_z``, ``U_z_per_gpu_hour``,
        ``score``, ``width_after_probe``, ``rank_score``, ``n_components`` (more columns are added later).
    ensemble
        The Gaussian ensemble the scores come from (the batch search conditions on it).
    alone
        :meth:`~bayes_dcpt.plan.information.Conditioner.scores` before any pick.
    hours
        GPU-hours of each candidate on its own.
    order
        Candidates by decreasing score (ties: canonical order).
    v0
        The target's current (Gaussian) variances.
    width_now
        The target's current interval width per component.
    """

    scores: pd.DataFrame
    ensemble: Ensemble
    alone: dict[str, np.ndarray]
    hours: np.ndarray
    order: np.ndarray
    v0: np.ndarray
    width_now: np.ndarray

    @property
    def current_width(self) -> float:
        """The target's current interval width (max over components)."""
        return float(self.width_now.max())

    def width_from_var(self, vp: np.ndarray) -> np.ndarray:
        """Expected interval width given posterior target variances ``vp`` (the current width, scaled by sd)."""
        v0 = self.v0
        ratio = np.where(v0 > 0, np.sqrt(np.clip(vp / np.where(v0 > 0, v0, 1.0), 0, 1)), 1.0)
        return (ratio * self.width_now).max(axis=-1)


def score_candidates(draws: ScoringDraws, cands: pd.DataFrame, opts: SuggestOptions) -> Scored:
    """Every candidate's information about the law and the target, its cost and its score."""
    ens = build_ensemble(draws)
    cond = Conditioner(ens)
    sc0 = cond.scores()
    n_cands = len(cands)
    hours = opts.cost_model.components(cands)["gpu_hours"].to_numpy()
    score0 = sc0["U_z"] / hours**opts.kappa
    order = np.lexsort((np.arange(n_cands), -score0))
    scored = Scored(cands.copy(), ens, sc0, hours, order, np.diag(cond.target_cov), draws.width_now)
    scores = scored.scores
    scores["gpu_hours"] = hours
    scores["U_theta"] = sc0["U_theta"]
    scores["U_z"] = sc0["U_z"]
    scores["U_z_per_gpu_hour"] = sc0["U_z"] / hours
    scores["score"] = score0
    scores["width_after_probe"] = scored.width_from_var(sc0["v_post"])
    rank = np.empty(n_cands, int)
    rank[order] = np.arange(1, n_cands + 1)
    scores["rank_score"] = rank
    scores["n_components"] = ens.rank
    return scored


def predicted_bands(scores: pd.DataFrame, draws: ScoringDraws, opts: SuggestOptions) -> None:
    """Add each candidate's predicted ``ci`` band of every loss at its final checkpoint, as a new run.

    The law with each draw's model discrepancy (wider beyond the data) plus a new run's noise, drawn with the seed
    ``[seed, 1]``. Columns ``pred_loss_<loss>_lo/_med/_hi``.
    """
    lo_q, hi_q = (1 - opts.ci) / 2, 1 - (1 - opts.ci) / 2
    last = draws.starts + draws.lens - 1
    n_cands = len(draws.lens)
    brng = np.random.default_rng([opts.seed, 1])
    mixing = bool(draws.sub.ctx.get("run_mixing"))
    for t in draws.targets:
        mu = draws.log_f[t][:, last]  # (S, C): each candidate's final checkpoint, a new run each
        sd = draws.sub.checkpoint_sd(draws.rows.iloc[last].reset_index(drop=True), t, mu) \
            if draws.sub.ctx.get("heteroscedastic") else None
        with np.errstate(over="ignore"):  # a heavy-tailed noise draw may overflow to inf: far in the band's tail
            y = np.exp(mu + log_noise(brng, draws.sub.noise_rows(t, draws.rows["domain"].to_numpy()[last]),
                                      np.arange(n_cands), draws.n_draws, mixing=mixing, sd=sd))
        q = weighted_quantile(y, [lo_q, 0.5, hi_q], draws.w, axis=0)
        scores[f"pred_loss_{t}_lo"], scores[f"pred_loss_{t}_med"], scores[f"pred_loss_{t}_hi"] = q[0], q[1], q[2]

