"""Why r* at a larger size misses: point fits of the CPT law's general loss in eight forms, fitted on the two smaller
sizes, r* read off at every size against the crossing the runs measure.

The Bayesian fit's r* at 443k sits below the measured crossing on the long grid (its r* falls with N, the measured
crossing does not) and above it on the example grid. This separates the law's form from the sampler and the
calibration: the general loss ``log(L_g / L0_g)`` of ``laws/cpt.py`` (per-domain amplitude, rate, capability
exponents and replay balance; shared kappa and h; soft-L1 on the log loss, checkpoints after the LR warm-up),
fitted by least squares on every run of the two smaller sizes, in the forms

* ``law``: as in the package;
* ``phi = 0``: forgetting without its capability exponent (larger models forget as much as smaller ones);
* ``transfer``: the general loss also keeps learning from the domain tokens, ``h ((1 - s) + xi s)`` per domain
  in place of ``h (1 - s)``;
* ``transfer, phi = 0``: both;
* ``share power``: the forgetting's amplitude in ``s^eta_s`` per domain in place of ``s`` (``share_power=True``);
* ``share power, transfer``: with the transfer too;
* ``replay size``: the replay balance grows with the model's capability, ``rho c^chi`` per domain
  (``replay_size=True``);
* ``replay size, transfer``: with the transfer too.

r*: the largest ratio whose general loss stays within ``T`` of the base model's, at each size and at the last three
checkpoints measured at every size; the measured crossing as ``decide.measured.measured_crossing`` reads it.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_rstar_size_forms.py [--file-ordered]`` (seconds; raw rows in
``benchmarks/results/rstar_size_forms.csv``, ``rstar_size_forms_file_ordered.csv`` for the grids' first versions).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from bayes_dcpt.data import schema
from bayes_dcpt.datasets import load_example, load_long_cpt
from bayes_dcpt.decide.measured import measured_crossing
from bayes_dcpt.laws.cpt import saturation

sys.path.insert(0, str(Path(__file__).parent))
from _common import file_ordered_grid

T = 0.02
RESULTS = Path(__file__).parent / "results"
FORMS = ("law", "phi = 0", "transfer", "transfer, phi = 0", "share power", "share power, transfer", "replay size",
         "replay size, transfer")


def general(th: np.ndarray, x: dict, nd: int, form: str) -> np.ndarray:
    """``log(L_g / L0_g)`` of the CPT law's general loss in ``form`` (parameters unpacked from ``th``)."""
    di, s, D, logc = x["di"], x["s"], x["D"], x["logc"]
    amp, phi = np.exp(th[:nd])[di], (0.0 if "phi = 0" in form else th[nd:2 * nd][di])
    lam, psi = np.exp(th[2 * nd:3 * nd])[di], th[3 * nd:4 * nd][di]
    rho = np.exp(th[4 * nd:5 * nd])[di]
    kappa, h = 0.1 + np.exp(th[5 * nd]), np.exp(th[5 * nd + 1])
    xi = np.exp(th[5 * nd + 2:6 * nd + 2])[di] if "transfer" in form else 0.0
    share = s ** np.exp(th[6 * nd + 2:7 * nd + 2])[di] if "share power" in form else s
    if "replay size" in form:
        rho = rho * np.exp(th[7 * nd + 2:8 * nd + 2][di] * logc)
    u = s + rho * (1 - s)
    sat = saturation(np, lam * np.exp(psi * logc) * u * D, kappa)
    learn = h * ((1 - s) + xi * s) * np.log1p(D / x["d_ref"])
    return np.log1p(amp * np.exp(phi * logc) * share / u * sat - learn)


def run(name: str, df: pd.DataFrame) -> list[dict]:
    rows = df[(df["tokens"] > 0) & ~schema.in_warmup(df)]
    base = df[df["tokens"] == 0].groupby(["domain", "n_params"])["loss_general"].mean()
    doms, sizes = sorted(rows["domain"].unique()), sorted(rows["n_params"].unique())
    nd = len(doms)
    train = rows[rows["n_params"] < sizes[-1]]
    D = train["tokens"].to_numpy(float) / 1e9
    L0 = np.array([base[k] for k in zip(train["domain"], train["n_params"], strict=True)])
    x = {"di": train["domain"].map({d: i for i, d in enumerate(doms)}).to_numpy(), "s": train["r_domain"].to_numpy(),
         "D": D, "logc": np.log(2.0 / L0), "d_ref": float(np.exp(np.mean(np.log(D))))}
    y = np.log(train["loss_general"].to_numpy(float) / L0)
    common = sorted(set.intersection(*(set(rows.loc[rows["n_params"] == n, "tokens"]) for n in sizes)))[-3:]
    grid = np.linspace(0.0, 1.0, 1001)
    out = []
    for form in FORMS:
        th0 = np.r_[np.full(nd, np.log(0.2)), np.zeros(nd), np.full(nd, np.log(1 / 2e-4)), np.zeros(nd),
                    np.full(nd, np.log(7.0)), np.log(0.7), np.log(0.005), np.full(nd, np.log(0.3)), np.zeros(nd), np.zeros(nd)]
        sol = least_squares(lambda th, f=form: general(th, x, nd, f) - y, th0, loss="soft_l1", f_scale=0.01)
        for k, dom in enumerate(doms):
            for n in sizes:
                for tok in common:
                    xc = {"di": np.full(grid.size, k), "s": grid, "D": np.full(grid.size, tok / 1e9),
                          "logc": np.full(grid.size, np.log(2.0 / base[(dom, n)])), "d_ref": x["d_ref"]}
                    above = np.flatnonzero(np.expm1(general(sol.x, xc, nd, form)) > T)
                    m = measured_crossing(df, dom, n, tok, max_general_increase=T, relative=True)
                    out.append({"grid": name, "form": form, "train loss": sol.cost, "domain": dom, "N": int(n),
                                "fitted": n < sizes[-1], "tokens": int(tok),
                                "r* point fit": grid[above[0] - 1] if len(above) else 1.0,
                                "measured crossing": np.nan if m is None else m["crossing"],
                                "xi": float(np.exp(sol.x[5 * nd + 2 + k])) if "transfer" in form else np.nan,
                                "eta_s": float(np.exp(sol.x[6 * nd + 2 + k])) if "share power" in form else np.nan,
                                "chi": float(sol.x[7 * nd + 2 + k]) if "replay size" in form else np.nan})
    return out


def measured_rise(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """The general loss's measured change from the base model (%) at the last checkpoint all sizes measure.

    Per (domain, size) and ratio, mean over seeds: what the forms must carry from the fitted sizes to the largest.
    """
    rows = df[df["tokens"] > 0]
    base = df[df["tokens"] == 0].groupby(["domain", "n_params"])["loss_general"].mean()
    last = min(rows.groupby("n_params")["tokens"].max())
    at = rows[rows["tokens"] == last].groupby(["domain", "n_params", "r_domain"])["loss_general"].mean()
    rise = 100 * (at / base.reindex(at.index.droplevel("r_domain")).to_numpy() - 1)
    return rise.unstack("r_domain").round(2).assign(grid=name, tokens=int(last))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file-ordered", action="store_true",
                    help="the grids' first, file-ordered versions (from git history) in place of the packaged ones")
    a = ap.parse_args()
    if a.file_ordered:
        grids = {"example": file_ordered_grid("example_cpt"), "long": file_ordered_grid("long_cpt")}
    else:
        grids = {"example": schema.load(load_example()), "long": schema.load(load_long_cpt())}
    t = pd.DataFrame([row for name, df in grids.items() for row in run(name, df)])
    t["error"] = t["r* point fit"] - t["measured crossing"]
    RESULTS.mkdir(exist_ok=True)
    t.to_csv(RESULTS / f"rstar_size_forms{'_file_ordered' if a.file_ordered else ''}.csv", index=False)
    table = t.groupby(["grid", "form", "fitted"]).agg(train_loss=("train loss", "first"),
                                                       mean_error=("error", "mean"),
                                                       mean_abs_error=("error", lambda e: e.abs().mean()))
    print(table.round(4).to_string())
    at_last = t[t["tokens"] == t.groupby("grid")["tokens"].transform("max")]
    print(at_last.groupby(["grid", "form", "fitted"])["error"].agg(["mean", lambda e: e.abs().mean()]).round(3)
          .unstack().to_string())
    last = t[t["tokens"] == t.groupby("grid")["tokens"].transform("max")]
    print(last.pivot_table(index=["grid", "form"], columns=["domain", "N"], values="r* point fit").round(3)
          .to_string())
    print(last.groupby(["grid", "domain", "N"])["measured crossing"].first().round(3).to_string())
    for name, df in grids.items():
        print(measured_rise(name, df).to_string())


if __name__ == "__main__":
    main()
