"""Helpers shared by the benchmark scripts: locating ../shared/data, timing, markdown tables."""

from __future__ import annotations

import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


@contextmanager
def timer(store: dict, key: str):
    t0 = time.perf_counter()
    yield
    store[key] = time.perf_counter() - t0


def md_table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            cells.append(format(v, floatfmt) if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The last commit whose packaged grids (file name -> commit) were made with file-ordered training streams
#: (``shuffle_tokens = 66048``); each was then made again with shuffled ones (BENCHMARKS.md, "The long-CPT grid made
#: again", "The example grid made again"). Every example-grid number in BENCHMARKS.md before the twenty-third
#: session, and every long-grid number before the twenty-second, was measured on these versions.
FILE_ORDERED_COMMITS = {"long_cpt": "ebb5832", "example_cpt": "c2bec45"}


def file_ordered_grid(name: str = "long_cpt") -> pd.DataFrame:
    """A packaged grid (``"long_cpt"`` or ``"example_cpt"``) as committed before its streams were shuffled."""
    import subprocess
    import tempfile

    from bayes_dcpt import data as _data

    repo = Path(__file__).resolve().parents[1]
    text = subprocess.run(["git", "show", f"{FILE_ORDERED_COMMITS[name]}:bayes_dcpt/datasets/{name}.csv"],
                          cwd=repo, capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"{name}_file_ordered.csv"
        p.write_text(text)
        return _data.load(p)
