"""``law="auto"``: fit several candidate laws, weight them by LOO stacking, predict with the stacked posterior.

The paper chose L3 by its four requirements, not by held-out error; on real data another form can
extrapolate better. :func:`fit_auto` fits each candidate (same data, same noise model), computes
PSIS-LOO stacking weights (Yao et al. 2018) with ArviZ, and builds one :class:`~bayes_dcpt.posterior.draws.Posterior`
whose draws come from the candidates in proportion to their weights. That posterior uses a *stacked law*:
one registered-law-like object whose parameters are the candidates' parameters (prefixed ``<law>__``) plus a
per-draw ``component`` selector, so every consumer (predictions, decisions, the planner) works unchanged.
The requirement checks of every candidate are reported beside its weight.

Quickstart::

    >>> auto = bd.fit(df, law="auto")          # candidates L3, L1, L6, L7 by default
    >>> auto.weights                             # stacking weights
    >>> auto.table()                             # weights, elpd_loo, requirement checks per law
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from bayes_dcpt import hooks
from bayes_dcpt._version import __version__
from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.fitting.base import BaseFit
from bayes_dcpt.fitting.dcpt import fit as fit_one
from bayes_dcpt.fitting.dcpt import load_fit
from bayes_dcpt.laws.checks import check_requirements
from bayes_dcpt.laws.registry import BILLION, Law, Param, Prior, get_law
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["AutoFit", "fit_auto", "stack_laws"]

DEFAULT_CANDIDATES = ("L3", "L1", "L6", "L7")


def stack_laws(laws: Sequence[Law]) -> Law:
    """A law that evaluates, per draw, the candidate selected by its ``component`` parameter."""
    laws = list(laws)

    def formula(xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
        out = 0.0
        for k, law in enumerate(laws):
            pk = {par.name: p[f"{law.name}__{par.name}"] for par in law.params}
            out = out + xp.where(xp.eq(p["component"], k) if hasattr(xp, "eq") else p["component"] == k,
                                 law.formula(xp, pk, x), 0.0)
        return out

    params: list[Param] = []
    for law in laws:
        for par in law.params:
            params.append(Param(f"{law.name}__{par.name}", par.doc, par.space, par.grid, par.prior, par.bounds))
    params.append(Param("component", "index of the candidate law of this draw", "identity", (0.0,),
                        Prior("normal", 0.0, 1.0, "selector (not a fitted parameter)")))
    inputs = tuple(sorted({i for law in laws for i in law.inputs}))
    example = {f"{law.name}__{k}": v for law in laws for k, v in law.example_params.items()}
    example["component"] = 0.0
    return Law(f"stack({'+'.join(law.name for law in laws)})", "LOO-stacked mixture of " +
               ", ".join(law.name for law in laws), tuple(params), inputs, formula, laws[0].family,
               "Yao, Vehtari, Simpson & Gelman 2018 (stacking)", example)


def _stacked_posterior(posts: Sequence[Posterior], weights: np.ndarray, n_draws: int, seed: int) -> Posterior:
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_draws, weights / weights.sum())
    law = stack_laws([p.law for p in posts])
    keys = list(posts[0].params)
    params: dict[tuple[str, str], dict[str, np.ndarray]] = {k: {} for k in keys}
    noise: dict[str, dict[str, list]] = {}
    comp = []
    idxs = []
    for k, (post, c) in enumerate(zip(posts, counts, strict=True)):
        idx = rng.integers(0, post.n_draws, c) if c else np.zeros(0, int)
        idxs.append(idx)
        comp.append(np.full(c, float(k)))
    for key in keys:
        for k, post in enumerate(posts):
            # every component's parameters get values in every draw (its own draws, resampled), so the
            # stacked law evaluates finitely; only the selected component's value is used
            own = post.params[key]
            fill = rng.integers(0, post.n_draws, n_draws)
            start = 0
            for j, idx in enumerate(idxs):
                if j == k:
                    fill[start:start + len(idx)] = idx
                start += len(idx)
            for name, v in own.items():
                if name == "K":
                    continue
                params[key][f"{post.law.name}__{name}"] = np.asarray(v)[fill]
        params[key]["component"] = np.concatenate(comp)
    for t in posts[0].noise:
        noise[t] = {}
        for nm in posts[0].noise[t]:
            noise[t][nm] = np.concatenate([np.asarray(p.noise[t][nm])[idx] for p, idx in zip(posts, idxs,
                                                                                               strict=True)])
    return Posterior(law, params, noise, ctx=dict(posts[0].ctx), reference=posts[0].reference)


@dataclass(repr=False)
class AutoFit(BaseFit):
    """Candidate fits, their stacking weights and requirement checks, and the stacked posterior.

    A fit made of fits: it predicts and decides with the stacked posterior; its diagnostics, summary, priors,
    log-likelihood, LOO and card are those of its candidates (one entry per law); it saves as a JSON manifest
    beside one netCDF file per candidate.
    """

    fits: dict[str, Any]
    comparison: pd.DataFrame
    weights: dict[str, float]
    requirements: dict[str, list[str]]
    posterior: Posterior

    LABEL = "stacked fit"

    @property
    def law(self) -> Law:
        """The stacked law."""
        return self.posterior.law

    @property
    def best(self) -> Any:
        """The candidate fit with the largest stacking weight."""
        return self.fits[max(self.weights, key=self.weights.get)]

    def table(self) -> pd.DataFrame:
        """One row per candidate: stacking weight, elpd_loo (se), rank, failed requirements."""
        c = self.comparison
        rows = []
        for name in self.fits:
            row = c.loc[name] if name in c.index else None
            rows.append({
                "law": name,
                "weight": self.weights.get(name, 0.0),
                "elpd_loo": float(row["elpd"]) if row is not None and "elpd" in row else np.nan,
                "se": float(row["se"]) if row is not None and "se" in row else np.nan,
                "rank": int(row["rank"]) if row is not None and "rank" in row else -1,
                "requirements_failed": ", ".join(self.requirements[name]) or "none",
                "diagnostics": "ok" if self.fits[name].diagnostics(warn=False).ok else "BAD",
            })
        return pd.DataFrame(rows).sort_values("weight", ascending=False).reset_index(drop=True)

    def diagnostics(self, warn: bool = True) -> dict[str, Any]:
        """Each candidate's diagnostics."""
        return {k: f.diagnostics(warn=warn) for k, f in self.fits.items()}

    def remedies(self) -> dict[str, list[str]]:
        """Each candidate's remedies for bad diagnostics."""
        return {k: f.remedies() for k, f in self.fits.items()}

    def summary(self, ci: float = CI_PROB, var_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Each candidate's summary (mean, sd, ``ci`` HDI, R-hat, ESS), indexed by (law, parameter)."""
        return pd.concat({k: f.summary(ci, var_names) for k, f in self.fits.items()}, names=["law", "parameter"])

    def priors(self) -> pd.DataFrame:
        """Each candidate's priors, with a ``law`` column."""
        return pd.concat([f.priors().assign(law=k) for k, f in self.fits.items()], ignore_index=True)

    def log_likelihood(self) -> dict[str, Any]:
        """Each candidate's pointwise log-likelihood group (the stacking weights come from their LOO)."""
        return {k: f.log_likelihood() for k, f in self.fits.items()}

    def loo(self) -> dict[str, Any]:
        """Each candidate's PSIS-LOO."""
        return {k: f.loo() for k, f in self.fits.items()}

    def optimize(self, usage: str = "tradeoff", **inputs: Any):
        """Decisions on the stacked posterior: sugar for :func:`bayes_dcpt.decide.optimize`."""
        return hooks.call("optimize", self, usage, **inputs)

    def card(self) -> dict[str, Any]:
        """The stacked law, weights and requirement checks, and each candidate's model card."""
        return {"package": "bayes-dcpt", "version": __version__, "law": self.law.name, "weights": self.weights,
                "requirements": self.requirements, "candidates": {k: f.card() for k, f in self.fits.items()}}

    def save(self, path: str | Path) -> Path:
        """Write every candidate fit beside ``path`` and a JSON manifest at ``path``; :func:`load_fit` reads it."""
        path = Path(path)
        files = {}
        for name, f in self.fits.items():
            p = path.with_name(f"{path.stem}-{name}.nc")
            f.save(p)
            files[name] = p.name
        manifest = {"bayes_dcpt_auto": True, "files": files, "weights": self.weights,
                    "requirements": self.requirements, "comparison": self.comparison.reset_index(
                        names="law").to_dict(orient="records"), "n_draws": self.posterior.n_draws}
        path.write_text(json.dumps(manifest, indent=2, default=float))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an :class:`AutoFit` manifest written by :meth:`save` (and the candidate files beside it)."""
        path = Path(path)
        m = json.loads(path.read_text())
        fits = {name: load_fit(path.with_name(fn)) for name, fn in m["files"].items()}
        comp = pd.DataFrame(m["comparison"]).set_index("law")
        w = np.array([m["weights"][n] for n in fits])
        stacked = _stacked_posterior([f.posterior for f in fits.values()], w, int(m["n_draws"]), 0)
        return cls(fits, comp, m["weights"], m["requirements"], stacked)

    def __repr__(self) -> str:
        ok = all(d.ok for d in self.diagnostics(warn=False).values())
        weights = {k: round(float(v), 3) for k, v in self.weights.items()}
        return (f"<AutoFit {self.law.name} weights={weights} draws={self.posterior.n_draws} "
                f"diagnostics={'ok' if ok else 'BAD'}>")


def _requirements(fit: Any) -> list[str]:
    failed: set[str] = set()
    for (t, _d), p in fit.posterior.params.items():
        mean = {k: float(np.mean(v)) for k, v in p.items() if k != "K"}
        try:
            rep = check_requirements(fit.law, mean, d_min=fit.posterior.ctx.get("D_min", 0.1311) * BILLION,
                                     features={"K": 1.0} if fit.law.dlc else None)
        except ValueError:
            continue
        failed |= {f"{name} ({t})" for name in rep.failed}
    return sorted(failed)


def fit_auto(data: Any, target: str = "both", *, candidates: Sequence[str] = DEFAULT_CANDIDATES, seed: int = 0,
             n_draws: int | None = None, **fit_kwargs: Any) -> AutoFit:
    """Fit ``candidates``, weight them by LOO stacking and build the stacked posterior."""
    import arviz as az

    if len(candidates) < 2:
        raise BayesDCPTError("law='auto' needs at least two candidate laws")
    fits = {get_law(c).name: fit_one(data, c, target, seed=seed, **fit_kwargs) for c in candidates}
    trees = {}
    for name, f in fits.items():
        f.log_likelihood()
        trees[name] = f.idata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = az.compare(trees, method="stacking")
    weights = {name: float(comp.loc[name, "weight"]) for name in fits}
    posts = [f.posterior for f in fits.values()]
    w = np.array([weights[n] for n in fits])
    n = n_draws or max(p.n_draws for p in posts)
    stacked = _stacked_posterior(posts, w, n, seed)
    reqs = {name: _requirements(f) for name, f in fits.items()}
    return AutoFit(fits, comp, weights, reqs, stacked)


def load_auto(path: str | Path) -> AutoFit:
    """Read an :class:`AutoFit` manifest written by :meth:`AutoFit.save`."""
    return AutoFit.load(path)
