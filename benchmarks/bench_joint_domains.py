"""One D-CPT fit over every domain against one fit per domain, on the long-CPT grid's tokens split.

Why: fitted together, the domains of an L-law fit share the noise scales (sigma, tau, nu per target), the law's
eps and eta, and pool the exponents (log-scale spread 0.15, ``fitting.priors.EXPONENT_SPREAD``). When the law
misses one domain, that domain's misfit enters the shared parameters. This measures what it does to the other
domains: the same law (``law="dcpt"``, i.e. L3), the same sampler settings and held-out rows, fitted (a) jointly
over both domains and (b) once per domain; plus the point fits of L3 and L1 per domain. (c) A variant not in the
package, patched in for this measurement: the joint fit with its noise (sigma, tau, nu) per (target, domain)
instead of per target (:func:`noise_per_domain`), to tell whether the shared noise is how one domain's misfit
reaches the others. Its bands average the domains' noise, so only its MAPE and sampler checks are reported.

Split: fit the checkpoints with D <= 2^19 tokens, predict 2^19 < D <= 2^21 (the honest-fit benchmark's ``long``
tokens split). Bayesian bands: posterior predictive 90%, without the held-out calibration (``discrepancy=False``:
this compares the fits' laws, not their extrapolation bands). Cells: MAPE % and 90% coverage per domain and target.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_joint_domains.py``; raw rows in
``benchmarks/results/joint_domains_long.csv``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from _evaluate import CI, _score

import bayes_dcpt as bd
from bayes_dcpt import data as _data
from bayes_dcpt import datasets
from bayes_dcpt.fitting.pointfit import fit_point

OUT = Path(__file__).parent / "results"
MCMC = {"law": "dcpt", "target": "both", "draws": 500, "tune": 500, "chains": 2, "seed": 1, "warn": False,
        "sampler": "nutpie", "discrepancy": False}
SPLIT = "long tokens: fit D <= 2^19, predict 2^19 < D <= 2^21"


def _rows(method: str, f, test: pd.DataFrame, secs: float, diag: dict) -> list[dict]:
    grid = test[["domain", "n_params", "tokens", "r_domain", "run_id"]]
    pred = f.predict(grid, CI, kind="predictive", seed=1)
    out = []
    for dom in sorted(test["domain"].unique()):
        m = (test["domain"] == dom).to_numpy()
        for t in ("general", "domain"):
            row = _score(method, "posterior predictive", SPLIT, t, test[m].reset_index(drop=True),
                         pred[m].reset_index(drop=True), secs, diag)
            out.append({"domain": dom, **row})
    return out


def noise_per_domain(mu, y, t_idx, run_idx, run_group, cfg, capacity, likelihood=True, blocks=None) -> None:
    """``fitting.likelihood.add_noise_and_likelihood`` (run-block layout) with sigma, tau, nu per (target, domain).

    Same priors as the package's; ``sigma``, ``tau`` and ``nu`` per target are recorded as the domains' mean
    (``nu``: minimum) so that the rest of the package reads the fit; those are not used for the MAPE.
    """
    import numpy as np
    import pymc as pm

    from bayes_dcpt.fitting.marginal import block_loglik

    assert blocks is not None, "the variant is written for the run-block layout"
    model = pm.modelcontext(None)
    nd, nt = len(model.coords["domain"]), len(model.coords["target"])
    group = run_group * nd + model["d_run"]
    ps = cfg.prior_scale
    tau = pm.HalfNormal("tau_td", 0.01 * ps, shape=nt * nd)
    sigma = pm.LogNormal("sigma_td", np.log(0.004), 1.0 * ps, shape=nt * nd)
    nu = cfg.nu_floor + pm.Gamma("nu_excess_td", alpha=2.0, beta=0.1, shape=nt * nd)
    pm.Deterministic("tau", tau.reshape((nt, nd)).mean(axis=1), dims="target")
    pm.Deterministic("sigma", sigma.reshape((nt, nd)).mean(axis=1), dims="target")
    pm.Deterministic("nu", nu.reshape((nt, nd)).min(axis=1), dims="target")
    if likelihood:
        pm.Potential("obs_log_loss", block_loglik(y - mu, *blocks, group, sigma, tau, nu))


def _diag(f) -> dict:
    d = f.diagnostics(warn=False)
    return {"divergences": d.divergences, "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min,
            "misfit checks": len(d.misfit)}


def main() -> None:
    warnings.simplefilter("ignore")
    print(machine())
    df = datasets.load_long_cpt()
    late = df["tokens"] > 2**19
    train = df[~late]
    test = _data.fit_rows(_data.load(df[late])).reset_index(drop=True)
    rows: list[dict] = []
    for dom in sorted(test["domain"].unique()):
        td = test[test["domain"] == dom].reset_index(drop=True)
        for law in ("L3", "L1"):
            t0 = time.perf_counter()
            pf = fit_point(train[train["domain"] == dom], law, "both")
            secs = time.perf_counter() - t0
            pm = pf.predict(td[["domain", "n_params", "tokens", "r_domain", "run_id"]])
            for t in ("general", "domain"):
                pred = pd.DataFrame({f"loss_{t}_mean": pm[f"loss_{t}_pred"].to_numpy()})
                rows.append({"domain": dom, **_score(f"point {law}, per domain", "none", SPLIT, t, td, pred, secs)})
    t0 = time.perf_counter()
    f = bd.fit(train, **MCMC)
    secs = time.perf_counter() - t0
    print(f"joint: {secs:.0f} s; {f.diagnostics(warn=False)}"[:400])
    rows += _rows("dcpt, both domains jointly", f, test, secs, _diag(f))
    for dom in sorted(test["domain"].unique()):
        t0 = time.perf_counter()
        f = bd.fit(train[train["domain"] == dom], **MCMC)
        secs = time.perf_counter() - t0
        print(f"{dom} alone: {secs:.0f} s; {f.diagnostics(warn=False)}"[:400])
        rows += _rows("dcpt, one fit per domain", f, test[test["domain"] == dom].reset_index(drop=True), secs,
                      _diag(f))
    import bayes_dcpt.fitting.dcpt_model as dcpt_model

    shared = dcpt_model.add_noise_and_likelihood
    dcpt_model.add_noise_and_likelihood = noise_per_domain
    dcpt_model.clear_model_cache()  # the joint fit's compiled model would be reused otherwise
    try:
        t0 = time.perf_counter()
        f = bd.fit(train, **MCMC)
        secs = time.perf_counter() - t0
    finally:
        dcpt_model.add_noise_and_likelihood = shared
        dcpt_model.clear_model_cache()
    print(f"joint, noise per domain: {secs:.0f} s; {f.diagnostics(warn=False)}"[:400])
    post = f.idata["posterior"]
    for v in ("sigma_td", "tau_td", "nu_excess_td"):
        print(f"  {v} (target-major, domains {f.domains}): {post[v].median(('chain', 'draw')).values.round(4)}")
    grid = test[["domain", "n_params", "tokens", "r_domain", "run_id"]]
    pm_ = f.predict(grid, CI, kind="mean", seed=1)
    for dom in sorted(test["domain"].unique()):
        m = (test["domain"] == dom).to_numpy()
        for t in ("general", "domain"):
            pred = pd.DataFrame({f"loss_{t}_mean": pm_.loc[m, f"loss_{t}_mean"].to_numpy()})
            rows.append({"domain": dom, **_score("dcpt jointly, noise per (target, domain) [variant]", "none",
                                                 SPLIT, t, test[m].reset_index(drop=True), pred, secs, _diag(f))})
    table = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / "joint_domains_long.csv", index=False)
    cols = ["domain", "target", "method", "MAPE %", "coverage 90%", "seconds", "divergences", "R-hat max",
            "ESS bulk min", "misfit checks"]
    print(md_table(table[[c for c in cols if c in table]].sort_values(["target", "domain"], kind="stable")))


if __name__ == "__main__":
    main()
