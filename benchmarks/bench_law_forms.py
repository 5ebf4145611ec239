"""Does another D-CPT law form (L1..L7) describe and extrapolate real CPT data better than L3?

On the Pythia-70M CPT sweep (``../shared/data/mixinglaws``) and on the python domain of the packaged
example grid (3 model sizes), for every law of the D-CPT family that the Bayesian fit supports:

* in-sample: PSIS-LOO ELPD of the Bayesian fit on all the data (``bayes_dcpt.fitting.compare``, stacking
  weights; higher ELPD is better), and the sampler diagnostics;
* out of sample: the held-out error of the Bayesian posterior mean and of the paper's point fit, and the
  coverage of the 90% predictive band, on the splits used elsewhere: mixinglaws: the r = 0.7148 run held
  out, and the last third of tokens (fit <= 7k steps); example: the largest model size held out.

Run: ``.venv/bin/python benchmarks/bench_law_forms.py [mixinglaws example] [--laws L1,...,L7]
[--draws 500 --chains 4]``.
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
from _common import machine, md_table

from bayes_dcpt import data as _data
from bayes_dcpt import datasets
from bayes_dcpt.fitting import compare, fit
from bayes_dcpt.fitting.pointfit import fit_point, metrics


def splits(name: str, df: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    if name == "mixinglaws":
        held = np.isclose(df["r_domain"].fillna(-1), 0.71484375)
        early = df["tokens"] <= 7000 * 2**20
        return {"hold out r=0.7148": (df[~held], df[held]), "last third of tokens": (df[early], df[~early])}
    big = df["n_params"] == df["n_params"].max()
    return {"hold out the largest size": (df[~big], df[big])}


def load(name: str) -> pd.DataFrame:
    if name == "mixinglaws":
        return datasets.load_mixinglaws_cpt()
    df = datasets.load_example()
    return df[df["domain"] == "python"].reset_index(drop=True)


def fitted_rows(test: pd.DataFrame, t: str) -> pd.DataFrame:
    rows = _data.fit_rows(test)
    own = rows["r_domain"] if t == "domain" else 1 - rows["r_domain"]
    return rows[(own > 0) & rows[f"loss_{t}"].notna()].reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=["mixinglaws", "example"])
    ap.add_argument("--laws", default="L1,L2,L3,L4,L5,L6,L7")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=4)
    a = ap.parse_args()
    kw = {"draws": a.draws, "tune": a.tune, "chains": a.chains, "seed": 1, "warn": False}
    print(f"machine: {machine()}; nutpie {a.chains} chains x {a.draws} draws (+{a.tune} tune)")
    for name in a.datasets:
        try:
            df = load(name)
        except datasets.DatasetUnavailable as exc:
            print(f"{name}: skipped ({exc})")
            continue
        laws = a.laws.split(",")
        full, rows = {}, []
        for law in laws:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    full[law] = fit(df, law, "both", **kw)
            except Exception as exc:
                print(f"  {name} {law}: fit failed: {exc}", flush=True)
                continue
            d = full[law].diagnostics(warn=False)
            print(f"  {name} {law}: {time.perf_counter() - t0:.1f} s; {d}", flush=True)
            rec = {"law": law, "diagnostics": "ok" if d.ok else "; ".join(d.problems)}
            for split, (train, test) in splits(name, df).items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f = fit(train, law, "both", **kw)
                    try:
                        point = fit_point(train, law, "both")
                    except Exception:
                        point = None
                for t in ("general", "domain"):
                    te = fitted_rows(test, t)
                    y = te[f"loss_{t}"].to_numpy()
                    p = f.predict(te, 0.9, seed=1)
                    rec[f"{split} {t}: MAPE % Bayes"] = metrics(y, p[f"loss_{t}_mean"])["mape"]
                    rec[f"{split} {t}: coverage 90%"] = float(
                        np.mean((p[f"loss_{t}_lo"] <= y) & (y <= p[f"loss_{t}_hi"]))
                    )
                    if point is not None:
                        rec[f"{split} {t}: MAPE % point"] = metrics(y, point.predict(te)[f"loss_{t}_pred"])[
                            "mape"
                        ]
            rows.append(rec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cmp = compare(full)
        cmp = cmp.reset_index().rename(columns={"index": "law"})
        keep = [
            c for c in ("law", "rank", "elpd", "p", "elpd_diff", "weight", "se", "dse", "warning") if c in cmp
        ]
        print(f"\n### {name}: PSIS-LOO on all the data (both losses)")
        print(md_table(cmp[keep]))
        out = pd.DataFrame(rows)
        print(f"\n### {name}: held-out error by law (posterior mean vs the paper's point fit)")
        print(md_table(out))


if __name__ == "__main__":
    main()
