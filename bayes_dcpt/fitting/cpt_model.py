"""The PyMC model of the base-anchored CPT law: design, priors and the heteroscedastic run-block likelihood.

Observations are the log losses of every CPT checkpoint, anchored at the base model's measured losses of their
(domain, size). Per target, the amplitude and the rate vary by domain (partial pooling), the shape parameters are
shared; the noise is heteroscedastic (the checkpoint scatter grows with how far the loss has moved from the base,
as measured on real probe grids), a run's checkpoints share an offset (integrated out), and its tails are a
Student-t whose degrees of freedom cannot fall below 2: robustness is for a few bad checkpoints, not for a curve
the law misses. (A size nobody probed gets its base loss from :mod:`bayes_dcpt.posterior.base_law`.) Priors and
reasons: :func:`cpt_prior_table` (and ``MODEL.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.config import FitConfig
from bayes_dcpt.fitting.design import run_capacity
from bayes_dcpt.fitting.marginal import run_groups
from bayes_dcpt.fitting.samplers import cached_entry
from bayes_dcpt.laws.base import BILLION
from bayes_dcpt.laws.cpt import saturation
from bayes_dcpt.numerics.runblock import weighted_run_terms
from bayes_dcpt.posterior.base_law import BASE_PRIORS

__all__ = ["CPTDesign", "cpt_prior_table", "get_cpt_model", "make_cpt_design"]

#: Shape priors per target: (centre, sd) of log rho and log kappa (real probe grids: general rho ~ 10,
#: kappa 0.6-1.7; domain rho ~ 0.1-0.3, kappa 0.2-0.75).
_SHAPES = {"general": {"rho": (np.log(10.0), 1.5), "kappa": (np.log(0.8), 1.0)},
           "domain": {"rho": (np.log(0.15), 1.5), "kappa": (np.log(0.4), 0.8)}}
NU_FLOOR = 2.0
_MODEL_CACHE: dict[tuple, dict[str, Any]] = {}


def cpt_prior_table() -> pd.DataFrame:
    """The priors of the CPT law's Bayesian fit, as sampled, with their reasons."""
    rows = [
        ("a (general)", "LogNormal(log 0.25, 1.2) per domain", "forgetting at s = 1 as a share of the base "
         "loss: a quarter, within a factor of ~7"),
        ("a (domain)", "logit-Normal(logit 0.3, 1.2) per domain", "the share of the base domain loss CPT can "
         "remove, in (0, 1)"),
        ("lam", "LogNormal(log 1/D_mid, 1.5) per domain", "the rate per billion tokens: the curves bend "
         "somewhere in the probed token range (D_mid its geometric middle)"),
        ("phi, psi", "Normal(0, 1.5) per domain", "capability exponents; the base loss spans little, so weakly "
         "identified; not pooled (a learnt spread over a few domains is a funnel)"),
        ("rho", "LogNormal(log 10, 1.5) general; LogNormal(log 0.15, 1.5) domain", "the replay balance measured "
         "on real probe grids (general tokens undo forgetting ~10x faster; pull the domain plateau back ~0.15x)"),
        ("kappa", "0.1 + LogNormal(log 0.8, 1) general; 0.1 + LogNormal(log 0.4, 0.8) domain", "the tail shape "
         "measured on real probe grids; the floor keeps the saturation from degenerating into a log"),
        ("h", "LogNormal(log 0.003, 1.5)", "continued learning of the general corpus: small, the base model was "
         "trained on it"),
        ("sc", "LogNormal(log 0.5, 1.5)", "critical domain-batch fraction: 0.2-2 on real probe grids"),
        ("sigma", "LogNormal(log 0.004, 1)", "checkpoint noise on the log scale when the loss has not moved"),
        ("sigma_move", "HalfNormal(0.2)", "the noise grows with the move from the base: sd^2 = sigma^2 + "
         "(sigma_move * |log L/L0|)^2 (real probe grids: 0.5% at small moves, ~2% beyond 10%)"),
        ("tau", "HalfNormal(0.01)", "per-run offset on the log scale (integrated out)"),
        ("nu", f"{NU_FLOOR:g} + Gamma(2, 0.1)", "Student-t degrees of freedom, floored at 2: heavy enough for a few "
         "bad checkpoints, never a licence for a curve the law misses (a finite variance is kept)"),
    ]
    rows += [(f"base law {k}", v[0], v[1]) for k, v in BASE_PRIORS.items()]
    return pd.DataFrame(rows, columns=["parameter", "prior", "reason"])


# ------------------------------------------------------------------------------------------ design
@dataclass
class CPTDesign:
    """Arrays fed to the CPT model (observations with their base losses, runs)."""

    targets: tuple[str, ...]
    domains: list[str]
    obs: pd.DataFrame
    runs: list[str]
    run_capacity: int
    lref: np.ndarray
    d_ref: float

    def arrays(self) -> dict[str, np.ndarray]:
        """The named arrays of the model's ``pm.Data`` containers."""
        o = self.obs
        return {
            "t_idx": o["t_idx"].to_numpy(np.int64), "d_idx": o["d_idx"].to_numpy(np.int64),
            "run_idx": o["run_idx"].to_numpy(np.int64),
            "run_group": run_groups(self.runs, self.targets, self.run_capacity),
            "is_domain": (o["target"] == "domain").to_numpy(float),
            "D": o["tokens"].to_numpy(float) / BILLION, "s": o["r_domain"].to_numpy(float),
            "L0": o["L0"].to_numpy(float), "L0g": o["L0g"].to_numpy(float),
            "log_loss": np.log(o["loss"].to_numpy(float)),
            "D_ref": np.asarray(self.d_ref, float), "loss_ref": self.lref.astype(float),
        }


def _attach_base(long: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Each observation's base losses (own target and general) from the base rows of its (domain, size)."""
    base = _data.base_losses(df)
    key = base.set_index(["domain", "n_params"])
    idx = pd.MultiIndex.from_arrays([long["domain"], long["n_params"].astype(float)])
    found = idx.isin(key.index)
    if not found.all():
        miss = long.loc[~found, ["domain", "n_params"]].drop_duplicates().iloc[0]
        raise FitError(f"the CPT law is anchored at the base model's losses: no base-model row (tokens == 0) for "
                       f"domain {miss['domain']!r} at n_params={miss['n_params']:.6g}")
    g = key.reindex(idx)["loss_general"].to_numpy(float)
    dom = key.reindex(idx)["loss_domain"].to_numpy(float)
    long = long.assign(L0g=g, L0=np.where(long["target"] == "domain", dom, g))
    bad = ~np.isfinite(long["L0"]) | ~np.isfinite(long["L0g"])
    if bad.any():
        r = long[bad].iloc[0]
        raise FitError(f"the CPT law needs both base losses: domain {r['domain']!r} at n_params="
                       f"{r['n_params']:.6g} has a base row without its {r['target']} or general loss")
    return long


def make_cpt_design(df: pd.DataFrame, cfg: FitConfig, run_slots: int | None = None) -> CPTDesign:
    """The CPT model's arrays for the measurements ``df`` (every own ratio fitted, the base rows as anchors).

    ``run_slots``: at least this many run slots (a refit on part of a fit's data keeps the fit's compiled model).
    """
    targets = _data.targets_of(cfg.target)
    long = _data.to_long(cfg.fitted_data(df), cfg.target)
    if long.empty:
        raise FitError("no CPT measurements to fit (every row has tokens == 0 or no loss)")
    domains = sorted(long["domain"].unique().tolist())
    long = _attach_base(long, df)
    long["t_idx"] = long["target"].map({t: i for i, t in enumerate(targets)})
    long["d_idx"] = long["domain"].map({d: i for i, d in enumerate(domains)})
    runs, run_idx = np.unique((long["target"] + "::" + long["run_id"]).to_numpy(), return_inverse=True)
    long["run_idx"] = run_idx
    for t in targets:
        if int((long["target"] == t).sum()) < 3:
            raise FitError(f"target {t}: fewer than 3 measured points")
    lref = np.array([float(np.median(long.loc[long["target"] == t, "loss"])) for t in targets])
    d = long["tokens"].to_numpy(float) / BILLION
    return CPTDesign(targets, domains, long.reset_index(drop=True), list(runs),
                     max(run_capacity(len(runs)), run_slots or 0), lref, float(np.exp(np.mean(np.log(d)))))


# ------------------------------------------------------------------------------------------- model
def _per_domain(pm: Any, name: str, mu: np.ndarray, sd: float, n_domains: int) -> Any:
    """A (target, domain) variable with its own prior per domain (``mu`` per target).

    Not pooled: every domain's curves identify its amplitude and rate, and a learnt spread over a handful of
    domains is a funnel the sampler crawls through (hyper-parameters with ESS of a few dozen per thousand draws).
    """
    return pm.Normal(name, np.asarray(mu, float)[:, None] * np.ones((1, n_domains)), sd, dims=("target", "domain"))


def _law_params(pm: Any, pt: Any, design: CPTDesign, ps: float) -> dict[str, Any]:
    """The law's parameters as (target, domain) tensors (``h`` and ``sc`` per target, unused by the other)."""
    nd = len(design.domains)
    gen = np.array([t == "general" for t in design.targets])
    amp_centre = np.where(gen, np.log(0.25), np.log(0.3 / 0.7))  # log a (general) / logit a (domain)
    log_amp = _per_domain(pm, "log_amp", amp_centre, 1.2 * ps, nd)
    log_lam = _per_domain(pm, "log_lam", np.full(len(gen), -np.log(design.d_ref)), 1.5 * ps, nd)
    shapes = {k: np.array([_SHAPES[t][k] for t in design.targets]) for k in ("rho", "kappa")}
    log_rho = pm.Normal("log_rho", shapes["rho"][:, 0], shapes["rho"][:, 1] * ps, dims="target")
    log_kappa = pm.Normal("log_kappa", shapes["kappa"][:, 0], shapes["kappa"][:, 1] * ps, dims="target")
    ones = pt.ones((1, nd))
    amp_nat = pt.where(gen[:, None], pt.exp(log_amp), pt.sigmoid(log_amp))
    p = {
        "amp": pm.Deterministic("amp", amp_nat, dims=("target", "domain")),
        "lam": pm.Deterministic("lam", pt.exp(log_lam), dims=("target", "domain")),
        # capability exponents per domain, not pooled: three sizes identify each, and a learnt spread over a
        # handful of domains is a funnel the sampler crawls through
        "phi": pm.Normal("phi", 0.0, 1.5 * ps, dims=("target", "domain")),
        "psi": pm.Normal("psi", 0.0, 1.5 * ps, dims=("target", "domain")),
        "rho": pm.Deterministic("rho", pt.exp(log_rho), dims="target")[:, None] * ones,
        "kappa": pm.Deterministic("kappa", 0.1 + pt.exp(log_kappa), dims="target")[:, None] * ones,
    }
    # the general loss's continued learning and the domain loss's critical batch belong to one target each
    zero = pt.zeros((len(gen), nd))
    p["h"] = pm.LogNormal("h", np.log(0.003), 1.5 * ps) + zero if "general" in design.targets else zero
    p["sc"] = pm.LogNormal("sc", np.log(0.5), 1.5 * ps) + zero if "domain" in design.targets else zero + 1.0
    return p


def _mean(pt: Any, p: dict[str, Any], a: dict[str, Any]) -> Any:
    """The law at every observation (both targets' forms; each observation takes its own target's)."""
    t, d = a["t_idx"], a["d_idx"]
    q = {k: v[t, d] for k, v in p.items()}
    logc = pt.log(2.0 / a["L0g"])
    sat_x = q["lam"] * pt.exp(q["psi"] * logc) * a["D"]
    s = a["s"]
    # general: forgetting balanced by replay, minus continued learning
    u_g = s + q["rho"] * (1.0 - s)
    gen = a["L0"] * (1.0 + q["amp"] * pt.exp(q["phi"] * logc) * (s / u_g) * saturation(pt, sat_x * u_g, q["kappa"])
                     - q["h"] * (1.0 - s) * pt.log1p(a["D"] / a["D_ref"]))
    # domain: learning with the critical-batch dilution and replay
    m = s * (1.0 + q["sc"]) / (s + q["sc"])
    u_d = m + q["rho"] * (1.0 - s)
    g = pt.sigmoid(pt.log(q["amp"] / (1.0 - q["amp"])) + q["phi"] * logc)
    dom = a["L0"] * (1.0 - g * (m / u_d) * saturation(pt, sat_x * u_d, q["kappa"]))
    return pt.switch(a["is_domain"] > 0.5, dom, gen)


def _likelihood(pm: Any, pt: Any, mu: Any, a: dict[str, Any], cfg: FitConfig, design: CPTDesign, ps: float) -> None:
    """Heteroscedastic run-block likelihood (offsets integrated out), Student-t with nu >= 2 when robust."""
    sigma = pm.LogNormal("sigma", np.log(0.004), 1.0 * ps, dims="target")
    sigma_move = pm.HalfNormal("sigma_move", 0.2 * ps, dims="target")
    tau = pm.HalfNormal("tau", 0.01 * ps, dims="target") if cfg.run_effect else pt.zeros(len(design.targets))
    nu = None
    if cfg.robust:
        nu_excess = pm.Gamma("nu_excess", alpha=2.0, beta=0.1, dims="target")
        nu = pm.Deterministic("nu", NU_FLOOR + nu_excess, dims="target")
    log_mu = pt.log(mu)
    v = sigma[a["t_idx"]] ** 2 + (sigma_move[a["t_idx"]] * (log_mu - pt.log(a["L0"]))) ** 2
    e = a["log_loss"] - log_mu
    zero = pt.zeros(design.run_capacity)
    ri = a["run_idx"]
    w0 = pt.inc_subtensor(zero[ri], 1.0 / v)
    w1 = pt.inc_subtensor(zero[ri], e / v)
    w2 = pt.inc_subtensor(zero[ri], e**2 / v)
    lv = pt.inc_subtensor(zero[ri], pt.log(v))
    n = pt.inc_subtensor(zero[ri], pt.ones_like(e))
    g = a["run_group"]
    lp = weighted_run_terms(pt, w0, w1, w2, lv, n, tau[g] ** 2, None if nu is None else nu[g])
    pm.Potential("obs_log_loss", pt.sum(lp))


def build_cpt_model(cfg: FitConfig, design: CPTDesign, likelihood: bool = True) -> Any:
    """The PyMC model of the CPT law for ``design`` (every data array a ``pm.Data``)."""
    import pymc as pm
    import pytensor.tensor as pt

    coords = {"target": list(design.targets), "domain": list(design.domains), "obs": np.arange(len(design.obs))}
    ps = cfg.prior_scale
    with pm.Model(coords=coords) as model:
        a = {k: pm.Data(k, v, dims="obs" if np.ndim(v) == 1 and len(v) == len(design.obs) and k != "run_group"
                        else None)
             for k, v in design.arrays().items()}
        p = _law_params(pm, pt, design, ps)
        mu = _mean(pt, p, a)
        if likelihood:
            _likelihood(pm, pt, mu, a, cfg, design, ps)
        else:
            pm.LogNormal("sigma", np.log(0.004), 1.0 * ps, dims="target")
    return model


def get_cpt_model(cfg: FitConfig, design: CPTDesign, likelihood: bool = True) -> dict[str, Any]:
    """A cached CPT model for this structure with the design's data set (no recompilation on new data)."""
    key = ("cpt", cfg.key(), design.targets, tuple(design.domains), design.run_capacity, likelihood)
    return cached_entry(_MODEL_CACHE, key, lambda: build_cpt_model(cfg, design, likelihood), design.arrays(),
                        len(design.obs))
