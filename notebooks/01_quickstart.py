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
# # Quickstart: fit a CPT scaling law with credible bands, and check that it describes the data
#
# We load the example grid shipped with the package (real CPU probe runs: byte-level models of 13k, 101k
# and 443k non-embedding parameters, continued on a mixture of general prose and a domain corpus at five
# ratios), fit the toolkit's default law as a Bayesian model, check the sampler's diagnostics **and whether
# the law describes the data** (posterior predictive checks), draw the 90% bands over the data, and predict
# a run larger than any we measured. The default law is the base-anchored CPT law (`law="cpt"`: the change
# from the base model you already have); the paper's D-CPT Law (`law="dcpt"`) converges on this grid too
# but misses its curves, which `07_honest_fit.py` shows side by side.
#
# **Parameters.** `QUICK` (environment variable `BAYES_DCPT_NB_QUICK=1`, what CI sets) fits one domain
# with few draws so the notebook runs in a minute or two; the default fits every domain of the grid
# with 4 chains x 1000 draws. Figures go to `figures/` beside the notebook (regenerated on every run,
# not committed), or to `$BAYES_DCPT_NB_FIGURES`.

# %% tags=["parameters"]
import os
from pathlib import Path

QUICK = os.environ.get("BAYES_DCPT_NB_QUICK", "0") == "1"
DRAWS = int(os.environ.get("BAYES_DCPT_NB_DRAWS", "150" if QUICK else "1000"))
CHAINS = 2 if QUICK else 4
SEED = 1
FIG_DIR = Path(os.environ.get("BAYES_DCPT_NB_FIGURES", "figures"))
FIG_DIR.mkdir(parents=True, exist_ok=True)

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayes_dcpt import data, datasets, fit_point
from bayes_dcpt.fitting import fit

# %% [markdown]
# ## The data
# One row per evaluated checkpoint; `tokens == 0` rows are the base models before continual pre-training.

# %%
df = datasets.load_example()
summary = data.summarize(df)
print({k: summary[k] for k in ("rows", "domains") if k in summary})
df.head()

# %%
DOMAIN = "python"
df_fit = df[df["domain"] == DOMAIN].reset_index(drop=True) if QUICK else df
print(f"fitting {df_fit['domain'].nunique()} domain(s), {len(data.fit_rows(df_fit))} checkpoints")

# %% [markdown]
# ## Fit
# `fit` samples the hierarchical model with nutpie: the law's parameters for the general and the domain loss,
# a per-run offset (a run's checkpoints share one learning-rate schedule and seed, so they are correlated)
# and Student-t checkpoint noise, then refits on its own early checkpoints and smaller sizes to measure how
# fast the law's error grows beyond the data (the bands' model discrepancy). The priors are written down
# (`bayes_dcpt.prior_table("cpt")`).

# %%
res = fit(df_fit, law="cpt", target="both", draws=DRAWS, tune=DRAWS, chains=CHAINS, seed=SEED, warn=False)
diag = res.diagnostics(warn=False)
print(diag)
if not diag.sampler_ok:
    print("The sampler's checks flag problems: do not trust the intervals below as final. "
          + ("QUICK mode uses few draws; run without BAYES_DCPT_NB_QUICK for 4 x 1000." if QUICK else
             "More tuning, more chains or a simpler law may be needed (see BENCHMARKS.md)."))

# %% [markdown]
# A converged sampler is not a fit: the adequacy checks ask whether the law describes the data (coverage of
# the predictive bands per domain and size, residual trends along tokens, ratio and size, LOO-PIT, the
# noise's tails). Its verdict names where the law misses, if anywhere, and what to try.

# %%
adequacy = res.adequacy()
print(adequacy)

# %%
res.summary().loc[lambda s: s.index.str.match(r"(amp|phi|lam|psi|rho|kappa|h|sc|sigma|tau)\b")]

# %% [markdown]
# ## Credible bands over the data
# For each model size, the domain loss against CPT tokens at every ratio: dots are measurements, the shaded
# band is the 90% posterior predictive interval (where a new run's checkpoint would fall), the line the
# posterior mean of the law. Hollow dots are losses measured with none of their own corpus in the mixture (the
# general loss at r = 1, the domain loss at r = 0): the paper finds the law meaningless there, so they are
# not fitted.

# %%
sizes = sorted(df_fit["n_params"].unique())
ratios = sorted(data.fit_rows(df_fit)["r_domain"].unique())
fig, axes = plt.subplots(2, len(sizes), figsize=(4.2 * len(sizes), 7), sharex=True, squeeze=False)
colors = plt.cm.viridis(np.linspace(0, 0.9, len(ratios)))
rows = data.fit_rows(df_fit[df_fit["domain"] == DOMAIN])
tok = np.geomspace(rows["tokens"].min(), rows["tokens"].max(), 40)
for j, n in enumerate(sizes):
    for r, c in zip(ratios, colors, strict=True):
        grid = pd.DataFrame({"domain": DOMAIN, "n_params": n, "tokens": tok, "r_domain": r})
        p = res.predict(grid, ci=0.9, seed=1)
        obs = rows[(rows["n_params"] == n) & np.isclose(rows["r_domain"], r)]
        for i, t in enumerate(("general", "domain")):
            ax = axes[i, j]
            own = (1 - r) if t == "general" else r
            if own == 0:  # none of the target's own corpus: below the law's range, not fitted (hollow dots)
                ax.plot(obs["tokens"], obs[f"loss_{t}"], "o", mfc="none", color=c, ms=3)
                continue
            ax.fill_between(tok, p[f"loss_{t}_lo"], p[f"loss_{t}_hi"], color=c, alpha=0.2)
            ax.plot(tok, p[f"loss_{t}_mean"], color=c, lw=1)
            ax.plot(obs["tokens"], obs[f"loss_{t}"], "o", color=c, ms=3, label=f"r={r:g}")
            ax.set_xscale("log")
            ax.set_title(f"{t} loss, N = {n:,.0f}")
for ax in axes[-1]:
    ax.set_xlabel("CPT tokens")
axes[1, 0].legend(fontsize=7)
fig.suptitle(f"{DOMAIN}: 90% posterior predictive bands (CPT law, nutpie {CHAINS}x{DRAWS})")
fig.tight_layout()
fig.savefig(FIG_DIR / "01_bands.png", dpi=110)

# %% [markdown]
# ## Residuals against the point fit
# The paper's point fit of its D-CPT Law (Huber loss on log losses, L-BFGS-B) on the same rows, as a baseline:
# its in-sample error against the Bayesian CPT fit's posterior mean. Only the Bayesian fit says how sure it is.

# %%
point = fit_point(df_fit[df_fit["domain"] == DOMAIN], "dcpt", "both")
pp = point.predict(rows)
pb = res.predict(rows, ci=0.9, kind="mean")
for t in ("general", "domain"):
    fitted = ((1 - rows["r_domain"]) if t == "general" else rows["r_domain"]).to_numpy() > 0
    y = rows[f"loss_{t}"].to_numpy()[fitted]
    e_point = np.mean(np.abs(pp[f"loss_{t}_pred"].to_numpy()[fitted] / y - 1)) * 100
    e_bayes = np.mean(np.abs(pb[f"loss_{t}_mean"].to_numpy()[fitted] / y - 1)) * 100
    print(f"{t}: in-sample MAPE, point fit of D-CPT {e_point:.3f}%, Bayesian CPT posterior mean {e_bayes:.3f}%")

# %% [markdown]
# ## Predict a larger run
# Four times the largest model and four times the tokens, at a 50% domain share. The band of the law
# (`kind="mean"`) is the parameter uncertainty and the discrepancy beyond the data; the predictive band adds a
# new run's offset and noise. The CPT law needs the base model's loss at that size: it predicts it from its
# base-loss law in N (pass `base_loss=` to decisions when you have measured it). Extrapolation in N rests on
# three sizes only, so expect wide bands.

# %%
big = pd.DataFrame({"domain": DOMAIN, "n_params": [sizes[-1], 4 * sizes[-1]],
                    "tokens": [rows["tokens"].max(), 4 * rows["tokens"].max()], "r_domain": 0.5})
pred = res.predict(big, ci=0.9, seed=2)
law = res.predict(big, ci=0.9, kind="mean")
out = big.assign(**{f"{t}_{k}": pred[f"loss_{t}_{k}"] for t in ("general", "domain") for k in ("mean", "lo", "hi")},
                 domain_law_lo=law["loss_domain_lo"], domain_law_hi=law["loss_domain_hi"])
out

# %%
fig, ax = plt.subplots(figsize=(6, 4))
tok2 = np.geomspace(rows["tokens"].min(), 4 * rows["tokens"].max(), 50)
for n, c in ((sizes[-1], "C0"), (4 * sizes[-1], "C3")):
    g = pd.DataFrame({"domain": DOMAIN, "n_params": n, "tokens": tok2, "r_domain": 0.5})
    p = res.predict(g, ci=0.9, seed=3)
    ax.fill_between(tok2, p["loss_domain_lo"], p["loss_domain_hi"], color=c, alpha=0.25)
    ax.plot(tok2, p["loss_domain_mean"], color=c, label=f"N = {n:,.0f}" + (" (extrapolated)" if n > sizes[-1] else ""))
obs = rows[(rows["n_params"] == sizes[-1]) & np.isclose(rows["r_domain"], 0.5)]
ax.plot(obs["tokens"], obs["loss_domain"], "ko", ms=3, label="measured, N = largest")
ax.axvline(rows["tokens"].max(), color="grey", ls=":", lw=1)
ax.set_xscale("log")
ax.set_xlabel("CPT tokens")
ax.set_ylabel("domain loss")
ax.legend(fontsize=8)
ax.set_title("Predicting a larger run (r = 0.5, 90% predictive band)")
fig.tight_layout()
fig.savefig(FIG_DIR / "01_predict_larger.png", dpi=110)

# %%
assert np.all(out["domain_lo"] < out["domain_mean"]) and np.all(out["domain_mean"] < out["domain_hi"])
print("figures:", sorted(p.name for p in FIG_DIR.glob("01_*.png")))
