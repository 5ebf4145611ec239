"""Usage 2 of the D-CPT paper: with limited domain data, the mixture ratio that minimises the domain loss.

With ``D_d`` domain tokens available, a run at domain share ``r`` has ``D = D_d / r`` tokens in total: a
smaller ``r`` means a longer run but a diluted domain. :func:`limited_data` finds ``r*`` per posterior draw:
for the D-CPT Law (and the cross-domain law built on it) in closed form, with the paper's condition for an
interior optimum; for any other law numerically (grid scan plus golden section). The optimum is located on the
law; the losses at it (and the plotted curves) carry the law's calibrated error beyond the data, whose unknown sign
would otherwise pull the optimum to the longest, most extrapolated runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_dcpt.decide.draws import answer_domains, law_draws, reach_facts
from bayes_dcpt.decide.inputs import positive
from bayes_dcpt.decide.results import Decision, DecisionSet, one_or_set
from bayes_dcpt.laws.registry import BILLION
from bayes_dcpt.numerics.search import grid_then_golden
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["limited_data"]


def _is_l3_like(post: Posterior) -> bool:
    """True for laws whose r-dependence is the D-CPT Law's (L3 and the cross-domain law built on it)."""
    return post.law.name == "L3" or post.law.family == "cross-domain"


def _limited_l3(post: Posterior, domain: str, domain_tokens: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form condition and root of dL/dr for the D-CPT Law along D = D_d / r.

    ``L(r) = E + A/N^alpha + B r^(eta+beta) / D_d^beta + C / (r+eps)^gamma`` is convex with
    ``dL/dr(0) < 0``; the optimum is interior iff ``dL/dr(1) > 0``, i.e.
    ``D_d < (B (eta+beta) (1+eps)^(gamma+1) / (gamma C))^(1/beta)`` (laws.md section 4, usage 2).
    Returns ``(r*, interior, D_d threshold in tokens)``.
    """
    p = post.param_draws("domain", domain)
    B, eta, beta, C, gamma, eps = (np.asarray(p[k], float) for k in ("B", "eta", "beta", "C", "gamma", "eps"))
    Dd = domain_tokens / BILLION
    with np.errstate(all="ignore"):
        thresh = (B * (eta + beta) * (1 + eps) ** (gamma + 1) / (gamma * C)) ** (1 / beta) * BILLION
        interior = domain_tokens < thresh

        def dldr(r: np.ndarray) -> np.ndarray:
            return B * (eta + beta) * r ** (eta + beta - 1) / Dd**beta - gamma * C / (r + eps) ** (gamma + 1)

        lo, hi = np.zeros_like(B), np.ones_like(B)
        for _ in range(60):  # bisection on dL/dr to machine precision
            mid = 0.5 * (lo + hi)
            neg = dldr(mid) < 0
            lo, hi = np.where(neg, mid, lo), np.where(neg, hi, mid)
    r = np.where(interior, 0.5 * (lo + hi), 1.0)
    return r, interior, thresh


def _limited_numeric(post: Posterior, domain: str, n_params: float, domain_tokens: float,
                     grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Any law: minimise ``L_d(N, D_d / r, r)`` per draw by grid scan plus golden section; ``(r*, interior)``."""

    def f(r: np.ndarray) -> np.ndarray:
        return law_draws(post, "domain", domain, n_params, domain_tokens / r, r, discrepancy=False)

    r, _ = grid_then_golden(f(grid[None, :]), grid, f)
    return r, (r < 1 - 1e-9) & np.isfinite(r)


def limited_data(
    post: Posterior,
    *,
    domain: str | None = None,
    n_params: float,
    domain_tokens: float,
) -> Decision | DecisionSet:
    """Usage 2: with ``D_d`` domain tokens available, the ``r`` (total ``D = D_d / r``) minimising the domain loss.

    Per draw ``r* = argmin_r L_d(N, D_d / r, r)``. For the D-CPT Law this is the root of
    ``dL/dr = B(eta+beta) r^(eta+beta-1) / D_d^beta - gamma C / (r+eps)^(gamma+1)`` when the paper's
    interior condition ``D_d < (B(eta+beta)(1+eps)^(gamma+1) / (gamma C))^(1/beta)`` holds, and ``r* = 1``
    (domain data only) otherwise; other laws are minimised numerically.

    Returns
    -------
    Decision or DecisionSet
        ``posterior`` columns: ``draw, r_domain, tokens_total, loss_domain, loss_general (if fitted),
        interior, interior_max_domain_tokens (D-CPT Law)``.
    """
    n_params = positive("n_params", n_params)
    domain_tokens = positive("domain_tokens", domain_tokens)
    grid = np.unique(np.concatenate([np.geomspace(1e-4, 0.02, 40), np.linspace(0.02, 1.0, 197)]))
    out = []
    for dom in answer_domains(post, domain, ("domain",), "limited-data"):
        if _is_l3_like(post):
            r, interior, thresh = _limited_l3(post, dom, domain_tokens)
            method = "closed form (D-CPT Law)"
        else:
            r, interior = _limited_numeric(post, dom, n_params, domain_tokens, grid)
            thresh = np.full(post.n_draws, np.nan)
            method = "numerical (grid + golden section)"
        D = domain_tokens / r
        ld = law_draws(post, "domain", dom, n_params, D, r)
        lg = law_draws(post, "general", dom, n_params, D, r) if ("general", dom) in post.params \
            else np.full_like(r, np.nan)
        frame = pd.DataFrame({"draw": np.arange(post.n_draws), "r_domain": r, "tokens_total": D,
                              "loss_domain": ld, "loss_general": lg, "interior": interior,
                              "interior_max_domain_tokens": thresh})
        counts = {"n_draws": post.n_draws, "interior": int(interior.sum()),
                  "boundary r*=1 (domain data only)": int((~interior & np.isfinite(r)).sum()),
                  "undefined": int((~np.isfinite(r)).sum())}
        curves = {"r": grid, "loss_domain": law_draws(post, "domain", dom, n_params, domain_tokens / grid[None, :],
                                                      grid[None, :])}
        inputs = {"domain": dom, "n_params": n_params, "domain_tokens": domain_tokens, "method": method,
                  "law": post.law.name}
        ok = np.isfinite(D) & np.isfinite(r)
        if ok.any():  # where the median answer's run lies (its total tokens D = domain tokens / r*)
            inputs.update(reach_facts(post, dom, n_params, float(np.median(D[ok])), float(np.median(r[ok])), "domain"))
        out.append(Decision("limited-data", dom, inputs, frame, post.weights, curves, {"counts": counts}))
    return one_or_set(out)
