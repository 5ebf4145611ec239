"""The noise model and likelihood both PyMC models share: per-run offsets, checkpoint noise, Student-t or Normal.

A run's checkpoints share one offset ``u ~ Normal(0, tau)``; each checkpoint adds noise ``e ~ Normal(0, sigma)``
(robust: Student-t(nu)), each scale per (target, domain) (``FitConfig.noise_scope="domain"``, the default) or per
target (older fits). Per domain because a domain the law misses must not widen the others' noise: fitted with one
shared scale, a misfitting domain's residuals set the noise of every domain and the likelihood then lets the law
drift on the well-fitted ones (BENCHMARKS.md, "One fit over every domain": 22.6% against 4.0% MAPE on the
long-CPT grid's python domain). The offsets are integrated out in closed form (``run_offsets="marginal"``, see
:mod:`bayes_dcpt.fitting.marginal`) or sampled as latent variables (``"latent"``). The priors and their reasons
are :data:`NOISE_PRIORS` (:func:`noise_priors` for a given fit's configuration).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_dcpt.fitting.config import DynamicsConfig, FitConfig
from bayes_dcpt.fitting.marginal import block_loglik, run_loglik

__all__ = ["NOISE_PRIORS", "NU_FLOOR", "SIGMA_MEDIAN", "TAU_SCALE", "add_noise_and_likelihood", "checkpoint_sd",
           "noise_dims", "noise_group", "noise_priors", "noise_scope_words", "run_sd",
           "student_dof"]


#: Floor of the Student-t degrees of freedom: heavy tails for a few bad checkpoints, never so heavy (nu < 2, an
#: infinite variance; below 1 not even a mean) that the noise can absorb a curve the law misses.
NU_FLOOR = 2.0
#: Median of the checkpoint noise ``sigma`` (log scale; prior LogNormal(log SIGMA_MEDIAN, 1)).
SIGMA_MEDIAN = 0.004
#: Scale of the per-run offset ``tau`` (log scale; prior HalfNormal(TAU_SCALE)).
TAU_SCALE = 0.01

#: The noise priors as every fit samples them (:func:`checkpoint_sd`, :func:`run_sd`, :func:`student_dof`), with
#: their reasons: the one copy the prior tables of the model cards print.
NOISE_PRIORS = {
    "sigma": (f"LogNormal(log {SIGMA_MEDIAN:g}, 1)", "checkpoint noise on log loss; seed spread 0.001-0.03 nats "
              "(Datablations)"),
    "tau": (f"HalfNormal({TAU_SCALE:g})", "per-run offset on log loss; same evidence; median 0.007"),
    "nu": (f"{NU_FLOOR:g} + Gamma(2, 0.1)", "Student-t degrees of freedom (Juarez & Steel 2010), floored at 2: heavy "
           "enough for a few bad checkpoints, never a licence for a curve the law misses (a finite variance is kept)"),
}


def noise_priors(cfg: FitConfig | DynamicsConfig | None = None) -> dict[str, tuple[str, str]]:
    """:data:`NOISE_PRIORS` as a fit with ``cfg`` samples them (``None``: today's defaults).

    Fits saved before the floor on nu (``nu_floor = 0``) sampled ``nu ~ Gamma(2, 0.1)``; their tables say so.
    """
    floor = NU_FLOOR if cfg is None else float(getattr(cfg, "nu_floor", NU_FLOOR))
    out = dict(NOISE_PRIORS)
    if floor <= 0:
        out["nu"] = ("Gamma(2, 0.1)", "Student-t degrees of freedom (Juarez & Steel 2010); no floor (a fit saved "
                                      "before the floor of 2)")
    elif floor != NU_FLOOR:
        out["nu"] = (f"{floor:g} + Gamma(2, 0.1)", NOISE_PRIORS["nu"][1])
    return out


def noise_scope_words(cfg: FitConfig | DynamicsConfig | None = None) -> str:
    """``"per (target, domain)"`` or ``"per target"``: each noise scale's scope under ``cfg`` (None: the default)."""
    return "per (target, domain)" if cfg is None or len(noise_dims(cfg)) == 2 else "per target"


def noise_dims(cfg: FitConfig | DynamicsConfig) -> tuple[str, ...]:
    """The dims of each noise scale: ``("target", "domain")`` or ``("target",)`` (older fits, dynamics fits)."""
    return ("target", "domain") if getattr(cfg, "noise_scope", "target") == "domain" else ("target",)


def noise_group(cfg: FitConfig | DynamicsConfig, t_idx: Any, d_idx: Any, n_domains: int) -> Any:
    """Index into the flattened noise scales of observations or runs with target ``t_idx`` and domain ``d_idx``."""
    return t_idx * n_domains + d_idx if len(noise_dims(cfg)) == 2 else t_idx


def _flat(v: Any) -> Any:
    return v.flatten() if v.ndim > 1 else v


def checkpoint_sd(pm: Any, cfg: FitConfig | DynamicsConfig) -> Any:
    """The checkpoint noise ``sigma`` per noise group (:data:`NOISE_PRIORS`), flattened."""
    return _flat(pm.LogNormal("sigma", np.log(SIGMA_MEDIAN), 1.0 * cfg.prior_scale, dims=noise_dims(cfg)))


def run_sd(pm: Any, cfg: FitConfig | DynamicsConfig) -> Any:
    """The spread ``tau`` of the per-run offsets per noise group (:data:`NOISE_PRIORS`), flattened."""
    return _flat(pm.HalfNormal("tau", TAU_SCALE * cfg.prior_scale, dims=noise_dims(cfg)))


def student_dof(pm: Any, cfg: FitConfig | DynamicsConfig) -> Any:
    """The Student-t degrees of freedom: ``nu = 2 + Gamma(2, 0.1)`` (floored; legacy fits: no floor), flattened."""
    dims = noise_dims(cfg)
    if getattr(cfg, "nu_floor", NU_FLOOR) <= 0:
        return _flat(pm.Gamma("nu", alpha=2.0, beta=0.1, dims=dims))
    excess = pm.Gamma("nu_excess", alpha=2.0, beta=0.1, dims=dims)
    return _flat(pm.Deterministic("nu", cfg.nu_floor + excess, dims=dims))


def add_noise_and_likelihood(mu: Any, y: Any, t_idx: Any, run_idx: Any, run_group: Any,
                             cfg: FitConfig | DynamicsConfig, capacity: int, likelihood: bool = True,
                             blocks: tuple[Any, Any] | None = None) -> None:
    """Add the noise parameters and the likelihood of log losses ``y`` around ``mu`` to the current PyMC model.

    ``t_idx`` indexes each observation's noise group (:func:`noise_group`: its target, or its (target, domain)
    cell), ``run_idx`` its run, ``run_group`` each run slot's noise group; ``capacity`` is the number of run
    slots. Without ``likelihood`` only the noise priors are added (the prior model).
    ``blocks`` = ``(mask, n_run)``: ``y`` and ``mu`` are in the run-block layout (one row per run, ``run_group``
    each row's noise group; :class:`~bayes_dcpt.numerics.runblock.RunBlocks`), with the run offsets integrated out.
    """
    import pymc as pm

    marginal = cfg.run_effect and cfg.run_offsets == "marginal"
    if cfg.run_effect:
        tau = run_sd(pm, cfg)
        if not marginal:
            z_run = pm.Normal("z_run", 0.0, 1.0, dims="run")
            mu = mu + tau[t_idx] * z_run[run_idx]
    sigma = checkpoint_sd(pm, cfg)
    nu = student_dof(pm, cfg) if cfg.robust else None
    if not likelihood:
        return
    if blocks is not None:
        if not marginal:
            raise ValueError("the run-block layout needs the run offsets integrated out")
        pm.Potential("obs_log_loss", block_loglik(y - mu, *blocks, run_group, sigma, tau, nu))
    elif marginal:
        # the run offsets integrated out in closed form (see bayes_dcpt.fitting.marginal)
        pm.Potential("obs_log_loss", run_loglik(y - mu, run_idx, run_group, sigma, tau, nu, capacity))
    elif cfg.robust:
        pm.StudentT("obs_log_loss", nu=nu[t_idx], mu=mu, sigma=sigma[t_idx], observed=y, dims="obs",
                    shape=y.shape)
    else:
        pm.Normal("obs_log_loss", mu=mu, sigma=sigma[t_idx], observed=y, dims="obs", shape=y.shape)
