"""The crossing the runs themselves measure, checkpoint by checkpoint: a grid file-ordered against it shuffled.

r* at scale is checked against the crossing the largest size's runs measure (``decide.measured``): the ratio where the
general loss first rises ``T`` above the base model's, interpolated between the measured ratios. On the long-CPT grid
made with file-ordered streams (committed until ``_common.FILE_ORDERED_COMMITS``) that crossing swung from 0.3 to
0.0 and back to 0.7 over the late checkpoints of every size (BENCHMARKS.md, "Decision at scale at every checkpoint").
Here it is read off both grids, every size and domain, at every second checkpoint, for ``T`` = 2%: is the swing the data
order, or the dynamics? No fitting; seconds.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_measured_crossings.py [--grid long|example]`` (the packaged
grid, shuffled; the file-ordered one from git history); rows in ``benchmarks/results/measured_crossings.csv``
(``measured_crossings_example.csv`` for the example grid).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import file_ordered_grid, md_table

from bayes_dcpt import data as _data
from bayes_dcpt import datasets
from bayes_dcpt.decide.measured import measured_crossing

OUT = Path(__file__).parent / "results"


def crossings(name: str, df: pd.DataFrame, T: float) -> list[dict]:
    rows = []
    for n in sorted(df["n_params"].unique()):
        toks = sorted(df[(df["n_params"] == n) & (df["tokens"] > 0)]["tokens"].unique())
        for dom in sorted(df["domain"].unique()):
            for t in toks[::2]:
                m = measured_crossing(df, dom, n, t, max_general_increase=T, relative=True)
                rows.append({"probes": name, "n_params": int(n), "domain": dom, "tokens": int(t),
                             "crossing": np.nan if m is None else m["crossing"], "kind": m and m["kind"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", choices=("long", "example"), default="long", help="which packaged grid (default: long)")
    ap.add_argument("--shuffled", type=Path, default=None,
                    help="the shuffled grid (default: the packaged one, made with shuffled streams)")
    ap.add_argument("--T", type=float, default=0.02)
    a = ap.parse_args()
    packaged = datasets.load_long_cpt if a.grid == "long" else datasets.load_example
    rows = crossings("file-ordered", file_ordered_grid("long_cpt" if a.grid == "long" else "example_cpt"), a.T)
    rows += crossings("shuffled", _data.load(a.shuffled) if a.shuffled else packaged(), a.T)
    table = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / ("measured_crossings.csv" if a.grid == "long" else "measured_crossings_example.csv"),
                 index=False)
    wide = table.pivot_table(index=["probes", "n_params", "domain"], columns="tokens", values="crossing")
    wide.columns = [f"{c / 1e3:.0f}k" for c in wide.columns]
    print(md_table(wide.reset_index(), floatfmt=".2f"))


if __name__ == "__main__":
    main()
