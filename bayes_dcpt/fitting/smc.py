"""A fast numpy posterior of a law by sequential Monte Carlo: the planner loop's stand-in refit.

The Bayesian fit of the package is PyMC/NUTS (:mod:`bayes_dcpt.fitting`). The closed-loop tests and benchmarks
of the planner refit dozens of times, so they use this cheaper sampler of the same kind of posterior:

* priors of every law parameter from the law registry (:class:`bayes_dcpt.laws.registry.Prior`; coefficient priors
  scaled by the median observed loss), sampled in the point fit's free coordinates (``log``, ``eta - 1``,
  the excess ``C - C0``), with the registry's bounds;
* noise priors ``log sigma ~ N(log 0.01, 1)`` and ``log tau ~ N(log 0.005, 1)`` per target (stand-ins;
  the PyMC model has its own);
* the run-block likelihood of :mod:`bayes_dcpt.numerics.runblock`: each run's checkpoints of one loss are
  jointly Gaussian on the log scale with covariance ``sigma^2 I + tau^2 11^T``; targets are fitted separately,
  domains of one target jointly (shared noise);
* adaptive likelihood tempering (the next temperature keeps half the effective sample size), systematic
  resampling, and Metropolis moves alternating differential-evolution proposals (ter Braak 2006, which
  follow the ridges of these posteriors) with random-walk proposals shaped by the particles' covariance
  (Del Moral, Doucet & Jasra 2006; the scheme of PyMC's SMC).

Accuracy: D-CPT posteriors have curved ridges (E vs A/N^alpha, C vs gamma and eps). On a synthetic check the
intervals of this SMC were wider than those of long MCMC and varied with the seed, while the median agreed
(see BENCHMARKS.md). It is a stand-in that is wide rather than overconfident, not a replacement for NUTS.

Quickstart::

    >>> from bayes_dcpt.fitting.smc import smc_posterior, SMCRefit
    >>> post = smc_posterior(df, "dcpt", n_draws=2000, seed=0)
    >>> refit = SMCRefit("dcpt", n_draws=1000)        # a ``refit(data) -> Posterior`` for the planner loop
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from scipy.stats import truncnorm

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import FitError
from bayes_dcpt.laws.registry import BILLION, Law, get_law
from bayes_dcpt.numerics.runblock import run_terms
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["SMCRefit", "smc_posterior"]

NOISE_PRIORS = {"sigma": (np.log(0.01), 1.0), "tau": (np.log(0.005), 1.0)}

_Warm = dict[str, tuple[np.ndarray, pd.DataFrame]]


@dataclass
class _Space:
    """Free coordinates of one target: the law parameters of each domain, then log sigma, log tau."""

    law: Law
    domains: list[str]
    l_ref: float
    ctx: dict[str, float]
    mean: np.ndarray = field(init=False)
    sd: np.ndarray = field(init=False)
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        mean, sd, lo, hi = [], [], [], []
        for _ in self.domains:
            for par in self.law.params:
                pr = par.prior
                c = pr.center * (self.l_ref if pr.scale == "loss" else 1.0)
                if pr.kind == "normal":
                    mean.append(c)
                    sd.append(pr.sd)
                    b0, b1 = par.bounds
                    lo.append(-np.inf if b0 is None else b0)
                    hi.append(np.inf if b1 is None else b1)
                else:
                    mean.append(np.log(c))
                    sd.append(pr.sd)
                    b0, b1 = par.bounds if (pr.kind == "lognormal" and par.lower is None) else (None, None)
                    lo.append(np.log(b0) if b0 is not None and b0 > 0 else -np.inf)
                    hi.append(np.log(b1) if b1 is not None else np.inf)
        for name in ("sigma", "tau"):
            m, s = NOISE_PRIORS[name]
            mean.append(m)
            sd.append(s)
            lo.append(np.log(1e-6))
            hi.append(np.log(1.0))
        self.mean, self.sd = np.array(mean), np.array(sd)
        self.lo, self.hi = np.array(lo), np.array(hi)

    @property
    def dim(self) -> int:
        return len(self.mean)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        a, b = (self.lo - self.mean) / self.sd, (self.hi - self.mean) / self.sd
        return truncnorm.rvs(a, b, loc=self.mean, scale=self.sd, size=(n, self.dim), random_state=rng)

    def log_prior(self, U: np.ndarray) -> np.ndarray:
        inside = np.all((U > self.lo) & (U < self.hi), axis=1)
        lp = -0.5 * np.sum(((U - self.mean) / self.sd) ** 2, axis=1)
        return np.where(inside, lp, -np.inf)

    def natural(self, U: np.ndarray) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, np.ndarray]:
        """Per-domain natural parameters, sigma and tau from free coordinates (n, dim)."""
        out: dict[str, dict[str, np.ndarray]] = {}
        P = len(self.law.params)
        with np.errstate(over="ignore", invalid="ignore"):
            for i, d in enumerate(self.domains):
                p: dict[str, np.ndarray] = {}
                for j, par in enumerate(self.law.params):
                    u = U[:, i * P + j]
                    pr = par.prior
                    if pr.kind == "normal":
                        v = u
                    elif pr.kind == "shifted_lognormal":
                        v = 1.0 + np.exp(u)
                    else:
                        v = np.exp(u)
                        if par.lower is not None:
                            v = par.lower(np, p, self.ctx) + v
                    p[par.name] = v
                out[d] = p
            return out, np.exp(U[:, -2]), np.exp(U[:, -1])


@dataclass
class _Lik:
    """Gaussian run-block likelihood of one target's rows, vectorised over particles."""

    space: _Space
    x: dict[str, dict[str, np.ndarray]]
    y: dict[str, np.ndarray]
    G: dict[str, np.ndarray]  # per domain: (2, n_runs) start index and length of each run's rows

    @classmethod
    def build(cls, space: _Space, rows: pd.DataFrame, target: str) -> _Lik:
        x, y, G = {}, {}, {}
        for d in space.domains:
            sub = rows[rows["domain"] == d]
            sub = sub.iloc[np.argsort(sub["run_id"].astype(str).to_numpy(), kind="stable")]
            r = (
                sub["r_domain"].to_numpy(float)
                if target == "domain"
                else 1.0 - sub["r_domain"].to_numpy(float)
            )
            x[d] = {
                "N": sub["n_params"].to_numpy(float)[None] / BILLION,
                "D": sub["tokens"].to_numpy(float)[None] / BILLION,
                "r": r[None],
            }
            y[d] = np.log(sub[f"loss_{target}"].to_numpy(float))
            _, starts, counts = np.unique(
                sub["run_id"].astype(str).to_numpy(), return_index=True, return_counts=True
            )
            G[d] = np.stack([starts, counts])  # runs are contiguous after the sort
        return cls(space, x, y, G)

    def __call__(self, U: np.ndarray) -> np.ndarray:
        params, sigma, tau = self.space.natural(U)
        s2, t2 = (sigma**2)[:, None], (tau**2)[:, None]
        total = np.zeros(U.shape[0])
        with np.errstate(all="ignore"):
            for d, p in params.items():
                pe = {k: v[:, None] for k, v in p.items()}
                f = np.asarray(self.space.law(np, pe, self.x[d]), float)
                e = self.y[d][None, :] - np.log(f)
                starts, counts = self.G[d]
                s1 = np.add.reduceat(e, starts, axis=1)
                ss = np.add.reduceat(e * e, starts, axis=1)
                total += np.sum(run_terms(np, s1, ss, counts[None, :].astype(float), s2, t2), axis=1)
        return np.where(np.isfinite(total), total, -np.inf)


def _systematic(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(w)
    pos = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(w), pos), n - 1)


def _smc(
    space: _Space,
    lik: _Lik,
    n: int,
    rng: np.random.Generator,
    n_moves: int,
    ess_frac: float,
    max_stages: int,
    init: np.ndarray | None = None,
    lik_old: _Lik | None = None,
    kernel: str = "de",
    final_moves: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Temper ``lik`` in from the prior (or from ``init``: draws of prior x ``lik_old`` at full weight)."""
    if init is None:
        U = space.sample(n, rng)
        base = space.log_prior
    else:
        U = init[rng.choice(len(init), size=n, replace=len(init) < n)] if len(init) != n else init.copy()

        def base(V: np.ndarray) -> np.ndarray:
            lp0 = space.log_prior(V)
            out = np.full(len(V), -np.inf)
            ok = np.isfinite(lp0)
            if ok.any():
                out[ok] = lp0[ok] + lik_old(V[ok])
            return out

    lp = base(U)
    ll = lik(U)
    beta, stages, accs = 0.0, 0, []
    scale = 2.38 / np.sqrt(space.dim)
    while beta < 1.0:
        stages += 1
        if stages > max_stages:
            raise FitError(f"SMC did not reach the posterior in {max_stages} tempering stages")
        llf = np.where(np.isfinite(ll), ll, -np.inf)

        def ess_at(b: float, beta: float = beta, llf: np.ndarray = llf) -> float:
            lw = (b - beta) * llf
            lw = lw - logsumexp(lw)
            return float(1.0 / np.sum(np.exp(2 * lw)))

        if ess_at(1.0) >= ess_frac * n:
            new = 1.0
        else:
            a, b = beta, 1.0
            for _ in range(50):
                mid = 0.5 * (a + b)
                if ess_at(mid) >= ess_frac * n:
                    a = mid
                else:
                    b = mid
            new = max(a, beta + 1e-9)
        lw = (new - beta) * llf
        w = np.exp(lw - logsumexp(lw))
        idx = _systematic(w, rng)
        U, lp, ll = U[idx], lp[idx], ll[idx]
        beta = new
        cov = np.cov(U, rowvar=False) + 1e-10 * np.eye(space.dim)
        L = np.linalg.cholesky(cov)
        moves = (final_moves or 2 * n_moves) if beta >= 1.0 else n_moves
        acc_stage = []
        for i_move in range(moves):
            if kernel == "de" and i_move % 2 == 0:
                # differential-evolution move (ter Braak 2006): follows the local shape of ridges
                r1 = rng.integers(1, n, n)
                r2 = rng.integers(1, n - 1, n)
                r2 = r2 + (r2 >= r1)
                a, b = (np.arange(n) + r1) % n, (np.arange(n) + r2) % n
                g = 2.38 / np.sqrt(2 * space.dim) * (1.0 if rng.random() > 0.1 else 1.0 / 0.42)
                prop = U + g * (U[a] - U[b]) + 1e-4 * rng.standard_normal(U.shape) @ L.T
            else:
                prop = U + scale * rng.standard_normal(U.shape) @ L.T
            lp_p = base(prop)
            ll_p = np.full(n, -np.inf)
            ok = np.isfinite(lp_p)
            if ok.any():
                ll_p[ok] = lik(prop[ok])
            log_a = lp_p + beta * ll_p - lp - beta * ll
            acc = np.log(rng.random(n)) < log_a
            U[acc], lp[acc], ll[acc] = prop[acc], lp_p[acc], ll_p[acc]
            rate = float(acc.mean())
            acc_stage.append(rate)
            if not (kernel == "de" and i_move % 2 == 0):
                scale *= np.exp(rate - 0.234)
        accs.append(float(np.mean(acc_stage)))
    unique = len(np.unique(U[:, 0]))
    return U, {"stages": stages, "acceptance": accs, "unique_fraction": unique / n}


def smc_posterior(
    data: Any,
    law: str | Law = "dcpt",
    *,
    target: str = "both",
    n_draws: int = 2000,
    seed: int = 0,
    n_moves: int = 6,
    ess_frac: float = 0.5,
    max_stages: int = 200,
    l_ref: dict[str, float] | None = None,
    ctx: dict[str, float] | None = None,
    kernel: str = "de",
    final_moves: int | None = None,
) -> Posterior:
    """Sample the posterior of ``law`` fitted to ``data`` by tempered SMC (see the module docstring).

    Parameters
    ----------
    data
        Schema frame or path; base rows (``tokens == 0``) become the posterior's reference losses.
    law
        A law with inputs N, D, r (the D-CPT family).
    target
        ``"general"``, ``"domain"`` or ``"both"``.
    n_draws, seed
        Number of particles (posterior draws) and the seed: same data and seed, same draws.
    n_moves
        Metropolis moves per tempering stage (twice as many at the last stage).
    l_ref, ctx
        Fix the prior's loss scale per target and the ``D_min`` of the C > C0 constraint (by default from
        the data; fix them to compare posteriors across growing data sets).

    Returns
    -------
    Posterior
        With ``ctx["smc_stages"]`` and the mean acceptance rate recorded.
    """
    return _smc_fit(
        data,
        law,
        target=target,
        n_draws=n_draws,
        seed=seed,
        n_moves=n_moves,
        ess_frac=ess_frac,
        max_stages=max_stages,
        l_ref=l_ref,
        ctx=ctx,
        kernel=kernel,
        final_moves=final_moves,
    )[0]


def _smc_fit(
    data: Any,
    law: str | Law,
    *,
    target: str,
    n_draws: int,
    seed: int,
    n_moves: int,
    ess_frac: float,
    max_stages: int,
    l_ref: dict[str, float] | None,
    ctx: dict[str, float] | None,
    _warm: _Warm | None = None,
    kernel: str = "de",
    final_moves: int | None = None,
) -> tuple[Posterior, _Warm]:
    law = get_law(law)
    if not {"N", "D", "r"} <= set(law.inputs) or law.dlc is not None:
        raise FitError(f"smc_posterior fits laws of (N, D, r); {law.name!r} takes {law.inputs}")
    df = _data.load(data)
    rows_all = _data.fit_rows(df)
    targets = _data.targets_of(target)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    pos = rows_all["tokens"][rows_all["tokens"] > 0]
    cx = dict(ctx) if ctx else {"D_min": float(pos.min()) / BILLION if len(pos) else 0.1311}
    params: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    noise: dict[str, dict[str, np.ndarray]] = {}
    info: dict[str, float] = {}
    states: _Warm = {}
    for t in targets:
        rows = rows_all[rows_all[f"loss_{t}"].notna()].reset_index(drop=True)
        if rows.empty:
            raise FitError(f"no {t} losses to fit")
        domains = sorted(rows["domain"].unique())
        lr = (l_ref or {}).get(t, float(np.median(rows[f"loss_{t}"])))
        space = _Space(law, domains, lr, cx)
        warm = (_warm or {}).get(t)
        if warm is not None and list(warm[1].attrs.get("domains", [])) == domains:
            old_rows = warm[1]
            key = old_rows["run_id"].astype(str) + "@" + old_rows["tokens"].astype(str)
            is_old = (rows["run_id"].astype(str) + "@" + rows["tokens"].astype(str)).isin(set(key))
            new_rows = rows[~is_old.to_numpy()]
            if new_rows.empty:
                U, diag = warm[0].copy(), {"stages": 0, "acceptance": [np.nan], "unique_fraction": 1.0}
            else:
                U, diag = _smc(
                    space,
                    _Lik.build(space, new_rows, t),
                    n_draws,
                    rng,
                    n_moves,
                    ess_frac,
                    max_stages,
                    init=warm[0],
                    lik_old=_Lik.build(space, rows[is_old.to_numpy()], t),
                    kernel=kernel,
                    final_moves=final_moves,
                )
        else:
            lik = _Lik.build(space, rows, t)
            U, diag = _smc(
                space,
                lik,
                n_draws,
                rng,
                n_moves,
                ess_frac,
                max_stages,
                kernel=kernel,
                final_moves=final_moves,
            )
        state = rows.copy()
        state.attrs["domains"] = domains
        states[t] = (U, state)
        nat, sigma, tau = space.natural(U)
        for d in domains:
            params[(t, d)] = nat[d]
        noise[t] = {"sigma": sigma, "tau": tau}
        info[f"smc_stages_{t}"] = float(diag["stages"])
        info[f"smc_acceptance_{t}"] = float(np.mean(diag["acceptance"]))
        info[f"smc_unique_{t}"] = float(diag["unique_fraction"])
    info["smc_seconds"] = time.perf_counter() - t0
    return Posterior(law, params, noise, {**cx, **info}, _data.base_losses(df)), states


class SMCRefit:
    """``refit(data) -> Posterior`` by :func:`smc_posterior`, for :mod:`bayes_dcpt.plan.loop`.

    The prior's loss scale and ``D_min`` are fixed at the first call so that successive refits on growing
    data share one prior. Each call is seeded by ``seed`` and the number of rows: deterministic. With
    ``warm=True`` a call starts from the particles of the previous call and tempers in only the rows that
    are new (a sequential update: far fewer stages); otherwise it starts from the prior. For a loop that must
    resume to the same history, pass ``l_ref`` and ``ctx`` and keep ``warm=False``.
    """

    def __init__(
        self,
        law: str | Law = "dcpt",
        *,
        n_draws: int = 1500,
        seed: int = 0,
        n_moves: int = 10,
        final_moves: int = 30,
        l_ref: dict[str, float] | None = None,
        ctx: dict[str, float] | None = None,
        warm: bool = False,
    ):
        self.law = get_law(law)
        self.n_draws, self.seed, self.n_moves, self.final_moves = n_draws, seed, n_moves, final_moves
        self.l_ref, self.ctx = l_ref, ctx
        self.warm = warm
        self.calls = 0
        self._state: _Warm | None = None

    def __call__(self, data: pd.DataFrame) -> Posterior:
        """The posterior of ``data`` (warm-started from the previous call's particles when ``warm``)."""
        df = _data.load(data)
        rows = _data.fit_rows(df)
        if self.l_ref is None:
            self.l_ref = {
                t: float(np.median(rows[f"loss_{t}"].dropna()))
                for t in _data.TARGETS
                if rows[f"loss_{t}"].notna().any()
            }
        if self.ctx is None:
            self.ctx = {"D_min": float(rows["tokens"].min()) / BILLION}
        self.calls += 1
        post, state = _smc_fit(
            df,
            self.law,
            target="both",
            n_draws=self.n_draws,
            seed=self.seed + 7919 * len(rows),
            n_moves=self.n_moves,
            ess_frac=0.5,
            max_stages=200,
            l_ref=self.l_ref,
            ctx=self.ctx,
            _warm=self._state if self.warm else None,
            final_moves=self.final_moves,
        )
        self._state = state
        return post
