"""Why held-out ratios over-cover: what a new run's band at a held-out ratio is made of, against its errors.

Fits ``law="cpt"`` without and with its re-warming rise (``rewarm``) on the example grid without the runs at r =
0.25 and 0.75 (every domain in one fit, as the CLI does; 4 chains x 500 draws after 500 tuning steps, seed 1, the
default calibration), predicts the held-out runs and prints per (target, domain): the 90% coverage and median
half-width of the posterior predictive band, the law's own posterior sd, the fitted noise (sigma, tau, nu), and the
held-out runs' errors split into run means and the scatter within runs. Then the fitted rows' run-mean residuals of
the general loss per ratio and size (python's), and, for the r = 0 runs, per checkpoint: where the run offsets tau
is fitted to come from.

``--compare share_power`` fits the law with the general loss's forgetting linear in the domain share and with
``s^eta_s`` instead.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_ratio_bands.py [--compare share_power]`` (about a minute);
rows in ``benchmarks/results/ratio_bands.csv`` (``ratio_bands_share_power.csv``).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

import bayes_dcpt as bd
from bayes_dcpt import datasets
from bayes_dcpt.data import schema as _data
from benchmarks._common import REPO, machine, md_table

OUT = REPO / "benchmarks" / "results"
COLS = ["domain", "n_params", "tokens", "r_domain", "run_id", "seed"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", default="rewarm", choices=["rewarm", "share_power"],
                    help="the CPT law's option fitted off and on")
    a = ap.parse_args()
    print(f"machine: {machine()}")
    tables = [one(a.compare, on) for on in (False, True)]
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(OUT / ("ratio_bands.csv" if a.compare == "rewarm" else f"ratio_bands_{a.compare}.csv"), index=False)
    print(md_table(table, ".4g"))


def one(option: str, on: bool) -> pd.DataFrame:
    """The held-out-ratio table of one fit, with the law's ``option`` on or off."""
    print(f"--- {option}: {on}")
    df = datasets.load_example()
    two = df["r_domain"].isin([0.25, 0.75])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bd.fit(df[~two], law="cpt", draws=500, tune=500, chains=4, seed=1, warn=False, **{option: on})
    print(f.diagnostics())
    p = f.posterior
    test = _data.fit_rows(_data.load(df[two])).reset_index(drop=True)
    pred = f.predict(test[COLS], 0.9, kind="predictive", seed=1)
    rows = []
    for t in ("general", "domain"):
        y = test[f"loss_{t}"].to_numpy(float)
        own = test["r_domain"].to_numpy(float) if t == "domain" else 1 - test["r_domain"].to_numpy(float)
        for dom in sorted(test["domain"].unique()):
            m = np.isfinite(y) & (own > 0) & (test["domain"] == dom).to_numpy()
            g = test[m].reset_index(drop=True)
            logm = p.mean_log_loss(g, t)
            err = pd.Series(np.log(y[m]) - logm.mean(axis=0))
            run_mean = err.groupby(g["run_id"].to_numpy()).transform("mean")
            lo, hi = pred[f"loss_{t}_lo"].to_numpy()[m], pred[f"loss_{t}_hi"].to_numpy()[m]
            n = p.noise_of(t, dom)
            rows.append({option: on, "target": t, "domain": dom, "n": int(m.sum()),
                         "coverage 90%": float(np.mean((y[m] >= lo) & (y[m] <= hi))),
                         "half-width %": float(50 * np.median((hi - lo) / y[m])),
                         "law sd": float(np.median(logm.std(axis=0))),
                         "sigma": float(np.median(n["sigma"])), "tau": float(np.median(n["tau"])),
                         "nu": float(np.median(n["nu"])),
                         "held-out run means, rms": float(np.sqrt(np.mean(run_mean.groupby(
                             g["run_id"].to_numpy()).first() ** 2))),
                         "within runs, sd": float((err - run_mean).std())})
    tr = f.fitted_data()
    tr = tr[(tr["tokens"] > 0) & (tr["r_domain"] < 1)].reset_index(drop=True)
    err = np.log(tr["loss_general"].to_numpy(float)) - p.mean_log_loss(tr, "general").mean(axis=0)
    res = tr.assign(e=err)
    print("fitted rows, general loss: run-mean residual by ratio (rows) and size (columns), python")
    py = res[res["domain"] == "python"]
    print(py.groupby(["r_domain", "n_params"])["e"].mean().unstack().round(4).to_string())
    print("r = 0 runs: residual per checkpoint (rows) and size (columns)")
    print(py[py["r_domain"] == 0].pivot_table(index="tokens", columns="n_params", values="e").round(4).to_string())
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
