"""The importance-reweighting check of the top candidates, and when it overrules the Gaussian ranking.

The moment-matched scores assume Gaussian outputs. For the ``verify_top`` best candidates the information
about the target is re-estimated by simulating outcomes and reweighting the draws (PSIS,
:func:`~bayes_dcpt.plan.information.is_information`). When every check is reliable (k-hat) and one ranks
another candidate first by more than twice its Monte Carlo error, the batch starts with that candidate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_dcpt.plan.information import BlockNoise, is_information
from bayes_dcpt.plan.options import SuggestOptions
from bayes_dcpt.plan.scoring import Scored, ScoringDraws

__all__ = ["IS_COLUMNS", "UNRELIABLE", "check_by_reweighting", "first_pick_by_check", "reliably_checked"]

#: Score columns of the check (NaN for candidates not checked).
IS_COLUMNS = ("is_U_z", "is_U_z_se", "is_U_z_entropy", "is_khat_median", "is_frac_khat_bad", "is_ess_median")
#: Share of simulated outcomes with k-hat > 0.7 from which a candidate's check counts as unreliable.
UNRELIABLE = 0.5
_RESULT_KEYS = ("U_z_is", "U_z_is_se", "U_z_is_entropy", "khat_median", "frac_khat_bad", "ess_median")


def _block_noise(draws: ScoringDraws, c: int) -> BlockNoise:
    """Per-draw noise of candidate ``c``'s outputs: one block of checkpoints per loss.

    A block has one checkpoint scale: the root mean of its checkpoints' variances (they differ when the noise
    grows with the move from the base model).
    """
    kc = draws.lens[c]
    sig_cols, tau_cols = [], []
    for t in draws.targets:
        s2, t2 = draws.noise[t]
        sig_cols.append(np.sqrt(s2[:, draws.starts[c] : draws.starts[c] + kc].mean(axis=1)))
        tau_cols.append(np.sqrt(t2[:, draws.starts[c]]))  # the candidate's run: one domain, one offset
    return BlockNoise(
        tuple(np.arange(b * kc, (b + 1) * kc) for b in range(len(draws.targets))),
        np.stack(sig_cols, axis=1),
        np.stack(tau_cols, axis=1),
    )


def check_by_reweighting(scored: Scored, draws: ScoringDraws, opts: SuggestOptions) -> np.ndarray:
    """Fill the :data:`IS_COLUMNS` of the ``verify_top`` best candidates; returns their indices, best first.

    Candidate ``c`` is simulated with the seed ``seed * 1_000_003 + c`` (``n_verify`` outcomes).
    """
    scores = scored.scores
    verified = scored.order[: max(0, min(opts.verify_top, len(scores)))]
    for col in IS_COLUMNS:
        scores[col] = np.nan
    for c in verified:
        res = is_information(
            draws.outputs(c), _block_noise(draws, c), draws.z, draws.w,
            n_sim=opts.n_verify, seed=int(opts.seed) * 1_000_003 + int(c),
        )
        for col, key in zip(IS_COLUMNS, _RESULT_KEYS, strict=True):
            scores.loc[c, col] = res[key]
    return verified


def first_pick_by_check(
    scored: Scored, verified: np.ndarray, opts: SuggestOptions, notes: list[str]
) -> tuple[int | None, str]:
    """The candidate the batch must start with (or None) and how the first pick is made (``"mm"``/``"is"``)."""
    scores, hours = scored.scores, scored.hours
    bad = scores.loc[verified, "is_frac_khat_bad"].to_numpy(float)
    if len(verified) and not (bad < UNRELIABLE).all():
        notes.append(
            f"the importance-reweighting check of the top {len(verified)} candidates is unreliable (k-hat above 0.7 "
            f"for up to {np.nanmax(bad):.0%} of their simulated outcomes: the posterior cannot be reweighted that "
            "far): their expected information rests on the Gaussian approximation alone ('verified' is False)"
        )
        return None, "mm"
    if len(verified) < 2:
        return None, "mm"
    is_score = scores.loc[verified, "is_U_z"].to_numpy() / hours[verified] ** opts.kappa
    se = scores.loc[verified, "is_U_z_se"].to_numpy() / hours[verified] ** opts.kappa
    j = int(np.argmax(is_score))
    if j != 0 and is_score[j] - is_score[0] > 2 * np.hypot(se[j], se[0]):
        notes.append(
            "importance reweighting ranks another candidate first beyond its Monte Carlo error; "
            "the batch starts with it"
        )
        return int(verified[j]), "is"
    return None, "mm"


def reliably_checked(scores: pd.DataFrame, c: int) -> bool:
    """Whether candidate ``c`` was checked by reweighting and the check is reliable (few outcomes at k-hat > 0.7)."""
    row = scores.iloc[c]
    return bool(np.isfinite(row["is_U_z"]) and row["is_frac_khat_bad"] < UNRELIABLE)
