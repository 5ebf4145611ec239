"""The D-CPT paper's point fit and the Epoch-style bootstrap: the baseline our Bayesian fits must beat.

:func:`fit_point` follows the paper (appendix E.3): minimise the sum of Huber losses (delta = 1e-3) of
log-loss residuals, ``sum_i Huber(log L_fit,i - log L_i)``, by L-BFGS-B from the best points of the
paper's initialisation grid, with the monotonicity constraints built in by reparameterisation
(``eta = 1 + exp(eta1)``, ``C = C0 + exp(c1)``). The full grid has ~2.8e5 starts; we evaluate the
objective on a fixed-seed subsample of it (vectorised, milliseconds) and run L-BFGS-B from the best
few, so a fit takes seconds.

The objective is scaled by ``1/delta**2`` inside the optimiser. With the raw Huber values (~1e-6)
L-BFGS-B's relative stopping rule would stop early: the cause of Chinchilla's too-narrow intervals
found by the Epoch replication (Besiroglu et al. 2024).

:func:`bootstrap` refits on resamples drawn with replacement (of points, or of whole runs, since the
checkpoints of one run are correlated) and reports percentile intervals, as the Epoch replication did.

Quickstart::

    >>> from bayes_dcpt import fit_point, datasets
    >>> res = fit_point(datasets.load_example(), law="dcpt", target="both")
    >>> res.table()
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.dlc import attach_features, dlc_features
from bayes_dcpt.errors import FitError, UnknownDomainError
from bayes_dcpt.laws.registry import BILLION, Law, get_law, inputs_from_frame
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["BootstrapResult", "PointFit", "PointFitResult", "bootstrap", "fit_point", "huber", "metrics",
           "point_fittable"]

HUBER_DELTA = 1e-3
_PENALTY = 1e6


def huber(res: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    """Elementwise Huber loss: 0.5 r^2 inside +-delta, delta(|r| - delta/2) outside."""
    a = np.abs(res)
    return np.where(a <= delta, 0.5 * res**2, delta * (a - 0.5 * delta))


def metrics(y: np.ndarray, yhat: np.ndarray, delta: float = HUBER_DELTA) -> dict[str, float]:
    """Fit-quality metrics used throughout (tables, benchmarks): MAPE (%), MAE, R^2, Huber on log residuals.

    ``huber_sum`` is the paper's objective value (sum over points); ``huber_mean`` is per point.
    """
    y = np.asarray(y, float)
    yhat = np.asarray(yhat, float)
    ok = np.isfinite(y) & np.isfinite(yhat) & (yhat > 0) & (y > 0)
    y, yhat = y[ok], yhat[ok]
    if y.size == 0:
        return {"n": 0, "mape": np.nan, "mae": np.nan, "r2": np.nan, "huber_sum": np.nan, "huber_mean": np.nan}
    ss_res = float(np.sum((y - yhat) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    h = huber(np.log(yhat) - np.log(y), delta)
    return {
        "n": int(y.size),
        "mape": float(np.mean(np.abs(yhat - y) / y) * 100.0),
        "mae": float(np.mean(np.abs(yhat - y))),
        "r2": float(1.0 - ss_res / ss_tot) if ss_tot > 0 else np.nan,
        "huber_sum": float(h.sum()),
        "huber_mean": float(h.mean()),
    }


# ------------------------------------------------------------------------------------ parameter spaces
def to_natural(law: Law, U: np.ndarray, ctx: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Map free point-fit coordinates (..., P) to natural parameters (each of shape ...)."""
    p: dict[str, np.ndarray] = {}
    with np.errstate(over="ignore"):
        for j, par in enumerate(law.params):
            u = U[..., j]
            if par.space == "log":
                v = np.exp(u)
            elif par.space == "gt1":
                v = 1.0 + np.exp(u)
            else:
                v = u
            if par.lower is not None:
                v = par.lower(np, p, ctx) + v
            p[par.name] = v
    return p


def to_free(law: Law, params: Mapping[str, float], ctx: Mapping[str, float]) -> np.ndarray:
    """Inverse of :func:`to_natural` for one parameter set."""
    u = np.empty(len(law.params))
    done: dict[str, Any] = {}
    for j, par in enumerate(law.params):
        v = float(params[par.name])
        if par.lower is not None:
            v = v - float(par.lower(np, done, ctx))
        if par.space == "log":
            u[j] = np.log(max(v, 1e-300))
        elif par.space == "gt1":
            u[j] = np.log(max(v - 1.0, 1e-300))
        else:
            u[j] = v
        done[par.name] = float(params[par.name])
    return u


def _bounds(law: Law) -> list[tuple[float | None, float | None]]:
    out = []
    for par in law.params:
        if par.space == "identity":
            out.append(par.bounds)
        else:
            out.append((-50.0, 50.0))
    return out


def _grid_sample(law: Law, n: int, rng: np.random.Generator) -> np.ndarray:
    grids = []
    for par, (lo, hi) in zip(law.params, _bounds(law), strict=True):
        g = np.asarray(par.grid, float)
        if lo is not None:
            g = np.maximum(g, lo)
        if hi is not None:
            g = np.minimum(g, hi)
        grids.append(np.unique(g))
    sizes = np.array([len(g) for g in grids])
    total = int(np.prod(sizes.astype(float))) if np.prod(sizes.astype(float)) < 2**62 else 2**62
    m = min(n, total)
    flat = rng.choice(total, size=m, replace=False) if total <= 10_000_000 else rng.integers(0, total, m)
    U = np.empty((m, len(grids)))
    rem = flat.astype(np.int64)
    for j in range(len(grids) - 1, -1, -1):
        U[:, j] = grids[j][rem % sizes[j]]
        rem //= sizes[j]
    return U


class _Objective:
    """Scaled Huber objective with a vectorised central-difference gradient."""

    def __init__(self, law: Law, x: Mapping[str, np.ndarray], y: np.ndarray, ctx: Mapping[str, float],
                 delta: float, weights: np.ndarray | None = None):
        self.law, self.ctx, self.delta = law, ctx, delta
        self.x = {k: v[None, :] for k, v in x.items()}
        self.y = y[None, :]
        self.logy = np.log(y)[None, :] if law.positive_output else None
        self.w = None if weights is None else weights[None, :]

    def batch(self, U: np.ndarray) -> np.ndarray:
        p = {k: v[:, None] for k, v in to_natural(self.law, U, self.ctx).items()}
        with np.errstate(all="ignore"):
            f = self.law(np, p, self.x)
            if self.logy is not None:
                res = np.log(f) - self.logy
            else:
                res = f - self.y
            h = huber(res, self.delta) / self.delta**2
            if self.w is not None:
                h = h * self.w
            val = h.sum(axis=1)
        return np.where(np.isfinite(val), val, _PENALTY * self.y.shape[1])

    def __call__(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        P = u.size
        h = 1e-6 * np.maximum(1.0, np.abs(u))
        U = np.repeat(u[None, :], 2 * P + 1, axis=0)
        U[1 : P + 1] += np.diag(h)
        U[P + 1 :] -= np.diag(h)
        v = self.batch(U)
        grad = (v[1 : P + 1] - v[P + 1 :]) / (2 * h)
        if not np.all(np.isfinite(grad)):
            grad = np.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        return float(v[0]), grad


def _optimize(obj: _Objective, starts: np.ndarray, bounds: list) -> tuple[np.ndarray, Any]:
    best_u, best = None, None
    for u0 in starts:
        res = minimize(obj, u0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 3000, "ftol": 1e-14, "gtol": 1e-9, "maxcor": 20})
        if best is None or res.fun < best.fun:
            best_u, best = res.x, res
    return best_u, best


def _fit_arrays(law: Law, x: Mapping[str, np.ndarray], y: np.ndarray, ctx: Mapping[str, float], *,
                delta: float, n_grid: int, n_starts: int, seed: int,
                warm: np.ndarray | None = None, weights: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
    obj = _Objective(law, x, y, ctx, delta, weights)
    bounds = _bounds(law)
    if warm is not None:
        starts = warm[None, :]
    else:
        rng = np.random.default_rng(seed)
        U = _grid_sample(law, n_grid, rng)
        vals = obj.batch(U)
        starts = U[np.argsort(vals, kind="stable")[:n_starts]]
    return _optimize(obj, starts, bounds)


# --------------------------------------------------------------------------------------------- results
@dataclass
class PointFit:
    """One fitted law for one target (and one domain, or all domains for the cross-domain law)."""

    law: Law
    target: str
    domain: str
    params: dict[str, float]
    ctx: dict[str, float]
    metrics: dict[str, float]
    success: bool
    message: str
    seconds: float
    features: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def predict(self, frame: pd.DataFrame, params: Mapping[str, Any] | None = None) -> np.ndarray:
        """Predicted loss of this target for the rows of a schema frame (raw counts)."""
        x = _law_inputs(self.law, frame, self.target, self.features)
        p = {k: np.asarray(v, float) for k, v in (params or self.params).items()}
        with np.errstate(all="ignore"):
            return np.asarray(self.law(np, p, x), float)


@dataclass
class PointFitResult:
    """Point fits keyed by (target, domain); ``domain == "*"`` for a joint cross-domain fit."""

    law: Law
    fits: dict[tuple[str, str], PointFit]

    def __getitem__(self, key: str | tuple[str, str]) -> PointFit:
        if isinstance(key, tuple):
            return self.fits[key]
        matches = [f for (t, _), f in self.fits.items() if t == key]
        if len(matches) != 1:
            raise KeyError(f"{key!r} matches {len(matches)} fits; index by (target, domain)")
        return matches[0]

    def table(self) -> pd.DataFrame:
        """One row per fit: target, domain, parameters and metrics."""
        rows = []
        for (t, d), f in self.fits.items():
            rows.append({"target": t, "domain": d, **f.params, **{k: v for k, v in f.metrics.items()},
                         "seconds": f.seconds, "converged": f.success})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """What ``bayes-dcpt fit-point --json`` prints: the law and method, per fit its parameters, metrics, notes.

        Unlike :meth:`table`'s flat rows it keeps the notes (a parameter at its bound, a failed optimiser).
        """
        fits = [{"target": t, "domain": d, "params": dict(f.params), "metrics": dict(f.metrics),
                 "converged": bool(f.success), "message": f.message, "seconds": f.seconds, "notes": list(f.notes)}
                for (t, d), f in self.fits.items()]
        return {"law": self.law.name, "formula": self.law.title, "fits": fits,
                "method": "point fit: Huber loss on log loss, L-BFGS-B from the best grid starts (the D-CPT paper)"}

    def to_posterior(self, data: Any) -> Posterior:
        """The point fit as a one-draw :class:`~bayes_dcpt.posterior.draws.Posterior`.

        The paper's point answer goes through the same decision code; ``sigma`` = RMS log residual, ``tau = 0``.

        ``data`` is the fitted frame (or path): it gives the residuals and the base-model losses.
        """
        draws = {k: pd.DataFrame([f.params]) for k, f in self.fits.items()}
        return _draws_to_posterior(self, draws, _data.load(data))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ``loss_<target>_pred`` columns for every fitted target."""
        frame = frame.reset_index(drop=True)
        out = frame.copy()
        for (t, d), f in self.fits.items():
            col = f"loss_{t}_pred"
            if col not in out:
                out[col] = np.nan
            mask = np.ones(len(frame), bool) if d == "*" else (frame["domain"] == d).to_numpy()
            if mask.any():
                out.loc[mask, col] = f.predict(frame[mask])
        return out


def _law_inputs(law: Law, frame: pd.DataFrame, target: str, features: pd.DataFrame | None) -> dict[str, np.ndarray]:
    if law.dlc is not None:
        if features is None:
            raise FitError(f"law {law.name} needs DLC features")
        frame = attach_features(frame, features, needed=law.dlc_features)
    x = inputs_from_frame(frame, target)
    return x


def _context(rows: pd.DataFrame) -> dict[str, float]:
    pos = rows["tokens"][rows["tokens"] > 0]
    return {"D_min": float(pos.min()) / BILLION if len(pos) else 0.1311}


#: Inputs a point fit reads off a CPT table: N, D, the ratio and (cross-domain laws) the DLC built from the probes.
TABLE_INPUTS = frozenset({"N", "D", "r", "K"})


def point_fittable(law: Law) -> bool:
    """Whether :func:`fit_point` can fit ``law`` from a CPT table alone (no input it has to be told)."""
    return set(law.inputs) <= TABLE_INPUTS and ({"N", "D", "r"} <= set(law.inputs) or law.family == "chinchilla")


def _check_law_inputs(law: Law) -> None:
    extra = [k for k in law.inputs if k not in TABLE_INPUTS]
    if law.family == "cpt":  # anchored at the measured base model: its inputs come from the Bayesian fit's design
        raise FitError(f"law {law.name!r} is anchored at the base model (inputs {', '.join(extra)}: the measured base "
                       "losses and a reference token count), which the paper's point fit has no place for; fit it "
                       "with `bayes-dcpt fit --law cpt` (Python: bd.fit(data, law='cpt')), or point-fit a law of (N, "
                       "D, r) such as dcpt or L1")
    if not point_fittable(law):
        raise FitError(
            f"law {law.name!r} takes inputs {law.inputs}; fit_point fits CPT tables (n_params, tokens, r_domain). "
            "Use fit_arrays for other inputs."
        )


#: In-sample MAPE (%) above which a point fit says the law does not describe its data.
MISFIT_MAPE = 5.0
#: A log-space estimate this many e-folds from 1 has collapsed to 0 (or run off to infinity).
_COLLAPSED = 25.0


def _predicted(law: Law, params: Mapping[str, float], x: Mapping[str, np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(law(np, {k: np.asarray(v) for k, v in params.items()}, x), float)


def estimate_notes(law: Law, u: np.ndarray, params: Mapping[str, float], m: Mapping[str, float]) -> list[str]:
    """What a point estimate's table does not say: parameters stuck at a bound or collapsed, and a misfit.

    An estimate at the edge of its search range is one the data do not pin (the others trade off against it);
    an in-sample error above :data:`MISFIT_MAPE` percent means the law misses the data it was fitted to.
    """
    notes = []
    for par, (lo, hi), v in zip(law.params, _bounds(law), u, strict=True):
        if par.space == "identity":
            edge = next((b for b in (lo, hi) if b is not None and abs(v - b) <= 1e-6 * max(1.0, abs(b))), None)
            if edge is not None:
                notes.append(f"{par.name} at the edge of its range ({edge:g}): the data do not pin it")
        elif abs(v) >= _COLLAPSED:  # exp(u) has collapsed to 0 (the parameter sits at its lower limit) or exploded
            where = "at its lower limit" if v < 0 else "ran off to"
            notes.append(f"{par.name} {where} {params[par.name]:.3g}: the data do not pin it")
    if np.isfinite(m.get("mape", np.nan)) and m["mape"] > MISFIT_MAPE:
        notes.append(f"in-sample error {m['mape']:.1f}%: the law does not describe these data (the Bayesian fit's "
                     "adequacy checks say where)")
    return notes


def fit_arrays(law: str | Law, x: Mapping[str, Any], y: Any, *, ctx: Mapping[str, float] | None = None,
               delta: float = HUBER_DELTA, n_grid: int = 4000, n_starts: int = 8, seed: int = 0) -> dict[str, float]:
    """Point-fit any registered law on prepared inputs (billions) and targets; returns natural parameters."""
    law = get_law(law)
    xa = {k: np.asarray(v, float) for k, v in x.items()}
    ya = np.asarray(y, float)
    u, _ = _fit_arrays(law, xa, ya, ctx or {}, delta=delta, n_grid=n_grid, n_starts=n_starts, seed=seed)
    return {k: float(v) for k, v in to_natural(law, u, ctx or {}).items()}


def fit_point(
    data: Any,
    law: str | Law = "dcpt",
    target: str = "both",
    *,
    domain: str | None = None,
    delta: float = HUBER_DELTA,
    n_grid: int = 4000,
    n_starts: int = 8,
    seed: int = 0,
    probe_tokens: float | None = None,
) -> PointFitResult:
    """Fit a law by the paper's procedure (Huber on log loss, L-BFGS-B from a subsampled grid).

    Parameters
    ----------
    data
        Schema frame or path (validated with :func:`bayes_dcpt.data.schema.load`).
    law
        Law name (``"dcpt"`` = L3, ``"L1"``..``"L7"``, ``"cross-domain"``, ``"chinchilla"``, ...).
    target
        ``"general"``, ``"domain"`` or ``"both"`` (separate fits, as in the paper).
    domain
        Fit only this domain. By default D-CPT laws are fitted per domain (the paper's protocol) and the
        cross-domain law jointly over all domains with their DLC features.
    delta, n_grid, n_starts, seed
        Huber delta; how many grid points to evaluate, from how many of the best to run L-BFGS-B; the
        seed of the grid subsample.
    probe_tokens
        Probe budget for the DLC feature k2 (cross-domain laws only).

    Returns
    -------
    PointFitResult
    """
    law = get_law(law)
    df = _data.load(data)
    if domain is not None:
        if domain not in set(df["domain"]):
            raise UnknownDomainError(f"unknown domain {domain!r}; the data has {sorted(set(df['domain']))}")
        df = df[df["domain"] == domain].reset_index(drop=True)
    _check_law_inputs(law)
    targets = _data.targets_of(target)
    features = None
    if law.dlc is not None:
        features = dlc_features(df, probe_tokens=probe_tokens)
    fits: dict[tuple[str, str], PointFit] = {}
    groups = [("*", df)] if law.dlc is not None else [(d, g) for d, g in df.groupby("domain", sort=True)]
    for t in targets:
        for dom, g in groups:
            rows = _data.fit_rows(g)
            rows = rows[rows[f"loss_{t}"].notna()].reset_index(drop=True)
            n_free = len(law.params)
            if len(rows) < n_free + 1:
                raise FitError(
                    f"target {t}, domain {dom}: {len(rows)} measured points for {n_free} parameters of {law.name}"
                )
            ctx = _context(rows)
            x = _law_inputs(law, rows, t, features)
            y = rows[f"loss_{t}"].to_numpy(float)
            t0 = time.perf_counter()
            u, res = _fit_arrays(law, x, y, ctx, delta=delta, n_grid=n_grid, n_starts=n_starts, seed=seed)
            params = {k: float(v) for k, v in to_natural(law, u, ctx).items()}
            notes = []
            if "N" in law.inputs and rows["n_params"].nunique() < 2:
                notes.append("one model size: A/N^alpha is not identified (absorbed in E)")
            fit_metrics = metrics(y, _predicted(law, params, x), delta)
            notes += estimate_notes(law, u, params, fit_metrics)
            fits[(t, dom)] = PointFit(law, t, dom, params, ctx, fit_metrics, bool(res.success),
                                      str(res.message), time.perf_counter() - t0, features, notes)
    return PointFitResult(law, fits)


def _draws_to_posterior(point: PointFitResult, draws: Mapping[tuple[str, str], pd.DataFrame],
                        df: pd.DataFrame) -> Posterior:
    """Parameter draws keyed like ``point.fits`` -> :class:`Posterior` (noise = RMS log residual per draw)."""
    params: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    resid: dict[str, list[np.ndarray]] = {}
    d_min = []
    for (t, d), dr in draws.items():
        pf = point.fits[(t, d)]
        law = pf.law
        d_min.append(pf.ctx.get("D_min", np.inf))
        g = df if d == "*" else df[df["domain"] == d]
        rows = _data.fit_rows(g)
        rows = rows[rows[f"loss_{t}"].notna()].reset_index(drop=True)
        p = {k: dr[k].to_numpy(float) for k in dr.columns}
        x = {k: v[None, :] for k, v in _law_inputs(law, rows, t, pf.features).items()}
        with np.errstate(all="ignore"):
            f = np.asarray(law(np, {k: v[:, None] for k, v in p.items()}, x), float)
        resid.setdefault(t, []).append(np.log(f) - np.log(rows[f"loss_{t}"].to_numpy(float))[None, :])
        if d == "*":
            for _, frow in pf.features.iterrows():
                fx = {k: np.asarray(frow[k], float) for k in law.dlc_features}
                with np.errstate(all="ignore"):
                    K = np.asarray(law.dlc(np, p, fx), float) * np.ones(len(dr))
                params[(t, str(frow["domain"]))] = {**p, "K": K}
        else:
            params[(t, d)] = p
    noise = {}
    for t, parts in resid.items():
        r = np.concatenate(parts, axis=1)
        sigma = np.sqrt(np.nanmean(r**2, axis=1))
        noise[t] = {"sigma": sigma, "tau": np.zeros_like(sigma)}
    return Posterior(law=point.law, params=params, noise=noise, ctx={"D_min": float(min(d_min))},
                     reference=_data.base_losses(df))


# ------------------------------------------------------------------------------------------- bootstrap
@dataclass
class BootstrapResult:
    """Bootstrap draws of the point-fit parameters, keyed like :class:`PointFitResult`."""

    point: PointFitResult
    draws: dict[tuple[str, str], pd.DataFrame]
    by: str
    n: int
    seconds: float
    data: pd.DataFrame | None = None

    def intervals(self, ci: float = 0.9) -> pd.DataFrame:
        """Percentile intervals of every parameter (the Epoch replication's method)."""
        lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
        rows = []
        for (t, d), dr in self.draws.items():
            for name in dr.columns:
                v = dr[name].to_numpy()
                rows.append({"target": t, "domain": d, "param": name, "point": self.point.fits[(t, d)].params[name],
                             "median": float(np.median(v)), "lo": float(np.quantile(v, lo)),
                             "hi": float(np.quantile(v, hi)), "sd": float(np.std(v, ddof=1))})
        return pd.DataFrame(rows)

    def to_posterior(self, data: Any = None) -> Posterior:
        """The bootstrap draws as a :class:`~bayes_dcpt.posterior.draws.Posterior`.

        So the frequentist baseline goes through the same decision and prediction code as a Bayesian fit.

        Each refit is one draw. The noise of draw ``s`` is ``sigma_s`` = the root-mean-square log-loss
        residual of that refit on the full data (``tau = 0``: the bootstrap has no run offsets). The
        reference (base-model) losses are the data's tokens == 0 rows. A joint cross-domain fit
        (domain ``"*"``) is expanded per domain with that domain's ``K`` per draw.

        Parameters
        ----------
        data
            The data that was bootstrapped; default: the frame stored by :func:`bootstrap`.
        """
        df = self.data if data is None else _data.load(data)
        if df is None:
            raise FitError("to_posterior needs the bootstrapped data: pass data=... (this result stores none)")
        return _draws_to_posterior(self.point, self.draws, df)

    def predict(self, frame: pd.DataFrame, ci: float = 0.9) -> pd.DataFrame:
        """Point prediction plus percentile band of the law across bootstrap refits (parameter uncertainty)."""
        frame = frame.reset_index(drop=True)
        out = frame.copy()
        lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
        for (t, d), dr in self.draws.items():
            pf = self.point.fits[(t, d)]
            mask = np.ones(len(frame), bool) if d == "*" else (frame["domain"] == d).to_numpy()
            if not mask.any():
                continue
            sub = frame[mask]
            p = {k: dr[k].to_numpy()[:, None] for k in dr.columns}
            x = {k: v[None, :] for k, v in _law_inputs(pf.law, sub, t, pf.features).items()}
            with np.errstate(all="ignore"):
                f = np.asarray(pf.law(np, p, x), float)
            for col, val in ((f"loss_{t}_mean", pf.predict(sub)), (f"loss_{t}_lo", np.nanquantile(f, lo, axis=0)),
                             (f"loss_{t}_hi", np.nanquantile(f, hi, axis=0))):
                if col not in out:
                    out[col] = np.nan
                out.loc[mask, col] = val
        return out


def bootstrap(
    data: Any,
    law: str | Law = "dcpt",
    target: str = "both",
    *,
    n: int = 1000,
    by: str = "point",
    seed: int = 0,
    domain: str | None = None,
    point: PointFitResult | None = None,
    **fit_kwargs: Any,
) -> BootstrapResult:
    """Epoch-style bootstrap: resample with replacement, refit (warm-started at the full-data fit).

    Parameters
    ----------
    by
        ``"point"`` resamples checkpoints (the Epoch replication), ``"run"`` resamples whole runs, which
        respects the correlation of the checkpoints of one run.
    n
        Number of resamples (the Epoch replication used 4,000; 1,000 is the default here).
    """
    if by not in ("point", "run"):
        raise FitError(f"unknown bootstrap unit {by!r}; use 'point' or 'run'")
    law = get_law(law)
    df = _data.load(data)
    if domain is not None:
        df = df[df["domain"] == domain].reset_index(drop=True)
    point = point or fit_point(df, law, target, **fit_kwargs)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    draws = {}
    for (t, d), pf in point.fits.items():
        g = df if d == "*" else df[df["domain"] == d]
        rows = _data.fit_rows(g)
        rows = rows[rows[f"loss_{t}"].notna()].reset_index(drop=True)
        x = _law_inputs(law, rows, t, pf.features)
        y = rows[f"loss_{t}"].to_numpy(float)
        u0 = to_free(law, pf.params, pf.ctx)
        runs = rows["run_id"].to_numpy()
        uruns, inv = np.unique(runs, return_inverse=True)
        out = np.empty((n, len(law.params)))
        for b in range(n):
            k = len(y) if by == "point" else len(uruns)  # resample checkpoints, or whole runs
            pick = np.bincount(rng.integers(0, k, k), minlength=k).astype(float)
            w = pick if by == "point" else pick[inv]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                u, _ = _fit_arrays(law, x, y, pf.ctx, delta=HUBER_DELTA, n_grid=0, n_starts=1, seed=0, warm=u0,
                                   weights=w)
            out[b] = [v for v in to_natural(law, u, pf.ctx).values()]
        draws[(t, d)] = pd.DataFrame(out, columns=list(law.param_names))
    return BootstrapResult(point, draws, by, n, time.perf_counter() - t0, df)
