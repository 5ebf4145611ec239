"""Numerical building blocks shared by every layer above: plain numpy / scipy, no model and no data schema.

* :mod:`~bayes_dcpt.numerics.quantiles` -- one weighted quantile (the rule every interval uses);
* :mod:`~bayes_dcpt.numerics.runblock` -- one run-block likelihood: a run's checkpoints share an offset, so
  its log losses have the covariance ``sigma^2 I + tau^2 11'`` (Normal, or Student-t per run);
* :mod:`~bayes_dcpt.numerics.search` -- vectorised root and minimum search per posterior draw;
* :mod:`~bayes_dcpt.numerics.psis` -- Pareto-smoothed importance sampling for cheap posterior updates.
"""

from bayes_dcpt.numerics.psis import ess, psis
from bayes_dcpt.numerics.quantiles import quantile_band, weighted_quantile
from bayes_dcpt.numerics.runblock import block_log_likelihood, run_terms
from bayes_dcpt.numerics.search import bisect_last_feasible, golden_min, grid_then_golden

__all__ = [
    "bisect_last_feasible",
    "block_log_likelihood",
    "ess",
    "golden_min",
    "grid_then_golden",
    "psis",
    "quantile_band",
    "run_terms",
    "weighted_quantile",
]
