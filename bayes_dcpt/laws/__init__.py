"""The laws: pure formulas written once for numpy and PyTensor, their priors, and the paper's requirement checks.

:mod:`~bayes_dcpt.laws.base` defines what a law is (:class:`Law`, :class:`Param`, :class:`Prior`, input
units); :mod:`~bayes_dcpt.laws.priors` the shared parameters and priors; :mod:`~bayes_dcpt.laws.dcpt` the
D-CPT family (L1-L7) and the Cross-Domain law; :mod:`~bayes_dcpt.laws.related` the related laws (Chinchilla,
Kaplan, CMR, Data Mixing, BiMix, cross-lingual); :mod:`~bayes_dcpt.laws.registry` looks them up by name.
:mod:`~bayes_dcpt.laws.dynamics` adds the CPT learning-dynamics law of Wang et al. (2025) with
:mod:`~bayes_dcpt.laws.lr_schedules` (LR schedules and their areas S1, S2); :mod:`~bayes_dcpt.laws.checks`
checks the paper's four requirements numerically. Nothing here knows about data files, samplers or plots.
"""

from bayes_dcpt.laws import dynamics as _dynamics  # noqa: F401  (registers the CPT dynamics laws)
from bayes_dcpt.laws.base import power, prepare_inputs, ratio_power
from bayes_dcpt.laws.checks import RequirementCheck, RequirementReport, check_requirements
from bayes_dcpt.laws.registry import (
    BILLION,
    LAWS,
    Law,
    Param,
    Prior,
    chinchilla_at_ratio,
    get_law,
    inputs_from_frame,
    list_laws,
    register,
)

__all__ = [
    "BILLION",
    "LAWS",
    "Law",
    "Param",
    "Prior",
    "RequirementCheck",
    "RequirementReport",
    "check_requirements",
    "chinchilla_at_ratio",
    "get_law",
    "inputs_from_frame",
    "list_laws",
    "power",
    "prepare_inputs",
    "ratio_power",
    "register",
]
