"""Does the fitted law describe the data? Posterior predictive checks, beside R-hat and ESS on every fit.

A converged sampler on a law that misses the data is not a fit: the noise model then absorbs the misfit (wide or
heavy-tailed bands) and every decision inherits a confident, wrong curve. These checks compare the data with the
posterior predictive, per (target, domain, model size):

* ``coverage`` -- the share of measurements inside the central ``ci`` predictive band, against the share that
  replicated data sets of the same runs reach (too few: bands too narrow; too many: the noise swallows a misfit);
* ``trend_tokens`` -- residuals within each run regressed on log D (linear and quadratic): the law misses the
  shape of the loss curves (the run offsets cancel, so this tests the shape, not the level);
* ``trend_ratio`` / ``trend_size`` -- each run's mean residual regressed on the ratio / on log N;
* ``loo_pit`` -- leave-one-out probability integral transforms (each checkpoint given the rest of its run):
  calibrated predictions put 10% of them outside [0.05, 0.95];
* ``tails`` -- the Student-t degrees of freedom of the noise: near the floor, heavy tails stand in for the law.

Trend tests are Wald chi-square tests under the fitted noise model (posterior median scales); all p-values are
Bonferroni-corrected over the checks made, so a well-specified fit passes with probability about ``1 - alpha``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from bayes_dcpt.numerics.psis import psis
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.numerics.runblock import loo_conditional, loo_log_density

__all__ = ["NU_FLAG", "Adequacy", "AdequacyCheck", "check_adequacy"]

#: Posterior median of the Student-t degrees of freedom below which the noise is flagged as too heavy-tailed.
NU_FLAG = 3.0
_MAX_DRAWS = 800
#: At most this many (draw, log loss) cells in the checks' per-draw arrays (at least 200 draws): the example grid
#: and fits up to 20,000 log losses keep 800 draws; 64,800 log losses get 246 (two such arrays of 800 draws were
#: 830 MB, and the checks took 40-70 s; BENCHMARKS.md, scale).
_MAX_CELLS = 16_000_000
_MIN_DRAWS = 200
_CHECK_TEXT = {
    "coverage": "predictive bands miscalibrated",
    "trend_tokens": "the law misses the curves' shape along log D",
    "trend_ratio": "the law misses the shape in r",
    "trend_size": "the law misses the size dependence",
    "loo_pit": "leave-one-out predictions miscalibrated",
    "tails": "heavy-tailed noise absorbs the misfit",
}


@dataclass(frozen=True)
class AdequacyCheck:
    """One check on one group of measurements (``n_params`` None: all sizes; ``domain`` "*": all domains)."""

    check: str
    target: str
    domain: str
    n_params: float | None
    statistic: float
    reference: str
    p_value: float
    ok: bool
    message: str

    def where(self) -> str:
        """``"domain loss, python, N=4.43e+05"``."""
        size = "" if self.n_params is None else f", N={self.n_params:.3g}"
        dom = "" if self.domain == "*" else f", {self.domain}"
        return f"{self.target} loss{dom}{size}"


@dataclass(frozen=True)
class Adequacy:
    """The verdict of the checks: ``ok`` when the law describes the data, else the failed checks."""

    checks: tuple[AdequacyCheck, ...]
    alpha: float
    ci: float

    @property
    def ok(self) -> bool:
        """True when every check passes."""
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[AdequacyCheck, ...]:
        """The failed checks, worst (smallest p-value) first."""
        bad = [c for c in self.checks if not c.ok]
        return tuple(sorted(bad, key=lambda c: (np.nan_to_num(c.p_value, nan=0.0), c.check)))

    def misfit_groups(self) -> set[tuple[str, str, float | None]]:
        """``(target, domain, n_params)`` of every failed check (for marking figures)."""
        return {(c.target, c.domain, c.n_params) for c in self.failures}

    def summary(self, limit: int = 4) -> str:
        """One line: that the law describes the data, or where it does not."""
        if self.ok:
            return f"the law describes the data ({len(self.checks)} posterior predictive checks pass)"
        items = [f"{c.where()}: {c.message}" for c in self.failures[:limit]]
        more = len(self.failures) - limit
        tail = f"; and {more} more" if more > 0 else ""
        return self._misfit_head() + ": " + "; ".join(items) + tail

    def _misfit_head(self) -> str:
        """``"MISFIT (3 of 32 checks fail)"``: how the summary and the notebook display begin when a check fails."""
        return f"MISFIT ({len(self.failures)} of {len(self.checks)} checks fail)"

    def table(self) -> pd.DataFrame:
        """One row per check."""
        return pd.DataFrame([asdict(c) for c in self.checks])

    def __str__(self) -> str:
        """The verdict, then one line per failed check, worst first: what a notebook shows."""
        if self.ok:
            return self.summary()
        head = self._misfit_head() + ": the law does not describe the data"
        return "\n".join([head, *(f"  FAIL {c.where()}: {c.message}" for c in self.failures)])

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython and Jupyter show the verdict, not the dataclass's tuple of every check."""
        p.text("Adequacy(...)" if cycle else str(self))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``ok``, the summary line, counts and the failed checks."""
        return {"ok": self.ok, "summary": self.summary(), "n_checks": len(self.checks),
                "n_failed": len(self.failures), "alpha": self.alpha,
                "failures": [{"check": c.check, "where": c.where(), "target": c.target, "domain": c.domain,
                              "n_params": c.n_params, "statistic": c.statistic, "p_value": c.p_value,
                              "message": c.message} for c in self.failures]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Adequacy:
        """Rebuild the verdict stored in a model card (failed checks only, plus the passing count)."""
        fails = tuple(AdequacyCheck(f["check"], f["target"], f["domain"], f["n_params"], float(f["statistic"]),
                                    "", float(f["p_value"]) if f["p_value"] is not None else np.nan, False,
                                    f["message"]) for f in d.get("failures", []))
        n_pass = int(d.get("n_checks", len(fails))) - len(fails)
        passed = tuple(AdequacyCheck("passed", "*", "*", None, np.nan, "", np.nan, True, "") for _ in range(n_pass))
        return cls(fails + passed, float(d.get("alpha", 0.01)), 0.9)


# ------------------------------------------------------------------------------------------- residuals
def _observations(post: Any, data: pd.DataFrame, zero_ratio: bool) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Fitted measurements in long form, and the law's log mean and the noise sd per draw ``(S, n)``.

    The per-draw arrays are returned beside the frame, not in its ``attrs``: pandas deep-copies ``attrs`` on every
    operation, which on tens of thousands of checkpoints made the checks take minutes.
    """
    rows = data[data["tokens"] > 0].reset_index(drop=True)
    parts, logms, sds = [], [], []
    for t in post.targets:
        sub = rows[rows[f"loss_{t}"].notna() & rows["domain"].isin(post.domains)]
        own = sub["r_domain"] if t == "domain" else 1.0 - sub["r_domain"]
        if not zero_ratio:
            sub = sub[own.to_numpy() > 0]
        if sub.empty:
            continue
        logm = post.mean_log_loss(sub, t)
        logms.append(logm)
        sds.append(post.checkpoint_sd(sub, t, logm))
        parts.append(pd.DataFrame({
            "target": t, "domain": sub["domain"].astype(str).to_numpy(),
            "n_params": sub["n_params"].to_numpy(float), "tokens": sub["tokens"].to_numpy(float),
            "r_domain": sub["r_domain"].to_numpy(float), "run_id": sub["run_id"].astype(str).to_numpy(),
            "y": np.log(sub[f"loss_{t}"].to_numpy(float))}))
    obs = pd.concat(parts, ignore_index=True)
    logm = np.concatenate(logms, axis=1)
    sd = np.concatenate(sds, axis=1)
    obs["m"] = np.nanmean(logm, axis=0)
    obs["v"] = weighted_quantile(sd**2, 0.5)[0]  # each checkpoint's noise variance (posterior median)
    return obs, logm, sd


def _noise_scales(noise: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """Posterior-median variance inflation of a Student-t (1 for a Normal), offset variance and nu."""
    tau = float(np.median(noise["tau"])) if "tau" in noise else 0.0
    nu = float(np.median(noise["nu"])) if "nu" in noise else np.inf
    inflate = 1.0 if not np.isfinite(nu) else (nu / (nu - 2.0) if nu > 2.2 else nu / 0.2)
    return inflate, tau**2, nu


def _wald(resid: np.ndarray, X: np.ndarray, cov: np.ndarray) -> tuple[float, float, int]:
    """Chi-square test that ``resid`` (mean 0, covariance ``cov`` under the model) has no component along ``X``."""
    return _wald_sums(X.T @ resid, X.T @ cov @ X)


def _wald_sums(g: np.ndarray, V: np.ndarray) -> tuple[float, float, int]:
    """The Wald statistic ``g' V^-1 g`` of a score ``g`` with covariance ``V``, its chi-square p-value and dof."""
    k = len(g)
    try:
        stat = float(g @ np.linalg.solve(V, g))
    except np.linalg.LinAlgError:
        return float("nan"), float("nan"), k
    return stat, float(stats.chi2.sf(stat, k)), k


def _poly(x: np.ndarray, quadratic: bool) -> np.ndarray:
    z = (x - x.mean()) / (x.std() or 1.0)
    cols = [z] + ([z**2 - np.mean(z**2)] if quadratic else [])
    return np.stack(cols, axis=1)


# ---------------------------------------------------------------------------------------------- checks
def _coverage(post: Any, t: str, d: str, g: pd.DataFrame, ci: float, n_rep: int, seed: int
              ) -> list[AdequacyCheck]:
    frame = g[["domain", "n_params", "tokens", "r_domain", "run_id"]].reset_index(drop=True)
    with np.errstate(over="ignore", divide="ignore"):  # nu < 1 draws overflow to inf/0: far out in the tails
        draws = np.log(post.sample_observations(frame, t, seed=seed))
    lo, hi = weighted_quantile(draws, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    y = g["y"].to_numpy()
    inside = (y >= lo) & (y <= hi)
    rep = draws[np.random.default_rng([seed, 7]).integers(0, draws.shape[0], n_rep)]
    inside_rep = (rep >= lo) & (rep <= hi)
    out = []
    for n in np.unique(g["n_params"]):
        m = (g["n_params"] == n).to_numpy()
        share, share_rep = float(inside[m].mean()), inside_rep[:, m].mean(axis=1)
        mu, sd = float(share_rep.mean()), max(float(share_rep.std(ddof=1)), 1e-3)
        p = float(2 * stats.norm.sf(abs(share - mu) / sd))
        side = "too narrow" if share < mu else "too wide"
        out.append(AdequacyCheck("coverage", t, d, float(n), share, f"{mu:.2f} +- {sd:.2f}", p, True,
                                 f"bands {side}: {share:.0%} of {int(m.sum())} points inside the {ci:.0%} band, "
                                 f"replicates {mu:.0%} +- {sd:.0%}"))
    return out


def _trend_tokens(t: str, d: str, n: float, g: pd.DataFrame, inflate: float) -> AdequacyCheck | None:
    e = (g["y"] - g["m"]).to_numpy()
    v = g["v"].to_numpy() * inflate
    logd = np.log(g["tokens"].to_numpy())
    runs = g["run_id"].to_numpy()
    g_sum, v_sum, used = np.zeros(2), np.zeros((2, 2)), False
    for rid in np.unique(runs):
        k = runs == rid
        if int(k.sum()) < 4:
            continue
        x = logd[k] - logd[k].mean()
        X = np.stack([x, x**2 - np.mean(x**2)], axis=1)
        # run offsets cancel in within-run centred residuals; their covariance is C diag(v) C with the centring
        # C, so each run adds X'(e - mean e) and (CX)' diag(v) (CX) to the Wald sums (block by block, never an
        # n x n matrix: a run of 200 checkpoints costs 200 x 2 numbers)
        cx = X - X.mean(axis=0)
        g_sum += X.T @ (e[k] - e[k].mean())
        v_sum += cx.T @ (v[k][:, None] * cx)
        used = True
    if not used:
        return None
    stat, p, k = _wald_sums(g_sum, v_sum)
    return AdequacyCheck("trend_tokens", t, d, float(n), stat, f"chi2({k})", p, True,
                         f"within-run residuals along log D: chi2({k}) = {stat:.1f}")


def _trend_runs(check: str, t: str, d: str, n: float | None, g: pd.DataFrame, x_of: str, inflate: float,
                var_u: float) -> AdequacyCheck | None:
    e = (g["y"] - g["m"]).to_numpy()
    runs = g.assign(e=e, v=g["v"] * inflate).groupby("run_id").agg(e=("e", "mean"), x=(x_of, "first"),
                                                                     k=("e", "size"), v=("v", "sum"))
    levels = runs["x"].nunique()
    if len(runs) < 3 or levels < 3:
        return None
    x = np.log(runs["x"].to_numpy()) if x_of == "n_params" else runs["x"].to_numpy()
    var = var_u + runs["v"].to_numpy() / runs["k"].to_numpy() ** 2
    stat, p, k = _wald(runs["e"].to_numpy(), _poly(x, levels >= 4), np.diag(var))
    axis = "log N" if x_of == "n_params" else "r"
    return AdequacyCheck(check, t, d, n, stat, f"chi2({k})", p, True,
                         f"run-mean residuals along {axis}: chi2({k}) = {stat:.1f}")


def _loo_pit(post: Any, t: str, d: str, g: pd.DataFrame, logm: np.ndarray, sd: np.ndarray) -> AdequacyCheck | None:
    """LOO-PIT of each checkpoint given the rest of its run (closed form of the marginal model; PSIS weights)."""
    nz = post.noise_of(t, d)
    if "nu" in nz and not post.ctx.get("run_mixing"):
        return None  # sampled-offset fits have no closed-form conditional predictive
    col = lambda v: np.asarray(v, float)[:, None]  # noqa: E731
    e = g["y"].to_numpy()[None, :] - logm
    runs = g["run_id"].to_numpy()
    tau = col(nz["tau"]) if "tau" in nz else 0.0
    nu = col(nz["nu"]) if "nu" in nz else None
    resid, scale, dof = loo_conditional(e, runs, sd, tau, nu)
    cdf = special.ndtr(resid / scale) if dof is None else special.stdtr(dof, resid / scale)
    ll = loo_log_density(resid, scale, dof)
    lw, _ = psis(-ll.T)  # (n, S)
    pit = np.sum(np.exp(lw) * cdf.T, axis=1)
    tails = float(np.mean((pit < 0.05) | (pit > 0.95)))
    n_eff = len(np.unique(runs))  # checkpoints of a run are not independent: count runs, conservatively
    sd_share = np.sqrt(0.1 * 0.9 / n_eff)
    p = float(2 * stats.norm.sf(abs(tails - 0.1) / sd_share))
    return AdequacyCheck("loo_pit", t, d, None, tails, f"0.10 +- {sd_share:.2f}", p, True,
                         f"{tails:.0%} of leave-one-out PITs outside [0.05, 0.95] (calibrated: 10%)")


def _tails(t: str, d: str, nu: float) -> AdequacyCheck:
    ok = nu >= NU_FLAG
    msg = f"noise degrees of freedom {nu:.2f}"
    return AdequacyCheck("tails", t, d, None, nu, f"nu >= {NU_FLAG:g}", float("nan"), ok,
                         msg if ok else f"{_CHECK_TEXT['tails']} ({msg} < {NU_FLAG:g})")


def check_adequacy(post: Any, data: pd.DataFrame, *, ci: float = 0.9, alpha: float = 0.01, seed: int = 0,
                   zero_ratio: bool = False, n_rep: int = 400, checks: Sequence[str] | None = None) -> Adequacy:
    """Posterior predictive checks of a fitted law against the data it was fitted on.

    They use at most 800 evenly spaced posterior draws, and on very large data fewer (at least 200), so that the
    per-draw arrays stay under 16 million cells.

    Parameters
    ----------
    post
        The :class:`~bayes_dcpt.posterior.Posterior` (a fit's ``.posterior``).
    data
        The fitted measurements (schema frame, base rows included or not).
    ci
        Probability of the predictive band of the coverage check.
    alpha
        Family-wise error rate: each check's p-value is compared with ``alpha / number of checks``.
    zero_ratio
        Include losses measured with none of their own corpus (as the fit did).
    checks
        A subset of ``coverage, trend_tokens, trend_ratio, trend_size, loo_pit, tails`` (default: all).
    """
    wanted = set(checks or _CHECK_TEXT)
    n_obs = max(1, int((data["tokens"] > 0).sum()) * len(post.targets))
    n_keep = min(post.n_draws, _MAX_DRAWS, max(_MIN_DRAWS, _MAX_CELLS // n_obs))
    idx = np.unique(np.linspace(0, post.n_draws - 1, n_keep).astype(int))
    sub = post.subset(idx) if len(idx) < post.n_draws else post
    obs, logm_all, sd_all = _observations(sub, data, zero_ratio)
    out: list[AdequacyCheck] = []
    per_domain = sub.noise_domains is not None  # the noise (and its tails) per (target, domain), else per target
    for t in sub.targets:
        doms = sorted(obs.loc[obs["target"] == t, "domain"].unique())
        for d in doms:
            inflate, var_u, nu = _noise_scales(sub.noise_of(t, d))
            if "tails" in wanted and per_domain and np.isfinite(nu):
                out.append(_tails(t, d, nu))
            m = ((obs["target"] == t) & (obs["domain"] == d)).to_numpy()
            g = obs[m]
            if "coverage" in wanted:
                out += _coverage(sub, t, d, g, ci, n_rep, seed)
            for n, gn in g.groupby("n_params"):
                if "trend_tokens" in wanted and (c := _trend_tokens(t, d, n, gn, inflate)):
                    out.append(c)
                if "trend_ratio" in wanted and (c := _trend_runs("trend_ratio", t, d, float(n), gn, "r_domain",
                                                                 inflate, var_u)):
                    out.append(c)
            if "trend_size" in wanted and (c := _trend_runs("trend_size", t, d, None, g, "n_params", inflate, var_u)):
                out.append(c)
            if "loo_pit" in wanted and (c := _loo_pit(sub, t, d, g, logm_all[:, m], sd_all[:, m])):
                out.append(c)
        nu_t = _noise_scales(sub.noise_of(t, doms[0]))[2] if doms else np.inf
        if "tails" in wanted and not per_domain and np.isfinite(nu_t):
            out.append(_tails(t, "*", nu_t))
    n_tests = max(1, sum(np.isfinite(c.p_value) for c in out))
    threshold = alpha / n_tests
    final = []
    for c in out:
        if np.isfinite(c.p_value):
            ok = c.p_value >= threshold
            msg = c.message if ok else f"{_CHECK_TEXT[c.check]} ({c.message}; p = {c.p_value:.2g})"
            c = AdequacyCheck(c.check, c.target, c.domain, c.n_params, c.statistic, c.reference, c.p_value, ok, msg)
        final.append(c)
    return Adequacy(tuple(final), alpha, ci)
