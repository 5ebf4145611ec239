"""The discrepancy slope with its uncertainty against the maximum-likelihood slope, on the same fits and refits.

For each extrapolation split (the honest-fit splits of ``bench_honest_fit.py``: example grid largest size and
last third of tokens per domain, long-CPT grid tokens and size) and law (``cpt``, ``dcpt``): fit the law on the
split's training rows (nutpie, 2 x 500 after 500 tuning, seed 1), refit it on the training data's own held-out
splits (nutpie 300 + 300 x 2: what ``bd.fit`` does by default), then estimate the discrepancy slopes from those
held-out errors several ways and predict the split's test rows with each:

* ``ml``: the maximum-likelihood slopes (the package default);
* ``posterior <prior>``: ``sqrt(E[kappa^2])`` under each slope's posterior, a held-out run counting as one unit of
  evidence (:func:`bayes_dcpt.fitting.discrepancy.estimate_kappa`), with the priors of :data:`VARIANTS`: half-t
  with 3 degrees of freedom and scale one noise sd per unit of distance (``t3``, the opt-in's default), half-normal
  with the same scale, half-t with half the scale;
* ``none``: no discrepancy (the law's parameter uncertainty and noise only).

Only the kappas differ between the rows of one (split, law): the fit, the refits and the predictive draws are the
same. Cells: MAPE % / 90% coverage of the held-out CPT rows and the median band width (% of the loss).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_kappa_uncertainty.py [--datasets example,long]``; rows in
``benchmarks/results/kappa_uncertainty.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _evaluate import CI, _score
from bench_honest_fit import example_splits, long_splits

import bayes_dcpt as bd
from bayes_dcpt.data import schema as _data
from bayes_dcpt.fitting.discrepancy import data_envelope
from bayes_dcpt.fitting.extrapolation import discrepancy_from_scores, holdout_scores

OUT = Path(__file__).parent / "results"
REFIT = {"sampler": "nutpie", "draws": 300, "tune": 300, "chains": 2}


#: The slope's prior (scale in noise sds per unit of distance, degrees of freedom); "t3" is the package default.
VARIANTS = {"t3": (1.0, 3.0), "normal": (1.0, np.inf), "t3 half-scale": (0.5, 3.0)}


def kappas(scores, targets, uncertainty: bool, prior: tuple[float, float] = (1.0, 3.0)) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return discrepancy_from_scores(scores, targets, uncertainty=uncertainty, prior_scale=prior[0],
                                       prior_dof=prior[1])


def run(split, law: str, log=print) -> list[dict]:
    target = "both" if len(split.targets) == 2 else split.targets[0]
    test = _data.fit_rows(_data.load(split.test)).reset_index(drop=True)
    grid = test[["domain", "n_params", "tokens", "r_domain", "run_id"]]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bd.fit(split.train, law=law, target=target, draws=500, tune=500, chains=2, seed=1, warn=False,
                   discrepancy=False)
        scores = holdout_scores(f, seed=1, refit=REFIT)
    secs = time.perf_counter() - t0
    rows = []
    variants = {"ml": kappas(scores, f.targets, False),
                **{f"posterior {k}": kappas(scores, f.targets, True, v) for k, v in VARIANTS.items()}, "none": None}
    for name, kappa in variants.items():
        post = f.posterior
        if kappa is None:
            post.ctx.pop("discrepancy", None)
        else:
            post.ctx["discrepancy"] = kappa
            post.ctx["envelope"] = data_envelope(f.data)
        pred = f.predict(grid, CI, kind="predictive", seed=1)
        for t in split.targets:
            r = _score(f"{law} {name}", "posterior predictive", split.name, t, test, pred, secs)
            r["kappa_tokens"] = None if kappa is None else kappa[t]["tokens"]
            r["kappa_size"] = None if kappa is None else kappa[t]["size"]
            r["held-out runs"] = int(sum(s.runs["target"].eq(t).sum() for s in scores))
            rows.append(r)
            log(f"  {split.name} {law} {name} {t}: mape {r['MAPE %']:.2f} cov {r['coverage 90%']:.2f} "
                f"kappa {r['kappa_tokens']}, {r['kappa_size']}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="example,long")
    ap.add_argument("--laws", default="cpt,dcpt")
    a = ap.parse_args()
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
            pd.DataFrame(rows).to_csv(OUT / "kappa_uncertainty.csv", index=False)
    df = pd.DataFrame(rows)
    df["cell"] = [f"{m:.2f} / {c:.2f}" for m, c in zip(df["MAPE %"], df["coverage 90%"], strict=True)]
    print(df.pivot_table(index=["split", "target"], columns="method", values="cell", aggfunc="first").to_string())


if __name__ == "__main__":
    main()
