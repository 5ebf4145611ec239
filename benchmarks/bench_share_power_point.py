"""Point fits of the CPT law's general loss with the forgetting linear in the domain share and as s^eta_s per domain.

The form of ``bench_rewarm_term.py`` (per-domain amplitude, rate, capability exponents and replay balance rho;
shared kappa and h; soft-L1 on the log loss; checkpoints after the LR warm-up), fitted on the example grid without
the runs at r = 0.25 and 0.75 (held-out-ratio MAPE of the general loss per domain) and on every run (r* at
N = 443,232, T = 3%, at 131k and 262k tokens against the measured crossing).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_share_power_point.py`` (seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from bayes_dcpt.data import schema
from bayes_dcpt.datasets import load_example
from bayes_dcpt.decide.measured import measured_crossing
from bayes_dcpt.laws.cpt import powered_share, saturation

N_CHECK, T = 443232.0, 0.03


def form(th: np.ndarray, x: dict, nd: int, power: bool) -> np.ndarray:
    """``log(L_g / L0_g)``; ``power``: the share enters as ``s^eta_s`` (``eta_s`` per domain)."""
    di, s, D, logc = x["di"], x["s"], x["D"], x["logc"]
    amp, phi = np.exp(th[:nd])[di], th[nd:2 * nd][di]
    lam, psi = np.exp(th[2 * nd:3 * nd])[di], th[3 * nd:4 * nd][di]
    rho = np.exp(th[4 * nd:5 * nd])[di]
    kappa, h = 0.1 + np.exp(th[5 * nd]), np.exp(th[5 * nd + 1])
    share = powered_share(np, s, np.exp(th[5 * nd + 2:6 * nd + 2])[di]) if power else s
    u = s + rho * (1 - s)
    sat = saturation(np, lam * np.exp(psi * logc) * u * D, kappa)
    return np.log1p(amp * np.exp(phi * logc) * share / u * sat - h * (1 - s) * np.log1p(D / x["d_ref"]))


def main() -> None:
    df = schema.load(load_example())
    rows = df[(df["tokens"] > 0) & ~schema.in_warmup(df)].copy()
    base = df[df["tokens"] == 0].groupby(["domain", "n_params"])["loss_general"].mean()
    doms = sorted(rows["domain"].unique())
    nd = len(doms)

    def prep(fit: pd.DataFrame, d_ref: float | None = None) -> tuple[dict, np.ndarray]:
        L0 = np.array([base[(d, n)] for d, n in zip(fit["domain"], fit["n_params"], strict=True)])
        D = fit["tokens"].to_numpy(float) / 1e9
        x = {"di": fit["domain"].map({d: i for i, d in enumerate(doms)}).to_numpy(),
             "s": fit["r_domain"].to_numpy(float), "D": D, "logc": np.log(2.0 / L0),
             "d_ref": d_ref or float(np.exp(np.mean(np.log(D))))}
        return x, np.log(fit["loss_general"].to_numpy(float) / L0)

    out = []
    for power in (False, True):
        th0 = np.r_[np.full(nd, np.log(0.2)), np.zeros(nd), np.full(nd, np.log(1 / 2e-4)), np.zeros(nd),
                    np.full(nd, np.log(7.0)), np.log(0.7), np.log(0.005), np.zeros(nd if power else 0)]
        label = "s^eta_s" if power else "linear in s"
        held = rows["r_domain"].isin([0.25, 0.75]).to_numpy()
        x, y = prep(rows[~held])
        sol = least_squares(lambda th, x=x, y=y, pw=power: form(th, x, nd, pw) - y, th0, loss="soft_l1",
                            f_scale=0.01)
        xt, yt = prep(rows[held], x["d_ref"])
        ape = pd.Series(100 * np.abs(np.expm1(form(sol.x, xt, nd, power) - yt)))
        mape = ape.groupby(rows.loc[held, "domain"].to_numpy()).mean()
        x, y = prep(rows)
        sol = least_squares(lambda th, x=x, y=y, pw=power: form(th, x, nd, pw) - y, th0, loss="soft_l1",
                            f_scale=0.01)
        rr = np.linspace(0, 1, 1001)
        for k, dom in enumerate(doms):
            for D in (131072.0, 262144.0):
                xc = {"di": np.full(rr.size, k), "s": rr, "D": np.full(rr.size, D / 1e9),
                      "logc": np.full(rr.size, np.log(2 / base[(dom, N_CHECK)])), "d_ref": x["d_ref"]}
                ok = np.flatnonzero(np.expm1(form(sol.x, xc, nd, power)) <= T)
                m = measured_crossing(df, dom, N_CHECK, D, max_general_increase=T, relative=True)
                out.append({"form": label, "domain": dom, "tokens": int(D), "r* point fit": rr[ok[-1]],
                            "measured crossing": m["crossing"], "held-out-ratio MAPE %": mape[dom],
                            "eta_s": float(np.exp(sol.x[5 * nd + 2 + k])) if power else 1.0})
    print(pd.DataFrame(out).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
