"""Bayesian fit of the base-anchored CPT law (``law="cpt"``): ``fit_cpt``, ``CPTFit``.

The same interface as every fit (diagnostics, adequacy, summary, predict, LOO, save / load); the model is in
:mod:`~bayes_dcpt.fitting.cpt_model`, the law in :mod:`bayes_dcpt.laws.cpt`. Every own ratio is fitted, the zero
ratios included: the law is meaningful there (no domain data leaves the domain loss at its base; no general data
is where forgetting is largest).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.fitting.base import BaseFit, DecisionMethods, config_ctx, flat_draws, noise_ctx, noise_draws
from bayes_dcpt.fitting.config import FitConfig
from bayes_dcpt.fitting.cpt_model import CPTDesign, cpt_prior_table, get_cpt_model, make_cpt_design
from bayes_dcpt.fitting.diagnostics import Diagnostics, dcpt_remedies
from bayes_dcpt.laws.registry import Law, get_law
from bayes_dcpt.posterior.cpt import CPTPosterior

__all__ = ["CPTFit", "cpt_posterior", "fit_cpt"]

_OWN = {"general": ("h", "w", "phi_w"), "domain": ("sc",)}
#: The parameters reported, checked and kept (``w`` and ``phi_w`` only in fits with the re-warming rise, ``eta_s``
#: only with the share's exponent, ``xi`` only with the transfer, ``chi`` only with replay_size).
_NAMES = ("amp", "lam", "phi", "psi", "rho", "kappa", "h", "sc", "w", "phi_w", "eta_s", "xi", "chi", "sigma",
          "sigma_move", "tau", "nu")


def cpt_posterior(idata: Any, law: Law, targets: Sequence[str], domains: Sequence[str], ctx: dict,
                  reference: pd.DataFrame) -> CPTPosterior:
    """The plain-numpy :class:`CPTPosterior` of a CPT model's draws."""
    post = idata["posterior"]
    params: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for ti, t in enumerate(targets):
        for di, d in enumerate(domains):
            p = {k: flat_draws(post, k)[:, ti, di] for k in ("amp", "lam", "phi", "psi")}
            p.update({k: flat_draws(post, k)[:, ti] for k in ("rho", "kappa")})
            if p["rho"].ndim == 2:  # the replay balance per (target, domain) (replay_scope="domain")
                p["rho"] = p["rho"][:, di]
            p.update({k: flat_draws(post, k) for k in _OWN[t] if k in post.data_vars})
            for k in ("eta_s", "xi", "chi"):  # per domain: share_power's exponent, the transfer, replay_size
                if t == "general" and k in post.data_vars:
                    p[k] = flat_draws(post, k)[:, di]
            params[(t, d)] = p
    noise = noise_draws(post, targets, ("sigma", "tau", "nu", "sigma_move"))
    return CPTPosterior(law, params, noise, ctx={**ctx, **noise_ctx(post)}, reference=reference)


class CPTFit(DecisionMethods, BaseFit):
    """A Bayesian fit of the base-anchored CPT law. Create with :func:`fit_cpt` (``fit(law="cpt")``)."""

    LABEL = "fit"
    SAVED_NUMERIC = (*_data.REQUIRED_COLUMNS[1:], *_data.LOSS_COLUMNS)
    SAVED_TEXT = ("domain", "run_id")

    def __init__(self, data: pd.DataFrame, law: Law, config: FitConfig, idata: Any, *,
                 sampler_config: Mapping[str, Any], diagnostics: Diagnostics, design: CPTDesign | None = None,
                 d_ref: float | None = None):
        super().__init__(data, law, config, idata, sampler_config=sampler_config, diagnostics=diagnostics,
                         design=design)
        self.targets = _data.targets_of(config.target)
        design = self.design
        self.domains = list(design.domains)
        # the reference token count the model was sampled with (a loaded fit: its card's), never re-derived
        # the base-anchored law fits every own ratio, 0 included (zero_ratio)
        ctx = config_ctx({"D_ref": design.d_ref if d_ref is None else float(d_ref), "heteroscedastic": 1.0,
                              "zero_ratio": 1.0}, config)
        self.posterior = cpt_posterior(idata, law, self.targets, self.domains, ctx, _data.base_losses(data))

    @property
    def var_names(self) -> list[str]:
        """The parameters reported by :meth:`summary` and checked by :meth:`diagnostics`."""
        post = self.idata["posterior"]
        names = [n for n in _NAMES if n in post.data_vars]
        return names + [str(n) for n in post.data_vars if str(n).startswith(("mu_", "sd_"))]

    def remedies(self) -> list[str]:
        """What to try when the diagnostics are bad, most specific first (from this fit's model and data)."""
        return dcpt_remedies(self.config, self.data, len(self.domains), self.sampler_config, self._diagnostics)

    def priors(self) -> pd.DataFrame:
        """The priors of the CPT law's fit, as sampled, with their reasons."""
        return cpt_prior_table(self.config)


    # ------------------------------------------------------------------------------------ base hooks
    def _make_design(self) -> CPTDesign:
        return make_cpt_design(self.data, self.config)

    def _model_entry(self) -> dict[str, Any]:
        return get_cpt_model(self.config, self.design)

    def _card_extra(self) -> dict[str, Any]:
        return {"D_ref": float(self.posterior.ctx["D_ref"])}

    @classmethod
    def _from_card(cls, data: pd.DataFrame, tree: Any, card: Mapping[str, Any], diagnostics: Diagnostics) -> Self:
        # older cards: noise and replay balance per target, no re-warming rise
        older = {"noise_scope": "target", "replay_scope": "target", "rewarm": False, "share_power": False,
                 "transfer": False, "replay_size": False}
        cfg = FitConfig(**{**older, **card["config"]})
        if "D_ref" not in card and cfg.burn_in == "warmup" and "lr" not in data:
            warnings.warn("this CPT fit was saved by an older bayes-dcpt without its lr column and reference token "
                          "count: D_ref is re-derived from every row, LR warm-up included, and its predictions can "
                          "be off by about half a percent; refit it (or `make models` for the example models)",
                          UserWarning, stacklevel=2)
        return cls(data, get_law(card["law"]), cfg, tree, sampler_config=card["sampler"],
                   diagnostics=diagnostics, d_ref=card.get("D_ref"))


def fit_cpt(df: pd.DataFrame, cfg: FitConfig, *, draws: int, tune: int, chains: int, cores: int | None, seed: int,
            sampler: str, progressbar: bool, sampler_kwargs: Mapping[str, Any] | None,
            run_slots: int | None = None) -> CPTFit:
    """Sample the CPT law's model for validated measurements ``df`` under ``cfg`` (see :func:`bayes_dcpt.fit`)."""
    from bayes_dcpt.fitting.samplers import run_sampler

    design = make_cpt_design(df, cfg, run_slots)
    entry = get_cpt_model(cfg, design)
    names = [n for n in _NAMES if n in entry["model"].named_vars]  # the opt-in terms' only where fitted
    idata, diag, sampler_config = run_sampler(entry, sampler, names, draws=draws, tune=tune, chains=chains,
                                              cores=cores, seed=seed, progressbar=progressbar,
                                              sampler_kwargs=sampler_kwargs)
    return CPTFit(df, get_law("cpt"), cfg, idata, sampler_config=sampler_config, diagnostics=diag, design=design)
