"""Bayesian fit of the CPT learning-dynamics law (Wang et al. 2025) to whole CPT loss curves.

Quickstart::

    >>> from bayes_dcpt.datasets import load_schedules
    >>> from bayes_dcpt.fitting.dynamics import fit_dynamics, load_dynamics_fit
    >>> df = load_schedules()
    >>> train = df[~df["run_id"].str.endswith("sched=wsd")]             # fit on the other schedules
    >>> f = fit_dynamics(train, seed=1)                                 # law="auto": the replay variant here
    >>> f.diagnostics(); f.summary()
    >>> rows = f.posterior.curve_rows("python", 100_672, 0.5, "wsd(peak=1e-3, steps=256, warmup=10, final=1e-4)")
    >>> f.predict(rows, ci=0.9)                                         # the unseen schedule's whole curve
    >>> f.save("dyn.nc"); load_dynamics_fit("dyn.nc")

The model
---------
Every measured point of every run (base-model rows included: they are CPT step 0), general and domain loss
stacked, with its areas ``S1pt, S1cpt, S2pt, S2cpt`` computed exactly from the run's schedules
(:mod:`bayes_dcpt.laws.lr_schedules`, annealing momentum ``momentum``, 0.999 by default)::

    log L_i = log f_law(S_i[, N_i][, r_i]; theta_g) + u_{t,run(i)} + e_i,   e_i ~ Normal(0, sigma_t)
    u_{t,run} ~ Normal(0, tau_t)          (per-run offset: a run's checkpoints are not independent)

the offsets integrated out in closed form (``run_offsets="marginal"``, default; robust: one multivariate
Student-t(nu_t) per run; :mod:`bayes_dcpt.fitting.marginal`) or sampled (``"latent"``), with one parameter set ``theta_g`` per group ``g = (target, domain)`` (the paper fits each validation loss
separately) and the noise per target, as in :mod:`bayes_dcpt.fitting.dcpt`. ``law="auto"`` picks the variant
from the data: the replay variant (Eq. 8) when the runs use several domain shares, the model-size variant
(Eq. 7) with several model sizes, both ("cpt-dynamics-full") with both, otherwise Eq. 4.

Parameterisation and priors (each with its reason; ``L_ref`` = the group's median loss)
------------------------------------------------------------------------------------------
The data identify the loss at the start of CPT and how the curves move; they do not identify how far the
forward power law would still fall beyond the data. So the fit samples, per group:

* ``level ~ LogNormal(log L_base, 0.1)``: the law at the reference base point (CPT step 0 of the largest
  model size), where the base-model rows measure it (sd 0.3 when the data have no base rows);
* ``share_A``: the forward term left at the far end of the data, ``A S_hi^-alpha``, as a share of ``level``
  (logit-normal centred at 0.1, sd 1.5): CPT starts from a trained model, the remaining power-law gain is a
  small part of the loss;
* ``drop_A ~ LogNormal(log 0.02 L_ref, 1.5)``: the term's fall across the data's range ``[S_lo, S_hi]`` of
  ``S1pt + S1cpt`` (what the curves show); the exponent follows,
  ``alpha = log(1 + drop_A / (A S_hi^-alpha)) / log(S_hi / S_lo)``, and the published values enter as a
  prior factor ``alpha ~ LogNormal(log 0.5, 0.75)`` (Wang et al. 0.497, 0.510; Tissue et al. about 0.5);
* ``C2 * max|S2cpt| ~ LogNormal(log 0.02 L_ref, 1.5)``: the CPT annealing term's size over the data (at the
  data's median own ratio in the replay variant), a few percent of the loss (C2 > 0: annealing lowers the
  loss);
* ``C1 * span(S2pt) ~ LogNormal(log 0.02 L_ref, 1.5)``: the PT annealing term's change across the data (the
  PT anneal's momentum carried into CPT), with the prior factor ``log(C1 / C2) ~ Normal(0, 1)``: Wang et
  al.'s fits have C1 = C2 within 10% (0.299/0.298, 0.280/0.263); with CPT data from one base model C1 is
  barely identified and this factor carries it (when S2pt does not vary, ``C1 = C2 e^rho``, rho ~ N(0, 1));
* the distribution shift through its value at the data's largest ``S1cpt`` (and domain share):
  ``|shift| ~ LogNormal(log 0.02 L_ref, 1.5)`` with the paper's sign (+ general, - domain),
  ``E * max S1cpt ~ LogNormal(log 2, 1.5)`` (saturation within or beyond the data, unit-free) and
  ``beta ~ LogNormal(log 0.3, 0.75)`` (Wang et al. 0.189); ``B`` follows;
* replay variant: ``a1 ~ Normal(0, 1)`` (Wang et al. 0.055; sign free), ``a2 ~ LogNormal(log 2, 1)``
  (Wang et al. 3.238);
* model-size variant: ``gamma1, gamma2 ~ Normal(0, 0.5)`` (zero recovers Eq. 4),
  ``F N_ref^-gamma3 ~ LogNormal(log 0.05 L_ref, 1.5)``, ``gamma3 ~ LogNormal(log 0.34, 0.5)`` (Chinchilla);
* ``L0`` is the remainder ``level - A S_ref^-alpha + C1 S2pt_ref [N_ref^gamma1] - F N_ref^-gamma3``, kept
  positive by a smooth barrier (2% softness);
* noise: ``sigma_t ~ LogNormal(log 0.004, 1)``, ``tau_t ~ HalfNormal(0.01)``, ``nu_t ~ Gamma(2, 0.1)``
  (:data:`bayes_dcpt.fitting.dcpt.NOISE_PRIORS` gives the reasons).

:func:`dynamics_prior_table` lists them; every saved fit carries the table in its model card.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt._version import __version__
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt import hooks
from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.dynamics import AREA_COLUMNS, area_features, load_dynamics, schedule_of
from bayes_dcpt.errors import BayesDCPTError, ConvergenceWarning, FitError
from bayes_dcpt.fitting.dcpt import (
    NOISE_PRIORS,
    SAMPLERS,
    Diagnostics,
    _capacity,
    _diagnose,
    _diagnostics_from_card,
    _psis_loo,
    _read_fit_file,
    _sample,
    _summary,
    _write_fit_file,
)
from bayes_dcpt.fitting.marginal import marginal_log_likelihood, run_groups, run_loglik
from bayes_dcpt.laws.dynamics import DYNAMICS_LAWS, VARIANTS
from bayes_dcpt.laws.lr_schedules import DEFAULT_MOMENTUM, phase_areas
from bayes_dcpt.laws.registry import BILLION, Law, get_law
from bayes_dcpt.posterior.dynamics import DynamicsPosterior

__all__ = ["DynamicsConfig", "DynamicsFit", "choose_variant", "dynamics_prior_table", "fit_dynamics",
           "load_dynamics_fit", "select_momentum"]

#: Sharpness of the smooth L0 > 0 barrier (2% of the reference loss).
BARRIER_SHARPNESS = 50.0

_PRIORS: list[tuple[str, str, str]] = [
    ("level", "LogNormal(log L_base, 0.1)", "the law at the reference base point (CPT step 0): measured by the "
     "base-model rows (sd 0.3 without base rows)"),
    ("share_A", "logit-Normal(logit 0.1, 1.5)", "the forward term left at the far end of the data (largest S1pt + "
     "S1cpt) as a share of the base loss: CPT starts from a trained model"),
    ("drop_A", "LogNormal(log 0.02 L_ref, 1.5)", "the forward term's fall across the data's range of S1pt + S1cpt: "
     "a few percent of the loss"),
    ("alpha", "derived; prior factor LogNormal(log 0.5, 0.75)", "Wang et al. 0.497 and 0.510; Tissue et al. ~0.5"),
    ("C2 * max|S2cpt|", "LogNormal(log 0.02 L_ref, 1.5)", "the CPT annealing term is a few percent of the loss; "
     "C2 > 0 (annealing lowers the loss)"),
    ("C1 * span(S2pt)", "LogNormal(log 0.02 L_ref, 1.5)", "the PT annealing term's change across the data (the PT "
     "anneal's momentum carried into CPT); when S2pt does not vary, C1 = C2 e^rho with rho ~ Normal(0, 1)"),
    ("log(C1/C2)", "prior factor Normal(0, 1)", "Wang et al.'s fits have C1 = C2 within 10%"),
    ("|shift at max S1cpt|", "LogNormal(log 0.02 L_ref, 1.5), sign + general / - domain", "the distribution shift "
     "(Wang et al.: B > 0 for the general loss, B < 0 for the domain loss)"),
    ("E * max S1cpt", "LogNormal(log 2, 1.5)", "the shift saturates within or beyond the data (unit-free)"),
    ("beta", "LogNormal(log 0.3, 0.75)", "Wang et al. 0.189"),
    ("a1", "Normal(0, 1)", "replay variant; Wang et al. 0.055, sign free"),
    ("a2", "LogNormal(log 2, 1)", "replay variant; Wang et al. 3.238"),
    ("gamma1, gamma2", "Normal(0, 0.5)", "model-size variant; zero recovers Eq. 4"),
    ("F N_ref^-gamma3", "LogNormal(log 0.05 L_ref, 1.5)", "model-size variant; a Chinchilla-like size term"),
    ("gamma3", "LogNormal(log 0.34, 0.5)", "model-size variant; Chinchilla 0.34"),
    ("L0 > 0", "smooth barrier (2% softness)", "the irreducible loss is positive"),
]


def dynamics_prior_table(law: str = "cpt-dynamics-full") -> pd.DataFrame:
    """The priors of the dynamics fit of ``law``, as sampled, with their reasons."""
    use_n, use_r = VARIANTS[get_law(law).name]
    rows = []
    for name, prior, reason in _PRIORS:
        if name in ("a1", "a2") and not use_r:
            continue
        if name in ("gamma1, gamma2", "F N_ref^-gamma3", "gamma3") and not use_n:
            continue
        rows.append({"parameter": name, "prior": prior, "reason": reason})
    rows += [{"parameter": k, "prior": v[0], "reason": v[1]} for k, v in NOISE_PRIORS.items()
             if k in ("sigma", "tau", "nu")]
    return pd.DataFrame(rows)


# ============================================================================================== config
@dataclass(frozen=True)
class DynamicsConfig:
    """Everything that defines the model (hashed into the model card)."""

    law: str = "cpt-dynamics"
    target: str = "both"
    momentum: float = DEFAULT_MOMENTUM
    robust: bool = True
    run_effect: bool = True
    prior_scale: float = 1.0
    run_offsets: str = "marginal"  # per-run offsets integrated out ("marginal") or sampled ("latent")

    def key(self) -> str:
        """Short stable hash of the configuration."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def choose_variant(df: pd.DataFrame) -> str:
    """The law variant the data can inform: replay with several domain shares, N with several sizes."""
    cpt = df[df["tokens"] > 0]
    use_r = cpt["r_domain"].nunique() > 1
    use_n = df["n_params"].nunique() > 1
    return {(False, False): "cpt-dynamics", (True, False): "cpt-dynamics-n", (False, True): "cpt-dynamics-replay",
            (True, True): "cpt-dynamics-full"}[(use_n, use_r)]


# ============================================================================================== design
@dataclass
class _Design:
    targets: tuple[str, ...]
    domains: list[str]
    groups: list[tuple[str, str]]
    obs: pd.DataFrame
    runs: list[str]
    run_capacity: int
    ref: dict[str, np.ndarray]
    notes: list[str]

    def arrays(self) -> dict[str, np.ndarray]:
        o = self.obs
        out = {
            "g_idx": o["g_idx"].to_numpy(np.int64),
            "t_idx": o["t_idx"].to_numpy(np.int64),
            "run_idx": o["run_idx"].to_numpy(np.int64),
            "run_group": run_groups(self.runs, self.targets, self.run_capacity),
            "N": o["n_params"].to_numpy(float) / BILLION,
            "r_cpt": o["r_cpt"].to_numpy(float),
            "is_domain": o["is_domain"].to_numpy(float),
            "log_loss": np.log(o["loss"].to_numpy(float)),
        }
        for c in AREA_COLUMNS:
            out[c] = o[c].to_numpy(float)
        out.update({f"ref_{k}": np.asarray(v, float) for k, v in self.ref.items()})
        return out


def _design(df: pd.DataFrame, law: Law, cfg: DynamicsConfig) -> _Design:
    targets = _data.targets_of(cfg.target)
    feats = area_features(df, cfg.momentum)
    parts = []
    for t in targets:
        col = f"loss_{t}"
        sub = df[df[col].notna()]
        if sub.empty:
            continue
        f = feats.loc[sub.index]
        parts.append(pd.DataFrame({
            "target": t, "domain": sub["domain"].to_numpy(), "run_id": sub["run_id"].astype(str).to_numpy(),
            "n_params": sub["n_params"].to_numpy(float), "tokens": sub["tokens"].to_numpy(float),
            "step": sub["step"].to_numpy(np.int64),
            "r_cpt": np.nan_to_num(sub["r_domain"].to_numpy(float), nan=0.0),
            "is_domain": 1.0 if t == "domain" else 0.0, "loss": sub[col].to_numpy(float),
            "base_schedule": sub["base_schedule"].to_numpy(object), "row": sub.index.to_numpy(),
            **{c: f[c].to_numpy(float) for c in AREA_COLUMNS},
        }))
    if not parts:
        raise FitError("no losses to fit")
    long = pd.concat(parts, ignore_index=True)
    targets = tuple(t for t in targets if (long["target"] == t).any())
    domains = sorted(long["domain"].unique().tolist())
    groups = [(t, d) for t in targets for d in domains]
    long["t_idx"] = long["target"].map({t: i for i, t in enumerate(targets)})
    long["g_idx"] = [groups.index((t, d)) for t, d in zip(long["target"], long["domain"], strict=True)]
    runs, run_idx = np.unique((long["target"] + "::" + long["run_id"]).to_numpy(), return_inverse=True)
    long["run_idx"] = run_idx
    use_n, use_r = VARIANTS[law.name]
    notes: list[str] = []
    ref = {k: np.zeros(len(groups)) for k in ("level", "level_sd", "lref", "s_ref", "s_lo", "s_hi", "frac0",
                                              "s2_scale", "s1c_max", "r_max", "n_ref", "s2pt_ref", "sign",
                                              "is_domain", "s2pt_span", "r_own_ref")}
    for gi, (t, d) in enumerate(groups):
        sub = long[(long["target"] == t) & (long["domain"] == d)]
        if len(sub) < 4:
            raise FitError(f"{t} loss of domain {d!r}: only {len(sub)} measured points")
        cpt = sub[sub["step"] > 0]
        if cpt.empty:
            raise FitError(f"{t} loss of domain {d!r}: no CPT measurements (step > 0)")
        n_ref = float(sub["n_params"].max())
        at = sub[np.isclose(sub["n_params"], n_ref)]
        base_rows = at[at["step"] == 0]
        pt_spec = at["base_schedule"].iloc[0]
        a0 = phase_areas(None, schedule_of(pt_spec) if isinstance(pt_spec, str) else None, cfg.momentum)
        s_ref = a0.S1pt
        if s_ref <= 0:
            raise FitError(f"{t} loss of domain {d!r}: the base model has no pre-training schedule (S1pt = 0); "
                           "the CPT dynamics law needs it")
        if len(base_rows):
            level, level_sd = float(np.median(base_rows["loss"])), 0.1
        else:
            first = at[at["step"] == at["step"].min()]
            level, level_sd = float(np.median(first["loss"])), 0.3
            notes.append(f"{t}/{d}: no base-model rows; the start level's prior is wider (sd 0.3)")
        s_all = (sub["S1pt"] + sub["S1cpt"]).to_numpy(float)
        s_lo, s_hi = float(s_all.min()), float(s_all.max())
        if not s_hi > s_lo * (1 + 1e-9):
            raise FitError(f"{t} loss of domain {d!r}: the forward area does not vary in the data")
        s2 = np.abs(cpt["S2cpt"].to_numpy(float))
        s2_scale = float(s2.max()) if s2.max() > 1e-12 else 1.0
        if s2.max() <= 1e-12:
            notes.append(f"{t}/{d}: no LR change during CPT in the data (S2cpt = 0): C2 keeps its prior")
        s1c = float(cpt["S1cpt"].max())
        s2pt = sub["S2pt"].to_numpy(float)
        span = float(s2pt.max() - s2pt.min())
        r_own = cpt["r_cpt"].to_numpy(float) if t == "domain" else 1.0 - cpt["r_cpt"].to_numpy(float)
        r_max = float(cpt["r_cpt"].max()) if use_r else 1.0
        if use_r and r_max <= 0:
            r_max = 1.0
            notes.append(f"{t}/{d}: every run has r_domain = 0; the replay shift keeps its prior")
        ref["level"][gi], ref["level_sd"][gi] = level, level_sd
        ref["lref"][gi] = float(np.median(sub["loss"]))
        ref["s_ref"][gi], ref["s_lo"][gi], ref["s_hi"][gi] = s_ref, s_lo, s_hi
        ref["frac0"][gi] = float(np.clip(1.0 - (s_lo / s_hi) ** 0.5, 1e-4, 0.9))
        ref["s2_scale"][gi], ref["s1c_max"][gi], ref["r_max"][gi] = s2_scale, s1c, r_max
        ref["n_ref"][gi] = n_ref / BILLION
        ref["s2pt_ref"][gi] = float(a0.S2pt[0])
        ref["s2pt_span"][gi] = span if span > 1e-12 else 0.0
        ref["r_own_ref"][gi] = float(np.median(r_own)) if use_r else 0.0
        ref["sign"][gi] = 1.0 if t == "general" else -1.0
        ref["is_domain"][gi] = 1.0 if t == "domain" else 0.0
    if use_n and long["n_params"].nunique() < 2:
        raise FitError(f"law {law.name} needs at least two model sizes (the data have one); use cpt-dynamics or "
                       "cpt-dynamics-replay")
    return _Design(targets, domains, groups, long, list(runs), _capacity(len(runs)), ref, notes)


# =============================================================================================== model
_MODEL_CACHE: dict[tuple, dict[str, Any]] = {}


def _build_model(law: Law, cfg: DynamicsConfig, design: _Design):
    import pymc as pm
    import pytensor.tensor as pt

    use_n, use_r = VARIANTS[law.name]
    arr = design.arrays()
    ps = cfg.prior_scale
    labels = [f"{t}/{d}" for t, d in design.groups]
    coords = {"group": labels, "target": list(design.targets), "obs": np.arange(len(design.obs)),
              "run": np.arange(design.run_capacity)}
    with pm.Model(coords=coords) as model:
        g_idx = pm.Data("g_idx", arr["g_idx"], dims="obs")
        t_idx = pm.Data("t_idx", arr["t_idx"], dims="obs")
        run_idx = pm.Data("run_idx", arr["run_idx"], dims="obs")
        run_group = pm.Data("run_group", arr["run_group"], dims="run")
        x = {c: pm.Data(c, arr[c], dims="obs") for c in (*AREA_COLUMNS, "N", "r_cpt", "is_domain")}
        y = pm.Data("log_loss", arr["log_loss"], dims="obs")
        R = {k[4:]: pm.Data(k, v, dims="group") for k, v in arr.items() if k.startswith("ref_")}

        level = pt.exp(pm.Normal("log_level", pt.log(R["level"]), R["level_sd"] * ps, dims="group"))
        # the forward term through its value at the far end of the data (what is left to gain) and its
        # drop across the data (what the curves show); the exponent follows
        t_hi = level * pt.sigmoid(pm.Normal("logit_share_A", np.log(0.1 / 0.9), 1.5 * ps, dims="group"))
        drop = pt.exp(pm.Normal("log_drop_A", np.log(0.02) + pt.log(R["lref"]), 1.5 * ps, dims="group"))
        alpha = pt.log1p(drop / t_hi) / pt.log(R["s_hi"] / R["s_lo"])
        pm.Potential("prior_alpha", pm.logp(pm.Normal.dist(np.log(0.5), 0.75 * ps), pt.log(alpha)).sum())
        A = t_hi * pt.exp(alpha * pt.log(R["s_hi"]))
        t_ref = A * pt.exp(-alpha * pt.log(R["s_ref"]))
        # C2 through the CPT annealing term's size over the data, at the data's typical own ratio (replay
        # variant: e^(a1 r_own) is 1 there, so a1 and C2 do not trade off)
        c2_term = pt.exp(pm.Normal("log_c2_term", np.log(0.02) + pt.log(R["lref"]), 1.5 * ps, dims="group"))
        a1 = pm.Normal("a1_raw", 0.0, 1.0 * ps, dims="group") if use_r else None
        C2 = c2_term / R["s2_scale"] / (pt.exp(a1 * R["r_own_ref"]) if use_r else 1.0)
        # C1 through the change of its term across the data where S2pt varies (the PT anneal's momentum
        # carried into CPT); the paper's C1 ~ C2 enters as a prior factor on their ratio
        has_span = R["s2pt_span"] > 0
        c1_change = pt.exp(pm.Normal("log_c1_term", np.log(0.02) + pt.log(R["lref"]), 1.5 * ps, dims="group"))
        C1_ratio = C2 * pt.exp(pm.Normal("log_C1_over_C2", 0.0, 1.0 * ps, dims="group"))
        C1 = pt.switch(has_span, c1_change / pt.switch(has_span, R["s2pt_span"], 1.0), C1_ratio)
        pm.Potential("prior_C1_over_C2", pt.sum(pt.switch(
            has_span, pm.logp(pm.Normal.dist(0.0, 1.0 * ps), pt.log(C1 / C2)), 0.0)))
        kappa = pt.exp(pm.Normal("log_kappa", np.log(2.0), 1.5 * ps, dims="group"))
        E = kappa / R["s1c_max"]
        beta = pt.exp(pm.Normal("log_beta", np.log(0.3), 0.75 * ps, dims="group"))
        shift = R["sign"] * pt.exp(pm.Normal("log_shift", np.log(0.02) + pt.log(R["lref"]), 1.5 * ps, dims="group"))
        h_max = 1.0 - pt.exp(-beta * pt.log1p(kappa))
        p: dict[str, Any] = {"alpha": alpha, "A": A, "C1": C1, "C2": C2, "E": E, "beta": beta}
        g_max = 1.0
        if use_r:
            p["a1"] = a1
            p["a2"] = pt.exp(pm.Normal("log_a2", np.log(2.0), 1.0 * ps, dims="group"))
            dom, rm = R["is_domain"], R["r_max"]
            g_max = dom * (pt.exp(p["a2"] * rm) - 1.0) + (1.0 - dom) * (1.0 - pt.exp(-p["a2"] * rm))
        p["B"] = shift / (h_max * g_max)
        c1_ref = C1 * R["s2pt_ref"]
        f_ref = 0.0
        if use_n:
            p["gamma1"] = pm.Normal("gamma1_raw", 0.0, 0.5 * ps, dims="group")
            p["gamma2"] = pm.Normal("gamma2_raw", 0.0, 0.5 * ps, dims="group")
            p["gamma3"] = pt.exp(pm.Normal("log_gamma3", np.log(0.34), 0.5 * ps, dims="group"))
            f_ref = pt.exp(pm.Normal("log_f_term", np.log(0.05) + pt.log(R["lref"]), 1.5 * ps, dims="group"))
            p["F"] = f_ref * pt.exp(p["gamma3"] * pt.log(R["n_ref"]))
            c1_ref = c1_ref * pt.exp(p["gamma1"] * pt.log(R["n_ref"]))
        p["L0"] = level - t_ref + c1_ref - f_ref
        pm.Potential("L0_positive", pt.sum(pt.log(pt.sigmoid(BARRIER_SHARPNESS * p["L0"] / R["lref"]))))
        for par in law.params:
            pm.Deterministic(par.name, p[par.name] * pt.ones(len(design.groups)), dims="group")
        p_obs = {k: v[g_idx] for k, v in p.items()}
        xin = {c: x[c] for c in law.inputs}
        mu = pt.log(law.formula(pt, p_obs, xin))
        marginal = cfg.run_effect and cfg.run_offsets == "marginal"
        if cfg.run_effect:
            tau = pm.HalfNormal("tau", 0.01 * ps, dims="target")
            if not marginal:
                z_run = pm.Normal("z_run", 0.0, 1.0, dims="run")
                mu = mu + tau[t_idx] * z_run[run_idx]
        sigma = pm.LogNormal("sigma", np.log(0.004), 1.0 * ps, dims="target")
        if marginal:
            # the run offsets integrated out in closed form (bayes_dcpt.fitting.marginal)
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1, dims="target") if cfg.robust else None
            pm.Potential("obs_log_loss", run_loglik(y - mu, run_idx, run_group, sigma, tau, nu, design.run_capacity))
        elif cfg.robust:
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1, dims="target")
            pm.StudentT("obs_log_loss", nu=nu[t_idx], mu=mu, sigma=sigma[t_idx], observed=y, dims="obs",
                        shape=y.shape)
        else:
            pm.Normal("obs_log_loss", mu=mu, sigma=sigma[t_idx], observed=y, dims="obs", shape=y.shape)
    return model


def _get_model(law: Law, cfg: DynamicsConfig, design: _Design) -> dict[str, Any]:
    import pymc as pm

    key = (law.name, cfg.key(), design.targets, tuple(design.groups), design.run_capacity)
    arr = design.arrays()
    entry = _MODEL_CACHE.get(key)
    if entry is None:
        entry = {"model": _build_model(law, cfg, design), "nutpie": None}
        _MODEL_CACHE[key] = entry
    else:
        with entry["model"]:
            pm.set_data(arr, coords={"obs": np.arange(len(design.obs))})
    entry["arrays"] = arr
    return entry


def clear_model_cache() -> None:
    """Forget compiled dynamics models."""
    _MODEL_CACHE.clear()


# ================================================================================================= fit
def _ctx(df: pd.DataFrame, momentum: float) -> dict[str, Any]:
    base = {}
    tps = {}
    for (d, n), g in df.groupby(["domain", "n_params"]):
        base[(str(d), float(n))] = str(g["base_schedule"].iloc[0])
        cpt = g[g["step"] > 0]
        if len(cpt):
            ratio = cpt["tokens"].to_numpy(float) / cpt["step"].to_numpy(float)
            if np.allclose(ratio, ratio[0], rtol=1e-9):
                tps[(str(d), float(n))] = float(ratio[0])
    return {"momentum": float(momentum), "base_schedules": base, "tokens_per_step": tps}


def _posterior(idata, law: Law, groups: Sequence[tuple[str, str]], targets: Sequence[str], ctx: dict,
               reference: pd.DataFrame) -> DynamicsPosterior:
    post = idata["posterior"]

    def flat(name: str) -> np.ndarray:
        a = np.asarray(post[name])
        return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])

    params = {}
    for gi, (t, d) in enumerate(groups):
        params[(t, d)] = {par.name: flat(par.name)[:, gi] for par in law.params}
    noise = {}
    for ti, t in enumerate(targets):
        nz = {"sigma": flat("sigma")[:, ti]}
        nz["tau"] = flat("tau")[:, ti] if "tau" in post.data_vars else np.zeros_like(nz["sigma"])
        if "nu" in post.data_vars:
            nz["nu"] = flat("nu")[:, ti]
        noise[t] = nz
    return DynamicsPosterior(law, params, noise, ctx=ctx, reference=reference)


class DynamicsFit:
    """A Bayesian fit of the CPT dynamics law: posterior, diagnostics, curve predictions, decisions.

    Create with :func:`fit_dynamics` (or :func:`load_dynamics_fit`); never samples in ``__init__``.
    """

    def __init__(self, data: pd.DataFrame, law: Law, config: DynamicsConfig, idata: Any, *,
                 sampler_config: Mapping[str, Any], diagnostics: Diagnostics, groups: Sequence[tuple[str, str]],
                 notes: Sequence[str] = ()):
        self.data = data
        self.law = law
        self.config = config
        self.idata = idata
        self.sampler_config = dict(sampler_config)
        self._diagnostics = diagnostics
        self.groups = [tuple(g) for g in groups]
        self.targets = tuple(t for t in ("general", "domain") if any(g[0] == t for g in self.groups))
        self.domains = sorted({g[1] for g in self.groups})
        self.notes = list(notes)
        ctx = _ctx(data, config.momentum)
        if config.run_effect and config.robust and config.run_offsets == "marginal":
            ctx["run_mixing"] = 1.0  # a run's offset and noise share one Student-t scale (fitting.marginal)
        self.posterior = _posterior(idata, law, self.groups, self.targets, ctx, _data.base_losses(data))

    @property
    def var_names(self) -> list[str]:
        """The parameters reported by :meth:`summary` and checked by :meth:`diagnostics`."""
        post = self.idata["posterior"]
        return [p.name for p in self.law.params] + [n for n in ("sigma", "tau", "nu") if n in post.data_vars]

    def diagnostics(self, warn: bool = True) -> Diagnostics:
        """Divergences, R-hat max, ESS min (bulk and tail), BFMI min; warns loudly when any is bad."""
        d = self._diagnostics
        if warn and not d.ok:
            warnings.warn(f"bayes-dcpt dynamics fit diagnostics: {'; '.join(d.problems)}. Do not trust these "
                          "intervals before fixing this (more tuning/draws, or a simpler law variant).",
                          ConvergenceWarning, stacklevel=2)
        return d

    def summary(self, ci: float = CI_PROB) -> pd.DataFrame:
        """Posterior mean, sd, ``ci`` HDI, R-hat and ESS of every law and noise parameter."""
        return _summary(self.idata, self.var_names, self._diagnostics.approximate, ci)

    def predict(self, rows: pd.DataFrame | Mapping[str, Any], ci: float = CI_PROB, *, kind: str = "predictive",
                seed: int = 0) -> pd.DataFrame:
        """Bands for points of any runs (see :meth:`DynamicsPosterior.predict`)."""
        return self.posterior.predict(rows, ci, kind=kind, seed=seed)

    def curve(self, domain: str, n_params: float, r_domain: float, schedule: Any, *, ci: float = CI_PROB,
              kind: str = "predictive", base_schedule: Any = None, seed: int = 0) -> pd.DataFrame:
        """The whole predicted curve (every CPT step) of one run with ``schedule``."""
        rows = self.posterior.curve_rows(domain, n_params, r_domain, schedule, base_schedule=base_schedule)
        return self.posterior.predict(rows, ci, kind=kind, seed=seed)

    def log_likelihood(self) -> Any:
        """The pointwise log-likelihood group (computed once, on demand; needed for LOO)."""
        import pymc as pm

        if "log_likelihood" in self.idata.children:
            return self.idata["log_likelihood"]
        design = _design(self.data, self.law, self.config)
        if self.config.run_effect and self.config.run_offsets == "marginal":
            obs = design.obs.assign(r_domain=design.obs["r_cpt"])
            self.idata["log_likelihood"] = marginal_log_likelihood(self.idata, self.posterior, obs, self.targets)
        else:
            entry = _get_model(self.law, self.config, design)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pm.compute_log_likelihood(self.idata, model=entry["model"], progressbar=False)
        return self.idata["log_likelihood"]

    def loo(self):
        """PSIS-LOO of this fit (ArviZ ``ELPDData``): compare law variants or momenta on the same data."""
        self.log_likelihood()
        return _psis_loo(self.idata, pointwise=True)

    def choose(self, candidates: Any, **kwargs: Any):
        """Which schedule and replay ratio: sugar for :func:`bayes_dcpt.decide.choose_schedule`."""
        return hooks.call("choose_schedule", self, candidates, **kwargs)

    def card(self) -> dict[str, Any]:
        """The model card saved with the fit."""
        return {
            "package": "bayes-dcpt", "version": __version__, "law": self.law.name, "law_formula": self.law.title,
            "config": asdict(self.config), "config_key": self.config.key(),
            "priors": dynamics_prior_table(self.law.name).to_dict(orient="records"),
            "data_hash": _data.data_hash(self.data), "data_rows": len(self.data), "groups": self.groups,
            "sampler": self.sampler_config, "diagnostics": self._diagnostics.as_dict(), "notes": self.notes,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def save(self, path: str | Path) -> Path:
        """Write the fit to netCDF (posterior + model card + the fitted data with its schedules)."""
        return _write_fit_file(self.idata, self.data, [*_data.REQUIRED_COLUMNS[1:], *_data.LOSS_COLUMNS, "step"],
                               ("domain", "run_id", "schedule", "base_schedule"), self.card(), path)

    def __repr__(self) -> str:
        return (f"<DynamicsFit {self.law.name} groups={[f'{t}/{d}' for t, d in self.groups]} "
                f"draws={self.posterior.n_draws} diagnostics={'ok' if self._diagnostics.ok else 'BAD'}>")


def load_dynamics_fit(path: str | Path) -> DynamicsFit:
    """Read a fit written by :meth:`DynamicsFit.save` (predicts without PyMC compilation)."""
    path = Path(path)
    if not path.is_file():
        raise BayesDCPTError(f"no such fit file: {path}")
    tree, card, raw = _read_fit_file(path, "DynamicsFit.save")
    if card.get("law") not in DYNAMICS_LAWS:
        raise BayesDCPTError(f"{path}: a fit of law {card.get('law')!r}, not of the CPT dynamics law; "
                             "use bayes_dcpt.fitting.load_fit")
    for c in ("schedule", "base_schedule"):
        raw[c] = raw[c].map(lambda v: None if v == "" else v)
    df = load_dynamics(raw)
    if _data.data_hash(df) != card["data_hash"]:
        raise BayesDCPTError(f"{path}: the stored data does not match the model card's hash (file corrupted?)")
    diag = _diagnostics_from_card(card)
    cfg = DynamicsConfig(**{"run_offsets": "latent", **card["config"]})  # cards before the option: sampled
    return DynamicsFit(df, get_law(card["law"]), cfg, tree,
                       sampler_config=card["sampler"], diagnostics=diag, groups=card["groups"],
                       notes=card.get("notes", ()))


def select_momentum(data: Any, momenta: Sequence[float] = (0.999, 0.99, 0.95), *, law: str = "auto",
                    **fit_kwargs: Any) -> tuple[float, pd.DataFrame, dict[float, DynamicsFit]]:
    """Fit one model per annealing momentum and pick the best by PSIS-LOO on the same (training) data.

    The papers' 0.999 suits runs of tens of thousands of steps; short probes may need a shorter memory.
    Returns ``(best momentum, table of elpd_loo / se / p_loo / pareto k > 0.7 counts, {momentum: fit})``.
    """
    fits, rows = {}, []
    for lam in momenta:
        f = fit_dynamics(data, law, momentum=float(lam), **fit_kwargs)
        lo = f.loo()
        k = np.asarray(lo.pareto_k if lo.pareto_k is not None else [], float).ravel()
        fits[float(lam)] = f
        rows.append({"momentum": float(lam), "elpd_loo": float(lo.elpd), "se": float(lo.se),
                     "p_loo": float(lo.p), "pareto_k_gt_0.7": int((k > 0.7).sum()),
                     "diagnostics_ok": f.diagnostics(warn=False).ok})
    table = pd.DataFrame(rows).sort_values("elpd_loo", ascending=False).reset_index(drop=True)
    return float(table["momentum"].iloc[0]), table, fits


def fit_dynamics(
    data: Any,
    law: str = "auto",
    target: str = "both",
    *,
    momentum: float = DEFAULT_MOMENTUM,
    schedules: Mapping[str, Any] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    seed: int = 0,
    sampler: str = "nutpie",
    robust: bool = True,
    run_effect: bool = True,
    prior_scale: float = 1.0,
    run_offsets: str = "marginal",
    progressbar: bool = False,
    warn: bool = True,
    sampler_kwargs: Mapping[str, Any] | None = None,
) -> DynamicsFit:
    """Fit the CPT dynamics law as a Bayesian model and return a :class:`DynamicsFit`.

    Parameters
    ----------
    data
        Measurements with their schedules (file, frame or store; see :mod:`bayes_dcpt.data.dynamics`).
    law
        ``"auto"`` (default: the variant the data inform, :func:`choose_variant`), ``"cpt-dynamics"``
        (Eq. 4), ``"cpt-dynamics-n"`` (Eq. 7), ``"cpt-dynamics-replay"`` (Eq. 8) or ``"cpt-dynamics-full"``.
    target
        ``"both"``, ``"general"`` or ``"domain"``.
    momentum
        The annealing momentum lambda of S2 (0.999 as in the papers; runs of a few hundred steps may be
        better described by a shorter memory, e.g. 0.99: compare fits by their in-sample fit or LOO).
    schedules
        Optional ``name -> schedule`` mapping for names used in the schedule columns.
    draws, tune, chains, cores, seed, sampler, sampler_kwargs
        MCMC settings as in :func:`bayes_dcpt.fit` (nutpie by default).
    robust, run_effect, prior_scale
        Student-t likelihood; per-run offsets; a factor on every prior sd.
    """
    df = load_dynamics(data, schedules=schedules)
    name = choose_variant(df) if str(law).lower() == "auto" else get_law(law).name
    law_ = get_law(name)
    if law_.family != "cpt-dynamics":
        raise FitError(f"law {law_.name!r} is not a CPT dynamics law; use bayes_dcpt.fit for it")
    if sampler not in SAMPLERS:
        raise FitError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    for nm, v in (("draws", draws), ("tune", tune), ("chains", chains)):
        if int(v) < (0 if nm == "tune" else 1):
            raise FitError(f"{nm} must be positive, got {v}")
    cfg = DynamicsConfig(law=law_.name, target=target, momentum=float(momentum), robust=robust,
                         run_effect=run_effect, prior_scale=prior_scale, run_offsets=run_offsets)
    if run_offsets not in ("marginal", "latent"):
        raise FitError("run_offsets must be 'marginal' or 'latent'")
    phase_areas(None, None, cfg.momentum)  # validates the momentum
    design = _design(df, law_, cfg)
    cores = cores or min(chains, os.cpu_count() or 1)
    entry = _get_model(law_, cfg, design)
    t0 = time.perf_counter()
    idata = _sample(entry, sampler, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                    progressbar=progressbar, sampler_kwargs=sampler_kwargs)
    seconds = time.perf_counter() - t0
    names = [p.name for p in law_.params] + ["sigma", "tau", "nu"]
    diag = _diagnose(idata, sampler, names, seconds, draws, chains)
    sampler_config = {"sampler": sampler, "draws": draws, "tune": tune, "chains": chains, "cores": cores,
                      "seed": seed, "options": dict(sampler_kwargs or {})}
    res = DynamicsFit(df, law_, cfg, idata, sampler_config=sampler_config, diagnostics=diag, groups=design.groups,
                      notes=design.notes)
    if warn:
        res.diagnostics(warn=True)
    return res
