"""Fitting laws to probe runs: the only package that imports PyMC and PyTensor.

:mod:`~bayes_dcpt.fitting.dcpt` is the hierarchical Bayesian fit of the D-CPT and Cross-Domain laws (``fit``,
``Fit``, ``load_fit``); :mod:`~bayes_dcpt.fitting.dynamics` fits the CPT learning-dynamics law to whole loss
curves; :mod:`~bayes_dcpt.fitting.auto` weighs several laws (``law="auto"``); all three build on
:class:`~bayes_dcpt.fitting.base.BaseFit`. :mod:`~bayes_dcpt.fitting.pointfit` is the paper's point fit and the
bootstrap; :mod:`~bayes_dcpt.fitting.smc` a fast numpy sampler used as the planner loop's refit. Every fit hands a
plain-numpy :class:`~bayes_dcpt.posterior.Posterior` downstream. ``MODEL.md`` describes the Bayesian models.
"""

from bayes_dcpt.fitting.api import fit, load_fit
from bayes_dcpt.fitting.auto import AutoFit, fit_auto
from bayes_dcpt.fitting.base import BaseFit
from bayes_dcpt.fitting.config import DynamicsConfig, FitConfig
from bayes_dcpt.fitting.dcpt import Fit, bayesian_refit, compare
from bayes_dcpt.fitting.dcpt_model import clear_model_cache
from bayes_dcpt.fitting.diagnostics import Diagnostics
from bayes_dcpt.fitting.dynamics import DynamicsFit, fit_dynamics, load_dynamics_fit, select_momentum
from bayes_dcpt.fitting.pointfit import BootstrapResult, PointFitResult, bootstrap, fit_point
from bayes_dcpt.fitting.priors import dynamics_prior_table, prior_table
from bayes_dcpt.fitting.samplers import NUTPIE_DEFAULTS, SAMPLERS
from bayes_dcpt.fitting.smc import SMCRefit, smc_posterior

__all__ = [
    "NUTPIE_DEFAULTS",
    "SAMPLERS",
    "AutoFit",
    "BaseFit",
    "BootstrapResult",
    "Diagnostics",
    "DynamicsConfig",
    "DynamicsFit",
    "Fit",
    "FitConfig",
    "PointFitResult",
    "SMCRefit",
    "bayesian_refit",
    "bootstrap",
    "clear_model_cache",
    "compare",
    "dynamics_prior_table",
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
