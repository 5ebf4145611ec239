"""The CPT law's replay balance rho per (target, domain) against one per target, side by side in one run.

rho sets how the general loss's rise bends in r (``u = s + rho (1 - s)``): a large rho keeps the rise small until r
nears 1, a small one lets it grow early. r* is read off exactly that bend. A point fit of the general loss on the
example grid gives rho about 10 (c_headers), 23 (codec_tables) and 5 (python) when each domain has its own, against
19 shared (``bench_rewarm_term.py`` and a per-domain variant, BENCHMARKS.md); shared, python's r* at the largest size
sat 0.29 above the measured crossing.

Fits every domain of a grid in one fit (as the demo and the CLI do), ``law="cpt"`` with ``replay_scope="target"``
and ``"domain"``, 4 chains x 500 draws after 500 tuning steps, seed 1 (the committed CPT model's settings), the
held-out calibration of the bands on. Cases:

* ``example, in-sample`` and ``long, in-sample``: the whole grid (the example: the committed model's data): sampler
  and adequacy verdicts, rho per domain, the two fits compared by PSIS-LOO (``bayes_dcpt.fitting.compare``), and the
  trade-off at N = 443,232 at the largest measured D (T = 2%, 3%) against the measured crossing (the predictive
  check, ``bayes_dcpt.decide.measured``) and at 4x D (the demo's question);
* ``example, size``: fit the two smaller sizes and every base row, predict 443k (MAPE, 90% coverage), r* at 443k
  against the crossing measured there;
* ``long, size`` and ``long, tokens`` (the packaged long-CPT grid): the same size split; fit D <= 2^19, predict
  2^19 < D <= 2^21.

``--compare rewarm`` compares, on the same cases, the CPT law without and with its re-warming rise of the general
loss (``rewarm``; rho per domain in both); ``--compare share_power`` its forgetting linear in the domain share
against ``s^eta_s`` per domain.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_replay_scope.py [--cases ...] [--compare rewarm]``; rows in
``benchmarks/results/{replay_scope,rewarm,share_power}_{fits,scores,decisions}.csv`` (written after every case).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import bayes_dcpt as bd
from bayes_dcpt import datasets
from bayes_dcpt.data import schema as _data
from bayes_dcpt.fitting import compare
from benchmarks._common import REPO, machine, md_table

CI = 0.9
MCMC = {"draws": 500, "tune": 500, "chains": 4, "seed": 1, "warn": False}
OUT = REPO / "benchmarks" / "results"
#: The model options compared: label -> keyword arguments of ``bd.fit``.
VARIANTS = {"replay_scope": {"target": {"replay_scope": "target", "rewarm": False},
                             "domain": {"replay_scope": "domain", "rewarm": False}},
            "rewarm": {"without the rise": {"rewarm": False}, "with the rise": {"rewarm": True}},
            "share_power": {"linear in s": {"share_power": False}, "s^eta_s": {"share_power": True}}}


def cases() -> dict[str, tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame, bool]]:
    """name -> (train, test or None, full grid, ask the demo's 4x question)."""
    out = {}
    for name, df in (("example", datasets.load_example()), ("long", datasets.load_long_cpt())):
        base = df["tokens"] == 0
        big = np.isclose(df["n_params"], df["n_params"].max())
        out[f"{name}, in-sample"] = (df, None, df, name == "example")
        out[f"{name}, size"] = (df[~big | base], df[big & ~base], df, False)
        if name == "long":
            late = df["tokens"] > 2**19
            out["long, tokens"] = (df[~late], df[late], df, False)
    return out


def scores(name: str, scope: str, f, test: pd.DataFrame) -> list[dict]:
    test = _data.fit_rows(_data.load(test)).reset_index(drop=True)
    cols = ["domain", "n_params", "tokens", "r_domain", "run_id"] + (["seed"] if "seed" in test else [])
    pred = f.predict(test[cols], CI, kind="predictive", seed=1)
    rows = []
    for t in ("general", "domain"):
        y = test[f"loss_{t}"].to_numpy(float)
        ok = np.isfinite(y)
        if t == "domain":
            ok &= test["r_domain"].to_numpy(float) > 0
        for dom in sorted(test["domain"].unique()):
            m = ok & (test["domain"] == dom).to_numpy()
            mid, lo, hi = (pred[f"loss_{t}_{k}"].to_numpy(float)[m] for k in ("mean", "lo", "hi"))
            rows.append({"case": name, "variant": scope, "target": t, "domain": dom, "n": int(m.sum()),
                         "MAPE %": float(100 * np.mean(np.abs(mid / y[m] - 1))),
                         "coverage 90%": float(np.mean((y[m] >= lo) & (y[m] <= hi)))})
    return rows


def decisions(name: str, scope: str, f, full: pd.DataFrame, demo: bool, every_d: bool = False) -> list[dict]:
    N = float(full["n_params"].max())
    d_max = float(full.loc[np.isclose(full["n_params"], N), "tokens"].max())
    asks = [("largest measured D", d_max)] + ([("4x (demo)", 4 * d_max)] if demo else [])
    if every_d:  # the last checkpoint can jump (data order): the crossing at the earlier ones too
        asks += [(f"D = {d:.0f}", d) for d in (d_max / 4, d_max / 2)]
    rows = []
    for where, D in asks:
        for T in (0.02, 0.03):
            dec = f.optimize("tradeoff", n_params=N, tokens=D, max_general_increase=T, data=full)
            for dom, d in dec.items():
                s = d.summary(CI)
                m, ra = s.measured or {}, s.risk_aware or {}
                r = s.table.loc["r_domain"] if "r_domain" in s.table.index else None
                rows.append({"case": name, "variant": scope, "where": where, "T": T, "domain": dom,
                             "r* median": r["median"] if r is not None else np.nan,
                             "r* 90%": f"{r['lo']:.3f}-{r['hi']:.3f}" if r is not None else "",
                             "risk-aware (one run)": (ra.get("one_run") or {}).get("r_domain", np.nan),
                             "measured crossing": m.get("crossing", np.nan),
                             "contains": m.get("contains"), "pit": m.get("pit", np.nan), "agrees": m.get("agrees")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="", help="only cases whose name contains one of these (comma list)")
    ap.add_argument("--compare", default="replay_scope", choices=sorted(VARIANTS), help="the option compared")
    ap.add_argument("--tokens", action="store_true", help="also check r* at every measured token count")
    a = ap.parse_args()
    want = [w for w in a.cases.split(",") if w]
    print(f"machine: {machine()}")
    score_rows, dec_rows, fit_rows = [], [], []
    for name, (train, test, full, demo) in cases().items():
        if want and not any(w in name for w in want):
            continue
        fits = {}
        for scope, kw in VARIANTS[a.compare].items():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = bd.fit(train, law="cpt", **kw, **MCMC)
            secs = time.perf_counter() - t0
            d = f.diagnostics(warn=False)
            fits[scope] = f
            fit_rows.append({"case": name, "variant": scope, "seconds": secs, "divergences": d.divergences,
                             "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min, "sampler ok": d.sampler_ok,
                             "adequate": not d.misfit, "misfit groups": len(d.misfit)})
            print(f"{name} {a.compare} {scope}: {secs:.0f} s; {d}", flush=True)
            if test is not None:
                score_rows += scores(name, scope, f, test)
            dec_rows += decisions(name, scope, f, full, demo, a.tokens)
            if f.config.replay_scope == "domain":
                rho = f.idata["posterior"]["rho"].sel(target="general")
                fit_rows[-1]["rho general per domain (median)"] = ", ".join(
                    f"{dom} {float(rho.sel(domain=dom).median()):.3g}" for dom in rho.coords["domain"].values)
            if f.config.share_power:
                eta = f.idata["posterior"]["eta_s"]
                fit_rows[-1]["eta_s per domain (median)"] = ", ".join(
                    f"{dom} {float(eta.sel(domain=dom).median()):.3g}" for dom in eta.coords["domain"].values)
            if f.config.rewarm:
                post = f.idata["posterior"]
                fit_rows[-1]["w, phi_w (median)"] = (f"{float(post['w'].median()):.3g}, "
                                                     f"{float(post['phi_w'].median()):.3g}")
            if len(fits) == 2 and test is None:
                    cmp = compare(fits)
                    worse = cmp.index[-1]  # arviz rounds elpd and its differences to what their se supports
                    fit_rows[-1]["elpd_loo: worse model, difference (se), stacking weights"] = (
                        f"{worse}, {float(cmp.loc[worse, 'elpd_diff']):g} ({float(cmp.loc[worse, 'dse']):g}), "
                        + ", ".join(f"{k} {float(v):.2f}" for k, v in cmp["weight"].items()))
            pd.DataFrame(fit_rows).to_csv(OUT / f"{a.compare}_fits.csv", index=False)
            pd.DataFrame(score_rows).to_csv(OUT / f"{a.compare}_scores.csv", index=False)
            pd.DataFrame(dec_rows).to_csv(OUT / f"{a.compare}_decisions.csv", index=False)
    print(md_table(pd.DataFrame(fit_rows), ".4g"))
    if score_rows:
        print(md_table(pd.DataFrame(score_rows), ".3f"))
    print(md_table(pd.DataFrame(dec_rows), ".3f"))


if __name__ == "__main__":
    main()
