"""Probes made with shuffled streams against the same probes made with file-ordered ones: the token split.

The long-CPT grid was first made with training streams that read each corpus in its file order (BENCHMARKS.md, "The
probes' data order"), and every law under-covered its late checkpoints. It is now made with shuffled streams (everything
else as before). The two smaller sizes of both versions (the file-ordered one from git history,
``_common.FILE_ORDERED_COMMITS``) go through the same honest-fit check as a user runs it: ``bayes-dcpt fit train.csv
--json`` with the CLI's defaults on the checkpoints with D <= 2^19 (and the base rows), then ``bayes-dcpt predict`` of
the checkpoints 2^19 < D <= 2^21; MAPE of the band's centre and the share inside the 90% band, per loss and domain, and
whether the fit's own checks say the law describes the data. Also the r = 0 runs' general loss: its largest rise above
the base model (the "re-warming rise") and its largest one-checkpoint fall.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_shuffled_probes.py [--shuffled another.csv]`` (about 5 minutes;
``benchmarks/results/shuffled_probes.csv``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import file_ordered_grid, machine, md_table

from bayes_dcpt import data as _data
from bayes_dcpt import datasets

OUT = Path(__file__).parent / "results"
CLI = str(Path(sys.executable).parent / "bayes-dcpt")
SIZES = (13408.0, 100672.0)


def r0_shape(df: pd.DataFrame) -> dict[str, float]:
    """The r = 0 runs' general loss: largest rise above the base (% of it), largest one-checkpoint fall (nats)."""
    base = _data.base_losses(df).set_index(["domain", "n_params"])["loss_general"]
    rise, fall = [], []
    for (dom, n), g in df[(df["r_domain"] == 0) & (df["tokens"] > 0)].groupby(["domain", "n_params"]):
        y = g.sort_values("tokens")["loss_general"].to_numpy()
        rise.append(100 * (y.max() / base[(dom, n)] - 1))
        fall.append(-np.diff(y).min())
    return {"r=0 rise above base %": float(np.mean(rise)), "r=0 largest fall": float(np.mean(fall))}


def token_split(name: str, df: pd.DataFrame, work: Path) -> list[dict]:
    """Fit D <= 2^19 through the CLI with its defaults, predict 2^19 < D <= 2^21, score per loss and domain."""
    late = df["tokens"] > 2**19
    train, test = df[~late], df[late]
    train.to_csv(work / f"{name}_train.csv", index=False)
    test.to_csv(work / f"{name}_test.csv", index=False)
    t0 = time.perf_counter()
    p = subprocess.run([CLI, "fit", str(work / f"{name}_train.csv"), "--out", str(work / f"{name}.nc"), "--json"],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t0
    card = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    diag = card.get("diagnostics", {})
    subprocess.run([CLI, "predict", str(work / f"{name}.nc"), str(work / f"{name}_test.csv"), "--out",
                    str(work / f"{name}_pred.csv")], capture_output=True, text=True, check=True)
    pred = pd.read_csv(work / f"{name}_pred.csv")
    rows = []
    for t in ("general", "domain"):
        for dom in [*sorted(test["domain"].unique()), "all"]:
            k = (test["domain"] == dom).to_numpy() if dom != "all" else np.ones(len(test), bool)
            y = test[f"loss_{t}"].to_numpy(float)[k]
            m, lo, hi = (pred[f"loss_{t}_{s}"].to_numpy(float)[k] for s in ("mean", "lo", "hi"))
            ok = np.isfinite(y)
            rows.append({"probes": name, "loss": t, "domain": dom, "n": int(ok.sum()),
                         "MAPE %": 100 * float(np.mean(np.abs(m[ok] - y[ok]) / y[ok])),
                         "coverage": float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok]))),
                         "band % of loss": 100 * float(np.mean((hi[ok] - lo[ok]) / m[ok])),
                         "exit": p.returncode, "law describes the data": diag.get("adequate"),
                         "misfit checks": len(diag.get("misfit", [])), "R-hat": diag.get("rhat_max"),
                         "fit s": secs, **r0_shape(df)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shuffled", type=Path, default=None,
                    help="the shuffled grid (default: the packaged long-CPT grid, made with shuffled streams)")
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()
    ordered = file_ordered_grid("long_cpt")  # as committed until the grid was made again
    ordered = ordered[ordered["n_params"].isin(SIZES)].reset_index(drop=True)
    shuffled = _data.load(a.shuffled) if a.shuffled else datasets.load_long_cpt()
    shuffled = shuffled[shuffled["n_params"].isin(SIZES)].reset_index(drop=True)
    work = a.work or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    rows = token_split("file-ordered (until ebb5832)", ordered, work) + token_split("shuffled", shuffled, work)
    table = pd.DataFrame(rows)
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / "shuffled_probes.csv", index=False)
    print(machine())
    print(md_table(table[["probes", "loss", "domain", "n", "MAPE %", "coverage", "band % of loss"]], floatfmt=".3g"))
    print(md_table(table.drop_duplicates("probes")[["probes", "exit", "law describes the data", "misfit checks",
                                                      "R-hat", "fit s", "r=0 rise above base %", "r=0 largest fall"]],
                   floatfmt=".3g"))


if __name__ == "__main__":
    main()
