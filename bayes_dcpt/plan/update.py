"""Cheap posterior update after a probe lands: reweight the draws by the new runs' likelihood (PSIS).

When a probe returns its losses at every checkpoint, each posterior draw ``theta_s`` gets the importance
weight ``p(y_new | theta_s)``. Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao & Gabry
2024) stabilises the weights and its shape estimate ``k-hat`` says whether they can be trusted: below 0.7
the reweighted draws are a good posterior (seconds); above it the new data moved the posterior too far
and the model must be refitted (:class:`UpdateResult.reliable` is False).

Likelihood of one run: the noise model the posterior was fitted with (:mod:`bayes_dcpt.numerics.runblock`):
a run's checkpoints share an offset, integrated out; one multivariate Student-t per run for the default robust
fit (``ctx["run_mixing"]``), Normal for ``robust=False``, and for fits with sampled offsets a Student-t per
checkpoint around a normal offset. General and domain losses have independent offsets. A base-anchored law's
checkpoints have their own noise scales (:meth:`~bayes_dcpt.posterior.Posterior.checkpoint_sd`), and beyond the
data each draw's law carries its model discrepancy (the planner counts on a probe there measuring it).

Quickstart::

    >>> from bayes_dcpt.plan.update import update
    >>> res = update(post, new_rows)          # rows of the schema, with both losses
    >>> res.reliable, res.khat, res.ess
    >>> post = res.posterior if res.reliable else refit(all_rows)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import BayesDCPTError, UnknownDomainError
from bayes_dcpt.numerics.psis import ess, psis
from bayes_dcpt.numerics.runblock import block_log_likelihood, latent_student_log_likelihood
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["KHAT_MAX", "UpdateResult", "run_log_likelihood", "update"]

#: PSIS k-hat above which importance weights are not trusted (Vehtari et al. 2024).
KHAT_MAX = 0.7


def run_log_likelihood(post: Posterior, rows: pd.DataFrame) -> np.ndarray:
    """Log-likelihood of measured rows under every posterior draw, shape ``(S,)``.

    Rows are grouped into runs by ``run_id``; each run's checkpoints share one offset per target. Base
    rows (``tokens == 0``) carry no information about the law and are skipped; so are missing losses, losses of
    targets the posterior does not model and, when its fit left the LR warm-up out
    (:attr:`~bayes_dcpt.posterior.draws.Posterior.leaves_out_warmup`), the checkpoints inside their run's warm-up.
    """
    rows = _data.load(rows)
    cpt = _data.fit_rows(rows)
    if post.leaves_out_warmup:
        cpt = _data.after_burn_in(cpt)
    unknown = sorted(set(cpt["domain"]) - set(post.domains))
    if unknown:
        raise UnknownDomainError(
            f"new rows have domain(s) {unknown} that the fit does not know ({post.domains})"
        )
    total = np.zeros(post.n_draws)
    for t in post.targets:
        sub = cpt[cpt[f"loss_{t}"].notna()]
        if sub.empty:
            continue
        law = post.mean_log_loss(sub, t)
        mu = law + post.frame_discrepancy_sd(sub, t)[None, :] * post.discrepancy_z(t)[:, None]
        e = np.log(sub[f"loss_{t}"].to_numpy(float))[None, :] - mu
        if not np.all(np.isfinite(e)):
            e = np.where(np.isfinite(e), e, np.inf)
        _, runs = np.unique(sub["run_id"].astype(str).to_numpy(), return_inverse=True)
        sd = post.checkpoint_sd(sub, t, law) if post.ctx.get("heteroscedastic") else None  # each checkpoint's own
        doms = sub["domain"].astype(str).to_numpy()
        for d in np.unique(doms):  # each domain with its own noise draws (runs never span domains)
            m = doms == d
            ll = _runs_log_likelihood(post, t, str(d), e[:, m], runs[m], None if sd is None else sd[:, m])
            total += np.where(np.isfinite(ll), ll, -np.inf)
    return total


def _runs_log_likelihood(post: Posterior, target: str, domain: str, e: np.ndarray, runs: np.ndarray,
                         sd: np.ndarray | None) -> np.ndarray:
    """Log-likelihood ``(S,)`` of one domain's residuals ``e`` (runs ``runs``) under the fit's noise model."""
    nz = post.noise_of(target, domain)
    sigma = nz["sigma"] if sd is None else sd
    tau = nz.get("tau", np.zeros_like(nz["sigma"]))
    with np.errstate(invalid="ignore", over="ignore"):
        if "nu" in nz and post.ctx.get("run_mixing"):
            # the default fit's robust form: one multivariate Student-t per run
            return block_log_likelihood(e, runs, sigma, tau, nz["nu"])
        if "nu" in nz:
            return latent_student_log_likelihood(e, runs, sigma, tau, nz["nu"])
        return block_log_likelihood(e, runs, sigma, tau)


# ---------------------------------------------------------------------------------------------- update
@dataclass
class UpdateResult:
    """Outcome of reweighting a posterior by new probe runs.

    Attributes
    ----------
    posterior
        The reweighted posterior (Pareto-smoothed weights; base rows of the new data added to its reference).
    log_lik
        Log-likelihood of the new rows per draw.
    khat
        PSIS shape of the cumulative importance weights (including weights the posterior already had).
    ess
        Effective sample size of the smoothed weights.
    reliable
        ``khat < khat_max``: use ``posterior``; otherwise refit on all data.
    n_runs, n_rows
        Probe runs and CPT rows that entered the likelihood.
    """

    posterior: Posterior
    log_lik: np.ndarray
    khat: float
    ess: float
    reliable: bool
    n_runs: int
    n_rows: int

    def message(self) -> str:
        """One line for logs and reports."""
        verdict = "reweighted draws are reliable" if self.reliable else "refit needed"
        return (
            f"{self.n_runs} run(s), {self.n_rows} rows: PSIS k-hat {self.khat:.2f}, ESS {self.ess:.0f} "
            f"of {self.log_lik.size}: {verdict}"
        )


def update(post: Posterior, new_rows: pd.DataFrame, *, khat_max: float = KHAT_MAX) -> UpdateResult:
    """Reweight the posterior draws by the likelihood of newly measured probe rows.

    Parameters
    ----------
    post
        Current posterior (may already carry importance weights; they are compounded).
    new_rows
        Schema rows of the new runs (``domain, n_params, tokens, r_domain``, losses, ``run_id``).
    khat_max
        Reliability threshold on PSIS k-hat (0.7, Vehtari et al. 2024).

    Returns
    -------
    UpdateResult
    """
    rows = _data.load(new_rows)
    ll = run_log_likelihood(post, rows)
    if not np.isfinite(ll).any():
        raise BayesDCPTError("the new rows have zero likelihood under every posterior draw; refit the model")
    base_lw = np.log(post.weights) if post.weights is not None else np.zeros(post.n_draws)
    with np.errstate(divide="ignore"):
        lw, khat = psis(base_lw + ll)
    w = np.exp(lw)
    k = float(khat)
    new = post.reweight(w)
    base = _data.base_losses(rows)
    if len(base):
        ref = pd.concat([post.reference, base], ignore_index=True)
        new.reference = ref.groupby(["domain", "n_params"], as_index=False)[
            ["loss_general", "loss_domain"]
        ].mean()
    cpt = _data.fit_rows(rows)
    return UpdateResult(
        posterior=new,
        log_lik=ll,
        khat=k,
        ess=float(ess(w)),
        reliable=bool(not np.isnan(k) and k < khat_max),
        n_runs=int(cpt["run_id"].nunique()),
        n_rows=len(cpt),
    )
