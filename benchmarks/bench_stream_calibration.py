"""The size discrepancy calibrated with or without the shared data streams, side by side on the same fit.

A fit predicts a new size on a probed data stream with that stream's shared deviation (``posterior/streams.py``).
Its size discrepancy is measured by a held-out refit on the smaller sizes predicting the largest. Before, that
refit predicted without the streams (a refit on one size cannot measure them), so the discrepancy also carried
the part of the error the streams remove, and the long-CPT grid's general loss at a new size over-covered (0.97).
Now the refits take the fit's stream variances (``fitting.extrapolation.stream_components``) and predict the
held-out size as the fit will.

Per case, ``law="cpt"`` is fitted once (every domain in one fit, 4 chains x 500 draws after 500 tuning steps, seed
1, no calibration), then calibrated twice with the same refits (same seeds, the default held-out splits, refit
settings of ``REFIT_DEFAULTS``): ``"without"`` (the refits measure their own streams: none with one size) and
``"with"`` (the fit's). Cases: the example grid and the long-CPT grid, fit the two smaller sizes and every base
row, predict the largest (MAPE, 90% coverage of the posterior predictive with the streams, per target and domain);
and the whole grids (the size slopes only: their inner size refit fits two sizes). Rows in
``benchmarks/results/stream_calibration_{scores,kappa}.csv``. Run: ``PYTHONPATH=. .venv/bin/python
benchmarks/bench_stream_calibration.py``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

import bayes_dcpt as bd
from bayes_dcpt import datasets
from bayes_dcpt.fitting import extrapolation
from benchmarks._common import REPO, machine, md_table
from benchmarks.bench_replay_scope import scores

MCMC = {"draws": 500, "tune": 500, "chains": 4, "seed": 1, "warn": False}
OUT = REPO / "benchmarks" / "results"


def cases() -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None]]:
    out = {}
    for name, df in (("example", datasets.load_example()), ("long", datasets.load_long_cpt())):
        base = df["tokens"] == 0
        big = np.isclose(df["n_params"], df["n_params"].max())
        out[f"{name}, size"] = (df[~big | base], df[big & ~base])
        out[f"{name}, whole grid"] = (df, None)
    return out


def kappas(name: str, variant: str, f) -> list[dict]:
    rows = []
    for t, k in f.posterior.ctx["discrepancy"].items():
        rows.append({"case": name, "streams in calibration": variant, "target": t, "domain": "(pooled)",
                     "size": k.get("size"), "tokens": k.get("tokens")})
        for dom, kd in (k.get("domains") or {}).items():
            rows.append({"case": name, "streams in calibration": variant, "target": t, "domain": dom,
                         "size": kd.get("size"), "tokens": kd.get("tokens")})
    return rows


def main() -> None:
    print(f"machine: {machine()}")
    score_rows, kappa_rows = [], []
    own = extrapolation.stream_components
    for name, (train, test) in cases().items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = bd.fit(train, law="cpt", discrepancy=False, **MCMC)
        print(f"{name}: fit {time.perf_counter() - t0:.0f} s; {f.diagnostics(warn=False)}", flush=True)
        for variant in ("without", "with"):
            extrapolation.stream_components = own if variant == "with" else (lambda streams: None)
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    extrapolation.calibrate(f, seed=1)
            finally:
                extrapolation.stream_components = own
            print(f"  calibration {variant} streams: {time.perf_counter() - t0:.0f} s", flush=True)
            kappa_rows += kappas(name, variant, f)
            if test is not None:
                score_rows += [{**r, "streams in calibration": r.pop("replay_scope")}
                               for r in scores(name, variant, f, test)]
        pd.DataFrame(score_rows).to_csv(OUT / "stream_calibration_scores.csv", index=False)
        pd.DataFrame(kappa_rows).to_csv(OUT / "stream_calibration_kappa.csv", index=False)
    print(md_table(pd.DataFrame(score_rows), ".3f"))
    print(md_table(pd.DataFrame(kappa_rows), ".4g"))


if __name__ == "__main__":
    main()
