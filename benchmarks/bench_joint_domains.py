"""One D-CPT fit over every domain against one fit per domain, on the long-CPT grid's tokens split.

Why: fitted together, the domains of an L-law fit share the law's eps and eta and pool the exponents (log-scale
spread 0.15, ``fitting.priors.EXPONENT_SPREAD``); until the noise went per domain they also shared the noise scales
(sigma, tau, nu per target). When the law misses one domain, that domain's misfit enters the shared parameters. This
measures what it does to the other domains: the same law (``law="dcpt"``, i.e. L3), the same sampler settings and
held-out rows, fitted (a) jointly over both domains with the noise per (target, domain) (the default,
``noise_scope="domain"``), (b) jointly with the noise per target (``noise_scope="target"``, the earlier default),
(c) once per domain; plus the point fits of L3 and L1 per domain.

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
    for scope, label in (("domain", "dcpt, both domains jointly (noise per domain)"),
                         ("target", "dcpt, both domains jointly (noise per target)")):
        t0 = time.perf_counter()
        f = bd.fit(train, noise_scope=scope, **MCMC)
        secs = time.perf_counter() - t0
        print(f"joint, noise per {scope}: {secs:.0f} s; {f.diagnostics(warn=False)}"[:400])
        post = f.idata["posterior"]
        for v in ("sigma", "tau", "nu"):
            print(f"  {v} median (domains {f.domains}): {post[v].median(('chain', 'draw')).values.round(4)}")
        rows += _rows(label, f, test, secs, _diag(f))
    for dom in sorted(test["domain"].unique()):
        t0 = time.perf_counter()
        f = bd.fit(train[train["domain"] == dom], **MCMC)
        secs = time.perf_counter() - t0
        print(f"{dom} alone: {secs:.0f} s; {f.diagnostics(warn=False)}"[:400])
        rows += _rows("dcpt, one fit per domain", f, test[test["domain"] == dom].reset_index(drop=True), secs,
                      _diag(f))
    table = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / "joint_domains_long.csv", index=False)
    cols = ["domain", "target", "method", "MAPE %", "coverage 90%", "seconds", "divergences", "R-hat max",
            "ESS bulk min", "misfit checks"]
    print(md_table(table[[c for c in cols if c in table]].sort_values(["target", "domain"], kind="stable")))


if __name__ == "__main__":
    main()
