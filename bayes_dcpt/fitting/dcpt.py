"""Hierarchical Bayesian fits of the D-CPT, Cross-Domain and Chinchilla laws: ``fit``, ``Fit``, ``load_fit``.

Quickstart::

    >>> import bayes_dcpt as bd
    >>> fit = bd.fit(bd.datasets.load_example(), law="dcpt", target="both", seed=1)
    >>> fit.diagnostics()            # R-hat, ESS, divergences, BFMI; warns loudly when bad
    >>> fit.summary()                # mean, sd, 90% HDI, R-hat, ESS per parameter
    >>> fit.predict(grid, ci=0.9)    # loss_general_mean/_lo/_hi, loss_domain_...
    >>> fit.save("fit.nc"); bd.load_fit("fit.nc")

The model (log losses of every CPT checkpoint, per-run offsets integrated out, anchored power terms, partial
pooling across domains) and the reasons for its parameterisation and priors are in ``MODEL.md`` beside this file;
:func:`prior_table` lists the priors. The pieces: :mod:`~bayes_dcpt.fitting.design` (data arrays),
:mod:`~bayes_dcpt.fitting.dcpt_model` (PyMC model, cache), :mod:`~bayes_dcpt.fitting.samplers`,
:mod:`~bayes_dcpt.fitting.diagnostics`, :mod:`~bayes_dcpt.fitting.base` (what every fit offers).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.dlc import dlc_features
from bayes_dcpt.errors import BayesDCPTError, FitError
from bayes_dcpt.fitting.base import BaseFit, DecisionMethods, config_ctx, flat_draws, noise_ctx, noise_draws
from bayes_dcpt.fitting.config import (
    DEFAULT_DRAWS,
    DENSE_DRAWS,
    DENSE_TARGET_ACCEPT,
    PARAMETRIZATIONS,
    XI_SD,
    FitConfig,
    is_dense,
    resolve_parametrization,
)
from bayes_dcpt.fitting.cpt import fit_cpt
from bayes_dcpt.fitting.dcpt_model import get_model
from bayes_dcpt.fitting.design import Design, make_design
from bayes_dcpt.fitting.diagnostics import Diagnostics, dcpt_remedies
from bayes_dcpt.fitting.priors import prior_table
from bayes_dcpt.fitting.samplers import check_counts, check_sampler, run_sampler, sample
from bayes_dcpt.laws.registry import BILLION, Law, get_law
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["Diagnostics", "Fit", "FitConfig", "compare", "fit", "load_fit", "prior_table"]


def posterior_from_idata(idata: Any, law: Law, targets: Sequence[str], domains: Sequence[str], ctx: dict,
                         reference: pd.DataFrame, cross: bool) -> Posterior:
    """The plain-numpy :class:`Posterior` of a D-CPT model's draws (one parameter set per target and domain)."""
    post = idata["posterior"]
    params: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for ti, t in enumerate(targets):
        for di, d in enumerate(domains):
            p = {}
            for par in law.params:
                v = flat_draws(post, par.name)
                p[par.name] = v[:, ti, di] if v.ndim == 3 else v[:, ti]
            if cross:
                p["K"] = flat_draws(post, "K")[:, ti, di]
            params[(t, d)] = p
    return Posterior(law, params, noise_draws(post, targets), ctx={**ctx, **noise_ctx(post)}, reference=reference)


class Fit(DecisionMethods, BaseFit):
    """A Bayesian fit of one law to CPT measurements: the posterior, its diagnostics and what follows.

    Create with :func:`fit` (or :func:`load_fit`); never samples in ``__init__``.
    """

    LABEL = "fit"
    SAVED_NUMERIC = (*_data.REQUIRED_COLUMNS[1:], *_data.LOSS_COLUMNS)
    SAVED_TEXT = ("domain", "run_id")

    def __init__(self, data: pd.DataFrame, law: Law, config: FitConfig, idata: Any, *,
                 sampler_config: Mapping[str, Any], diagnostics: Diagnostics, design: Design | None = None):
        super().__init__(data, law, config, idata, sampler_config=sampler_config, diagnostics=diagnostics,
                         design=design)
        self.targets = _data.targets_of(config.target)
        self.domains = list(design.domains) if design is not None else sorted(
            _data.to_long(data, config.target)["domain"].unique().tolist())
        self.features = dlc_features(data, probe_tokens=config.probe_tokens, domains=self.domains) \
            if law.dlc is not None else None
        ctx = {"D_min": float(np.asarray(idata["constant_data"]["D_min"])) if "constant_data" in idata.children
               and "D_min" in idata["constant_data"] else float(_data.fit_rows(data)["tokens"].min() / BILLION)}
        if config.zero_ratio:
            ctx["zero_ratio"] = 1.0  # losses with none of their own corpus were fitted too
        self.posterior = posterior_from_idata(idata, law, self.targets, self.domains, config_ctx(ctx, config),
                                              _data.base_losses(data), law.dlc is not None)

    def remedies(self) -> list[str]:
        """What to try when the diagnostics are bad, most specific first (from this fit's model and data)."""
        return dcpt_remedies(self.config, self.data, len(self.domains), self.sampler_config, self._diagnostics)

    def priors(self) -> pd.DataFrame:
        """The priors of this fit's law, as sampled, with their reasons (:func:`prior_table`)."""
        return prior_table(self.law, self.config.anchored, self.config)

    def prior_predictive(self, draws: int = 500, seed: int = 0) -> Posterior:
        """Draws of the prior as a :class:`Posterior` (same law and noise model): plot curves, check plausibility.

        The prior includes factors written as potentials (the published exponent values, C > C0), so it is
        sampled by NUTS on the model without its likelihood (forward sampling would ignore them).
        """
        entry = get_model(self.law, self.config, self.design, likelihood=False)
        idata = sample(entry, "nutpie", draws=max(1, draws // 2), tune=500, chains=2, cores=2, seed=seed,
                       progressbar=False)
        return posterior_from_idata(idata, self.law, self.targets, self.domains, self.posterior.ctx,
                                    self.posterior.reference, self.law.dlc is not None)

    # ------------------------------------------------------------------------------------ base hooks
    def _make_design(self) -> Design:
        return make_design(self.data, self.law, self.config)

    def _model_entry(self) -> dict[str, Any]:
        return get_model(self.law, self.config, self.design)

    @classmethod
    def _from_card(cls, data: pd.DataFrame, tree: Any, card: Mapping[str, Any], diagnostics: Diagnostics) -> Self:
        # cards written before an option existed were fitted with its old behaviour
        cfg = FitConfig(**{"domain_levels": "pooled", "run_offsets": "latent", "nu_floor": 0.0, "burn_in": "none",
                           "noise_scope": "target", **card["config"]})
        return cls(data, get_law(card["law"]), cfg, tree, sampler_config=card["sampler"], diagnostics=diagnostics)


def bayesian_refit(law: str = "dcpt", target: str = "both", **fit_kwargs: Any):
    """``refit(data) -> Posterior`` by NUTS (compiled model cached across calls), for the planner loop."""

    def refit(df: pd.DataFrame) -> Posterior:
        kw = {"draws": 500, "tune": 500, "chains": 2, "warn": False, **fit_kwargs}
        return fit(df, law, target, **kw).posterior

    return refit


def load_fit(path: str | Path) -> Fit:
    """Read a fit written by :meth:`Fit.save`; it predicts without refitting (no PyMC compile needed)."""
    return Fit.load(path)


def _check_options(law: Law, sampler: str, parametrization: str, domain_levels: str, run_offsets: str,
                   draws: int | None, tune: int, chains: int) -> None:
    """Raise :class:`FitError` for an argument of :func:`fit` outside its choices."""
    if law.family not in ("dcpt", "cross-domain", "chinchilla", "cpt"):
        raise FitError(f"law {law.name!r} is not a law of (N, D, r); the Bayesian fit supports the D-CPT, "
                       "cross-domain, CPT (base-anchored) and Chinchilla laws")
    check_sampler(sampler)
    if parametrization not in PARAMETRIZATIONS:
        raise FitError(f"parametrization must be one of {', '.join(map(repr, PARAMETRIZATIONS))}")
    if domain_levels not in ("pooled", "separate"):
        raise FitError("domain_levels must be 'pooled' or 'separate'")
    if run_offsets not in ("marginal", "latent"):
        raise FitError("run_offsets must be 'marginal' or 'latent'")
    check_counts(draws, tune, chains)


def _identifiable_run_effect(df: pd.DataFrame, run_effect: bool) -> bool:
    """``run_effect`` unless every run has a single measurement (then the offset is the noise: warn, drop it)."""
    if run_effect:
        per_run = _data.fit_rows(df).groupby("run_id").size()
        if len(per_run) and int(per_run.max()) <= 1:
            # one measurement per run: a run offset is the checkpoint noise under another name (a funnel that
            # no sampler mixes: R-hat 1.99, BFMI 0.09 on the SlimPajama final losses), so it is left out
            warnings.warn("every run has a single measurement, so a per-run offset cannot be told apart from "
                          "the measurement noise: fitting without it (run_effect=False)", UserWarning, stacklevel=3)
            return False
    return run_effect


# long: the public signature and its numpy docstring (every option documented) are most of the lines
def fit(
    data: Any,
    law: str | Law = "dcpt",
    target: str = "both",
    *,
    draws: int | None = None,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    seed: int = 0,
    sampler: str = "nutpie",
    robust: bool = True,
    run_effect: bool = True,
    hierarchical: bool | None = None,
    parametrization: str = "auto",
    monotone: bool = True,
    probe_tokens: float | None = None,
    prior_scale: float = 1.0,
    zero_ratio: bool = False,
    domain_levels: str = "separate",
    run_offsets: str = "marginal",
    burn_in: str = "warmup",
    noise_scope: str = "domain",
    replay_scope: str = "domain",
    rate_scope: str | None = None,
    rewarm: bool = False,
    share_power: bool = False,
    transfer: bool = False,
    xi_sd: float = XI_SD,
    replay_size: bool = True,
    progressbar: bool = False,
    warn: bool = True,
    sampler_kwargs: Mapping[str, Any] | None = None,
    run_slots: int | None = None,
) -> Fit:
    """Fit a law as a (hierarchical) Bayesian model and return a :class:`Fit`.

    Parameters
    ----------
    data
        Schema frame or file path (validated with :func:`bayes_dcpt.data.schema.load`).
    law
        ``"cpt"`` (the base-anchored CPT law; needs base-model rows at every size), ``"dcpt"`` (L3),
        ``"L1"``..``"L7"``, ``"cross-domain"`` (K3) or ``"cross-domain-K1..K4"``, ``"chinchilla"``, or ``"auto"``:
        several laws weighed by the stacking of their held-out (later tokens, largest size) predictive densities,
        predicting with the stacked posterior (an :class:`~bayes_dcpt.fitting.auto_fit.AutoFit`). In
        :func:`bayes_dcpt.fit` the default (None) is ``"cpt"`` when the data have base rows at every (domain,
        size), else ``"dcpt"`` (:func:`~bayes_dcpt.fitting.api.default_law`); this function's is ``"dcpt"``.
    target
        ``"both"`` (general and domain loss in one call), ``"general"`` or ``"domain"``.
    draws, tune, chains, cores, seed
        MCMC settings; the same seed (and compile cache state) gives the same posterior. ``draws`` per chain
        defaults to :data:`~bayes_dcpt.fitting.config.DEFAULT_DRAWS` (1000), or
        :data:`~bayes_dcpt.fitting.config.DENSE_DRAWS` (1500) for NUTS on the split hierarchies of dense data,
        whose tail ESS fell short of 400 with 1000 (BENCHMARKS.md, "Seventeenth round").
    sampler
        ``"nutpie"`` (default: fastest by measurement, see BENCHMARKS.md), ``"pymc"``, ``"numpyro"``, or the
        fast approximations ``"laplace"`` (MAP + inverse Hessian) and ``"advi"`` for interactive use.
    robust, run_effect, hierarchical, parametrization, monotone, domain_levels
        Student-t likelihood; per-run random offsets; partial pooling across domains (default when there
        are >= 2 domains); the hierarchy's parameterisation: ``"auto"`` (default: ``"noncentered"`` under
        :data:`~bayes_dcpt.fitting.config.SPLIT_FROM_ROWS` fitted rows per domain, ``"split_weak_d"`` under
        :data:`~bayes_dcpt.fitting.config.CENTRED_D_DROP_FROM_ROWS`, ``"split"`` from there on),
        ``"centered"``, ``"noncentered"``, ``"mixed"`` (centred for the domain loss only), ``"split"`` (centred
        levels and drops, non-centred shares; ``MODEL.md``) or ``"split_weak_d"`` (as ``"split"``, the general
        loss's drop along D non-centred; both sample the shares' spread on a tighter prior and NUTS at
        target_accept 0.95, :data:`~bayes_dcpt.fitting.config.DENSE_SHARE_SPREAD`); the paper's C > C0
        constraint; the domain-loss levels per domain (``"separate"``) or pooled.
    run_offsets
        ``"marginal"`` (default): the per-run offsets integrated out of the likelihood in closed form (the
        same model for a Normal likelihood; robust: one Student-t scale per run); ``"latent"``: sampled
        (slower to mix, see BENCHMARKS.md; kept for comparison and for fits saved before this option).
    probe_tokens
        The probe budget that defines the DLC feature k2 (cross-domain law).
    prior_scale
        Multiplies every prior standard deviation (prior sensitivity).
    zero_ratio
        Also fit losses measured with none of their own corpus in the mixture (the general loss at
        ``r_domain = 1``, the domain loss at ``r_domain = 0``). Off by default: the paper finds the law
        meaningless below a small inflection ratio (appendix I.3); such rows stay in the data and in the
        reference losses.
    burn_in
        ``"warmup"`` (default): leave out the checkpoints measured inside their run's LR warm-up (before the run
        first reaches its peak LR; the ``step`` and ``schedule`` columns tell, else ``lr``:
        :mod:`bayes_dcpt.data.warmup`), a transient no scaling law describes; ``"none"``:
        fit every checkpoint.
    noise_scope
        ``"domain"`` (default): the noise scales (checkpoint sigma, run offset tau, Student-t nu) are each
        (target, domain)'s own, so a domain the law misses or a noisier domain does not set the others' bands;
        ``"target"``: one set per target shared by the domains (fits saved before this option).
    replay_scope
        The CPT law only: ``"domain"`` (default): the replay balance ``rho`` (how much faster general tokens undo
        forgetting than domain tokens cause it) is each (target, domain)'s own -- it sets how the general loss's
        rise bends in r, which differs between domains (the example grid: about 5 for python, 23 for codec_tables)
        and decides r*; ``"target"``: one per target (fits saved before this option).
    rate_scope
        The CPT law only: ``"general"``: the general loss's capability exponent ``psi`` of the rate is one for all
        domains (each keeps its own rate ``lam``; the domain loss's stay per domain); ``"domain"``: one per
        (target, domain). Default (None): ``"general"`` with the transfer, ``"domain"`` without. Per domain the
        general loss's is the loosest of the law's exponents, and with the transfer the fit of two sizes did not
        converge (a ridge of the rate, the amplitude and the transfer; BENCHMARKS.md, "The transfer with one rate
        exponent").
    rewarm
        The CPT law only: also fit the re-warming rise of the general loss (``w c^phi_w``): re-warming the learning
        rate lifts the general loss at every mixture, r = 0 included. Off by default: it calibrates the bands of a
        held-out ratio but extrapolates worse in tokens and size (the rise fades; BENCHMARKS.md).
    share_power
        The CPT law only: the general loss's forgetting grows with ``s^eta_s`` (each domain its own exponent)
        instead of the domain share ``s`` itself, so a domain whose general loss rises early in r is described.
    transfer
        The CPT law only: the general loss keeps learning from the domain tokens too, ``h ((1 - s) + xi s)`` in
        place of ``h (1 - s)`` (each domain its own ``xi ~ LogNormal(0, 0.75)``): on both shuffled probe grids the
        general loss of the late checkpoints recovers at high r faster than the general tokens alone explain, and
        without it r* at a larger size sits low (BENCHMARKS.md, "Why r* at a larger size misses", "The transfer
        with one rate exponent"). Opt-in: it extrapolates the example grid's general loss worse in
        size and its fits fail the sampler checks more often.
    xi_sd
        The CPT law with the transfer only: the prior sd of ``log xi`` (default :data:`XI_SD`; a refit of a
        transfer fit saved before 2026-12-07 passes its 1.5).
    replay_size
        The CPT law only (default True; ignored by the other laws): the general loss's replay balance grows with
        the model's capability, ``rho c^chi`` (each domain its own ``chi``): on both probe grids pure-domain CPT
        forgets more at larger N while mixed runs do not; without it the law's r* falls with N where the measured
        crossing does not, and every general-loss extrapolation split is scored worse (BENCHMARKS.md, "Replay that
        grows with the model"). False: the law as fitted before 2026-12-07.
    sampler_kwargs
        Extra sampler settings (nutpie: ``adaptation``, ``target_accept``, ``backend``, ``init`` -- ``"jitter"``,
        nutpie's own start, or ``"optimum"``, chains started near the log density's optimum -- ...; PyMC/numpyro:
        the ``nuts`` dict).
    run_slots
        At least this many run slots in the compiled model: a refit on part of a fit's data passes the fit's
        (``fit.design.run_capacity``) to reuse its compiled model.
    discrepancy
        (:func:`bayes_dcpt.fit` only) calibrate the bands for extrapolation from held-out refits (default True;
        see :mod:`bayes_dcpt.fitting.extrapolation`); ``False`` skips the refits.
    """
    law_ = get_law(law)
    if burn_in not in ("warmup", "none"):
        raise FitError("burn_in must be 'warmup' or 'none'")
    if noise_scope not in ("domain", "target"):
        raise FitError(f"noise_scope must be 'domain' or 'target', not {noise_scope!r}")
    if rate_scope is None:
        rate_scope = "general" if transfer else "domain"
    for name, scope, ok in (("replay_scope", replay_scope, ("domain", "target")),
                            ("rate_scope", rate_scope, ("domain", "general"))):
        if scope not in ok:
            raise FitError(f"{name} must be {' or '.join(map(repr, ok))}, not {scope!r}")
    _check_options(law_, sampler, parametrization, domain_levels, run_offsets, draws, tune, chains)
    df = _data.load(data)
    cpt = law_.family == "cpt"  # the options of the CPT law alone take effect for it only
    cfg = FitConfig(law=law_.name, target=target, robust=robust, run_effect=_identifiable_run_effect(df, run_effect),
                    hierarchical=hierarchical,
                    parametrization=resolve_parametrization(parametrization, df), monotone=monotone,
                    probe_tokens=probe_tokens, prior_scale=prior_scale, zero_ratio=zero_ratio,
                    domain_levels=domain_levels, run_offsets=run_offsets, burn_in=burn_in, noise_scope=noise_scope,
                    replay_scope=replay_scope, rate_scope=rate_scope if cpt else "domain", rewarm=bool(rewarm),
                    share_power=bool(share_power), transfer=bool(transfer) and cpt, xi_sd=float(xi_sd),
                    replay_size=bool(replay_size) and cpt)
    # the dense hierarchy's NUTS settings (the CPT law has no such hierarchy): more draws, smaller steps
    dense_nuts = law_.family != "cpt" and is_dense(cfg.parametrization) and sampler in ("nutpie", "pymc", "numpyro")
    if draws is None:
        draws = DENSE_DRAWS if dense_nuts else DEFAULT_DRAWS
    if law_.family == "cpt":  # the base-anchored law fits every own ratio (it is meaningful at 0)
        result = fit_cpt(df, replace(cfg, zero_ratio=True), draws=draws, tune=tune, chains=chains, cores=cores,
                         seed=seed, sampler=sampler, progressbar=progressbar, sampler_kwargs=sampler_kwargs,
                         run_slots=run_slots)
        if warn:
            result.diagnostics(warn=True)
        return result
    if dense_nuts and "target_accept" not in (sampler_kwargs or {}):
        sampler_kwargs = {**(sampler_kwargs or {}), "target_accept": DENSE_TARGET_ACCEPT}
    design = make_design(df, law_, cfg, run_slots)
    entry = get_model(law_, cfg, design)
    names = [p.name for p in law_.params] + ["sigma", "tau", "nu", "K", "sigma_K"]
    idata, diag, sampler_config = run_sampler(entry, sampler, names, draws=draws, tune=tune, chains=chains,
                                              cores=cores, seed=seed, progressbar=progressbar,
                                              sampler_kwargs=sampler_kwargs)
    import xarray as xr

    cd = xr.Dataset({k: ((), np.asarray(v)) for k, v in entry["arrays"].items() if np.ndim(v) == 0})
    idata["constant_data"] = xr.DataTree(cd)
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
