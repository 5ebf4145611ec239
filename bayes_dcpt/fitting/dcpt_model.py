"""The PyMC model of the D-CPT, Cross-Domain and Chinchilla laws, and the cache of compiled models.

:func:`build_model` turns a law, a :class:`~bayes_dcpt.fitting.config.FitConfig` and a
:class:`~bayes_dcpt.fitting.design.Design` into a PyMC model; :func:`get_model` reuses a model of the same structure
with new data (no recompilation). ``MODEL.md`` beside this file describes the model, its parameterisation and
why it is sampled this way; :mod:`bayes_dcpt.fitting.priors` lists the priors with their reasons.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_dcpt.fitting.config import DENSE_SHARE_SPREAD, FitConfig, is_dense
from bayes_dcpt.fitting.design import Design
from bayes_dcpt.fitting.likelihood import add_noise_and_likelihood, noise_group
from bayes_dcpt.fitting.priors import EXPONENT_SPREAD, MONOTONE_SHARPNESS
from bayes_dcpt.fitting.samplers import cached_entry
from bayes_dcpt.laws.registry import Law, Param

__all__ = ["build_model", "clear_model_cache", "get_model", "structure_key"]

_AXES = ("N", "D", "r")
_DATA = ("t_idx", "d_idx", "run_idx", "run_group", "run_domain", "t_run", "d_run", "n_run", "mask", "N", "log_D",
         "r", "log_loss", "loss_ref", "D_min", "N_ref", "D_ref", "r_ref", "anchor_lo", "anchor_hi", "loss_lo",
         "loss_lo_d", "pair_cell", "pair_log_D", "run_pair")
_DATA_DIMS: dict[str, Any] = {"t_idx": "obs", "d_idx": "obs", "run_idx": "obs", "run_group": "run",
                              "run_domain": "run", "N": "obs", "log_D": "obs", "r": "obs", "log_loss": "obs",
                              "loss_ref": "target", "r_ref": "target",
                              "anchor_lo": ("target", "axis"), "anchor_hi": ("target", "axis"),
                              "loss_lo": "target", "loss_lo_d": ("target", "domain")}


class _ModelBuilder:
    """Builds the model of one law, configuration and design, step by step (``MODEL.md`` has the reasons).

    ``full`` maps every law parameter to its (target, domain) tensor of natural values, ``varies`` says whether
    it varies by domain. The order of the steps is the order of the model's variables: keep it (a sampler's
    seed maps to draws through that order).
    """

    def __init__(self, law: Law, cfg: FitConfig, design: Design):
        self.law, self.cfg, self.design = law, cfg, design
        self.T, self.ND = len(design.targets), len(design.domains)
        self.arr = design.arrays()
        self.hier = (self.ND >= 2) if cfg.hierarchical is None else bool(cfg.hierarchical and self.ND >= 2)
        self.cross = law.dlc is not None
        self.ps = cfg.prior_scale
        self.anchored = bool(law.power_terms) and cfg.anchored
        self.linear = list(law.linear) if (self.anchored or law.linear) else []
        self.exponents = {e for e, _ in law.power_terms.values()} if self.anchored else set()
        self.dlc_slope = self.cross and self.anchored and "mu" in law.param_names and "F" in law.linear
        self.full: dict[str, Any] = {}
        self.varies: dict[str, bool] = {}
        self.data: dict[str, Any] = {}
        self.lo: dict[str, Any] = {}  # (T, 1) anchors of each axis at the low and high ends of the data
        self.hi: dict[str, Any] = {}

    def build(self, likelihood: bool = True) -> Any:
        """The PyMC model; without ``likelihood`` the prior model (for prior predictive draws)."""
        import pymc as pm

        d = self.design
        coords = {"target": list(d.targets), "domain": list(d.domains), "obs": np.arange(len(d.obs)),
                  "run": np.arange(d.run_capacity), "axis": list(_AXES)}
        with pm.Model(coords=coords) as model:
            self.data = {k: _data(pm, k, self.arr[k], d.blocks) for k in _DATA if k in self.arr}
            self._direct_parameters()
            if self.anchored:
                terms, ref_x = self._anchored_terms()
            elif self.linear:
                terms, ref_x = self._reference_terms()
            else:
                terms, ref_x = {}, {}
            if self.linear:
                self._linear_coefficients(terms, ref_x)
            self._record_parameters()
            mu = self._mean_log_loss()
            v = self.data
            nd = self.ND
            if d.blocks:
                add_noise_and_likelihood(mu, v["log_loss"], None, None,
                                         noise_group(self.cfg, v["t_run"], v["d_run"], nd), self.cfg,
                                         d.run_capacity, likelihood, blocks=(v["mask"], v["n_run"]))
            else:
                add_noise_and_likelihood(mu, v["log_loss"], noise_group(self.cfg, v["t_idx"], v["d_idx"], nd),
                                         v["run_idx"], noise_group(self.cfg, v["run_group"], v["run_domain"], nd),
                                         self.cfg, d.run_capacity, likelihood)
        return model

    # ------------------------------------------------------------------------------- hierarchy helpers
    def _domain_rows(self) -> np.ndarray:
        """(T,) array: 1 for the domain loss, 0 for the general loss."""
        return np.array([1.0 if t == "domain" else 0.0 for t in self.design.targets])

    def _domain_weight(self) -> Any:
        """(T, 1) tensor of :meth:`_domain_rows`."""
        import pytensor.tensor as pt

        return pt.as_tensor(self._domain_rows())[:, None]

    def rv(self, name: str, mu: Any, sd: float, varying: bool, pool_sd: float = 0.5, axis: str | None = None) -> Any:
        """A (T, ND) Normal variable; partially pooled over domains when ``varying``.

        ``axis`` is the data axis the variable's term moves along (for the drops), which decides its centring
        per target (:meth:`_centring`).
        """
        import pymc as pm
        import pytensor.tensor as pt

        if not varying:
            return pm.Normal(name, mu, sd, dims="target")[:, None] * pt.ones((1, self.ND))
        mu_h = pm.Normal(f"mu_{name}", mu, sd, dims="target")
        s_h = pm.HalfNormal(f"sd_{name}", pool_sd, dims="target")
        w_np = self._centring(name, axis)
        if w_np.all():
            return pm.Normal(name, mu_h[:, None], s_h[:, None], dims=("target", "domain"))
        if w_np.any():
            # Partial centring (Papaspiliopoulos, Roberts & Skold 2007) with weight w per target:
            # u ~ Normal(w mu, s^w), x = (1 - w) mu + s^(1 - w) u; w = 1 is centred, w = 0 non-centred.
            w = pt.as_tensor(w_np)[:, None]
            m, sd_ = mu_h[:, None], s_h[:, None]
            u = pm.Normal(f"u_{name}", w * m, sd_**w, dims=("target", "domain"))
            return pm.Deterministic(name, (1.0 - w) * m + sd_ ** (1.0 - w) * u, dims=("target", "domain"))
        z = pm.Normal(f"z_{name}", 0.0, 1.0, dims=("target", "domain"))
        return pm.Deterministic(name, mu_h[:, None] + s_h[:, None] * z, dims=("target", "domain"))

    def _centring(self, name: str, axis: str | None = None) -> np.ndarray:
        """(T,) centring weights of the domain-level variable ``name``: 1 centred, 0 non-centred, per target.

        ``"mixed"``: the domain loss centred, the general loss non-centred. ``"split"``: centred where the data
        pin each domain's value (the far-corner levels, the drops across the data range: a non-centred offset
        would then be a deterministic function of the population mean and spread, a curved ridge NUTS crosses in
        hundreds of steps), non-centred for the stick-breaking shares (how far each curve still falls beyond the
        data, which the data barely identify: centred, a funnel). ``"split_weak_d"``: the same but the general
        loss's drop along D non-centred too: the general loss moves little with D during CPT, so with up to a
        thousand or so rows per domain one domain's D-drop of it is weakly pinned (posterior sd 1.7-2.1 times
        the population spread, under a third for every other centred value) and, centred, it made the funnel
        the split fit's divergences sat in (BENCHMARKS.md, "Fits at the scale of real probe logs").
        """
        par, T = self.cfg.parametrization, self.T
        if par == "mixed" or (par == "split_weak_d" and axis == "D"):  # only the drops have an axis
            return self._domain_rows()
        if is_dense(par):
            return np.zeros(T) if name.startswith("share_") else np.ones(T)
        return np.full(T, 1.0 if par == "centered" else 0.0)

    def _centred(self, name: str) -> bool:
        """Whether ``name`` is sampled centred for every target."""
        return bool(self._centring(name).all())

    def _log_center(self, par: Param) -> Any:
        import pytensor.tensor as pt

        return np.log(par.prior.center) + (pt.log(self.data["loss_ref"]) if par.prior.scale == "loss"
                                           else pt.zeros(self.T))

    def _direct(self, par: Param, varying: bool) -> Any:
        """A parameter sampled on its own prior (log scale for the log-normal priors)."""
        import pytensor.tensor as pt

        pr = par.prior
        if pr.kind in ("lognormal", "shifted_lognormal"):
            val = pt.exp(self.rv(f"log_{par.name}", self._log_center(par), pr.sd * self.ps, varying))
            return 1.0 + val if pr.kind == "shifted_lognormal" else val
        return self.rv(f"{par.name}_raw", pr.center * pt.ones(self.T), pr.sd * self.ps, varying)

    def _stick_break(self, total: Any, names: list[str], left: float, varying: bool) -> tuple[dict[str, Any], Any]:
        """Split ``total`` into the terms ``names`` by stick-breaking; returns the terms and the rest.

        Each share is logit-normal (sd 1.5) centred on the coefficient priors' proportions (``left``: the sum
        of the centres still to share); across domains its spread is HalfNormal(0.5), or
        :data:`~bayes_dcpt.fitting.config.DENSE_SHARE_SPREAD` in the split hierarchies of dense data.
        """
        import pytensor.tensor as pt

        terms: dict[str, Any] = {}
        for n in names:
            center = self.law.param(n).prior.center
            share0 = center / left
            left -= center
            v = self.rv(f"share_{n}", np.log(share0 / (1 - share0)) * pt.ones(self.T), 1.5 * self.ps, varying,
                        pool_sd=DENSE_SHARE_SPREAD if is_dense(self.cfg.parametrization) else 0.5)
            terms[n] = total * pt.sigmoid(v)
            total = total * pt.sigmoid(-v)
        return terms, total

    # ------------------------------------------------------------------------------------- the steps
    def _direct_parameters(self) -> None:
        """1. Parameters sampled directly: shape parameters (eps, eta, ...) and, without linear structure, all.

        Shared across domains unless a loss-scaled coefficient in a hierarchy.
        """
        import pytensor.tensor as pt

        for par in self.law.params:
            if par.name in self.linear or par.name in self.exponents or (self.dlc_slope and par.name == "mu"):
                continue
            varying = self.hier and par.prior.scale == "loss" and not self.cross
            self.full[par.name] = self._direct(par, varying) * pt.ones((self.T, self.ND))
            self.varies[par.name] = varying

    def _anchored_terms(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """2a. Power-law terms through their values at the ends of the data's range of their axis.

        The loss at the far corner (largest N and D, largest ratio) is L_far = E + a_hi + b_hi + c_hi; it is
        split by stick-breaking into the terms' values there (E is the remainder), and each term's drop across
        the data range (a_lo - a_hi, ...) is sampled on the log scale. Exponents follow:
        alpha = log(1 + dA/a_hi) / log(N_hi/N_lo). Data identify L_far and the drops; what they do not identify
        (how far each curve still falls beyond the data) is then an axis-aligned direction, not a curved
        ridge, and NUTS needs few steps per draw. Returns the terms' values and the point where they hold.
        """
        import pytensor.tensor as pt

        law, T, ND = self.law, self.T, self.ND
        varying = self.hier and not self.cross
        self.lo = {a: self.data["anchor_lo"][:, i][:, None] for i, a in enumerate(_AXES)}
        self.hi = {a: self.data["anchor_hi"][:, i][:, None] for i, a in enumerate(_AXES)}
        log_far = self._log_far_loss(varying)
        order = [c for c in ("B", "A", "C") if c in law.power_terms]
        if self.cross and "F" in law.linear:
            order.append("F")  # the DLC term at the domains' geometric-mean K (= 1) is part of the far loss
        left = sum(law.param(c).prior.center for c in order) + law.param("E").prior.center
        t_hi, self.full["E"] = self._stick_break(pt.exp(log_far), order, left, varying)
        self.varies["E"] = varying
        for c in order:
            if c in law.power_terms:
                self._exponent(c, t_hi[c], varying)
        if self.dlc_slope:
            self._dlc_slope(t_hi["F"])
        hi = self.hi
        x_far = {"N": hi["N"] * pt.ones((1, ND)), "D": hi["D"] * pt.ones((1, ND)),
                 "r": hi["r"] * pt.ones((1, ND)), "K": pt.ones((T, ND))}
        terms = t_hi
        for n in self.linear:
            if n not in terms and n != "E":
                pn = law.param(n)
                terms[n] = pt.exp(self.rv(f"log_{n}", self._log_center(pn), pn.prior.sd * self.ps, False))
        return terms, x_far

    def _log_far_loss(self, varying: bool) -> Any:
        """The log loss at the far corner of the data, per (target, domain)."""
        import pymc as pm
        import pytensor.tensor as pt

        ps, loss_lo = self.ps, self.data["loss_lo"]
        if not (varying and self.cfg.domain_levels == "separate" and "domain" in self.design.targets):
            return self.rv("log_far_loss", pt.log(loss_lo), 0.5 * ps, varying)
        # Each domain's loss is measured on its own validation set, so the domain-loss levels of different
        # domains are unrelated numbers (entropies of different texts): not pooled, each centred on its own
        # data. The general loss (one validation set) keeps the hierarchy.
        sep = self._domain_weight()
        mu_far = pm.Normal("mu_log_far_loss", pt.log(loss_lo), 0.5 * ps, dims="target")
        sd_far = pm.HalfNormal("sd_log_far_loss", 0.5, dims="target")
        if self._centred("log_far_loss"):
            loc = sep * pt.log(self.data["loss_lo_d"]) + (1.0 - sep) * mu_far[:, None]
            scale = sep * 0.5 * ps + (1.0 - sep) * sd_far[:, None]
            return pm.Normal("log_far_loss", loc, scale, dims=("target", "domain"))
        z_far = pm.Normal("z_log_far_loss", 0.0, 1.0, dims=("target", "domain"))
        pooled = mu_far[:, None] + sd_far[:, None] * z_far
        own = pt.log(self.data["loss_lo_d"]) + 0.5 * ps * z_far
        return pm.Deterministic("log_far_loss", sep * own + (1.0 - sep) * pooled, dims=("target", "domain"))

    def _exponent(self, c: str, t_hi: Any, varying: bool) -> None:
        """The exponent of power term ``c``, derived from the term's far value ``t_hi`` and its drop."""
        import pymc as pm
        import pytensor.tensor as pt

        T, ND, ps, full = self.T, self.ND, self.ps, self.full
        expo, axis = self.law.power_terms[c]
        pe = self.law.param(expo)
        axes = self.design.varying_axes["axes"]
        if axis not in axes:
            # one value on this axis: the exponent cannot be learnt from the data; its prior stands
            full[expo] = self._direct(pe, False) * pt.ones((T, ND))
        else:
            drop = pt.exp(self.rv(f"log_drop_{c}", np.log(0.05) + pt.log(self.data["loss_ref"]), 1.5 * ps, varying,
                                 axis=axis))
            lo, hi = self.lo, self.hi
            if axis == "r":
                span = pt.log((hi["r"] + full["eps"]) / (lo["r"] + full["eps"]))
            else:
                span = pt.log(hi[axis] / lo[axis])
            full[expo] = pt.log1p(drop / t_hi) / span * pt.ones((T, ND))
            # the published exponent values enter as prior factors on the derived exponents
            if varying:
                # pooled with a fixed spread: a learnt spread would make a funnel that no
                # non-centring can remove (the exponents are derived, not sampled)
                mu_e = pm.Normal(f"mu_log_{expo}", np.log(pe.prior.center), pe.prior.sd * ps, dims="target")
                ones = pt.ones((1, ND))
                pm.Potential(f"prior_{expo}", pm.logp(pm.Normal.dist(mu_e[:, None] * ones, EXPONENT_SPREAD * ones),
                                                      pt.log(full[expo])).sum())
            else:
                pm.Potential(f"prior_{expo}", pm.logp(pm.Normal.dist(np.log(pe.prior.center), pe.prior.sd * ps),
                                                      pt.log(full[expo][:, 0])).sum())
        self.varies[expo] = varying and axis in axes

    def _dlc_slope(self, f_hi: Any) -> None:
        """The DLC slope: F and mu trade off (the domains' spread is ~ F mu log K).

        So the slope g = F mu is sampled and mu = g / F derived; mu's prior enters as a factor on the derived
        value.
        """
        import pymc as pm
        import pytensor.tensor as pt

        pm_ = self.law.param("mu")
        log_g = self.rv("log_dlc_slope", np.log(pm_.prior.center * self.law.param("F").prior.center)
                        + pt.log(self.data["loss_ref"]), 1.5 * self.ps, False)
        self.full["mu"] = pt.exp(log_g) / f_hi * pt.ones((self.T, self.ND))
        self.varies["mu"] = False
        pm.Potential("prior_mu", pm.logp(pm.Normal.dist(np.log(pm_.prior.center), pm_.prior.sd * self.ps),
                                         pt.log(self.full["mu"][:, 0])).sum())

    def _reference_terms(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """2b. Laws linear in some coefficients without power-term metadata: the terms at the reference point.

        The D-independent terms are sampled through their sum and stick-breaking shares, the others one by one.
        """
        import pytensor.tensor as pt

        T, ND, ps, law = self.T, self.ND, self.ps, self.law
        varying = self.hier and not self.cross
        v = self.data
        ref_x = {"N": v["N_ref"], "D": v["D_ref"], "r": v["r_ref"][:, None] * pt.ones((1, ND)), "K": pt.ones((T, ND))}
        terms: dict[str, Any] = {}
        level = list(law.level)
        if level:
            log_level = self.rv("log_level", np.log(0.8) + pt.log(v["loss_ref"]), 0.5 * ps, varying)
            left = sum(law.param(n).prior.center for n in level)
            shares, rest = self._stick_break(pt.exp(log_level), [n for n in level if n != "E"], left, varying)
            terms = {**shares, "E": rest}
        for n in self.linear:
            if n not in terms:
                pn = law.param(n)
                terms[n] = pt.exp(self.rv(f"log_{n}_term", self._log_center(pn), pn.prior.sd * ps, varying))
        return terms, ref_x

    def _linear_coefficients(self, terms: dict[str, Any], ref_x: dict[str, Any]) -> None:
        """3. Each linear coefficient from its term's value at ``ref_x``.

        In law order: B is natural before C's lower bound needs it.
        """
        import pymc as pm
        import pytensor.tensor as pt

        T, ND, full = self.T, self.ND, self.full
        zeros = {n: pt.zeros((T, ND)) for n in self.linear}

        def factor(name: str) -> Any:
            return self.law.formula(pt, {**full, **zeros, name: pt.ones((T, ND))}, ref_x) * pt.ones((T, ND))

        for n in self.linear:
            if n == "E" and self.anchored:
                continue
            par = self.law.param(n)
            coef = terms[n] / factor(n) if n != "E" else terms[n]
            if par.lower is not None and self.cfg.monotone:
                # the paper's constraint (e.g. C > C0) as a smoothly truncated prior: a hard
                # reparameterisation C = C0 + excess couples C to B, beta, eta, gamma and eps so tightly
                # that NUTS needs hundreds of steps per draw; the barrier has 2% softness.
                low = par.lower(pt, full, {"D_min": self.data["D_min"]})
                pm.Potential(f"{n}_above_lower_bound",
                             pt.sum(pt.log(pt.sigmoid(MONOTONE_SHARPNESS * (coef / low - 1.0)))))
            full[n] = coef * pt.ones((T, ND))
            self.varies.setdefault(n, self.hier and not self.cross)

    def _record_parameters(self) -> None:
        """4. Every law parameter as a deterministic: (target, domain) when it varies by domain, else (target,)."""
        import pymc as pm

        for par in self.law.params:
            val = self.full[par.name]
            varies = self.varies[par.name]
            pm.Deterministic(par.name, val if varies else val[:, 0],
                             dims=("target", "domain") if varies else ("target",))

    def _mean_log_loss(self) -> Any:
        """5. The law's log loss at every observation (cross-domain: with each domain's learnt DLC ``K``)."""
        import pymc as pm
        import pytensor.tensor as pt

        v, full = self.data, self.full
        if self.design.blocks:  # one row per run: the parameters gathered once per run, as (R, 1) columns
            cell = v["t_run"] * self.ND + v["d_run"]
        else:  # one flat index per observation (a 1-d gather costs far less than full[t_idx, d_idx])
            cell = v["t_idx"] * self.ND + v["d_idx"]

        def flat(val: Any) -> Any:  # a (T, ND) or (T, 1) parameter as one value per (target, domain) cell
            return pt.flatten(val * pt.ones((self.T, self.ND)))

        def gather(val: Any) -> Any:
            g = flat(val)[cell]
            return g[:, None] if self.design.blocks else g

        # D = exp(log D): in every power D**-beta = exp(-beta log D) PyTensor cancels log(exp(.)) (Design.arrays)
        x = {"N": v["N"], "D": pt.exp(v["log_D"]), "r": v["r"]}
        if self.design.blocks and "beta" in full:  # D^-beta once per (cell, token grid), gathered by run
            beta = flat(full["beta"])[v["pair_cell"]]
            x["D_pow"] = pt.exp(-beta[:, None] * v["pair_log_D"])[v["run_pair"]]
        if self.cross:
            k_feats = {k: pm.Data(k, self.arr[k], dims="domain")[None, :] for k in ("k1", "k2", "k3")}
            p_t = {k: val[:, :1] for k, val in full.items()}
            # only F K^-mu is identified: K is normalised to geometric mean 1 over the fitted domains (F is
            # the DLC term of the average domain) and its learnt deviations sum to zero
            log_k_feat = pt.log(self.law.dlc(pt, p_t, k_feats)) * pt.ones((self.T, self.ND))
            log_k_mean = log_k_feat - pt.mean(log_k_feat, axis=1, keepdims=True)
            sigma_k = pm.HalfNormal("sigma_K", 0.5 * self.ps, dims="target")
            zk = pm.ZeroSumNormal("z_K", sigma=1.0, dims=("target", "domain"), n_zerosum_axes=1)
            log_k = log_k_mean + sigma_k[:, None] * zk
            K = pm.Deterministic("K", pt.exp(log_k), dims=("target", "domain"))
            x["K"] = gather(K)
        p_obs = {k: gather(val) for k, val in full.items()}
        return pt.log(self.law.formula(pt, p_obs, x))


def _data(pm: Any, name: str, value: np.ndarray, blocks: bool) -> Any:
    """One ``pm.Data``: per observation with dims ``obs``.

    In the run-block layout a run-level ``(R, 1)`` column keeps a static 1, so that it broadcasts along the run's
    checkpoints.
    """
    if blocks and np.ndim(value) == 2 and name not in ("anchor_lo", "anchor_hi", "loss_lo_d"):
        return pm.Data(name, value, shape=(None, 1) if np.shape(value)[1] == 1 else None)
    dims = _DATA_DIMS.get(name)
    return pm.Data(name, value, dims=None if blocks and dims == "obs" else dims)


def build_model(law: Law, cfg: FitConfig, design: Design, likelihood: bool = True) -> Any:
    """The PyMC model of ``law`` under ``cfg`` on ``design``'s data (without ``likelihood``: the prior model)."""
    return _ModelBuilder(law, cfg, design).build(likelihood)


# ------------------------------------------------------------------------------------------------ cache
_MODEL_CACHE: dict[tuple, dict[str, Any]] = {}


def structure_key(law: Law, cfg: FitConfig, design: Design, arrays: dict[str, np.ndarray] | None = None) -> tuple:
    """What fixes the compiled model's shapes and graph: law, configuration, targets, domains, run slots, axes, layout.

    ``arrays``: the design's arrays when the caller has built them already.
    """
    return (law.name, cfg.key(), design.targets, tuple(design.domains), design.run_capacity,
            design.varying_axes["axes"], design.layout(arrays))


def get_model(law: Law, cfg: FitConfig, design: Design, likelihood: bool = True) -> dict[str, Any]:
    """A cached model for this structure with the design's data set (no recompilation on new data)."""
    arrays = design.arrays()
    key = (*structure_key(law, cfg, design, arrays), likelihood)
    return cached_entry(_MODEL_CACHE, key, lambda: build_model(law, cfg, design, likelihood), arrays,
                        len(design.obs), jax_from_obs=None)  # numba is faster for this family at every size


def clear_model_cache() -> None:
    """Forget compiled models (tests use this to measure cold paths)."""
    _MODEL_CACHE.clear()
