"""Could importance sampling replace law="auto"'s held-out refits? Pareto k of the leave-future-out weights.

On the simulated scale set (``bench_scale.scale_set``, 6 and 25 checkpoints per run: 972 and 4,050 rows) fit L3 on
all rows (nutpie 2 x 500 + 500, seed 1) and compute, for each held-out split of ``law="auto"`` (each run's last
third of log D; the largest size), the PSIS k-hat of the importance ratios ``1 / p(y_held | y_rest, theta)`` that
turn the full posterior into the posterior without the held-out rows: for the whole block (what the split asks:
none of the held-out rows seen) and per held-out run (one run's future left out, every other run's kept).
k-hat > 0.7: the importance-sampled estimate cannot be trusted, refit (Vehtari et al. 2024).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_lfo_khat.py`` (prints one line per size and split).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import scale_set

from bayes_dcpt.fitting import dcpt
from bayes_dcpt.fitting.holdout import _run_log_lik, _scored_rows, make_splits
from bayes_dcpt.numerics.psis import psis


def held_out_log_lik(post, split, target: str) -> np.ndarray:
    """``log p(y_held,run | y_rest,run, theta)`` per draw and held-out run, shape ``(S, runs)``."""
    test = _scored_rows(split.test, target, False)
    runs, codes = np.unique(test["run_id"].astype(str), return_inverse=True)
    cond = _scored_rows(split.train, target, False)
    cond = cond[cond["run_id"].astype(str).isin(runs)].reset_index(drop=True)
    cc = np.searchsorted(runs, cond["run_id"].astype(str).to_numpy())
    both = pd.concat([test, cond], ignore_index=True)
    logm = post.mean_log_loss(both, target)
    return (_run_log_lik(post, target, both, logm, np.r_[codes, cc], len(runs))
            - _run_log_lik(post, target, cond, logm[:, len(test):], cc, len(runs)))


def main() -> None:
    warnings.simplefilter("ignore")
    for n in (6, 25):
        df = scale_set(n)
        post = dcpt.fit(df, "dcpt", "both", seed=1, draws=500, tune=500, chains=2, warn=False).posterior
        for split in make_splits(df, ("tokens", "size")):
            lls = [held_out_log_lik(post, split, t) for t in post.targets]
            _, k_block = psis(-sum(ll.sum(axis=1) for ll in lls)[None, :])
            k_run = np.concatenate([psis(-ll.T)[1] for ll in lls])
            print(f"rows {int((df['tokens'] > 0).sum())} split {split.kind}: held-out rows {len(split.test)}; "
                  f"k-hat of the whole block {float(k_block[0]):.2f}; per held-out run: median "
                  f"{np.nanmedian(k_run):.2f}, share > 0.7 {np.mean(k_run > 0.7):.2f}", flush=True)


if __name__ == "__main__":
    main()
