"""Where the committed example model's r* agrees with the crossing the example's runs measure: at every token count.

The decision check (``bayes_dcpt.decide.measured``) compares r* at N = 443,232 with the crossing the runs measure,
by a posterior predictive check. At the largest measured D (524,288 tokens) python's r* sits above the crossing; this
asks the same question at the earlier checkpoints (131,072 and 262,144 tokens) to tell a law that misses python's
rise in r from one checkpoint that all runs share (the last checkpoint's data-order drop, BENCHMARKS.md).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_rstar_tokens.py`` (loads ``models/example_cpt.nc``; 30 s);
rows in ``benchmarks/results/rstar_tokens.csv``.
"""

from __future__ import annotations

import pandas as pd

import bayes_dcpt as bd
from bayes_dcpt import datasets
from benchmarks._common import REPO, machine, md_table

N = 443232.0


def main() -> None:
    print(f"machine: {machine()}")
    df = datasets.load_example()
    f = bd.load_fit(REPO / "models" / "example_cpt.nc")
    rows = []
    for D in (131072.0, 262144.0, 524288.0):
        for T in (0.02, 0.03):
            for dom, d in f.optimize("tradeoff", n_params=N, tokens=D, max_general_increase=T, data=df).items():
                s = d.summary(0.9)
                m, r = s.measured or {}, s.table.loc["r_domain"]
                rows.append({"tokens": int(D), "T": T, "domain": dom, "r* median": r["median"],
                             "r* 90%": f"{r['lo']:.3f}-{r['hi']:.3f}", "measured crossing": m.get("crossing"),
                             "pit": m.get("pit"), "agrees": m.get("agrees")})
    t = pd.DataFrame(rows)
    t.to_csv(REPO / "benchmarks" / "results" / "rstar_tokens.csv", index=False)
    print(md_table(t, ".3f"))
    print(t.groupby("domain")["agrees"].apply(lambda a: f"{int(a.sum())} of {len(a)}").to_string())


if __name__ == "__main__":
    main()
