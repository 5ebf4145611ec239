"""Planner speed: score 500 candidate probes and choose a batch of 4, against the importance-reweighting
estimator on every candidate (the slower reference), in the same run; plus the agreement of their rankings.

Posterior: numpy SMC (4,000 draws) of a synthetic D-CPT world fitted on 8 probe runs. Candidates: 5 sizes
x 5 token budgets x 20 ratios = 500 probes with 8 checkpoints each (16 outputs with both losses). Target:
the critical ratio at N = 1B, D = 30B tokens.

Run: ``.venv/bin/python benchmarks/bench_planner_speed.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table

from bayes_dcpt import plan as planner
from bayes_dcpt.fitting.smc import smc_posterior
from bayes_dcpt.plan.candidates import checkpoint_frame, eval_checkpoints
from bayes_dcpt.plan.information import BlockNoise, is_information
from bayes_dcpt.plan.simulate import World


def main() -> None:
    world = World.default(domains=("code",))
    sizes = [1e8, 2e8, 3e8, 6e8, 1e9]
    designs = [
        (1e8, 1e9, 0.2),
        (1e8, 1e9, 0.6),
        (2e8, 2e9, 0.4),
        (3e8, 1e9, 0.8),
        (6e8, 1e9, 0.3),
        (1e9, 1e9, 0.5),
        (1e8, 3e9, 0.9),
        (3e8, 3e9, 0.1),
    ]
    parts = []
    for i, (n, d, r) in enumerate(designs):
        ck = np.unique(np.geomspace(0.1 * d, d, 8).round())
        parts.append(
            pd.DataFrame({"domain": "code", "n_params": n, "tokens": ck, "r_domain": r, "run_id": f"p{i}"})
        )
    df = world.simulate(pd.concat(parts, ignore_index=True), seed=0, base_rows=False)
    base = pd.DataFrame({"domain": "code", "n_params": sizes, "tokens": 0.0, "r_domain": np.nan})
    for t in ("general", "domain"):
        base[f"loss_{t}"] = world.base_loss(base, t)
    df = pd.concat([base, df], ignore_index=True)
    t0 = time.perf_counter()
    post = smc_posterior(df, "dcpt", n_draws=4000, seed=0, ctx={"D_min": 0.1})
    fit_s = time.perf_counter() - t0
    cands = planner.candidates_from_menus(
        ["code"],
        sizes,
        [1e9, 2e9, 3e9, 5e9, 1e10],
        np.round(np.linspace(0.05, 0.95, 20), 3),
        n_checkpoints=8,
        first_fraction=0.1,
    )
    target = planner.critical_ratio_target("code", 1e9, 3e10, max_general_increase=0.03, relative=False)
    rows = []
    planner.suggest(post, cands.iloc[:20], target, k=2, verify_top=0)  # warm-up (imports, caches)
    for label, kw in (
        ("MM scoring + batch of 4 (2,000 draws)", {"verify_top": 0}),
        ("MM scoring + batch of 4 (all 4,000 draws)", {"verify_top": 0, "max_draws": 4000}),
        ("... + IS check of the top 10 (default)", {"verify_top": 10}),
    ):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            plan = planner.suggest(post, cands, target, k=4, **kw)
            times.append(time.perf_counter() - t0)
        rows.append({"what": label, "seconds (median of 3)": float(np.median(times))})
    base_s = rows[0]["seconds (median of 3)"]

    # reference: the importance-reweighting estimate on every candidate
    plan = planner.suggest(post, cands, target, k=4, verify_top=0)
    sc = plan.scores
    sub = post.subset(np.sort(np.random.default_rng(0).choice(post.n_draws, 2000, replace=False)))
    z = target.evaluate(sub).z[:, 0]
    fr = checkpoint_frame(sc, eval_checkpoints(sc))
    logF = {t: sub.mean_log_loss(fr, t) for t in ("general", "domain")}
    sig = np.stack([np.full(sub.n_draws, np.sqrt(np.mean(sub.noise[t]["sigma"] ** 2))) for t in logF], 1)
    tau = np.stack([np.full(sub.n_draws, np.sqrt(np.mean(sub.noise[t]["tau"] ** 2))) for t in logF], 1)
    t0 = time.perf_counter()
    is_u = np.empty(len(sc))
    for c in range(len(sc)):
        cols = np.flatnonzero(fr["cand"].to_numpy() == c)
        F = np.concatenate([logF[t][:, cols] for t in logF], axis=1)
        k = len(cols)
        bn = BlockNoise((np.arange(k), np.arange(k, 2 * k)), sig, tau)
        is_u[c] = is_information(F, bn, z, n_sim=200, seed=c)["U_z_is"]
    is_s = time.perf_counter() - t0
    rows.append(
        {
            "what": "reference: IS estimate of U_z on all 500 (200 outcomes each)",
            "seconds (median of 3)": is_s,
        }
    )
    out = pd.DataFrame(rows)
    out["x MM scoring"] = out["seconds (median of 3)"] / base_s
    rho = spearmanr(sc["U_z"], is_u).statistic
    rho_cost = spearmanr(sc["U_z"] / sc["gpu_hours"], is_u / sc["gpu_hours"]).statistic
    top_mm = set(np.argsort(-sc["U_z"].to_numpy() / sc["gpu_hours"].to_numpy())[:10])
    top_is = set(np.argsort(-is_u / sc["gpu_hours"].to_numpy())[:10])
    print(f"machine: {machine()}; SMC fit of the posterior (4,000 draws): {fit_s:.1f} s")
    print(md_table(out))
    print(
        f"\nranking agreement MM vs IS over 500 candidates: Spearman rho = {rho:.3f} (U_z), {rho_cost:.3f} "
        f"(per GPU-hour); top-10 per GPU-hour overlap {len(top_mm & top_is)}/10; "
        f"median U_z MM {np.median(sc['U_z']):.3f} vs IS {np.median(is_u):.3f} nats"
    )


if __name__ == "__main__":
    main()
