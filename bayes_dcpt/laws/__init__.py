"""The laws: pure formulas written once for numpy and PyTensor, their priors, and the paper's requirement checks.

:mod:`~bayes_dcpt.laws.registry` holds the D-CPT family (L1-L7), the Cross-Domain law and the related laws
(Chinchilla, Kaplan, CMR, Data Mixing, BiMix, cross-lingual); :mod:`~bayes_dcpt.laws.dynamics` the CPT
learning-dynamics law of Wang et al. (2025) with :mod:`~bayes_dcpt.laws.lr_schedules` (LR schedules and
their areas S1, S2); :mod:`~bayes_dcpt.laws.checks` the paper's four requirements checked numerically.
Nothing here knows about data files, samplers or plots.
"""

from bayes_dcpt.laws import dynamics as _dynamics  # noqa: F401  (registers the CPT dynamics laws)
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
    "chinchilla_at_ratio",
    "check_requirements",
    "get_law",
    "inputs_from_frame",
    "list_laws",
    "register",
]
