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
# # Real data: the Pythia-70M continual pre-training sweep (Data Mixing Laws)
#
# Ye et al. (Data Mixing Laws, ICLR 2025) continued Pythia-70M for 10k steps on Pile + Python at five
# Python shares, one of which (0.7148) was their *prediction* of the critical share at which the general
# (Pile) loss returns to the base model's. We fit the D-CPT Law on the other four ratios, predict the
# held-out run with 90% bands, and give the posterior of that critical ratio next to their prediction, the
# observed crossing and the paper's point fit.
#
# The data lives in `../shared/data/mixinglaws` (read in place, never copied); without it this notebook
# says so and skips. `QUICK` (`BAYES_DCPT_NB_QUICK=1`) uses few draws; figures go to `figures/`
# (regenerated, not committed) or `$BAYES_DCPT_NB_FIGURES`.

# %% tags=["parameters"]
import os
from pathlib import Path

QUICK = os.environ.get("BAYES_DCPT_NB_QUICK", "0") == "1"
DRAWS = int(os.environ.get("BAYES_DCPT_NB_DRAWS", "200" if QUICK else "1000"))
CHAINS = 2 if QUICK else 4
FIG_DIR = Path(os.environ.get("BAYES_DCPT_NB_FIGURES", "figures"))

# %%
from bayes_dcpt.datasets import DatasetUnavailable, load_mixinglaws_cpt

try:
    df = load_mixinglaws_cpt()
    HAVE_DATA = True
except DatasetUnavailable as exc:
    HAVE_DATA = False
    print(f"skipped: the public data ../shared/data/mixinglaws is not available here ({exc}); "
          "nothing below runs.")

# %%
if HAVE_DATA:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from bayes_dcpt import data, decide, fit_point
    from bayes_dcpt.fitting import fit

    FIG_DIR.mkdir(parents=True, exist_ok=True)
    HELD = 0.71484375  # the authors' predicted critical python share (pile 0.28515625)
    is_held = np.isclose(df["r_domain"].fillna(-1), HELD)
    train, test = df[~is_held], data.fit_rows(df[is_held])
    N, D = float(df["n_params"].iloc[0]), float(df["tokens"].max())
    L0 = float(df.loc[df["tokens"] == 0, "loss_general"].iloc[0])
    print(f"{len(data.fit_rows(train))} training checkpoints (4 ratios), {len(test)} held out; base general loss {L0:.4f}")

# %% [markdown]
# ## Fit on four ratios, predict the fifth

# %%
if HAVE_DATA:
    res = fit(train, law="dcpt", target="both", draws=DRAWS, tune=DRAWS, chains=CHAINS, seed=1, warn=False)
    print(res.diagnostics(warn=False))
    pred = res.predict(test, ci=0.9, seed=1)
    point = fit_point(train, "dcpt", "both").predict(test)
    for t in ("general", "domain"):
        y = test[f"loss_{t}"].to_numpy()
        cover = np.mean((pred[f"loss_{t}_lo"] <= y) & (y <= pred[f"loss_{t}_hi"]))
        print(f"{t}: MAPE Bayesian {np.mean(np.abs(pred[f'loss_{t}_mean'] / y - 1)) * 100:.3f}%, point fit "
              f"{np.mean(np.abs(point[f'loss_{t}_pred'] / y - 1)) * 100:.3f}%; held-out points inside the 90% "
              f"band: {cover:.0%}")

# %%
if HAVE_DATA:
    rows = data.fit_rows(df)
    ratios = sorted(rows["r_domain"].unique())
    tok = np.geomspace(rows["tokens"].min(), rows["tokens"].max(), 40)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for r, c in zip(ratios, plt.cm.viridis(np.linspace(0, 0.9, len(ratios))), strict=True):
        g = pd.DataFrame({"domain": "python", "n_params": N, "tokens": tok, "r_domain": r})
        p = res.predict(g, ci=0.9, seed=2)
        obs = rows[np.isclose(rows["r_domain"], r)]
        held = np.isclose(r, HELD)
        for ax, t in zip(axes, ("general", "domain"), strict=True):
            ax.fill_between(tok, p[f"loss_{t}_lo"], p[f"loss_{t}_hi"], color=c, alpha=0.35 if held else 0.15)
            ax.plot(tok, p[f"loss_{t}_mean"], color=c, lw=2 if held else 1)
            ax.plot(obs["tokens"], obs[f"loss_{t}"], "*" if held else "o", color=c, ms=8 if held else 3,
                    label=f"python {r:.3f}" + (" (held out)" if held else ""))
    axes[0].axhline(L0, color="k", ls=":", lw=1, label="base model")
    for ax, t in zip(axes, ("general (weighted Pile)", "domain (Python)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("CPT tokens (steps x 2^20)")
        ax.set_title(f"{t} loss, 90% predictive bands")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIG_DIR / "05_mixinglaws_bands.png", dpi=110)

# %% [markdown]
# ## The critical ratio
# The largest python share at which the general loss after 10k steps is back at the base model's
# (`max_general_increase=0`), per posterior draw, against the Data Mixing Laws prediction (0.7148), the
# observed crossing (linear interpolation of the measured final losses) and the paper's point fit.

# %%
if HAVE_DATA:
    last = df[df["tokens"] == D].sort_values("r_domain")
    rr, yy = last["r_domain"].to_numpy(), last["loss_general"].to_numpy()
    i = int(np.flatnonzero((yy[:-1] <= L0) & (yy[1:] > L0))[0])
    observed = rr[i] + (L0 - yy[i]) / (yy[i + 1] - yy[i]) * (rr[i + 1] - rr[i])
    crit = decide.tradeoff(res.posterior, n_params=N, tokens=D, max_general_increase=0.0, prob=0.9)
    s = crit.summary()
    print(s)
    pf = fit_point(train, "dcpt", "general")
    r_point = decide.tradeoff(pf.to_posterior(train), n_params=N, tokens=D, max_general_increase=0.0)
    r_point = float(r_point.summary().table.loc["r_domain", "median"])
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.hist(crit.posterior["r_domain"].dropna(), bins=40, color="C0", alpha=0.6, density=True,
            label="posterior of r* (4 ratios)")
    for x, lab, st in ((HELD, "Data Mixing Laws prediction", "--"), (observed, "observed crossing", "-"),
                       (r_point, "point fit (paper procedure)", ":")):
        ax.axvline(x, color="k", ls=st, label=f"{lab}: {x:.4f}")
    ax.set_xlabel("critical python share r*")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIG_DIR / "05_critical_ratio.png", dpi=110)
