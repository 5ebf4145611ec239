"""The CPT learning-dynamics law (Wang et al., ICML 2025, arXiv 2505.07796) in the law registry.

The loss along a whole CPT run as a function of the learning-rate schedule's forward areas ``S1`` and
annealing areas ``S2`` (computed exactly from the schedules by :mod:`bayes_dcpt.laws.lr_schedules`), for the
general (``D_pt``) and the domain (``D_cpt``) validation loss, each with its own parameters
(``../shared/laws.md`` section 6.3)::

    cpt-dynamics (Eq. 4):
      L = L0 + A (S1pt + S1cpt)^-alpha - C1 S2pt - C2 S2cpt + B (1 - (1 + E S1cpt)^-beta)

    cpt-dynamics-n (Eq. 7, model size N in billions):
      L = L0 + A (S1pt + S1cpt)^-alpha - C1 S2pt N^gamma1 - C2 S2cpt N^gamma2
             + B (1 - (1 + E S1cpt)^-beta) + F N^-gamma3

    cpt-dynamics-replay (Eq. 8, r = r_domain the domain share, r_pt = 1 - r the replay share):
      L_pt  = L0 + A (.)^-alpha - C1 S2pt - C2 S2cpt e^(a1 r_pt) + B (1 - (1 + E S1cpt)^-beta) (1 - e^(-a2 r))
      L_cpt = L0 + A (.)^-alpha - C1 S2pt - C2 S2cpt e^(a1 r)    + B (1 - (1 + E S1cpt)^-beta) (e^(a2 r) - 1)

    cpt-dynamics-full: Eq. 7 and Eq. 8 together (our combination; the paper fits them separately).

The last term is the distribution shift: zero at the start of CPT (``S1cpt = 0``), positive for the general
loss (``B > 0``) and negative for the domain loss (``B < 0``, the paper). The replay variant's inputs are the
domain share ``r_cpt`` and ``is_domain`` (0 for the general loss, 1 for the domain loss).

On the ambiguity noted in laws.md (the annealing factor of ``L_cpt`` reads ``e^(a1 r_pt)`` in the Fig. 19
caption but ``e^(a1 r_cpt)`` in the equation): with ``a1`` free in sign the two readings are the same family,
``C2 e^(a1 r_cpt) = (C2 e^(a1)) e^(-a1 r_pt)``, so the fit and every prediction are identical; only the
reported ``(C2, a1)`` differ. We follow the equation.

Quickstart::

    >>> from bayes_dcpt.laws.registry import get_law
    >>> law = get_law("cpt-dynamics")
    >>> law.evaluate(law.example_params, S1pt=40.0, S1cpt=2.0, S2pt=5.0, S2cpt=0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bayes_dcpt.laws.base import Law, Param, Prior, power
from bayes_dcpt.laws.registry import register

__all__ = ["DYNAMICS_LAWS", "VARIANTS", "dynamics_inputs"]

REF = "Wang et al., Learning Dynamics in Continual Pre-Training, ICML 2025 (arXiv 2505.07796)"

#: law name -> (uses N, uses the replay ratio)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "cpt-dynamics": (False, False),
    "cpt-dynamics-n": (True, False),
    "cpt-dynamics-replay": (False, True),
    "cpt-dynamics-full": (True, True),
}
DYNAMICS_LAWS = tuple(VARIANTS)


def dynamics_inputs(law: str) -> tuple[str, ...]:
    """The formula inputs of a dynamics law variant."""
    use_n, use_r = VARIANTS[law]
    return ("S1pt", "S1cpt", "S2pt", "S2cpt", *(("N",) if use_n else ()), *(("r_cpt", "is_domain") if use_r else ()))


def _formula(use_n: bool, use_r: bool):
    def f(xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
        s1 = x["S1pt"] + x["S1cpt"]
        c1 = p["C1"] * x["S2pt"]
        c2 = p["C2"] * x["S2cpt"]
        shift = 1.0 - power(xp, 1.0 + p["E"] * x["S1cpt"], -p["beta"])
        if use_n:
            c1 = c1 * power(xp, x["N"], p["gamma1"])
            c2 = c2 * power(xp, x["N"], p["gamma2"])
        if use_r:
            r, dom = x["r_cpt"], x["is_domain"]
            r_own = dom * r + (1.0 - dom) * (1.0 - r)
            c2 = c2 * xp.exp(p["a1"] * r_own)
            shift = shift * (dom * (xp.exp(p["a2"] * r) - 1.0) + (1.0 - dom) * (1.0 - xp.exp(-p["a2"] * r)))
        out = p["L0"] + p["A"] * power(xp, s1, -p["alpha"]) - c1 - c2 + p["B"] * shift
        if use_n:
            out = out + p["F"] * power(xp, x["N"], -p["gamma3"])
        return out

    return f


def _params(use_n: bool, use_r: bool) -> tuple[Param, ...]:
    ps = [
        Param("L0", "irreducible loss", "log", (-1.0, 0.0, 1.0),
              Prior("lognormal", 0.5, 0.75, "a sizeable part of the loss", scale="loss")),
        Param("A", "forward-area coefficient (S1 in LR x steps)", "log", (-2.0, 0.0, 2.0),
              Prior("lognormal", 0.1, 1.5, "the power term is a small part of a CPT loss", scale="loss")),
        Param("alpha", "forward-area exponent", "identity", (0.25, 0.5, 0.75),
              Prior("lognormal", 0.5, 0.75, "Wang et al. fit 0.497 and 0.510; Tissue et al. ~0.5"), bounds=(1e-3, 5.0)),
        Param("C1", "annealing coefficient of the pre-training phase", "identity", (0.0, 0.3),
              Prior("normal", 0.3, 1.0, "Wang et al.: 0.299 and 0.280; about equal to C2")),
        Param("C2", "annealing coefficient of the CPT phase", "log", (-2.0, 0.0),
              Prior("lognormal", 0.3, 1.5, "Wang et al.: 0.298 and 0.263; annealing lowers the loss (C2 > 0)")),
        Param("B", "distribution-shift amplitude (> 0 general loss, < 0 domain loss)", "identity", (-0.3, 0.3),
              Prior("normal", 0.0, 0.5, "Wang et al.: 0.366 for the general loss; negative for the domain loss")),
        Param("E", "distribution-shift rate (per unit S1cpt)", "log", (0.0, 2.0, 4.0),
              Prior("lognormal", 10.0, 2.0, "Wang et al.: 28 and 99 (scale depends on the LR units)")),
        Param("beta", "distribution-shift exponent", "identity", (0.1, 0.3, 0.6),
              Prior("lognormal", 0.3, 0.75, "Wang et al.: 0.189"), bounds=(1e-3, 5.0)),
    ]
    if use_n:
        ps += [
            Param("gamma1", "model-size exponent of the PT annealing term", "identity", (-0.2, 0.0, 0.2),
                  Prior("normal", 0.0, 0.5, "no published value; zero recovers Eq. 4")),
            Param("gamma2", "model-size exponent of the CPT annealing term", "identity", (-0.2, 0.0, 0.2),
                  Prior("normal", 0.0, 0.5, "no published value; zero recovers Eq. 4")),
            Param("F", "model-size coefficient (N in billions)", "log", (-2.0, 0.0),
                  Prior("lognormal", 0.1, 1.5, "a Chinchilla-like model-size term", scale="loss")),
            Param("gamma3", "model-size exponent", "identity", (0.2, 0.34, 0.5),
                  Prior("lognormal", 0.34, 0.5, "Chinchilla 0.34"), bounds=(1e-3, 3.0)),
        ]
    if use_r:
        ps += [
            Param("a1", "replay factor of the CPT annealing term", "identity", (-1.0, 0.0, 1.0),
                  Prior("normal", 0.0, 1.0, "Wang et al.: 0.055; the sign is free (see the module notes)")),
            Param("a2", "replay rate of the distribution shift", "log", (0.0, 1.0, 2.0),
                  Prior("lognormal", 2.0, 1.0, "Wang et al.: 3.238")),
        ]
    return tuple(ps)


_EX = {"L0": 3.057, "A": 0.490, "alpha": 0.497, "B": 0.366, "E": 28.0, "beta": 0.189, "C1": 0.299, "C2": 0.298}
_EX_N = {"gamma1": 0.0, "gamma2": 0.0, "F": 0.05, "gamma3": 0.34}
_EX_R = {"a1": 0.055, "a2": 3.238}
_TITLES = {
    "cpt-dynamics": "L0 + A(S1pt+S1cpt)^-alpha - C1 S2pt - C2 S2cpt + B(1-(1+E S1cpt)^-beta)  (Eq. 4)",
    "cpt-dynamics-n": "Eq. 4 with C1 S2pt N^gamma1, C2 S2cpt N^gamma2 and + F N^-gamma3  (Eq. 7)",
    "cpt-dynamics-replay": "Eq. 4 with C2 S2cpt e^(a1 r_own) and the shift x (1-e^(-a2 r)) / (e^(a2 r)-1)  (Eq. 8)",
    "cpt-dynamics-full": "Eq. 7 and Eq. 8 combined (model size and replay ratio)",
}


def _register() -> None:
    for name, (use_n, use_r) in VARIANTS.items():
        ex = {**_EX, **(_EX_N if use_n else {}), **(_EX_R if use_r else {})}
        aliases = {"cpt-dynamics": ("dynamics", "lr-dynamics", "cpt_dynamics"),
                   "cpt-dynamics-replay": ("dynamics-replay",), "cpt-dynamics-n": ("dynamics-n",),
                   "cpt-dynamics-full": ("dynamics-full",)}[name]
        register(Law(name, _TITLES[name], _params(use_n, use_r), dynamics_inputs(name), _formula(use_n, use_r),
                     "cpt-dynamics", REF, ex, positive_output=True, aliases=aliases,
                     notes="inputs are LR areas from bayes_dcpt.laws.lr_schedules.phase_areas; fitted by "
                           "bayes_dcpt.fitting.dynamics", linear=("L0", "A", "C1", "C2", "B")))


_register()
