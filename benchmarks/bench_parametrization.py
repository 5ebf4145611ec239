"""Which hierarchy parameterisation samples the embedded example grid best (the demo's fit).

The example grid has 3 domains. The general loss is measured on one validation set for every domain, so its
domain-level parts hardly differ (a centred hierarchy makes a funnel there); the domain losses differ a lot
and are measured precisely (a non-centred hierarchy then correlates the population mean with every offset).
``parametrization="mixed"`` is non-centred for the general loss and centred for the domain loss (partial
centring). ``domain_levels``: the domain-loss far-corner levels pooled across domains, or each domain's own
(``"separate"``, the default: each domain's loss is measured on its own validation text). Each setting is fitted with the same data, draws and seed, one after the other in one run.

Run: ``.venv/bin/python benchmarks/bench_parametrization.py [--draws 500 --tune 500 --chains 2]
[--settings parametrization:adaptation:levels,...]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table  # noqa: E402

from bayes_dcpt.datasets import load_example  # noqa: E402
from bayes_dcpt.fitting import fit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--settings", default="noncentered:low_rank:pooled,noncentered:low_rank:separate,"
                    "noncentered:diag:separate,mixed:low_rank:separate,centered:low_rank:separate")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    df = load_example()
    rows = []
    for item in a.settings.split(","):
        par, adapt, levels = (item.split(":") + ["separate"])[:3]
        t0 = time.perf_counter()
        f = fit(df, "dcpt", "both", draws=a.draws, tune=a.tune, chains=a.chains, seed=a.seed,
                parametrization=par, domain_levels=levels, sampler_kwargs={"adaptation": adapt}, warn=False)
        secs = time.perf_counter() - t0
        d = f.diagnostics(warn=False)
        ess = min(d.ess_bulk_min, d.ess_tail_min)
        rows.append({"parametrization": par, "domain levels": levels, "adaptation": adapt, "wall s": secs, "divergences": d.divergences,
                     "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min, "ESS tail min": d.ess_tail_min,
                     "min ESS / s": ess / secs, "ok": d.ok})
        print(f"{par}/{adapt}/{levels}: {d}", flush=True)
    out = pd.DataFrame(rows)
    base = out["min ESS / s"].iloc[0]
    out["ESS/s vs first"] = out["min ESS / s"] / base
    print(f"\nmachine: {machine()}; example grid ({len(df)} rows), {a.chains} chains x {a.draws} draws "
          f"({a.tune} tune), seed {a.seed}\n")
    print(md_table(out, ".3g"))


if __name__ == "__main__":
    main()
