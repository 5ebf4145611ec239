"""A new domain from a few probes: the Cross-Domain D-CPT law's band against what the domain then measures.

The Cross-Domain law's promise: a new domain needs only its base-model losses and a cheap probe run. For each
domain of a packaged grid in turn, it is the new one: the training data are every other domain's full grid plus,
for the new domain, its base rows (tokens == 0, every size) and the first two checkpoints after the LR warm-up of
its probe run (smallest size, ratio 1: the run the DLC features k1, k2, k3 are read from, probe budget = the
first of those checkpoints). ``bd.fit(law="cross-domain", target="domain")`` with its defaults otherwise (nutpie
2 x 500 after 500 tuning, seed 1, the discrepancy calibrated from held-out refits 2 x 300 + 300) predicts every
other CPT measurement of the new domain (every size, ratio and checkpoint). The same rows of the other domains,
predicted by the same fit, are the in-data reference. Scored rows: past the LR warm-up (left out of every fit) and
with some domain data in the mixture (r > 0).

``--laws cross-domain,cpt`` also fits the base-anchored CPT law (every domain its own parameters, so the new
domain's are what its base rows and two checkpoints say, within the priors) on the same training rows.

Cells: MAPE % and 90% coverage of the held-out rows (posterior predictive, a new run's measurement), median band
width (% of the loss). Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_new_domain.py [--datasets
example,long] [--laws cross-domain,cpt] [--suffix S]``; rows in ``benchmarks/results/new_domain<S>.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _evaluate import CI, _score

import bayes_dcpt as bd
from bayes_dcpt import datasets
from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.schema import in_warmup

OUT = Path(__file__).parent / "results"
REFIT = {"sampler": "nutpie", "draws": 300, "tune": 300, "chains": 2}


def split_new_domain(df: pd.DataFrame, new: str) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """(train, test, probe budget): the new domain keeps its base rows and two early probe checkpoints."""
    dom = df["domain"] == new
    nmin = df.loc[dom, "n_params"].min()
    rmax = df.loc[dom & (df["tokens"] > 0), "r_domain"].max()
    probe = dom & (df["n_params"] == nmin) & np.isclose(df["r_domain"], rmax) & (df["tokens"] > 0) & ~in_warmup(df)
    first_two = np.sort(df.loc[probe, "tokens"].unique())[:2]
    keep_new = dom & ((df["tokens"] == 0) | (probe & df["tokens"].isin(first_two)))
    train = df[~dom | keep_new].reset_index(drop=True)
    test = df[dom & ~keep_new & (df["tokens"] > 0)].reset_index(drop=True)
    return train, test, float(first_two[0])


def run(name: str, df: pd.DataFrame, new: str, law: str = "cross-domain", log=print) -> list[dict]:
    train, test, budget = split_new_domain(df, new)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if law == "cross-domain":
            f = bd.fit(train, law=law, target="domain", draws=500, tune=500, chains=2, seed=1, warn=False,
                       probe_tokens=budget, discrepancy=REFIT)
        else:  # a law with per-domain parameters (the base-anchored cpt): the probe is all the new domain has
            f = bd.fit(train, law=law, draws=500, tune=500, chains=2, seed=1, warn=False, discrepancy=REFIT)
    secs = time.perf_counter() - t0
    d = f.diagnostics(warn=False)
    extra = {"dataset": name, "law": law, "new domain": new, "probe tokens": budget,
             "n train": int((train["tokens"] > 0).sum()),
             "divergences": d.divergences, "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min,
             "kappa": str(f.posterior.ctx.get("discrepancy"))}
    rows = []
    # scored: CPT rows past the LR warm-up (the fit leaves the warm-up transient out, no law describes it) with
    # some domain data in the mixture (the domain loss at r = 0 is outside the law, zero_ratio=False)
    def scored(frame: pd.DataFrame) -> pd.DataFrame:
        rows_ = _data.fit_rows(_data.load(frame)).reset_index(drop=True)
        return rows_[(rows_["r_domain"] > 0) & ~in_warmup(rows_)].reset_index(drop=True)

    ref, held = scored(df[df["domain"] != new]), scored(test)
    for label, rows_ in (("new domain", held), ("other domains (in the data)", ref)):
        grid = rows_[["domain", "n_params", "tokens", "r_domain", "run_id"]]
        pred = f.predict(grid, CI, kind="predictive", seed=1)
        r = _score(law, "posterior predictive", label, "domain", rows_, pred, secs, extra)
        rows.append(r)
        log(f"  {name} {law} new={new} {label}: MAPE {r['MAPE %']:.2f} cov {r['coverage 90%']:.2f} "
            f"width {r['width % of loss']:.1f}% ({secs:.0f} s; R-hat {d.rhat_max:.3f}, div {d.divergences})")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="example,long")
    ap.add_argument("--laws", default="cross-domain", help="comma list: cross-domain, cpt")
    ap.add_argument("--suffix", default="", help="appended to the CSV name")
    a = ap.parse_args()
    sets = {"example": datasets.load_example, "long": datasets.load_long_cpt}
    rows: list[dict] = []
    for name in a.datasets.split(","):
        df = sets[name]()
        for new in sorted(df["domain"].unique()):
            for law in a.laws.split(","):
                rows += run(name, df, new, law)
                pd.DataFrame(rows).to_csv(OUT / f"new_domain{a.suffix}.csv", index=False)


if __name__ == "__main__":
    main()
