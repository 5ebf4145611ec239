"""Where ``law="auto"`` spends its time on a small grid: nutpie compilation, sampling, and the rest.

The issue's cost target is ``law="auto"`` on ~500 points in under 5 minutes on 2 cores. This times one
``fit_auto`` call (the Python API's defaults: candidates cpt, L3, L1, L7; refits 2 x 400 + 400 on the tokens and
size splits, screening; full fits 2 x 500 + 500 of the laws with weight) and splits its wall time into nutpie's
compilation of each model (``nutpie.compile_pymc_model``), sampling (``nutpie.sample``) and everything else
(model building, scoring, stacking), by wrapping the two nutpie functions. One dataset per run
(``--dataset``), a fresh process each so that compilation is counted as a user meets it; PyTensor's numba disk cache
(``~/.pytensor``) persists between processes but did not shorten nutpie's compilation in a later process
(BENCHMARKS.md).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_auto_cost.py --dataset long``
(appends to ``benchmarks/results/auto_cost.csv``).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from bench_auto_screen import load

OUT = Path(__file__).parent / "results"


def _timing(mod, name: str, key: str, acc: dict) -> None:
    """Wrap ``mod.name`` so that its calls add their seconds (and count) to ``acc[key]``."""
    f = getattr(mod, name)

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            acc[key] += time.perf_counter() - t0
            acc[key + " calls"] += 1

    setattr(mod, name, timed)


def measure(name: str, seed: int = 1) -> dict:
    import nutpie

    from bayes_dcpt.fitting import auto as A

    acc: dict[str, float] = collections.defaultdict(float)
    _timing(nutpie, "compile_pymc_model", "compile", acc)
    _timing(nutpie, "sample", "sampling", acc)
    df = load(name)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = A.fit_auto(df, "both", seed=seed)
    total = time.perf_counter() - t0
    cands = a.diagnostics().candidates
    refits = a.holdout.drop_duplicates(["law", "split"])
    return {"data": name, "rows": int((df["tokens"] > 0).sum()), "auto total s": total,
            "compile s": acc["compile"], "compiles": int(acc["compile calls"]),
            "sampling s": acc["sampling"], "samplings": int(acc["sampling calls"]),
            "rest s": total - acc["compile"] - acc["sampling"],
            "refit s per law and split": " ".join(f"{r.law}:{r.split}={r.seconds:.0f}" for r in refits.itertuples()),
            "weights": " ".join(f"{k}={v:.2f}" for k, v in a.weights.items()),
            "full fits (R-hat max / ESS min)": " ".join(f"{k}={d.rhat_max:.3f}/{d.ess_bulk_min:.0f}"
                                                        for k, d in cands.items())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="long", help="example, long or scale<n> (bench_auto_screen.load)")
    a = ap.parse_args()
    print(machine())
    row = measure(a.dataset)
    print(row, flush=True)
    OUT.mkdir(exist_ok=True)
    path = OUT / "auto_cost.csv"
    res = pd.concat([pd.read_csv(path), pd.DataFrame([row])]) if path.exists() else pd.DataFrame([row])
    res.to_csv(path, index=False)
    print(md_table(pd.DataFrame([row])))


if __name__ == "__main__":
    main()
