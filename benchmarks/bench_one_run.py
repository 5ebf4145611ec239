"""The risk-aware answer for the law against the one for a single run, beside the crossing the runs measure.

For each committed example model (``models/example_cpt.nc``, ``models/example_dcpt.nc``) and each domain, the
trade-off at the largest probed size N = 443,232 asks r* with a relative threshold T of 2% and 3%, at the largest
measured token count (where the data measure the crossing: ``bayes_dcpt.decide.measured``) and at 4x it (the demo's
question). Reported: r*'s median and 90% interval, the law's risk-aware r (P(constraint holds) >= 0.9), the one for
one run (P(one run's measured loss stays within) >= 0.9, ``risk_aware["one_run"]``), the probability that one run
stays within the threshold at each of the two, and the measured crossing with the fit's predictive check. The fits
are in-sample at the measured point (the models were fitted to those runs).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_one_run.py``; rows in
``benchmarks/results/one_run_risk.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import bayes_dcpt as bd
from benchmarks._common import REPO, machine, md_table

N = 443232.0


def rows_for(path: str) -> list[dict]:
    f = bd.load_fit(REPO / "models" / path)
    d_max = float(f.data.loc[f.data["n_params"] == N, "tokens"].max())
    out = []
    for where, D in (("largest measured D", d_max), ("4x that (demo)", 4 * d_max)):
        for T in (0.02, 0.03):
            for dom, d in f.optimize("tradeoff", n_params=N, tokens=D, max_general_increase=T).items():
                s = d.summary()
                ra, m = s.risk_aware, s.measured or {}
                r = s.table.loc["r_domain"]
                probs = s.probabilities
                run_at_ra = probs["one_run_within_at_risk_aware"].value if "one_run_within_at_risk_aware" in probs \
                    else np.nan
                out.append({
                    "model": path, "where": where, "T": T, "domain": dom,
                    "r* median [90%]": f"{r['median']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]",
                    "risk-aware r (law)": ra["r_domain"], "P(one run within) there": run_at_ra,
                    "risk-aware r (one run)": ra["one_run"]["r_domain"],
                    "measured crossing": m.get("crossing", np.nan),
                    "predictive pit": m.get("pit", np.nan), "agrees": m.get("agrees", ""),
                })
    return out


def main() -> None:
    t = pd.DataFrame(rows_for("example_cpt.nc") + rows_for("example_dcpt.nc"))
    path = REPO / "benchmarks" / "results" / "one_run_risk.csv"
    t.to_csv(path, index=False)
    print(f"machine: {machine()}\n")
    print(md_table(t, ".3f"))


if __name__ == "__main__":
    main()
