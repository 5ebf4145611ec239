"""The parameters of the D-CPT-type laws with their point-fit grids and Bayesian priors, written once.

The D-CPT family, the Cross-Domain law and the Chinchilla-type laws share most parameters (E, A, alpha,
B, beta, ...); each builder here returns one :class:`~bayes_dcpt.laws.base.Param` with the prior and its
reason, so a prior is stated in one place. :func:`coef`, :func:`expo` and :func:`real` make the generic
coefficients, exponents and signed parameters of the other laws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bayes_dcpt.laws.base import Param, Prior, power

__all__ = [
    "EXP_GRID",
    "E_GRID",
    "LOG3_GRID",
    "a_param",
    "alpha_param",
    "b_param",
    "beta_param",
    "c0_lower",
    "c_param",
    "coef",
    "core_params",
    "e_param",
    "eps_param",
    "eta_param",
    "expo",
    "gamma_param",
    "real",
]

LOG3_GRID = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # the paper's a, b, c grid
E_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)  # the paper's e grid
EXP_GRID = (0.0, 0.25, 0.5)  # exponents: the paper's {-0.5, 0, 0.5} clipped to the bounds


def c0_lower(xp: Any, p: Mapping[str, Any], ctx: Mapping[str, float]) -> Any:
    """C0 = B eta (1+eps)^(gamma+1) / (gamma D_min^beta): C > C0 makes dL/dr < 0 for D >= D_min (paper E.3)."""
    d_min = ctx.get("D_min", 0.1311)
    num = p["B"] * p["eta"] * power(xp, 1.0 + p["eps"], p["gamma"] + 1.0)
    return num / (p["gamma"] * power(xp, d_min, p["beta"]))


def e_param() -> Param:
    """E, the irreducible loss; its prior scales with the reference loss."""
    return Param(
        "E",
        "irreducible loss (nats)",
        "log",
        E_GRID,
        Prior(
            "lognormal", 0.5, 0.6, "E is a sizeable part of the observed loss at any scale: centred at half the "
            "reference loss, 90% prior mass between 0.19 and 1.3 L_ref", scale="loss",
        ),
    )


def a_param() -> Param:
    """A, the model-size coefficient (sampled as its term at the data's reference size)."""
    return Param(
        "A",
        "model-size coefficient (N in billions)",
        "log",
        LOG3_GRID,
        Prior(
            "lognormal", 0.15, 1.5, "Chinchilla's A=406.4 (Epoch: 482) is 0.35 with N in billions, about 0.15 of a "
            "loss near 2.3; sd 1.5 on the log scale spans two orders of magnitude (prior on A/N_ref^alpha, the "
            "term at the data's geometric-mean size)", scale="loss",
        ),
        centre=("N", "alpha"),
    )


def alpha_param() -> Param:
    """Alpha, the model-size exponent (Chinchilla-centred prior)."""
    return Param(
        "alpha",
        "model-size exponent",
        "identity",
        EXP_GRID,
        Prior("lognormal", 0.34, 0.5, "Chinchilla 0.34, Epoch replication 0.348; 90% prior mass 0.15-0.77"),
        bounds=(1e-3, 3.0),
    )


def b_param() -> Param:
    """B, the token coefficient (sampled as its term at the data's reference tokens)."""
    return Param(
        "B",
        "token coefficient (D in billions)",
        "log",
        LOG3_GRID,
        Prior(
            "lognormal", 0.1, 1.5, "Chinchilla's B=410.7 (Epoch: 2085) is 1.0-1.2 with D in billions; CPT moves a "
            "smaller share of the loss, so centred at 0.1 L_ref with sd 1.5 (prior on B/D_ref^beta, the term at "
            "the data's geometric-mean tokens)", scale="loss",
        ),
        centre=("D", "beta"),
    )


def beta_param() -> Param:
    """Beta, the token exponent."""
    return Param(
        "beta",
        "token exponent",
        "identity",
        EXP_GRID,
        Prior(
            "lognormal", 0.3, 0.6, "Chinchilla 0.28, Epoch 0.366, Datablations 0.353; wider (sd 0.6) because CPT "
            "checkpoints along one LR schedule give flatter or steeper curves"
        ),
        bounds=(1e-3, 3.0),
    )


def c_param(lower: bool) -> Param:
    """C, the mixture-ratio coefficient; ``lower=True`` constrains it to C > C0 (:func:`c0_lower`)."""
    return Param(
        "C",
        "mixture-ratio coefficient" + (" (C > C0, paper appendix E.3)" if lower else ""),
        "log",
        LOG3_GRID,
        Prior(
            "lognormal", 0.05, 1.5, "the ratio term C/(r+eps)^gamma is a small part of the loss at r = 1 and "
            "grows as r -> 0; centred at 0.05 L_ref" + (" (prior on the excess C - C0)" if lower else ""),
            scale="loss",
        ),
        lower=c0_lower if lower else None,
    )


def gamma_param() -> Param:
    """Gamma, the mixture-ratio exponent."""
    return Param(
        "gamma",
        "mixture-ratio exponent",
        "identity",
        EXP_GRID,
        Prior("lognormal", 0.5, 0.8, "no published value; weakly informative around 0.5, 90% mass 0.13-1.9"),
        bounds=(1e-3, 5.0),
    )


def eta_param(gt1: bool = True) -> Param:
    """Eta: the D term's ratio exponent (> 1, ``gt1=True``) or L2's outer exponent (``gt1=False``)."""
    if gt1:
        return Param(
            "eta",
            "ratio exponent of the D term (eta > 1, paper: eta = 1 + exp(eta1))",
            "gt1",
            (-0.5, 0.0, 0.5),
            Prior(
                "shifted_lognormal", 0.5, 1.0, "the paper's monotonicity proof needs eta > 1; eta - 1 centred at 0.5"
            ),
        )
    return Param(
        "eta",
        "outer exponent",
        "identity",
        (0.5, 1.0, 1.5),
        Prior("lognormal", 1.0, 0.5, "L2's outer exponent: 1 recovers L1"),
        bounds=(1e-3, 5.0),
    )


def eps_param() -> Param:
    """Eps, the ratio offset that keeps ``r + eps`` away from zero."""
    return Param(
        "eps",
        "ratio offset (r + eps keeps the law finite at r = 0)",
        "identity",
        (0.01, 0.5),
        Prior("lognormal", 0.1, 0.75, "the paper: eps typically lies near 0.1; 90% mass 0.03-0.34"),
        bounds=(1e-4, 2.0),
    )


def coef(name: str, doc: str, center: float = 0.1, grid: tuple[float, ...] = LOG3_GRID) -> Param:
    """A positive coefficient with a weakly informative prior centred at ``center`` times the reference loss."""
    return Param(
        name, doc, "log", grid,
        Prior("lognormal", center, 1.5, f"weakly informative coefficient, centred at {center:g} L_ref", scale="loss"),
    )


def expo(name: str, doc: str, center: float = 0.3, grid: tuple[float, ...] = EXP_GRID) -> Param:
    """A positive exponent with a weakly informative prior centred at ``center``."""
    return Param(
        name, doc, "identity", grid,
        Prior("lognormal", center, 0.75, f"weakly informative exponent centred at {center:g}"), bounds=(1e-3, 5.0),
    )


def real(
    name: str, doc: str, center: float = 0.0, sd: float = 2.0, grid: tuple[float, ...] = (-1.0, 0.0, 1.0)
) -> Param:
    """A parameter of either sign with a Normal prior."""
    return Param(name, doc, "identity", grid, Prior("normal", center, sd, "weakly informative, sign not constrained"))


def core_params() -> list[Param]:
    """The Chinchilla core every D-CPT law starts from: E, A, alpha, B, beta."""
    return [e_param(), a_param(), alpha_param(), b_param(), beta_param()]
