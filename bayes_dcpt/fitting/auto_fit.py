"""The result of ``law="auto"``: :class:`AutoFit` (a fit made of fits) and its :class:`AutoDiagnostics`.

The candidates' fits, their held-out stacking weights and scores, requirement checks, and the stacked posterior
that predictions and decisions use. It saves as a JSON manifest beside one netCDF file per candidate; manifests
written before the held-out weighting (LOO-stacking weights, no held-out table) still load.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from bayes_dcpt._version import __version__
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.errors import MisfitWarning
from bayes_dcpt.fitting.base import BaseFit, DecisionMethods
from bayes_dcpt.fitting.cpt import CPTFit
from bayes_dcpt.fitting.dcpt import Fit
from bayes_dcpt.fitting.diagnostics import Diagnostics, warn_convergence
from bayes_dcpt.fitting.discrepancy import attach_data_context
from bayes_dcpt.fitting.io import read_card
from bayes_dcpt.fitting.stacked import StackedPosterior, stacked_posterior
from bayes_dcpt.laws.checks import check_requirements
from bayes_dcpt.laws.registry import BILLION, Law
from bayes_dcpt.posterior.adequacy import Adequacy

__all__ = ["USED_WEIGHT", "AutoDiagnostics", "AutoFit", "load_auto", "requirement_failures"]

#: Candidates with at least this stacking weight are the ones the stacked posterior draws from in earnest: their
#: sampler diagnostics decide ``AutoDiagnostics.ok``.
USED_WEIGHT = 0.01


@dataclass(frozen=True)
class AutoDiagnostics(Diagnostics):
    """The diagnostics of a stacked fit: the used candidates' sampler checks pooled, the stacked predictor's misfit.

    The pooled fields are over the candidates with weight >= :data:`USED_WEIGHT` (divergences summed, R-hat max,
    ESS and BFMI min, seconds the whole ``law="auto"`` run); ``problems`` and ``misfit`` name the law. It is also a
    mapping ``law -> Diagnostics`` of every candidate (``diag["L3"]``, ``set(diag)``).
    """

    candidates: Mapping[str, Diagnostics] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)

    def __iter__(self) -> Iterator[str]:
        return iter(self.candidates)

    def __getitem__(self, name: str) -> Diagnostics:
        return self.candidates[name]

    def __len__(self) -> int:
        return len(self.candidates)

    def keys(self):
        """Candidate names."""
        return self.candidates.keys()

    def values(self):
        """Candidate diagnostics."""
        return self.candidates.values()

    def items(self):
        """(name, diagnostics) pairs."""
        return self.candidates.items()

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: the pooled verdict (``ok``, ``sampler_ok``, ``adequate``, ...) and every candidate's."""
        d = Diagnostics.as_dict(replace(self, candidates={}, weights={}))
        d.pop("candidates", None)
        d["weights"] = {k: float(v) for k, v in self.weights.items()}
        d["candidates"] = {k: v.as_dict() for k, v in self.candidates.items()}
        return d

    def __str__(self) -> str:
        w = ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.weights.items(), key=lambda kv: -kv[1]))
        return f"stacked ({w}): {Diagnostics.__str__(self)}"


def pooled_diagnostics(diags: Mapping[str, Diagnostics], weights: Mapping[str, float], misfit: Sequence[str],
                       seconds: float) -> AutoDiagnostics:
    """:class:`AutoDiagnostics` of candidates ``diags`` weighted ``weights`` (the used ones pooled)."""
    used = {k: d for k, d in diags.items() if weights.get(k, 0.0) >= USED_WEIGHT} or dict(diags)
    vals = list(used.values())
    finite = lambda xs, f: float(f(xs)) if np.isfinite(xs).any() else float("nan")  # noqa: E731
    return AutoDiagnostics(
        sampler="+".join(sorted({d.sampler for d in vals})), divergences=int(sum(d.divergences for d in vals)),
        rhat_max=finite(np.array([d.rhat_max for d in vals]), np.nanmax),
        ess_bulk_min=finite(np.array([d.ess_bulk_min for d in vals]), np.nanmin),
        ess_tail_min=finite(np.array([d.ess_tail_min for d in vals]), np.nanmin),
        bfmi_min=finite(np.array([d.bfmi_min for d in vals]), np.nanmin),
        draws=min(d.draws for d in vals), chains=min(d.chains for d in vals), seconds=float(seconds),
        approximate=any(d.approximate for d in vals),
        problems=tuple(f"{k}: {p}" for k, d in used.items() for p in d.problems), misfit=tuple(misfit),
        candidates=dict(diags), weights=dict(weights))


def requirement_failures(fit: Any) -> list[str]:
    """The paper's requirements that the posterior-mean parameters of ``fit`` fail, per target."""
    failed: set[str] = set()
    for (t, _d), p in fit.posterior.params.items():
        mean = {k: float(np.mean(v)) for k, v in p.items() if k != "K"}
        try:
            rep = check_requirements(fit.law, mean, d_min=fit.posterior.ctx.get("D_min", 0.1311) * BILLION,
                                     features={"K": 1.0} if fit.law.dlc else None)
        except (ValueError, KeyError, TypeError):
            continue
        failed |= {f"{name} ({t})" for name in rep.failed}
    return sorted(failed)


@dataclass(repr=False)
class AutoFit(DecisionMethods, BaseFit):
    """Candidate fits, their held-out stacking weights, scores and checks, and the stacked posterior.

    A fit made of fits: it predicts and decides with the stacked posterior; its summary, priors, log-likelihood,
    LOO and card are its candidates' (one entry per law); :meth:`diagnostics` pools the used candidates' sampler
    checks with the posterior predictive checks of the stacked posterior; :meth:`table` has one row per law.
    """

    fits: dict[str, Any]
    comparison: pd.DataFrame
    weights: dict[str, float]
    requirements: dict[str, list[str]]
    posterior: StackedPosterior
    holdout: pd.DataFrame = field(default_factory=pd.DataFrame)
    method: str = "holdout-stacking"
    notes: list[str] = field(default_factory=list)
    seed: int = 0
    extrapolation: dict[str, Any] | None = None
    seconds: float = float("nan")
    _adequacy: Adequacy | None = None

    LABEL = "stacked fit"

    @property
    def law(self) -> Law:
        """The stacked law."""
        return self.posterior.law

    @property
    def data(self) -> pd.DataFrame:
        """The fitted data (every candidate's)."""
        return next(iter(self.fits.values())).data

    @property
    def targets(self) -> tuple[str, ...]:
        """The fitted targets."""
        return self.posterior.targets

    @property
    def domains(self) -> list[str]:
        """The fitted domains."""
        return self.posterior.domains

    @property
    def sampler_config(self) -> dict[str, Any]:
        """The sampler settings of the candidates' full fits (the first candidate's)."""
        return next(iter(self.fits.values())).sampler_config

    @property
    def best(self) -> Any:
        """The candidate fit with the largest stacking weight."""
        return self.fits[max(self.weights, key=self.weights.get)]

    def table(self) -> pd.DataFrame:
        """One row per law: weight, held-out elpd (se), MAPE and coverage per split, diagnostics, requirements.

        ``weight_lo`` / ``weight_hi``: the held-out stacking weight's 90% Bayesian-bootstrap interval over the
        held-out runs (NaN for fits saved before it): how firmly the data settle the weight.

        ``refits_unconverged`` names the splits whose refit of the law did not converge (its score, and so the
        weights, may move with the seed; :func:`~bayes_dcpt.fitting.extrapolation.holdout_table`).

        ``fitted`` says whether the law was fitted to all the data; a law with weight 0 is not by default, and its
        row has its held-out scores only (diagnostics and requirement checks None). ``screened`` names the split
        after which a law was screened out (not refitted on the later splits; its pooled elpd is then NaN).
        """
        rows = []
        for name in dict.fromkeys([*self.fits, *self.weights]):
            f = self.fits.get(name)
            c = self.comparison.loc[name] if name in self.comparison.index else {}
            row = {"law": name, "weight": self.weights.get(name, 0.0),
                   "weight_lo": float(c.get("weight_lo", np.nan)), "weight_hi": float(c.get("weight_hi", np.nan)),
                   "fitted": f is not None,
                   "elpd_holdout" if self.method == "holdout-stacking" else "elpd_loo": float(c.get("elpd", np.nan)),
                   "se": float(c.get("se", np.nan)), "screened": _screened(c.get("screened"))}
            h = self.holdout[self.holdout["law"] == name] if len(self.holdout) else self.holdout
            unconverged = []
            for split, g in (h.groupby("split", sort=False) if len(h) else ()):
                for t, gt in g.groupby("target", sort=False):
                    row[f"mape_{split}_{t}"] = float(gt["mape"].iloc[0])
                    row[f"coverage_{split}_{t}"] = float(gt["coverage"].iloc[0])
                if "refit_unconverged" in g and g["refit_unconverged"].fillna("").astype(bool).any():
                    unconverged.append(str(split))
            row["refits_unconverged"] = ", ".join(unconverged) or "none"
            d = f.diagnostics(warn=False) if f is not None else None
            row.update({"sampler_ok": None if d is None else d.sampler_ok,
                        "adequate": None if d is None else not d.misfit,
                        "requirements_failed": None if f is None else
                        (", ".join(self.requirements.get(name, [])) or "none")})
            rows.append(row)
        return pd.DataFrame(rows).sort_values("weight", ascending=False).reset_index(drop=True)

    def fitted_data(self) -> pd.DataFrame:
        """The rows the candidates were fitted to (without the LR warm-up checkpoints they leave out).

        What the stacked posterior's adequacy checks (:meth:`BaseFit.adequacy`) compare it with: checked against
        every row, a stack of one adequate law failed its residual trends along log D where that law alone passed
        (example grid, first two-thirds of the tokens: 10 groups).
        """
        return next(iter(self.fits.values())).fitted_data()

    def diagnostics(self, warn: bool = True) -> AutoDiagnostics:
        """The used candidates' sampler checks pooled, and whether the stacked posterior describes the data.

        Warns like a single fit's (:class:`~bayes_dcpt.errors.ConvergenceWarning`,
        :class:`~bayes_dcpt.errors.MisfitWarning`); ``as_dict()`` holds every candidate's diagnostics too.
        """
        a = self.adequacy()
        misfit = () if a is None or a.ok else tuple(f"{c.where()}: {c.message}" for c in a.failures)
        per_law = {k: f.diagnostics(warn=False) for k, f in self.fits.items()}
        d = pooled_diagnostics(per_law, self.weights, misfit, self.seconds)
        if warn:  # one warning: the used candidates' sampler checks and every held-out refit that did not converge
            warn_convergence(self, None if d.sampler_ok else (
                f"bayes-dcpt {self.LABEL} diagnostics: {'; '.join(d.problems)}. Do not trust these intervals before "
                f"fixing this ({_sampler_remedy(per_law)})."), stacklevel=2)
        if warn and misfit:
            warnings.warn(f"bayes-dcpt {self.LABEL}: the stacked laws do not describe the data. {a.summary()}.",
                          MisfitWarning, stacklevel=2)
        return d

    def remedies(self) -> dict[str, list[str]]:
        """Each candidate's remedies for bad diagnostics."""
        return {k: f.remedies() for k, f in self.fits.items()}

    def modes(self) -> dict[str, list[Any]]:
        """Each candidate's :meth:`~bayes_dcpt.fitting.base.BaseFit.modes`, by law.

        One posterior per group of the candidate's chains in separate modes; its posterior alone when they overlap.
        """
        return {k: f.modes() for k, f in self.fits.items()}

    def summary(self, ci: float = CI_PROB, var_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Each candidate's summary (mean, sd, ``ci`` HDI, R-hat, ESS), indexed by (law, parameter)."""
        return pd.concat({k: f.summary(ci, var_names) for k, f in self.fits.items()}, names=["law", "parameter"])

    def priors(self) -> pd.DataFrame:
        """Each candidate's priors, with a ``law`` column."""
        return pd.concat([f.priors().assign(law=k) for k, f in self.fits.items()], ignore_index=True)

    def log_likelihood(self) -> dict[str, Any]:
        """Each candidate's pointwise log-likelihood group (for LOO; the weights come from held-out refits)."""
        return {k: f.log_likelihood() for k, f in self.fits.items()}

    def loo(self) -> dict[str, Any]:
        """Each candidate's PSIS-LOO (interpolation; compare with :attr:`comparison`, the held-out scores)."""
        return {k: f.loo() for k, f in self.fits.items()}


    def card(self) -> dict[str, Any]:
        """The stacked law, weights, held-out scores and requirement checks, and each candidate's model card."""
        return {"package": "bayes-dcpt", "version": __version__, "law": self.law.name, "method": self.method,
                "weights": self.weights, "holdout": _records(self.holdout), "requirements": self.requirements,
                "notes": self.notes, "extrapolation": self.extrapolation,
                "candidates": {k: f.card() for k, f in self.fits.items()}}

    def save(self, path: str | Path) -> Path:
        """Write every candidate fit beside ``path`` and a JSON manifest at ``path``; ``load_fit`` reads it."""
        path = Path(path)
        files = {}
        for name, f in self.fits.items():
            p = path.with_name(f"{path.stem}-{name}.nc")
            f.save(p)
            files[name] = p.name
        manifest = {"bayes_dcpt_auto": True, "version": __version__, "method": self.method, "files": files,
                    "weights": self.weights, "requirements": self.requirements,
                    "comparison": _records(self.comparison.reset_index(names="law")),
                    "holdout": _records(self.holdout), "n_draws": self.posterior.n_draws, "seed": self.seed,
                    "notes": self.notes, "extrapolation": self.extrapolation, "seconds": self.seconds}
        path.write_text(json.dumps(manifest, indent=2, default=float))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an :class:`AutoFit` manifest written by :meth:`save` (and the candidate files beside it)."""
        path = Path(path)
        m = json.loads(path.read_text())
        fits = {}
        for name, fn in m["files"].items():
            card = read_card(path.with_name(fn))
            fits[name] = (CPTFit if card is not None and card.get("law") == "cpt" else Fit).load(path.with_name(fn))
        comp = pd.DataFrame(m["comparison"]).set_index("law")
        w = np.array([m["weights"][n] for n in fits])
        # manifests written before the held-out weighting: LOO-stacking weights, no held-out table, seed 0
        seed = int(m.get("seed", 0))
        stacked = stacked_posterior([f.posterior for f in fits.values()], w, int(m["n_draws"]), seed)
        extrapolation = m.get("extrapolation")
        if extrapolation:
            stacked.ctx["discrepancy"] = extrapolation["discrepancy"]
            attach_data_context(stacked, next(iter(fits.values())).fitted_data(),
                                streams=bool(extrapolation.get("streams")))
        return cls(fits, comp, m["weights"], m["requirements"], stacked,
                   holdout=pd.DataFrame(m.get("holdout", [])), method=m.get("method", "loo-stacking"),
                   notes=list(m.get("notes", [])), seed=seed, extrapolation=extrapolation,
                   seconds=float(m.get("seconds") or np.nan))

    def __repr__(self) -> str:
        weights = {k: round(float(v), 3) for k, v in self.weights.items()}
        ok = pooled_diagnostics({k: f.diagnostics(warn=False) for k, f in self.fits.items()}, self.weights, (),
                                self.seconds).sampler_ok
        return (f"<AutoFit {self.law.name} weights={weights} draws={self.posterior.n_draws} "
                f"diagnostics={'ok' if ok else 'BAD'}>")


def _screened(value: Any) -> str | None:
    """The split a law was screened out after (None: not screened; NaN from a loaded table counts as None)."""
    return value if isinstance(value, str) else None


def load_auto(path: str | Path) -> AutoFit:
    """Read an :class:`AutoFit` manifest written by :meth:`AutoFit.save`."""
    return AutoFit.load(path)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN as None)."""
    def clean(v: Any) -> Any:
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and not np.isfinite(v) else v

    return [{k: clean(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def _sampler_remedy(per_law: Mapping[str, Diagnostics]) -> str:
    """The warning's remedy: more draws, unless a candidate's chains sit in separate modes (which they do not join).

    ``per_law``: each candidate's diagnostics.
    """
    split = [k for k, d in per_law.items() if len(d.chain_groups) > 1]
    if not split:
        return "more tuning and draws for the laws named"
    return (f"{', '.join(split)}: chains in separate modes, which more draws will not join (compare them: "
            "fit.modes()); more tuning and draws for the other laws named")
