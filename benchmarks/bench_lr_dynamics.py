"""CPT dynamics law vs the D-CPT law on real probes under LR schedules they were not fitted on.

Data: the embedded LR-schedule grid (``bayes_dcpt.datasets.load_schedules``; SCHEDULES.md): per model size,
the same CPT probe at r_domain = 0.25, 0.5, 0.75 under four schedules (const, cosine and WSD re-warm the LR
to 1e-3; flat continues at the pre-training's final 3e-4), whole curves of 33 checkpoints plus the base rows.

Protocol A (the issue's): per size, fit on the const and cosine runs, predict the whole curves of the WSD
runs and of the flat runs (both unseen). The dynamics law (Bayesian, ``fit_dynamics``, replay variant) at the
papers' momentum 0.999 and at 0.99 and 0.95; "LOO-selected" is the momentum with the best PSIS-LOO on the
training runs (no held-out data used). The D-CPT law (Bayesian ``bayes_dcpt.fit``, L3, on the same
runs) sees (N, D, r) only: one curve per ratio, whatever the schedule.

Protocol B (the 0.1M model): leave one schedule out (fit on three, predict the fourth) for each of the four,
the dynamics law at 0.999 and at protocol A's LOO-selected momentum, and the D-CPT law.

Metrics per (held-out schedule, target): MAPE of the posterior mean over every held-out checkpoint
(step >= 1), MAPE at the final checkpoint, coverage and mean relative width of the 90% predictive band.

Run: python benchmarks/bench_lr_dynamics.py [--draws 1000 --tune 1000 --chains 2] [--protocol A|B|both]
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
from _common import REPO, machine, md_table  # noqa: E402

from bayes_dcpt.datasets import load_schedules  # noqa: E402

SCHEDS = ("const", "cosine", "wsd", "flat")
COLS = ["domain", "n_params", "tokens", "r_domain", "loss_general", "loss_domain", "run_id"]


def _tag(df: pd.DataFrame) -> pd.Series:
    return df["run_id"].str.extract(r"sched=(\w+)$")[0]


def _metrics(test: pd.DataFrame, pred: pd.DataFrame, method: str, split: str, extra: dict) -> list[dict]:
    rows = []
    tags = _tag(test).to_numpy()
    last = test["step"].to_numpy() == test.groupby("run_id")["step"].transform("max").to_numpy()
    for sched in sorted(set(tags)):
        m = tags == sched
        for t in ("general", "domain"):
            y = test[f"loss_{t}"].to_numpy(float)[m]
            mu = pred[f"loss_{t}_mean"].to_numpy(float)[m]
            lo, hi = pred[f"loss_{t}_lo"].to_numpy(float)[m], pred[f"loss_{t}_hi"].to_numpy(float)[m]
            err = np.abs(mu - y) / y
            rows.append({"split": split, "held-out": sched, "method": method, "target": t, "n": int(m.sum()),
                         "MAPE %": 100 * err.mean(), "final MAPE %": 100 * err[last[m]].mean(),
                         "90% coverage": float(np.mean((y >= lo) & (y <= hi))),
                         "band width %": 100 * float(np.mean((hi - lo) / y)), **extra})
    return rows


def _dynamics(train, test, lam, kw, split, label):
    from bayes_dcpt.fitting.dynamics import fit_dynamics

    t0 = time.perf_counter()
    f = fit_dynamics(train, momentum=lam, warn=False, **kw)
    secs = time.perf_counter() - t0
    d = f.diagnostics(warn=False)
    pred = f.predict(test[["domain", "n_params", "r_domain", "schedule", "step", "run_id"]], ci=0.9)
    extra = {"fit s": secs, "R-hat max": d.rhat_max, "ESS min": min(d.ess_bulk_min, d.ess_tail_min),
             "divergences": d.divergences, "law": f.law.name}
    return f, _metrics(test, pred, label, split, extra)


def _dcpt(train, test, kw, split):
    from bayes_dcpt.fitting import fit

    t0 = time.perf_counter()
    f = fit(train.loc[train["tokens"] > 0, COLS], law="dcpt", warn=False, **kw)
    secs = time.perf_counter() - t0
    d = f.diagnostics(warn=False)
    pred = f.predict(test[["domain", "n_params", "tokens", "r_domain", "run_id"]], ci=0.9)
    extra = {"fit s": secs, "R-hat max": d.rhat_max, "ESS min": min(d.ess_bulk_min, d.ess_tail_min),
             "divergences": d.divergences, "law": "L3 (D-CPT)"}
    return _metrics(test, pred, "D-CPT law (no schedule)", split, extra)


def protocol_a(df, sizes, kw, momenta):
    rows, chosen, loo_rows = [], {}, []
    for n in sizes:
        d = df[np.isclose(df["n_params"], n)]
        tags = _tag(d)
        train = d[tags.isin(["const", "cosine"]) | (d["tokens"] == 0)]
        test = d[tags.isin(["wsd", "flat"]) & (d["tokens"] > 0)]
        split = f"A: N={int(n):,}, fit const+cosine"
        fits = {}
        for lam in momenta:
            f, r = _dynamics(train, test, lam, kw, split, f"dynamics law, lambda={lam:g}")
            fits[lam] = f
            rows += r
            lo = f.loo()
            k = np.asarray(lo.pareto_k, float).ravel()
            loo_rows.append({"N": int(n), "momentum": lam, "elpd_loo": float(lo.elpd), "se": float(lo.se),
                             "p_loo": float(lo.p), "pareto k > 0.7": int((k > 0.7).sum())})
        best = max((r for r in loo_rows if r["N"] == int(n)), key=lambda r: r["elpd_loo"])["momentum"]
        chosen[n] = best
        sel = [dict(r, method=f"dynamics law, LOO-selected lambda={best:g}") for r in rows
               if r["split"] == split and r["method"] == f"dynamics law, lambda={best:g}"]
        rows += sel
        rows += _dcpt(train, test, kw, split)
    return rows, chosen, pd.DataFrame(loo_rows)


def protocol_b(df, n, kw, lam_sel):
    rows = []
    d = df[np.isclose(df["n_params"], n)]
    tags = _tag(d)
    for held in SCHEDS:
        train = d[(tags != held) | (d["tokens"] == 0)]
        test = d[(tags == held) & (d["tokens"] > 0)]
        split = f"B: N={int(n):,}, leave {held} out"
        for lam in sorted({0.999, lam_sel}, reverse=True):
            _, r = _dynamics(train, test, lam, kw, split, f"dynamics law, lambda={lam:g}")
            rows += r
        rows += _dcpt(train, test, kw, split)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--protocol", choices=("A", "B", "both"), default="both")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "lr_dynamics.csv"))
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    kw = {"draws": a.draws, "tune": a.tune, "chains": a.chains, "seed": a.seed}
    df = load_schedules()
    sizes = sorted(df["n_params"].unique(), reverse=True)
    t0 = time.perf_counter()
    rows, chosen, loo = [], {n: 0.999 for n in sizes}, pd.DataFrame()
    if a.protocol in ("A", "both"):
        r, chosen, loo = protocol_a(df, sizes, kw, (0.999, 0.99, 0.95))
        rows += r
    if a.protocol in ("B", "both"):
        rows += protocol_b(df, sizes[0], kw, chosen[sizes[0]])
    out = pd.DataFrame(rows)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(a.out, index=False)
    print(f"machine: {machine()}; {a.chains} chains x {a.draws} draws ({a.tune} tune), seed {a.seed}; "
          f"total {time.perf_counter() - t0:.0f} s")
    if len(loo):
        print("\nPSIS-LOO of the dynamics law on the training runs (protocol A) by annealing momentum:\n")
        print(md_table(loo, ".4g"))
    show = ["split", "held-out", "method", "target", "n", "MAPE %", "final MAPE %", "90% coverage", "band width %"]
    print("\n" + md_table(out[show], ".3g"))
    print("\nsampler diagnostics per fit:\n")
    diag = out.drop_duplicates(["split", "method"])[["split", "method", "law", "fit s", "R-hat max", "ESS min",
                                                      "divergences"]]
    print(md_table(diag, ".3g"))


if __name__ == "__main__":
    main()
