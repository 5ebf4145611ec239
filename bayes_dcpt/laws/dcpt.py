"""The D-CPT Law family (Que et al., NeurIPS 2024) and its Cross-Domain extension, as :class:`Law` objects.

The D-CPT forms (paper section 4.2, appendix E.4), with ``r' = r + eps``::

    L1 = E + A/N^alpha + B/D^beta + C/r'^gamma
    L2 = E + A/N^alpha + (B/D^beta + C/r'^gamma)^eta
    L3 = E + A/N^alpha + B r^eta / D^beta + C/r'^gamma        (the D-CPT Law, default)
    L4 = E + A/N^alpha + B b^r / D^beta + C / c^r
    L5 = E + A/N^alpha + B / (r D + (1-r) sigma)^beta
    L6 = E + A/N^alpha + B e^r / D^beta + C/r'^gamma
    L7 = E + A/N^alpha + B r'^eta / D^beta + C/r'^gamma

The Cross-Domain law is L3 + F/K^mu with a domain-learnability coefficient ``K`` (K1-K4) computed from the
DLC features. Each form also knows its Chinchilla constants at a fixed ratio (the consistency requirement).
:mod:`bayes_dcpt.laws.registry` registers these laws; nothing here is registered on import.
"""

from __future__ import annotations

import numpy as np

from bayes_dcpt.laws.base import Law, Param, Prior, d_power, n_term, power, ratio_power
from bayes_dcpt.laws.priors import (
    c_param,
    coef,
    core_params,
    eps_param,
    eta_param,
    expo,
    gamma_param,
)

__all__ = ["DCPT_EXAMPLE", "REFERENCE", "cross_domain_laws", "dcpt_laws"]

REFERENCE = "Que et al., D-CPT Law, NeurIPS 2024 (arXiv 2406.01375)"


def _c_term(xp, p, x):
    return p["C"] * power(xp, x["r"] + p["eps"], -p["gamma"])


# -------------------------------------------------------------------------------------------- formulas
def _f_L1(xp, p, x):
    return p["E"] + n_term(xp, p, x) + p["B"] * d_power(xp, p, x) + _c_term(xp, p, x)


def _f_L2(xp, p, x):
    inner = p["B"] * d_power(xp, p, x) + _c_term(xp, p, x)
    return p["E"] + n_term(xp, p, x) + power(xp, inner, p["eta"])


def _f_L3(xp, p, x):
    d_term = p["B"] * ratio_power(xp, x["r"], p["eta"]) * d_power(xp, p, x)
    return p["E"] + n_term(xp, p, x) + d_term + _c_term(xp, p, x)


def _f_L4(xp, p, x):
    return (
        p["E"]
        + n_term(xp, p, x)
        + p["B"] * power(xp, p["b"], x["r"]) * d_power(xp, p, x)
        + p["C"] * power(xp, p["c"], -x["r"])
    )


def _f_L5(xp, p, x):
    eff = x["r"] * x["D"] + (1.0 - x["r"]) * p["sigma_D"]
    return p["E"] + n_term(xp, p, x) + p["B"] * power(xp, eff, -p["beta"])


def _f_L6(xp, p, x):
    return p["E"] + n_term(xp, p, x) + p["B"] * xp.exp(x["r"]) * d_power(xp, p, x) + _c_term(xp, p, x)


def _f_L7(xp, p, x):
    rp = x["r"] + p["eps"]
    return p["E"] + n_term(xp, p, x) + p["B"] * power(xp, rp, p["eta"]) * d_power(xp, p, x) + _c_term(
        xp, p, x
    )


def _at_ratio_L3(p, r):
    return {"E0": p["E"] + p["C"] * (r + p["eps"]) ** (-p["gamma"]), "A": p["A"], "alpha": p["alpha"],
            "B0": p["B"] * np.maximum(r, 0.0) ** p["eta"], "beta": p["beta"]}


def _at_ratio_L1(p, r):
    return {"E0": p["E"] + p["C"] * (r + p["eps"]) ** (-p["gamma"]), "A": p["A"], "alpha": p["alpha"],
            "B0": p["B"] * np.ones_like(np.asarray(r, dtype=float)), "beta": p["beta"]}


def _at_ratio_L6(p, r):
    return {"E0": p["E"] + p["C"] * (r + p["eps"]) ** (-p["gamma"]), "A": p["A"], "alpha": p["alpha"],
            "B0": p["B"] * np.exp(r), "beta": p["beta"]}


def _at_ratio_L7(p, r):
    return {"E0": p["E"] + p["C"] * (r + p["eps"]) ** (-p["gamma"]), "A": p["A"], "alpha": p["alpha"],
            "B0": p["B"] * (r + p["eps"]) ** p["eta"], "beta": p["beta"]}


def _at_ratio_L4(p, r):
    return {"E0": p["E"] + p["C"] * p["c"] ** (-np.asarray(r, dtype=float)), "A": p["A"], "alpha": p["alpha"],
            "B0": p["B"] * p["b"] ** np.asarray(r, dtype=float), "beta": p["beta"]}


# Cross-domain D-CPT Law: L3 + F / K^mu. Only F * w1^-mu is identified, so w1 = 1 and rho = w2 / w1.
def _dlc_K1(xp, p, x):
    return 1.0 / x["k1"]


def _dlc_K2(xp, p, x):
    return x["k2"] * 1.0


def _dlc_K3(xp, p, x):
    return 1.0 / x["k1"] + p["rho"] * x["k2"]


def _dlc_K4(xp, p, x):
    return 1.0 / x["k1"] + p["rho"] * x["k2"] + p["rho3"] / x["k3"]


def _f_cross(xp, p, x):
    return _f_L3(xp, p, x) + p["F"] * power(xp, x["K"], -p["mu"])


#: Example values (N, D in billions) that meet the paper's requirements for D >= 0.1311B (C > C0 = 0.35).
DCPT_EXAMPLE = {"E": 1.2, "A": 0.35, "alpha": 0.34, "B": 0.05, "beta": 0.3, "C": 0.4, "gamma": 0.45, "eta": 1.5,
            "eps": 0.1}


_POW3 = {"A": ("alpha", "N"), "B": ("beta", "D"), "C": ("gamma", "r")}
_LIN = {"linear": ("E", "A", "B", "C"), "level": ("E", "A", "C"), "power_terms": _POW3}


def _no_eta(ex: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in ex.items() if k != "eta"}


def dcpt_laws() -> list[Law]:
    """The seven D-CPT forms L1-L7 (L3, the D-CPT Law, answers to ``"dcpt"``), in the paper's order."""
    ref = REFERENCE
    core = core_params
    return [
        Law("L1", "E + A/N^alpha + B/D^beta + C/(r+eps)^gamma", (*core(), gamma_param(), eps_param(), c_param(False)),
            ("N", "D", "r"), _f_L1, "dcpt", ref, _no_eta(DCPT_EXAMPLE),
            at_ratio=_at_ratio_L1, notes="fails the implicit trend: d2L/dDdr = 0", **_LIN),
        Law("L2", "E + A/N^alpha + (B/D^beta + C/(r+eps)^gamma)^eta",
            (*core(), gamma_param(), eps_param(), c_param(False), eta_param(False)), ("N", "D", "r"), _f_L2, "dcpt",
            ref, {**DCPT_EXAMPLE, "eta": 1.2},
            notes="not of Chinchilla form at fixed r (fails consistency)", linear=("E", "A"), level=("E", "A")),
        Law("L3", "E + A/N^alpha + B r^eta/D^beta + C/(r+eps)^gamma  (the D-CPT Law)",
            (*core(), gamma_param(), eps_param(), eta_param(True), c_param(True)), ("N", "D", "r"), _f_L3, "dcpt",
            ref, DCPT_EXAMPLE, at_ratio=_at_ratio_L3, aliases=("dcpt", "d-cpt"),
            notes="meets all four requirements when eta > 1 and C > C0 (built in)", **_LIN),
        Law("L4", "E + A/N^alpha + B b^r/D^beta + C/c^r",
            (*core(), coef("C", "ratio coefficient", 0.05), coef("b", "D-term ratio base", 1.0, (-1.0, 0.0, 1.0)),
             coef("c", "ratio base", 1.0, (-1.0, 0.0, 1.0))),
            ("N", "D", "r"), _f_L4, "dcpt", ref,
            {"E": 1.2, "A": 0.35, "alpha": 0.34, "B": 0.25, "beta": 0.3, "C": 0.4, "b": 2.0, "c": 2.0},
            at_ratio=_at_ratio_L4, notes="fails the explicit trend dL/dr < 0 when b > 1 (needed for the implicit one)",
            linear=("E", "A", "B", "C"), level=("E", "A", "C")),
        # the paper's sigma, renamed: a fit's noise scale is "sigma" (one PyMC model cannot hold both)
        Law("L5", "E + A/N^alpha + B/(r D + (1-r) sigma_D)^beta",
            (*core(), coef("sigma_D", "effective tokens of off-domain data (billions; the paper's sigma)", 0.1)),
            ("N", "D", "r"), _f_L5, "dcpt", ref,
            {"E": 1.2, "A": 0.35, "alpha": 0.34, "B": 0.25, "beta": 0.3, "sigma_D": 0.05},
            linear=("E", "A", "B"), level=("E", "A")),
        Law("L6", "E + A/N^alpha + B e^r/D^beta + C/(r+eps)^gamma",
            (*core(), gamma_param(), eps_param(), c_param(False)), ("N", "D", "r"), _f_L6, "dcpt", ref,
            _no_eta(DCPT_EXAMPLE), at_ratio=_at_ratio_L6, **_LIN),
        Law("L7", "E + A/N^alpha + B (r+eps)^eta/D^beta + C/(r+eps)^gamma",
            (*core(), gamma_param(), eps_param(), eta_param(True), c_param(False)), ("N", "D", "r"), _f_L7, "dcpt",
            ref, DCPT_EXAMPLE, at_ratio=_at_ratio_L7, **_LIN),
    ]


def cross_domain_laws(l3: Law) -> list[Law]:
    """The Cross-Domain law on top of ``l3`` (its parameters are shared) for each DLC form K1-K4."""
    cross_extra = [
        coef("F", "DLC coefficient", 0.1),
        expo("mu", "DLC exponent", 1.0),
    ]
    rho_prior = Param("rho", "weight of k2 relative to 1/k1 (w2/w1; w1 is absorbed in F)", "log", (-2.0, 0.0, 2.0),
                      Prior("lognormal", 1.0, 1.5, "w2/w1 has no published value; unit-free, centred at 1"))
    rho3 = Param("rho3", "weight of 1/k3 relative to 1/k1 (w3/w1)", "log", (-2.0, 0.0, 2.0),
                 Prior("lognormal", 0.1, 1.5, "K4's third feature; centred small"))
    l3p = l3.params
    ex_cross = {**DCPT_EXAMPLE, "F": 0.1, "mu": 1.0, "rho": 1.0, "rho3": 0.05}
    out: list[Law] = []
    for kname, dlc, feats, extra in (
        ("K1", _dlc_K1, ("k1",), []),
        ("K2", _dlc_K2, ("k2",), []),
        ("K3", _dlc_K3, ("k1", "k2"), [rho_prior]),
        ("K4", _dlc_K4, ("k1", "k2", "k3"), [rho_prior, rho3]),
    ):
        aliases = ("cross-domain", "cross_domain") if kname == "K3" else ()
        out.append(Law(f"cross-domain-{kname}", f"L3 + F/K^mu with the DLC K = {kname}",
                       (*l3p, *cross_extra, *extra), ("N", "D", "r", "K"), _f_cross, "cross-domain", REFERENCE,
                       {k: v for k, v in ex_cross.items() if k in {p.name for p in (*l3p, *cross_extra, *extra)}},
                       dlc=dlc, dlc_features=feats, at_ratio=None, aliases=aliases, linear=("E", "A", "B", "C", "F"),
                       level=("E", "A", "C"), power_terms=_POW3,
                       notes="K3 = 1/k1 + rho k2 is the paper's K3 = w1/k1 + w2 k2 with w1 absorbed into F"))
    return out
