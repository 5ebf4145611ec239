"""Posterior of the base-anchored CPT law: every prediction is a change from the base model's measured losses.

The law (:mod:`bayes_dcpt.laws.cpt`) takes each row's base-model losses as inputs: the target's own (``L0``) and
the general one (``L0g``, which also carries the size dependence). They come from the base rows of the data
(``tokens == 0``), from :meth:`~bayes_dcpt.posterior.Posterior.with_reference` when the user knows the base model's
loss at a size nobody probed, or, where neither exists, from the base-loss law in N fitted beside the CPT law
(draws ``base_*`` in the parameters, so the base loss's uncertainty travels into every answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["CPTPosterior", "base_law_value"]


def base_law_value(params: dict[str, Any], prefix: str, n_params: np.ndarray) -> np.ndarray:
    """The fitted base-loss law ``E + (L_hi - E) (N / N_hi)^-alpha`` (draws ``<prefix>_E``, ``_hi``, ``_alpha``)."""
    E, hi, alpha = params[f"{prefix}_E"], params[f"{prefix}_hi"], params[f"{prefix}_alpha"]
    n_hi = params[f"{prefix}_N"]
    with np.errstate(all="ignore"):
        return E + (hi - E) * np.exp(-alpha * np.log(n_params / n_hi))


@dataclass
class CPTPosterior(Posterior):
    """Posterior of the CPT law (see :class:`~bayes_dcpt.posterior.Posterior` for the attributes).

    ``ctx["D_ref"]`` is the fit's reference token count (billions) of the continued-learning term.
    """

    def _base(self, domain: str, target: str, n_params: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Base-model ``target`` loss at each size: measured (or given) where known, else the base-loss law."""
        col = f"loss_{target}"
        ref = self.reference[self.reference["domain"] == domain]
        out = np.full(np.shape(n_params), np.nan)
        known = np.zeros(np.shape(n_params), bool)
        for n, v in zip(ref["n_params"].to_numpy(float), ref[col].to_numpy(float), strict=True):
            if np.isfinite(v):
                m = np.isclose(n_params, n, rtol=1e-6)
                out = np.where(m, v, out)
                known |= m
        if known.all():
            return out
        prefix = "L0g" if target == "general" else "L0"
        if f"{prefix}_E" not in params:
            missing = sorted({float(n) for n in np.ravel(np.broadcast_to(n_params, known.shape)[~known])})
            raise BayesDCPTError(
                f"no base-model {target} loss for domain {domain!r} at n_params={missing[0]:.4g}: the CPT law is "
                "anchored at the base model's losses; pass the measured base loss (base_loss=..., --base-loss) or "
                "add the base model's evaluation (a tokens == 0 row)")
        law = base_law_value(params, prefix, np.asarray(n_params, float))
        return np.where(known, out, law)

    def law_inputs(self, target: str, domain: str, n_params: np.ndarray, tokens: np.ndarray, r_domain: np.ndarray,
                   params: dict[str, np.ndarray]) -> dict[str, Any]:
        """The law's inputs plus the base losses ``L0`` (own) and ``L0g`` (general), ``D_ref`` and the target."""
        x = super().law_inputs(target, domain, n_params, tokens, r_domain, params)
        x["L0g"] = self._base(domain, "general", n_params, params)
        x["L0"] = x["L0g"] if target == "general" else self._base(domain, "domain", n_params, params)
        x["D_ref"] = float(self.ctx.get("D_ref", 1.0))
        x["target"] = target
        return x

    def checkpoint_sd(self, frame: Any, target: str, log_mean: np.ndarray) -> np.ndarray:
        """Noise scale per draw and row: ``sqrt(sigma^2 + (sigma_move * |log L - log L0|)^2)``, ``(S, n)``."""
        nz = self.noise[target]
        sig = np.asarray(nz["sigma"], float)[:, None]
        move = np.asarray(nz.get("sigma_move", np.zeros_like(nz["sigma"])), float)[:, None]
        log_l0 = np.full(np.shape(log_mean), np.nan)
        doms = np.asarray(frame["domain"]).astype(str)
        n = np.asarray(frame["n_params"], float)
        for d in np.unique(doms):
            m = doms == d
            p = {k: np.asarray(v, float)[:, None] for k, v in self.param_draws(target, d).items()}
            base = self._base(d, target, n[m][None, :], p)
            log_l0[:, m] = np.log(np.broadcast_to(base, (self.n_draws, int(m.sum()))))
        return np.sqrt(sig**2 + (move * (log_mean - log_l0)) ** 2)

    def base_loss(self, domain: str, n_params: float, target: str = "general") -> float:
        """The base-model loss L^0 at ``n_params``: measured where known, else the base-loss law's median."""
        p = self.param_draws(target if (target, domain) in self.params else self.targets[0], domain)
        v = np.asarray(self._base(domain, target, np.asarray(float(n_params)), p))
        return float(np.nanmedian(v))

    def base_loss_draws(self, domain: str, n_params: float, target: str = "general") -> np.ndarray:
        """The base-model loss at ``n_params`` per draw: shape ``(S,)`` (constant where it was measured)."""
        p = self.param_draws(target if (target, domain) in self.params else self.targets[0], domain)
        n = np.full(self.n_draws, float(n_params))
        return np.broadcast_to(self._base(domain, target, n, p), (self.n_draws,)).astype(float)
