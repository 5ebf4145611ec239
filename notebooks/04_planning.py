# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Planning the next probes: suggest, simulate the loop, watch r* shrink per GPU-hour
#
# The planner (`Fit.suggest`, `bayes_dcpt.plan.planner`) ranks candidate probe runs by the information they give
# about the *decision* (here the critical ratio r* at the target scale) per GPU-hour, and picks a batch.
# `bayes_dcpt.plan.loop.PlannerLoop` then alternates suggest -> run -> update. We run it against a known synthetic
# D-CPT world (so the truth is known) and compare with a uniform grid that spreads the same budget over the
# design: how many GPU-hours until the 90% interval of r* is narrow?
#
# The loop's refit is the numpy SMC stand-in (`bayes_dcpt.fitting.smc.SMCRefit`, seconds per refit); set
# `REFIT = "nuts"` for NUTS refits by `bayes_dcpt.fitting.bayesian_refit` (slower). `QUICK`
# (`BAYES_DCPT_NB_QUICK=1`) runs one seed and few rounds; figures go to `figures/` (regenerated, not
# committed) or `$BAYES_DCPT_NB_FIGURES`.

# %% tags=["parameters"]
import os
from pathlib import Path

QUICK = os.environ.get("BAYES_DCPT_NB_QUICK", "0") == "1"
DRAWS = int(os.environ.get("BAYES_DCPT_NB_DRAWS", "150" if QUICK else "1000"))
CHAINS = 2 if QUICK else 4
SEEDS = [0] if QUICK else [0, 1, 2]
MAX_ROUNDS = 4 if QUICK else 12
SMC_DRAWS = 600 if QUICK else 1500
REFIT = os.environ.get("BAYES_DCPT_NB_REFIT", "smc")
FIG_DIR = Path(os.environ.get("BAYES_DCPT_NB_FIGURES", "figures"))
FIG_DIR.mkdir(parents=True, exist_ok=True)

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayes_dcpt import plan as planner
from bayes_dcpt.fitting import bayesian_refit, fit
from bayes_dcpt.plan.loop import PlannerLoop, SimulatorExecutor, gpu_hours_to_width
from bayes_dcpt.fitting.smc import SMCRefit
from bayes_dcpt.plan.simulate import World

# %% [markdown]
# ## The world, the candidates and the question
# A known D-CPT world for one domain. Candidates: 3 model sizes x 3 token budgets x 9 ratios (6 checkpoints
# each), costed at 6ND FLOPs on a 312 TFLOP/s GPU at 40% utilisation plus 0.25 GPU-h per run. We start from
# four runs of the smallest model. The question: the largest python share at N = 1B, D = 30B tokens whose
# general loss stays within +0.03 nats of the base model (usage 1 with an absolute threshold).

# %%
world = World.default(domains=("code",))
cands = planner.candidates_from_menus(["code"], [1e8, 3e8, 1e9], [1e9, 3e9, 1e10],
                                      np.round(np.linspace(0.1, 0.9, 9), 2), n_checkpoints=6, first_fraction=0.1)
base = pd.DataFrame({"domain": "code", "n_params": [1e8, 3e8, 1e9], "tokens": 0.0, "r_domain": np.nan,
                     "run_id": ["base0", "base1", "base2"]})
for t in ("general", "domain"):
    base[f"loss_{t}"] = world.base_loss(base, t)
TARGET_N, TARGET_D, EPS = 1e9, 3e10, 0.03
grid = np.linspace(0, 1, 20001)
f = pd.DataFrame({"domain": "code", "n_params": TARGET_N, "tokens": TARGET_D, "r_domain": grid})
truth = float(grid[world.mean(f, "general") <= base["loss_general"].iloc[2] + EPS].max())
print(f"{len(cands)} candidates; true r* = {truth:.4f}")


def start_data(seed: int) -> pd.DataFrame:
    ex = SimulatorExecutor(world, seed=1000 + seed, n_checkpoints=6, first_fraction=0.1)
    first = cands[(cands["n_params"] == 1e8) & (cands["tokens"] == 1e9) & cands["r_domain"].isin([0.1, 0.3, 0.5, 0.9])]
    return pd.concat([base, ex.run(first, round=0)], ignore_index=True)


# %% [markdown]
# ## One suggestion from a NUTS fit
# Fit the start data, then ask which three probes to run next within 100 GPU-hours.

# %%
data0 = start_data(0)
res = fit(data0, law="dcpt", target="both", draws=DRAWS, tune=DRAWS, chains=CHAINS, seed=0, warn=False)
print(res.diagnostics(warn=False))
plan = res.suggest(cands, "tradeoff", k=3, budget=100.0, n_params=TARGET_N, tokens=TARGET_D,
                   max_general_increase=EPS, relative=False)
print(plan.summary())
fig = plan.plot()
fig.savefig(FIG_DIR / "04_suggestion.png", dpi=110)

# %% [markdown]
# ## The closed loop: planner against a uniform grid
# Same start, same refit, same batch size (3 per round) and budget; after each round the 90% interval of r*
# is measured on the updated posterior.

# %%
target = planner.critical_ratio_target("code", TARGET_N, TARGET_D, max_general_increase=EPS, relative=False)
histories = []
for seed in SEEDS:
    for strategy in ("planner", "uniform"):
        data = start_data(seed)
        refit = (SMCRefit("dcpt", n_draws=SMC_DRAWS, n_moves=10, final_moves=30, seed=seed, ctx={"D_min": 0.1},
                          warm=True) if REFIT == "smc" else bayesian_refit(draws=DRAWS, tune=DRAWS, chains=CHAINS))
        loop = PlannerLoop(candidates=cands, target=target, refit=refit, posterior=refit(data), data=data,
                           executor=SimulatorExecutor(world, seed=1000 + seed, n_checkpoints=6, first_fraction=0.1),
                           strategy=strategy, k=3, budget_gpu_hours=1500.0, stop_width=0.075, max_rounds=MAX_ROUNDS,
                           seed=seed, suggest_kwargs={"verify_top": 3, "max_draws": SMC_DRAWS})
        s0 = loop.target_summary()
        h = loop.run().history
        h0 = pd.DataFrame([{"round": 0, "cum_gpu_hours": 0.0, "width_after": s0["width"], "lo_after": s0["lo"],
                            "hi_after": s0["hi"], "median_after": s0["median"]}])
        histories.append(pd.concat([h0, h], ignore_index=True).assign(strategy=strategy, seed=seed))
        print(f"seed {seed} {strategy}: {len(h)} rounds, {h['cum_gpu_hours'].max():.0f} GPU-h, "
              f"width {s0['width']:.3f} -> {h['width_after'].iloc[-1]:.3f}")
hist = pd.concat(histories, ignore_index=True)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for (strategy, seed), h in hist.groupby(["strategy", "seed"]):
    c = "C0" if strategy == "planner" else "C1"
    axes[0].step(h["cum_gpu_hours"], h["width_after"], where="post", color=c, alpha=0.8,
                 label=strategy if seed == SEEDS[0] else None)
    axes[1].fill_between(h["cum_gpu_hours"], h["lo_after"], h["hi_after"], step="post", color=c, alpha=0.2)
    axes[1].step(h["cum_gpu_hours"], h["median_after"], where="post", color=c,
                 label=strategy if seed == SEEDS[0] else None)
axes[0].set_xlabel("cumulative GPU-hours")
axes[0].set_ylabel("width of the 90% interval of r*")
axes[0].legend()
axes[1].axhline(truth, color="k", ls=":", label="true r*")
axes[1].set_xlabel("cumulative GPU-hours")
axes[1].set_ylabel("r* (median and 90% interval)")
axes[1].legend()
fig.suptitle("Closed loop on a known world: the planner against a uniform grid")
fig.tight_layout()
fig.savefig(FIG_DIR / "04_closed_loop.png", dpi=110)

# %%
summary = []
for (strategy, seed), h in hist.groupby(["strategy", "seed"]):
    last = h.iloc[-1]
    summary.append({"strategy": strategy, "seed": seed, "GPU-h to width 0.2": gpu_hours_to_width(
        h.assign(width_before=h["width_after"].iloc[0]), 0.2), "final width": last["width_after"],
        "GPU-h spent": last["cum_gpu_hours"], "truth in final interval": bool(last["lo_after"] <= truth <= last["hi_after"])})
pd.DataFrame(summary)

# %% [markdown]
# The full comparison (10 seeds, random and cheapest-first baselines too) is `benchmarks/bench_planner_closed_loop.py`
# in BENCHMARKS.md; a notebook run with `QUICK` is one seed and a few rounds, so read its figure as an
# illustration, not as the measurement.
