"""The CPT dynamics law in the registry: one formula for numpy and PyTensor, the variants' relations."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_dcpt.laws.dynamics import DYNAMICS_LAWS, VARIANTS
from bayes_dcpt.laws.registry import LAWS, get_law, list_laws


def _inputs(rng, n=40):
    return {"S1pt": rng.uniform(0.5, 2.0, n), "S1cpt": rng.uniform(0.0, 0.5, n), "S2pt": rng.uniform(-0.5, 1.0, n),
            "S2cpt": rng.uniform(-0.2, 0.3, n), "N": rng.uniform(1e-4, 2.0, n), "r_cpt": rng.uniform(0, 1, n),
            "is_domain": rng.integers(0, 2, n).astype(float)}


def _params(law, rng):
    p = {}
    for par in law.params:
        v = float(law.example_params[par.name])
        p[par.name] = v * rng.uniform(0.8, 1.2) if v != 0 else rng.normal(0, 0.1)
    return p


@pytest.mark.parametrize("name", DYNAMICS_LAWS)
def test_numpy_equals_pytensor(name, rng):
    import pytensor
    import pytensor.tensor as pt

    law = get_law(name)
    x = {k: v for k, v in _inputs(rng).items() if k in law.inputs}
    p = _params(law, rng)
    sym_x = {k: pt.dvector(k) for k in x}
    sym_p = {k: pt.dscalar(k) for k in p}
    fn = pytensor.function([*sym_x.values(), *sym_p.values()], law.formula(pt, sym_p, sym_x))
    got = fn(*x.values(), *p.values())
    want = law(np, {k: np.asarray(v) for k, v in p.items()}, x)
    assert np.allclose(got, want, rtol=1e-12, atol=0) and np.all(np.isfinite(want))


def test_registry_and_aliases():
    assert set(DYNAMICS_LAWS) == set(list_laws("cpt-dynamics"))
    assert get_law("dynamics") is LAWS["cpt-dynamics"] and get_law("dynamics-replay").name == "cpt-dynamics-replay"
    for name, (use_n, use_r) in VARIANTS.items():
        law = get_law(name)
        assert ("N" in law.inputs) == use_n and ("r_cpt" in law.inputs) == use_r


def test_the_papers_example_and_the_shift_term():
    law = get_law("cpt-dynamics")
    p = law.example_params  # FineWeb -> Knowledge-Pile, D_pt loss (laws.md 6.3)
    v = law.evaluate(p, S1pt=10.0, S1cpt=np.array([0.0, 1.0]), S2pt=2.0, S2cpt=np.array([0.0, 0.5]))
    hand = [3.057 + 0.490 * 10 ** -0.497 - 0.299 * 2.0,
            3.057 + 0.490 * 11 ** -0.497 - 0.299 * 2.0 - 0.298 * 0.5 + 0.366 * (1 - 29 ** -0.189)]
    assert np.allclose(v, hand, rtol=1e-12)


def test_variants_reduce_to_eq4(rng):
    x = {k: v for k, v in _inputs(rng).items()}
    eq4 = get_law("cpt-dynamics")
    p = _params(eq4, rng)
    base = eq4(np, p, x)
    # Eq. 7 with gamma1 = gamma2 = 0 and F = 0 is Eq. 4
    n = get_law("cpt-dynamics-n")(np, {**p, "gamma1": 0.0, "gamma2": 0.0, "F": 0.0, "gamma3": 0.3}, x)
    assert np.allclose(n, base)
    # Eq. 8 without replay factors: a1 = 0; the shift is scaled by g(r) (zero at r = 0)
    rp = get_law("cpt-dynamics-replay")
    at0 = rp(np, {**p, "a1": 0.0, "a2": 1.0}, {**x, "r_cpt": np.zeros_like(x["r_cpt"])})
    no_shift = eq4(np, {**p, "B": 0.0}, x)
    assert np.allclose(at0, no_shift)


def test_the_annealing_subscript_ambiguity_is_a_reparameterisation(rng):
    """C2 e^(a1 r_cpt) = (C2 e^a1) e^(-a1 r_pt): the equation's and the caption's readings are one family."""
    law = get_law("cpt-dynamics-replay")
    x = {k: v for k, v in _inputs(rng).items() if k in law.inputs}
    x["is_domain"] = np.ones_like(x["r_cpt"])
    p = _params(law, rng)
    eq = law(np, p, x)
    # the caption's reading, written out by hand with r_pt = 1 - r_cpt and (C2', a1') = (C2 e^a1, -a1)
    c2p, a1p = p["C2"] * np.exp(p["a1"]), -p["a1"]
    s1 = x["S1pt"] + x["S1cpt"]
    cap = (p["L0"] + p["A"] * s1 ** -p["alpha"] - p["C1"] * x["S2pt"]
           - c2p * x["S2cpt"] * np.exp(a1p * (1 - x["r_cpt"]))
           + p["B"] * (1 - (1 + p["E"] * x["S1cpt"]) ** -p["beta"]) * (np.exp(p["a2"] * x["r_cpt"]) - 1))
    assert np.allclose(eq, cap, rtol=1e-12)


def test_core_fit_refuses_the_dynamics_law(sim_df):
    from bayes_dcpt.errors import FitError
    from bayes_dcpt.fitting import fit

    with pytest.raises(FitError, match="not a law of"):
        fit(sim_df, law="cpt-dynamics")
