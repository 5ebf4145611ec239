"""Critical mixture ratio on the Pythia-70M CPT sweep (../shared/data/mixinglaws): posterior vs paper vs data.

Question: at which Python share r does the general (weighted Pile) loss after the last CPT step (10k steps)
come back exactly to the base model's loss 2.8734? This is usage 1 with a zero threshold
(``decisions.tradeoff(post, max_general_increase=0)``).

Compared:
* the Data Mixing Laws paper's prediction, python share 1 - 0.28515625 = 0.7148 (SOURCE.md), which
  they then ran: general loss 2.8721 after 10k steps against 2.8734 before CPT;
* the "observed" crossing: linear interpolation in r of the measured final general losses of the two
  neighbouring ratios that end below and above the base loss;
* the D-CPT law (L3, general loss only) fitted by the paper's point procedure, and its bootstrap
  (resampling checkpoints, and resampling whole runs) turned into a Posterior
  (:meth:`BootstrapResult.to_posterior`), all through the same decision code;
* two fits: all 5 ratios, and the 4 ratios without 0.7148 (the paper's situation: predicting the critical
  ratio before running it).

Each row also gives the posterior predictive 90% interval of the general loss of the 0.7148 run after 10k
steps, to compare with the measured 2.8721, and the 90% interval of the ratio where one run crosses the threshold
(its noise included; ``one_run_crossing``), to compare with the observed crossing, itself read off single runs.

Hook for further methods (e.g. the Bayesian fit): pass ``extra_methods={"label": fn}`` to :func:`main`,
where ``fn(train_df) -> Posterior``; or ``--fit FIT.nc`` (a fit saved by ``bayes_dcpt.fitting``, loaded with
``load_fit`` and reported on the split it was fitted on, assumed "all ratios").

Run: .venv/bin/python benchmarks/bench_critical_ratio_mixinglaws.py [--n-boot 200] [--fit FIT.nc]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table  # noqa: E402

from bayes_dcpt import decide as decisions
from bayes_dcpt.datasets import DatasetUnavailable, load_mixinglaws_cpt
from bayes_dcpt.fitting.pointfit import bootstrap, fit_point
from bayes_dcpt.posterior.draws import Posterior

#: The Data Mixing Laws authors' predicted critical ratio (pile 0.28515625, python 0.71484375; SOURCE.md).
PAPER_R = 1.0 - 0.28515625
CI = 0.9

def _bayes(df: pd.DataFrame, run_effect: bool = True) -> Posterior:
    """The Bayesian fit (general loss, D-CPT law, default sampler nutpie; 4 chains x 1000 draws)."""
    from bayes_dcpt.fitting import fit

    f = fit(df, "dcpt", "general", seed=1, warn=False, run_effect=run_effect)
    d = f.diagnostics(warn=False)
    print(f"  Bayesian fit (run_effect={run_effect}): {d}", flush=True)
    return f.posterior


#: Extra rows: label -> function(train frame) -> Posterior.
EXTRA_METHODS: dict[str, Callable[[pd.DataFrame], Posterior]] = {
    "Bayesian fit (NUTS, run effects)": _bayes,
    "Bayesian fit (NUTS, no run effect)": lambda df: _bayes(df, run_effect=False),
}


def observed_crossing(df: pd.DataFrame, base: float) -> tuple[float, float, float]:
    """Linear interpolation of the final general losses between the ratios bracketing the base loss."""
    last = df[df["tokens"] == df["tokens"].max()].sort_values("r_domain")
    r, y = last["r_domain"].to_numpy(), last["loss_general"].to_numpy()
    i = int(np.flatnonzero((y[:-1] <= base) & (y[1:] > base))[0])
    return float(r[i] + (base - y[i]) / (y[i + 1] - y[i]) * (r[i + 1] - r[i])), float(r[i]), float(r[i + 1])


def row_for(label: str, split: str, post: Posterior, df: pd.DataFrame, secs: float, obs_r: float) -> dict:
    N = float(df["n_params"].iloc[0])
    D = float(df["tokens"].max())
    d = decisions.tradeoff(post, n_params=N, tokens=D, max_general_increase=0.0, prob=CI)
    s = d.summary(CI)
    med, lo, hi = (float(s.table.loc["r_domain", k]) for k in ("median", "lo", "hi"))
    one = [float(s.table.loc["one_run_crossing", k]) for k in ("lo", "hi")]  # where one run crosses the threshold
    target = df[(df["tokens"] == D) & np.isclose(df["r_domain"], PAPER_R)]
    # a new run's measurement = law + noise; with few draws (the point fit) repeat them to sample the noise
    many = post if post.n_draws >= 1000 else post.subset(np.resize(np.arange(post.n_draws), 4000))
    pred = many.predict(target[["domain", "n_params", "tokens", "r_domain"]], ci=CI, kind="predictive")
    obs = float(target["loss_general"].iloc[0])
    plo, phi = float(pred["loss_general_lo"].iloc[0]), float(pred["loss_general_hi"].iloc[0])
    law_at = float(np.median(post.surface("general", "python", N, D, [PAPER_R])[:, 0]))
    return {
        "method": label, "fit on": split, "draws": post.n_draws,
        "r* median": med, "r* 90% lo": lo, "r* 90% hi": hi,
        "risk-aware r (P>=0.9)": float(s.risk_aware["r_domain"]),
        "covers obs. crossing": bool(lo <= obs_r <= hi), "covers paper 0.7148": bool(lo <= PAPER_R <= hi),
        "one run's crossing 90%": "{:.4f}-{:.4f}".format(*one),
        "one run's covers obs.": bool(one[0] <= obs_r <= one[1]),
        "L_g(0.7148) law median": law_at, "L_g(0.7148) 90% pred.": f"{plo:.4f}-{phi:.4f}",
        "covers measured": bool(plo <= obs <= phi),
        "infeasible/always": f"{s.counts['infeasible']}/{s.counts['always_satisfied']}", "seconds": secs,
    }


def main(n_boot: int = 200, extra_methods: Mapping[str, Callable[[pd.DataFrame], Posterior]] | None = None,
         fit_path: str | None = None) -> pd.DataFrame | None:
    try:
        df = load_mixinglaws_cpt()
    except DatasetUnavailable as exc:
        print(f"skipped: {exc}")
        return None
    base = float(df.loc[df["tokens"] == 0, "loss_general"].iloc[0])
    obs_r, r_lo, r_hi = observed_crossing(df, base)
    measured = float(df[(df["tokens"] == df["tokens"].max()) & np.isclose(df["r_domain"], PAPER_R)][
        "loss_general"].iloc[0])
    splits = {"all 5 ratios": df,
              "4 ratios (0.7148 held out)": df[~np.isclose(df["r_domain"].fillna(-1), PAPER_R)]}
    methods = {**EXTRA_METHODS, **(extra_methods or {})}
    rows = []
    for split, train in splits.items():
        t0 = time.perf_counter()
        point = fit_point(train, "dcpt", "general")
        t_point = time.perf_counter() - t0
        rows.append(row_for("point fit (paper procedure)", split, point.to_posterior(train), df, t_point, obs_r))
        for by in ("point", "run"):
            t0 = time.perf_counter()
            post = bootstrap(train, "dcpt", "general", n=n_boot, by=by, point=point, seed=0).to_posterior()
            secs = time.perf_counter() - t0 + t_point
            rows.append(row_for(f"bootstrap by {by} (n={n_boot})", split, post, df, secs, obs_r))
        for label, fn in methods.items():
            t0 = time.perf_counter()
            post = fn(train)
            rows.append(row_for(label, split, post, df, time.perf_counter() - t0, obs_r))
    if fit_path:
        from bayes_dcpt.fitting import load_fit  # the lead's module

        post = load_fit(fit_path).posterior
        rows.append(row_for(f"saved fit {Path(fit_path).name}", "all 5 ratios", post, df, float("nan"), obs_r))
    out = pd.DataFrame(rows)
    print(f"machine: {machine()}")
    print(f"base general loss L0 = {base:.4f}; measured general loss of the r = {PAPER_R:.4f} run after 10k steps "
          f"= {measured:.4f}")
    print(f"observed crossing (linear interpolation between r = {r_lo:.4f} and {r_hi:.4f}): r = {obs_r:.4f}; "
          f"Data Mixing Laws prediction: r = {PAPER_R:.4f}")
    print(md_table(out))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples per split and unit")
    ap.add_argument("--fit", default=None, help="a saved Bayesian fit (bayes_dcpt.fitting) to add as a row")
    a = ap.parse_args()
    main(a.n_boot, fit_path=a.fit)
