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
# # A converged sampler is not a fit
#
# You are planning a CPT run and want a replay ratio from a scaling law. The sampler's checks (R-hat, ESS,
# divergences) say whether the chains explored the posterior; they say nothing about whether the law
# describes your loss curves. This notebook puts two committed fits of the same example grid side by side:
#
# * `models/example_dcpt.nc`: the D-CPT Law, whose chains converged;
# * `models/example_cpt.nc`: the base-anchored CPT law.
#
# We read each fit's sampler checks and posterior predictive (adequacy) checks, look at the data against
# both laws' bands, see how the CPT fit's bands are calibrated for extrapolation, and compare the replay
# ratio each law recommends with the one read off the measurements.
#
# **Parameters.** Both fits are loaded, not sampled, so `QUICK` (`BAYES_DCPT_NB_QUICK=1`, what CI sets) uses
# the full committed posteriors too; it only skips the last section (`law="auto"`, several fits and held-out
# refits). Figures go to `figures/` beside the notebook or to `$BAYES_DCPT_NB_FIGURES`.

# %% tags=["parameters"]
import os
from pathlib import Path

QUICK = os.environ.get("BAYES_DCPT_NB_QUICK", "0") == "1"
DRAWS = int(os.environ.get("BAYES_DCPT_NB_DRAWS", "500"))  # only the law="auto" section samples
CHAINS = 2
SEED = 1
FIG_DIR = Path(os.environ.get("BAYES_DCPT_NB_FIGURES", "figures"))
FIG_DIR.mkdir(parents=True, exist_ok=True)

# %%
# ruff: noqa: E402 (imports follow the parameters cell and matplotlib.use)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayes_dcpt as bd
from bayes_dcpt import data, datasets
from bayes_dcpt.cli.demo_cmd import default_models_dir

pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 90)
# The D-CPT fit's codec_tables domain-loss noise is wide (sigma about 0.24 on the log scale, Student-t): a few
# predictive draws overflow to inf. The quantiles stay finite; the warning is silenced where we draw from it.
QUIET = {"over": "ignore", "invalid": "ignore"}

# %% [markdown]
# ## The data and the two fits

# %%
df = datasets.load_example()
MODELS = default_models_dir()
fits = {"D-CPT": bd.load_fit(MODELS / "example_dcpt.nc"), "CPT": bd.load_fit(MODELS / "example_cpt.nc")}
N_MAX = float(df["n_params"].max())
D_MAX = float(df["tokens"].max())
DOMAIN = "codec_tables"
print(f"{len(df)} rows, domains {sorted(df['domain'].unique())}, sizes {sorted(df['n_params'].unique())}")
for name, f in fits.items():
    print(f"{name}: {f.law.title}; {f.posterior.n_draws} posterior draws")

# %% [markdown]
# ## Two verdicts per fit
# `diagnostics()` is the sampler's verdict (and carries the adequacy failures as `.misfit`);
# `adequacy()` runs the posterior predictive checks: coverage of the 90% band, residual trends along
# log D, r and log N, LOO-PIT and the noise tails, per target, domain and size.

# %%
adequacy = {}
for name, f in fits.items():
    diag = f.diagnostics(warn=False)
    adequacy[name] = f.adequacy()
    print(f"== {name}")
    print("sampler checks pass:", diag.sampler_ok)
    print(diag)
    print("adequacy:", adequacy[name].summary())
    print(f"misfit entries: {len(diag.misfit)}\n")

# %% [markdown]
# The failed checks, worst first (`p_value` is the check's; a check fails below `alpha`):

# %%
failed = {}
for name, a in adequacy.items():
    t = a.table()
    failed[name] = (t[~t["ok"]].sort_values("p_value")
                    [["check", "target", "domain", "n_params", "statistic", "p_value", "message"]])
    print(f"{name}: {len(failed[name])} of {len(t)} checks fail (alpha = {a.alpha})")
failed["D-CPT"]

# %%
failed["CPT"]

# %% [markdown]
# ## The data against each law's 90% band
# Domain `codec_tables` at the largest size: measured loss (dots) against CPT tokens at every ratio, each
# law's posterior-mean curve (line) and 90% predictive band of a new run (shaded). Hollow dots are losses
# measured with none of their own corpus in the mixture (domain loss at r = 0, general loss at r = 1): not
# fitted by the D-CPT Law, shown without a band (the general loss at r = 1 rises off the panel).

# %%
rows_all = data.fit_rows(df)
rows = rows_all[(rows_all["domain"] == DOMAIN) & np.isclose(rows_all["n_params"], N_MAX)]
ratios = sorted(rows["r_domain"].unique())
colors = plt.cm.viridis(np.linspace(0, 0.9, len(ratios)))
tok = np.geomspace(rows["tokens"].min(), rows["tokens"].max(), 40)
fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True, sharey="row")
for j, (name, f) in enumerate(fits.items()):
    for r, c in zip(ratios, colors, strict=True):
        grid = pd.DataFrame({"domain": DOMAIN, "n_params": N_MAX, "tokens": tok, "r_domain": r})
        with np.errstate(**QUIET):
            p = f.predict(grid, ci=0.9, seed=SEED)
        obs = rows[np.isclose(rows["r_domain"], r)]
        for i, t in enumerate(("domain", "general")):
            ax = axes[i, j]
            own = r if t == "domain" else 1 - r
            if own == 0:
                ax.plot(obs["tokens"], obs[f"loss_{t}"], "o", mfc="none", color=c, ms=4)
                continue
            ax.fill_between(tok, p[f"loss_{t}_lo"], p[f"loss_{t}_hi"], color=c, alpha=0.18)
            ax.plot(tok, p[f"loss_{t}_mean"], color=c, lw=1.2)
            ax.plot(obs["tokens"], obs[f"loss_{t}"], "o", color=c, ms=4)
    n_fail = len(failed[name])
    axes[0, j].set_title(f"{name} law: domain loss ({n_fail} adequacy checks fail overall)")
    axes[1, j].set_title(f"{name} law: general loss")
for ax in axes.flat:
    ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both", lw=0.5)
for ax in axes[-1]:
    ax.set_xlabel("CPT tokens")
axes[0, 0].set_ylabel("domain loss (nats/byte)")
axes[1, 0].set_ylabel("general loss (nats/byte)")
fitted_general = rows.loc[rows["r_domain"] < 1, "loss_general"]
pad = 0.15 * (fitted_general.max() - fitted_general.min())
axes[1, 0].set_ylim(fitted_general.min() - pad, fitted_general.max() + 2 * pad)
handles = [plt.Line2D([], [], color=c, marker="o", ms=4, label=f"r = {r:g}")
           for r, c in zip(ratios, colors, strict=True)]
handles.append(plt.Line2D([], [], color="grey", marker="o", mfc="none", ls="none", label="no own corpus (not fitted)"))
fig.legend(handles=handles, title="domain share r: measured (dots), posterior mean (line), 90% band (shaded)",
           loc="lower center", ncol=len(handles), fontsize=8, title_fontsize=8)
fig.suptitle(f"{DOMAIN}, N = {N_MAX:,.0f}: measurements vs each law's 90% predictive band")
fig.tight_layout(rect=(0, 0.07, 1, 1))
fig.savefig(FIG_DIR / "07_data_vs_fit.png", dpi=110)

# %% [markdown]
# How far each law's mean is from these measurements (MAPE of the posterior mean over the fitted rows shown),
# and the share of them inside the 90% band. This is the check `bayes-dcpt predict` makes of any measured rows
# (`fit.check_predictions` in Python): these rows are the fits' own, so it scores them as in-sample and judges
# nothing; given runs a fit did not see, it also says whether the band holds them. Both laws are scored on the
# rows each describes (not the losses measured with none of their own corpus):

# %%
from bayes_dcpt.posterior.heldout import check_predictions  # noqa: E402

score = []
for name, f in fits.items():
    with np.errstate(**QUIET):
        c = check_predictions(f.predict(rows, ci=0.9, seed=SEED), 0.9, fitted=f.data, zero_ratio=False)
    score.append(c.table.assign(law=name))
pd.concat(score)[["law", "target", "where", "rows", "mape", "coverage", "width"]].round(3)

# %% [markdown]
# The D-CPT Law's nearly flat curves cannot follow the codec_tables domain loss, which keeps falling across the token
# range; the fit widens that domain's noise instead (each domain has its own noise scale: sigma about 0.24 on the
# log scale for codec_tables' domain loss against 0.014-0.04 for the others; its degrees of freedom are floored at
# 2, so the miss cannot hide in the tails, where before 2026-12-04 they fell below 1). On the general loss compare
# the two laws' rows above.

# %% [markdown]
# ## Extrapolation: how wide should the band be beyond the data?
# A band fitted to the data says nothing about how wrong the law's *shape* may be beyond it. The CPT fit carries
# its calibration (`fit.extrapolation`): the law refitted with the later checkpoints held out (`tokens`) and with
# the largest size held out (`size`), scored on what it did not see: MAPE of the posterior mean and coverage of
# the refit's 90% predictive band (no discrepancy yet); `refit_ok` says whether the refit's sampler checks passed.

# %%
cpt = fits["CPT"]
print("D-CPT fit carries a calibration:", fits["D-CPT"].extrapolation is not None)
holdout = pd.DataFrame(cpt.extrapolation["holdout"])
print(f"held-out coverage of the refits' 90% bands: {holdout['coverage'].min():.2f} .. "
      f"{holdout['coverage'].max():.2f}")
print("splits whose refit failed its sampler checks:",
      sorted(holdout.loc[~holdout["refit_ok"].astype(bool), "split"].unique()) or "none")
holdout[["split", "target", "n_runs", "n_points", "mape", "coverage", "refit_ok"]].round(3)

# %% [markdown]
# Coverage below 0.9 means the refits' bands were too narrow for what they did not see: beyond the data the
# law errs by more than its parameter uncertainty and noise allow for. A split whose refit failed its sampler
# checks (printed above) gives only a rough estimate of that error.

# %% [markdown]
# From these held-out errors the fit estimates kappa, the sd of the law's log-loss error per unit of distance
# beyond the data along each axis (log tokens, log size, ratio; `None`: not measured). Predictions beyond the
# data get that extra spread; inside the data it is zero.

# %%
kappa = pd.DataFrame(cpt.posterior.ctx["discrepancy"]).T
kappa.round(4)

# %% [markdown]
# The band at 4x and 16x the largest measured tokens, with the discrepancy and without it
# (`Posterior.without_discrepancy()`, the parameter uncertainty and noise alone).

# %%
R_SHOW = 0.5
post = cpt.posterior
post_nodisc = post.without_discrepancy()
tok_x = np.geomspace(rows["tokens"].min(), 16 * D_MAX, 60)
grid = pd.DataFrame({"domain": DOMAIN, "n_params": N_MAX, "tokens": tok_x, "r_domain": R_SHOW})
p_with = post.predict(grid, ci=0.9, seed=SEED)
p_without = post_nodisc.predict(grid, ci=0.9, seed=SEED)
obs = rows[np.isclose(rows["r_domain"], R_SHOW)]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
for ax, t in zip(axes, ("domain", "general"), strict=True):
    ax.fill_between(tok_x, p_with[f"loss_{t}_lo"], p_with[f"loss_{t}_hi"], color="C1", alpha=0.25,
                    label="90% band with discrepancy")
    ax.plot(tok_x, p_without[f"loss_{t}_lo"], color="C0", lw=1.2, label="90% band without discrepancy")
    ax.plot(tok_x, p_without[f"loss_{t}_hi"], color="C0", lw=1.2)
    ax.plot(tok_x, p_with[f"loss_{t}_mean"], color="k", lw=1, label="posterior mean")
    ax.plot(obs["tokens"], obs[f"loss_{t}"], "ko", ms=4, mfc="w", label="measured")
    ax.axvline(D_MAX, color="grey", ls=":", lw=1)
    for k in (4, 16):
        ax.axvline(k * D_MAX, color="grey", ls="--", lw=0.8)
        ax.text(k * D_MAX, 0.98, f"{k}x", transform=ax.get_xaxis_transform(), ha="right", va="top", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("CPT tokens (dotted: largest measured)")
    ax.set_ylabel(f"{t} loss (nats/byte)")
    ax.set_title(f"{t} loss, {DOMAIN}, N = {N_MAX:,.0f}, r = {R_SHOW}")
    ax.grid(alpha=0.3, which="both", lw=0.5)
axes[0].legend(fontsize=8)
fig.suptitle("CPT law beyond the data: the calibrated discrepancy widens the band")
fig.tight_layout()
fig.savefig(FIG_DIR / "07_extrapolation.png", dpi=110)

# %%
far = pd.DataFrame({"domain": DOMAIN, "n_params": N_MAX, "tokens": [D_MAX, 4 * D_MAX, 16 * D_MAX],
                    "r_domain": R_SHOW})
pw, po = post.predict(far, ci=0.9, seed=SEED), post_nodisc.predict(far, ci=0.9, seed=SEED)
widths = pd.DataFrame({"tokens / largest measured": [1, 4, 16]})
for t in ("domain", "general"):
    widths[f"{t}: mean"] = pw[f"loss_{t}_mean"]
    widths[f"{t}: width without"] = po[f"loss_{t}_hi"] - po[f"loss_{t}_lo"]
    widths[f"{t}: width with"] = pw[f"loss_{t}_hi"] - pw[f"loss_{t}_lo"]
widths.round(4)

# %% [markdown]
# ## The decision: which replay ratio keeps the general loss within 3%?
# The paper's usage 1 at the largest size and the largest measured tokens: the largest domain share r* whose
# general loss stays within 3% of the base model's. Passing `data=df` checks the answer against the crossing
# read off the measured single runs (interpolated between the two measured ratios that straddle 3%, with an
# interval from the fit's measurement noise).

# %%
decisions = {name: f.optimize("tradeoff", n_params=N_MAX, tokens=D_MAX, max_general_increase=0.03, domain=DOMAIN,
                              data=df) for name, f in fits.items()}
for name, dec in decisions.items():
    print(f"===== {name} law")
    print(dec.summary())
    print()

# %% [markdown]
# Every domain, both laws: r*'s median and 90% interval against the measured crossing and its noise interval,
# and the 90% interval of the ratio where *one run* crosses the threshold (its offset and noise included): the
# crossing is read off single runs, so that is the interval it is to be compared with, and one a user gets before
# the runs exist.

# %%
table = []
for d in sorted(df["domain"].unique()):
    for name, f in fits.items():
        dec = f.optimize("tradeoff", n_params=N_MAX, tokens=D_MAX, max_general_increase=0.03, domain=d, data=df)
        s = dec.summary()
        r_star = s.table.loc["r_domain"]
        m = s.measured or {}
        c_lo, c_hi = m.get("crossing_interval", [np.nan, np.nan])
        table.append({"domain": d, "law": name, "adequate": adequacy[name].ok, "r* median": r_star["median"],
                      "r* lo": r_star["lo"], "r* hi": r_star["hi"], "measured crossing": m.get("crossing", np.nan),
                      "crossing lo": c_lo, "crossing hi": c_hi,
                      "one run lo": s.table.loc["one_run_crossing", "lo"],
                      "one run hi": s.table.loc["one_run_crossing", "hi"], "one run holds it": m.get("one_run_contains"),
                      "r* - crossing": r_star["median"] - m.get("crossing", np.nan),
                      "domain loss at r*": s.table.loc["loss_domain", "median"], "agrees": m.get("agrees")})
answers = pd.DataFrame(table)
answers.round(3)

# %%
gap = answers[answers["law"] == "CPT"]["r* - crossing"]
print(f"CPT law: r* median minus the measured crossing, across domains: {gap.min():+.3f} .. {gap.max():+.3f}")
for name in fits:
    agree = answers.loc[answers["law"] == name, "agrees"].astype(bool)
    print(f"{name} law: r*'s interval overlaps the crossing's noise interval in {agree.sum()} of {len(agree)} domains")
    held = answers.loc[answers["law"] == name, "one run holds it"].astype(bool)
    print(f"{name} law: one run's crossing interval holds the measured crossing in {held.sum()} of {len(held)} domains")
last = rows[np.isclose(rows["tokens"], D_MAX) & (rows["r_domain"] > 0)]
print(f"measured {DOMAIN} domain loss at N = {N_MAX:,.0f}, D = {D_MAX:,.0f}:",
      {f"r={r:g}": round(v, 3) for r, v in last.groupby("r_domain")["loss_domain"].mean().items()})

# %% [markdown]
# Read this table candidly. The measured crossing is interpolated from single runs at a few ratios at one
# checkpoint, so its noise interval is wide. The CPT law's r* sits within a tenth of the interpolated
# crossing, by the gaps printed above (their signs differ between domains), inside that noise. Agreement
# with the crossing does not rescue the D-CPT fit: the crossing involves only the general loss, while the
# D-CPT law's domain loss at r* for `codec_tables` is far from the measured domain losses printed above (the
# curves it misses in the first figure), and its adequacy checks fail. Use a fit whose sampler checks *and*
# adequacy checks pass, and add probes near r* if the gap to the measured crossing matters to you.

# %% [markdown]
# ## Let the data choose the law (full mode only)
# `bd.fit(df, law="auto")` fits the candidate laws, weighs them by held-out stacking and calibrates the
# stacked bands; it samples several models plus held-out refits (each candidate `CHAINS` x `DRAWS`), so QUICK
# mode skips it.

# %%
if QUICK:
    print("QUICK mode: law='auto' skipped (run without BAYES_DCPT_NB_QUICK to fit it)")
else:
    auto = bd.fit(df, law="auto", seed=SEED, draws=DRAWS, tune=DRAWS, chains=CHAINS)
    print("stacking weights:", {k: round(v, 3) for k, v in auto.weights.items()})
    print(auto.diagnostics(warn=False))
    a_auto = auto.adequacy()
    print("adequacy:", a_auto.summary() if a_auto is not None else "n/a")

# %%
print("figures:", sorted(p.name for p in FIG_DIR.glob("07_*.png")))
