"""The discrepancy calibrated from one leave-future-out origin or two, on the same fits and refits.

Why: calibrated from the ``"tokens"`` split alone (each run's last third of log D held out), the discrepancy slope
along tokens was often 0 and the 90% bands of the honest-fit token splits covered 0.60-0.77. The second origin
(``"tokens_early"``: the last two-thirds held out) measures the law's errors twice as far beyond the data.

For each extrapolation split of ``bench_honest_fit.py`` (example grid: last third of tokens and the largest size,
per domain; long-CPT grid: tokens and size) and law (``cpt``, ``dcpt``; ``dcpt`` not on the long grid, where L3
misfits): fit the law on the split's training rows (nutpie, 2 x 500 after 500 tuning, seed 1), refit it on the
training data's own held-out splits ``tokens``, ``size`` and ``tokens_early`` (nutpie 300 + 300 x 2, as ``bd.fit``
does), then estimate the discrepancy slopes from those held-out errors and predict the split's test rows with each:

* ``one origin``: ``tokens`` + ``size`` (the package before the second origin);
* ``two origins``: the slopes estimated with each origin, the larger kept (the package default now);
* ``pooled``: both origins' errors pooled in one estimate (the alternative not taken);
* ``none``: no discrepancy.

Only the kappas differ between the rows of one (split, law). Cells: MAPE % / 90% coverage of the held-out CPT rows,
the mean band width (% of the loss) and the refits' seconds per split (the early origin's cost).

``--scale N``: instead, the cost at scale: the simulated scale set with N checkpoints per run (``bench_scale.py``;
200 = 32,400 rows), the D-CPT fit with the CLI's defaults, then each split's refit timed, in one process.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_token_origins.py [--datasets example,long]``; rows in
``benchmarks/results/token_origins.csv``; ``--scale 200`` -> ``token_origins_scale.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _evaluate import CI, _score
from bench_honest_fit import example_splits, long_splits

import bayes_dcpt as bd
from bayes_dcpt.data import schema as _data
from bayes_dcpt.fitting.discrepancy import data_envelope
from bayes_dcpt.fitting.extrapolation import discrepancy_from_scores, holdout_scores
from bayes_dcpt.fitting.holdout import HoldoutScore, make_splits

OUT = Path(__file__).parent / "results"
REFIT = {"sampler": "nutpie", "draws": 300, "tune": 300, "chains": 2}
SPLITS = ("tokens", "size", "tokens_early")


def variants(scores: list[HoldoutScore], targets) -> dict:
    """The kappas of each calibration variant from the same held-out scores."""
    one = [s for s in scores if s.split != "tokens_early"]
    pooled = [HoldoutScore(s.law, "tokens", s.runs, s.points.assign(split="tokens")) if s.split == "tokens_early"
              else s for s in scores]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {"one origin": discrepancy_from_scores(one, targets),
                "two origins": discrepancy_from_scores(scores, targets),
                "pooled": discrepancy_from_scores(pooled, targets), "none": None}


def run(split, law: str, log=print) -> list[dict]:
    target = "both" if len(split.targets) == 2 else split.targets[0]
    test = _data.fit_rows(_data.load(split.test)).reset_index(drop=True)
    grid = test[["domain", "n_params", "tokens", "r_domain", "run_id"]]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bd.fit(split.train, law=law, target=target, draws=500, tune=500, chains=2, seed=1, warn=False,
                   discrepancy=False)
        fit_s = time.perf_counter() - t0
        scores = holdout_scores(f, SPLITS, seed=1, refit=REFIT)
    secs = {s.split: s.seconds for s in scores}
    rows = []
    for name, kappa in variants(scores, f.targets).items():
        post = f.posterior
        if kappa is None:
            post.ctx.pop("discrepancy", None)
        else:
            post.ctx["discrepancy"] = kappa
            post.ctx["envelope"] = data_envelope(f.data)
        pred = f.predict(grid, CI, kind="predictive", seed=1)
        for t in split.targets:
            r = _score(f"{law} {name}", "posterior predictive", split.name, t, test, pred, fit_s)
            r.update({"law": law, "variant": name, "kappa_tokens": None if kappa is None else kappa[t]["tokens"],
                      "kappa_size": None if kappa is None else kappa[t]["size"], "fit s": fit_s,
                      **{f"refit {k} s": secs.get(k) for k in SPLITS}})
            rows.append(r)
            log(f"  {split.name} {law} {name} {t}: mape {r['MAPE %']:.2f} cov {r['coverage 90%']:.2f} "
                f"width {r['width % of loss']:.1f} kappa {r['kappa_tokens']}, {r['kappa_size']}")
    return rows


def scale(n_checkpoints: int) -> pd.DataFrame:
    """The early origin's refit cost on the simulated scale set, beside the fit and the other refits."""
    from bench_scale import scale_set

    from bayes_dcpt.fitting import dcpt
    from bayes_dcpt.fitting.api import _refit_settings

    df = scale_set(n_checkpoints)
    t0 = time.perf_counter()
    f = dcpt.fit(df, "dcpt", "both", seed=1, warn=False)
    fit_s = time.perf_counter() - t0
    scores = holdout_scores(f, SPLITS, seed=1, refit=_refit_settings(True, {}))
    rows = {s.kind: int((s.train["tokens"] > 0).sum()) for s in make_splits(df, SPLITS)}
    row = {"rows": int((df["tokens"] > 0).sum()), "fit s": fit_s,
           **{f"refit {s.split} s": s.seconds for s in scores},
           **{f"refit {k} training rows": v for k, v in rows.items()}}
    row["early origin / (fit + other refits)"] = row.get("refit tokens_early s", float("nan")) / (
        fit_s + row.get("refit tokens s", 0.0) + row.get("refit size s", 0.0))
    print(row, flush=True)
    out = pd.DataFrame([row])
    out.to_csv(OUT / "token_origins_scale.csv", index=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="example,long")
    ap.add_argument("--laws", default="cpt,dcpt")
    ap.add_argument("--scale", type=int, default=0, help="checkpoints per run of the scale set (cost only)")
    a = ap.parse_args()
    if a.scale:
        scale(a.scale)
        return
    splits = []
    if "example" in a.datasets:
        splits += [s for s in example_splits(["python", "c_headers", "codec_tables"]) if "ratios" not in s.name]
    if "long" in a.datasets:
        splits += long_splits()
    rows: list[dict] = []
    for sp in splits:
        for law in a.laws.split(","):
            if law == "dcpt" and sp.name.startswith(("tokens", "size")):
                continue  # L3 misfits the long grid (BENCHMARKS.md, honest fit): not a test of the bands
            rows += run(sp, law)
            pd.DataFrame(rows).to_csv(OUT / "token_origins.csv", index=False)
    df = pd.DataFrame(rows)
    df["cell"] = [f"{m:.2f} / {c:.2f} / {w:.1f}%" for m, c, w in
                  zip(df["MAPE %"], df["coverage 90%"], df["width % of loss"], strict=True)]
    print(df.pivot_table(index=["split", "law", "target"], columns="variant", values="cell",
                         aggfunc="first").to_string())


if __name__ == "__main__":
    main()
