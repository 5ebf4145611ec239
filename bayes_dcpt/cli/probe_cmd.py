"""``bayes-dcpt probe ...`` (work in progress)."""
