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

The model (one parameter set per (target, domain) group, run offsets as in the D-CPT fit) and the reasons for its
parameterisation and priors are in ``MODEL.md`` beside this file; :mod:`~bayes_dcpt.fitting.dynamics_model` builds
it and :func:`dynamics_prior_table` lists the priors (every saved fit carries the table in its model card).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from bayes_dcpt import hooks
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.dynamics import load_dynamics
from bayes_dcpt.errors import BayesDCPTError, FitError
from bayes_dcpt.fitting.base import BaseFit, config_ctx, flat_draws, noise_draws
from bayes_dcpt.fitting.config import DynamicsConfig
from bayes_dcpt.fitting.diagnostics import Diagnostics, dynamics_remedies
from bayes_dcpt.fitting.dynamics_model import (
    DynamicsDesign,
    choose_variant,
    get_dynamics_model,
    make_dynamics_design,
)
from bayes_dcpt.fitting.dynamics_model import clear_model_cache as clear_model_cache
from bayes_dcpt.fitting.priors import dynamics_prior_table
from bayes_dcpt.fitting.samplers import check_counts, check_sampler, run_sampler
from bayes_dcpt.laws.dynamics import DYNAMICS_LAWS
from bayes_dcpt.laws.lr_schedules import DEFAULT_MOMENTUM, phase_areas
from bayes_dcpt.laws.registry import Law, get_law
from bayes_dcpt.posterior.dynamics import DynamicsPosterior

__all__ = ["DynamicsConfig", "DynamicsFit", "choose_variant", "dynamics_prior_table", "fit_dynamics",
           "load_dynamics_fit", "select_momentum"]


def _ctx(df: pd.DataFrame, momentum: float) -> dict[str, Any]:
    """What predictions need beside the draws: the momentum, each base model's schedule and tokens per step."""
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


def _posterior(idata: Any, law: Law, groups: Sequence[tuple[str, str]], targets: Sequence[str], ctx: dict,
               reference: pd.DataFrame) -> DynamicsPosterior:
    """The plain-numpy posterior of a dynamics model's draws (one parameter set per group)."""
    post = idata["posterior"]
    params = {}
    for gi, (t, d) in enumerate(groups):
        params[(t, d)] = {par.name: flat_draws(post, par.name)[:, gi] for par in law.params}
    return DynamicsPosterior(law, params, noise_draws(post, targets), ctx=ctx, reference=reference)


class DynamicsFit(BaseFit):
    """A Bayesian fit of the CPT dynamics law: posterior, diagnostics, curve predictions, decisions.

    Create with :func:`fit_dynamics` (or :func:`load_dynamics_fit`); never samples in ``__init__``.
    """

    LABEL = "dynamics fit"
    SAVED_NUMERIC = (*_data.REQUIRED_COLUMNS[1:], *_data.LOSS_COLUMNS, "step")
    SAVED_TEXT = ("domain", "run_id", "schedule", "base_schedule")
    LOO_POINTWISE = True
    ADEQUACY = False  # the checks need predictions on the data's own rows; dynamics rows carry LR schedules

    def __init__(self, data: pd.DataFrame, law: Law, config: DynamicsConfig, idata: Any, *,
                 sampler_config: Mapping[str, Any], diagnostics: Diagnostics, groups: Sequence[tuple[str, str]],
                 notes: Sequence[str] = (), design: DynamicsDesign | None = None):
        super().__init__(data, law, config, idata, sampler_config=sampler_config, diagnostics=diagnostics,
                         design=design)
        self.groups = [tuple(g) for g in groups]
        self.targets = tuple(t for t in ("general", "domain") if any(g[0] == t for g in self.groups))
        self.domains = sorted({g[1] for g in self.groups})
        self.notes = list(notes)
        ctx = config_ctx(_ctx(data, config.momentum), config)
        self.posterior = _posterior(idata, law, self.groups, self.targets, ctx, _data.base_losses(data))

    def remedies(self) -> list[str]:
        """What to try when the diagnostics are bad."""
        return dynamics_remedies(self._diagnostics)

    def priors(self) -> pd.DataFrame:
        """The priors of this fit's law variant, as sampled, with their reasons (:func:`dynamics_prior_table`)."""
        return dynamics_prior_table(self.law.name, self.config)

    def predict(self, rows: pd.DataFrame | Mapping[str, Any], ci: float = CI_PROB, *, kind: str = "predictive",
                seed: int = 0) -> pd.DataFrame:
        """Bands for points of any runs (see :meth:`DynamicsPosterior.predict`)."""
        return super().predict(rows, ci, kind=kind, seed=seed)

    def curve(self, domain: str, n_params: float, r_domain: float, schedule: Any, *, ci: float = CI_PROB,
              kind: str = "predictive", base_schedule: Any = None, seed: int = 0) -> pd.DataFrame:
        """The whole predicted curve (every CPT step) of one run with ``schedule``."""
        rows = self.posterior.curve_rows(domain, n_params, r_domain, schedule, base_schedule=base_schedule)
        return self.posterior.predict(rows, ci, kind=kind, seed=seed)

    def choose(self, candidates: Any, **kwargs: Any):
        """Which schedule and replay ratio: sugar for :func:`bayes_dcpt.decide.choose_schedule`."""
        return hooks.call("choose_schedule", self, candidates, **kwargs)

    # ------------------------------------------------------------------------------------ base hooks
    def _make_design(self) -> DynamicsDesign:
        return make_dynamics_design(self.data, self.law, self.config)

    def _model_entry(self) -> dict[str, Any]:
        return get_dynamics_model(self.law, self.config, self.design)

    def _loo_rows(self) -> pd.DataFrame:
        return self.design.obs.assign(r_domain=self.design.obs["r_cpt"])

    def _card_layout(self) -> dict[str, Any]:
        return {"groups": self.groups}

    def _card_extra(self) -> dict[str, Any]:
        return {"notes": self.notes}

    def _repr_layout(self) -> str:
        return f"groups={[f'{t}/{d}' for t, d in self.groups]}"

    @classmethod
    def _check_card(cls, path: Path, card: Mapping[str, Any]) -> None:
        if card.get("law") not in DYNAMICS_LAWS:
            raise BayesDCPTError(f"{path}: a fit of law {card.get('law')!r}, not of the CPT dynamics law; "
                                 "use bayes_dcpt.fitting.load_fit")

    @classmethod
    def _data_from_file(cls, raw: pd.DataFrame) -> pd.DataFrame:
        for c in ("schedule", "base_schedule"):
            raw[c] = raw[c].map(lambda v: None if v == "" else v)
        return load_dynamics(raw)

    @classmethod
    def _from_card(cls, data: pd.DataFrame, tree: Any, card: Mapping[str, Any],
                   diagnostics: Diagnostics) -> Self:
        cfg = DynamicsConfig(**{"run_offsets": "latent", "nu_floor": 0.0, **card["config"]})  # older cards: old model
        return cls(data, get_law(card["law"]), cfg, tree, sampler_config=card["sampler"], diagnostics=diagnostics,
                   groups=card["groups"], notes=card.get("notes", ()))


def load_dynamics_fit(path: str | Path) -> DynamicsFit:
    """Read a fit written by :meth:`DynamicsFit.save` (predicts without PyMC compilation)."""
    return DynamicsFit.load(path)


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
    robust, run_effect, prior_scale, run_offsets
        Student-t likelihood; per-run offsets; a factor on every prior sd; the offsets integrated out
        (``"marginal"``, default) or sampled (``"latent"``).
    progressbar, warn
        Show the sampler's progress; warn when the diagnostics are bad.
    """
    df = load_dynamics(data, schedules=schedules)
    name = choose_variant(df) if str(law).lower() == "auto" else get_law(law).name
    law_ = get_law(name)
    if law_.family != "cpt-dynamics":
        raise FitError(f"law {law_.name!r} is not a CPT dynamics law; use bayes_dcpt.fit for it")
    check_sampler(sampler)
    check_counts(draws, tune, chains)
    cfg = DynamicsConfig(law=law_.name, target=target, momentum=float(momentum), robust=robust,
                         run_effect=run_effect, prior_scale=prior_scale, run_offsets=run_offsets)
    if run_offsets not in ("marginal", "latent"):
        raise FitError("run_offsets must be 'marginal' or 'latent'")
    phase_areas(None, None, cfg.momentum)  # validates the momentum
    design = make_dynamics_design(df, law_, cfg)
    entry = get_dynamics_model(law_, cfg, design)
    names = [p.name for p in law_.params] + ["sigma", "tau", "nu"]
    idata, diag, sampler_config = run_sampler(entry, sampler, names, draws=draws, tune=tune, chains=chains,
                                              cores=cores, seed=seed, progressbar=progressbar,
                                              sampler_kwargs=sampler_kwargs)
    res = DynamicsFit(df, law_, cfg, idata, sampler_config=sampler_config, diagnostics=diag, groups=design.groups,
                      notes=design.notes, design=design)
    if warn:
        res.diagnostics(warn=True)
    return res
