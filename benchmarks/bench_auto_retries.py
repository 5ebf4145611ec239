"""``law="auto"``'s held-out refits whose chains disagree: does sampling them again change what the weights decide?

Every candidate is refitted on every held-out split with screening off (``fit_auto``'s ``_held_out`` with
``screen=False``: every unconverged refit is sampled again at ``extrapolation.REFIT_RETRY``), with the Python API's
settings as the CLI passes them (4 chains x 1000 tuning steps for the full fits, hence the retries' 4 x 1000 after
1000), seed 1. Each attempt is recorded: law, split, chains (2: the first refit, 4: the retry), R-hat, seconds and
every held-out run's log predictive density. Then, for each refit whose first attempt's chains disagree (R-hat above
``diagnostics.SETTLED_RHAT``, 1.05): its pooled held-out elpd on the runs every law scored, first and retried; the
gap to the best law after the retries; and whether :func:`bayes_dcpt.fitting.auto.screened_out` rules its law out on
the split's scores as the new rule sees them (near misses retried, far misses first attempt) and as the retries
leave them.

Data: the embedded example grid (all 324 rows) and the long-CPT grid's training rows of its token split (D <= 2^19,
as ``bench_cli_defaults.py``). Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_auto_retries.py`` (about 10
minutes on 2 cores); raw attempts in ``benchmarks/results/auto_retries_attempts.json``, the table in
``benchmarks/results/auto_retries.csv``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table

from bayes_dcpt import datasets
from bayes_dcpt.data import schema as _data
from bayes_dcpt.fitting import auto as A
from bayes_dcpt.fitting.design import run_capacity
from bayes_dcpt.fitting.diagnostics import SETTLED_RHAT
from bayes_dcpt.fitting.extrapolation import DEFAULT_SPLITS, retry_within
from bayes_dcpt.fitting.holdout import make_splits

OUT = Path(__file__).parent / "results"


def grids() -> dict[str, pd.DataFrame]:
    long = datasets.load_long_cpt()
    return {"example": datasets.load_example(), "long tokens": long[long["tokens"] <= 2**19]}


def attempts(df: pd.DataFrame) -> list[dict]:
    """Every refit attempt of every candidate on every split (screening off), as ``fit_auto`` sets them up."""
    notes: list[str] = []
    names = A._candidates(df, "both", None, notes)
    kw = {**A.AUTO_DEFAULTS, "warn": False, "draws": None, "tune": 1000, "chains": 4}
    model = A._model_settings(df, kw)
    slots = dict.fromkeys(names, run_capacity(int(_data.fit_rows(df)["run_id"].nunique())))
    split_list = make_splits(df, DEFAULT_SPLITS, burn_in=model.get("burn_in", "warmup"))
    rows: list[dict] = []
    inner = A._refit_split

    def record(df_, c, target, model_, split, k, zr, seed, refit, slots_):
        t0 = time.perf_counter()
        got = inner(df_, c, target, model_, split, k, zr, seed, refit, slots_)
        for s in got:
            rows.append({"law": c, "split": split.kind, "chains": int(refit.get("chains", 2)),
                         "rhat": s.info.get("rhat_max"), "seconds": time.perf_counter() - t0,
                         "runs": s.runs[["target", "run_id", "lpd"]].to_dict(orient="list")})
        return got

    A._refit_split = record
    try:
        A._held_out(df, names, "both", model, split_list, A.predicts_zero_ratio(names, model), 1,
                    {"retry": retry_within(kw)}, slots, notes, False)
    finally:
        A._refit_split = inner
    return rows


def _lpd(rows: dict[str, dict]) -> pd.DataFrame:
    return pd.concat({k: pd.DataFrame(v["runs"]).set_index(["target", "run_id"])["lpd"] for k, v in rows.items()},
                     axis=1, join="inner")


def table(grid: str, rows: list[dict]) -> list[dict]:
    """One row per refit whose first attempt's chains disagree."""
    out = []
    for split in dict.fromkeys(r["split"] for r in rows):
        first = {r["law"]: r for r in rows if r["split"] == split and r["chains"] == 2}
        again = {r["law"]: r for r in rows if r["split"] == split and r["chains"] > 2}
        final = {k: again.get(k, v) for k, v in first.items()}
        seen = {k: again[k] if k in again and first[k]["rhat"] <= SETTLED_RHAT else v for k, v in first.items()}
        m_first, m_final = _lpd(first), _lpd(final)
        new, old = set(A.screened_out(_lpd(seen))), set(A.screened_out(m_final))
        best = m_final.sum().idxmax()
        for law, r in first.items():
            if r["rhat"] > SETTLED_RHAT and law in again:
                out.append({"grid": grid, "split": split, "law": law, "R-hat first": r["rhat"],
                            "R-hat retried": again[law]["rhat"], "elpd first": m_first[law].sum(),
                            "elpd retried": m_final[law].sum(), "gap to best": m_final[best].sum() - m_final[law].sum(),
                            "best": best, "first s": r["seconds"], "retry s": again[law]["seconds"],
                            "screened on first scores": law in new, "screened on retried scores": law in old})
    return out


def main() -> None:
    print(machine())
    OUT.mkdir(exist_ok=True)
    raw = OUT / "auto_retries_attempts.json"
    have = json.loads(raw.read_text()) if "--table" in sys.argv and raw.exists() else {}
    for grid, df in grids().items():
        if grid not in have:
            have[grid] = attempts(df)
            raw.write_text(json.dumps(have))
    t = pd.DataFrame([row for grid, rows in have.items() for row in table(grid, rows)])
    t.to_csv(OUT / "auto_retries.csv", index=False)
    print(md_table(t.round(3), floatfmt=".4g"))
    agree = (t["screened on first scores"] == t["screened on retried scores"]).sum()
    print(f"\nscreening decisions alike: {agree} of {len(t)}; |elpd change| max "
          f"{np.abs(t['elpd retried'] - t['elpd first']).max():.1f}; retries passing R-hat "
          f"{SETTLED_RHAT}: {(t['R-hat retried'] <= SETTLED_RHAT).sum()}")


if __name__ == "__main__":
    main()
