"""The D-CPT paper's generalisation protocols on real data: Bayes vs point fit vs bootstrap.

Every split is fitted by the paper's point fit, the Epoch-style bootstrap (``--n-boot`` resamples of
points) and the Bayesian fit (nutpie, with and without the per-run effect), and scored on the held-out rows
(see ``_evaluate.py``: MAPE, R^2, Huber, coverage of the 90% interval, its width):

* ``example`` (the packaged example grid, real CPU probes, 3 sizes 13k-443k; ``--domains python`` by
  default, one fit per domain): hold out the largest model size; the last third of tokens (the two last
  checkpoints, 262k and 524k tokens); two ratios (0.25 and 0.75, fit on 0.5 and the end points).
* ``datablations`` (C4 + Python mix curves, N = 4.2B, 9 ratios; pre-training from scratch, not CPT): hold
  out the ratios {0.2, 0.4, 0.6, 0.8} (fit {0.1, 0.3, 0.5, 0.7, 0.9}); fit D <= 42B and predict 42-84B.
  Then the replicate-seed groups of the final-loss table: the empirical seed spread against the fit's
  noise posterior (sigma, tau), and a Bayesian Chinchilla fit of the single-epoch final losses beside the
  paper's fitted constants.
* ``slimpajama`` (provenance unverified; github as the domain, c4 as the general loss, the last checkpoint
  of each run): fit N <= 680M on 80% of the mixtures, predict N = 937M, 1.2B and 2.7B on the other 20%;
  and fit N <= 680M on every mixture, predict every larger run.

``datablations-noise`` runs only the last two checks (one fit of every mix curve instead of the splits).

Run: ``.venv/bin/python benchmarks/bench_generalisation.py [example datablations slimpajama datablations-noise]
[--n-boot 200] [--draws 1000 --chains 4]``; raw rows in ``benchmarks/results/generalisation_<dataset>.csv``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from _evaluate import compact, evaluate_split

from bayes_dcpt import data as _data
from bayes_dcpt import datasets

OUT = Path(__file__).parent / "results"
DATABLATIONS_PAPER = {"E": 1.869, "A": 520.8, "B": 1488.0, "alpha": 0.3527, "beta": 0.3527}


def example_splits(domain: str) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    df = datasets.load_example()
    df = df[df["domain"] == domain].reset_index(drop=True)
    big = df["n_params"] == df["n_params"].max()
    late = df["tokens"] >= 262144
    two = df["r_domain"].isin([0.25, 0.75])
    return {
        f"{domain}: hold out the largest size (443k)": (df[~big], df[big]),
        f"{domain}: last third of tokens (262k, 524k)": (df[~late], df[late]),
        f"{domain}: hold out ratios 0.25 and 0.75": (df[~two], df[two]),
    }


def datablations_splits() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    df = datasets.load_datablations_mix()
    held = df["r_domain"].round(2).isin([0.2, 0.4, 0.6, 0.8])
    late = df["tokens"] > 42e9
    return {
        "hold out ratios 0.2/0.4/0.6/0.8": (df[~held], df[held]),
        "fit D <= 42B, predict 42-84B": (df[~late], df[late]),
    }


def slimpajama_splits(seed: int = 0) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    df = datasets.load_slimpajama("github", "c4")
    last = df.loc[df.groupby("run_id")["tokens"].idxmax()].reset_index(drop=True)
    mixes = np.array(sorted(last["mixture"].unique()))
    held_mix = set(np.random.default_rng(seed).choice(mixes, size=len(mixes) // 5, replace=False))
    small = last["n_params"] <= 7e8
    is_held = last["mixture"].isin(held_mix)
    return {
        "fit N <= 680M (80% of mixtures), predict 937M-2.7B on held-out mixtures": (
            last[small & ~is_held],
            last[~small & is_held],
        ),
        "fit N <= 680M (all mixtures), predict 937M-2.7B (all mixtures)": (last[small], last[~small]),
    }


def datablations_noise(fits: dict) -> None:
    """Seed groups of the final-loss table against the posterior noise of the mix-curve fit."""
    path = datasets.shared_data_dir() / "datablations" / "datablations_final_losses.csv"
    raw = pd.read_csv(path)
    seeded = raw[raw["seed"].notna() & raw["val_loss_c4"].notna() & (raw["val_loss_c4"] > 0)]
    g = seeded.groupby(["N_params", "D_tokens", "U_unique_tokens"])["val_loss_c4"]
    groups = g.agg(n="count", mean="mean", sd_log=lambda v: float(np.std(np.log(v), ddof=1))).reset_index()
    groups = groups[groups["n"] >= 2]
    print("\nReplicate-seed groups (final C4 loss; sd of log loss across seeds = relative noise):")
    print(
        md_table(
            groups.assign(
                N_params=groups["N_params"].map("{:.3g}".format),
                D_tokens=groups["D_tokens"].map("{:.3g}".format),
                U_unique_tokens=groups["U_unique_tokens"].map("{:.3g}".format),
            )
        )
    )
    for label, f in fits.items():
        post = f.idata["posterior"]
        for name in ("sigma", "tau"):
            if name in post:
                v = np.asarray(post[name]).reshape(-1, post[name].shape[-1])
                q = np.quantile(v, [0.05, 0.5, 0.95], axis=0)
                for i, t in enumerate(post[name].coords["target"].values):
                    print(
                        f"  {label}: posterior {name}[{t}] median {q[1, i]:.4f} "
                        f"(90%: {q[0, i]:.4f}-{q[2, i]:.4f})"
                    )


def datablations_constants(kw: dict) -> None:
    """Bayesian Chinchilla fit of the single-epoch final losses, beside the paper's fitted constants."""
    from bayes_dcpt.fitting import fit
    from bayes_dcpt.fitting.pointfit import fit_point

    raw = pd.read_csv(datasets.shared_data_dir() / "datablations" / "datablations_final_losses.csv")
    one = raw[raw["in_paper_fit"].astype(bool) & (raw["epochs"] <= 1.0) & (raw["val_loss_c4"] > 0)]
    df = _data.load(
        pd.DataFrame(
            {
                "domain": "c4",
                "n_params": one["N_params"].astype(float),
                "tokens": one["D_tokens"].astype(float),
                "r_domain": 0.0,
                "loss_general": one["val_loss_c4"].astype(float),
                "loss_domain": np.nan,
                "run_id": one["name"].astype(str),
            }
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit(df, "chinchilla", "general", run_effect=False, **kw)
    point = fit_point(df, "chinchilla", "general")["general"].params
    s = f.posterior.summary(0.9)
    s = s[s["param"].isin(list(DATABLATIONS_PAPER))]
    # the paper's A and B are for N and D in raw counts; the package's laws take billions (A / 1e9^alpha)
    paper = {**DATABLATIONS_PAPER, "A": DATABLATIONS_PAPER["A"] / 1e9 ** DATABLATIONS_PAPER["alpha"],
             "B": DATABLATIONS_PAPER["B"] / 1e9 ** DATABLATIONS_PAPER["beta"]}
    rows = []
    for _, r in s.iterrows():
        rows.append(
            {
                "parameter": r["param"],
                "paper (data-constrained fit, all epochs; N, D in billions)": paper[r["param"]],
                "point fit (single epoch)": point[r["param"]],
                "posterior mean": r["mean"],
                "90% lo": r["lo"],
                "90% hi": r["hi"],
                "paper inside": bool(r["lo"] <= paper[r["param"]] <= r["hi"]),
            }
        )
    print(
        f"\nChinchilla law on the {len(df)} single-epoch final losses used in the paper's fit "
        f"(N {df['n_params'].min():.3g}-{df['n_params'].max():.3g}); {f.diagnostics(warn=False)}"
    )
    print(md_table(pd.DataFrame(rows)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=["example", "datablations", "slimpajama"])
    ap.add_argument("--domains", default="python")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    a = ap.parse_args()
    mcmc = {"draws": a.draws, "tune": a.tune, "chains": a.chains}
    bayes = {
        f"Bayes (nutpie {a.chains}x{a.draws})": dict(mcmc),
        "Bayes, no run effect": {**mcmc, "run_effect": False},
    }
    print(
        f"machine: {machine()}; MCMC: {a.chains} chains x {a.draws} draws (+{a.tune} tune), nutpie; "
        f"bootstrap {a.n_boot} resamples of points",
        flush=True,
    )
    for name in a.datasets:
        if name == "datablations-noise":
            # only the noise check and the constants: one Bayesian fit of every mix curve (no splits)
            from bayes_dcpt.fitting import fit

            try:
                mix = datasets.load_datablations_mix()
            except datasets.DatasetUnavailable as exc:
                print(f"{name}: skipped ({exc})")
                continue
            f = fit(mix, "dcpt", "both", seed=1, warn=False, **mcmc)
            print(f"\n### datablations: noise and constants (all mix curves; {f.diagnostics(warn=False)})")
            datablations_noise({"Bayes, all mix curves": f})
            datablations_constants({**mcmc, "seed": 1})
            continue
        try:
            if name == "example":
                sp = {k: v for d in a.domains.split(",") for k, v in example_splits(d).items()}
            elif name == "datablations":
                sp = datablations_splits()
            else:
                sp = slimpajama_splits()
        except datasets.DatasetUnavailable as exc:
            print(f"{name}: skipped ({exc})")
            continue
        rows, last_objs = [], {}
        for split, (train, test) in sp.items():
            r, objs = evaluate_split(split, train, test, n_boot=a.n_boot, bayes=bayes)
            rows += r
            last_objs = objs
        table = pd.DataFrame(rows)
        OUT.mkdir(exist_ok=True)
        table.to_csv(OUT / f"generalisation_{name}.csv", index=False)
        pt = table[table["method"] == "point fit (paper)"].groupby("split")["seconds"].first()
        table["x point-fit time"] = table["seconds"] / table["split"].map(pt)
        print(f"\n### {name}")
        print(
            md_table(
                compact(table, ("x point-fit time", "sampling s", "divergences", "R-hat max", "ESS bulk min"))
            )
        )
        if name == "datablations":
            datablations_noise({k: v[0] for k, v in last_objs.items() if k.startswith("Bayes")})
            datablations_constants({**mcmc, "seed": 1})


if __name__ == "__main__":
    main()
