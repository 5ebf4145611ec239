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
# # Learning-rate schedules: the CPT dynamics law
#
# The D-CPT Law reads tokens as if the learning-rate schedule did not matter. It does: when CPT re-warms the
# LR above where pre-training ended, the loss first **bumps up**; when the LR anneals, the loss **drops**.
# The CPT learning-dynamics law (Wang et al., ICML 2025) describes the whole curve through the schedule's
# forward area S1 and annealing area S2, which `bayes_dcpt.laws.lr_schedules` computes exactly from the schedule.
#
# We use the embedded LR-schedule grid (real CPU probes, `SCHEDULES.md`): the same probe under four CPT
# schedules. We fit the law on the **constant** and **cosine** runs only, predict the **WSD** runs' whole
# curves with 90% bands, compare with the schedule-blind D-CPT Law, and ask which schedule and replay
# ratio keep the general loss within 3% while minimising the domain loss.
#
# **Parameters.** `QUICK` (`BAYES_DCPT_NB_QUICK=1`, what CI sets) uses few draws; the default uses
# 2 chains x 1000 draws. Figures go to `figures/` beside the notebook or to `$BAYES_DCPT_NB_FIGURES`.

# %% tags=["parameters"]
import os
from pathlib import Path

QUICK = os.environ.get("BAYES_DCPT_NB_QUICK", "0") == "1"
DRAWS = int(os.environ.get("BAYES_DCPT_NB_DRAWS", "150" if QUICK else "1000"))
TUNE = 300 if QUICK else 1000
CHAINS = 2
SEED = 1
FIG_DIR = Path(os.environ.get("BAYES_DCPT_NB_FIGURES", "figures"))
FIG_DIR.mkdir(parents=True, exist_ok=True)

# %%
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayes_dcpt.datasets import load_schedules
from bayes_dcpt.data.dynamics import area_features, schedule_of
from bayes_dcpt.fitting import fit
from bayes_dcpt.fitting.dynamics import fit_dynamics
from bayes_dcpt.decide.lr_choice import candidate_grid, choose_schedule

warnings.simplefilter("ignore", UserWarning)

# %% [markdown]
# ## The data: one probe, four schedules
#
# The 0.1M-parameter base model was pre-trained with a cosine schedule ending at LR 3e-4. Three CPT
# schedules re-warm to 1e-3 (constant, cosine, WSD); `flat` continues at 3e-4.

# %%
df = load_schedules()
N = 100_672
d = df[df["n_params"] == N].copy()
d["sched"] = d["run_id"].str.extract(r"sched=(\w+)$")[0]
specs = d.dropna(subset=["sched"]).groupby("sched")["schedule"].first()
base = d[d["tokens"] == 0].iloc[0]
print(specs.to_string())
print("base schedule:", base["base_schedule"])
print(f"{d['run_id'].nunique() - 1} runs, {len(d)} rows (base row included)")

# %%
STYLE = {"const": ("black", "-"), "cosine": ("0.45", "--"), "wsd": ("black", ":"), "flat": ("0.65", "-.")}
fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
for s, spec in specs.items():
    c, ls = STYLE[s]
    axes[0].plot(np.arange(1, 257), schedule_of(spec).lrs(), color=c, ls=ls, label=s)
    run = d[(d["sched"] == s) & np.isclose(d["r_domain"], 0.5)]
    for ax, t in zip(axes[1:], ("general", "domain"), strict=True):
        ax.plot(np.r_[0, run["step"]], np.r_[base[f"loss_{t}"], run[f"loss_{t}"]], color=c, ls=ls, label=s)
axes[0].axhline(schedule_of(base["base_schedule"]).lrs()[-1], color="0.3", lw=0.8)
axes[0].text(130, 3.3e-4, "pre-training ended here", fontsize=8)
axes[0].set(xlabel="CPT step", ylabel="learning rate", title="CPT schedules")
for ax, t in zip(axes[1:], ("general", "domain"), strict=True):
    ax.set(xlabel="CPT step", ylabel=f"{t} loss (nats/byte)", title=f"{t} loss, r_domain = 0.5")
r5 = d[np.isclose(d["r_domain"], 0.5)].sort_values("step")
early = r5[(r5["sched"] == "const") & (r5["step"] <= 60)]
peak = early.loc[early["loss_general"].idxmax()]
end = r5[r5["sched"] == "wsd"].iloc[-1]
axes[1].annotate("re-warmup bump", (peak["step"], peak["loss_general"]), xytext=(peak["step"] + 45,
                 peak["loss_general"] + 0.003), arrowprops={"arrowstyle": "->"}, fontsize=9)
axes[1].annotate("WSD anneal drop", (end["step"], end["loss_general"]), xytext=(end["step"] - 120,
                 end["loss_general"] - 0.002), arrowprops={"arrowstyle": "->"}, fontsize=9)
axes[0].legend(frameon=False, fontsize=8)
fig.savefig(FIG_DIR / "06_schedules_and_curves.png", dpi=120)

# %% [markdown]
# ## The areas
#
# S1 (forward area: the sum of the LRs) and S2 (annealing area: LR drops accumulated with momentum
# lambda) are computed exactly from the schedules; a re-warmup makes S2cpt negative (the bump), an anneal
# makes it grow (the drop). The pre-training part S2pt is the same for every run from this base model.

# %%
one = d[np.isclose(d["r_domain"].fillna(0.5), 0.5) | (d["tokens"] == 0)]
areas = pd.concat([one[["sched", "step"]].reset_index(drop=True),
                   area_features(one, momentum=0.999).reset_index(drop=True)], axis=1)
print(areas[areas["step"].isin([0, 16, 128, 256])].round(4).to_string(index=False))

# %% [markdown]
# ## Fit on constant and cosine, predict WSD
#
# `fit_dynamics` picks the replay-ratio variant (Eq. 8) because the runs use three domain shares. The
# momentum lambda is the papers' 0.999; `select_momentum` compares values by PSIS-LOO on the training runs
# (the benchmark does; BENCHMARKS.md).

# %%
train = d[d["sched"].isin(["const", "cosine"]) | (d["tokens"] == 0)].drop(columns="sched")
test = d[d["sched"] == "wsd"]
dyn = fit_dynamics(train, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED, warn=False)
print(dyn)
print(dyn.diagnostics(warn=False))
dyn.summary()[["mean", "sd", "hdi90_lb", "hdi90_ub", "r_hat"]]

# %%
dcpt = fit(train[train["tokens"] > 0][["domain", "n_params", "tokens", "r_domain", "loss_general", "loss_domain",
                                       "run_id"]], law="dcpt", draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED,
           warn=False)
pred = dyn.predict(test[["domain", "n_params", "r_domain", "schedule", "step", "run_id"]], ci=0.9)
pred_d = dcpt.predict(test[["domain", "n_params", "tokens", "r_domain", "run_id"]], ci=0.9)
rows = []
for name, p in (("dynamics law", pred), ("D-CPT law (schedule-blind)", pred_d)):
    for t in ("general", "domain"):
        y = test[f"loss_{t}"].to_numpy()
        rows.append({"method": name, "target": t,
                     "MAPE %": 100 * np.mean(np.abs(p[f"loss_{t}_mean"].to_numpy() - y) / y),
                     "90% coverage": np.mean((y >= p[f"loss_{t}_lo"].to_numpy()) & (y <= p[f"loss_{t}_hi"].to_numpy()))})
pd.DataFrame(rows).round(3)

# %% [markdown]
# The whole predicted curve of the unseen WSD run at r = 0.5 (every step, 90% predictive band), with the
# measurements: the band follows the re-warmup bump and the final anneal drop. The D-CPT Law's curve
# for the same (N, D, r) cannot tell WSD from the schedules it was fitted on.

# %%
wsd_spec = specs["wsd"]
curve = dyn.curve("python", N, 0.5, wsd_spec, ci=0.9)
const_curve = dyn.curve("python", N, 0.5, specs["const"], ci=0.9, kind="mean")
meas = test[np.isclose(test["r_domain"], 0.5)]
grid = pd.DataFrame({"domain": "python", "n_params": N, "tokens": curve["tokens"].iloc[1:], "r_domain": 0.5})
dc = dcpt.predict(grid, ci=0.9)
fig, axes = plt.subplots(1, 2, figsize=(13, 4.3), constrained_layout=True)
for ax, t in zip(axes, ("general", "domain"), strict=True):
    ax.fill_between(curve["step"], curve[f"loss_{t}_lo"], curve[f"loss_{t}_hi"], color="0.8",
                    label="dynamics law, 90% band (WSD never seen)")
    ax.plot(curve["step"], curve[f"loss_{t}_mean"], color="black", lw=1.2, label="dynamics law, mean")
    ax.plot(const_curve["step"], const_curve[f"loss_{t}_mean"], color="0.5", lw=0.8, ls="--",
            label="dynamics law, constant schedule (mean)")
    ax.plot(curve["step"].iloc[1:], dc[f"loss_{t}_mean"], color="0.35", ls=":", lw=1.5,
            label="D-CPT law (schedule-blind)")
    ax.plot(meas["step"], meas[f"loss_{t}"], "o", ms=3.5, mfc="white", mec="black", label="measured WSD run")
    ax.plot([0], [base[f"loss_{t}"]], "s", color="black", ms=4, label="base model")
    ax.axvspan(205, 256, color="0.93", zorder=0)
    ax.set(xlabel="CPT step", ylabel=f"{t} loss (nats/byte)", title=f"{t} loss, WSD at r_domain = 0.5")
top = int(curve["loss_general_mean"].iloc[:80].idxmax())
axes[0].annotate("re-warmup bump", (curve["step"].iloc[top], curve["loss_general_mean"].iloc[top]),
                 xytext=(curve["step"].iloc[top] + 40, curve["loss_general_hi"].iloc[top] + 0.002),
                 arrowprops={"arrowstyle": "->"}, fontsize=9)
axes[0].text(207, axes[0].get_ylim()[1] - 0.01, "decay", fontsize=8, va="top")
axes[1].legend(frameon=False, fontsize=7.5)
fig.savefig(FIG_DIR / "06_wsd_prediction.png", dpi=120)

# %% [markdown]
# ## Which schedule and replay ratio?
#
# Per posterior draw, the law gives every candidate's general and domain loss at the end of the run; each
# draw picks the candidate with the lowest domain loss whose general loss stays within T = 3% of the base
# model's. The answer is a posterior over candidates (`P(best)`), with `P(feasible)` per candidate and a
# risk-aware choice (feasible with probability >= 0.9). Here the law was fitted on two schedules; the
# other two are predictions.

# %%
cands = candidate_grid(specs.to_dict(), [0.25, 0.5, 0.75])
dec = choose_schedule(dyn.posterior, cands, max_general_increase=0.03)
print(dec.summary())
dec.table()[["name", "r_domain", "P_best", "P_feasible", "loss_domain_median", "general_increase_median"]].round(4)

# %%
fig = dec.plot()
fig.savefig(FIG_DIR / "06_schedule_decision.png", dpi=120)
