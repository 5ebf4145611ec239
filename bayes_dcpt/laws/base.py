"""The law abstraction: parameters, priors written as data, and one formula for numpy and PyTensor.

Each :class:`Law` has named parameters (:class:`Param`, with constraint, point-fit grid and Bayesian
prior), the inputs it reads, and one ``formula(xp, p, x)`` where ``xp`` is a namespace (``numpy`` or
``pytensor.tensor``), ``p`` maps parameter names to values (scalars or arrays that broadcast against
the inputs) and ``x`` maps input names to arrays. The same function body is what the point fit, the
PyMC model, the posterior predictions and the planner evaluate: there is no second copy of a formula.
:func:`power` and :func:`ratio_power` are the two power helpers every formula writes with.

Units: model size ``N`` and tokens ``D`` enter every formula **in billions** (the D-CPT paper's units;
see ``../shared/laws.md`` section 2.2). :meth:`Law.evaluate` and :func:`inputs_from_frame` take raw
counts and convert.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "BILLION",
    "TINY",
    "Law",
    "Param",
    "Prior",
    "d_power",
    "inputs_from_frame",
    "n_term",
    "power",
    "prepare_inputs",
    "ratio_power",
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
def power(xp: Any, base: Any, expo: Any) -> Any:
    """base**expo for base > 0 written as exp(expo*log(base)) (stable gradients in PyTensor)."""
    return xp.exp(expo * xp.log(base))


def d_power(xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    """The token term ``D^-beta`` of the D-CPT family.

    A model whose runs share token grids passes it precomputed as ``x["D_pow"]`` (each distinct grid and
    ``beta`` once, not once per run: on dense probe logs that is most of a gradient's transcendentals); everything
    else computes it here.
    """
    if "D_pow" in x:
        return x["D_pow"]
    return power(xp, x["D"], -p["beta"])


def ratio_power(xp: Any, r: Any, expo: Any) -> Any:
    """r**expo for r in [0, 1]: r is floored at TINY, so for expo > 0 it is ~0 at r = 0 with finite gradients."""
    return xp.exp(expo * xp.log(xp.maximum(r, TINY)))


def n_term(xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    """The model-size term ``A / N^alpha`` that the D-CPT and Chinchilla-type laws share."""
    return p["A"] * power(xp, x["N"], -p["alpha"])
