"""bayes-dcpt: hierarchical Bayesian D-CPT scaling laws for planning continual pre-training.

Fit the D-CPT Law (Que et al., NeurIPS 2024) and its relatives to small probe runs, get credible intervals on
every predicted loss and on the optimal mixture ratio, and ask which probe to run next.

The package is layered, data flowing one way (each layer imports only the ones before it; the tests check it)::

    laws, data -> numerics -> posterior -> fitting | decide -> plan -> viz -> report -> cli

Quickstart::

    >>> import bayes_dcpt as bd
    >>> df = bd.load_data("probes.csv")            # validated CPT measurements
    >>> f = bd.fit(df, law="dcpt", target="both")  # the hierarchical Bayesian fit (PyMC)
    >>> bd.optimize(f, "tradeoff", n_params=4e5, tokens=2e6, max_general_increase=0.03)
    >>> bd.suggest(f, candidates, "tradeoff", n_params=4e5, tokens=2e6)
"""

from bayes_dcpt import datasets, decide, plan, posterior, report, viz  # viz registers .plot() on import
from bayes_dcpt._version import __version__
from bayes_dcpt.data import load as load_data
from bayes_dcpt.decide import optimize
from bayes_dcpt.errors import BayesDCPTError, ConvergenceWarning, DataValidationError
from bayes_dcpt.fitting import Fit, bootstrap, compare, fit, fit_point, load_fit, prior_table
from bayes_dcpt.laws import LAWS, check_requirements, get_law, list_laws
from bayes_dcpt.plan import suggest_for as suggest

__all__ = [
    "LAWS",
    "BayesDCPTError",
    "ConvergenceWarning",
    "DataValidationError",
    "Fit",
    "__version__",
    "bootstrap",
    "check_requirements",
    "compare",
    "datasets",
    "decide",
    "fit",
    "fit_point",
    "get_law",
    "list_laws",
    "load_data",
    "load_fit",
    "optimize",
    "plan",
    "posterior",
    "prior_table",
    "report",
    "suggest",
    "viz",
]
