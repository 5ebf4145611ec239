"""Chains in separate modes: which way of fitting the data predicts what it did not see, and what the noise floor does.

The D-CPT law's fit of the long-CPT grid's token split (fit D <= 2^19, predict 2^19 < D <= 2^21, every domain in one
fit, the CLI's defaults) fails R-hat (1.7) with chains that share no posterior region
(:func:`bayes_dcpt.fitting.diagnostics.separated_chains`). Per mode (``fit.modes()``): the held-out MAPE and 90%
coverage per (target, domain), and the in-sample log predictive density (``sum_i log mean_s p(y_i | theta_s)`` of
the fit's pointwise log-likelihood, the quantity PSIS-LOO approximates) — does the data's own density pick the mode
that extrapolates better? Then the same fit with the Student-t floor at 4 instead of 2 (``nu_floor``): are the
modes the heavy tails'?

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_chain_modes.py`` (about 4 minutes on 2 cores; rows in
``benchmarks/results/chain_modes.csv``).
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from bench_cli_defaults import splits

import bayes_dcpt as bd
import bayes_dcpt.fitting.dcpt as dcpt_fit

OUT = Path(__file__).parent / "results"
_CONFIG = dcpt_fit.FitConfig


def in_sample_lpd(fit: bd.Fit, chains: tuple[int, ...]) -> float:
    """``sum_i log mean_s p(y_i | theta_s)`` over the draws of ``chains`` (the fit's pointwise log-likelihood)."""
    ll = fit.log_likelihood()
    ds = ll.to_dataset() if hasattr(ll, "to_dataset") else ll
    total = 0.0
    for v in ds.data_vars:
        a = np.asarray(ds[v].sel(chain=list(chains)))
        a = a.reshape(-1, a.shape[-1]) if a.ndim == 3 else a.reshape(a.shape[0] * a.shape[1], -1)
        total += float(np.sum(logsumexp(a, axis=0) - np.log(a.shape[0])))
    return total


def score(post: object, test: pd.DataFrame) -> dict[str, float]:
    """MAPE (%) and 90% coverage of the held-out rows per (target, domain)."""
    pred = post.predict(test)
    out: dict[str, float] = {}
    for t in ("general", "domain"):
        y = test[f"loss_{t}"].to_numpy(float)
        for d in sorted(test["domain"].unique()):
            k = (test["domain"].to_numpy() == d) & np.isfinite(y)
            m, lo, hi = (pred[f"loss_{t}_{s}"].to_numpy(float)[k] for s in ("mean", "lo", "hi"))
            out[f"{t} {d} MAPE %"] = 100 * float(np.mean(np.abs(m - y[k]) / y[k]))
            out[f"{t} {d} cov"] = float(np.mean((y[k] >= lo) & (y[k] <= hi)))
    return out


def main() -> None:
    warnings.simplefilter("ignore")
    _, train, test = splits("long")[0]
    test = test[test["tokens"] > 0]
    rows = []
    for floor in (2.0, 4.0):
        dcpt_fit.FitConfig = functools.partial(_CONFIG, nu_floor=floor)  # the floor is not a fit() option
        t0 = time.perf_counter()
        fit = bd.fit(train, "dcpt", seed=0)
        secs = time.perf_counter() - t0
        d = fit.diagnostics(warn=False)
        groups = d.chain_groups or (tuple(range(d.chains)),)
        for g, post in zip(groups, fit.modes(), strict=True):
            rows.append({"nu floor": floor, "chains": " ".join(map(str, g)), "R-hat max (all chains)": d.rhat_max,
                         "in-sample lpd": in_sample_lpd(fit, g), **score(post, test), "fit s": secs})
        rows.append({"nu floor": floor, "chains": "all (pooled)", "R-hat max (all chains)": d.rhat_max,
                     **score(fit.posterior, test), "fit s": secs})
    table = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / "chain_modes.csv", index=False)
    print(machine())
    cols = ["nu floor", "chains", "in-sample lpd", "domain c_headers MAPE %", "domain c_headers cov",
            "domain python MAPE %", "domain python cov", "general c_headers MAPE %", "general c_headers cov"]
    print(md_table(table[cols], floatfmt=".3g"))


if __name__ == "__main__":
    main()
