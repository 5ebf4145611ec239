"""What numba's fast-math costs to turn off: nutpie's sampling time with and without it, side by side in one run.

Fast-math made a fresh compile and a cached one compute different gradients, so a seed did not give the same draws
in every process (``fitting.samplers.compile_numba``). This compiles each model both ways (the cache warmed by an
untimed compile first) and samples it with the same seed and the package's nutpie settings, alternating the two
settings ``--repeats`` times; it reports the median sampling seconds, the minimum bulk ESS per second and the ratio
(without / with). Models: ``law="cpt"`` on the example grid (every domain, both losses), ``law="dcpt"`` on the same
grid, and ``law="cpt"`` on the long-CPT grid.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_fastmath.py [--repeats 3]``; rows in
``benchmarks/results/fastmath.csv``.
"""

from __future__ import annotations

import argparse
import time

import arviz as az
import numpy as np
import pandas as pd

from bayes_dcpt import datasets
from bayes_dcpt.data import schema as _data
from bayes_dcpt.fitting.config import FitConfig, resolve_parametrization
from bayes_dcpt.fitting.cpt_model import get_cpt_model, make_cpt_design
from bayes_dcpt.fitting.dcpt_model import get_model
from bayes_dcpt.fitting.design import make_design
from bayes_dcpt.fitting.diagnostics import _values
from bayes_dcpt.fitting.samplers import nutpie_options, start_at_optimum
from bayes_dcpt.laws.registry import get_law
from benchmarks._common import REPO, machine, md_table


def entries() -> dict[str, dict]:
    """name -> the package's cached model entry (model and data arrays)."""
    out = {}
    for name, df in (("example, cpt", datasets.load_example()), ("long, cpt", datasets.load_long_cpt())):
        cfg = FitConfig(law="cpt", target="both", zero_ratio=True)
        out[name] = get_cpt_model(cfg, make_cpt_design(_data.load(df), cfg))
    df = _data.load(datasets.load_example())
    cfg = FitConfig(law="L3", target="both", parametrization=resolve_parametrization("auto", df))
    out["example, dcpt"] = get_model(get_law("dcpt"), cfg, make_design(df, get_law("dcpt"), cfg))
    return out


def compiled(entry: dict, fastmath: bool):
    """The entry's model compiled by nutpie (numba) with or without fast-math, with its data."""
    import nutpie
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=fastmath):
        c = nutpie.compile_pymc_model(entry["model"])
    keys = {v.name for v in c.shared_var_keys} if hasattr(c, "shared_var_keys") else set(c._shared_data)
    return c.with_data(**{k: v for k, v in entry["arrays"].items() if k in keys})


def main() -> None:
    import nutpie

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(f"machine: {machine()}")
    rows = []
    for name, entry in entries().items():
        models = {fm: compiled(entry, fm) for fm in (True, False)}  # warms the cache, untimed
        for rep in range(a.repeats):
            for fm in (True, False):
                c, _ = start_at_optimum(compiled(entry, fm), entry["model"], 1)
                t0 = time.perf_counter()
                opts = {k: v for k, v in nutpie_options(entry, None).items() if k not in ("backend", "init")}
                idata = nutpie.sample(c, draws=500, tune=500, chains=4, cores=2, seed=1, progress_bar=False, **opts)
                secs = time.perf_counter() - t0
                names = [str(v) for v in idata["posterior"].data_vars]
                ess = float(np.nanmin(_values(az.ess(idata, var_names=names, method="bulk"), names)))
                rows.append({"model": name, "fastmath": fm, "repeat": rep, "seconds": secs, "ESS bulk min": ess,
                             "ESS/s": ess / secs})
                print(rows[-1], flush=True)
        del models
    raw = pd.DataFrame(rows)
    raw.to_csv(REPO / "benchmarks" / "results" / "fastmath.csv", index=False)
    med = raw.groupby(["model", "fastmath"])[["seconds", "ESS/s"]].median().unstack("fastmath")
    table = pd.DataFrame({"seconds, fast-math on": med[("seconds", True)],
                          "seconds, off": med[("seconds", False)],
                          "ratio off / on": med[("seconds", False)] / med[("seconds", True)],
                          "ESS/s, on": med[("ESS/s", True)], "ESS/s, off": med[("ESS/s", False)]}).reset_index()
    print(md_table(table, ".3g"))


if __name__ == "__main__":
    main()
