"""Point-fit baseline on the Pythia-70M CPT sweep (../shared/data/mixinglaws).

Protocols: (a) fit L3 on 4 ratios, predict the held-out ratio 0.715 (10 checkpoints); (b) fit CPT steps
<= 5k on all ratios, predict steps 6k-10k. Reports MAPE, R^2 and Huber of the held-out predictions and
the fit time, for the general (weighted Pile) and the domain (Python) loss.

Run: .venv/bin/python benchmarks/bench_pointfit_mixinglaws.py
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _common import machine, md_table  # noqa: E402

from bayes_dcpt import data
from bayes_dcpt.datasets import DatasetUnavailable, load_mixinglaws_cpt
from bayes_dcpt.fitting.pointfit import fit_point, metrics


def main() -> None:
    try:
        df = load_mixinglaws_cpt()
    except DatasetUnavailable as exc:
        print(f"skipped: {exc}")
        return
    rows = []
    splits = {
        "hold out r=0.715": (~np.isclose(df["r_domain"], 0.71484375) | (df["tokens"] == 0),
                             np.isclose(df["r_domain"], 0.71484375)),
        "fit steps<=5k, predict 6k-10k": ((df["tokens"] <= 5000 * 2**20), df["tokens"] > 5000 * 2**20),
    }
    for name, (tr, te) in splits.items():
        t0 = time.perf_counter()
        res = fit_point(df[tr], "dcpt", "both")
        secs = time.perf_counter() - t0
        pred = res.predict(data.fit_rows(df[te]))
        for t in ("general", "domain"):
            m = metrics(pred[f"loss_{t}"], pred[f"loss_{t}_pred"])
            rows.append({"split": name, "target": t, "n_test": m["n"], "MAPE %": m["mape"], "R2": m["r2"],
                         "Huber (sum)": m["huber_sum"], "fit s (both targets)": secs})
    out = pd.DataFrame(rows)
    print(f"machine: {machine()}")
    print(md_table(out))


if __name__ == "__main__":
    main()
