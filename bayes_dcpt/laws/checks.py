"""Numerical check of the D-CPT paper's four requirements (section 3.1) for any law and parameters.

1. **adaptability**: the law is finite and positive on r in [0, 1] (including both ends);
2. **explicit trends**: dL/dN < 0, dL/dD < 0 and dL/dr < 0;
3. **implicit trend**: d2L/(dD dr) < 0 (more of the own corpus makes data more efficient);
4. **consistency**: at fixed r the law has the Chinchilla form E' + A'/N^alpha + B'/D^beta, checked as
   (a) additive separability in N and D (d2L/dlogN dlogD = 0) and (b) pure power laws in N and in D
   (log(-dL/dlogD) is linear in log D, and likewise for N).

Derivatives are central finite differences in log N, log D and r on a grid spanning the given ranges
(D from the smallest measured tokens, as in the paper's proof). A check fails when a strict inequality
does not hold beyond numerical noise anywhere on the grid; the report says where.

Quickstart::

    >>> from bayes_dcpt.laws.checks import check_requirements
    >>> check_requirements("L1", get_law("L1").example_params).failed   # ['implicit_trend']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.laws.base import BILLION, Law
from bayes_dcpt.laws.registry import get_law

__all__ = ["RequirementCheck", "RequirementReport", "check_requirements"]

_NAMES = ("adaptability", "explicit_N", "explicit_D", "explicit_r", "implicit_trend", "consistency")


@dataclass(frozen=True)
class RequirementCheck:
    """The outcome of one requirement."""

    name: str
    passed: bool
    detail: str


@dataclass
class RequirementReport:
    """All requirement checks of one law at one parameter set."""

    law: str
    checks: list[RequirementCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every requirement holds."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        """Names of the failed requirements."""
        return [c.name for c in self.checks if not c.passed]

    def table(self) -> pd.DataFrame:
        """One row per requirement."""
        return pd.DataFrame([{"requirement": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks])

    def __str__(self) -> str:
        lines = [f"requirements of {self.law}: {'all pass' if self.passed else 'FAILED ' + ', '.join(self.failed)}"]
        lines += [f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


#: Finite-difference steps: in log N and log D, in r, and for the second differences of the consistency check.
_H = 1e-3
_HR = 1e-4
_H2 = 1e-2


def check_requirements(
    law: str | Law,
    params: Mapping[str, Any],
    *,
    n_params: tuple[float, float] = (1e8, 1e10),
    tokens: tuple[float, float] | None = None,
    d_min: float | None = None,
    features: Mapping[str, float] | None = None,
    n_grid: int = 9,
    rtol: float = 1e-7,
) -> RequirementReport:
    """Check the paper's four requirements for ``law`` at ``params`` (N and D ranges in raw counts).

    Parameters
    ----------
    law, params
        The law and one parameter set (natural values; N and D in billions as in the formulas).
    n_params, tokens
        Ranges of model size and CPT tokens to check on; ``tokens`` defaults to ``(d_min, 1000 * d_min)``
        with ``d_min`` the paper's 0.1311B unless given.
    features
        DLC features (``k1``, ``k2``, ``k3``) for cross-domain laws, held fixed.
    rtol
        Relative tolerance that separates a strict inequality from numerical noise.
    """
    law = get_law(law)
    if not {"N", "D", "r"} <= set(law.inputs):
        raise ValueError(f"requirements apply to laws of (N, D, r); {law.name} takes {law.inputs}")
    dmin = (d_min if d_min is not None else 0.1311e9)
    t_lo, t_hi = tokens if tokens is not None else (dmin, dmin * 1e3)
    logN = np.linspace(np.log(n_params[0] / BILLION), np.log(n_params[1] / BILLION), n_grid)
    logD = np.linspace(np.log(t_lo / BILLION), np.log(t_hi / BILLION), n_grid)
    g = _Grid.build(law, params, features, logN, logD, n_grid, rtol)
    checks = [_adaptability(g), *_explicit_trends(g), _implicit_trend(g), _consistency(g)]
    return RequirementReport(law.name, checks)


@dataclass(frozen=True)
class _Grid:
    """The law as a function of (log N, log D, r) with the check grid and the noise tolerance."""

    law: Law
    p: Mapping[str, np.ndarray]
    feats: Mapping[str, np.ndarray]
    logN: np.ndarray
    logD: np.ndarray
    n_grid: int
    gN: np.ndarray
    gD: np.ndarray
    gR: np.ndarray
    scale: float
    tol: float

    @classmethod
    def build(cls, law: Law, params: Mapping[str, Any], features: Mapping[str, float] | None, logN: np.ndarray,
              logD: np.ndarray, n_grid: int, rtol: float) -> _Grid:
        r_int = np.linspace(0.02, 1.0, 2 * n_grid + 1)
        p = {k: np.asarray(v, float) for k, v in params.items()}
        feats = {k: np.asarray(v, float) for k, v in (features or {}).items()}
        gN, gD, gR = np.meshgrid(logN, logD, r_int, indexing="ij")
        g = cls(law, p, feats, logN, logD, n_grid, gN, gD, gR, 1.0, 0.0)
        base = g.L(gN, gD, gR)
        scale = float(np.nanmax(np.abs(base))) if np.isfinite(base).any() else 1.0
        return replace(g, scale=scale, tol=rtol * max(scale, 1.0))

    def L(self, lN: Any, lD: Any, r: Any) -> np.ndarray:
        """The loss at log N (billions), log D (billions) and r, broadcast."""
        lN, lD, r = np.broadcast_arrays(lN, lD, r)
        x = {"N": np.exp(lN), "D": np.exp(lD), "r": r, **{k: np.full(lN.shape, v) for k, v in self.feats.items()}}
        with np.errstate(all="ignore"):
            return np.asarray(self.law(np, self.p, x), float)

    def where(self, msg: str, bad: np.ndarray) -> str:
        """``msg`` with the first failing grid point."""
        return _where(msg, bad, self.gN, self.gD, self.gR)


def _adaptability(g: _Grid) -> RequirementCheck:
    """1. Finite and positive on r in [0, 1] including the ends."""
    r_all = np.linspace(0.0, 1.0, 2 * g.n_grid + 1)
    aN, aD, aR = np.meshgrid(g.logN, g.logD, r_all, indexing="ij")
    va = g.L(aN, aD, aR)
    bad = ~np.isfinite(va) | (va <= 0)
    return RequirementCheck(
        "adaptability", not bad.any(),
        "finite and positive on r in [0, 1]" if not bad.any() else _where("not finite/positive", bad, aN, aD, aR))


def _explicit_trends(g: _Grid) -> list[RequirementCheck]:
    """2. dL/dN < 0, dL/dD < 0 and dL/dr < 0 on the grid."""
    L, gN, gD, gR, h, hr = g.L, g.gN, g.gD, g.gR, _H, _HR
    dN = (L(gN + h, gD, gR) - L(gN - h, gD, gR)) / (2 * h)
    dD = (L(gN, gD + h, gR) - L(gN, gD - h, gR)) / (2 * h)
    dR = (L(gN, gD, np.minimum(gR + hr, 1.0)) - L(gN, gD, gR - hr)) / (np.minimum(gR + hr, 1.0) - (gR - hr))
    checks = []
    for name, d in (("explicit_N", dN), ("explicit_D", dD), ("explicit_r", dR)):
        bad = ~(d < -g.tol)
        var = name.split("_")[1]
        checks.append(RequirementCheck(
            name, not bad.any(),
            f"dL/d{var} < 0 everywhere (max {np.nanmax(d):.3g})" if not bad.any()
            else g.where(f"dL/d{var} >= 0 (max {np.nanmax(d):.3g})", bad)))
    return checks


def _implicit_trend(g: _Grid) -> RequirementCheck:
    """3. d2L / dlogD dr < 0 (same sign as d2L/dD dr)."""
    L, gN, gD, gR, h, hr = g.L, g.gN, g.gD, g.gR, _H, _HR

    def dDf(r):
        return (L(gN, gD + h, r) - L(gN, gD - h, r)) / (2 * h)

    up, dn = np.minimum(gR + hr * 10, 1.0), gR - hr * 10
    cross = (dDf(up) - dDf(dn)) / (up - dn)
    bad = ~(cross < -g.tol)
    return RequirementCheck(
        "implicit_trend", not bad.any(),
        f"d2L/dDdr < 0 everywhere (max {np.nanmax(cross):.3g})" if not bad.any()
        else g.where(f"d2L/dDdr >= 0 (max {np.nanmax(cross):.3g})", bad))


def _consistency(g: _Grid) -> RequirementCheck:
    """4. The Chinchilla form at fixed r: N and D terms additive, each a pure power law."""
    L, gN, gD, gR, H = g.L, g.gN, g.gD, g.gR, _H2
    crossND = (L(gN + H, gD + H, gR) - L(gN + H, gD - H, gR) - L(gN - H, gD + H, gR) + L(gN - H, gD - H, gR)) / (
        4 * H * H)
    sep_bad = np.abs(crossND) > 1e-5 * max(g.scale, 1.0)
    curvD, curvN = _log_slope_curvature(g, "D"), _log_slope_curvature(g, "N")
    pow_bad = ~(np.abs(np.nan_to_num(curvD, nan=np.inf)) < 1e-3) | ~(np.abs(np.nan_to_num(curvN, nan=np.inf)) < 1e-3)
    bad = sep_bad | pow_bad
    if not bad.any():
        detail = "at fixed r the law is E' + A'/N^alpha + B'/D^beta"
    elif sep_bad.any():
        detail = g.where("N and D terms are not additive", sep_bad)
    else:
        detail = g.where("the N or D dependence is not a pure power law", pow_bad)
    return RequirementCheck("consistency", not bad.any(), detail)


def _log_slope_curvature(g: _Grid, axis: str) -> np.ndarray:
    """Second difference of log(-dL/dlog axis) in log axis: zero for a pure power law in that axis."""
    L, gN, gD, gR, h, H = g.L, g.gN, g.gD, g.gR, _H, _H2

    def slope(lN, lD):
        if axis == "D":
            return -(L(lN, lD + h, gR) - L(lN, lD - h, gR)) / (2 * h)
        return -(L(lN + h, lD, gR) - L(lN - h, lD, gR)) / (2 * h)

    with np.errstate(all="ignore"):
        if axis == "D":
            f0, fp, fm = (np.log(slope(gN, gD + s)) for s in (0.0, H, -H))
        else:
            f0, fp, fm = (np.log(slope(gN + s, gD)) for s in (0.0, H, -H))
    return (fp - 2 * f0 + fm) / H**2


def _where(msg: str, bad: np.ndarray, lN: np.ndarray, lD: np.ndarray, r: np.ndarray) -> str:
    i = np.flatnonzero(bad.ravel())[0]
    n, d, rr = np.exp(lN.ravel()[i]) * BILLION, np.exp(lD.ravel()[i]) * BILLION, r.ravel()[i]
    frac = bad.mean()
    return f"{msg}; e.g. at N={n:.3g}, D={d:.3g} tokens, r={rr:.3g} ({frac:.0%} of the grid)"
