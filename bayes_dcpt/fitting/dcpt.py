"""Hierarchical Bayesian fits of the D-CPT and Cross-Domain laws in PyMC (the only module importing PyMC).

Quickstart::

    >>> import bayes_dcpt as bd
    >>> fit = bd.fit(bd.datasets.load_example(), law="dcpt", target="both", seed=1)
    >>> fit.diagnostics()            # R-hat, ESS, divergences, BFMI; warns loudly when bad
    >>> fit.summary()                # mean, sd, 90% HDI, R-hat, ESS per parameter
    >>> fit.predict(grid, ci=0.9)    # loss_general_mean/_lo/_hi, loss_domain_...
    >>> fit.save("fit.nc"); bd.load_fit("fit.nc")

The model
---------
Observations are the log losses of every CPT checkpoint (tokens > 0), general and domain loss stacked,
each with the law's own ratio (``1 - r_domain`` for the general loss, ``r_domain`` for the domain loss)::

    log L_i = log f_law(N_i, D_i, r_i; theta_{t,d}) + u_{t,run(i)} + e_i
    u_{t,run} ~ Normal(0, tau_t)          (per-run offset: a run's checkpoints are not independent)
    e_i ~ Normal(0, sigma_t)              (checkpoint noise)

The offsets are integrated out in closed form (``run_offsets="marginal"``, default): each run's vector of
log losses is multivariate normal with covariance ``sigma^2 I + tau^2 11'``, or, robust (default),
multivariate Student-t(nu_t) with that scale, i.e. one scale mixture per run, so that an outlying run is
down-weighted as a whole and every single measurement is Student-t. Sampled as latent variables
(``run_offsets="latent"``), the offsets of the runs that share a ratio trade off against the law's ratio
term and NUTS crawls (min ESS 24-54 against 800-1000 on the ~1,000-point benchmark, BENCHMARKS.md);
see :mod:`bayes_dcpt.fitting.marginal` for the algebra and the leave-one-out terms.

* **One domain**: the D-CPT Law per target with the priors below.
* **Several domains**: eps and eta are shared per target; the exponents alpha, beta, gamma are pooled
  tightly across domains (log-scale spread 0.15); the domain-specific parts (far-corner
  loss, term shares and drops, hence E, A, B, C) vary by domain with partial pooling:
  ``x_{t,d} ~ Normal(mu_x_t, sd_x_t)``, non-centred by default (the general loss is measured on one
  validation set for every domain, so its domain parts hardly differ and a centred hierarchy makes a
  funnel: 36 divergences against 0 on the example grid), centred as an option (better when every domain
  is measured precisely and differs, see ``../shared/pymc_notes.md``).
* **Cross-Domain law** (``law="cross-domain"``): every law parameter is shared and the domain enters
  through its DLC ``K``: ``log K_{t,d} ~ Normal(log(1/k1_d + rho_t k2_d), sigma_K_t)``, the paper's K3
  (``w1`` absorbed into ``F``) computed from the domain's own early measurements, with a learned deviation.

Parameterisation and priors (each with its reason; ``L_ref`` = median observed loss of the target)
----------------------------------------------------------------------------------------------------
Power laws with an offset (``E + A/N^alpha``) have curved posterior ridges between the offset, the
coefficient and the exponent when the data do not reach the asymptote; sampled naively, NUTS needs
hundreds of leapfrog steps per draw. The fit therefore samples, for every power-law term of the law
(``A/N^alpha``, ``B r^eta/D^beta``, ``C/(r+eps)^gamma``), the quantities the data identify:

* ``far_loss ~ LogNormal(log q10(loss), 0.5)``: the loss at the far corner of the data (largest N, D and
  ratio), near the lowest measured losses. With several domains the general loss's levels are pooled (one
  validation set for every domain); the domain loss's are not (``domain_levels="separate"``, default): each
  domain's loss is measured on its own validation text, whose entropy has nothing to do with another
  domain's, so each level gets its own prior centred on that domain's q10. Pooling them (``"pooled"``) also
  sampled worse on the example grid (R-hat 1.15 and min ESS 12 against 1.05 and 47, 2 x 500 draws);
* ``share_X``: the term's share of ``far_loss`` by stick-breaking (logit-normal, sd 1.5, centred on the
  coefficient priors of :mod:`bayes_dcpt.laws.registry`); ``E`` is the remainder, so every term stays positive;
* ``drop_X ~ LogNormal(log 0.05 L_ref, 1.5)``: the term's fall across the data's range of its axis.

The exponent follows (``alpha = log(1 + drop_A/a_far) / log(N_max/N_min)``) and the published values
enter as prior factors on it: alpha ~ LogNormal(log 0.34, 0.5) (Chinchilla 0.34, Epoch 0.348),
beta ~ LogNormal(log 0.3, 0.6) (Chinchilla 0.28, Epoch 0.366, Datablations 0.353), gamma ~
LogNormal(log 0.5, 0.8). eps ~ LogNormal(log 0.1, 0.75) ("typically near 0.1", the paper) and
eta = 1 + LogNormal(log 0.5, 1) (eta > 1, the paper) are sampled directly. The paper's C > C0 (dL/dr < 0
for D >= D_min, appendix E.3) is a smoothly truncated prior (2% softness): a hard reparameterisation
couples C to five other parameters and ruins the geometry. With one model size the N term cannot be
learnt: alpha keeps its prior. :func:`prior_table` lists every prior as sampled; it goes into each
saved model card. Noise priors:

* ``sigma_t ~ LogNormal(log 0.004, 1)``: checkpoint noise on the log scale; seed-to-seed spread in real
  data is 0.001-0.03 nats on losses of 2-4 nats (Datablations seed groups), i.e. 0.0003-0.01 relative;
  90% prior mass 0.0008-0.021.
* ``tau_t ~ HalfNormal(0.01)``: the per-run offset (relative), same evidence; median 0.007.
* ``nu_t ~ Gamma(2, 0.1)``: Student-t degrees of freedom (Juarez & Steel 2010), robust to outlying
  checkpoints; ``robust=False`` uses a Normal likelihood.
* hierarchical scales ``sd_X_t ~ HalfNormal(0.5)`` for the domain coordinates; the log exponents of the
  domains scatter around their pooled value with a fixed sd of 0.15 (domains share exponents up to about
  +-15%; exact sharing would leave each domain's E on a narrow curved ridge, and a learnt spread of a
  derived quantity makes a funnel); ``sigma_K_t ~ HalfNormal(0.5)`` (cross-domain).
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

from bayes_dcpt import hooks
from bayes_dcpt._version import __version__
from bayes_dcpt.constants import BFMI_MIN, CI_PROB, ESS_MIN, RHAT_MAX
from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.dlc import attach_features, dlc_features
from bayes_dcpt.errors import BayesDCPTError, ConvergenceWarning, FitError
from bayes_dcpt.fitting.marginal import marginal_log_likelihood, run_groups, run_loglik
from bayes_dcpt.laws.registry import BILLION, Law, Param, get_law
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["Diagnostics", "Fit", "FitConfig", "compare", "fit", "load_fit", "prior_table"]

MONOTONE_SHARPNESS = 50.0
#: Spread (sd of the log) of a derived exponent across domains around its pooled value: domains share their
#: exponents up to about +-15%.
EXPONENT_SPREAD = 0.15
#: nutpie settings chosen by measurement (BENCHMARKS.md): the low-rank mass matrix captures the remaining
#: linear correlations of the anchored parameterisation; target_accept 0.9 removes the rare divergences.
NUTPIE_DEFAULTS: dict[str, Any] = {"adaptation": "low_rank", "target_accept": 0.9}
SAMPLERS = ("nutpie", "pymc", "numpyro", "laplace", "advi")
NOISE_PRIORS = {
    "sigma": ("LogNormal(log 0.004, 1)", "checkpoint noise on log loss; seed spread 0.001-0.03 nats (Datablations)"),
    "tau": ("HalfNormal(0.01)", "per-run offset on log loss; same evidence; median 0.007"),
    "nu": ("Gamma(2, 0.1)", "Student-t degrees of freedom (Juarez & Steel 2010)"),
    "s_X": ("HalfNormal(0.5)", "spread of domain coefficients on the log scale (hierarchical)"),
    "sigma_K": ("HalfNormal(0.5)", "deviation of log K from the paper's K3 features (cross-domain)"),
}


# ----------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class FitConfig:
    """Everything that defines the model (hashed into the model card)."""

    law: str = "L3"
    target: str = "both"
    robust: bool = True
    run_effect: bool = True
    hierarchical: bool | None = None  # None: partial pooling whenever there are >= 2 domains
    parametrization: str = "noncentered"
    domain_levels: str = "separate"  # domain-loss far-corner levels: own per domain ("separate") or "pooled"
    monotone: bool = True
    probe_tokens: float | None = None
    prior_scale: float = 1.0  # multiplies every prior sd (sensitivity analyses)
    anchored: bool = True  # sample power-law terms through their values at the ends of the data range
    zero_ratio: bool = False  # fit observations whose own ratio is 0 (L3 is not meaningful there)
    run_offsets: str = "marginal"  # per-run offsets integrated out ("marginal") or sampled ("latent")

    def key(self) -> str:
        """Short stable hash of the configuration."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def prior_table(law: str | Law, anchored: bool = True) -> pd.DataFrame:
    """The priors of a law's Bayesian fit, as sampled, with their reasons (also in every saved model card)."""
    law = get_law(law)
    rows = []
    if law.power_terms and anchored:
        rows.append({"parameter": "far_loss", "prior": "LogNormal(log q10(loss), 0.5)",
                     "reason": "the loss at the far corner of the data (largest N, D and ratio) is near the "
                               "lowest measured losses; with several domains the general loss's levels are "
                               "pooled (one validation set), the domain loss's are each domain's own (q10 of "
                               "that domain: different validation texts have unrelated entropies)"})
        for c, (expo, axis) in law.power_terms.items():
            rows.append({"parameter": f"share_{c}", "prior": "logit-Normal(centre from the coefficient priors, 1.5)",
                         "reason": f"share of the far-corner loss taken by the {c} term (stick-breaking; E is the "
                                   "remainder, so every term stays positive)"})
            rows.append({"parameter": f"drop_{c}", "prior": "LogNormal(log 0.05 L_ref, 1.5)",
                         "reason": f"fall of the {c} term across the data's range of {axis}: a few percent of the "
                                   "loss, within two orders of magnitude"})
            p = law.param(expo)
            rows.append({"parameter": expo, "prior": f"derived; prior factor {p.prior.describe()}",
                         "reason": p.prior.reason})
        skip = {*law.power_terms, *(e for e, _ in law.power_terms.values()), "E"}
        for p in law.params:
            if p.name not in skip:
                rows.append({"parameter": p.name, "prior": p.prior.describe(), "reason": p.prior.reason})
        if any(p.lower is not None for p in law.params):
            rows.append({"parameter": "C > C0", "prior": "smooth truncation (2% softness)",
                         "reason": "the paper's monotonicity constraint dL/dr < 0 for D >= D_min (appendix E.3)"})
    else:
        rows = [{"parameter": p.name, "prior": p.prior.describe(), "reason": p.prior.reason} for p in law.params]
    rows += [{"parameter": k, "prior": v[0], "reason": v[1]} for k, v in NOISE_PRIORS.items()]
    return pd.DataFrame(rows)


def _coefficient(p: Param) -> bool:
    return p.prior.scale == "loss"


# ----------------------------------------------------------------------------------------- design
@dataclass
class _Design:
    """Arrays fed to the PyMC model (all through pm.Data so refits do not recompile)."""

    targets: tuple[str, ...]
    domains: list[str]
    obs: pd.DataFrame
    runs: list[str]
    run_capacity: int
    lref: np.ndarray
    d_min: float
    n_ref: float
    d_ref: float
    features: pd.DataFrame | None
    n_sizes: int
    r_ref: np.ndarray
    anchor_lo: np.ndarray
    anchor_hi: np.ndarray
    loss_lo: np.ndarray
    loss_lo_d: np.ndarray
    varying_axes: dict[str, tuple[str, ...]]

    def arrays(self) -> dict[str, np.ndarray]:
        o = self.obs
        out = {
            "t_idx": o["t_idx"].to_numpy(np.int64),
            "d_idx": o["d_idx"].to_numpy(np.int64),
            "run_idx": o["run_idx"].to_numpy(np.int64),
            "run_group": run_groups(self.runs, self.targets, self.run_capacity),
            "N": o["n_params"].to_numpy(float) / BILLION,
            "D": o["tokens"].to_numpy(float) / BILLION,
            "r": o["r"].to_numpy(float),
            "log_loss": np.log(o["loss"].to_numpy(float)),
            "loss_ref": self.lref.astype(float),
            "D_min": np.asarray(self.d_min, float),
            "N_ref": np.asarray(self.n_ref, float),
            "D_ref": np.asarray(self.d_ref, float),
            "r_ref": self.r_ref.astype(float),
            "anchor_lo": self.anchor_lo.astype(float),
            "anchor_hi": self.anchor_hi.astype(float),
            "loss_lo": self.loss_lo.astype(float),
            "loss_lo_d": self.loss_lo_d.astype(float),
        }
        if self.features is not None:
            f = self.features.set_index("domain").loc[self.domains]
            for k in ("k1", "k2", "k3"):
                v = f[k].to_numpy(float)
                out[k] = np.where(np.isfinite(v), v, 1.0)  # an unused feature may be missing (e.g. k3 for K3)
        return out


def _capacity(n: int) -> int:
    """Run capacity: a power of two with >= 50% headroom, so adding runs rarely changes the compiled shapes.

    Unused run offsets are sampled from their prior and touch no observation.
    """
    return int(max(8, 2 ** int(np.ceil(np.log2(max(1.5 * n, 1))))))


def _design(df: pd.DataFrame, law: Law, cfg: FitConfig) -> _Design:
    targets = _data.targets_of(cfg.target)
    long = _data.to_long(df, cfg.target)
    if not cfg.zero_ratio:
        # a loss measured with none of its own corpus in the mixture (general loss at r_domain = 1, domain
        # loss at r_domain = 0) lies below the paper's inflection ratio, where the law does not hold
        # (appendix I.3: "meaningless"); such rows are kept in the data but not fitted
        long = long[long["r"] > 0].reset_index(drop=True)
    if long.empty:
        raise FitError("no CPT measurements to fit (every row has tokens == 0 or no loss)")
    domains = sorted(long["domain"].unique().tolist())
    features = None
    if law.dlc is not None:
        if len(domains) < 2:
            raise FitError("the cross-domain law needs at least two domains")
        features = dlc_features(df, probe_tokens=cfg.probe_tokens, domains=domains)
        attach_features(long.head(0).assign(domain=pd.Series(dtype=str)), features, law.dlc_features)
        for k in law.dlc_features:
            bad = ~np.isfinite(features[k]) | (features[k] <= 0)
            if bad.any():
                raise FitError(f"DLC feature {k} is not positive for domain(s) {list(features.loc[bad, 'domain'])}")
    long["t_idx"] = long["target"].map({t: i for i, t in enumerate(targets)})
    long["d_idx"] = long["domain"].map({d: i for i, d in enumerate(domains)})
    run_key = long["target"] + "::" + long["run_id"]
    runs, run_idx = np.unique(run_key.to_numpy(), return_inverse=True)
    long["run_idx"] = run_idx
    n_per_target = [int((long["target"] == t).sum()) for t in targets]
    for t, n in zip(targets, n_per_target, strict=True):
        if n < 3:
            raise FitError(f"target {t}: only {n} measured points")
    lref = np.array([float(np.median(long.loc[long["target"] == t, "loss"])) for t in targets])
    pos = long["tokens"].to_numpy(float)
    nn = long["n_params"].to_numpy(float)
    return _Design(
        targets=targets, domains=domains, obs=long.reset_index(drop=True), runs=list(runs),
        run_capacity=_capacity(len(runs)), lref=lref, d_min=float(pos.min()) / BILLION,
        n_ref=float(np.exp(np.mean(np.log(nn / BILLION)))), d_ref=float(np.exp(np.mean(np.log(pos / BILLION)))),
        features=features, n_sizes=int(long["n_params"].nunique()),
        r_ref=np.array([_r_ref(long.loc[long["target"] == t, "r"].to_numpy(float)) for t in targets]),
        anchor_lo=np.array([_anchors(long[long["target"] == t])[0] for t in targets]),
        anchor_hi=np.array([_anchors(long[long["target"] == t])[1] for t in targets]),
        loss_lo=np.array([float(np.quantile(long.loc[long["target"] == t, "loss"], 0.1)) for t in targets]),
        loss_lo_d=np.array([[_q10(long, t, d) for d in domains] for t in targets]),
        varying_axes={"axes": _varying_axes(long)},
    )


def _q10(long: pd.DataFrame, target: str, domain: str) -> float:
    """10% quantile of one (target, domain)'s losses (the target's over all domains when it has none)."""
    v = long.loc[(long["target"] == target) & (long["domain"] == domain), "loss"]
    if not len(v):
        v = long.loc[long["target"] == target, "loss"]
    return float(np.quantile(v, 0.1))


def _anchors(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(N, D, r) at the low and high ends of the data (N, D in billions; r the positive ratios)."""
    n = rows["n_params"].to_numpy(float) / BILLION
    d = rows["tokens"].to_numpy(float) / BILLION
    r = rows["r"].to_numpy(float)
    rp = r[r > 0] if (r > 0).any() else np.array([0.5])
    return np.array([n.min(), d.min(), rp.min()]), np.array([n.max(), d.max(), rp.max()])


def _varying_axes(long: pd.DataFrame) -> tuple[str, ...]:
    """Axes with at least two distinct values in every target (a structural property of the model)."""
    out = []
    for axis, col in (("N", "n_params"), ("D", "tokens"), ("r", "r")):
        ok = True
        for _, g in long.groupby("target"):
            v = g[col].to_numpy(float)
            v = v[v > 0] if axis == "r" else v
            ok &= len(np.unique(v)) >= 2
        if ok:
            out.append(axis)
    return tuple(out)


def _r_ref(r: np.ndarray) -> float:
    """Reference ratio of a target: the median of its positive ratios (0.5 when there are none)."""
    pos = r[r > 0]
    return float(np.median(pos)) if pos.size else 0.5


# ------------------------------------------------------------------------------------------ model
_MODEL_CACHE: dict[tuple, dict[str, Any]] = {}


def _structure_key(law: Law, cfg: FitConfig, design: _Design) -> tuple:
    return (law.name, cfg.key(), design.targets, tuple(design.domains), design.run_capacity,
            design.varying_axes["axes"])


def _build_model(law: Law, cfg: FitConfig, design: _Design, likelihood: bool = True):
    import pymc as pm
    import pytensor.tensor as pt

    T, ND = len(design.targets), len(design.domains)
    arr = design.arrays()
    hier = (ND >= 2) if cfg.hierarchical is None else bool(cfg.hierarchical and ND >= 2)
    cross = law.dlc is not None
    ps = cfg.prior_scale
    coords = {"target": list(design.targets), "domain": list(design.domains), "obs": np.arange(len(design.obs)),
              "run": np.arange(design.run_capacity), "axis": ["N", "D", "r"]}
    with pm.Model(coords=coords) as model:
        t_idx = pm.Data("t_idx", arr["t_idx"], dims="obs")
        d_idx = pm.Data("d_idx", arr["d_idx"], dims="obs")
        run_idx = pm.Data("run_idx", arr["run_idx"], dims="obs")
        run_group = pm.Data("run_group", arr["run_group"], dims="run")
        N = pm.Data("N", arr["N"], dims="obs")
        D = pm.Data("D", arr["D"], dims="obs")
        r = pm.Data("r", arr["r"], dims="obs")
        y = pm.Data("log_loss", arr["log_loss"], dims="obs")
        lref = pm.Data("loss_ref", arr["loss_ref"], dims="target")
        dmin = pm.Data("D_min", arr["D_min"])
        n_ref = pm.Data("N_ref", arr["N_ref"])
        d_ref = pm.Data("D_ref", arr["D_ref"])
        r_ref = pm.Data("r_ref", arr["r_ref"], dims="target")
        anchor_lo = pm.Data("anchor_lo", arr["anchor_lo"], dims=("target", "axis"))
        anchor_hi = pm.Data("anchor_hi", arr["anchor_hi"], dims=("target", "axis"))
        loss_lo = pm.Data("loss_lo", arr["loss_lo"], dims="target")
        loss_lo_d = pm.Data("loss_lo_d", arr["loss_lo_d"], dims=("target", "domain"))

        full: dict[str, Any] = {}  # name -> (T, ND) tensor of natural values
        varies: dict[str, bool] = {}

        def rv(name: str, mu: Any, sd: float, varying: bool, pool_sd: float = 0.5) -> Any:
            """A (T, ND) Normal variable; partially pooled over domains when ``varying``."""
            if varying:
                mu_h = pm.Normal(f"mu_{name}", mu, sd, dims="target")
                s_h = pm.HalfNormal(f"sd_{name}", pool_sd, dims="target")
                if cfg.parametrization == "centered":
                    return pm.Normal(name, mu_h[:, None], s_h[:, None], dims=("target", "domain"))
                if cfg.parametrization == "mixed":
                    # Partial centring (Papaspiliopoulos, Roberts & Skold 2007) with weight w per target:
                    # u ~ Normal(w mu, s^w), x = (1 - w) mu + s^(1 - w) u; w = 1 is centred, w = 0 non-centred.
                    w = pt.as_tensor(np.array([1.0 if t == "domain" else 0.0 for t in design.targets]))[:, None]
                    m, sd_ = mu_h[:, None], s_h[:, None]
                    u = pm.Normal(f"u_{name}", w * m, sd_**w, dims=("target", "domain"))
                    return pm.Deterministic(name, (1.0 - w) * m + sd_ ** (1.0 - w) * u, dims=("target", "domain"))
                z = pm.Normal(f"z_{name}", 0.0, 1.0, dims=("target", "domain"))
                return pm.Deterministic(name, mu_h[:, None] + s_h[:, None] * z, dims=("target", "domain"))
            return pm.Normal(name, mu, sd, dims="target")[:, None] * pt.ones((1, ND))

        def log_center(par: Param) -> Any:
            return np.log(par.prior.center) + (pt.log(lref) if par.prior.scale == "loss" else pt.zeros(T))

        def direct(par: Param, varying: bool) -> Any:
            pr = par.prior
            if pr.kind in ("lognormal", "shifted_lognormal"):
                val = pt.exp(rv(f"log_{par.name}", log_center(par), pr.sd * ps, varying))
                return 1.0 + val if pr.kind == "shifted_lognormal" else val
            return rv(f"{par.name}_raw", pr.center * pt.ones(T), pr.sd * ps, varying)

        anchored = bool(law.power_terms) and cfg.anchored
        linear = list(law.linear) if (anchored or law.linear) else []
        exponents = {e for e, _ in law.power_terms.values()} if anchored else set()
        # 1. parameters sampled directly: shape parameters (eps, eta, ...) and, for laws without linear
        #    structure, everything. Shared across domains unless a loss-scaled coefficient in a hierarchy.
        dlc_slope = cross and anchored and "mu" in law.param_names and "F" in law.linear
        for par in law.params:
            if par.name in linear or par.name in exponents or (dlc_slope and par.name == "mu"):
                continue
            varying = hier and _coefficient(par) and not cross
            full[par.name] = direct(par, varying) * pt.ones((T, ND))
            varies[par.name] = varying
        if anchored:
            # 2a. Power-law terms through their values at the ends of the data's range of their axis. The loss
            #     at the far corner (largest N and D, largest ratio) is L_far = E + a_hi + b_hi + c_hi; it is
            #     split by stick-breaking into the terms' values there (E is the remainder), and each term's
            #     drop across the data range (a_lo - a_hi, ...) is sampled on the log scale. Exponents follow:
            #     alpha = log(1 + dA/a_hi) / log(N_hi/N_lo). Data identify L_far and the drops; what they do not
            #     identify (how far each curve still falls beyond the data) is then an axis-aligned direction,
            #     not a curved ridge, and NUTS needs few steps per draw.
            varying = hier and not cross
            lo = {a: anchor_lo[:, i][:, None] for i, a in enumerate(("N", "D", "r"))}  # (T, 1), broadcastable
            hi = {a: anchor_hi[:, i][:, None] for i, a in enumerate(("N", "D", "r"))}
            if varying and cfg.domain_levels == "separate" and "domain" in design.targets:
                # Each domain's loss is measured on its own validation set, so the domain-loss levels of
                # different domains are unrelated numbers (entropies of different texts): not pooled, each
                # centred on its own data. The general loss (one validation set) keeps the hierarchy.
                sep = pt.as_tensor(np.array([1.0 if t == "domain" else 0.0 for t in design.targets]))[:, None]
                mu_far = pm.Normal("mu_log_far_loss", pt.log(loss_lo), 0.5 * ps, dims="target")
                sd_far = pm.HalfNormal("sd_log_far_loss", 0.5, dims="target")
                z_far = pm.Normal("z_log_far_loss", 0.0, 1.0, dims=("target", "domain"))
                pooled = mu_far[:, None] + sd_far[:, None] * z_far
                own = pt.log(loss_lo_d) + 0.5 * ps * z_far
                log_far = pm.Deterministic("log_far_loss", sep * own + (1.0 - sep) * pooled,
                                           dims=("target", "domain"))
            else:
                log_far = rv("log_far_loss", pt.log(loss_lo), 0.5 * ps, varying)
            remaining = pt.exp(log_far)
            order = [c for c in ("B", "A", "C") if c in law.power_terms]
            if cross and "F" in law.linear:
                order.append("F")  # the DLC term at the domains' geometric-mean K (= 1) is part of the far loss
            centers = {c: law.param(c).prior.center for c in order}
            left = sum(centers.values()) + law.param("E").prior.center
            t_hi: dict[str, Any] = {}
            for c in order:
                share0 = centers[c] / left
                left -= centers[c]
                v = rv(f"share_{c}", np.log(share0 / (1 - share0)) * pt.ones(T), 1.5 * ps, varying)
                t_hi[c] = remaining * pt.sigmoid(v)
                remaining = remaining * pt.sigmoid(-v)
            full["E"] = remaining
            varies["E"] = varying
            for c in order:
                if c not in law.power_terms:
                    continue
                expo, axis = law.power_terms[c]
                pe = law.param(expo)
                if axis not in design.varying_axes["axes"]:
                    # one value on this axis: the exponent cannot be learnt from the data; its prior stands
                    full[expo] = direct(pe, False) * pt.ones((T, ND))
                else:
                    drop = pt.exp(rv(f"log_drop_{c}", np.log(0.05) + pt.log(lref), 1.5 * ps, varying))
                    if axis == "r":
                        span = pt.log((hi["r"] + full["eps"]) / (lo["r"] + full["eps"]))
                    else:
                        span = pt.log(hi[axis] / lo[axis])
                    full[expo] = pt.log1p(drop / t_hi[c]) / span * pt.ones((T, ND))
                    # the published exponent values enter as prior factors on the derived exponents
                    if varying:
                        # pooled with a fixed spread: a learnt spread would make a funnel that no
                        # non-centring can remove (the exponents are derived, not sampled)
                        mu_e = pm.Normal(f"mu_log_{expo}", np.log(pe.prior.center), pe.prior.sd * ps, dims="target")
                        ones = pt.ones((1, ND))
                        pm.Potential(f"prior_{expo}", pm.logp(pm.Normal.dist(mu_e[:, None] * ones,
                                                                             EXPONENT_SPREAD * ones),
                                                              pt.log(full[expo])).sum())
                    else:
                        pm.Potential(f"prior_{expo}", pm.logp(pm.Normal.dist(np.log(pe.prior.center),
                                                                             pe.prior.sd * ps),
                                                              pt.log(full[expo][:, 0])).sum())
                varies[expo] = varying and axis in design.varying_axes["axes"]
            if dlc_slope:
                # F and mu trade off (the domains' spread is ~ F mu log K): sample the slope g = F mu and
                # derive mu = g / F; mu's prior enters as a factor on the derived value
                pm_ = law.param("mu")
                log_g = rv("log_dlc_slope", np.log(pm_.prior.center * law.param("F").prior.center) + pt.log(lref),
                           1.5 * ps, False)
                full["mu"] = pt.exp(log_g) / t_hi["F"] * pt.ones((T, ND))
                varies["mu"] = False
                pm.Potential("prior_mu", pm.logp(pm.Normal.dist(np.log(pm_.prior.center), pm_.prior.sd * ps),
                                                 pt.log(full["mu"][:, 0])).sum())
            x_far = {"N": hi["N"] * pt.ones((1, ND)), "D": hi["D"] * pt.ones((1, ND)),
                     "r": hi["r"] * pt.ones((1, ND)), "K": pt.ones((T, ND))}
            terms = t_hi
            for n in linear:
                if n not in terms and n != "E":
                    pn = law.param(n)
                    terms[n] = pt.exp(rv(f"log_{n}", log_center(pn), pn.prior.sd * ps, False))
            ref_x = x_far
        elif linear:
            # 2b. Laws linear in some coefficients without power-term metadata: sample the terms' values at
            #     the reference point; the D-independent ones through their sum and stick-breaking shares.
            varying = hier and not cross
            ref_x = {"N": n_ref, "D": d_ref, "r": r_ref[:, None] * pt.ones((1, ND)), "K": pt.ones((T, ND))}
            terms = {}
            level = list(law.level)
            if level:
                log_level = rv("log_level", np.log(0.8) + pt.log(lref), 0.5 * ps, varying)
                remaining = pt.exp(log_level)
                centers = {n: law.param(n).prior.center for n in level}
                left = sum(centers.values())
                for n in level:
                    if n == "E":
                        continue
                    share0 = centers[n] / left
                    left -= centers[n]
                    v = rv(f"share_{n}", np.log(share0 / (1 - share0)) * pt.ones(T), 1.5 * ps, varying)
                    terms[n] = remaining * pt.sigmoid(v)
                    remaining = remaining * pt.sigmoid(-v)
                terms["E"] = remaining
            for n in linear:
                if n not in terms:
                    pn = law.param(n)
                    terms[n] = pt.exp(rv(f"log_{n}_term", log_center(pn), pn.prior.sd * ps, varying))
        if linear:
            zeros = {n: pt.zeros((T, ND)) for n in linear}

            def factor(name: str) -> Any:
                return law.formula(pt, {**full, **zeros, name: pt.ones((T, ND))}, ref_x) * pt.ones((T, ND))

            for n in linear:  # law order: B is natural before C's lower bound needs it
                if n == "E" and anchored:
                    continue
                par = law.param(n)
                coef = terms[n] / factor(n) if n != "E" else terms[n]
                if par.lower is not None and cfg.monotone:
                    # the paper's constraint (e.g. C > C0) as a smoothly truncated prior: a hard
                    # reparameterisation C = C0 + excess couples C to B, beta, eta, gamma and eps so tightly
                    # that NUTS needs hundreds of steps per draw; the barrier has 2% softness.
                    low = par.lower(pt, full, {"D_min": dmin})
                    pm.Potential(f"{n}_above_lower_bound",
                                 pt.sum(pt.log(pt.sigmoid(MONOTONE_SHARPNESS * (coef / low - 1.0)))))
                full[n] = coef * pt.ones((T, ND))
                varies.setdefault(n, hier and not cross)
        for par in law.params:
            val = full[par.name]
            dims = ("target", "domain") if varies[par.name] else ("target",)
            pm.Deterministic(par.name, val if varies[par.name] else val[:, 0], dims=dims)

        x = {"N": N, "D": D, "r": r}
        if cross:
            k_feats = {k: pm.Data(k, arr[k], dims="domain")[None, :] for k in ("k1", "k2", "k3")}
            p_t = {k: v[:, :1] for k, v in full.items()}
            # only F K^-mu is identified: K is normalised to geometric mean 1 over the fitted domains (F is
            # the DLC term of the average domain) and its learnt deviations sum to zero
            log_k_feat = pt.log(law.dlc(pt, p_t, k_feats)) * pt.ones((T, ND))
            log_k_mean = log_k_feat - pt.mean(log_k_feat, axis=1, keepdims=True)
            sigma_k = pm.HalfNormal("sigma_K", 0.5 * ps, dims="target")
            zk = pm.ZeroSumNormal("z_K", sigma=1.0, dims=("target", "domain"), n_zerosum_axes=1)
            log_k = log_k_mean + sigma_k[:, None] * zk
            K = pm.Deterministic("K", pt.exp(log_k), dims=("target", "domain"))
            x["K"] = K[t_idx, d_idx]
        p_obs = {k: v[t_idx, d_idx] for k, v in full.items()}
        mu_obs = pt.log(law.formula(pt, p_obs, x))
        marginal = cfg.run_effect and cfg.run_offsets == "marginal"
        if cfg.run_effect:
            tau = pm.HalfNormal("tau", 0.01 * ps, dims="target")
            if not marginal:
                z_run = pm.Normal("z_run", 0.0, 1.0, dims="run")
                mu_obs = mu_obs + tau[t_idx] * z_run[run_idx]
        sigma = pm.LogNormal("sigma", np.log(0.004), 1.0 * ps, dims="target")
        if not likelihood:
            if cfg.robust:
                pm.Gamma("nu", alpha=2.0, beta=0.1, dims="target")
        elif marginal:
            # the run offsets integrated out in closed form (see bayes_dcpt.fitting.marginal)
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1, dims="target") if cfg.robust else None
            pm.Potential("obs_log_loss", run_loglik(y - mu_obs, run_idx, run_group, sigma, tau, nu,
                                                    design.run_capacity))
        elif cfg.robust:
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1, dims="target")
            pm.StudentT("obs_log_loss", nu=nu[t_idx], mu=mu_obs, sigma=sigma[t_idx], observed=y, dims="obs",
                        shape=y.shape)
        else:
            pm.Normal("obs_log_loss", mu=mu_obs, sigma=sigma[t_idx], observed=y, dims="obs", shape=y.shape)
    return model


def _get_model(law: Law, cfg: FitConfig, design: _Design, likelihood: bool = True) -> dict[str, Any]:
    """A cached model for this structure with the design's data set (no recompilation on new data)."""
    import pymc as pm

    key = (*_structure_key(law, cfg, design), likelihood)
    entry = _MODEL_CACHE.get(key)
    arr = design.arrays()
    if entry is None:
        entry = {"model": _build_model(law, cfg, design, likelihood), "nutpie": None, "n_obs": len(design.obs)}
        _MODEL_CACHE[key] = entry
    else:
        with entry["model"]:
            pm.set_data({k: v for k, v in arr.items()}, coords={"obs": np.arange(len(design.obs))})
    entry["arrays"] = arr
    return entry


def clear_model_cache() -> None:
    """Forget compiled models (tests use this to measure cold paths)."""
    _MODEL_CACHE.clear()


# -------------------------------------------------------------------------------------- sampling
def _sample(entry: dict[str, Any], sampler: str, *, draws: int, tune: int, chains: int, cores: int, seed: int,
            progressbar: bool, sampler_kwargs: Mapping[str, Any] | None = None) -> Any:
    import pymc as pm

    model = entry["model"]
    if sampler == "nutpie":
        import nutpie

        if entry["nutpie"] is None:
            entry["nutpie"] = nutpie.compile_pymc_model(model)
        known = {var.name for var in entry["nutpie"].shared_var_keys}
        compiled = entry["nutpie"].with_data(**{k: v for k, v in entry["arrays"].items() if k in known})
        opts = {**NUTPIE_DEFAULTS, **(sampler_kwargs or {})}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                                  progress_bar=progressbar, **opts)
        return idata
    if sampler in ("pymc", "numpyro"):
        if sampler == "numpyro":
            try:
                import numpyro  # noqa: F401
            except ImportError as exc:
                raise FitError("sampler 'numpyro' needs the numpyro extra: pip install 'bayes-dcpt[numpyro]'") from exc
        nuts = {"target_accept": 0.9, **({"dense_mass": True} if sampler == "numpyro" else {}), **(sampler_kwargs or {})}
        with model:
            return pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                             nuts_sampler=sampler, progressbar=progressbar, compute_convergence_checks=False,
                             nuts=nuts)
    if sampler == "advi":
        with model:
            approx = pm.fit(n=30000, method="advi", random_seed=seed, progressbar=progressbar,
                            obj_optimizer=pm.adam(learning_rate=0.01))
            idata = approx.sample(draws * chains, random_seed=seed)
        return idata
    if sampler == "laplace":
        return _laplace(entry, draws=draws * chains, seed=seed)
    raise FitError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")


def _laplace(entry: dict[str, Any], *, draws: int, seed: int) -> Any:
    """Laplace approximation in the unconstrained space: MAP (L-BFGS) + inverse Hessian, then the deterministics.

    The compiled log-density and deterministic functions are cached with the model, so an interactive refit
    costs an optimisation and ~2 x (number of parameters) gradient evaluations.
    """
    import arviz as az
    from scipy.optimize import minimize

    model = entry["model"]
    value_vars = model.value_vars
    if "laplace" not in entry:
        import pytensor
        import pytensor.tensor as pt

        lp = model.logp(jacobian=True)
        grad = pt.concatenate([pt.flatten(g) for g in pytensor.grad(lp, value_vars)])
        fn_lp = model.compile_fn([lp, grad], inputs=value_vars, point_fn=False)
        outs = list(model.free_RVs) + list(model.deterministics)
        fn_det = model.compile_fn(model.replace_rvs_by_values(outs), inputs=value_vars, point_fn=False,
                                  on_unused_input="ignore")
        entry["laplace"] = (fn_lp, fn_det, outs)
    fn_lp, fn_det, outs = entry["laplace"]
    ip = model.initial_point()
    names = [v.name for v in value_vars]
    shapes = [np.shape(ip[n]) for n in names]
    sizes = [int(np.prod(sh)) for sh in shapes]

    def unpack(x):
        out, i = [], 0
        for s, sh in zip(sizes, shapes, strict=True):
            out.append(x[i:i + s].reshape(sh))
            i += s
        return out

    def negf(x):
        lp, g = fn_lp(*unpack(x))
        if not np.isfinite(lp):
            return 1e20, np.zeros_like(x)
        return -float(lp), -np.asarray(g, float)

    x0 = np.concatenate([np.ravel(ip[n]) for n in names]).astype(float)
    res = minimize(negf, x0, jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    x = res.x
    n = x.size
    H = np.empty((n, n))
    h = 1e-5
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        H[:, j] = (negf(x + e)[1] - negf(x - e)[1]) / (2 * h)
    H = (H + H.T) / 2
    w, V = np.linalg.eigh(H)
    cov = (V / np.maximum(w, 1e-10)) @ V.T
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal(x, cov, size=draws, method="eigh")
    res_d: dict[str, list] = {o.name: [] for o in outs}
    for row in X:
        for o, v in zip(outs, fn_det(*unpack(row)), strict=True):
            res_d[o.name].append(v)
    dims = {o.name: list(model.named_vars_to_dims.get(o.name, ())) for o in outs}
    post = {k: np.asarray(v)[None] for k, v in res_d.items()}
    coords = {k: np.asarray(v) for k, v in model.coords.items() if v is not None}
    return az.from_dict({"posterior": post}, dims=dims, coords=coords)


# ---------------------------------------------------------------------------------- diagnostics
@dataclass(frozen=True)
class Diagnostics:
    """Sampler diagnostics of a fit; ``ok`` is False when any threshold is crossed."""

    sampler: str
    divergences: int
    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    bfmi_min: float
    draws: int
    chains: int
    seconds: float
    approximate: bool = False
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when R-hat, ESS, divergences and BFMI are all in the safe range."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (used in model cards and reports)."""
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def __str__(self) -> str:
        head = "OK" if self.ok else "PROBLEMS: " + "; ".join(self.problems)
        if self.approximate:
            return f"{self.sampler} (approximate, no MCMC diagnostics): {head}"
        return (f"{self.sampler}, {self.chains} chains x {self.draws} draws, {self.seconds:.1f} s: "
                f"divergences {self.divergences}, R-hat max {self.rhat_max:.4f}, ESS bulk min "
                f"{self.ess_bulk_min:.0f}, ESS tail min {self.ess_tail_min:.0f}, BFMI min {self.bfmi_min:.2f} -> {head}")


def _diagnose(idata, sampler: str, var_names: list[str], seconds: float, draws: int, chains: int) -> Diagnostics:
    import arviz as az

    approximate = sampler in ("laplace", "advi")
    if approximate:
        return Diagnostics(sampler, 0, float("nan"), float("nan"), float("nan"), float("nan"), draws, chains,
                           seconds, True, (f"{sampler} is an approximation: no convergence diagnostics; "
                                           "check against NUTS before trusting intervals",))
    post = idata["posterior"]
    names = [v for v in var_names if v in post.data_vars]
    rh = az.rhat(idata, var_names=names)
    eb = az.ess(idata, var_names=names, method="bulk")
    et = az.ess(idata, var_names=names, method="tail")

    def _vals(obj):
        ds = obj["posterior"].to_dataset() if hasattr(obj, "children") and "posterior" in obj.children else obj
        if hasattr(ds, "to_dataset"):
            ds = ds.to_dataset()
        return np.concatenate([np.ravel(np.asarray(ds[n])) for n in names if n in ds])

    rhat_max = float(np.nanmax(_vals(rh)))
    ess_b = float(np.nanmin(_vals(eb)))
    ess_t = float(np.nanmin(_vals(et)))
    ss = idata["sample_stats"] if "sample_stats" in idata.children else None
    div = int(np.asarray(ss["diverging"]).sum()) if ss is not None and "diverging" in ss else 0
    try:
        bf = az.bfmi(idata)
        bfmi_min = float(np.nanmin(np.asarray(bf.to_dataset().to_array() if hasattr(bf, "to_dataset") else bf)))
    except Exception:  # energy not recorded by this sampler
        bfmi_min = float("nan")
    problems = []
    if div > 0:
        problems.append(f"{div} divergent transitions")
    if rhat_max > RHAT_MAX:
        problems.append(f"R-hat {rhat_max:.3f} > {RHAT_MAX}")
    if ess_b < ESS_MIN or ess_t < ESS_MIN:
        problems.append(f"ESS {min(ess_b, ess_t):.0f} < {ESS_MIN}")
    if np.isfinite(bfmi_min) and bfmi_min < BFMI_MIN:
        problems.append(f"BFMI {bfmi_min:.2f} < {BFMI_MIN}")
    return Diagnostics(sampler, div, rhat_max, ess_b, ess_t, bfmi_min, draws, chains, seconds, False,
                       tuple(problems))


# ------------------------------------------------------------------------------------------- Fit
def _posterior_from_idata(idata, law: Law, targets: Sequence[str], domains: Sequence[str], ctx: dict,
                          reference: pd.DataFrame, cross: bool) -> Posterior:
    post = idata["posterior"]

    def flat(name: str) -> np.ndarray:
        da = post[name]
        arr = np.asarray(da)
        return arr.reshape(arr.shape[0] * arr.shape[1], *arr.shape[2:])

    params: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for ti, t in enumerate(targets):
        for di, d in enumerate(domains):
            p = {}
            for par in law.params:
                v = flat(par.name)
                p[par.name] = v[:, ti, di] if v.ndim == 3 else v[:, ti]
            if cross:
                p["K"] = flat("K")[:, ti, di]
            params[(t, d)] = p
    noise: dict[str, dict[str, np.ndarray]] = {}
    for ti, t in enumerate(targets):
        nz = {"sigma": flat("sigma")[:, ti]}
        nz["tau"] = flat("tau")[:, ti] if "tau" in post.data_vars else np.zeros_like(nz["sigma"])
        if "nu" in post.data_vars:
            nz["nu"] = flat("nu")[:, ti]
        noise[t] = nz
    return Posterior(law, params, noise, ctx=dict(ctx), reference=reference)


def _summary(idata, var_names: Sequence[str], approximate: bool, ci: float) -> pd.DataFrame:
    """ArviZ summary with a ``ci`` HDI; R-hat and ESS only for MCMC (an approximation has none)."""
    import arviz as az

    if approximate:
        return az.summary(idata, var_names=list(var_names), kind="stats", ci_kind="hdi", ci_prob=ci)
    return az.summary(idata, var_names=list(var_names), ci_kind="hdi", ci_prob=ci)


def _psis_loo(idata, pointwise: bool = False):
    """PSIS-LOO of a posterior whose ``log_likelihood`` group is present."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return az.loo(idata, pointwise=pointwise) if pointwise else az.loo(idata)


def _text_column(values: pd.Series) -> np.ndarray:
    """Strings for netCDF: missing values (None, NaN) as ""."""
    return values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)) \
        .to_numpy().astype(object)


def _write_fit_file(idata, data: pd.DataFrame, numeric: Sequence[str], text: Sequence[str],
                    card: Mapping[str, Any], path: str | Path) -> Path:
    """Write a posterior (without its log-likelihood), the fitted data and the model card to netCDF, atomically.

    ``numeric`` and ``text`` name the data columns stored as floats and as strings; :func:`_read_fit_file`
    reads the file back.
    """
    import xarray as xr

    path = Path(path)
    tree = idata.copy()
    if "log_likelihood" in tree.children:
        del tree["log_likelihood"]
    ds = xr.Dataset({c: ("row", data[c].to_numpy(float)) for c in numeric})
    for c in text:
        ds[c] = ("row", _text_column(data[c]))
    tree["bayes_dcpt_data"] = xr.DataTree(ds)
    tree.attrs["bayes_dcpt_card"] = json.dumps(card, default=str)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tree.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, path)
    return path


def _read_fit_file(path: Path, writer: str) -> tuple[Any, dict[str, Any], pd.DataFrame]:
    """Read a file of :func:`_write_fit_file`: (posterior tree without the data, model card, raw data frame).

    Every failure is one :class:`BayesDCPTError` naming the file; ``writer`` names the method that writes
    such files (for the message when the file is netCDF but not ours).
    """
    import xarray as xr

    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except Exception as exc:
        raise BayesDCPTError(f"{path}: not a readable bayes-dcpt fit (netCDF): {str(exc).splitlines()[0]}") from exc
    card_json = tree.attrs.get("bayes_dcpt_card")
    if card_json is None or "bayes_dcpt_data" not in tree.children or "posterior" not in tree.children:
        raise BayesDCPTError(f"{path}: not a bayes-dcpt fit (no model card); was it written by {writer}?")
    ds = tree["bayes_dcpt_data"].to_dataset()
    raw = pd.DataFrame({c: ds[c].values for c in ds.data_vars})
    del tree["bayes_dcpt_data"]
    return tree, json.loads(card_json), raw


def _diagnostics_from_card(card: Mapping[str, Any]) -> Diagnostics:
    return Diagnostics(**{k: (tuple(v) if k == "problems" else v) for k, v in card["diagnostics"].items()
                          if k != "ok"})


class Fit:
    """A Bayesian fit of one law to CPT measurements: the posterior, its diagnostics and what follows.

    Create with :func:`fit` (or :func:`load_fit`); never samples in ``__init__``.
    """

    def __init__(self, data: pd.DataFrame, law: Law, config: FitConfig, idata: Any, *,
                 sampler_config: Mapping[str, Any], diagnostics: Diagnostics, design: _Design | None = None):
        self.data = data
        self.law = law
        self.config = config
        self.idata = idata
        self.sampler_config = dict(sampler_config)
        self._diagnostics = diagnostics
        self._design = design
        self.targets = _data.targets_of(config.target)
        self.domains = list(design.domains) if design is not None else sorted(
            _data.to_long(data, config.target)["domain"].unique().tolist())
        self.features = dlc_features(data, probe_tokens=config.probe_tokens, domains=self.domains) \
            if law.dlc is not None else None
        ctx = {"D_min": float(np.asarray(idata["constant_data"]["D_min"])) if "constant_data" in idata.children
               and "D_min" in idata["constant_data"] else float(_data.fit_rows(data)["tokens"].min() / BILLION)}
        if config.run_effect and config.robust and config.run_offsets == "marginal":
            ctx["run_mixing"] = 1.0  # a run's offset and noise share one Student-t scale (see fitting.marginal)
        self.posterior = _posterior_from_idata(idata, law, self.targets, self.domains, ctx,
                                               _data.base_losses(data), law.dlc is not None)

    # -------------------------------------------------------------------------------- reporting
    @property
    def var_names(self) -> list[str]:
        """The parameters reported by :meth:`summary` and checked by :meth:`diagnostics`."""
        post = self.idata["posterior"]
        names = [p.name for p in self.law.params]
        names += [n for n in ("K", "sigma_K", "sigma", "tau", "nu") if n in post.data_vars]
        names += [str(n) for n in post.data_vars if str(n).startswith(("mu_", "sd_"))]
        return names

    def diagnostics(self, warn: bool = True) -> Diagnostics:
        """Divergences, R-hat max, ESS min (bulk and tail), BFMI min; warns loudly when any is bad."""
        d = self._diagnostics
        if warn and not d.ok:
            warnings.warn(f"bayes-dcpt fit diagnostics: {'; '.join(d.problems)}. Do not trust these intervals "
                          f"before fixing this ({'; '.join(self.remedies())}).",
                          ConvergenceWarning, stacklevel=2)
        return d

    def remedies(self) -> list[str]:
        """What to try when the diagnostics are bad, most specific first (from this fit's model and data)."""
        out = []
        cpt = self.data[self.data["tokens"] > 0] if "tokens" in self.data else self.data
        runs = cpt["run_id"].nunique() if "run_id" in cpt else 0
        if self.config.run_effect and 0 < runs < 8:
            out.append(f"only {runs} runs: a per-run offset is hardly identified beside the checkpoint noise, "
                       "try run_effect=False")
        if self.config.run_effect and self.config.run_offsets == "latent":
            out.append("sampled run offsets: try run_offsets='marginal' (integrated out; 4-7x the ESS)")
        if self.config.run_effect and self.config.run_offsets == "marginal" and not self.config.robust:
            out.append("Normal likelihood with integrated run offsets: try robust=True (outlying checkpoints made "
                       "it diverge on the example grid) or run_offsets='latent'")
        if len(self.domains) >= 2 and self.config.domain_levels == "pooled":
            out.append("several domains: try domain_levels='separate' (each domain's own domain-loss level)")
        out.append("more tuning and draws, sampler_kwargs={'target_accept': 0.95}, or a simpler law")
        return out

    def summary(self, ci: float = CI_PROB, var_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Posterior mean, sd, ``ci`` HDI, R-hat and ESS of every reported parameter."""
        return _summary(self.idata, var_names or self.var_names, self._diagnostics.approximate, ci)

    def predict(self, frame: pd.DataFrame, ci: float = CI_PROB, *, kind: str = "predictive",
                seed: int = 0) -> pd.DataFrame:
        """Posterior predictive bands for any (domain, n_params, tokens, r_domain) rows.

        ``kind="predictive"`` includes a new run's offset and the checkpoint noise; ``kind="mean"`` is the
        band of the law itself. Returns ``loss_<target>_mean``, ``_lo``, ``_hi`` for each fitted target.
        """
        return self.posterior.predict(frame, ci, kind=kind, seed=seed)

    def prior_predictive(self, draws: int = 500, seed: int = 0) -> Posterior:
        """Draws of the prior as a :class:`Posterior` (same law and noise model): plot curves, check plausibility.

        The prior includes factors written as potentials (the published exponent values, C > C0), so it is
        sampled by NUTS on the model without its likelihood (forward sampling would ignore them).
        """

        entry = _get_model(self.law, self.config, self.design, likelihood=False)
        idata = _sample(entry, "nutpie", draws=max(1, draws // 2), tune=500, chains=2, cores=2, seed=seed,
                        progressbar=False)
        return _posterior_from_idata(idata, self.law, self.targets, self.domains, self.posterior.ctx,
                                     self.posterior.reference, self.law.dlc is not None)

    @property
    def design(self) -> _Design:
        """The model's data arrays (rebuilt from the data after loading)."""
        if self._design is None:
            self._design = _design(self.data, self.law, self.config)
        return self._design

    @property
    def model(self):
        """The PyMC model (built or fetched from the cache, with this fit's data)."""
        return _get_model(self.law, self.config, self.design)["model"]

    def log_likelihood(self) -> Any:
        """The pointwise log-likelihood group (computed once, on demand; needed for LOO).

        With the run offsets integrated out the model does not factorise over checkpoints; the pointwise
        terms are then ``log p(y_i | y_-i, theta)``, the leave-one-out predictive of a checkpoint given the
        rest of its run (Burkner, Gabry & Vehtari 2021), see :mod:`bayes_dcpt.fitting.marginal`.
        """
        import pymc as pm

        if "log_likelihood" in self.idata.children:
            return self.idata["log_likelihood"]
        if self.config.run_effect and self.config.run_offsets == "marginal":
            self.idata["log_likelihood"] = marginal_log_likelihood(self.idata, self.posterior, self.design.obs,
                                                                   self.targets)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pm.compute_log_likelihood(self.idata, model=self.model, progressbar=False)
        return self.idata["log_likelihood"]

    def loo(self):
        """PSIS-LOO of this fit (ArviZ ``ELPDDataLOO``)."""
        self.log_likelihood()
        return _psis_loo(self.idata)

    # ------------------------------------------------------------------------ decisions and planning
    def optimize(self, usage: str = "tradeoff", **inputs: Any):
        """Answer one of the paper's usages per posterior draw: sugar for :func:`bayes_dcpt.decide.optimize`.

        ``usage``: ``"tradeoff"`` (largest r_domain within a general-loss threshold), ``"limited-data"``,
        ``"compute"`` or ``"critical-curve"``. Returns a :class:`~bayes_dcpt.decide.Decision` (or one per
        domain) with ``.posterior``, ``.summary()`` and ``.plot()``.
        """
        return hooks.call("optimize", self, usage, **inputs)

    def suggest(self, candidates: Any, target: Any = "tradeoff", *, k: int = 3, budget: float | None = None,
                cost_model: Any = None, **kwargs: Any):
        """Which probes to run next, a ranked and budgeted batch: sugar for :func:`bayes_dcpt.plan.suggest`.

        ``target`` is a usage name (``"tradeoff"``, ``"limited-data"``, ``"compute"``) whose inputs (e.g.
        ``n_params``, ``tokens``, ``max_general_increase``, ``domain``) are passed as keyword arguments, or
        any planner :class:`~bayes_dcpt.plan.Target`. ``budget`` is in GPU-hours.
        """
        return hooks.call("suggest", self, candidates, target, k=k, budget_gpu_hours=budget,
                          cost_model=cost_model, **kwargs)

    def card(self) -> dict[str, Any]:
        """The model card saved with the fit."""
        return {
            "package": "bayes-dcpt",
            "version": __version__,
            "law": self.law.name,
            "law_formula": self.law.title,
            "config": asdict(self.config),
            "config_key": self.config.key(),
            "priors": prior_table(self.law, self.config.anchored).to_dict(orient="records"),
            "data_hash": _data.data_hash(self.data),
            "data_rows": len(self.data),
            "targets": list(self.targets),
            "domains": self.domains,
            "sampler": self.sampler_config,
            "diagnostics": self._diagnostics.as_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def save(self, path: str | Path) -> Path:
        """Write the fit to netCDF (DataTree + model card + the fitted data); :func:`load_fit` reads it."""
        return _write_fit_file(self.idata, self.data, [*_data.REQUIRED_COLUMNS[1:], *_data.LOSS_COLUMNS],
                               ("domain", "run_id"), self.card(), path)

    def __repr__(self) -> str:
        return (f"<Fit {self.law.name} targets={list(self.targets)} domains={self.domains} "
                f"draws={self.posterior.n_draws} diagnostics={'ok' if self._diagnostics.ok else 'BAD'}>")


def bayesian_refit(law: str = "dcpt", target: str = "both", **fit_kwargs: Any):
    """``refit(data) -> Posterior`` by NUTS (compiled model cached across calls), for the planner loop."""

    def refit(df: pd.DataFrame) -> Posterior:
        kw = {"draws": 500, "tune": 500, "chains": 2, "warn": False, **fit_kwargs}
        return fit(df, law, target, **kw).posterior

    return refit


def load_fit(path: str | Path) -> Fit:
    """Read a fit written by :meth:`Fit.save`; it predicts without refitting (no PyMC compile needed)."""
    path = Path(path)
    if not path.is_file():
        raise BayesDCPTError(f"no such fit file: {path}")
    tree, card, raw = _read_fit_file(path, "Fit.save")
    df = _data.load(raw)
    # cards written before an option existed were fitted with its old behaviour
    cfg = FitConfig(**{"domain_levels": "pooled", "run_offsets": "latent", **card["config"]})
    law = get_law(card["law"])
    diag = _diagnostics_from_card(card)
    fitted = Fit(df, law, cfg, tree, sampler_config=card["sampler"], diagnostics=diag)
    if _data.data_hash(df) != card["data_hash"]:
        raise BayesDCPTError(f"{path}: the stored data does not match the model card's hash (file corrupted?)")
    return fitted


def fit(
    data: Any,
    law: str | Law = "dcpt",
    target: str = "both",
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    seed: int = 0,
    sampler: str = "nutpie",
    robust: bool = True,
    run_effect: bool = True,
    hierarchical: bool | None = None,
    parametrization: str = "noncentered",
    monotone: bool = True,
    probe_tokens: float | None = None,
    prior_scale: float = 1.0,
    zero_ratio: bool = False,
    domain_levels: str = "separate",
    run_offsets: str = "marginal",
    progressbar: bool = False,
    warn: bool = True,
    sampler_kwargs: Mapping[str, Any] | None = None,
) -> Fit:
    """Fit a law as a (hierarchical) Bayesian model and return a :class:`Fit`.

    Parameters
    ----------
    data
        Schema frame or file path (validated with :func:`bayes_dcpt.data.schema.load`).
    law
        ``"dcpt"`` (L3, default), ``"L1"``..``"L7"``, ``"cross-domain"`` (K3) or ``"cross-domain-K1..K4"``,
        ``"chinchilla"``, or ``"auto"``: fit L3, L1, L6 and L7, weight them by LOO stacking and predict with
        the stacked posterior (returns an :class:`~bayes_dcpt.fitting.auto.AutoFit`).
    target
        ``"both"`` (general and domain loss in one call), ``"general"`` or ``"domain"``.
    draws, tune, chains, cores, seed
        MCMC settings; the same seed (and compile cache state) gives the same posterior.
    sampler
        ``"nutpie"`` (default: fastest by measurement, see BENCHMARKS.md), ``"pymc"``, ``"numpyro"``, or the
        fast approximations ``"laplace"`` (MAP + inverse Hessian) and ``"advi"`` for interactive use.
    robust, run_effect, hierarchical, parametrization, monotone, domain_levels
        Student-t likelihood; per-run random offsets; partial pooling across domains (default when there
        are >= 2 domains); ``"centered"``, ``"noncentered"`` or ``"mixed"`` (centred for the domain loss
        only); the paper's C > C0 constraint; the domain-loss levels per domain (``"separate"``) or pooled.
    run_offsets
        ``"marginal"`` (default): the per-run offsets integrated out of the likelihood in closed form (the
        same model for a Normal likelihood; robust: one Student-t scale per run); ``"latent"``: sampled
        (slower to mix by 4-20x, kept for comparison and for fits saved before this option).
    probe_tokens
        The probe budget that defines the DLC feature k2 (cross-domain law).
    prior_scale
        Multiplies every prior standard deviation (prior sensitivity).
    zero_ratio
        Also fit losses measured with none of their own corpus in the mixture (the general loss at
        ``r_domain = 1``, the domain loss at ``r_domain = 0``). Off by default: the paper finds the law
        meaningless below a small inflection ratio (appendix I.3); such rows stay in the data and in the
        reference losses.
    sampler_kwargs
        Extra sampler settings (nutpie: ``adaptation``, ``target_accept``, ...; PyMC/numpyro: the ``nuts`` dict).
    """
    law_ = get_law(law)
    if law_.family not in ("dcpt", "cross-domain", "chinchilla"):
        raise FitError(f"law {law_.name!r} is not a law of (N, D, r); the Bayesian fit supports the D-CPT, "
                       "cross-domain and Chinchilla laws")
    if sampler not in SAMPLERS:
        raise FitError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if parametrization not in ("centered", "noncentered", "mixed"):
        raise FitError("parametrization must be 'centered', 'noncentered' or 'mixed'")
    if domain_levels not in ("pooled", "separate"):
        raise FitError("domain_levels must be 'pooled' or 'separate'")
    if run_offsets not in ("marginal", "latent"):
        raise FitError("run_offsets must be 'marginal' or 'latent'")
    for name, v in (("draws", draws), ("tune", tune), ("chains", chains)):
        if int(v) < (0 if name == "tune" else 1):
            raise FitError(f"{name} must be positive, got {v}")
    df = _data.load(data)
    if run_effect:
        per_run = _data.fit_rows(df).groupby("run_id").size()
        if len(per_run) and int(per_run.max()) <= 1:
            # one measurement per run: a run offset is the checkpoint noise under another name (a funnel that
            # no sampler mixes: R-hat 1.99, BFMI 0.09 on the SlimPajama final losses), so it is left out
            warnings.warn("every run has a single measurement, so a per-run offset cannot be told apart from "
                          "the measurement noise: fitting without it (run_effect=False)", UserWarning, stacklevel=2)
            run_effect = False
    cfg = FitConfig(law=law_.name, target=target, robust=robust, run_effect=run_effect, hierarchical=hierarchical,
                    parametrization=parametrization, monotone=monotone, probe_tokens=probe_tokens,
                    prior_scale=prior_scale, zero_ratio=zero_ratio, domain_levels=domain_levels,
                    run_offsets=run_offsets)
    design = _design(df, law_, cfg)
    cores = cores or min(chains, os.cpu_count() or 1)
    entry = _get_model(law_, cfg, design)
    t0 = time.perf_counter()
    idata = _sample(entry, sampler, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                    progressbar=progressbar, sampler_kwargs=sampler_kwargs)
    seconds = time.perf_counter() - t0
    import xarray as xr

    cd = xr.Dataset({k: ((), np.asarray(v)) for k, v in entry["arrays"].items() if np.ndim(v) == 0})
    idata["constant_data"] = xr.DataTree(cd)
    post_vars = [str(v) for v in idata["posterior"].data_vars]
    names = [p.name for p in law_.params] + ["sigma", "tau", "nu", "K", "sigma_K"]
    names += [v for v in post_vars if v.startswith(("mu_", "sd_"))]
    diag = _diagnose(idata, sampler, names, seconds, draws, chains)
    sampler_config = {"sampler": sampler, "draws": draws, "tune": tune, "chains": chains, "cores": cores,
                      "seed": seed, "options": dict(sampler_kwargs or {})}
    result = Fit(df, law_, cfg, idata, sampler_config=sampler_config, diagnostics=diag, design=design)
    if warn:
        result.diagnostics(warn=True)
    return result


def compare(fits: Mapping[str, Fit] | Sequence[Fit], method: str = "stacking") -> pd.DataFrame:
    """ELPD-LOO comparison of fits on the same data (the Bayesian form of the paper's law tables)."""
    import arviz as az

    if not isinstance(fits, Mapping):
        fits = {f.law.name: f for f in fits}
    hashes = {_data.data_hash(f.data) for f in fits.values()}
    if len(hashes) != 1:
        raise BayesDCPTError("compare needs fits of the same data")
    trees = {}
    for name, f in fits.items():
        f.log_likelihood()
        trees[name] = f.idata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return az.compare(trees, method=method)

