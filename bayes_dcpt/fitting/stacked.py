"""The stacked posterior of ``law="auto"``: draws from several laws' posteriors, each draw keeping its own law.

The candidates' posteriors are different kinds of :class:`~bayes_dcpt.posterior.Posterior`: the base-anchored CPT
law's reads the base-model losses and has heteroscedastic noise, the D-CPT laws' do not. A
:class:`StackedPosterior` keeps the candidates' posteriors as templates and a per-draw ``component`` index; the
*stacked law* (:func:`stack_laws`) evaluates in each draw the law of its component, with that component's own
inputs (:meth:`StackedPosterior.law_inputs` asks each template for them), and the checkpoint noise of a draw is its
component's (:meth:`StackedPosterior.checkpoint_sd`). Parameters are stored prefixed ``<law>__<name>`` beside
``component``; every component has values in every draw (its own draws, resampled) so that the stacked law
evaluates finitely, but only the selected component's values are used. Consumers (predictions, decisions, the
planner, subsetting and reweighting) see one ordinary posterior.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.laws.registry import Law, Param, Prior
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["StackedPosterior", "stack_laws", "stacked_posterior"]

_SEP = "__"


def _own(p: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The parameters of component law ``name`` in a stacked parameter mapping, without their prefix."""
    pre = name + _SEP
    return {k[len(pre):]: v for k, v in p.items() if k.startswith(pre)}


def stack_laws(laws: Sequence[Law]) -> Law:
    """A law that evaluates, per draw, the candidate selected by its ``component`` parameter.

    Its inputs ``x`` may carry ``x["components"]``, one input mapping per candidate (their own inputs, as
    :meth:`StackedPosterior.law_inputs` gives them); without it every candidate reads ``x``.
    """
    laws = list(laws)

    def formula(xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
        own_x = x.get("components")
        out = 0.0
        for k, law in enumerate(laws):
            val = law(xp, _own(p, law.name), own_x[k] if own_x is not None else x)
            out = xp.where(p["component"] == k, val, out)
        return out

    params: list[Param] = []
    for law in laws:
        for par in law.params:
            params.append(Param(f"{law.name}{_SEP}{par.name}", par.doc, par.space, par.grid, par.prior, par.bounds))
    params.append(Param("component", "index of the candidate law of this draw", "identity", (0.0,),
                        Prior("normal", 0.0, 1.0, "selector (not a fitted parameter)")))
    inputs = tuple(sorted({i for law in laws for i in law.inputs}))
    example = {f"{law.name}{_SEP}{k}": v for law in laws for k, v in law.example_params.items()}
    example["component"] = 0.0
    return Law(f"stack({'+'.join(law.name for law in laws)})", "stacked mixture of " +
               ", ".join(law.name for law in laws), tuple(params), inputs, formula, "stack",
               "Yao, Vehtari, Simpson & Gelman 2018 (stacking)", example)


@dataclass
class StackedPosterior(Posterior):
    """Draws of several laws' posteriors (``components``, the templates), each draw with its own law.

    See the module docstring; ``params[(t, d)]["component"]`` is the index of each draw's law.
    """

    components: tuple[Posterior, ...] = ()

    @property
    def component(self) -> np.ndarray:
        """The index of each draw's component law, ``(S,)``."""
        first = next(iter(self.params.values()))
        return np.asarray(first["component"]).astype(int)

    def _template(self, k: int) -> Posterior:
        """Component ``k``'s posterior template with this posterior's reference losses."""
        return replace(self.components[k], reference=self.reference, weights=None)

    def view(self, k: int, draws: np.ndarray | None = None) -> Posterior:
        """Component ``k`` as an ordinary posterior over the draws ``draws`` (default: every draw)."""
        idx = np.arange(self.n_draws) if draws is None else np.asarray(draws)
        name = self.components[k].law.name
        params = {key: {n: np.asarray(v)[idx] for n, v in _own(p, name).items()} for key, p in self.params.items()}
        noise = {t: {n: np.asarray(v)[idx] for n, v in nz.items()} for t, nz in self.noise.items()}
        template = self._template(k)
        ctx = template.ctx if self.noise_domains is None else {**template.ctx, "noise_domains": self.noise_domains}
        return replace(template, params=params, noise=noise, ctx=ctx)

    def law_inputs(self, target: str, domain: str, n_params: np.ndarray, tokens: np.ndarray, r_domain: np.ndarray,
                   params: dict[str, np.ndarray]) -> dict[str, Any]:
        """The common inputs plus ``components``: each component's own inputs for its own parameters."""
        x = super().law_inputs(target, domain, n_params, tokens, r_domain, params)
        x["components"] = [self._template(k).law_inputs(target, domain, n_params, tokens, r_domain,
                                                         _own(params, c.law.name))
                           for k, c in enumerate(self.components)]
        return x

    def checkpoint_sd(self, frame: Any, target: str, log_mean: np.ndarray) -> np.ndarray:
        """Each draw's checkpoint noise scale by its own component's noise model, ``(S, n)``."""
        comp = self.component
        out = np.empty(np.shape(log_mean))
        for k in np.unique(comp):
            m = comp == k
            out[m] = self.view(int(k), np.flatnonzero(m)).checkpoint_sd(frame, target, np.asarray(log_mean)[m])
        return out

    def base_loss(self, domain: str, n_params: float, target: str = "general") -> float:
        """The measured base-model loss, else the first component's that can give one (a fitted base-loss law)."""
        try:
            return super().base_loss(domain, n_params, target)
        except BayesDCPTError:
            for k in range(len(self.components)):
                try:
                    return self.view(k).base_loss(domain, n_params, target)
                except BayesDCPTError:
                    continue
            raise


def _noise_union(posts: Sequence[Posterior], idxs: Sequence[np.ndarray],
                 domains: Sequence[str] | None) -> dict[str, dict[str, np.ndarray]]:
    """Each draw's noise parameters from its own component (keys a component lacks: 0, or a near-Normal nu).

    With ``domains`` (some component's noise is per domain) every component's draws become ``(S, n_domains)``
    columns in that order (a component with noise per target repeats its own in each column).
    """
    def own(p: Posterior, t: str, nm: str, idx: np.ndarray) -> np.ndarray:
        if domains is None:
            return np.asarray(p.noise[t][nm], float)[idx]
        return np.stack([p.noise_of(t, d)[nm][idx] for d in domains], axis=1)

    noise: dict[str, dict[str, np.ndarray]] = {}
    shape = (len(domains),) if domains is not None else ()
    for t in posts[0].noise:
        names = sorted({n for p in posts for n in p.noise.get(t, {})})
        noise[t] = {}
        for nm in names:
            fill = 1e6 if nm == "nu" else 0.0
            noise[t][nm] = np.concatenate([own(p, t, nm, idx) if nm in p.noise.get(t, {})
                                           else np.full((len(idx), *shape), fill)
                                           for p, idx in zip(posts, idxs, strict=True)])
    return noise


def stacked_posterior(posts: Sequence[Posterior], weights: Any, n_draws: int, seed: int,
                      ctx: Mapping[str, Any] | None = None) -> StackedPosterior:
    """``n_draws`` draws from ``posts`` in proportion to ``weights`` (multinomial counts), as one posterior.

    Laws of weight 0 are not components (the stack's name lists the laws it draws from).
    """
    posts = list(posts)
    w = np.asarray(weights, float)
    if (w > 0).any() and not (w > 0).all():
        posts, w = [p for p, x in zip(posts, w, strict=True) if x > 0], w[w > 0]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_draws, w / w.sum())
    idxs = [rng.integers(0, p.n_draws, c) if c else np.zeros(0, int) for p, c in zip(posts, counts, strict=True)]
    keys = list(posts[0].params)
    params: dict[tuple[str, str], dict[str, np.ndarray]] = {k: {} for k in keys}
    fills = []
    for k, post in enumerate(posts):
        # every component gets values in every draw (its own draws, resampled); its selected draws in its block
        fill = rng.integers(0, post.n_draws, n_draws)
        start = int(sum(counts[:k]))
        fill[start:start + counts[k]] = idxs[k]
        fills.append(fill)
        for key in keys:
            for name, v in post.params[key].items():
                params[key][f"{post.law.name}{_SEP}{name}"] = np.asarray(v)[fill]
    comp = np.concatenate([np.full(c, float(k)) for k, c in enumerate(counts)])
    for key in keys:
        params[key]["component"] = comp
    merged: dict[str, Any] = {}
    for p in reversed(posts):
        merged.update(p.ctx)
    merged.pop("heteroscedastic", None)
    merged.pop("zero_ratio", None)  # the stack fits zero own ratios only when every component does
    if all(p.fits_zero_ratio for p in posts):
        merged["zero_ratio"] = 1.0
    if any(p.ctx.get("heteroscedastic") for p in posts):
        merged["heteroscedastic"] = 1.0
    merged.update(ctx or {})
    merged.pop("noise_domains", None)
    domains = posts[0].domains if any(p.noise_domains is not None for p in posts) else None
    if domains is not None:
        merged["noise_domains"] = list(domains)
    law = stack_laws([p.law for p in posts])
    # each component's template has the stack's draw count (its own draw behind each stacked one), so that what a
    # template derives per draw beside the parameters it is handed (the base-loss law, drawn for the template's
    # count) lines up with the stacked draws: with candidates of different draw counts (a retried full fit, dense
    # data's 1,500 per chain) a component's base-loss law had its own count and the stacked CPT law could not be
    # evaluated
    components = tuple(p.subset(f) for p, f in zip(posts, fills, strict=True))
    return StackedPosterior(law, params, _noise_union(posts, idxs, domains), ctx=merged,
                            reference=posts[0].reference, components=components)
