"""The PyMC model of the CPT learning-dynamics law (Wang et al. 2025): variant choice, design, model, model cache.

Every measured point of every run (base-model rows are CPT step 0) with its schedule areas ``S1pt, S1cpt, S2pt,
S2cpt`` is an observation; each (target, domain) group has its own law parameters, the noise is per target.
``MODEL.md`` beside this file gives the parameterisation and the reasons for the priors;
:func:`bayes_dcpt.fitting.priors.dynamics_prior_table` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.dynamics import AREA_COLUMNS, area_features, schedule_of
from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.config import DynamicsConfig
from bayes_dcpt.fitting.design import run_capacity
from bayes_dcpt.fitting.likelihood import add_noise_and_likelihood
from bayes_dcpt.fitting.marginal import run_groups
from bayes_dcpt.fitting.priors import BARRIER_SHARPNESS
from bayes_dcpt.fitting.samplers import cached_entry
from bayes_dcpt.laws.dynamics import VARIANTS
from bayes_dcpt.laws.lr_schedules import phase_areas
from bayes_dcpt.laws.registry import BILLION, Law

__all__ = ["DynamicsDesign", "build_dynamics_model", "choose_variant", "clear_model_cache", "get_dynamics_model",
           "make_dynamics_design"]

_REF_KEYS = ("level", "level_sd", "lref", "s_ref", "s_lo", "s_hi", "frac0", "s2_scale", "s1c_max", "r_max", "n_ref",
             "s2pt_ref", "sign", "is_domain", "s2pt_span", "r_own_ref")


def choose_variant(df: pd.DataFrame) -> str:
    """The law variant the data can inform: replay with several domain shares, N with several sizes."""
    cpt = df[df["tokens"] > 0]
    use_r = cpt["r_domain"].nunique() > 1
    use_n = df["n_params"].nunique() > 1
    return {(False, False): "cpt-dynamics", (True, False): "cpt-dynamics-n", (False, True): "cpt-dynamics-replay",
            (True, True): "cpt-dynamics-full"}[(use_n, use_r)]


# ============================================================================================== design
@dataclass
class DynamicsDesign:
    """Arrays fed to the dynamics model: observations, their groups and runs, per-group reference values."""

    targets: tuple[str, ...]
    domains: list[str]
    groups: list[tuple[str, str]]
    obs: pd.DataFrame
    runs: list[str]
    run_capacity: int
    ref: dict[str, np.ndarray]
    notes: list[str]

    def arrays(self) -> dict[str, np.ndarray]:
        """The named arrays of the model's ``pm.Data`` containers."""
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


def _long(df: pd.DataFrame, targets: tuple[str, ...], momentum: float) -> pd.DataFrame:
    """One row per (target, measured point) with the point's schedule areas."""
    feats = area_features(df, momentum)
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
    return pd.concat(parts, ignore_index=True)


def _group_reference(sub: pd.DataFrame, t: str, d: str, use_r: bool,
                     momentum: float) -> tuple[dict[str, float], list[str]]:
    """The reference values of one (target, domain) group's rows ``sub``, and notes on what the data lack."""
    notes: list[str] = []
    if len(sub) < 4:
        raise FitError(f"{t} loss of domain {d!r}: only {len(sub)} measured points")
    cpt = sub[sub["step"] > 0]
    if cpt.empty:
        raise FitError(f"{t} loss of domain {d!r}: no CPT measurements (step > 0)")
    n_ref = float(sub["n_params"].max())
    at = sub[np.isclose(sub["n_params"], n_ref)]
    base_rows = at[at["step"] == 0]
    pt_spec = at["base_schedule"].iloc[0]
    a0 = phase_areas(None, schedule_of(pt_spec) if isinstance(pt_spec, str) else None, momentum)
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
    s2pt = sub["S2pt"].to_numpy(float)
    span = float(s2pt.max() - s2pt.min())
    r_own = cpt["r_cpt"].to_numpy(float) if t == "domain" else 1.0 - cpt["r_cpt"].to_numpy(float)
    r_max = float(cpt["r_cpt"].max()) if use_r else 1.0
    if use_r and r_max <= 0:
        r_max = 1.0
        notes.append(f"{t}/{d}: every run has r_domain = 0; the replay shift keeps its prior")
    ref = {"level": level, "level_sd": level_sd, "lref": float(np.median(sub["loss"])), "s_ref": s_ref,
           "s_lo": s_lo, "s_hi": s_hi, "frac0": float(np.clip(1.0 - (s_lo / s_hi) ** 0.5, 1e-4, 0.9)),
           "s2_scale": s2_scale, "s1c_max": float(cpt["S1cpt"].max()), "r_max": r_max, "n_ref": n_ref / BILLION,
           "s2pt_ref": float(a0.S2pt[0]), "s2pt_span": span if span > 1e-12 else 0.0,
           "r_own_ref": float(np.median(r_own)) if use_r else 0.0, "sign": 1.0 if t == "general" else -1.0,
           "is_domain": 1.0 if t == "domain" else 0.0}
    return ref, notes


def make_dynamics_design(df: pd.DataFrame, law: Law, cfg: DynamicsConfig) -> DynamicsDesign:
    """The model's data arrays for the dynamics measurements ``df`` (validated) under ``cfg``."""
    long = _long(df, _data.targets_of(cfg.target), cfg.momentum)
    targets = tuple(t for t in _data.targets_of(cfg.target) if (long["target"] == t).any())
    domains = sorted(long["domain"].unique().tolist())
    groups = [(t, d) for t in targets for d in domains]
    long["t_idx"] = long["target"].map({t: i for i, t in enumerate(targets)})
    long["g_idx"] = [groups.index((t, d)) for t, d in zip(long["target"], long["domain"], strict=True)]
    runs, run_idx = np.unique((long["target"] + "::" + long["run_id"]).to_numpy(), return_inverse=True)
    long["run_idx"] = run_idx
    use_n, use_r = VARIANTS[law.name]
    notes: list[str] = []
    ref = {k: np.zeros(len(groups)) for k in _REF_KEYS}
    for gi, (t, d) in enumerate(groups):
        values, group_notes = _group_reference(long[(long["target"] == t) & (long["domain"] == d)], t, d, use_r,
                                               cfg.momentum)
        notes += group_notes
        for k, v in values.items():
            ref[k][gi] = v
    if use_n and long["n_params"].nunique() < 2:
        raise FitError(f"law {law.name} needs at least two model sizes (the data have one); use cpt-dynamics or "
                       "cpt-dynamics-replay")
    return DynamicsDesign(targets, domains, groups, long, list(runs), run_capacity(len(runs)), ref, notes)


# =============================================================================================== model
def _law_parameters(law: Law, R: dict[str, Any], ps: float) -> dict[str, Any]:
    """The law's parameters per group, sampled through what the data identify (see ``MODEL.md``)."""
    import pymc as pm
    import pytensor.tensor as pt

    use_n, use_r = VARIANTS[law.name]
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
    return p


def build_dynamics_model(law: Law, cfg: DynamicsConfig, design: DynamicsDesign) -> Any:
    """The PyMC model of the dynamics law ``law`` under ``cfg`` on ``design``'s data."""
    import pymc as pm
    import pytensor.tensor as pt

    arr = design.arrays()
    coords = {"group": [f"{t}/{d}" for t, d in design.groups], "target": list(design.targets),
              "obs": np.arange(len(design.obs)), "run": np.arange(design.run_capacity)}
    with pm.Model(coords=coords) as model:
        g_idx = pm.Data("g_idx", arr["g_idx"], dims="obs")
        t_idx = pm.Data("t_idx", arr["t_idx"], dims="obs")
        run_idx = pm.Data("run_idx", arr["run_idx"], dims="obs")
        run_group = pm.Data("run_group", arr["run_group"], dims="run")
        x = {c: pm.Data(c, arr[c], dims="obs") for c in (*AREA_COLUMNS, "N", "r_cpt", "is_domain")}
        y = pm.Data("log_loss", arr["log_loss"], dims="obs")
        R = {k[4:]: pm.Data(k, v, dims="group") for k, v in arr.items() if k.startswith("ref_")}
        p = _law_parameters(law, R, cfg.prior_scale)
        for par in law.params:
            pm.Deterministic(par.name, p[par.name] * pt.ones(len(design.groups)), dims="group")
        p_obs = {k: v[g_idx] for k, v in p.items()}
        mu = pt.log(law.formula(pt, p_obs, {c: x[c] for c in law.inputs}))
        add_noise_and_likelihood(mu, y, t_idx, run_idx, run_group, cfg, design.run_capacity)
    return model


# =============================================================================================== cache
_MODEL_CACHE: dict[tuple, dict[str, Any]] = {}


def get_dynamics_model(law: Law, cfg: DynamicsConfig, design: DynamicsDesign) -> dict[str, Any]:
    """A cached dynamics model for this structure with the design's data set (no recompilation on new data)."""
    key = (law.name, cfg.key(), design.targets, tuple(design.groups), design.run_capacity)
    return cached_entry(_MODEL_CACHE, key, lambda: build_dynamics_model(law, cfg, design), design.arrays(),
                        len(design.obs))


def clear_model_cache() -> None:
    """Forget compiled dynamics models."""
    _MODEL_CACHE.clear()
