"""The planner: estimators, invariances, batches, budgets, targets, determinism, outputs."""

from __future__ import annotations

import itertools
import types

import matplotlib
import numpy as np
import pandas as pd
import pytest
from planner_helpers import jitter_posterior, smc_fixture

from bayes_dcpt import plan as planner
from bayes_dcpt.errors import BayesDCPTError, DataValidationError
from bayes_dcpt.plan.cost import CostModel
from bayes_dcpt.plan.information import (
    BlockNoise,
    Conditioner,
    Ensemble,
    is_information,
    mm_information,
    nmc_information,
)
from bayes_dcpt.plan.simulate import World

matplotlib.use("Agg")


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def linear_gaussian():
    """Draws theta ~ N(mu, Sigma), outputs f = X theta, target z = a^T theta."""
    rng = np.random.default_rng(1)
    P, K, S = 4, 6, 4000
    Lc = rng.normal(size=(P, P)) * 0.5
    Sig = Lc @ Lc.T + 0.2 * np.eye(P)
    th = rng.multivariate_normal(rng.normal(size=P), Sig, S)
    X = rng.normal(size=(K, P))
    a = np.array([0.0, 1.0, 0.0, -0.5])
    return {"th": th, "Sig": Sig, "X": X, "a": a, "F": th @ X.T, "z": th @ a, "sigma": 0.7}


@pytest.fixture(scope="module")
def world():
    return World.default(domains=("code",))


@pytest.fixture(scope="module")
def jpost(world):
    return jitter_posterior(world, S=1000, spread=0.01)


@pytest.fixture(scope="module")
def smc():
    return smc_fixture(seed=0, n_draws=800)


@pytest.fixture(scope="module")
def cands():
    return planner.candidates_from_menus(
        ["code"], [1e8, 3e8, 1e9], [1e9, 3e9], [0.1, 0.3, 0.5, 0.7, 0.9], n_checkpoints=6, first_fraction=0.1
    )


@pytest.fixture(scope="module")
def target():
    return planner.critical_ratio_target("code", 1e9, 3e10, max_general_increase=0.03, relative=False)


def _closed_form(X, Sig, a, R):
    Rinv = np.linalg.inv(R)
    u_t = 0.5 * np.linalg.slogdet(np.eye(len(R)) + Rinv @ X @ Sig @ X.T)[1]
    Spost = np.linalg.inv(np.linalg.inv(Sig) + X.T @ Rinv @ X)
    return u_t, 0.5 * np.log(a @ Sig @ a / (a @ Spost @ a)), a @ Spost @ a


# ---------------------------------------------------------------------------- 1. linear-Gaussian exactness
def test_mm_is_exact_for_linear_gaussian_with_the_draws_covariance(linear_gaussian):
    g = linear_gaussian
    R = g["sigma"] ** 2 * np.eye(6)
    Sig_hat = np.cov(g["th"], rowvar=False)
    u_t, u_z = mm_information(g["F"], R, g["z"])
    ct, cz, _ = _closed_form(g["X"], Sig_hat, g["a"], R)
    assert u_t == pytest.approx(ct, rel=1e-9)
    assert u_z == pytest.approx(cz, rel=1e-9)


def test_mm_matches_the_true_posterior_at_4000_draws(linear_gaussian):
    g = linear_gaussian
    R = g["sigma"] ** 2 * np.eye(6) + 0.3**2 * np.ones((6, 6))  # with a run offset
    ens = Ensemble.build(g["F"][None], R[None], g["z"])
    sc = Conditioner(ens).scores()
    ct, cz, vpost = _closed_form(g["X"], g["Sig"], g["a"], R)
    assert sc["U_theta"][0] == pytest.approx(ct, rel=1e-2)
    assert sc["U_z"][0] == pytest.approx(cz, rel=5e-2)
    assert sc["v_post"][0, 0] == pytest.approx(vpost, rel=5e-2)


# -------------------------------------------------------------------------------- 2. estimator agreement
def test_nmc_and_is_agree_with_the_exact_values(linear_gaussian):
    g = linear_gaussian
    noise = BlockNoise((np.arange(6),), np.full((4000, 1), g["sigma"]), np.zeros((4000, 1)))
    ct, cz, _ = _closed_form(g["X"], np.cov(g["th"], rowvar=False), g["a"], g["sigma"] ** 2 * np.eye(6))
    est, se = nmc_information(g["F"], noise, n_outer=400, seed=3)
    assert abs(est - ct) < 3 * se + 0.05  # NMC bias is O(1/M), M = 3999
    res = is_information(g["F"], noise, g["z"], n_sim=400, seed=4)
    assert abs(res["U_z_is"] - cz) < 3 * res["U_z_is_se"] + 0.02
    assert res["khat_median"] < 0.7


def test_nmc_is_an_upper_bound_check_of_the_gaussian_estimate_on_a_nonlinear_law(smc, cands):
    """EIG_G >= true EIG (the Gaussian maximises entropy): MM U_theta is not below NMC beyond MC error."""
    _, _, post = smc
    from bayes_dcpt.plan.candidates import checkpoint_frame, eval_checkpoints

    c = cands.iloc[[7]].reset_index(drop=True)
    fr = checkpoint_frame(c, eval_checkpoints(c))
    F = np.concatenate([post.mean_log_loss(fr, t) for t in ("general", "domain")], axis=1)
    k = len(fr)
    # fixed noise (posterior rms): with per-draw noise NMC would also count what y says about sigma and tau
    S = post.n_draws
    sig = np.stack(
        [np.full(S, np.sqrt(np.mean(post.noise[t]["sigma"] ** 2))) for t in ("general", "domain")], 1
    )
    tau = np.stack(
        [np.full(S, np.sqrt(np.mean(post.noise[t]["tau"] ** 2))) for t in ("general", "domain")], 1
    )
    noise = BlockNoise((np.arange(k), np.arange(k, 2 * k)), sig, tau)
    u_t, _ = mm_information(F, noise.mean_cov(), None)
    est, se = nmc_information(F, noise, n_outer=300, seed=0)
    assert u_t > est - 3 * se - 0.05


# ------------------------------------------------------------------------------------------ 3. invariances
def test_information_is_zero_when_the_law_does_not_vary():
    F = np.tile(np.linspace(1, 2, 5), (500, 1))
    z = np.random.default_rng(0).normal(size=500)
    u_t, u_z = mm_information(F, 0.01 * np.eye(5), z)
    assert u_t == pytest.approx(0.0, abs=1e-12)
    assert u_z == pytest.approx(0.0, abs=1e-12)


def test_information_is_unchanged_by_a_constant_shift(linear_gaussian):
    g = linear_gaussian
    R = g["sigma"] ** 2 * np.eye(6)
    a = mm_information(g["F"], R, g["z"])
    b = mm_information(g["F"] + 17.0, R, g["z"])
    assert a == pytest.approx(b, rel=1e-9)


def test_information_decreases_with_sigma_and_tau(linear_gaussian):
    g = linear_gaussian
    one = np.ones((6, 6))
    by_sigma = [mm_information(g["F"], s**2 * np.eye(6) + 0.1 * one, g["z"]) for s in (0.2, 0.5, 1.0, 3.0)]
    by_tau = [mm_information(g["F"], 0.25 * np.eye(6) + t**2 * one, g["z"]) for t in (0.0, 0.3, 1.0, 3.0)]
    for seq in (by_sigma, by_tau):
        assert all(x[0] > y[0] for x, y in itertools.pairwise(seq))
        assert all(x[1] > y[1] for x, y in itertools.pairwise(seq))


def test_adding_a_checkpoint_never_loses_information(jpost, target):
    c = pd.DataFrame(
        {
            "domain": "code",
            "n_params": 3e8,
            "tokens": 3e9,
            "r_domain": [0.4, 0.4],
            "checkpoints": ["3e8;1e9;2e9", "3e8;1e9;2e9;3e9"],
        }
    )
    plan = planner.suggest(jpost, c, target, k=1, verify_top=0)
    sc = plan.scores.sort_values("checkpoints", key=lambda s: s.str.len())
    assert sc["U_theta"].iloc[1] >= sc["U_theta"].iloc[0] - 1e-9
    assert sc["U_z"].iloc[1] >= sc["U_z"].iloc[0] - 1e-9
    assert sc["U_theta"].iloc[1] > sc["U_theta"].iloc[0]


def test_twice_the_cost_gives_half_the_score(jpost, cands, target):
    a = planner.suggest(
        jpost, cands, target, k=2, verify_top=0, cost_model=CostModel(mfu=0.4, overhead_hours=0)
    )
    b = planner.suggest(
        jpost, cands, target, k=2, verify_top=0, cost_model=CostModel(mfu=0.2, overhead_hours=0)
    )
    np.testing.assert_allclose(b.scores["gpu_hours"], 2 * a.scores["gpu_hours"])
    np.testing.assert_allclose(b.scores["score"], 0.5 * a.scores["score"])
    np.testing.assert_allclose(b.scores["U_z"], a.scores["U_z"])
    assert list(a.table["r_domain"]) == list(b.table["r_domain"])


# ---------------------------------------------------------------------------------- 4. diminishing returns
def test_conditioning_lowers_the_score_of_an_identical_probe(smc, cands, target):
    _, _, post = smc
    plan = planner.suggest(post, cands, target, k=3, verify_top=0, allow_repeats=True)
    first = plan.table.iloc[0]
    same = plan.scores[
        (plan.scores["n_params"] == first["n_params"])
        & (plan.scores["tokens"] == first["tokens"])
        & (plan.scores["r_domain"] == first["r_domain"])
    ].iloc[0]
    # the conditional information of a replicate after the first pick is below its unconditional value
    ens_plan = planner.suggest(post, cands.iloc[[int(same["row"]) - 1] * 1], target, k=2, verify_top=0)
    assert len(ens_plan.table) == 2 and ens_plan.table["repeat"].iloc[1]
    assert ens_plan.table["U_z"].iloc[1] < ens_plan.table["U_z"].iloc[0]
    assert ens_plan.table["U_theta"].iloc[1] < ens_plan.table["U_theta"].iloc[0]


def test_batch_has_no_duplicates_unless_noise_is_huge(world, cands, target):
    post = jitter_posterior(world, S=1000, spread=0.01)
    plan = planner.suggest(post, cands, target, k=4, verify_top=0, allow_repeats=True)
    assert not plan.table["repeat"].any()
    keys = plan.table[["n_params", "tokens", "r_domain"]].apply(tuple, axis=1)
    assert keys.nunique() == 4
    noisy = jitter_posterior(world, S=1000, spread=0.01, sigma=2.0, tau=2.0)
    plan2 = planner.suggest(noisy, cands, target, k=4, verify_top=0, allow_repeats=True)
    assert plan2.table["repeat"].any()


def test_batch_information_is_the_chain_of_conditional_gains(smc, cands, target):
    _, _, post = smc
    plan = planner.suggest(post, cands, target, k=4, verify_top=0)
    assert plan.info_batch == pytest.approx(plan.table["U_z"].sum(), rel=1e-6)
    assert (np.diff(plan.table["width_after_batch"]) <= 1e-12).all()


# ----------------------------------------------------------------------------------------------- 5. budget
@pytest.mark.parametrize("budget", [3.0, 10.0, 25.0, 80.0, 400.0])
def test_plan_never_exceeds_the_budget_and_beats_the_best_singleton(smc, cands, target, budget):
    _, _, post = smc
    plan = planner.suggest(post, cands, target, k=4, budget_gpu_hours=budget, verify_top=0)
    assert plan.total_gpu_hours <= budget + 1e-9
    assert plan.table["cum_gpu_hours"].max() <= budget + 1e-9 if len(plan.table) else True
    afford = plan.scores["gpu_hours"] <= budget
    if afford.any():
        assert plan.info_batch >= plan.scores.loc[afford, "U_z"].max() - 1e-9


def test_budget_below_the_cheapest_probe_stops_with_a_reason(jpost, cands, target):
    plan = planner.suggest(jpost, cands, target, k=3, budget_gpu_hours=0.01, verify_top=0)
    assert plan.table.empty and plan.stop
    assert "budget" in plan.stop_reasons[0]


def test_a_base_model_to_pretrain_is_paid_once_per_batch(world, target):
    post = jitter_posterior(world, S=600, spread=0.01, sizes=(1e8, 3e8, 1e9))
    c = planner.candidates_from_menus(["code"], [2e9], [1e9], [0.2, 0.5, 0.8], pretrain_tokens={2e9: 4e10})
    plan = planner.suggest(post, c, target, k=3, verify_top=0, allow_repeats=False)
    cm = CostModel()
    full = cm.gpu_hours(c)[0]
    assert plan.table["gpu_hours"].iloc[0] == pytest.approx(full)
    np.testing.assert_allclose(plan.table["gpu_hours"].iloc[1:], cm.hours_for(2e9, 1e9) + cm.overhead_hours)


# ---------------------------------------------------------------------------------------- 6. target awareness
def test_goal_information_ignores_directions_that_do_not_move_the_target():
    rng = np.random.default_rng(0)
    th = rng.normal(size=(3000, 2))
    th = (th - th.mean(0)) @ np.linalg.inv(
        np.linalg.cholesky(np.cov(th, rowvar=False))
    ).T  # exactly uncorrelated
    z = th[:, 1]
    xs = [(1.0, 0.0), (0.0, 0.5), (0.0, 2.0), (1.0, 1.0)]
    F = np.stack([np.outer(th @ np.array(x), np.ones(3)) for x in xs])  # each probe: 3 equal outputs
    R = np.tile(0.5 * np.eye(3), (len(xs), 1, 1))
    sc = Conditioner(Ensemble.build(F, R, z)).scores()
    assert sc["U_z"][0] < 1e-3 and sc["U_theta"][0] > 0.5
    assert int(np.argmax(sc["U_z"])) == 2
    assert sc["U_z"][2] > sc["U_z"][1] > sc["U_z"][0]


def test_different_targets_give_different_plans(jpost, cands):
    small = planner.loss_target(
        pd.DataFrame({"domain": ["code"], "n_params": [1e8], "tokens": [1e9], "r_domain": [0.1]}), "domain"
    )
    big = planner.loss_target(
        pd.DataFrame({"domain": ["code"], "n_params": [1e9], "tokens": [3e9], "r_domain": [0.9]}), "domain"
    )
    p1 = planner.suggest(jpost, cands, small, k=1, verify_top=0, kappa=0.0)
    p2 = planner.suggest(jpost, cands, big, k=1, verify_top=0, kappa=0.0)
    # the most informative probe sits near the target's ratio (and size, for the big target)
    assert p1.table["r_domain"].iloc[0] == 0.1
    assert p2.table["r_domain"].iloc[0] >= 0.7 and p2.table["n_params"].iloc[0] == 1e9
    # and the exact target configuration is among the top few of its own ranking
    top1 = p1.scores.nsmallest(5, "rank_score")[["n_params", "tokens", "r_domain"]].apply(tuple, axis=1)
    assert (1e8, 1e9, 0.1) in set(top1)


# ------------------------------------------------------------------------------------------- 7. determinism
def test_same_seed_same_plan_and_order_invariance(smc, cands, target):
    _, _, post = smc
    a = planner.suggest(post, cands, target, k=3, verify_top=4, seed=5)
    b = planner.suggest(post, cands, target, k=3, verify_top=4, seed=5)
    pd.testing.assert_frame_equal(a.table, b.table)
    shuffled = cands.sample(frac=1.0, random_state=11).reset_index(drop=True)
    c = planner.suggest(post, shuffled, target, k=3, verify_top=4, seed=5)
    pd.testing.assert_frame_equal(a.table.drop(columns="row"), c.table.drop(columns="row"))
    pd.testing.assert_frame_equal(a.scores.drop(columns="row"), c.scores.drop(columns="row"))


# ----------------------------------------------------------------------------------- verification, outputs
def test_top_candidates_are_verified_by_importance_reweighting(smc, cands, target):
    _, _, post = smc
    plan = planner.suggest(post, cands, target, k=2, verify_top=3, n_verify=100)
    checked = plan.scores[plan.scores["is_U_z"].notna()]
    assert len(checked) == 3
    assert set(checked["rank_score"]) == {1, 2, 3}
    assert (checked["is_U_z"] >= 0).all() and (checked["is_U_z_se"] > 0).all()
    assert checked["is_khat_median"].notna().all() and (checked["is_ess_median"] >= 1).all()
    assert plan.first_pick in ("mm", "is")


def test_plan_outputs(tmp_path, smc, cands, target):
    from matplotlib.figure import Figure
    from rich.console import Console

    _, _, post = smc
    plan = planner.suggest(post, cands, target, k=3, verify_top=2, stop_width=0.01)
    p = plan.to_csv(tmp_path / "plan.csv")
    back = pd.read_csv(p)
    assert len(back) == 3 and {
        "rank",
        "gpu_hours",
        "U_z",
        "U_theta",
        "U_z_per_gpu_hour",
        "width_after_probe",
        "width_after_batch",
        "pred_loss_general_lo",
        "pred_loss_domain_hi",
    } <= set(back.columns)
    assert (back["pred_loss_domain_lo"] < back["pred_loss_domain_hi"]).all()
    text = plan.summary()
    assert "stopping checks" in text and "tolerance" in text and "GPU-h" in text
    fig = plan.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    labels = " ".join(ax.get_xlabel() + ax.get_ylabel() for ax in fig.axes)
    assert "GPU-hours" in labels and "[nats]" in labels and "nats/token" in labels
    console = Console(width=200, record=True)
    console.print(planner.plan_table(plan))
    out = console.export_text()
    assert "Next probes" in out and out.count("code") >= 3


def test_stopping_rules(smc, cands, target):
    _, _, post = smc
    wide = planner.suggest(post, cands, target, k=3, verify_top=0, stop_width=10.0)
    assert wide.stop and wide.table.empty and "within the tolerance" in wide.stop_reasons[0]
    greedy = planner.suggest(post, cands, target, k=3, verify_top=0, min_info_per_gpu_hour=1e9)
    assert greedy.stop and greedy.checks["info_below_threshold"]
    free = planner.suggest(post, cands, target, k=3, verify_top=0)
    assert not free.stop and free.checks["best_info_per_gpu_hour"] > 0
    assert free.checks["current_width"] == pytest.approx(free.current_width)


# ------------------------------------------------------------------------------------------------- targets
def test_a_target_piled_on_its_boundary_is_not_resolved(jpost, cands):
    z = np.full(jpost.n_draws, np.nan)
    z[:20] = np.linspace(0.2, 0.4, 20)
    tgt = planner.target_draws(z, "r*", bounds=(0.0, 1.0), on_nan="lower")
    plan = planner.suggest(jpost, cands, tgt, k=1, verify_top=0, stop_width=0.1)
    assert plan.current_width < 0.1 and plan.checks["target_clipped_share"] > 0.9
    assert not plan.checks["width_reached"] and not plan.stop


def test_target_nan_policy_and_bounds(jpost):
    S = jpost.n_draws
    z = np.linspace(-0.5, 1.5, S)
    z[:10] = np.nan
    td = planner.target_draws(z, "r*", bounds=(0.0, 1.0), on_nan="lower").evaluate(jpost)
    assert td.n_nan == 10 and td.z.min() == 0.0 and td.z.max() == 1.0
    assert td.n_clipped > 10 and any("infeasible" in n for n in td.notes)
    with pytest.raises(BayesDCPTError, match="NaN"):
        planner.target_draws(z, "r*").evaluate(jpost)
    with pytest.raises(BayesDCPTError, match="one value"):
        planner.target_draws(np.ones(3)).evaluate(jpost)
    with pytest.raises(BayesDCPTError, match="could not be computed"):
        planner.target_callable(lambda p: 1 / 0, "broken").evaluate(jpost)


def test_critical_ratio_target_finds_the_true_ratio(world, jpost):
    tgt = planner.critical_ratio_target("code", 1e9, 3e10, max_general_increase=0.03, relative=False)
    z = tgt.evaluate(jpost).z[:, 0]
    grid = np.linspace(0, 1, 4001)
    f = pd.DataFrame({"domain": "code", "n_params": 1e9, "tokens": 3e10, "r_domain": grid})
    L0 = jpost.base_loss("code", 1e9)
    truth = grid[world.mean(f, "general") <= L0 + 0.03].max()
    assert np.median(z) == pytest.approx(truth, abs=0.03)
    assert ((z >= 0) & (z <= 1)).all()


def test_decision_target_plugs_into_the_decisions_module(monkeypatch, jpost, cands):
    calls = {}

    def tradeoff(post, **kw):
        calls.update(kw)
        r = post.params[("general", "code")]["C"] / 2
        r = np.where(np.arange(post.n_draws) % 10 == 0, np.nan, r)
        return types.SimpleNamespace(posterior={"r_domain": r})

    from bayes_dcpt.decide import usages

    monkeypatch.setattr(usages, "tradeoff", tradeoff)
    tgt = planner.decision_target("tradeoff", domain="code", max_general_increase=0.03)
    plan = planner.suggest(jpost, cands, tgt, k=2, verify_top=0)
    assert calls == {"domain": "code", "max_general_increase": 0.03}
    assert plan.checks["target_infeasible_draws"] == jpost.n_draws // 10
    assert any("infeasible" in n for n in plan.notes)
    with pytest.raises(BayesDCPTError, match="unknown decision usage"):
        planner.decision_target("nope").evaluate(jpost)


def test_vector_target_of_several_points(jpost, cands):
    pts = pd.DataFrame(
        {"domain": "code", "n_params": [1e9, 1e9], "tokens": [3e10, 3e10], "r_domain": [0.2, 0.6]}
    )
    plan = planner.suggest(jpost, cands, pts, k=2, verify_top=2)
    assert len(plan.target_labels) == 2 and len(plan.table) == 2
    assert plan.scores["is_U_z_entropy"].isna().all()  # histogram entropy only for scalar targets


# ---------------------------------------------------------------------------------------------- candidates
def test_candidates_from_menus():
    c = planner.candidates_from_menus(["code", "law"], [1e8, 1e9], [1e9], [0.2, 0.8], n_checkpoints=5)
    assert len(c) == 8 and set(c.columns) >= {"domain", "n_params", "tokens", "r_domain", "n_checkpoints"}
    from bayes_dcpt.plan.candidates import eval_checkpoints

    s = eval_checkpoints(c)
    assert all(
        len(x) == 5 and x[-1] == 1e9 and np.allclose(np.diff(np.log(x)), np.diff(np.log(x))[0], atol=1e-6)
        for x in s
    )


def test_read_candidates_reports_column_and_rows(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(
        "domain,N,tokens,r_domain,n_checkpoints\ncode,1e9,1e9,0.5,8\ncode,1e9,1e9,1.5,8\n"
        "code,-3,1e9,0.5,2.5\n,1e9,abc,0.2,8\n"
    )
    with pytest.raises(DataValidationError) as e:
        planner.read_candidates(p)
    msg = str(e.value)
    assert "column 'r_domain'" in msg and "row 2" in msg
    assert "column 'n_params'" in msg and "row 3" in msg
    assert "column 'n_checkpoints'" in msg
    assert "column 'tokens'" in msg and "row 4" in msg
    p2 = tmp_path / "c2.csv"
    p2.write_text("domain,n_params,r_domain\ncode,1e9,0.5\n")
    with pytest.raises(DataValidationError, match="column 'tokens': required column is missing"):
        planner.read_candidates(p2)
    p3 = tmp_path / "c3.csv"
    p3.write_text(
        "domain,n_params,tokens,r_domain,checkpoints\ncode,1e9,1e9,0.5,1e8;5e8;1e9\n"
        "code,1e9,1e9,0.5,5e8;1e8\n"
    )
    with pytest.raises(DataValidationError, match=r"column 'checkpoints'.*row 2"):
        planner.read_candidates(p3)
    with pytest.raises(DataValidationError, match="no such file"):
        planner.read_candidates(tmp_path / "missing.csv")


def test_suggest_rejects_unknown_domains_and_missing_bases(jpost):
    c = pd.DataFrame(
        {"domain": ["code", "law"], "n_params": [1e8, 1e8], "tokens": [1e9, 1e9], "r_domain": [0.2, 0.2]}
    )
    with pytest.raises(DataValidationError, match=r"column 'domain'.*law.*row 2"):
        planner.suggest(jpost, c, np.zeros(jpost.n_draws), k=1)
    c2 = pd.DataFrame({"domain": "code", "n_params": [1e8, 5e9], "tokens": 1e9, "r_domain": 0.3})
    with pytest.raises(DataValidationError, match=r"column 'n_params'.*no base checkpoint.*row 2"):
        planner.suggest(jpost, c2, np.zeros(jpost.n_draws), k=1)
    c2["pretrain_tokens"] = [0.0, 1e11]
    plan = planner.suggest(jpost, c2, np.random.default_rng(0).normal(size=jpost.n_draws), k=1, verify_top=0)
    assert len(plan.scores) == 2


@pytest.mark.parametrize(
    "kw", [{"k": 0}, {"budget_gpu_hours": -1.0}, {"kappa": -1.0}, {"ci": 1.5}, {"stop_width": 0.0}]
)
def test_bad_options_are_clear_errors(jpost, cands, kw):
    with pytest.raises(BayesDCPTError):
        planner.suggest(jpost, cands, np.zeros(jpost.n_draws), **kw)


def test_a_general_only_fit_plans_on_the_general_loss(world, cands, target):
    post = jitter_posterior(world, S=600, spread=0.01)
    post.params = {k: v for k, v in post.params.items() if k[0] == "general"}
    post.noise = {"general": post.noise["general"]}
    plan = planner.suggest(post, cands, target, k=2, verify_top=2)
    assert len(plan.table) == 2 and "pred_loss_domain_lo" not in plan.table
    assert (plan.table["pred_loss_general_lo"] < plan.table["pred_loss_general_hi"]).all()
    from rich.console import Console

    Console(width=200, record=True).print(planner.plan_table(plan))
    assert len(plan.plot().axes) == 3
