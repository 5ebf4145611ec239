"""Decisions under uncertainty: the D-CPT usages per posterior draw, checked against brute force."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

from bayes_dcpt import decide as dc
from bayes_dcpt.decide import compute as dc_compute
from bayes_dcpt.decide import limited as dc_limited
from bayes_dcpt.errors import BayesDCPTError, InputError, UnknownDomainError
from bayes_dcpt.laws.registry import BILLION, get_law
from bayes_dcpt.plan.simulate import World
from bayes_dcpt.posterior.draws import Posterior

N0 = 1e9
D0 = 1e10


def jittered_posterior(domains=("code",), S=120, spread=0.02, seed=0, law="L3", overrides=None,
                       n_params=(N0,)) -> tuple[Posterior, World]:
    """The simulate module's truth with every parameter jittered per draw (a synthetic posterior)."""
    world = World.default(domains=domains)
    rng = np.random.default_rng(seed)
    params = {}
    for (t, d), p in world.params.items():
        p = {**p, **(overrides or {}).get(t, {})}
        draws = {}
        for k, v in p.items():
            z = np.exp(rng.normal(0.0, spread, S))
            draws[k] = 1.0 + (v - 1.0) * z if k == "eta" else v * z
        params[(t, d)] = draws
    grid = pd.DataFrame([{"domain": d, "n_params": n} for d in domains for n in n_params])
    ref = grid.assign(loss_general=world.base_loss(grid, "general"), loss_domain=world.base_loss(grid, "domain"))
    noise = {t: {"sigma": np.full(S, 0.004), "tau": np.zeros(S)} for t in ("general", "domain")}
    return Posterior(get_law(law), params, noise, {"D_min": 0.1}, ref), world


@pytest.fixture(scope="module")
def post():
    return jittered_posterior()[0]


def brute_largest_feasible(post, domain, n, d, threshold, m=20001):
    r = np.linspace(0, 1, m)
    lg = post.surface("general", domain, n, d, r)
    ok = lg <= threshold
    idx = np.where(ok.any(1), m - 1 - np.argmax(ok[:, ::-1], axis=1), -1)
    return np.where(idx >= 0, r[np.maximum(idx, 0)], np.nan), r[1] - r[0]


# ------------------------------------------------------------------------------------------ usage 1
def test_tradeoff_matches_brute_force_grid(post):
    L0 = post.base_loss("code", N0)
    d = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.03)
    r = d.posterior["r_domain"].to_numpy()
    bf, h = brute_largest_feasible(post, "code", N0, D0, 1.03 * L0)
    assert np.isfinite(r).sum() > 0.8 * post.n_draws
    np.testing.assert_array_equal(np.isnan(r), np.isnan(bf))
    assert np.nanmax(np.abs(r - bf)) <= h
    # at r* the general loss sits exactly on the threshold (interior roots) and the domain loss is the law's
    ok = np.isfinite(r) & (r < 1)
    np.testing.assert_allclose(d.posterior["loss_general"][ok], 1.03 * L0, rtol=1e-9)
    np.testing.assert_allclose(d.posterior["general_increase"][ok], 0.03, atol=1e-9)
    ld = np.diagonal(post.surface("domain", "code", N0, D0, np.nan_to_num(r)))
    np.testing.assert_allclose(d.posterior["loss_domain"][ok], ld[ok], rtol=1e-12)
    assert d.posterior["monotone"].all()
    s = d.summary()
    assert s.table.loc["r_domain", "lo"] < s.table.loc["r_domain", "median"] < s.table.loc["r_domain", "hi"]
    assert s.table.loc["r_domain", "median"] == pytest.approx(np.nanmedian(r))
    assert s.counts["infeasible"] == int(np.isnan(bf).sum())


def test_relative_and_absolute_thresholds_agree(post):
    L0 = post.base_loss("code", N0)
    rel = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.02)
    ab = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.02 * L0, relative=False)
    np.testing.assert_allclose(rel.posterior["r_domain"], ab.posterior["r_domain"], atol=1e-12)
    np.testing.assert_allclose(ab.posterior["general_increase"].dropna(), 0.02 * L0, atol=1e-9)


def test_infeasible_and_always_satisfied_draws_are_counted_not_dropped():
    post, _ = jittered_posterior(S=300, spread=0.05, seed=3)
    # an uncertain irreducible loss: some draws' r=0 losses lie above other draws' r=1 losses
    post.params[("general", "code")]["E"] = 1.6 + np.random.default_rng(0).normal(0, 0.5, 300)
    lg = post.surface("general", "code", N0, D0, np.array([0.0, 1.0]))
    thr = float(np.median(lg))
    L0 = thr - 0.01
    d = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.01, relative=False, base_loss=L0)
    n_inf, n_all = int((lg[:, 0] > thr).sum()), int((lg[:, 1] <= thr).sum())
    assert n_inf > 10 and n_all > 10
    c = d.summary().counts
    assert (c["infeasible"], c["always_satisfied"], c["n_draws"]) == (n_inf, n_all, 300)
    p = d.posterior
    assert len(p) == 300 and p["r_domain"].isna().sum() == n_inf
    assert (p.loc[p["always_satisfied"], "r_domain"] == 1.0).all()
    assert (~p["feasible"]).sum() == n_inf
    # probabilities are over all draws: infeasible draws count against P(r* >= x)
    assert d.prob("r_domain", ">=", 0.0) == pytest.approx(1 - n_inf / 300)
    js = d.to_json()
    assert js["counts"]["infeasible"] == n_inf and js["r_domain"]["valid_share"] == pytest.approx(1 - n_inf / 300)
    # the interval over all draws, reading an infeasible draw as r* = 0 (no domain data), beside the table's r*
    r0 = p["r_domain"].fillna(0.0).to_numpy()
    row = d.summary().table.loc["r_domain_or_zero"]
    assert (row["lo"], row["median"], row["hi"]) == pytest.approx(tuple(np.quantile(r0, [0.05, 0.5, 0.95])))
    assert row["median"] < d.summary().table.loc["r_domain", "median"]
    # this many infeasible draws (well over 10%) is a CAUTION: a flag in the JSON, the interval in the note
    assert n_inf / 300 >= dc.results.INFEASIBLE_CAUTION
    caution = [n for n in d.summary().notes if n.startswith("CAUTION")]
    assert len(caution) == 1 and f"{n_inf / 300:.0%} of the posterior weight" in caution[0]
    assert caution == js["flags"] and js["r_domain_or_zero"]["lo"] == pytest.approx(row["lo"])
    from rich.console import Console

    con = Console(width=400, record=True)
    con.print(dc.decision_table(d))
    text = con.export_text()
    assert "FLAG" in text and "CAUTION" in text


def _p_holds(post, r, thr, w):
    lg = post.surface("general", "code", N0, D0, np.atleast_1d(r))
    return (w[:, None] * (lg <= thr)).sum(0)


@pytest.mark.parametrize("weighted", [False, True])
def test_risk_aware_r_is_the_largest_r_meeting_the_probability(weighted):
    post, _ = jittered_posterior(S=200, spread=0.03, seed=5)
    if weighted:
        post = post.reweight(np.random.default_rng(1).uniform(0.2, 1.0, post.n_draws))
    w = np.full(post.n_draws, 1 / post.n_draws) if post.weights is None else post.weights
    L0 = post.base_loss("code", N0)
    d = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.03, prob=0.8)
    ra = d.summary().risk_aware
    assert ra["feasible"] and ra["method"] == "exact"
    r = ra["r_domain"]
    assert _p_holds(post, r, 1.03 * L0, w)[0] >= 0.8 - 1e-12
    assert _p_holds(post, r + 1e-7, 1.03 * L0, w)[0] < 0.8
    # it is more cautious than the median answer
    assert r < d.summary().table.loc["r_domain", "median"]


def test_risk_aware_infeasible_when_probability_unreachable():
    post, _ = jittered_posterior(S=200, spread=0.05, seed=3)
    lg0 = post.surface("general", "code", N0, D0, [0.0])[:, 0]
    L0 = float(np.quantile(lg0, 0.5))  # half the draws cannot keep even r = 0 within the base loss
    d = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.0, base_loss=L0, prob=0.9)
    assert 0.4 < d.summary().counts["infeasible"] / post.n_draws < 0.6
    ra = d.summary().risk_aware
    assert not ra["feasible"] and np.isnan(ra["r_domain"])
    assert d.to_json()["risk_aware"]["r_domain"] is None


def test_non_monotone_draws_use_the_grid_and_still_find_the_largest_feasible_r():
    # C far below C0 at a small token budget: the general loss is not monotone in r
    post, _ = jittered_posterior(S=60, overrides={"general": {"C": 0.01, "B": 0.3}})
    D = 0.05e9
    lg = post.surface("general", "code", N0, D, np.linspace(0, 1, 201))
    assert (np.diff(lg, axis=1) < 0).any()
    thr = float(np.median(lg[:, 100]))
    d = dc.tradeoff(post, n_params=N0, tokens=D, max_general_increase=0.0, base_loss=thr)
    bf, h = brute_largest_feasible(post, "code", N0, D, thr)
    r = d.posterior["r_domain"].to_numpy()
    np.testing.assert_array_equal(np.isnan(r), np.isnan(bf))
    assert np.nanmax(np.abs(r - bf)) <= h
    assert (~d.posterior["monotone"]).sum() == d.summary().counts["non_monotone"] > 0
    assert d.summary().risk_aware["method"] == "grid"


def test_weights_are_respected(post):
    d_full = dc.tradeoff(post, n_params=N0, tokens=D0)
    idx = np.arange(0, post.n_draws, 2)
    w = np.zeros(post.n_draws)
    w[idx] = 1.0
    d_w = dc.tradeoff(post.reweight(w), n_params=N0, tokens=D0)
    d_sub = dc.tradeoff(post.subset(idx), n_params=N0, tokens=D0)
    a, b = d_w.summary().table, d_sub.summary().table
    for col in ("median", "lo", "hi", "mean"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-12)
    assert not np.allclose(d_full.summary().table.loc[a.index, "lo"], a["lo"])
    assert d_w.summary().counts["effective_draws (importance weights)"] == len(idx)
    assert d_w.prob("r_domain", ">=", 0.4) == pytest.approx(d_sub.prob("r_domain", ">=", 0.4))


def test_base_loss_given_or_from_the_reference():
    post, _ = jittered_posterior()
    ref = dc.tradeoff(post, n_params=N0, tokens=D0)
    L0 = post.base_loss("code", N0)
    same = dc.tradeoff(post, n_params=N0, tokens=D0, base_loss=L0)
    np.testing.assert_allclose(ref.posterior["r_domain"], same.posterior["r_domain"])
    per_dom = dc.tradeoff(post, n_params=N0, tokens=D0, base_loss={"code": L0 + 0.05})
    assert per_dom.inputs["base_loss"] == L0 + 0.05
    assert per_dom.summary().table.loc["r_domain", "median"] > ref.summary().table.loc["r_domain", "median"]
    assert ref.inputs["base_loss_source"] == "measured" and per_dom.inputs["base_loss_source"] == "given"
    # no base-model row at this size: the base-loss law predicts it per draw, and the decision says so
    far = dc.tradeoff(post, n_params=3e9, tokens=D0)
    assert far.inputs["base_loss_source"] == "predicted by the base-loss law in N from 1 probed size(s)"
    lo, hi = far.inputs["base_loss_interval"]
    assert lo < far.inputs["base_loss"] < hi
    assert far.posterior["base_loss"].std() > 0
    got = dc.tradeoff(post, n_params=3e9, tokens=D0, base_loss=L0)
    assert got.inputs["base_loss"] == L0 and got.inputs["base_loss_source"] == "given"
    # no base row at all: a clear error that says how to fix it
    bare = replace(post, reference=post.reference.iloc[:0])
    with pytest.raises(BayesDCPTError, match=r"no base-model general loss.*pass the base model's measured loss"):
        dc.tradeoff(bare, n_params=3e9, tokens=D0)
    with pytest.raises(InputError, match="base_loss has no entry for domain 'code'"):
        dc.tradeoff(post, n_params=N0, tokens=D0, base_loss={"law": 2.0})


def test_zero_threshold_is_the_critical_ratio(post):
    d = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.0)
    L0 = post.base_loss("code", N0)
    ok = d.posterior["feasible"] & ~d.posterior["always_satisfied"]
    np.testing.assert_allclose(d.posterior.loc[ok, "loss_general"], L0, rtol=1e-10)


def test_critical_curve_equals_tradeoff_at_each_budget(post):
    toks = [2e9, 1e10, 5e10]
    cur = dc.critical_ratio_curve(post, n_params=N0, tokens_grid=toks, max_general_increase=0.03)
    s = cur.summary()
    assert list(s.table.index) == toks
    for D in toks:
        one = dc.tradeoff(post, n_params=N0, tokens=D, max_general_increase=0.03)
        got = cur.posterior[cur.posterior["tokens"] == D]["r_domain"].to_numpy()
        np.testing.assert_allclose(got, one.posterior["r_domain"], atol=1e-12)
        assert s.table.loc[D, "median"] == pytest.approx(one.summary().table.loc["r_domain", "median"])
        assert s.table.loc[D, "risk_aware"] == pytest.approx(one.summary().risk_aware["r_domain"])
        assert s.table.loc[D, "risk_aware_one_run"] == pytest.approx(one.summary().risk_aware["one_run"]["r_domain"],
                                                                     nan_ok=True)
    # more tokens lower the general loss at fixed r here, so the critical ratio rises with D
    assert s.table["median"].is_monotonic_increasing
    js = cur.to_json()
    assert len(js["curve"]) == 3 and {"tokens", "median", "lo", "hi"} <= set(js["curve"][0])


# ------------------------------------------------------------------------------------------ usage 2
def test_limited_data_closed_form_matches_brute_force():
    post, _ = jittered_posterior(S=150, spread=0.1, seed=2)
    thr = dc.limited_data(post, n_params=N0, domain_tokens=1e8).posterior["interior_max_domain_tokens"]
    Dd = float(np.median(thr))  # half the draws have an interior optimum
    d = dc.limited_data(post, n_params=N0, domain_tokens=Dd)
    p = d.posterior
    assert 20 < p["interior"].sum() < 130
    np.testing.assert_array_equal(p["interior"], Dd < thr)
    r = np.linspace(1e-4, 1, 100001)
    f = post.surface("domain", "code", N0, Dd / r, r)
    bf = r[np.argmin(f, axis=1)]
    assert np.max(np.abs(p["r_domain"] - bf)) < 2e-4
    np.testing.assert_array_equal(p["interior"], bf < 1)
    assert (p.loc[~p["interior"], "r_domain"] == 1.0).all()
    np.testing.assert_allclose(p["tokens_total"], Dd / p["r_domain"])
    # the predicted domain loss is the minimum of the brute-force curve
    np.testing.assert_allclose(p["loss_domain"], f.min(axis=1), rtol=1e-7)
    assert d.summary().counts["interior"] == int(p["interior"].sum())
    prob = d.summary().probabilities["interior_optimum"]
    assert prob.value == pytest.approx(p["interior"].mean()) and prob.statement == "P(interior optimum r* < 1)"
    assert d.to_json()["probabilities"]["interior_optimum"]["value"] == pytest.approx(prob.value)


def test_limited_data_interior_condition_formula():
    post, world = jittered_posterior(S=1, spread=0.0)
    p = world.params[("domain", "code")]
    thr = (p["B"] * (p["eta"] + p["beta"]) * (1 + p["eps"]) ** (p["gamma"] + 1) / (p["gamma"] * p["C"])) ** (
        1 / p["beta"]) * BILLION
    inside = dc.limited_data(post, n_params=N0, domain_tokens=0.5 * thr).posterior.iloc[0]
    outside = dc.limited_data(post, n_params=N0, domain_tokens=2.0 * thr).posterior.iloc[0]
    assert inside["interior"] and inside["r_domain"] < 1
    assert not outside["interior"] and outside["r_domain"] == 1.0
    assert inside["interior_max_domain_tokens"] == pytest.approx(thr)
    # the derivative of L(r) = E + A/N^a + B r^(eta+beta)/Dd^beta + C/(r+eps)^gamma vanishes at r*
    r, Dd = inside["r_domain"], 0.5 * thr / BILLION
    g = p["B"] * (p["eta"] + p["beta"]) * r ** (p["eta"] + p["beta"] - 1) / Dd ** p["beta"] - p["gamma"] * p["C"] / (
        r + p["eps"]) ** (p["gamma"] + 1)
    assert abs(g) < 1e-9


def test_limited_data_numeric_path_agrees_with_closed_form():
    post, _ = jittered_posterior(S=80, spread=0.1, seed=4)
    Dd = 1.2e8
    r_cf, int_cf, _ = dc_limited._limited_l3(post, "code", Dd)
    grid = np.unique(np.concatenate([np.geomspace(1e-4, 0.02, 40), np.linspace(0.02, 1.0, 197)]))
    r_num, int_num = dc_limited._limited_numeric(post, "code", N0, Dd, grid)
    np.testing.assert_array_equal(int_cf, int_num)
    np.testing.assert_allclose(r_num, r_cf, atol=2e-6)


def test_limited_data_for_a_law_without_the_closed_form_uses_the_numeric_path():
    law = get_law("L7")
    S = 30
    rng = np.random.default_rng(0)
    ex = dict(law.example_params)
    params = {("domain", "code"): {k: v * np.exp(rng.normal(0, 0.05, S)) for k, v in ex.items()}}
    post = Posterior(law, params, {"domain": {"sigma": np.full(S, 0.01), "tau": np.zeros(S)}})
    d = dc.limited_data(post, n_params=N0, domain_tokens=5e7)
    assert d.inputs["method"].startswith("numerical")
    r = np.linspace(1e-4, 1, 50001)
    bf = r[np.argmin(post.surface("domain", "code", N0, 5e7 / r, r), axis=1)]
    assert np.max(np.abs(d.posterior["r_domain"] - bf)) < 1e-4


# ------------------------------------------------------------------------------------------ usage 3
PAPER = {"a": 0.6252, "b": 0.3748, "G": 4.1282, "N_opt": 15.54, "D_opt": 0.536, "C": 5e19}


def _paper_constants():
    # any (A, alpha, B0, beta) with beta/(alpha+beta) = 0.6252 and G = 4.1282 reproduces appendix G.3
    alpha, beta = 0.3748 * 0.7, 0.6252 * 0.7
    B0 = 0.9
    A = PAPER["G"] ** (alpha + beta) * beta * B0 / alpha
    return A, alpha, B0, beta


def test_allocation_constants_reproduce_the_paper():
    A, alpha, B0, beta = _paper_constants()
    k = dc.allocation_constants(A, alpha, B0, beta)
    assert float(k["a"]) == pytest.approx(PAPER["a"], abs=5e-5)
    assert float(k["b"]) == pytest.approx(PAPER["b"], abs=5e-5)
    assert float(k["G"]) == pytest.approx(PAPER["G"], rel=1e-6)
    K = PAPER["C"] / 6 / 1e18
    assert float(k["G"] * K ** k["a"]) == pytest.approx(PAPER["N_opt"], abs=0.005)
    assert float(K ** k["b"] / k["G"]) == pytest.approx(PAPER["D_opt"], abs=0.0005)


def test_compute_allocation_reproduces_the_paper_through_a_posterior():
    A, alpha, B0, beta = _paper_constants()
    r0, eta = 0.5, 1.4
    p = {"E": 1.0, "A": A, "alpha": alpha, "B": B0 / r0**eta, "beta": beta, "gamma": 0.5, "eps": 0.1, "eta": eta,
         "C": 0.5}
    post = Posterior(get_law("L3"), {("domain", "law"): {k: np.array([v]) for k, v in p.items()}},
                     {"domain": {"sigma": np.array([0.01]), "tau": np.array([0.0])}})
    d = dc.compute_allocation(post, flops=PAPER["C"], r_domain=r0)
    row = d.posterior.iloc[0]
    assert row["n_params_opt"] / 1e9 == pytest.approx(PAPER["N_opt"], abs=0.005)
    assert row["tokens_opt"] / 1e9 == pytest.approx(PAPER["D_opt"], abs=0.0005)
    assert row["G"] == pytest.approx(PAPER["G"], rel=1e-6) and row["a"] == pytest.approx(PAPER["a"], abs=5e-5)
    assert 6 * row["n_params_opt"] * row["tokens_opt"] == pytest.approx(PAPER["C"], rel=1e-12)


def test_compute_closed_form_matches_scipy(post):
    C = 3e20
    d = dc.compute_allocation(post, flops=C, r_domain=0.4)
    for s in range(0, post.n_draws, 12):
        p = {k: v[s] for k, v in post.param_draws("domain", "code").items()}

        def loss(u, p=p):
            N = np.exp(u)
            return float(get_law("L3").evaluate(p, n_params=N, tokens=C / (6 * N), r=0.4))

        res = minimize_scalar(loss, bounds=(np.log(1e6), np.log(1e14)), method="bounded",
                              options={"xatol": 1e-10})
        assert d.posterior["n_params_opt"][s] == pytest.approx(np.exp(res.x), rel=1e-4)
        assert d.posterior["loss_domain"][s] == pytest.approx(res.fun, rel=1e-10)


def test_compute_numeric_path_for_a_law_without_chinchilla_form_matches_scipy():
    law = get_law("L5")
    S = 12
    rng = np.random.default_rng(0)
    params = {("domain", "x"): {k: v * np.exp(rng.normal(0, 0.05, S)) for k, v in law.example_params.items()}}
    post = Posterior(law, params, {"domain": {"sigma": np.full(S, 0.01), "tau": np.zeros(S)}})
    C = 1e20
    d = dc.compute_allocation(post, flops=C, r_domain=0.6)
    assert d.inputs["method"].startswith("numerical") and d.posterior["a"].isna().all()
    for s in range(S):
        p = {k: v[s] for k, v in params[("domain", "x")].items()}

        def loss(u, p=p):
            N = np.exp(u)
            return float(law.evaluate(p, n_params=N, tokens=C / (6 * N), r=0.6))

        res = minimize_scalar(loss, bounds=(np.log(1e6), np.log(1e16)), method="bounded", options={"xatol": 1e-10})
        assert d.posterior["n_params_opt"][s] == pytest.approx(np.exp(res.x), rel=1e-4)


def test_compute_jointly_over_r_matches_brute_force():
    # a D term that grows with r faster than the ratio term falls (C << C0): an interior optimal r
    post, _ = jittered_posterior(S=40, spread=0.03, overrides={"domain": {"C": 0.5, "B": 0.3}})
    C = 1e18
    d = dc.compute_allocation(post, flops=C)
    r = np.unique(np.concatenate([np.geomspace(1e-4, 1e-2, 200), np.linspace(0.01, 1, 4000)]))
    c = dc_compute._chinchilla_consts(post, "domain", "code", r[None, :])
    L = dc_compute._optimum_closed(c, C)["loss"]
    bf = r[np.argmin(L, axis=1)]
    got = d.posterior["r_domain"].to_numpy()
    assert ((got > 0.05) & (got < 0.95)).mean() > 0.5
    assert np.max(np.abs(got - bf)) < 1e-3
    np.testing.assert_allclose(d.posterior["loss_domain"], L.min(axis=1), rtol=1e-6)
    assert d.summary().counts["degenerate"] == 0


def test_compute_jointly_with_monotone_domain_loss_puts_r_at_one(post):
    d = dc.compute_allocation(post, flops=1e21)
    assert (d.posterior["r_domain"] == 1.0).all()
    assert d.summary().counts["r* at the upper end of the grid"] == post.n_draws
    # the general loss falls with its own share 1 - r_domain: optimising it puts r_domain at 0
    g = dc.compute_allocation(post, flops=1e21, target="general")
    assert (g.posterior["r_domain"] == 0.0).all() and g.inputs["target"] == "general"
    assert g.posterior["loss_general"].notna().all()


def test_compute_degenerate_ratio_is_flagged():
    post, _ = jittered_posterior(S=10)
    d = dc.compute_allocation(post, flops=1e20, r_domain=0.0)  # B0 = B * 0^eta = 0: no finite optimum
    assert d.posterior["degenerate"].all() and d.posterior["n_params_opt"].isna().all()
    assert d.summary().counts["degenerate"] == 10


def test_compute_cross_domain_law_closed_form_matches_numeric():
    law = get_law("cross-domain")
    S = 15
    rng = np.random.default_rng(3)
    ex = dict(law.example_params)
    p = {k: v * np.exp(rng.normal(0, 0.05, S)) for k, v in ex.items()}
    p["K"] = np.full(S, 2.0)
    post = Posterior(law, {("domain", "music"): p}, {"domain": {"sigma": np.full(S, 0.01), "tau": np.zeros(S)}})
    d = dc.compute_allocation(post, flops=1e20, r_domain=0.7)
    assert d.inputs["method"].startswith("closed form")
    N, _, loss = dc_compute._numeric_n_opt(post, "domain", "music", 1e20, np.full(S, 0.7))
    np.testing.assert_allclose(d.posterior["n_params_opt"], N, rtol=1e-5)
    np.testing.assert_allclose(d.posterior["loss_domain"], loss, rtol=1e-10)


# ------------------------------------------------------------------------------------------ several domains
def test_several_domains_answer_per_domain():
    post, _ = jittered_posterior(domains=("code", "law"), S=50)
    ds = dc.tradeoff(post, n_params=N0, tokens=D0)
    assert isinstance(ds, dc.DecisionSet) and set(ds) == {"code", "law"}
    one = dc.tradeoff(post, domain="law", n_params=N0, tokens=D0)
    assert isinstance(one, dc.Decision)
    np.testing.assert_allclose(ds["law"].posterior["r_domain"], one.posterior["r_domain"])
    assert not np.allclose(ds["law"].posterior["r_domain"], ds["code"].posterior["r_domain"], equal_nan=True)
    tab = ds.summary()
    assert set(tab["domain"]) == {"code", "law"} and "median" in tab
    js = ds.to_json()
    assert set(js["domains"]) == {"code", "law"} and "r_domain" in js["domains"]["law"]
    from rich.console import Console

    con = Console(record=True, width=200)
    con.print(dc.decision_table(ds))
    text = con.export_text()
    assert "code" in text and "law" in text and "risk-aware" in text
    for usage, kw in (("limited-data", {"n_params": N0, "domain_tokens": 1e9}), ("compute", {"flops": 1e20}),
                      ("critical-curve", {"n_params": N0, "tokens_grid": [1e9, 1e10]})):
        res = dc.optimize(post, usage, **kw)
        assert isinstance(res, dc.DecisionSet) and set(res) == {"code", "law"}
    with pytest.raises(UnknownDomainError, match="music"):
        ds["music"]


# ------------------------------------------------------------------------------------------ dispatch, json, plots
def test_optimize_dispatches_and_converts_cli_inputs(post):
    a = dc.optimize(post, "tradeoff", n_params=N0, tokens=D0, max_general_increase=0.03)
    b = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.03)
    np.testing.assert_allclose(a.posterior["r_domain"], b.posterior["r_domain"])
    c = dc.optimize(post, "limited-data", n_params=N0, tokens=2e8)
    assert c.inputs["domain_tokens"] == 2e8
    e = dc.optimize(post, "compute", n_params=N0, tokens=D0, r_domain=0.5)
    assert e.inputs["flops"] == pytest.approx(6 * N0 * D0)
    assert dc.usage_inputs("compute") == ("domain", "flops", "r_domain", "target")
    assert dc.optimize(post, "critical_curve", n_params=N0, tokens_grid=[D0]).usage == "critical-curve"


def test_to_json_is_serialisable_and_has_the_cli_fields(post):
    for d in (dc.tradeoff(post, n_params=N0, tokens=D0), dc.limited_data(post, n_params=N0, domain_tokens=1e8),
              dc.compute_allocation(post, flops=1e20, r_domain=0.5)):
        js = json.loads(json.dumps(d.to_json(), allow_nan=False))
        assert set(js["r_domain"]) >= {"median", "lo", "hi"}
        assert js["r_domain"]["lo"] <= js["r_domain"]["median"] <= js["r_domain"]["hi"]
        assert "loss_domain" in js and js["inputs"]["domain"] == "code" and js["counts"]["n_draws"] == post.n_draws
    js = dc.tradeoff(post, n_params=N0, tokens=D0).to_json(ci=0.5)
    assert js["ci"] == 0.5 and "loss_general" in js and js["risk_aware"]["prob"] == 0.9


def _lines(ax):
    return [ln for ln in ax.get_lines()]


def test_tradeoff_plot_has_the_expected_artists(post):
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    d = dc.tradeoff(post, n_params=N0, tokens=D0, max_general_increase=0.03)
    fig = d.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    hist, inc, dom = fig.axes
    assert len(hist.patches) > 0  # the r* posterior histogram
    med = d.summary().table.loc["r_domain", "median"]
    # threshold: a dashed horizontal line at 3 %; r*: a dotted vertical line at the median on every panel
    thr = [ln for ln in _lines(inc) if ln.get_linestyle() == "--"]
    assert thr and np.allclose(thr[0].get_ydata(), 3.0)
    for ax in (hist, inc, dom):
        vl = [ln for ln in _lines(ax) if ln.get_linestyle() == ":"]
        assert vl and np.allclose(vl[0].get_xdata(), med)
        assert "r_domain" in ax.get_xlabel() or ax is not dom
    assert any(isinstance(c, PolyCollection) for c in inc.collections)  # the credible band
    assert "%" in inc.get_ylabel() and "nats" in dom.get_ylabel()
    assert any(ln.get_linestyle() == "-." for ln in _lines(inc))  # the risk-aware r
    # where one run crosses: a step outline over the histogram holding the whole probability
    from matplotlib.patches import StepPatch

    steps = [p for p in hist.patches if isinstance(p, StepPatch)]
    assert len(steps) == 1 and "one run" in steps[0].get_label()
    assert steps[0].get_data().values.sum() == pytest.approx(1.0, abs=0.01)
    fig.savefig(__import__("io").BytesIO(), format="png")


def test_other_plots_render(post):
    from matplotlib.figure import Figure

    figs = [dc.limited_data(post, n_params=N0, domain_tokens=1e8).plot(),
            dc.compute_allocation(post, flops=1e20, r_domain=0.5).plot(),
            dc.compute_allocation(post, flops=1e20).plot(),
            dc.critical_ratio_curve(post, n_params=N0, tokens_grid=[1e9, 1e10, 1e11]).plot(ci=0.8)]
    for f in figs:
        assert isinstance(f, Figure)
        f.savefig(__import__("io").BytesIO(), format="png")
    assert len(figs[2].axes) == 2 and len(figs[1].axes) == 1
    assert figs[1].axes[0].get_xscale() == "log" and "parameters" in figs[1].axes[0].get_xlabel()
    curve_ax = figs[3].axes[0]
    assert "tokens" in curve_ax.get_xlabel() and len(curve_ax.collections) >= 1


# ------------------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: dc.tradeoff(p, n_params=N0, tokens=-1e9), "tokens must be > 0"),
        (lambda p: dc.tradeoff(p, n_params=0, tokens=D0), "n_params must be > 0"),
        (lambda p: dc.tradeoff(p, n_params=N0, tokens=D0, max_general_increase=-0.01), "max_general_increase must"),
        (lambda p: dc.tradeoff(p, n_params=N0, tokens=D0, max_general_increase=float("nan")), "must be finite"),
        (lambda p: dc.tradeoff(p, n_params=N0, tokens=D0, prob=1.0), r"prob must be in \(0, 1\)"),
        (lambda p: dc.tradeoff(p, n_params="big", tokens=D0), "n_params must be a number"),
        (lambda p: dc.tradeoff(p, n_params=N0, tokens=D0, base_loss=-2.0), "base_loss must be > 0"),
        (lambda p: dc.limited_data(p, n_params=N0, domain_tokens=0), "domain_tokens must be > 0"),
        (lambda p: dc.compute_allocation(p, flops=-5), "flops must be > 0"),
        (lambda p: dc.compute_allocation(p, flops=1e20, r_domain=1.5), r"r_domain must be in \[0, 1\]"),
        (lambda p: dc.compute_allocation(p, flops=1e20, target="both"), "target must be"),
        (lambda p: dc.critical_ratio_curve(p, n_params=N0, tokens_grid=[]), "at least one token budget"),
        (lambda p: dc.critical_ratio_curve(p, n_params=N0, tokens_grid=[1e9, -1]), "tokens_grid must be > 0"),
        (lambda p: dc.optimize(p, "best", n_params=N0), "unknown usage 'best'"),
        (lambda p: dc.optimize(p, "tradeoff", n_params=N0, tokens=D0, flops=1e20), r"does not take \['flops'\]"),
        (lambda p: dc.optimize(p, "tradeoff", n_params=N0), r"needs \['tokens'\]"),
        (lambda p: dc.tradeoff(p, n_params=N0, tokens=D0).summary(ci=1.5), r"ci must be in \(0, 1\)"),
        (lambda p: dc.tradeoff(p, n_params=N0, tokens=D0).prob("r_domain", "~", 1), "op must be one of"),
        (lambda p: dc.tradeoff(p, n_params=N0, tokens=D0).prob("nope", ">", 1), "unknown quantity 'nope'"),
    ],
)
def test_bad_inputs_give_our_errors(post, call, match):
    with pytest.raises(InputError, match=match):
        call(post)


def test_unknown_domain_and_missing_target_are_clear(post):
    with pytest.raises(UnknownDomainError, match=r"unknown domain 'music'.*code"):
        dc.tradeoff(post, domain="music", n_params=N0, tokens=D0)
    dom_only = Posterior(post.law, {("domain", "code"): post.params[("domain", "code")]},
                         {"domain": post.noise["domain"]}, reference=post.reference)
    with pytest.raises(InputError, match="needs the general loss"):
        dc.tradeoff(dom_only, n_params=N0, tokens=D0)
    # the domain-only fit still answers the usages that need only the domain loss
    assert dc.limited_data(dom_only, n_params=N0, domain_tokens=1e8).posterior["loss_general"].isna().all()
    # and a general-only fit answers the trade-off without domain-loss predictions
    gen_only = Posterior(post.law, {("general", "code"): post.params[("general", "code")]},
                         {"general": post.noise["general"]}, reference=post.reference)
    d = dc.tradeoff(gen_only, n_params=N0, tokens=D0)
    assert d.posterior["loss_domain"].isna().all() and "loss_domain" not in d.summary().table.index
    assert len(d.plot().axes) == 2


# ------------------------------------------------------------------------------------------ bootstrap posterior
def test_bootstrap_to_posterior_goes_through_the_decisions(sim_df, world):
    from bayes_dcpt.fitting.pointfit import bootstrap, fit_point

    point = fit_point(sim_df, "dcpt", "both", n_grid=300, n_starts=1)
    b = bootstrap(sim_df, "dcpt", "both", n=4, point=point)
    post = b.to_posterior()
    assert post.n_draws == 4 and set(post.targets) == {"general", "domain"} and post.domains == ["code"]
    np.testing.assert_allclose(post.params[("general", "code")]["alpha"], b.draws[("general", "code")]["alpha"])
    # sigma is the RMS log residual of each refit: close to the simulated noise (0.002)
    assert np.all((post.noise["general"]["sigma"] > 0.001) & (post.noise["general"]["sigma"] < 0.004))
    assert np.all(post.noise["domain"]["tau"] == 0)
    base = sim_df[sim_df["tokens"] == 0]
    measured = float(base.loc[base["n_params"] == 1e9, "loss_general"].iloc[0])
    assert post.base_loss("code", 1e9) == pytest.approx(measured)
    d = dc.tradeoff(post, n_params=1e9, tokens=5e9, max_general_increase=0.03)
    assert d.n_draws == 4 and d.summary().counts["n_draws"] == 4
    one = point.to_posterior(sim_df)
    assert one.n_draws == 1
    truth_post, _ = jittered_posterior(S=1, spread=0.0)
    r_true = dc.tradeoff(truth_post, n_params=1e9, tokens=5e9, base_loss=post.base_loss("code", 1e9)).posterior
    r_point = dc.tradeoff(one, n_params=1e9, tokens=5e9).posterior
    assert float(r_point["r_domain"].iloc[0]) == pytest.approx(float(r_true["r_domain"].iloc[0]), abs=0.03)
    with pytest.raises(BayesDCPTError, match="needs the bootstrapped data"):
        type(b)(b.point, b.draws, b.by, b.n, b.seconds).to_posterior()


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_critical_ratio_on_mixinglaws_cpt(mixinglaws_df):
    """Pythia-70M CPT on Pile + Python: where does the general loss after 10k steps return to the base loss?"""
    from bayes_dcpt.fitting.pointfit import bootstrap, fit_point

    df = mixinglaws_df
    point = fit_point(df, "dcpt", "general")
    post = bootstrap(df, "dcpt", "general", n=16, point=point, seed=0).to_posterior()
    N = float(df["n_params"].iloc[0])
    last = df[df["tokens"] == df["tokens"].max()]
    D = float(last["tokens"].iloc[0])
    base = float(df.loc[df["tokens"] == 0, "loss_general"].iloc[0])
    assert base == pytest.approx(2.8734, abs=1e-4)
    d = dc.tradeoff(post, n_params=N, tokens=D, max_general_increase=0.0)
    s = d.summary()
    med, lo, hi = s.table.loc["r_domain", ["median", "lo", "hi"]]
    assert s.counts["infeasible"] == 0 and s.counts["always_satisfied"] == 0
    assert lo < med < hi and hi - lo < 0.1
    # between the measured ratios that ended clearly below (0.625) and above (0.75) the base loss
    end = last.set_index("r_domain")["loss_general"]
    assert end[0.625] < base < end[0.75] and 0.625 < lo and hi < 0.75
    # close to the Data Mixing Laws paper's prediction (python share 0.715) ...
    assert abs(med - 0.715) < 0.03
    # ... and the measured final general loss of that run (2.8721, below the base) is inside the posterior
    # predictive interval of the same posterior, although the law's r* lies a little below 0.715
    row = last[np.isclose(last["r_domain"], 0.71484375)]
    pred = post.predict(row[["domain", "n_params", "tokens", "r_domain"]], kind="predictive")
    obs = float(row["loss_general"].iloc[0])
    assert obs == pytest.approx(2.8721, abs=1e-4)
    assert pred["loss_general_lo"].iloc[0] < obs < pred["loss_general_hi"].iloc[0]
    point_r = dc.tradeoff(point.to_posterior(df), n_params=N, tokens=D, max_general_increase=0.0)
    assert float(point_r.posterior["r_domain"].iloc[0]) == pytest.approx(med, abs=0.01)
