"""bayes-dcpt: hierarchical Bayesian D-CPT scaling laws for planning continual pre-training.

Fit the D-CPT Law (Que et al., NeurIPS 2024) and its relatives to small probe runs, get credible
intervals on every predicted loss and on the optimal mixture ratio, and ask which probe to run next.

Quickstart::

    >>> import bayes_dcpt as bd
    >>> df = bd.load_data("probes.csv")            # validated CPT measurements
    >>> res = bd.fit_point(df, law="dcpt")         # the paper's point fit (baseline)
    >>> f = bd.fit(df, law="dcpt", target="both")  # the hierarchical Bayesian fit (PyMC)
    >>> f.predict(grid, ci=0.9); f.optimize("tradeoff", ...); f.suggest(candidates, ...)
"""

from bayes_dcpt._version import __version__
from bayes_dcpt.data import load as load_data
from bayes_dcpt.errors import BayesDCPTError, ConvergenceWarning, DataValidationError
from bayes_dcpt import laws_dynamics as _laws_dynamics  # noqa: F401  (registers the CPT dynamics laws)
from bayes_dcpt.laws import LAWS, get_law, list_laws
from bayes_dcpt import datasets
from bayes_dcpt.fitting import Fit, compare, fit, load_fit, prior_table
from bayes_dcpt.pointfit import bootstrap, fit_point
from bayes_dcpt.requirements import check_requirements

__all__ = [
    "LAWS",
    "Fit",
    "compare",
    "datasets",
    "fit",
    "load_fit",
    "prior_table",
    "BayesDCPTError",
    "ConvergenceWarning",
    "DataValidationError",
    "__version__",
    "bootstrap",
    "check_requirements",
    "fit_point",
    "get_law",
    "list_laws",
    "load_data",
]
