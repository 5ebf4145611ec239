"""The fitting package: the only place that imports PyMC.

:mod:`bayes_dcpt.fitting.core` holds the hierarchical D-CPT / cross-domain model, the :class:`Fit` result
and save/load; further model families live in sibling modules (:mod:`bayes_dcpt.fitting.dynamics`: the CPT
learning-dynamics law, ``fit_dynamics``; :mod:`bayes_dcpt.fitting.auto`: ``law='auto'`` stacking).
"""

from bayes_dcpt.fitting.auto import AutoFit, fit_auto
from bayes_dcpt.fitting.core import (
    _MODEL_CACHE,
    NUTPIE_DEFAULTS,
    SAMPLERS,
    Diagnostics,
    Fit,
    FitConfig,
    bayesian_refit,
    make_target,
    clear_model_cache,
    compare,
    fit,
    load_fit,
    prior_table,
)
from bayes_dcpt.fitting.dynamics import DynamicsFit, fit_dynamics, load_dynamics_fit, select_momentum

__all__ = [
    "AutoFit",
    "fit_auto",
    "NUTPIE_DEFAULTS",
    "SAMPLERS",
    "_MODEL_CACHE",
    "Diagnostics",
    "DynamicsFit",
    "Fit",
    "FitConfig",
    "bayesian_refit",
    "make_target",
    "clear_model_cache",
    "compare",
    "fit",
    "fit_dynamics",
    "load_dynamics_fit",
    "load_fit",
    "prior_table",
    "select_momentum",
]
