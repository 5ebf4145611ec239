"""Every prior of the Bayesian fits, with its reason: the tables saved in each model card, and the prior constants.

:func:`prior_table` lists a D-CPT / Cross-Domain / Chinchilla fit's priors as sampled, :func:`dynamics_prior_table`
the dynamics fit's; ``MODEL.md`` beside this file explains the parameterisation they belong to.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bayes_dcpt.fitting.likelihood import noise_priors, noise_scope_words
from bayes_dcpt.laws.dynamics import VARIANTS
from bayes_dcpt.laws.registry import Law, get_law

__all__ = ["BARRIER_SHARPNESS", "DYNAMICS_PRIORS", "EXPONENT_SPREAD", "HIERARCHY_PRIORS", "MONOTONE_SHARPNESS",
           "dynamics_prior_table", "prior_table"]

#: Sharpness of the smooth C > C0 barrier (2% softness).
MONOTONE_SHARPNESS = 50.0
#: Spread (sd of the log) of a derived exponent across domains around its pooled value: domains share their
#: exponents up to about +-15%.
EXPONENT_SPREAD = 0.15
#: Sharpness of the smooth L0 > 0 barrier of the dynamics fit (2% of the reference loss).
BARRIER_SHARPNESS = 50.0

#: The hierarchy's own priors beside the noise's (:data:`bayes_dcpt.fitting.likelihood.NOISE_PRIORS`).
HIERARCHY_PRIORS = {
    "s_X": ("HalfNormal(0.5)", "spread of domain coefficients on the log scale (hierarchical)"),
    "sigma_K": ("HalfNormal(0.5)", "deviation of log K from the paper's K3 features (cross-domain)"),
}

_FAR_LOSS_REASON = ("the loss at the far corner of the data (largest N, D and ratio) is near the lowest measured "
                    "losses; with several domains the general loss's levels are pooled (one validation set), the "
                    "domain loss's are each domain's own (q10 of that domain: different validation texts have "
                    "unrelated entropies)")
_SPREAD_REASON = ("with several domains the log exponents scatter around their pooled value (whose prior factor is "
                  "the published one): domains share exponents up to about +-15%; exact sharing would leave each "
                  "domain's E on a narrow curved ridge, a learnt spread of a derived quantity makes a funnel")


def _anchored_rows(law: Law) -> list[dict[str, str]]:
    """The rows of a law sampled through its power-law terms' values at the ends of the data range."""
    rows = [{"parameter": "far_loss", "prior": "LogNormal(log q10(loss), 0.5)", "reason": _FAR_LOSS_REASON}]
    for c, (expo, axis) in law.power_terms.items():
        rows.append({"parameter": f"share_{c}", "prior": "logit-Normal(centre from the coefficient priors, 1.5)",
                     "reason": f"share of the far-corner loss taken by the {c} term (stick-breaking; E is the "
                               "remainder, so every term stays positive)"})
        rows.append({"parameter": f"drop_{c}", "prior": "LogNormal(log 0.05 L_ref, 1.5)",
                     "reason": f"fall of the {c} term across the data's range of {axis}: a few percent of the "
                               "loss, within two orders of magnitude"})
        p = law.param(expo)
        rows.append({"parameter": expo, "prior": f"derived; prior factor {p.prior.describe()}",
                     "reason": p.prior.reason})
    skip = {*law.power_terms, *(e for e, _ in law.power_terms.values()), "E"}
    for p in law.params:
        if p.name not in skip:
            rows.append({"parameter": p.name, "prior": p.prior.describe(), "reason": p.prior.reason})
    if any(p.lower is not None for p in law.params):
        rows.append({"parameter": "C > C0", "prior": "smooth truncation (2% softness)",
                     "reason": "the paper's monotonicity constraint dL/dr < 0 for D >= D_min (appendix E.3)"})
    rows.append({"parameter": "log exponent across domains", "prior": f"Normal(pooled value, {EXPONENT_SPREAD})",
                 "reason": _SPREAD_REASON})
    return rows


def prior_table(law: str | Law, anchored: bool = True, cfg: Any = None) -> pd.DataFrame:
    """The priors of a law's Bayesian fit, as sampled, with their reasons (also in every saved model card).

    ``cfg``: the fit's configuration (its noise scope and floor on nu, the CPT law's replay scope); None: defaults.
    """
    law = get_law(law)
    if law.family == "cpt":  # the base-anchored law has its own model (fitting/cpt_model.py)
        from bayes_dcpt.fitting.cpt_model import cpt_prior_table

        return cpt_prior_table(cfg)
    if law.power_terms and anchored:
        rows = _anchored_rows(law)
    else:
        rows = [{"parameter": p.name, "prior": p.prior.describe(), "reason": p.prior.reason} for p in law.params]
    rows += [{"parameter": k, "prior": v[0], "reason": v[1]}
             for k, v in {**noise_priors(cfg), **HIERARCHY_PRIORS}.items()]
    rows.append({"parameter": "sigma, tau, nu scope", "prior": f"one each {noise_scope_words(cfg)}",
                 "reason": "a domain the law misses must not set the others' noise (one shared scale let the law "
                           "drift on the well-fitted domains: BENCHMARKS.md, one fit over every domain)"})
    return pd.DataFrame(rows)


#: The dynamics fit's priors: (parameter, prior, reason); the variant-specific rows are filtered per law.
DYNAMICS_PRIORS: list[tuple[str, str, str]] = [
    ("level", "LogNormal(log L_base, 0.1)", "the law at the reference base point (CPT step 0): measured by the "
     "base-model rows (sd 0.3 without base rows)"),
    ("share_A", "logit-Normal(logit 0.1, 1.5)", "the forward term left at the far end of the data (largest S1pt + "
     "S1cpt) as a share of the base loss: CPT starts from a trained model"),
    ("drop_A", "LogNormal(log 0.02 L_ref, 1.5)", "the forward term's fall across the data's range of S1pt + S1cpt: "
     "a few percent of the loss"),
    ("alpha", "derived; prior factor LogNormal(log 0.5, 0.75)", "Wang et al. 0.497 and 0.510; Tissue et al. ~0.5"),
    ("C2 * max|S2cpt|", "LogNormal(log 0.02 L_ref, 1.5)", "the CPT annealing term is a few percent of the loss; "
     "C2 > 0 (annealing lowers the loss)"),
    ("C1 * span(S2pt)", "LogNormal(log 0.02 L_ref, 1.5)", "the PT annealing term's change across the data (the PT "
     "anneal's momentum carried into CPT); when S2pt does not vary, C1 = C2 e^rho with rho ~ Normal(0, 1)"),
    ("log(C1/C2)", "prior factor Normal(0, 1)", "Wang et al.'s fits have C1 = C2 within 10%"),
    ("|shift at max S1cpt|", "LogNormal(log 0.02 L_ref, 1.5), sign + general / - domain", "the distribution shift "
     "(Wang et al.: B > 0 for the general loss, B < 0 for the domain loss)"),
    ("E * max S1cpt", "LogNormal(log 2, 1.5)", "the shift saturates within or beyond the data (unit-free)"),
    ("beta", "LogNormal(log 0.3, 0.75)", "Wang et al. 0.189"),
    ("a1", "Normal(0, 1)", "replay variant; Wang et al. 0.055, sign free"),
    ("a2", "LogNormal(log 2, 1)", "replay variant; Wang et al. 3.238"),
    ("gamma1, gamma2", "Normal(0, 0.5)", "model-size variant; zero recovers Eq. 4"),
    ("F N_ref^-gamma3", "LogNormal(log 0.05 L_ref, 1.5)", "model-size variant; a Chinchilla-like size term"),
    ("gamma3", "LogNormal(log 0.34, 0.5)", "model-size variant; Chinchilla 0.34"),
    ("L0 > 0", "smooth barrier (2% softness)", "the irreducible loss is positive"),
]


def dynamics_prior_table(law: str = "cpt-dynamics-full", cfg: Any = None) -> pd.DataFrame:
    """The priors of the dynamics fit of ``law``, as sampled, with their reasons (``cfg``: its configuration)."""
    use_n, use_r = VARIANTS[get_law(law).name]
    rows = []
    for name, prior, reason in DYNAMICS_PRIORS:
        if name in ("a1", "a2") and not use_r:
            continue
        if name in ("gamma1, gamma2", "F N_ref^-gamma3", "gamma3") and not use_n:
            continue
        rows.append({"parameter": name, "prior": prior, "reason": reason})
    rows += [{"parameter": k, "prior": v[0], "reason": v[1]} for k, v in noise_priors(cfg).items()]
    return pd.DataFrame(rows)
