"""The related laws the D-CPT paper builds on or compares with, as :class:`Law` objects.

Chinchilla (Hoffmann et al. 2022) and Kaplan et al. (2020) for model size and tokens; the cross-lingual
law of Zheng et al. (2024); the two-domain Data Mixing Law (Ye et al.) and BiMix (Ge et al.) for mixture
ratios; and the CMR laws of Gu et al. (2024) for the critical mixture ratio along a CPT run.
:mod:`bayes_dcpt.laws.registry` registers them; nothing here is registered on import.
"""

from __future__ import annotations

from bayes_dcpt.laws.base import BILLION, TINY, Law, n_term, power
from bayes_dcpt.laws.priors import E_GRID, coef, core_params, expo, real

__all__ = ["related_laws"]


# -------------------------------------------------------------------------------------------- formulas
def _f_chinchilla(xp, p, x):
    return p["E"] + n_term(xp, p, x) + p["B"] * power(xp, x["D"], -p["beta"])


def _f_kaplan(xp, p, x):
    # L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D
    inner = power(xp, p["N_c"] / x["N"], p["alpha_N"] / p["alpha_D"]) + p["D_c"] / x["D"]
    return power(xp, inner, p["alpha_D"])


def _f_cross_lingual(xp, p, x):
    return p["E"] + n_term(xp, p, x) + p["B"] / (power(xp, x["D"], p["beta"]) * power(xp, x["N"], p["g"]))


def _f_mixing(xp, p, x):
    return p["c"] + p["k"] * xp.exp(p["t"] * x["r"])


def _f_bimix(xp, p, x):
    ratio = p["A"] * power(xp, xp.maximum(x["r"], TINY), -p["alpha"])
    return ratio * (p["B"] * power(xp, x["s"], -p["beta"]) + p["C"])


def _f_cmr_ratio(xp, p, x):
    return p["a"] * power(xp, xp.maximum(x["R"], TINY), p["s"]) + p["b"]


def _f_cmr_critical(xp, p, x):
    return p["a4"] * power(xp, x["T"], p["s4"]) + p["b3"]


def _f_cmr_dom(xp, p, x):
    return p["a1"] * power(xp, x["T"], p["s1"]) + p["b1"]


def _f_cmr_gen(xp, p, x):
    return p["a2"] * power(xp, x["T"], p["s2"]) + p["a3"] * power(xp, x["T"], p["s3"]) + p["b2"]


def related_laws() -> list[Law]:
    """Chinchilla, Kaplan, cross-lingual, Data Mixing, BiMix and the four CMR laws, in that order."""
    cmr = "Gu et al., CMR scaling law, EMNLP 2024 (arXiv 2407.17467)"
    return [
        Law("chinchilla", "E + A/N^alpha + B/D^beta", tuple(core_params()), ("N", "D"), _f_chinchilla, "chinchilla",
            "Hoffmann et al. 2022; Besiroglu et al. 2024 (Epoch replication)",
            {"E": 1.69, "A": 406.4 / BILLION**0.34, "alpha": 0.34, "B": 410.7 / BILLION**0.28, "beta": 0.28},
            linear=("E", "A", "B"), level=("E", "A"), power_terms={"A": ("alpha", "N"), "B": ("beta", "D")}),
        Law("kaplan", "[(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
            (coef("N_c", "critical model size (billions)", 1.0, (0.0, 5.0, 10.0)),
             coef("D_c", "critical data size (billions)", 1.0, (0.0, 5.0, 10.0)),
             expo("alpha_N", "model-size exponent", 0.076, (0.05, 0.1)),
             expo("alpha_D", "data exponent", 0.095, (0.05, 0.1))),
            ("N", "D"), _f_kaplan, "chinchilla", "Kaplan et al. 2020",
            {"N_c": 8.8e13 / BILLION, "D_c": 5.4e13 / BILLION, "alpha_N": 0.076, "alpha_D": 0.095}),
        Law("cross-lingual", "E + A/N^alpha + B/(D^beta N^g)",
            (*core_params(), expo("g", "joint N exponent of the D term", 0.08, (0.0, 0.1))), ("N", "D"),
            _f_cross_lingual, "chinchilla", "Zheng et al. 2024 (arXiv 2407.02118)",
            {"E": 1.55, "A": 420 / BILLION**0.40, "alpha": 0.40, "B": 433.3 / BILLION**0.28, "beta": 0.20, "g": 0.08}),
        Law("mixing", "c + k exp(t r)  (two-domain Data Mixing Law)",
            (coef("c", "floor", 0.5, E_GRID), coef("k", "amplitude", 0.3), real("t", "ratio rate")),
            ("r",), _f_mixing, "mixture", "Ye et al., Data Mixing Laws, ICLR 2025", {"c": 1.0, "k": 0.5, "t": -2.0}),
        Law("bimix", "(A/r^alpha)(B/s^beta + C)",
            (coef("A", "ratio amplitude", 1.0, (-1.0, 0.0, 1.0)), expo("alpha", "ratio exponent", 0.1),
             coef("B", "step amplitude", 1.0), expo("beta", "step exponent", 0.3), coef("C", "step floor", 1.0)),
            ("r", "s"), _f_bimix, "mixture", "Ge et al., BiMix (arXiv 2405.14908)",
            {"A": 1.0, "alpha": 0.05, "B": 5.0, "beta": 0.3, "C": 2.0}),
        Law("cmr-ratio", "a R^s + b  (loss against mixture ratio R at the last step)",
            (real("a", "amplitude"), real("s", "exponent"), real("b", "offset", 2.0)), ("R",), _f_cmr_ratio, "cmr",
            cmr, {"a": -0.1, "s": 0.5, "b": 1.55}, positive_output=True),
        Law("cmr-critical", "R_CMR(T) = a4 T^s4 + b3  (T in units of 0.2B tokens)",
            (real("a4", "amplitude"), real("s4", "exponent"), real("b3", "offset")), ("T",), _f_cmr_critical,
            "cmr", cmr, {"a4": 0.22524761, "s4": 0.26944345, "b3": -0.48139982}, positive_output=False),
        Law("cmr-domain-delta", "dL_dom(T) = a1 T^s1 + b1", (real("a1", "amplitude"), real("s1", "exponent"),
            real("b1", "offset")), ("T",), _f_cmr_dom, "cmr", cmr, {"a1": -0.1, "s1": 0.3, "b1": 0.0},
            positive_output=False),
        Law("cmr-general-delta", "dL_gen(T) = a2 T^s2 + a3 T^s3 + b2",
            (real("a2", "amplitude"), real("s2", "exponent"), real("a3", "amplitude 2"), real("s3", "exponent 2"),
             real("b2", "offset")), ("T",), _f_cmr_gen, "cmr", cmr,
            {"a2": 0.1, "s2": 0.2, "a3": -0.05, "s3": 0.4, "b2": 0.0}, positive_output=False),
    ]
