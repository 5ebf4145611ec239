"""The law evaluated per posterior draw, and the facts every usage needs about a posterior.

The usages solve their question separately for every draw, vectorised over the draws: :func:`law_draws`
evaluates draw ``s`` at its own inputs ``[s]`` (what root-finding and minimising per draw need, unlike
:meth:`~bayes_dcpt.posterior.draws.Posterior.surface`, which puts every draw on every input). Outside the probed
data it multiplies the law by the draw's model-discrepancy factor ``exp(z_s sd)``
(:meth:`~bayes_dcpt.posterior.draws.Posterior.discrepancy_shift`), so every answer that extrapolates carries
the law's own error, and the same posterior always gives the same answer.
:func:`answer_domains` picks and checks the domains a usage answers, :func:`posterior_weights` gives the
normalised weights that every interval and probability respects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayes_dcpt.errors import InputError, UnknownDomainError
from bayes_dcpt.posterior.draws import Posterior
from bayes_dcpt.posterior.extrapolation import beyond_reach

__all__ = ["answer_domains", "law_draws", "posterior_weights", "reach_facts", "threshold_loss"]


def answer_domains(post: Posterior, domain: str | None, targets: Sequence[str], usage: str) -> list[str]:
    """The domains ``usage`` answers: ``[domain]``, or every domain fitted for all ``targets`` when ``None``.

    Raises an :class:`~bayes_dcpt.errors.InputError` naming the usage when a target or domain is missing
    (an :class:`~bayes_dcpt.errors.UnknownDomainError` for a domain the fit does not know).
    """
    for t in targets:
        if t not in post.targets:
            raise InputError(f"usage {usage!r} needs the {t} loss, but the fit has only {list(post.targets)}")
    known = [d for d in post.domains if all((t, d) in post.params for t in targets)]
    if domain is None:
        if not known:
            raise InputError(f"usage {usage!r}: no domain of the fit has the {' and '.join(targets)} loss")
        return known
    if domain not in post.domains:
        raise UnknownDomainError(f"unknown domain {domain!r}; the fit knows {post.domains}")
    if domain not in known:
        raise InputError(f"usage {usage!r}: domain {domain!r} has no fitted {' and '.join(targets)} loss")
    return [domain]


def law_draws(post: Posterior, target: str, domain: str, n_params: Any, tokens: Any, r_domain: Any, *,
              discrepancy: bool = True) -> np.ndarray:
    """The law per draw where the inputs' *first axis is the draw* (size S or 1): shape ``(S, ...)``.

    ``n_params`` and ``tokens`` are raw counts and ``r_domain`` the domain share (the general loss is
    evaluated at its own ratio ``1 - r_domain``). Unlike :meth:`Posterior.surface` (every draw on every
    input), this evaluates draw ``s`` at its own inputs ``[s]``, which vectorised root-finding needs.
    With ``discrepancy`` (default) the value is multiplied by ``exp(z_s sd(N, D, r))``, the draw's model error
    beyond the data (1 inside it, or when the fit calibrated none).
    """
    N, D, rd = np.broadcast_arrays(*(np.asarray(v, float) for v in (n_params, tokens, r_domain)))
    if N.ndim == 0:
        N, D, rd = N[None], D[None], rd[None]
    p = post.param_draws(target, domain)
    pe = {k: np.asarray(v, float).reshape((-1,) + (1,) * (N.ndim - 1)) for k, v in p.items()}
    x = post.law_inputs(target, domain, N, D, rd, pe)
    with np.errstate(all="ignore"):
        out = np.asarray(post.law(np, pe, x), float)
        if discrepancy:
            out = out * np.exp(post.discrepancy_shift(target, domain, N, D, rd))
    return np.broadcast_to(out, (post.n_draws, *out.shape[1:])).copy()


def threshold_loss(L0: Any, T: float, relative: bool) -> Any:
    """The general loss a usage's constraint allows, per draw when ``L0`` is.

    ``L0 (1 + T)`` when ``relative`` (the D-CPT paper), else ``L0 + T`` (the CMR paper's epsilon).
    """
    return L0 * (1.0 + T) if relative else L0 + T


def posterior_weights(post: Posterior) -> np.ndarray:
    """Normalised weights of the posterior's draws (equal when it has none): shape ``(S,)``, summing to 1."""
    S = post.n_draws
    if post.weights is None:
        return np.full(S, 1.0 / S)
    w = np.asarray(post.weights, float)
    return w / w.sum()


def reach_facts(post: Posterior, domain: str, n_params: float, tokens: float, r: float,
                target: str = "general", distances: Mapping[str, float] | None = None) -> dict[str, Any]:
    """``{"beyond_reach": ...}`` when ``(N, D, r)`` lies farther out than the fit measured ``target``'s error, else {}.

    :func:`~bayes_dcpt.posterior.extrapolation.beyond_reach` at the question (for a usage whose answer is a size
    or a token count, at its median answer); a :class:`~bayes_dcpt.decide.results.Decision` turns it into a CAUTION.
    ``distances``: :meth:`Posterior.extrapolation` at the question, when the caller has them already.
    """
    if not all(np.isfinite(v) and v > 0 for v in (n_params, tokens)):
        return {}
    if distances is None:
        distances = post.extrapolation(domain, n_params, tokens, r)
    far = beyond_reach(post.ctx, target, distances)
    return {"beyond_reach": far} if far else {}
