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
from bayes_dcpt.fitting.design import block_layout, run_blocks, run_capacity
from bayes_dcpt.fitting.likelihood import (
    checkpoint_sd,
    noise_group,
    noise_priors,
    noise_scope_words,
    run_sd,
    student_dof,
)
from bayes_dcpt.fitting.samplers import cached_entry
from bayes_dcpt.laws.base import BILLION
from bayes_dcpt.laws.cpt import general_learning, powered_share, replay, saturation
from bayes_dcpt.numerics.runblock import weighted_run_terms
from bayes_dcpt.posterior.base_law import BASE_PRIORS

__all__ = ["CPTDesign", "cpt_prior_table", "get_cpt_model", "make_cpt_design"]

#: Shape priors per target: (centre, sd) of log rho and log kappa (real probe grids: general rho ~ 10,
#: kappa 0.6-1.7; domain rho ~ 0.1-0.3, kappa 0.2-0.75).
_SHAPES = {"general": {"rho": (np.log(10.0), 1.5), "kappa": (np.log(0.8), 1.0)},
           "domain": {"rho": (np.log(0.15), 1.5), "kappa": (np.log(0.4), 0.8)}}
_MODEL_CACHE: dict[tuple, dict[str, Any]] = {}


def cpt_prior_table(cfg: FitConfig | None = None) -> pd.DataFrame:
    """The priors of the CPT law's Bayesian fit, as sampled, with their reasons.

    ``cfg``: the fit's configuration (the scope of rho and of the noise scales, the floor on nu); None: defaults.
    """
    per_domain = cfg is None or cfg.replay_scope == "domain"
    shared_rate = cfg is not None and cfg.rate_scope == "general"
    noise, scope = noise_priors(cfg), noise_scope_words(cfg)
    rho_why = ("the replay balance measured on real probe grids (general tokens undo forgetting ~10x faster; pull "
               "the domain plateau back ~0.15x)")
    if per_domain:
        rho_why += ("; per domain because it sets how the general loss's rise bends in r, which differs between "
                    "domains (the example grid: ~5 to ~23)")
    rows = [
        ("a (general)", "LogNormal(log 0.25, 1.2) per domain", "forgetting at s = 1 as a share of the base "
         "loss: a quarter, within a factor of ~7"),
        ("a (domain)", "logit-Normal(logit 0.3, 1.2) per domain", "the share of the base domain loss CPT can "
         "remove, in (0, 1)"),
        ("lam", "LogNormal(log 1/D_mid, 1.5) per domain", "the rate per billion tokens: the curves bend "
         "somewhere in the probed token range (D_mid its geometric middle)"),
        ("phi", "Normal(0, 1.5) per domain", "capability exponent of the amplitude; the base loss spans little, so "
         "weakly identified; not pooled (a learnt spread over a few domains is a funnel)"),
        ("psi", "Normal(0, 1.5) " + ("one for all domains (general loss), per domain (domain loss)" if shared_rate
                                      else "per domain"), "capability exponent of the rate; as phi"
         + ("; the general loss's one for all domains: per domain it is the loosest exponent, on a ridge with the "
            "rate, the amplitude and the transfer where two sizes are probed" if shared_rate else "")),
        ("rho", "LogNormal(log 10, 1.5) general; LogNormal(log 0.15, 1.5) domain"
         + (" per domain" if per_domain else " per target"), rho_why),
        ("kappa", "0.1 + LogNormal(log 0.8, 1) general; 0.1 + LogNormal(log 0.4, 0.8) domain", "the tail shape "
         "measured on real probe grids; the floor keeps the saturation from degenerating into a log"),
        ("h", "LogNormal(log 0.003, 1.5)", "continued learning of the general corpus: small, the base model was "
         "trained on it"),
        ("sc", "LogNormal(log 0.5, 1.5)", "critical domain-batch fraction: 0.2-2 on real probe grids"),
    ]
    if cfg is not None and cfg.share_power:
        rows.append(("eta_s", "LogNormal(0, 0.75) per domain", "the general loss's forgetting grows as s^eta_s: 1 is "
                     "linear in the domain share, below 1 the rise comes early in s (codec_tables: a point fit finds "
                     "0.13), within a factor of ~4"))
    if cfg is not None and cfg.transfer:
        rows.append(("xi", f"LogNormal(0, {cfg.xi_sd:g}) per domain", "the general loss keeps learning from the "
                     "domain tokens too, xi times as fast as from its own: a domain token teaches about as much, "
                     f"within a factor of ~{4 if cfg.xi_sd < 1 else 20} (point fits on the shuffled probe grids: "
                     "0-5; a wider prior lets a chain wander down a flat tail where the transfer switches off)"))
    if cfg is None or cfg.replay_size:
        rows.append(("chi", "Normal(0, 1.5) per domain", "the general loss's replay balance grows with the model's "
                     "capability, rho c^chi: as phi and psi (point fits on the probe grids: -0.1 to 2.8, so that the "
                     "forgetting of pure-domain CPT grows with N while that of mixed runs does not)"))
    if cfg is not None and cfg.rewarm:
        rows += [
            ("w", "LogNormal(log 0.01, 1.5)", "the general loss's re-warming rise at every mixture, a share of the "
             "base loss: the r = 0 runs of real probe grids sit 0.5-3% above their base after the warm-up"),
            ("phi_w", "Normal(0, 1.5)", "capability exponent of the rise (larger models rose more on the example "
             "grid); as phi"),
        ]
    rows += [
        ("sigma", f"{noise['sigma'][0]} {scope}", noise["sigma"][1] + ", when the loss has not moved from the base"
         + ("; each (target, domain) its own, so a domain the law misses does not widen the others' noise"
            if scope != "per target" else "")),
        ("sigma_move", "HalfNormal(0.2) per target", "the noise grows with the move from the base: sd^2 = sigma^2 + "
         "(sigma_move * |log L/L0|)^2 (real probe grids: 0.5% at small moves, ~2% beyond 10%)"),
        ("tau", f"{noise['tau'][0]} {scope}", noise["tau"][1] + " (integrated out)"),
        ("nu", f"{noise['nu'][0]} {scope}", noise["nu"][1]),
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
        """The named arrays of the model's ``pm.Data`` containers, laid out one row per run.

        Run-level inputs (target, domain, ratio, base losses) are ``(R, 1)`` columns, the checkpoints ``(R, K)``
        matrices padded to the longest run (``mask`` 0 in the padding):
        :class:`~bayes_dcpt.numerics.runblock.RunBlocks` says why.
        """
        o = self.obs
        blocks, runs = run_blocks(o)
        d = o["tokens"].to_numpy(float) / BILLION
        return runs | {
            "is_domain": blocks.column((o["target"] == "domain").to_numpy(float)),
            "s": blocks.column(o["r_domain"].to_numpy(float)),
            "L0": blocks.column(o["L0"].to_numpy(float)), "L0g": blocks.column(o["L0g"].to_numpy(float)),
            "D": blocks.matrix(d, 1.0), "logD": blocks.matrix(np.log1p(d / self.d_ref)),
            "log_loss": blocks.matrix(np.log(o["loss"].to_numpy(float))), "mask": blocks.mask(),
            "D_ref": np.asarray(self.d_ref, float), "loss_ref": self.lref.astype(float),
        }

    def layout(self, arrays: dict[str, np.ndarray] | None = None) -> tuple[bool, ...]:
        """Run-block layout (:func:`~bayes_dcpt.fitting.design.block_layout`): part of the compiled structure.

        ``arrays``: this design's :meth:`arrays` when the caller has them already (they are not built twice).
        """
        return block_layout(self.arrays() if arrays is None else arrays)


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
        raise cfg.nothing_to_fit(df)
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


def _rate_exponent(pm: Any, pt: Any, cfg: FitConfig, ps: float, gen: np.ndarray, nd: int) -> Any:
    """The rate's capability exponent ``psi`` as a (target, domain) tensor, the general loss's shared by the domains.

    Shared with ``cfg.rate_scope == "general"`` (the default with the transfer), otherwise one per (target, domain).
    Per domain, from the sizes of a probe grid, the general loss's is the loosest of the law's capability exponents:
    with the transfer on, python's general loss on the long grid's two smaller sizes left it at its prior's sd,
    along a ridge with the rate, the amplitude and the transfer (R-hat 1.08); one for all domains converges (R-hat
    1.004 in every seed tried) and each domain keeps its own rate ``lam``. The domain loss keeps one per domain: shared,
    its fit pushed the misfit into the domain loss's noise scales (BENCHMARKS.md, "The transfer with one rate
    exponent").
    """
    if cfg.rate_scope != "general" or not gen.any():
        return pm.Normal("psi", 0.0, 1.5 * ps, dims=("target", "domain"))
    shared = pm.Normal("psi_general", 0.0, 1.5 * ps) * pt.ones(nd)
    own = pm.Normal("psi_domain_loss", 0.0, 1.5 * ps, dims="domain") if not gen.all() else None
    return pm.Deterministic("psi", pt.stack([shared if g else own for g in gen]), dims=("target", "domain"))


def _law_params(pm: Any, pt: Any, design: CPTDesign, cfg: FitConfig) -> dict[str, Any]:
    """The law's parameters as (target, domain) tensors (``h`` and ``sc`` per target, unused by the other).

    ``rho`` is per (target, domain) or per target (``cfg.replay_scope``); ``psi`` per (target, domain), or the
    general loss's one for all domains (``cfg.rate_scope``); ``kappa`` per target.
    """
    ps = cfg.prior_scale
    nd = len(design.domains)
    gen = np.array([t == "general" for t in design.targets])
    amp_centre = np.where(gen, np.log(0.25), np.log(0.3 / 0.7))  # log a (general) / logit a (domain)
    log_amp = _per_domain(pm, "log_amp", amp_centre, 1.2 * ps, nd)
    log_lam = _per_domain(pm, "log_lam", np.full(len(gen), -np.log(design.d_ref)), 1.5 * ps, nd)
    shapes = {k: np.array([_SHAPES[t][k] for t in design.targets]) for k in ("rho", "kappa")}
    if cfg.replay_scope == "domain":  # each domain's own bend of the general loss's rise in r (it decides r*)
        log_rho = pm.Normal("log_rho", shapes["rho"][:, :1] * np.ones((1, nd)), shapes["rho"][:, 1:] * ps,
                            dims=("target", "domain"))
    else:
        log_rho = pm.Normal("log_rho", shapes["rho"][:, 0], shapes["rho"][:, 1] * ps, dims="target")
    log_kappa = pm.Normal("log_kappa", shapes["kappa"][:, 0], shapes["kappa"][:, 1] * ps, dims="target")
    ones = pt.ones((1, nd))
    amp_nat = pt.where(gen[:, None], pt.exp(log_amp), pt.sigmoid(log_amp))
    p = {
        "amp": pm.Deterministic("amp", amp_nat, dims=("target", "domain")),
        "lam": pm.Deterministic("lam", pt.exp(log_lam), dims=("target", "domain")),
        # the amplitude's capability exponent per domain, not pooled: a learnt spread over a handful of domains is
        # a funnel the sampler crawls through
        "phi": pm.Normal("phi", 0.0, 1.5 * ps, dims=("target", "domain")),
        "psi": _rate_exponent(pm, pt, cfg, ps, gen, nd),
        "rho": (pm.Deterministic("rho", pt.exp(log_rho), dims=("target", "domain")) if cfg.replay_scope == "domain"
                else pm.Deterministic("rho", pt.exp(log_rho), dims="target")[:, None] * ones),
        "kappa": pm.Deterministic("kappa", 0.1 + pt.exp(log_kappa), dims="target")[:, None] * ones,
    }
    # the general loss's continued learning and the domain loss's critical batch belong to one target each
    zero = pt.zeros((len(gen), nd))
    p["h"] = pm.LogNormal("h", np.log(0.003), 1.5 * ps) + zero if "general" in design.targets else zero
    p["sc"] = pm.LogNormal("sc", np.log(0.5), 1.5 * ps) + zero if "domain" in design.targets else zero + 1.0
    if cfg.share_power and "general" in design.targets:  # the forgetting's bend in s, each domain its own
        log_eta = pm.Normal("log_eta_s", 0.0, 0.75 * ps, dims="domain")
        p["eta_s"] = pt.where(gen[:, None], pm.Deterministic("eta_s", pt.exp(log_eta), dims="domain")[None, :], 1.0)
    if cfg.transfer and "general" in design.targets:  # the general loss also learns from domain tokens, per domain
        log_xi = pm.Normal("log_xi", 0.0, cfg.xi_sd * ps, dims="domain")
        p["xi"] = pt.where(gen[:, None], pm.Deterministic("xi", pt.exp(log_xi), dims="domain")[None, :], 0.0)
    if cfg.replay_size and "general" in design.targets:  # the general loss's replay grows with capability
        p["chi"] = pt.where(gen[:, None], pm.Normal("chi", 0.0, 1.5 * ps, dims="domain")[None, :], 0.0)
    if cfg.rewarm and "general" in design.targets:  # the general loss's re-warming rise (opt-in), one for all domains
        gen_col = pt.as_tensor(gen.astype(float))[:, None] * pt.ones((1, nd))
        p["w"] = pm.LogNormal("w", np.log(0.01), 1.5 * ps) * gen_col
        p["phi_w"] = pm.Normal("phi_w", 0.0, 1.5 * ps) * gen_col
    return p


def _mean(pt: Any, p: dict[str, Any], a: dict[str, Any], n_domains: int) -> Any:
    """``log(L / L0)`` at every checkpoint, ``(R, K)``: each run's coefficients once, then its checkpoints.

    Both targets share one form ``1 + c1 sat(x D; kappa) + c2 log(1 + D / D_ref)``: the general loss forgets
    (c1 > 0) balanced by replay, rises with the re-warmed learning rate (also in c1) and keeps learning its own
    corpus (c2 < 0); the domain loss learns (c1 < 0) with the critical-batch dilution and replay (c2 = 0).
    """
    cell = a["t_run"] * n_domains + a["d_run"]
    q = {k: pt.flatten(v)[cell][:, None] for k, v in p.items()}
    logc = pt.log(2.0 / a["L0g"])
    rate = q["lam"] * pt.exp(q["psi"] * logc)
    s = a["s"]
    u_g = s + replay(pt, q, logc) * (1.0 - s)
    share = s if "eta_s" not in q else powered_share(pt, s, q["eta_s"])  # s^eta_s (share_power)
    c1_g = q["amp"] * pt.exp(q["phi"] * logc) * (share / u_g)
    if "w" in q:  # the re-warming rise (rewarm=True): at every mixture, with the forgetting's saturation
        c1_g = c1_g + q["w"] * pt.exp(q["phi_w"] * logc)
    m = s * (1.0 + q["sc"]) / (s + q["sc"])
    u_d = m + q["rho"] * (1.0 - s)
    g = pt.sigmoid(pt.log(q["amp"] / (1.0 - q["amp"])) + q["phi"] * logc)
    dom = a["is_domain"] > 0.5
    c1 = pt.switch(dom, -g * (m / u_d), c1_g)
    c2 = pt.switch(dom, 0.0, -q["h"] * general_learning(s, q))
    x = rate * pt.switch(dom, u_d, u_g)
    return pt.log1p(c1 * saturation(pt, x * a["D"], q["kappa"]) + c2 * a["logD"])


def _likelihood(pm: Any, pt: Any, log_rel: Any, a: dict[str, Any], cfg: FitConfig, design: CPTDesign,
                ps: float) -> None:
    """Heteroscedastic run-block likelihood (offsets integrated out), Student-t with nu >= 2 when robust."""
    sigma = checkpoint_sd(pm, cfg)
    # the growth of the scatter with the move is one per target: per domain it is weakly identified (on the
    # example, python's domain loss: tail ESS 364 of 2000 draws) and it is a shape, not where a misfit hides
    sigma_move = pm.HalfNormal("sigma_move", 0.2 * ps, dims="target")
    tau = (run_sd(pm, cfg) if cfg.run_effect
           else pt.zeros(len(design.targets) * len(design.domains)))
    nu = student_dof(pm, cfg) if cfg.robust else None
    g = noise_group(cfg, a["t_run"], a["d_run"], len(design.domains))
    v = sigma[g][:, None] ** 2 + (sigma_move[a["t_run"]][:, None] * log_rel) ** 2
    e = a["log_loss"] - pt.log(a["L0"]) - log_rel
    mask = a["mask"]
    w = mask / v
    lp = weighted_run_terms(pt, pt.sum(w, axis=1), pt.sum(w * e, axis=1), pt.sum(w * e**2, axis=1),
                            pt.sum(mask * pt.log(v), axis=1), a["n_run"], tau[g] ** 2, None if nu is None else nu[g])
    pm.Potential("obs_log_loss", pt.sum(lp))


def build_cpt_model(cfg: FitConfig, design: CPTDesign, likelihood: bool = True) -> Any:
    """The PyMC model of the CPT law for ``design`` (every data array a ``pm.Data``)."""
    import pymc as pm
    import pytensor.tensor as pt

    coords = {"target": list(design.targets), "domain": list(design.domains), "obs": np.arange(len(design.obs))}
    ps = cfg.prior_scale
    with pm.Model(coords=coords) as model:
        # a run-level column keeps a static 1 so it broadcasts along the run's checkpoints
        a = {k: pm.Data(k, v, shape=(None, 1) if np.ndim(v) == 2 and np.shape(v)[1] == 1 else None)
             for k, v in design.arrays().items()}
        p = _law_params(pm, pt, design, cfg)
        log_rel = _mean(pt, p, a, len(design.domains))
        if likelihood:
            _likelihood(pm, pt, log_rel, a, cfg, design, ps)
        else:
            checkpoint_sd(pm, cfg)
    return model


def get_cpt_model(cfg: FitConfig, design: CPTDesign, likelihood: bool = True) -> dict[str, Any]:
    """A cached CPT model for this structure with the design's data set (no recompilation on new data)."""
    arrays = design.arrays()
    key = ("cpt", cfg.key(), design.targets, tuple(design.domains), design.run_capacity, design.layout(arrays),
           likelihood)
    return cached_entry(_MODEL_CACHE, key, lambda: build_cpt_model(cfg, design, likelihood), arrays,
                        len(design.obs))
