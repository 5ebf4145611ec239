"""Does screening change law="auto"'s weights, and what does it save? Every candidate refitted on every split.

``law="auto"`` screens (``fit_auto(screen=True)``, the default): after the first held-out split (each run's last
third of log D) a law with stacking weight 0 there and a held-out elpd more than ``SCREEN_SE`` standard errors below
the best is not refitted on the next split (the largest size). To judge that rule this script refits *every*
candidate on *every* split (what ``screen=False`` does, the same seeds and settings as ``fit_auto``), then applies
the rule to the first split's scores and compares: the weights with and without the screened laws' later scores,
and the refit seconds the rule would have saved.

Data: the embedded example grid and long-CPT grid, and the simulated scale set (``bench_scale.scale_set``) at 6,
25 and optionally 200 checkpoints per run (972, 4,050, 32,400 rows). Candidates: ``law="auto"``'s defaults.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_auto_screen.py --datasets example,long,scale6,scale25``
(rows to ``benchmarks/results/auto_screen.csv``, appended per data set).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from bench_scale import scale_set

from bayes_dcpt.data import schema as _data
from bayes_dcpt.fitting import auto as A
from bayes_dcpt.fitting.design import run_capacity
from bayes_dcpt.fitting.extrapolation import DEFAULT_SPLITS, law_holdout_scores
from bayes_dcpt.fitting.holdout import make_splits
from bayes_dcpt.laws.registry import get_law

OUT = Path(__file__).parent / "results" / "auto_screen.csv"


def load(name: str) -> pd.DataFrame:
    if name == "example":
        from bayes_dcpt.datasets import load_example

        return load_example()
    if name == "long":
        from bayes_dcpt.datasets import load_long_cpt

        return load_long_cpt()
    return scale_set(int(name.removeprefix("scale")))


def _fmt(weights: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in weights.items())


def measure(name: str, seed: int = 1) -> dict:
    """Refit every default candidate on every default split (as ``fit_auto(screen=False)``) and apply the screen."""
    df = load(name)
    notes: list[str] = []
    names = A._candidates(df, "both", None, notes)
    model = A._model_settings(df, {})
    slots = run_capacity(int(_data.fit_rows(df)["run_id"].nunique()))
    zr = all(get_law(n).family == "cpt" or bool(model.get("zero_ratio", False)) for n in names)
    splits = make_splits(df, DEFAULT_SPLITS)
    t0 = time.perf_counter()
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in names:
            scores[c] = law_holdout_scores(df, c, "both", model, splits, zero_ratio=zr, seed=seed, run_slots=slots)
    total = time.perf_counter() - t0
    first = splits[0].kind
    lpd_first = A._lpd_matrix({c: [s for s in sc if s.split == first] for c, sc in scores.items()})
    screened = {c: first for c in A.screened_out(lpd_first)}
    _, w_all = A._weigh(scores, [], {})
    _, w_screened = A._weigh(scores, [], screened)
    saved = sum(s.seconds for c in screened for s in scores[c] if s.split != first)
    gaps = {}
    best = lpd_first.sum().idxmax()
    for c in lpd_first.columns:
        gap, se = A.elpd_gap(lpd_first, best, c)
        gaps[c] = f"{gap:.1f} ({gap / se:.1f} se)" if se > 0 else "0"
    return {"data": name, "rows": int((df["tokens"] > 0).sum()), "candidates": " ".join(names),
            "first split": first, "elpd gap on it": " ".join(f"{k}={v}" for k, v in gaps.items()),
            "screened": " ".join(screened) or "none", "weights, every law refitted on every split": _fmt(w_all),
            "weights with screening": _fmt(w_screened),
            "max weight change": max(abs(w_all[k] - w_screened[k]) for k in w_all),
            "refit s, all": round(total, 1), "refit s saved": round(saved, 1),
            "refit s per law and split": " ".join(f"{c}:{s.split}={s.seconds:.0f}" for c, sc in scores.items()
                                                   for s in sc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="example,long,scale6,scale25")
    a = ap.parse_args()
    print(machine(), flush=True)
    rows = []
    for name in a.datasets.split(","):
        row = measure(name)
        print(row, flush=True)
        rows.append(row)
        old = pd.read_csv(OUT) if OUT.exists() else pd.DataFrame()
        if len(old):
            old = old[old["data"] != name]
        pd.concat([old, pd.DataFrame([row])], ignore_index=True).to_csv(OUT, index=False)
    print(md_table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
