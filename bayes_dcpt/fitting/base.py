"""The base class of the Bayesian fits: what a D-CPT fit, a dynamics fit and a stacked fit all offer.

A fit holds its data, law, configuration and posterior draws (an ArviZ DataTree, ``idata``) and gives the same
interface whatever its model: diagnostics with remedies, a summary table, predictions (delegated to its plain-numpy
:class:`~bayes_dcpt.posterior.draws.Posterior`), the log-likelihood and PSIS-LOO, a model card, and a netCDF file
it can be rebuilt from without refitting (pymc-marketing's ModelBuilder / ModelIO idea). A subclass names its
kind of fit and fills in the hooks: its design and model, its priors, its layout in the card, its file reader.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from bayes_dcpt import hooks
from bayes_dcpt._version import __version__
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import BayesDCPTError, MisfitWarning
from bayes_dcpt.fitting.baselines import point_baselines
from bayes_dcpt.fitting.diagnostics import (
    Diagnostics,
    chain_labels,
    diagnostics_from_card,
    misfit_remedies,
    sampler_remedy,
    warn_convergence,
)
from bayes_dcpt.fitting.discrepancy import attach_data_context, data_envelope
from bayes_dcpt.fitting.io import read_fit_file, write_fit_file
from bayes_dcpt.fitting.marginal import marginal_log_likelihood
from bayes_dcpt.laws.registry import Law
from bayes_dcpt.posterior.adequacy import Adequacy, check_adequacy
from bayes_dcpt.posterior.heldout import PredictionCheck, check_predictions

__all__ = ["BaseFit", "DecisionMethods", "config_ctx", "flat_draws", "noise_ctx", "noise_draws", "psis_loo",
           "summary_table"]


# ------------------------------------------------------------------------------- posterior helpers
def flat_draws(post: Any, name: str) -> np.ndarray:
    """A posterior variable's draws with chains and draws flattened into one leading axis."""
    da = post[name]
    arr = np.asarray(da.transpose("chain", "draw", ...) if hasattr(da, "transpose") and "chain" in da.dims else da)
    return arr.reshape(arr.shape[0] * arr.shape[1], *arr.shape[2:])  # chain-major: BaseFit.modes relies on it


def noise_draws(post: Any, targets: Sequence[str],
                names: Sequence[str] = ("sigma", "tau", "nu")) -> dict[str, dict[str, np.ndarray]]:
    """Per target, the draws of the noise parameters (``tau`` zero without a run effect; ``nu`` when robust).

    Each is ``(S,)`` for noise per target, ``(S, n_domains)`` for noise per (target, domain), its columns in the
    order of :func:`noise_ctx`'s ``noise_domains``.
    """
    noise: dict[str, dict[str, np.ndarray]] = {}
    for ti, t in enumerate(targets):
        nz = {nm: flat_draws(post, nm)[:, ti] for nm in names if nm in post.data_vars}
        if "tau" not in nz:
            nz["tau"] = np.zeros_like(nz["sigma"])
        noise[t] = nz
    return noise


def noise_ctx(post: Any) -> dict[str, Any]:
    """``{"noise_domains": [...]}`` (the column order of the noise draws) when the fit's noise is per domain."""
    return {"noise_domains": [str(d) for d in post["sigma"].coords["domain"].values]} \
        if "domain" in post["sigma"].dims else {}


def config_ctx(ctx: dict[str, Any], config: Any) -> dict[str, Any]:
    """Mark on a posterior's ``ctx`` what of its fit's configuration its predictions and updates must follow.

    ``run_mixing``: a robust fit with integrated run offsets (a run's offset and noise share one Student-t scale,
    :mod:`bayes_dcpt.fitting.marginal`). ``burn_in_warmup``: the fit left each run's LR warm-up out, so measured
    rows inside it are neither scored against its bands nor conditioned on when it learns from new runs.
    """
    if config.run_effect and config.robust and config.run_offsets == "marginal":
        ctx["run_mixing"] = 1.0
    if getattr(config, "burn_in", "none") == "warmup":
        ctx["burn_in_warmup"] = 1.0
    return ctx


def summary_table(idata: Any, var_names: Sequence[str], approximate: bool, ci: float) -> pd.DataFrame:
    """ArviZ summary with a ``ci`` HDI; R-hat and ESS only for MCMC (an approximation has none)."""
    import arviz as az

    if approximate:
        return az.summary(idata, var_names=list(var_names), kind="stats", ci_kind="hdi", ci_prob=ci)
    return az.summary(idata, var_names=list(var_names), ci_kind="hdi", ci_prob=ci)


def psis_loo(idata: Any, pointwise: bool = False) -> Any:
    """PSIS-LOO of a posterior whose ``log_likelihood`` group is present."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return az.loo(idata, pointwise=pointwise) if pointwise else az.loo(idata)


# ------------------------------------------------------------------------------------ the base class

class DecisionMethods:
    """``optimize`` and ``suggest`` of a fit whose posterior answers the paper's usages (not the dynamics fit's)."""

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


class BaseFit:
    """A Bayesian fit: posterior draws, diagnostics, summary, predictions, LOO, model card and file.

    Subclasses set :attr:`LABEL` (how warnings name the fit), :attr:`SAVED_NUMERIC` / :attr:`SAVED_TEXT` (the
    data columns saved as floats / strings) and implement the hooks ``priors``, ``_make_design``,
    ``_model_entry``, ``_loo_rows``, ``_card_layout``, ``_repr_layout``, ``_data_from_file`` and
    ``_from_card``; their ``__init__`` sets ``targets`` and ``posterior`` after calling this one.
    """

    LABEL: ClassVar[str] = "fit"
    SAVED_NUMERIC: ClassVar[tuple[str, ...]] = ()
    SAVED_TEXT: ClassVar[tuple[str, ...]] = ()
    #: whether :meth:`loo` keeps the pointwise terms (and Pareto k values)
    LOO_POINTWISE: ClassVar[bool] = False
    #: whether the posterior predictive checks of :meth:`adequacy` apply to this kind of fit
    ADEQUACY: ClassVar[bool] = True

    law: Law
    posterior: Any
    targets: tuple[str, ...]

    def __init__(self, data: pd.DataFrame, law: Law, config: Any, idata: Any, *, sampler_config: Mapping[str, Any],
                 diagnostics: Diagnostics, design: Any = None):
        self.data = data
        self.law = law
        self.config = config
        self.idata = idata
        self.sampler_config = dict(sampler_config)
        self._diagnostics = diagnostics
        self._design = design
        self._adequacy: Adequacy | None = None
        #: The held-out calibration of the bands (:func:`bayes_dcpt.fitting.extrapolation.calibrate`), if made.
        self.extrapolation: dict[str, Any] | None = None

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
        """Divergences, R-hat max, ESS min (bulk and tail), BFMI min, and whether the law describes the data.

        Warns loudly when any is bad: one :class:`~bayes_dcpt.errors.ConvergenceWarning` for the sampler and the
        held-out refits that did not converge (:func:`~bayes_dcpt.fitting.diagnostics.warn_convergence`),
        :class:`~bayes_dcpt.errors.MisfitWarning` when the posterior predictive checks fail (:meth:`adequacy`).
        """
        adequacy = self.adequacy()
        misfit = () if adequacy is None or adequacy.ok else tuple(
            f"{c.where()}: {c.message}" for c in adequacy.failures)
        d = replace(self._diagnostics, misfit=misfit)
        if warn:
            warn_convergence(self, None if d.sampler_ok else (
                f"bayes-dcpt {self.LABEL} diagnostics: {'; '.join(d.problems)}. Do not trust these intervals before "
                f"fixing this ({'; '.join(self.remedies())})."), stacklevel=2)
        if warn and misfit:
            tries = misfit_remedies(adequacy, self.law.family, len(self.domains))
            warnings.warn(f"bayes-dcpt {self.LABEL}: the law does not describe the data. {adequacy.summary()}. "
                          f"Its predictions and decisions are not to be trusted; try {'; '.join(tries)}.",
                          MisfitWarning, stacklevel=2)
        return d

    def modes(self) -> list[Any]:
        """One posterior per group of chains that share no posterior region, else ``[self.posterior]``.

        When the sampler's chains sit in separate modes (:attr:`Diagnostics.chain_groups`, named by
        :meth:`diagnostics`), the pooled draws are a mixture nobody chose; each mode's posterior can be asked on its
        own (``fit.modes()[i].predict(held_out)``) to see which way of fitting the data predicts what it did not see.
        Draws are in chain-major order, as in :attr:`posterior`.
        """
        groups = self._diagnostics.chain_groups
        if len(groups) < 2:
            return [self.posterior]
        post = self.idata["posterior"]
        chains = chain_labels(post)
        n = int(post.sizes["draw"])
        return [self.posterior.subset(np.concatenate([np.arange(chains.index(c) * n, (chains.index(c) + 1) * n)
                                                      for c in g])) for g in groups]

    def adequacy(self) -> Adequacy | None:
        """Posterior predictive checks: does the law describe the data? (computed once; ``None`` if not defined).

        See :func:`bayes_dcpt.posterior.adequacy.check_adequacy`: coverage of the predictive band, residual
        trends along log D, r and log N, LOO-PIT and the noise tails, per target, domain and size.
        """
        if not self.ADEQUACY:
            return None
        if getattr(self, "_adequacy", None) is None:
            # the rows with none of their own corpus are checked when the posterior fits them: a stacked one's
            # rule is that of the laws it draws from (taken from every candidate, a law left out of the stack
            # narrowed the rows, and on the long grid the stack then failed a trend test its one law passed)
            self._adequacy = check_adequacy(self.posterior, self.fitted_data(),
                                            zero_ratio=self.posterior.fits_zero_ratio)
        return self._adequacy

    def fitted_data(self) -> pd.DataFrame:
        """The rows the model was fitted to: :attr:`data` without the LR warm-up checkpoints (``burn_in``)."""
        return self.config.fitted_data(self.data) if hasattr(self.config, "fitted_data") else self.data

    def remedies(self) -> list[str]:
        """What to try when the diagnostics are bad, most specific first."""
        return [sampler_remedy(self.sampler_config, self._diagnostics)]

    def summary(self, ci: float = CI_PROB, var_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Posterior mean, sd, ``ci`` HDI, R-hat and ESS of every reported parameter."""
        return summary_table(self.idata, var_names or self.var_names, self._diagnostics.approximate, ci)

    def predict(self, frame: pd.DataFrame, ci: float = CI_PROB, *, kind: str = "predictive",
                seed: int = 0) -> pd.DataFrame:
        """Posterior predictive bands for the rows of ``frame`` (see the posterior's ``predict``).

        ``kind="predictive"`` includes a new run's offset and the checkpoint noise; ``kind="mean"`` is the
        band of the law itself. Returns ``loss_<target>_mean``, ``_lo``, ``_hi`` for each fitted target.
        """
        return self.posterior.predict(frame, ci, kind=kind, seed=seed)

    def check_predictions(self, data: pd.DataFrame, ci: float = CI_PROB, *, seed: int = 0,
                          baseline: bool = False) -> PredictionCheck:
        """How well the predictive bands hold measured losses, e.g. of runs trained after the fit.

        Predicts the CPT rows of ``data`` (a table of the data schema) and scores the measured losses against
        the ``ci`` bands per (target, domain): MAPE, the sign of the error, coverage and which side the misses
        fall on, judged calibrated in ``[ci - 0.10, ci + 0.05]`` (:mod:`bayes_dcpt.posterior.heldout`). Rows
        the fit had are scored apart, not judged. ``baseline``: also fit the paper's point fits of L3 and L1 to
        this fit's data, each domain alone (seconds; minutes at tens of thousands of rows), and score their
        predictions of the same rows beside it (:mod:`bayes_dcpt.fitting.baselines`). ``print()`` the result for
        the verdict and the problems, ``.table`` for every group.
        """
        rows = _data.fit_rows(_data.load(data)).reset_index(drop=True)
        return self.check_predicted(self.predict(rows, ci, seed=seed), ci, baseline=baseline)

    def check_predicted(self, pred: pd.DataFrame, ci: float = CI_PROB, *, baseline: bool = False) -> PredictionCheck:
        """:meth:`check_predictions` of predictions already made (:meth:`predict`'s output, measured losses kept)."""
        base = point_baselines(self.data, pred) if baseline else None
        return check_predictions(pred, ci, fitted=self.data, baselines=base,
                                 zero_ratio=bool(getattr(self.posterior, "fits_zero_ratio", True)),
                                 warmup=self.posterior.leaves_out_warmup)

    def priors(self) -> pd.DataFrame:
        """The priors of this fit, as sampled, with their reasons (saved in the model card)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ model and LOO
    @property
    def design(self) -> Any:
        """The model's data arrays (rebuilt from the data after loading)."""
        if self._design is None:
            self._design = self._make_design()
        return self._design

    @property
    def model(self) -> Any:
        """The PyMC model (built or fetched from the cache, with this fit's data)."""
        return self._model_entry()["model"]

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
            self.idata["log_likelihood"] = marginal_log_likelihood(self.idata, self.posterior, self._loo_rows(),
                                                                   self.targets)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pm.compute_log_likelihood(self.idata, model=self.model, progressbar=False)
        return self.idata["log_likelihood"]

    def loo(self) -> Any:
        """PSIS-LOO of this fit (ArviZ ``ELPDData``): compare laws or settings fitted to the same data."""
        self.log_likelihood()
        return psis_loo(self.idata, pointwise=self.LOO_POINTWISE)

    # ---------------------------------------------------------------------------------- card and file
    def card(self) -> dict[str, Any]:
        """The model card saved with the fit."""
        return {
            "package": "bayes-dcpt",
            "version": __version__,
            "law": self.law.name,
            "law_formula": self.law.title,
            "config": asdict(self.config),
            "config_key": self.config.key(),
            "priors": self.priors().to_dict(orient="records"),
            "data_hash": _data.data_hash(self.data),
            "data_rows": len(self.data),
            **self._card_layout(),
            "sampler": self.sampler_config,
            "diagnostics": self.diagnostics(warn=False).as_dict(),
            **({"adequacy": a.as_dict()} if (a := self.adequacy()) is not None else {}),
            **self._card_extra(),
            **({"extrapolation": self.extrapolation} if getattr(self, "extrapolation", None) else {}),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def save(self, path: str | Path) -> Path:
        """Write the fit to netCDF (posterior + model card + the fitted data); :meth:`load` reads it.

        A numeric ``seed`` column goes with the data (runs of different sizes with one seed share a data stream).
        The columns that tell the LR warm-up (``lr``, ``step``, ``schedule``: :mod:`bayes_dcpt.data.warmup`) go
        with the data when the fit has them and leaves out the warm-up (``burn_in``): without them a loaded fit
        would count the warm-up checkpoints among its data (its design, adequacy checks and leave-one-out), and
        the CPT law's reference token count with them.
        """
        numeric, text = tuple(self.SAVED_NUMERIC), tuple(self.SAVED_TEXT)
        if hasattr(self.config, "fitted_data"):
            numeric += tuple(c for c in ("lr", "step") if c in self.data and c not in numeric
                             and _numeric_or_missing(self.data[c]))
            text += tuple(c for c in ("schedule",) if c in self.data and c not in text)
        if "seed" in self.data and "seed" not in numeric and _numeric_or_missing(self.data["seed"]):
            numeric += ("seed",)  # which runs share a data stream (bayes_dcpt.posterior.streams)
        return write_fit_file(self.idata, self.data, numeric, text, self.card(), path)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a fit written by :meth:`save`; it predicts without refitting (no PyMC compile needed)."""
        path = Path(path)
        if not path.is_file():
            raise BayesDCPTError(f"no such fit file: {path}")
        tree, card, raw = read_fit_file(path, f"{cls.__name__}.save")
        cls._check_card(path, card)
        df = cls._data_from_file(raw)
        if _data.data_hash(df) != card["data_hash"]:
            raise BayesDCPTError(f"{path}: the stored data does not match the model card's hash (file corrupted?)")
        fitted = cls._from_card(df, tree, card, diagnostics_from_card(card))
        if "adequacy" in card:  # saved with the fit; older files get their checks computed on demand
            fitted._adequacy = Adequacy.from_dict(card["adequacy"])
        if card.get("extrapolation"):  # the bands' calibration for extrapolation, back on the posterior
            fitted.extrapolation = dict(card["extrapolation"])
            fitted.posterior.ctx["discrepancy"] = card["extrapolation"]["discrepancy"]
            attach_data_context(fitted.posterior, fitted.fitted_data(),
                                streams=bool(card["extrapolation"].get("streams")))
        elif isinstance(fitted, DecisionMethods):  # uncalibrated: where the probes are (for decisions on thin domains)
            fitted.posterior.ctx.setdefault("envelope", data_envelope(fitted.fitted_data()))
        return fitted

    def __repr__(self) -> str:
        a = getattr(self, "_adequacy", None)  # as computed or loaded; not computed for a repr
        health = ("BAD" if not self._diagnostics.sampler_ok else "MISFIT" if a is not None and not a.ok else "ok")
        return (f"<{type(self).__name__} {self.law.name} {self._repr_layout()} draws={self.posterior.n_draws} "
                f"diagnostics={health}>")

    # ------------------------------------------------------------------------------------------ hooks
    def _make_design(self) -> Any:
        """The model's data arrays, built from :attr:`data`."""
        raise NotImplementedError

    def _model_entry(self) -> dict[str, Any]:
        """The cached model entry (see :func:`bayes_dcpt.fitting.samplers.cached_entry`) with this fit's data."""
        raise NotImplementedError

    def _loo_rows(self) -> pd.DataFrame:
        """The fitted observations (target, run_idx, r_domain, ...) for the LOO terms of a marginal fit."""
        return self.design.obs

    def _card_layout(self) -> dict[str, Any]:
        """The card's description of what the fit covers: its targets and domains (a dynamics fit: its groups)."""
        return {"targets": list(self.targets), "domains": self.domains}

    def _card_extra(self) -> dict[str, Any]:
        """Card entries after the diagnostics (none by default)."""
        return {}

    def _repr_layout(self) -> str:
        return f"targets={list(self.targets)} domains={self.domains}"

    @classmethod
    def _check_card(cls, path: Path, card: Mapping[str, Any]) -> None:
        """Raise :class:`BayesDCPTError` when the card describes another kind of fit."""

    @classmethod
    def _data_from_file(cls, raw: pd.DataFrame) -> pd.DataFrame:
        """The validated data frame from the stored columns."""
        return _data.load(raw)

    @classmethod
    def _from_card(cls, data: pd.DataFrame, tree: Any, card: Mapping[str, Any], diagnostics: Diagnostics) -> Self:
        """The fit rebuilt from its file's parts."""
        raise NotImplementedError


def _numeric_or_missing(col: pd.Series) -> bool:
    """True when every value of ``col`` is a number or missing (such a column can be stored as floats)."""
    return bool(pd.to_numeric(col, errors="coerce").notna().sum() == col.notna().sum())
