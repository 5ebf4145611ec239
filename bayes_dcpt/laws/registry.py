"""The law library: every supported scaling law, written once, evaluated on numpy and on PyTensor.

Each :class:`Law` has named parameters (:class:`Param`, with constraint, point-fit grid and Bayesian
prior), the inputs it reads, and one ``formula(xp, p, x)`` where ``xp`` is a namespace (``numpy`` or
``pytensor.tensor``), ``p`` maps parameter names to values (scalars or arrays that broadcast against
the inputs) and ``x`` maps input names to arrays. The same function body is what the point fit, the
PyMC model, the posterior predictions and the planner evaluate: there is no second copy of a formula.

Units: model size ``N`` and tokens ``D`` enter every formula **in billions** (the D-CPT paper's units;
see ``../shared/laws.md`` section 2.2). :meth:`Law.evaluate` and :func:`inputs_from_frame` take raw
counts and convert.

The D-CPT forms (paper section 4.2, appendix E.4), with ``r' = r + eps``::

    L1 = E + A/N^alpha + B/D^beta + C/r'^gamma
    L2 = E + A/N^alpha + (B/D^beta + C/r'^gamma)^eta
    L3 = E + A/N^alpha + B r^eta / D^beta + C/r'^gamma        (the D-CPT Law, default)
    L4 = E + A/N^alpha + B b^r / D^beta + C / c^r
    L5 = E + A/N^alpha + B / (r D + (1-r) sigma)^beta
    L6 = E + A/N^alpha + B e^r / D^beta + C/r'^gamma
    L7 = E + A/N^alpha + B r'^eta / D^beta + C/r'^gamma

Quickstart::

    >>> from bayes_dcpt.laws.registry import get_law
    >>> law = get_law("dcpt")
    >>> law.evaluate(law.example_params, n_params=1.8e9, tokens=10e9, r=0.5)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayes_dcpt.errors import UnknownLawError

__all__ = [
    "BILLION",
    "LAWS",
    "Law",
    "Param",
    "Prior",
    "chinchilla_at_ratio",
    "get_law",
    "inputs_from_frame",
    "list_laws",
]

BILLION = 1e9
TINY = 1e-30

Space = Literal["log", "identity", "gt1"]


@dataclass(frozen=True)
class Prior:
    """A prior written as data (the fitting module turns it into a PyMC distribution).

    ``kind``:
      * ``"lognormal"``: ``log(value / scale) ~ Normal(log(center), sd)``;
      * ``"shifted_lognormal"``: ``log(value - 1) ~ Normal(log(center), sd)`` (for ``eta > 1``);
      * ``"normal"``: ``value ~ Normal(center, sd)``.

    ``scale="loss"`` multiplies the centre by the reference loss of the target (the median observed
    loss), so coefficient priors are weakly informative on any loss scale (nats per token or per byte).
    """

    kind: Literal["lognormal", "shifted_lognormal", "normal"]
    center: float
    sd: float
    reason: str
    scale: Literal["none", "loss"] = "none"

    def describe(self) -> str:
        """Human-readable form used in docstrings, model cards and reports."""
        c = f"{self.center:g}" + (" x L_ref" if self.scale == "loss" else "")
        if self.kind == "lognormal":
            return f"LogNormal(log({c}), {self.sd:g})"
        if self.kind == "shifted_lognormal":
            return f"1 + LogNormal(log({c}), {self.sd:g})"
        return f"Normal({c}, {self.sd:g})"


@dataclass(frozen=True)
class Param:
    """One law parameter.

    ``space`` is the point fit's free parameterisation (the paper's): ``"log"`` (value = exp(u)),
    ``"gt1"`` (value = 1 + exp(u), the paper's eta = 1 + exp(eta1)) or ``"identity"`` (with ``bounds``).
    ``grid`` holds the initialisation values in that free space. ``lower`` (optional) is a lower bound
    that depends on other parameters, e.g. ``C > C0(B, eta, eps, gamma, beta)``: then the free variable
    is the excess, value = lower + exp(u).
    """

    name: str
    doc: str
    space: Space
    grid: tuple[float, ...]
    prior: Prior
    bounds: tuple[float | None, float | None] = (None, None)
    lower: Callable[[Any, Mapping[str, Any], Mapping[str, float]], Any] | None = None
    #: For the Bayesian fit: the coefficient is sampled as the value of its term at the data's reference
    #: scale, e.g. ``("N", "alpha")`` samples ``A_ref = A / N_ref^alpha`` (this decorrelates A and alpha).
    centre: tuple[str, str] | None = None

    @property
    def positive(self) -> bool:
        """True when the parameter must be > 0."""
        return self.space in ("log", "gt1") or (self.bounds[0] is not None and self.bounds[0] >= 0)


@dataclass(frozen=True)
class Law:
    """A scaling law: parameters, inputs and one formula for numpy and PyTensor."""

    name: str
    title: str
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    formula: Callable[[Any, Mapping[str, Any], Mapping[str, Any]], Any]
    family: str
    reference: str
    example_params: Mapping[str, float]
    positive_output: bool = True
    dlc: Callable[[Any, Mapping[str, Any], Mapping[str, Any]], Any] | None = None
    dlc_features: tuple[str, ...] = ()
    at_ratio: Callable[[Mapping[str, Any], Any], dict[str, Any]] | None = None
    notes: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    #: Coefficients the formula is linear in (the Bayesian fit samples their terms' values at a reference
    #: point instead of the raw coefficients: far better posterior geometry).
    linear: tuple[str, ...] = ()
    #: The linear coefficients whose terms do not depend on D (their reference values add up to the
    #: asymptotic loss level; the fit samples that level and the log-ratios of the terms to E).
    level: tuple[str, ...] = ()
    #: Power-law terms ``coefficient -> (exponent, axis)`` with axis ``"N"``, ``"D"`` or ``"r"`` (the last
    #: in the form ``(r + eps)^-exponent``). The Bayesian fit samples such a term through its values at the
    #: two ends of the data's range of its axis (see :mod:`bayes_dcpt.fitting`).
    power_terms: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the law's parameters in a fixed order."""
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        """Look up one parameter by name."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __call__(self, xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
        """Evaluate on prepared inputs (billions): ``law(np, params, inputs)``."""
        if self.dlc is not None and "K" not in x:
            x = dict(x)
            x["K"] = self.dlc(xp, p, x)
        return self.formula(xp, p, x)

    def evaluate(self, params: Mapping[str, Any], **raw_inputs: Any) -> np.ndarray:
        """Evaluate on numpy with raw inputs (``n_params``, ``tokens`` in counts; ``r``; features)."""
        x = prepare_inputs(raw_inputs)
        needed = [k for k in self.inputs if not (k == "K" and self.dlc is not None)] + list(self.dlc_features)
        missing = [k for k in needed if k not in x]
        if missing:
            raise ValueError(f"law {self.name!r} needs inputs {missing}")
        p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(self(np, p, x), dtype=float)


_RAW_TO_LAW = {"n_params": "N", "tokens": "D"}


def prepare_inputs(raw: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Convert raw-count inputs to the formula's units: ``n_params`` -> ``N`` and ``tokens`` -> ``D`` in billions."""
    x: dict[str, np.ndarray] = {}
    for k, v in raw.items():
        arr = np.asarray(v, dtype=float)
        if k in _RAW_TO_LAW:
            x[_RAW_TO_LAW[k]] = arr / BILLION
        else:
            x[k] = arr
    return x


def inputs_from_frame(df: pd.DataFrame, target: str | None = None) -> dict[str, np.ndarray]:
    """Formula inputs (billions) from a schema frame; ``r`` is the law's own ratio for ``target``.

    For the general loss the law's ratio is the general share ``1 - r_domain``; for the domain loss it is
    ``r_domain``. A long frame (from :func:`bayes_dcpt.data.schema.to_long`) already carries ``r``.
    """
    x = {"N": df["n_params"].to_numpy(float) / BILLION, "D": df["tokens"].to_numpy(float) / BILLION}
    if "r" in df.columns and target is None:
        x["r"] = df["r"].to_numpy(float)
    elif target == "general":
        x["r"] = 1.0 - df["r_domain"].to_numpy(float)
    elif target == "domain":
        x["r"] = df["r_domain"].to_numpy(float)
    for k in ("k1", "k2", "k3", "K"):
        if k in df.columns:
            x[k] = df[k].to_numpy(float)
    return x


# --------------------------------------------------------------------------------------------- helpers
def _pow(xp: Any, base: Any, expo: Any) -> Any:
    """base**expo for base > 0 written as exp(expo*log(base)) (stable gradients in PyTensor)."""
    return xp.exp(expo * xp.log(base))


def _rpow(xp: Any, r: Any, expo: Any) -> Any:
    """r**expo for r in [0, 1] that is exactly 0 at r = 0 and has finite gradients there."""
    return xp.exp(expo * xp.log(xp.maximum(r, TINY)))


def _n_term(xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    return p["A"] * _pow(xp, x["N"], -p["alpha"])


def _c_term(xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    return p["C"] * _pow(xp, x["r"] + p["eps"], -p["gamma"])


def _c0_lower(xp: Any, p: Mapping[str, Any], ctx: Mapping[str, float]) -> Any:
    """C0 = B eta (1+eps)^(gamma+1) / (gamma D_min^beta): C > C0 makes dL/dr < 0 for D >= D_min (paper E.3)."""
    d_min = ctx.get("D_min", 0.1311)
    return p["B"] * p["eta"] * _pow(xp, 1.0 + p["eps"], p["gamma"] + 1.0) / (p["gamma"] * _pow(xp, d_min, p["beta"]))


# ---------------------------------------------------------------------------------------- parameters
_LOG3 = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # the paper's a, b, c grid
_E_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)  # the paper's e grid
_EXP_GRID = (0.0, 0.25, 0.5)  # exponents: the paper's {-0.5, 0, 0.5} clipped to the bounds


def _E() -> Param:
    return Param(
        "E",
        "irreducible loss (nats)",
        "log",
        _E_GRID,
        Prior(
            "lognormal", 0.5, 0.6, "E is a sizeable part of the observed loss at any scale: centred at half the "
            "reference loss, 90% prior mass between 0.19 and 1.3 L_ref", scale="loss",
        ),
    )


def _A() -> Param:
    return Param(
        "A",
        "model-size coefficient (N in billions)",
        "log",
        _LOG3,
        Prior(
            "lognormal", 0.15, 1.5, "Chinchilla's A=406.4 (Epoch: 482) is 0.35 with N in billions, about 0.15 of a "
            "loss near 2.3; sd 1.5 on the log scale spans two orders of magnitude (prior on A/N_ref^alpha, the "
            "term at the data's geometric-mean size)", scale="loss",
        ),
        centre=("N", "alpha"),
    )


def _alpha() -> Param:
    return Param(
        "alpha",
        "model-size exponent",
        "identity",
        _EXP_GRID,
        Prior("lognormal", 0.34, 0.5, "Chinchilla 0.34, Epoch replication 0.348; 90% prior mass 0.15-0.77"),
        bounds=(1e-3, 3.0),
    )


def _B() -> Param:
    return Param(
        "B",
        "token coefficient (D in billions)",
        "log",
        _LOG3,
        Prior(
            "lognormal", 0.1, 1.5, "Chinchilla's B=410.7 (Epoch: 2085) is 1.0-1.2 with D in billions; CPT moves a "
            "smaller share of the loss, so centred at 0.1 L_ref with sd 1.5 (prior on B/D_ref^beta, the term at "
            "the data's geometric-mean tokens)", scale="loss",
        ),
        centre=("D", "beta"),
    )


def _beta() -> Param:
    return Param(
        "beta",
        "token exponent",
        "identity",
        _EXP_GRID,
        Prior(
            "lognormal", 0.3, 0.6, "Chinchilla 0.28, Epoch 0.366, Datablations 0.353; wider (sd 0.6) because CPT "
            "checkpoints along one LR schedule give flatter or steeper curves"
        ),
        bounds=(1e-3, 3.0),
    )


def _C(lower: bool) -> Param:
    return Param(
        "C",
        "mixture-ratio coefficient" + (" (C > C0, paper appendix E.3)" if lower else ""),
        "log",
        _LOG3,
        Prior(
            "lognormal", 0.05, 1.5, "the ratio term C/(r+eps)^gamma is a small part of the loss at r = 1 and "
            "grows as r -> 0; centred at 0.05 L_ref" + (" (prior on the excess C - C0)" if lower else ""),
            scale="loss",
        ),
        lower=_c0_lower if lower else None,
    )


def _gamma() -> Param:
    return Param(
        "gamma",
        "mixture-ratio exponent",
        "identity",
        _EXP_GRID,
        Prior("lognormal", 0.5, 0.8, "no published value; weakly informative around 0.5, 90% mass 0.13-1.9"),
        bounds=(1e-3, 5.0),
    )


def _eta(gt1: bool = True) -> Param:
    if gt1:
        return Param(
            "eta",
            "ratio exponent of the D term (eta > 1, paper: eta = 1 + exp(eta1))",
            "gt1",
            (-0.5, 0.0, 0.5),
            Prior("shifted_lognormal", 0.5, 1.0, "the paper's monotonicity proof needs eta > 1; eta - 1 centred at 0.5"),
        )
    return Param(
        "eta",
        "outer exponent",
        "identity",
        (0.5, 1.0, 1.5),
        Prior("lognormal", 1.0, 0.5, "L2's outer exponent: 1 recovers L1"),
        bounds=(1e-3, 5.0),
    )


def _eps() -> Param:
    return Param(
        "eps",
        "ratio offset (r + eps keeps the law finite at r = 0)",
        "identity",
        (0.01, 0.5),
        Prior("lognormal", 0.1, 0.75, "the paper: eps typically lies near 0.1; 90% mass 0.03-0.34"),
        bounds=(1e-4, 2.0),
    )


def _coef(name: str, doc: str, center: float = 0.1, grid: tuple[float, ...] = _LOG3) -> Param:
    return Param(
        name, doc, "log", grid,
        Prior("lognormal", center, 1.5, f"weakly informative coefficient, centred at {center:g} L_ref", scale="loss"),
    )


def _expo(name: str, doc: str, center: float = 0.3, grid: tuple[float, ...] = _EXP_GRID) -> Param:
    return Param(
        name, doc, "identity", grid,
        Prior("lognormal", center, 0.75, f"weakly informative exponent centred at {center:g}"), bounds=(1e-3, 5.0),
    )


def _real(name: str, doc: str, center: float = 0.0, sd: float = 2.0, grid: tuple[float, ...] = (-1.0, 0.0, 1.0)) -> Param:
    return Param(name, doc, "identity", grid, Prior("normal", center, sd, "weakly informative, sign not constrained"))


# -------------------------------------------------------------------------------------------- formulas
def _f_L1(xp, p, x):
    return p["E"] + _n_term(xp, p, x) + p["B"] * _pow(xp, x["D"], -p["beta"]) + _c_term(xp, p, x)


def _f_L2(xp, p, x):
    inner = p["B"] * _pow(xp, x["D"], -p["beta"]) + _c_term(xp, p, x)
    return p["E"] + _n_term(xp, p, x) + _pow(xp, inner, p["eta"])


def _f_L3(xp, p, x):
    return p["E"] + _n_term(xp, p, x) + p["B"] * _rpow(xp, x["r"], p["eta"]) * _pow(xp, x["D"], -p["beta"]) + _c_term(
        xp, p, x
    )


def _f_L4(xp, p, x):
    return (
        p["E"]
        + _n_term(xp, p, x)
        + p["B"] * _pow(xp, p["b"], x["r"]) * _pow(xp, x["D"], -p["beta"])
        + p["C"] * _pow(xp, p["c"], -x["r"])
    )


def _f_L5(xp, p, x):
    eff = x["r"] * x["D"] + (1.0 - x["r"]) * p["sigma"]
    return p["E"] + _n_term(xp, p, x) + p["B"] * _pow(xp, eff, -p["beta"])


def _f_L6(xp, p, x):
    return p["E"] + _n_term(xp, p, x) + p["B"] * xp.exp(x["r"]) * _pow(xp, x["D"], -p["beta"]) + _c_term(xp, p, x)


def _f_L7(xp, p, x):
    rp = x["r"] + p["eps"]
    return p["E"] + _n_term(xp, p, x) + p["B"] * _pow(xp, rp, p["eta"]) * _pow(xp, x["D"], -p["beta"]) + _c_term(
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
    return _f_L3(xp, p, x) + p["F"] * _pow(xp, x["K"], -p["mu"])


def _f_chinchilla(xp, p, x):
    return p["E"] + _n_term(xp, p, x) + p["B"] * _pow(xp, x["D"], -p["beta"])


def _f_kaplan(xp, p, x):
    # L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D
    inner = _pow(xp, p["N_c"] / x["N"], p["alpha_N"] / p["alpha_D"]) + p["D_c"] / x["D"]
    return _pow(xp, inner, p["alpha_D"])


def _f_cross_lingual(xp, p, x):
    return p["E"] + _n_term(xp, p, x) + p["B"] / (_pow(xp, x["D"], p["beta"]) * _pow(xp, x["N"], p["g"]))


def _f_mixing(xp, p, x):
    return p["c"] + p["k"] * xp.exp(p["t"] * x["r"])


def _f_bimix(xp, p, x):
    return (p["A"] * _pow(xp, xp.maximum(x["r"], TINY), -p["alpha"])) * (p["B"] * _pow(xp, x["s"], -p["beta"]) + p["C"])


def _f_cmr_ratio(xp, p, x):
    return p["a"] * _pow(xp, xp.maximum(x["R"], TINY), p["s"]) + p["b"]


def _f_cmr_critical(xp, p, x):
    return p["a4"] * _pow(xp, x["T"], p["s4"]) + p["b3"]


def _f_cmr_dom(xp, p, x):
    return p["a1"] * _pow(xp, x["T"], p["s1"]) + p["b1"]


def _f_cmr_gen(xp, p, x):
    return p["a2"] * _pow(xp, x["T"], p["s2"]) + p["a3"] * _pow(xp, x["T"], p["s3"]) + p["b2"]


# Example values (N, D in billions) that meet the paper's requirements for D >= 0.1311B (C > C0 = 0.35).
_DCPT_EX = {"E": 1.2, "A": 0.35, "alpha": 0.34, "B": 0.05, "beta": 0.3, "C": 0.4, "gamma": 0.45, "eta": 1.5,
            "eps": 0.1}


_POW3 = {"A": ("alpha", "N"), "B": ("beta", "D"), "C": ("gamma", "r")}
_LIN = {"linear": ("E", "A", "B", "C"), "level": ("E", "A", "C"), "power_terms": _POW3}


def _core() -> list[Param]:
    return [_E(), _A(), _alpha(), _B(), _beta()]


def _build_registry() -> dict[str, Law]:
    ref = "Que et al., D-CPT Law, NeurIPS 2024 (arXiv 2406.01375)"
    L: dict[str, Law] = {}

    def add(law: Law) -> None:
        L[law.name] = law

    add(Law("L1", "E + A/N^alpha + B/D^beta + C/(r+eps)^gamma", (*_core(), _gamma(), _eps(), _C(False)),
            ("N", "D", "r"), _f_L1, "dcpt", ref, {k: v for k, v in _DCPT_EX.items() if k != "eta"},
            at_ratio=_at_ratio_L1, notes="fails the implicit trend: d2L/dDdr = 0", **_LIN))
    add(Law("L2", "E + A/N^alpha + (B/D^beta + C/(r+eps)^gamma)^eta", (*_core(), _gamma(), _eps(), _C(False),
            _eta(False)), ("N", "D", "r"), _f_L2, "dcpt", ref, {**_DCPT_EX, "eta": 1.2},
            notes="not of Chinchilla form at fixed r (fails consistency)", linear=("E", "A"), level=("E", "A")))
    add(Law("L3", "E + A/N^alpha + B r^eta/D^beta + C/(r+eps)^gamma  (the D-CPT Law)",
            (*_core(), _gamma(), _eps(), _eta(True), _C(True)), ("N", "D", "r"), _f_L3, "dcpt", ref,
            _DCPT_EX, at_ratio=_at_ratio_L3, aliases=("dcpt", "d-cpt"),
            notes="meets all four requirements when eta > 1 and C > C0 (built in)", **_LIN))
    add(Law("L4", "E + A/N^alpha + B b^r/D^beta + C/c^r",
            (*_core(), _coef("C", "ratio coefficient", 0.05), _coef("b", "D-term ratio base", 1.0, (-1.0, 0.0, 1.0)),
             _coef("c", "ratio base", 1.0, (-1.0, 0.0, 1.0))),
            ("N", "D", "r"), _f_L4, "dcpt", ref,
            {"E": 1.2, "A": 0.35, "alpha": 0.34, "B": 0.25, "beta": 0.3, "C": 0.4, "b": 2.0, "c": 2.0},
            at_ratio=_at_ratio_L4, notes="fails the explicit trend dL/dr < 0 when b > 1 (needed for the implicit one)",
            linear=("E", "A", "B", "C"), level=("E", "A", "C")))
    add(Law("L5", "E + A/N^alpha + B/(r D + (1-r) sigma)^beta",
            (*_core(), _coef("sigma", "effective tokens of off-domain data (billions)", 0.1)),
            ("N", "D", "r"), _f_L5, "dcpt", ref,
            {"E": 1.2, "A": 0.35, "alpha": 0.34, "B": 0.25, "beta": 0.3, "sigma": 0.05},
            linear=("E", "A", "B"), level=("E", "A")))
    add(Law("L6", "E + A/N^alpha + B e^r/D^beta + C/(r+eps)^gamma", (*_core(), _gamma(), _eps(), _C(False)),
            ("N", "D", "r"), _f_L6, "dcpt", ref, {k: v for k, v in _DCPT_EX.items() if k != "eta"},
            at_ratio=_at_ratio_L6, **_LIN))
    add(Law("L7", "E + A/N^alpha + B (r+eps)^eta/D^beta + C/(r+eps)^gamma",
            (*_core(), _gamma(), _eps(), _eta(True), _C(False)), ("N", "D", "r"), _f_L7, "dcpt", ref, _DCPT_EX,
            at_ratio=_at_ratio_L7, **_LIN))

    cross_extra = [
        _coef("F", "DLC coefficient", 0.1),
        _expo("mu", "DLC exponent", 1.0),
    ]
    rho_prior = Param("rho", "weight of k2 relative to 1/k1 (w2/w1; w1 is absorbed in F)", "log", (-2.0, 0.0, 2.0),
                      Prior("lognormal", 1.0, 1.5, "w2/w1 has no published value; unit-free, centred at 1"))
    rho3 = Param("rho3", "weight of 1/k3 relative to 1/k1 (w3/w1)", "log", (-2.0, 0.0, 2.0),
                 Prior("lognormal", 0.1, 1.5, "K4's third feature; centred small"))
    l3p = L["L3"].params
    ex_cross = {**_DCPT_EX, "F": 0.1, "mu": 1.0, "rho": 1.0, "rho3": 0.05}
    for kname, dlc, feats, extra in (
        ("K1", _dlc_K1, ("k1",), []),
        ("K2", _dlc_K2, ("k2",), []),
        ("K3", _dlc_K3, ("k1", "k2"), [rho_prior]),
        ("K4", _dlc_K4, ("k1", "k2", "k3"), [rho_prior, rho3]),
    ):
        aliases = ("cross-domain", "cross_domain") if kname == "K3" else ()
        add(Law(f"cross-domain-{kname}", f"L3 + F/K^mu with the DLC K = {kname}",
                (*l3p, *cross_extra, *extra), ("N", "D", "r", "K"), _f_cross, "cross-domain", ref,
                {k: v for k, v in ex_cross.items() if k in {p.name for p in (*l3p, *cross_extra, *extra)}},
                dlc=dlc, dlc_features=feats, at_ratio=None, aliases=aliases, linear=("E", "A", "B", "C", "F"),
                level=("E", "A", "C"), power_terms=_POW3,
                notes="K3 = 1/k1 + rho k2 is the paper's K3 = w1/k1 + w2 k2 with w1 absorbed into F"))

    add(Law("chinchilla", "E + A/N^alpha + B/D^beta", tuple(_core()), ("N", "D"), _f_chinchilla, "chinchilla",
            "Hoffmann et al. 2022; Besiroglu et al. 2024 (Epoch replication)",
            {"E": 1.69, "A": 406.4 / BILLION**0.34, "alpha": 0.34, "B": 410.7 / BILLION**0.28, "beta": 0.28},
            linear=("E", "A", "B"), level=("E", "A"), power_terms={"A": ("alpha", "N"), "B": ("beta", "D")}))
    add(Law("kaplan", "[(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
            (_coef("N_c", "critical model size (billions)", 1.0, (0.0, 5.0, 10.0)),
             _coef("D_c", "critical data size (billions)", 1.0, (0.0, 5.0, 10.0)),
             _expo("alpha_N", "model-size exponent", 0.076, (0.05, 0.1)),
             _expo("alpha_D", "data exponent", 0.095, (0.05, 0.1))),
            ("N", "D"), _f_kaplan, "chinchilla", "Kaplan et al. 2020",
            {"N_c": 8.8e13 / BILLION, "D_c": 5.4e13 / BILLION, "alpha_N": 0.076, "alpha_D": 0.095}))
    add(Law("cross-lingual", "E + A/N^alpha + B/(D^beta N^g)",
            (*_core(), _expo("g", "joint N exponent of the D term", 0.08, (0.0, 0.1))), ("N", "D"),
            _f_cross_lingual, "chinchilla", "Zheng et al. 2024 (arXiv 2407.02118)",
            {"E": 1.55, "A": 420 / BILLION**0.40, "alpha": 0.40, "B": 433.3 / BILLION**0.28, "beta": 0.20, "g": 0.08}))
    add(Law("mixing", "c + k exp(t r)  (two-domain Data Mixing Law)",
            (_coef("c", "floor", 0.5, _E_GRID), _coef("k", "amplitude", 0.3), _real("t", "ratio rate")),
            ("r",), _f_mixing, "mixture", "Ye et al., Data Mixing Laws, ICLR 2025", {"c": 1.0, "k": 0.5, "t": -2.0}))
    add(Law("bimix", "(A/r^alpha)(B/s^beta + C)",
            (_coef("A", "ratio amplitude", 1.0, (-1.0, 0.0, 1.0)), _expo("alpha", "ratio exponent", 0.1),
             _coef("B", "step amplitude", 1.0), _expo("beta", "step exponent", 0.3), _coef("C", "step floor", 1.0)),
            ("r", "s"), _f_bimix, "mixture", "Ge et al., BiMix (arXiv 2405.14908)",
            {"A": 1.0, "alpha": 0.05, "B": 5.0, "beta": 0.3, "C": 2.0}))
    cmr = "Gu et al., CMR scaling law, EMNLP 2024 (arXiv 2407.17467)"
    add(Law("cmr-ratio", "a R^s + b  (loss against mixture ratio R at the last step)",
            (_real("a", "amplitude"), _real("s", "exponent"), _real("b", "offset", 2.0)), ("R",), _f_cmr_ratio, "cmr",
            cmr, {"a": -0.1, "s": 0.5, "b": 1.55}, positive_output=True))
    add(Law("cmr-critical", "R_CMR(T) = a4 T^s4 + b3  (T in units of 0.2B tokens)",
            (_real("a4", "amplitude"), _real("s4", "exponent"), _real("b3", "offset")), ("T",), _f_cmr_critical,
            "cmr", cmr, {"a4": 0.22524761, "s4": 0.26944345, "b3": -0.48139982}, positive_output=False))
    add(Law("cmr-domain-delta", "dL_dom(T) = a1 T^s1 + b1", (_real("a1", "amplitude"), _real("s1", "exponent"),
            _real("b1", "offset")), ("T",), _f_cmr_dom, "cmr", cmr, {"a1": -0.1, "s1": 0.3, "b1": 0.0},
            positive_output=False))
    add(Law("cmr-general-delta", "dL_gen(T) = a2 T^s2 + a3 T^s3 + b2",
            (_real("a2", "amplitude"), _real("s2", "exponent"), _real("a3", "amplitude 2"), _real("s3", "exponent 2"),
             _real("b2", "offset")), ("T",), _f_cmr_gen, "cmr", cmr,
            {"a2": 0.1, "s2": 0.2, "a3": -0.05, "s3": 0.4, "b2": 0.0}, positive_output=False))
    return L


_REGISTRY: dict[str, Law] = _build_registry()
#: Every registered law by name (a read-only view: :func:`register` adds to it).
LAWS: Mapping[str, Law] = MappingProxyType(_REGISTRY)
_ALIASES = {a: law.name for law in LAWS.values() for a in (law.name.lower(), *law.aliases)}


def register(law: Law) -> None:
    """Add a law to the registry (used by modules that define further laws, e.g. the LR-schedule law)."""
    _REGISTRY[law.name] = law
    for a in (law.name.lower(), *law.aliases):
        _ALIASES[a] = law.name


def get_law(name: str | Law) -> Law:
    """Look up a law by name or alias (``"dcpt"`` is ``L3``, ``"cross-domain"`` is ``cross-domain-K3``)."""
    if isinstance(name, Law):
        return name
    key = str(name).strip().lower()
    if key in _ALIASES:
        return LAWS[_ALIASES[key]]
    known = ", ".join(sorted(set(_ALIASES)))
    raise UnknownLawError(f"unknown law {name!r}; known laws: {known}")


def list_laws(family: str | None = None) -> list[str]:
    """Names of the registered laws, optionally of one family (dcpt, cross-domain, chinchilla, mixture, cmr)."""
    return [n for n, law in LAWS.items() if family is None or law.family == family]


def chinchilla_at_ratio(law: Law | str, params: Mapping[str, Any], r: Any) -> dict[str, Any]:
    """The Chinchilla-form constants (E0, A, alpha, B0, beta) of a D-CPT law at a fixed ratio ``r``.

    This is the paper's consistency requirement: at fixed r, L = E0 + A/N^alpha + B0/D^beta. Works on
    per-draw parameter arrays.
    """
    law = get_law(law)
    if law.at_ratio is None:
        raise ValueError(f"law {law.name} has no Chinchilla form at fixed r")
    p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    return law.at_ratio(p, np.asarray(r, dtype=float))
