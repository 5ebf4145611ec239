"""Posterior of the base-anchored CPT law: every prediction is a change from the base model's measured losses.

The law (:mod:`bayes_dcpt.laws.cpt`) takes each row's base-model losses as inputs: the target's own (``L0``) and
the general one (``L0g``, which also carries the size dependence). They come from the base rows of the data
(``tokens == 0``), from :meth:`~bayes_dcpt.posterior.Posterior.with_reference` when the user knows the base model's
loss at a size nobody probed, or, where neither exists, from the base-loss law in N fitted beside the CPT law
(:mod:`bayes_dcpt.posterior.base_law`: its uncertainty travels into every answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_dcpt.posterior.draws import Posterior

__all__ = ["CPTPosterior"]


@dataclass
class CPTPosterior(Posterior):
    """Posterior of the CPT law (see :class:`~bayes_dcpt.posterior.Posterior` for the attributes).

    ``ctx["D_ref"]`` is the fit's reference token count (billions) of the continued-learning term.
    """

    def law_inputs(self, target: str, domain: str, n_params: np.ndarray, tokens: np.ndarray, r_domain: np.ndarray,
                   params: dict[str, np.ndarray]) -> dict[str, Any]:
        """The law's inputs plus the base losses ``L0`` (own) and ``L0g`` (general), ``D_ref`` and the target."""
        x = super().law_inputs(target, domain, n_params, tokens, r_domain, params)
        x["L0g"] = self.base_values(domain, "general", n_params)
        x["L0"] = x["L0g"] if target == "general" else self.base_values(domain, "domain", n_params)
        x["D_ref"] = float(self.ctx.get("D_ref", 1.0))
        x["target"] = target
        return x

    def checkpoint_sd(self, frame: Any, target: str, log_mean: np.ndarray) -> np.ndarray:
        """Noise scale per draw and row: ``sqrt(sigma^2 + (sigma_move * |log L - log L0|)^2)``, ``(S, n)``."""
        nz = self.noise_rows(target, np.asarray(frame["domain"]))
        sig = nz["sigma"]
        move = nz.get("sigma_move", np.zeros_like(sig))
        log_l0 = np.full(np.shape(log_mean), np.nan)
        doms = np.asarray(frame["domain"]).astype(str)
        n = np.asarray(frame["n_params"], float)
        for d in np.unique(doms):
            m = doms == d
            base = self.base_values(d, target, n[m][None, :])
            log_l0[:, m] = np.log(np.broadcast_to(base, (self.n_draws, int(m.sum()))))
        return np.sqrt(sig**2 + (move * (log_mean - log_l0)) ** 2)
