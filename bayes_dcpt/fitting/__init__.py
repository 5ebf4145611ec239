"""Fitting laws to probe runs: the only package that imports PyMC and PyTensor.

:mod:`~bayes_dcpt.fitting.dcpt` is the hierarchical Bayesian fit of the D-CPT and Cross-Domain laws (``fit``,
``Fit``, ``load_fit``); :mod:`~bayes_dcpt.fitting.dynamics` fits the CPT learning-dynamics law to whole loss
curves; :mod:`~bayes_dcpt.fitting.auto` weighs several laws (``law="auto"``); :mod:`~bayes_dcpt.fitting.pointfit`
is the paper's point fit and the bootstrap; :mod:`~bayes_dcpt.fitting.smc` a fast numpy sampler used as the
planner loop's refit. Every fit hands a plain-numpy :class:`~bayes_dcpt.posterior.Posterior` downstream.
"""

from bayes_dcpt.fitting.api import fit, load_fit
from bayes_dcpt.fitting.auto import AutoFit, fit_auto
from bayes_dcpt.fitting.dcpt import (
    NUTPIE_DEFAULTS,
    SAMPLERS,
    Diagnostics,
    Fit,
    FitConfig,
    bayesian_refit,
    clear_model_cache,
    compare,
    prior_table,
)
from bayes_dcpt.fitting.dynamics import DynamicsFit, fit_dynamics, load_dynamics_fit, select_momentum
from bayes_dcpt.fitting.pointfit import BootstrapResult, PointFitResult, bootstrap, fit_point
from bayes_dcpt.fitting.smc import SMCRefit, smc_posterior

__all__ = [
    "NUTPIE_DEFAULTS",
    "SAMPLERS",
    "AutoFit",
    "BootstrapResult",
    "Diagnostics",
    "DynamicsFit",
    "Fit",
    "FitConfig",
    "PointFitResult",
    "SMCRefit",
    "bayesian_refit",
    "bootstrap",
    "clear_model_cache",
    "compare",
    "fit",
    "fit_auto",
    "fit_dynamics",
    "fit_point",
    "load_dynamics_fit",
    "load_fit",
    "prior_table",
    "select_momentum",
    "smc_posterior",
]
