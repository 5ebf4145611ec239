"""Package-wide constants."""

#: Default probability of every credible interval reported (equal-tailed unless stated).
CI_PROB = 0.9
#: Sampler diagnostics thresholds: warn when exceeded.
RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3
