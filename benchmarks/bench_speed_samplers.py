"""Speed of the Bayesian fit per sampler, as ratios against the point fit measured in the same run.

Datasets:

* ``synthetic``: a joint fit (general and domain loss) of about 1,000 observations: one domain of the
  package's default world, 4 sizes (0.1-1B) x 6 ratios x 20 checkpoints (960 fitted log losses; sigma
  0.004, tau 0.003). The Bayesian core's target: under a minute on 2 cores, zero divergences, R-hat < 1.01.
* ``example``: the packaged example grid, all three domains (hierarchical, 630 fitted log losses).
* ``mixinglaws``: the Pythia-70M CPT sweep (100 log losses), when ``../shared/data`` is present.

For each sampler (nutpie = default, PyMC's NUTS, numpyro's NUTS, and the approximations laplace and ADVI):
a cold fit (compilation included) and a warm refit with another seed (the compiled model is cached), the
minimum bulk ESS over the reported parameters, ESS per second of the warm fit, R-hat, divergences, and the
90% law band width at the data's largest model size relative to nutpie's. The baseline is the paper's
point fit (both targets, per domain) in the same process: every time is also given as a multiple of it.

Run: ``.venv/bin/python benchmarks/bench_speed_samplers.py [synthetic example mixinglaws]
[--samplers nutpie,pymc,numpyro,laplace,advi] [--draws 1000 --tune 1000 --chains 4]``.
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
from _common import machine, md_table

from bayes_dcpt import data as _data
from bayes_dcpt import datasets
from bayes_dcpt.fitting import fit
from bayes_dcpt.fitting.pointfit import fit_point
from bayes_dcpt.plan.simulate import World, probe_grid


def synthetic() -> pd.DataFrame:
    world = World.default(domains=("code",), sigma=0.004, tau=0.003)
    grid = probe_grid(
        n_params=(1e8, 2e8, 5e8, 1e9), r_domain=(0.1, 0.25, 0.4, 0.55, 0.7, 0.9), n_checkpoints=20
    )
    return world.simulate(grid, seed=0)


SETS = {"synthetic": synthetic, "example": datasets.load_example, "mixinglaws": datasets.load_mixinglaws_cpt}


def band_width(f, df: pd.DataFrame) -> float:
    rows = _data.fit_rows(df)
    rows = rows[
        (rows["n_params"] == rows["n_params"].max()) & (rows["r_domain"] > 0) & (rows["r_domain"] < 1)
    ]
    p = f.predict(rows, 0.9, kind="mean")
    return float(np.mean([(p[f"loss_{t}_hi"] - p[f"loss_{t}_lo"]).mean() for t in ("general", "domain")]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=["synthetic", "example"])
    ap.add_argument("--samplers", default="nutpie,pymc,numpyro,laplace,advi")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    a = ap.parse_args()
    print(f"machine: {machine()}; {a.chains} chains x {a.draws} draws (+{a.tune} tune), cores = 2")
    for name in a.datasets:
        try:
            df = SETS[name]()
        except datasets.DatasetUnavailable as exc:
            print(f"{name}: skipped ({exc})")
            continue
        n_obs = len(_data.to_long(df).query("r > 0"))
        t0 = time.perf_counter()
        fit_point(df, "dcpt", "both")
        t_point = time.perf_counter() - t0
        rows = [
            {
                "sampler": "point fit (paper, both targets)",
                "cold s": t_point,
                "warm s": t_point,
                "x point fit (warm)": 1.0,
            }
        ]
        ref_width = None
        for sampler in a.samplers.split(","):
            kw = {
                "draws": a.draws,
                "tune": a.tune,
                "chains": a.chains,
                "cores": 2,
                "sampler": sampler,
                "warn": False,
            }
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    fit(df, "dcpt", "both", seed=1, **kw)
                    cold = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    f = fit(df, "dcpt", "both", seed=2, **kw)
                    warm = time.perf_counter() - t0
            except Exception as exc:  # a sampler that is not installed or fails is reported, not hidden
                rows.append({"sampler": sampler, "note": f"failed: {type(exc).__name__}: {str(exc)[:80]}"})
                print(f"  {name} {sampler}: failed ({exc})", flush=True)
                continue
            d = f.diagnostics(warn=False)
            w = band_width(f, df)
            if sampler == "nutpie":
                ref_width = w
            approx = d.approximate
            rows.append(
                {
                    "sampler": sampler,
                    "cold s": cold,
                    "warm s": warm,
                    "x point fit (warm)": warm / t_point,
                    "ESS bulk min": np.nan if approx else d.ess_bulk_min,
                    "ESS/s (warm)": np.nan if approx else d.ess_bulk_min / warm,
                    "R-hat max": np.nan if approx else d.rhat_max,
                    "divergences": np.nan if approx else d.divergences,
                    "law band width vs nutpie": w / ref_width if ref_width else np.nan,
                    "note": "approximation, no MCMC diagnostics"
                    if approx
                    else ("ok" if d.ok else "; ".join(d.problems)),
                }
            )
            print(f"  {name} {sampler}: cold {cold:.1f} s, warm {warm:.1f} s; {d}", flush=True)
        out = pd.DataFrame(rows)
        print(f"\n### {name}: {len(df)} rows, {n_obs} fitted log losses; point fit {t_point:.1f} s")
        print(md_table(out))


if __name__ == "__main__":
    main()
