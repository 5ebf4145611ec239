"""Usage 3 of the D-CPT paper: how to spend a compute budget ``C = 6 N D`` on model size and CPT tokens.

At a fixed domain share the D-CPT Law is Chinchilla-shaped (``E0 + A/N^alpha + B0/D^beta``), so the
compute-optimal ``N`` and ``D`` have the closed form of appendix G.3 (:func:`allocation_constants`); laws
without that form are optimised numerically over ``log N``. :func:`compute_allocation` answers per posterior
draw, at a given ``r_domain`` or jointly over it. The optimum is located on the law; the losses reported there
carry the law's calibrated error beyond the data (a discrepancy of unknown sign growing with the distance would
otherwise pull every optimum to the far end of the search range). The base-anchored CPT law has no answer here:
it describes the change from a base model the user already has, so the size is not a free choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.decide.draws import answer_domains, law_draws, reach_facts
from bayes_dcpt.decide.inputs import positive, unit_interval
from bayes_dcpt.decide.results import Decision, DecisionSet, one_or_set
from bayes_dcpt.errors import InputError
from bayes_dcpt.laws.registry import BILLION, chinchilla_at_ratio, get_law
from bayes_dcpt.numerics.search import grid_then_golden
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["allocation_constants", "compute_allocation"]


def allocation_constants(A: Any, alpha: Any, B0: Any, beta: Any) -> dict[str, np.ndarray]:
    """The Chinchilla efficient frontier (D-CPT appendix G.3, N and D in billions).

    ``G = (alpha A / (beta B0))^(1/(alpha+beta))``, ``a = beta/(alpha+beta)``, ``b = alpha/(alpha+beta)``;
    then ``N_opt = G (C/6)^a`` and ``D_opt = G^-1 (C/6)^b`` with ``C/6`` in units of ``1e18``.
    """
    A, alpha, B0, beta = (np.asarray(v, float) for v in (A, alpha, B0, beta))
    with np.errstate(all="ignore"):
        s = alpha + beta
        return {"G": (alpha * A / (beta * B0)) ** (1.0 / s), "a": beta / s, "b": alpha / s}


def _optimum_closed(c: Mapping[str, np.ndarray], flops: float) -> dict[str, np.ndarray]:
    """The closed-form optimum (N, D in billions, the loss, G, a, b) for Chinchilla constants ``c``."""
    k = allocation_constants(c["A"], c["alpha"], c["B0"], c["beta"])
    K = flops / 6.0 / BILLION**2
    with np.errstate(all="ignore"):
        N = k["G"] * K ** k["a"]
        D = K ** k["b"] / k["G"]
        loss = c["E0"] + c["A"] * N ** (-c["alpha"]) + c["B0"] * D ** (-c["beta"])
    bad = ~(np.isfinite(N) & np.isfinite(D) & (N > 0) & (D > 0) & np.isfinite(loss))
    nan = lambda v: np.where(bad, np.nan, v)  # noqa: E731
    return {"N": nan(N), "D": nan(D), "loss": nan(loss), "G": nan(k["G"]), "a": nan(k["a"]), "b": nan(k["b"]),
            "degenerate": bad}


def _chinchilla_consts(post: Posterior, target: str, domain: str, r_domain: Any) -> dict[str, np.ndarray] | None:
    """Per-draw (E0, A, alpha, B0, beta) at domain share ``r_domain`` (shape (S,) or (1, G)), or None."""
    law = post.law
    r_dom = np.asarray(r_domain, float)
    r_law = r_dom if target == "domain" else 1.0 - r_dom
    nd = max(r_law.ndim, 1)
    p = {k: np.asarray(v, float).reshape((-1,) + (1,) * (nd - 1)) for k, v in post.param_draws(target, domain).items()}
    with np.errstate(all="ignore"):
        if law.at_ratio is not None:
            c = chinchilla_at_ratio(law, p, r_law)
        elif law.family == "cross-domain":
            l3 = get_law("L3")
            c = chinchilla_at_ratio(l3, {k: p[k] for k in l3.param_names}, r_law)
            c["E0"] = c["E0"] + p["F"] * p["K"] ** (-p["mu"])
        elif law.name == "chinchilla":
            c = {"E0": p["E"], "A": p["A"], "alpha": p["alpha"], "B0": p["B"], "beta": p["beta"]}
        else:
            return None
    shape = np.broadcast_shapes(*(np.shape(v) for v in c.values()), (post.n_draws, *r_law.shape[1:]))
    return {k: np.broadcast_to(np.asarray(v, float), shape) for k, v in c.items()}


def _numeric_n_opt(post: Posterior, target: str, domain: str, flops: float, r_domain: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Any law: minimise ``L(N, C / (6 N), r)`` over log N per draw (r per draw); ``(N, D, loss)``."""
    u_grid = np.linspace(np.log(1e6), np.log(1e16), 241)
    r = np.asarray(r_domain, float)

    def f(u: np.ndarray) -> np.ndarray:
        N = np.exp(u)
        rr = r[:, None] if u.ndim == 2 else r
        return law_draws(post, target, domain, N, flops / (6.0 * N), rr, discrepancy=False)

    fg = f(np.broadcast_to(u_grid, (post.n_draws, u_grid.size)))
    u, _ = grid_then_golden(fg, u_grid, f)
    N = np.exp(u)
    D = flops / (6.0 * N)
    return N, D, law_draws(post, target, domain, N, D, r, discrepancy=False)


def _optimum_at(post: Posterior, target: str, domain: str, flops: float, r: np.ndarray,
                closed: bool) -> dict[str, np.ndarray]:
    """The compute-optimal (N, D in billions, loss, G, a, b, degenerate) per draw at domain shares ``r``."""
    if closed:
        return _optimum_closed(_chinchilla_consts(post, target, domain, r), flops)
    S = post.n_draws
    N, D, loss = _numeric_n_opt(post, target, domain, flops, r)
    bad = ~np.isfinite(loss)
    return {"N": N / BILLION, "D": D / BILLION, "loss": loss, "G": np.full(S, np.nan), "a": np.full(S, np.nan),
            "b": np.full(S, np.nan), "degenerate": bad}


def _ratio_grid(target: str) -> np.ndarray:
    """The ``r_domain`` grid of the joint optimisation.

    The target's own ratio 0 is degenerate (``B0 = 0``), so the grid approaches it geometrically.
    """
    rgrid = np.unique(np.concatenate([np.geomspace(1e-4, 1e-2, 21), np.linspace(0.01, 1.0, 100)]))
    return rgrid if target == "domain" else 1.0 - rgrid[::-1]


def _optimal_ratio(post: Posterior, target: str, domain: str, flops: float, closed: bool,
                   rgrid: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Per draw, the ``r_domain`` whose compute-optimal loss is lowest; and the curves of that loss on ``rgrid``."""
    S = post.n_draws
    if closed:
        Lgrid = _optimum_closed(_chinchilla_consts(post, target, domain, rgrid[None, :]), flops)["loss"]
    else:
        Lgrid = np.stack([_optimum_at(post, target, domain, flops, np.full(S, rv), closed)["loss"] for rv in rgrid],
                         axis=1)
    r, _ = grid_then_golden(Lgrid, rgrid, lambda rr: _optimum_at(post, target, domain, flops, rr, closed)["loss"])
    return r, {"r": rgrid, "loss_opt": Lgrid}


def compute_allocation(
    post: Posterior,
    *,
    domain: str | None = None,
    flops: float,
    r_domain: float | None = None,
    target: str = "domain",
) -> Decision | DecisionSet:
    """Usage 3: the compute-optimal model size and CPT tokens for a FLOP budget ``C = 6 N D``, per draw.

    At fixed ``r`` the D-CPT Law is Chinchilla-shaped (``E0 + A/N^alpha + B0/D^beta``), so
    ``N_opt = G (C/6)^a`` and ``D_opt = (C/6)^b / G`` in closed form (appendix G.3, :func:`allocation_constants`).
    With ``r_domain=None`` the ``target`` loss at the compute-optimal ``(N, D)`` is also minimised over
    ``r`` (grid scan plus golden section per draw). Laws without a Chinchilla form at fixed ``r`` are
    optimised numerically over ``log N``.

    Parameters
    ----------
    flops
        Compute budget C in FLOPs (> 0).
    r_domain
        Domain share of the CPT mixture; ``None`` optimises it jointly.
    target
        Which loss to minimise: ``"domain"`` (default) or ``"general"``.

    Returns
    -------
    Decision or DecisionSet
        ``posterior`` columns: ``draw, r_domain, n_params_opt, tokens_opt, tokens_per_param, loss_domain,
        loss_general, a, b, G, degenerate`` (``degenerate``: the D term vanishes at this r, e.g. ``B0 = 0``
        at ``r = 0``, so no finite optimum exists).
    """
    flops = positive("flops", flops)
    if post.law.family == "cpt":
        raise InputError(
            f"usage 'compute' does not apply to the {post.law.name!r} law: it predicts CPT as a change from a base "
            "model you already have, so it cannot trade the model size against CPT tokens; compare the sizes you "
            "have with 'tradeoff' or 'limited-data' at each, or fit law='dcpt' for a compute allocation")
    if target not in ("domain", "general"):
        raise InputError(f"target must be 'domain' or 'general', got {target!r}")
    if r_domain is not None:
        r_domain = unit_interval("r_domain", r_domain)
    return one_or_set([_compute_decision(post, dom, flops, r_domain, target)
                       for dom in answer_domains(post, domain, (target,), "compute")])


def _compute_decision(post: Posterior, dom: str, flops: float, r_domain: float | None, target: str) -> Decision:
    """Usage 3 for one domain (inputs validated by :func:`compute_allocation`)."""
    S = post.n_draws
    closed = _chinchilla_consts(post, target, dom, np.zeros(S)) is not None
    rgrid = _ratio_grid(target)
    curves: dict[str, Any] = {}
    if r_domain is None:
        r, curves = _optimal_ratio(post, target, dom, flops, closed, rgrid)
        mode = "jointly over r"
    else:
        r = np.full(S, r_domain)
        mode = "fixed r"
    sol = _optimum_at(post, target, dom, flops, np.where(np.isfinite(r), r, 0.5), closed)
    bad = sol["degenerate"] | ~np.isfinite(r)
    N = np.where(bad, np.nan, sol["N"] * BILLION)
    D = np.where(bad, np.nan, sol["D"] * BILLION)
    losses = {}
    for t in ("domain", "general"):
        if (t, dom) in post.params:
            losses[t] = np.where(bad, np.nan, law_draws(post, t, dom, np.where(bad, 1e9, N),
                                                        np.where(bad, 1e9, D), np.where(bad, 0.5, r)))
        else:
            losses[t] = np.full(S, np.nan)
    frame = pd.DataFrame({"draw": np.arange(S), "r_domain": r, "n_params_opt": N, "tokens_opt": D,
                          "tokens_per_param": D / N, "loss_domain": losses["domain"],
                          "loss_general": losses["general"], "a": sol["a"], "b": sol["b"], "G": sol["G"],
                          "degenerate": bad})
    counts = {"n_draws": S, "degenerate": int(bad.sum())}
    if r_domain is None:
        counts["r* at the upper end of the grid"] = int(np.sum(np.isclose(r, rgrid[-1])))
        counts["r* at the lower end of the grid"] = int(np.sum(np.isclose(r, rgrid[0])))
    inputs = {"domain": dom, "flops": flops, "r_domain": r_domain, "target": target, "mode": mode,
              "method": "closed form (appendix G.3)" if closed else "numerical (grid + golden section)",
              "law": post.law.name}
    ok = ~bad
    if ok.any():  # where the median answer lies: a compute-optimal size far beyond the probes is the law's alone
        inputs.update(reach_facts(post, dom, float(np.median(N[ok])), float(np.median(D[ok])),
                                  float(np.median(r[ok])), target))
    return Decision("compute", dom, inputs, frame, post.weights, curves, {"counts": counts})
