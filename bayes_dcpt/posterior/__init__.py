"""Posterior draws as plain numpy: what every consumer downstream of the sampler works with.

:class:`Posterior` holds parameter draws per (target, domain), the noise draws and the base-model losses, and
predicts any (domain, N, D, r) with credible and predictive bands; :class:`DynamicsPosterior` does the same for
the CPT learning-dynamics law on runs with an LR schedule. Beyond the probed data the predictive bands, the
decisions and the planner carry the law's own error as the fit calibrated it (:mod:`.extrapolation`); the base
model's loss at a size nobody probed comes from a small law in N (:mod:`.base_law`). Nothing here imports PyMC:
a fit, a bootstrap or a numpy sampler can build one.
"""

from bayes_dcpt.posterior.draws import Posterior, as_posterior
from bayes_dcpt.posterior.dynamics import DynamicsPosterior
from bayes_dcpt.posterior.frames import prediction_frame
from bayes_dcpt.posterior.noise import log_noise

__all__ = ["DynamicsPosterior", "Posterior", "as_posterior", "log_noise", "prediction_frame"]
