"""The planner on honest posteriors: replicates that earn their place, noise as fitted, the model discrepancy, and
the base-anchored CPT law (candidate sizes without a base model, the heteroscedastic update, files)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from planner_helpers import jitter_posterior
from scipy import stats
from test_decisions_honest import SIZES, cpt_posterior

from bayes_dcpt import plan as planner
from bayes_dcpt.numerics.runblock import block_log_likelihood
from bayes_dcpt.plan.cost import CostModel
from bayes_dcpt.plan.information import BlockNoise, Conditioner, mm_information
from bayes_dcpt.plan.options import SuggestOptions
from bayes_dcpt.plan.persistence import load_posterior, save_posterior
from bayes_dcpt.plan.scoring import score_candidates, scoring_draws
from bayes_dcpt.plan.screening import screen_candidates
from bayes_dcpt.plan.simulate import World
from bayes_dcpt.plan.update import run_log_likelihood
from bayes_dcpt.posterior.cpt import CPTPosterior


@pytest.fixture(scope="module")
def world():
    return World.default(domains=("code",))


@pytest.fixture(scope="module")
def cands():
    return planner.candidates_from_menus(
        ["code"], [1e8, 3e8, 1e9], [1e9, 3e9], [0.1, 0.3, 0.5, 0.7, 0.9], n_checkpoints=6, first_fraction=0.1
    )


@pytest.fixture(scope="module")
def target():
    return planner.critical_ratio_target("code", 1e9, 3e10, max_general_increase=0.03, relative=False)


def _opts(**kw):
    base = dict(k=4, budget_gpu_hours=None, cost_model=CostModel(), kappa=1.0, verify_top=0, seed=0, stop_width=None,
                min_info_per_gpu_hour=None, allow_repeats=True, singleton_check=True, n_checkpoints=8,
                first_fraction=0.02, max_draws=2000, n_verify=200, ci=0.9)
    return SuggestOptions(**{**base, **kw})


# ------------------------------------------------------------------------------------------ replicates
def test_a_replicate_is_picked_only_for_more_information_per_gpu_hour_and_says_so(world, cands, target):
    post = jitter_posterior(world, S=1000, spread=0.01, sigma=0.05, tau=0.05)
    plan = planner.suggest(post, cands, target, k=4, verify_top=0)
    reps = plan.table[plan.table["repeat"]]
    assert len(reps) >= 1
    for _, row in reps.iterrows():
        assert row["U_z_per_gpu_hour"] >= row["best_new_U_z_per_gpu_hour"]
        assert row["why"].startswith("replicate: more information per GPU-hour than any new design (")
        assert f"{row['U_z_per_gpu_hour']:.3g} vs {row['best_new_U_z_per_gpu_hour']:.3g}" in row["why"]
    assert not plan.table.loc[~plan.table["repeat"], "why"].astype(bool).any()
    assert "replicate: more information" in plan.summary()
    from rich.console import Console

    con = Console(width=400, record=True)
    con.print(planner.plan_table(plan))
    assert "replicate: more information" in con.export_text()

    # recomputed from scratch: at each replicate's step, its conditional U_z per GPU-hour beats every candidate
    opts = _opts()
    c2, notes = screen_candidates(post, cands, True)
    draws = scoring_draws(post, c2, target.evaluate(post), opts, notes)
    sc = score_candidates(draws, c2, opts)
    key = lambda r: (r["n_params"], r["tokens"], r["r_domain"])  # noqa: E731
    index = {key(r): i for i, r in c2.iterrows()}
    picks = [index[key(r)] for _, r in plan.table.iterrows()]
    cd = Conditioner(sc.ensemble)
    for step, c in enumerate(picks):
        per_h = cd.scores()["U_z"] / sc.hours
        if step and c in picks[:step]:
            assert per_h[c] == pytest.approx(per_h.max(), rel=1e-9)
            new = np.setdiff1d(np.arange(len(c2)), picks[:step])
            assert per_h[new].max() == pytest.approx(plan.table["best_new_U_z_per_gpu_hour"].iloc[step], rel=1e-6)
        cd.condition(c)


def test_conditioning_on_a_replicate_is_an_independent_run_with_its_own_offset(world, cands, target):
    """The Conditioner's replicate gain equals the Gaussian information of two independent runs stacked."""
    post = jitter_posterior(world, S=1000, spread=0.01, sigma=0.01, tau=0.03)  # the offset dominates
    opts = _opts()
    c2, notes = screen_candidates(post, cands, True)
    draws = scoring_draws(post, c2, target.evaluate(post), opts, notes)
    sc = score_candidates(draws, c2, opts)
    c, other = int(sc.order[0]), int(sc.order[1])

    def joint(a: int, b: int) -> float:
        F = np.concatenate([draws.outputs(a), draws.outputs(b)], axis=1)
        ka, kb = draws.outputs(a).shape[1], draws.outputs(b).shape[1]
        blocks, k = [], 0
        for kc in (ka, kb):
            half = kc // 2
            blocks += [np.arange(k, k + half), np.arange(k + half, k + kc)]
            k += kc
        sig = np.sqrt(np.stack([draws.noise[t][0].mean(axis=1) for t in ("general", "domain")] * 2, axis=1))
        tau = np.sqrt(np.stack([draws.noise[t][1][:, 0] for t in ("general", "domain")] * 2, axis=1))
        R = BlockNoise(tuple(blocks), sig, tau).mean_cov(draws.w)
        return mm_information(F, R, draws.z, draws.w)[1]

    cd = Conditioner(sc.ensemble)
    cd.condition(c)
    cond = cd.scores()["U_z"]
    assert cond[c] == pytest.approx(joint(c, c) - sc.alone["U_z"][c], rel=1e-4)
    assert cond[other] == pytest.approx(joint(c, other) - sc.alone["U_z"][c], rel=1e-4)
    # a replicate is worth less than the first run, but not nothing: its offset is a new draw
    assert 0 < cond[c] < sc.alone["U_z"][c]


def test_the_robust_fits_run_offset_carries_the_student_t_variance(world):
    post = jitter_posterior(world, S=50, spread=0.01, sigma=0.01, tau=0.02)
    rows = pd.DataFrame({"domain": "code", "n_params": [1e8, 1e8], "tokens": [1e9, 2e9], "r_domain": 0.5})
    for t in post.targets:
        post.noise[t]["nu"] = np.full(50, 4.0)
    _, vu_plain = post.measurement_variance(rows, "general")
    mixed = replace(post, ctx={**post.ctx, "run_mixing": 1.0})
    ve, vu = mixed.measurement_variance(rows, "general")
    np.testing.assert_allclose(vu_plain, 0.02**2)
    np.testing.assert_allclose(vu, 0.02**2 * 2.0)  # nu / (nu - 2) = 2: w scales the offset and the noise
    np.testing.assert_allclose(ve, 0.01**2 * 2.0)


def test_a_probe_beyond_the_data_measures_the_law_error_the_target_carries(world, cands):
    post = jitter_posterior(world, S=1000, spread=0.01)
    env = {"code": {"n_max": 3e8, "n_min": 1e8, "d_max": {str(1e8): 1e9, str(3e8): 1e9}, "ratios": [0.1, 0.5, 0.9]}}
    disc = replace(post, ctx={**post.ctx, "discrepancy": {t: {"tokens": 0.05, "size": 0.05, "ratio": 0.0}
                                                           for t in post.targets}, "envelope": env})
    tgt = planner.critical_ratio_target("code", 1e9, 3e10, max_general_increase=0.03, relative=False)
    a = planner.suggest(post, cands, tgt, k=2, verify_top=0)
    b = planner.suggest(disc, cands, tgt, k=2, verify_top=0)
    assert b.current_width > a.current_width  # the target extrapolates: its interval carries the discrepancy
    sa, sb = a.scores.set_index(["n_params", "tokens", "r_domain"]), b.scores.set_index(
        ["n_params", "tokens", "r_domain"])
    # probes at the asked size (outside the data) gain relative to those inside; their bands widen there only
    gain = (sb["U_z"] / sb["U_z"].max()) / (sa["U_z"] / sa["U_z"].max())
    assert gain.loc[1e9].mean() > gain.loc[1e8].mean()
    width = lambda s: s["pred_loss_general_hi"] - s["pred_loss_general_lo"]  # noqa: E731
    assert (width(sb).loc[1e9] > width(sa).loc[1e9]).all()
    np.testing.assert_allclose(width(sb).loc[(1e8, 1e9)], width(sa).loc[(1e8, 1e9)], rtol=1e-9)


# ----------------------------------------------------------------------------------------- the CPT law
@pytest.fixture(scope="module")
def cpt():
    return cpt_posterior(S=300)


def test_cpt_law_plans_with_sizes_that_have_no_base_model(cpt):
    c = planner.candidates_from_menus(["python"], [100672.0, 443232.0, 2e6], [524288.0, 2097152.0],
                                      [0.25, 0.5, 0.75], pretrain_tokens={2e6: 4e7})
    tgt = planner.critical_ratio_target("python", 2e6, 2097152.0, max_general_increase=0.03)
    plan = planner.suggest(cpt, c, tgt, k=3, verify_top=3)
    assert len(plan.table) >= 1 and np.isfinite(plan.scores["U_z"]).all()
    new = plan.scores[plan.scores["n_params"] == 2e6]
    assert (new["U_z"] > 0).all() and np.isfinite(new[["pred_loss_general_lo", "pred_loss_general_hi"]]).all().all()
    # without paying for the base model it is refused, unless the base-loss law is accepted as the base
    with pytest.raises(Exception, match="no base checkpoint of this size"):
        planner.suggest(cpt, c.drop(columns="pretrain_tokens"), tgt, k=1, verify_top=0)
    assert len(planner.suggest(cpt, c.drop(columns="pretrain_tokens"), tgt, k=1, verify_top=0,
                               require_base=False).table) == 1


def test_cpt_run_likelihood_uses_each_checkpoints_own_noise(cpt):
    toks = np.array([65536.0, 131072.0, 262144.0, 524288.0])
    rows = pd.DataFrame({"domain": "python", "n_params": 443232.0, "tokens": toks, "r_domain": 0.5,
                         "run_id": "new", "loss_general": [1.62, 1.64, 1.66, 1.67],
                         "loss_domain": [1.9, 1.8, 1.72, 1.68]})
    ll = run_log_likelihood(cpt, rows)
    want = np.zeros(cpt.n_draws)
    for t in ("general", "domain"):
        mu = cpt.mean_log_loss(rows, t)
        sd = cpt.checkpoint_sd(rows, t, mu)
        nz = cpt.noise[t]
        e = np.log(rows[f"loss_{t}"].to_numpy())[None, :] - mu
        want += block_log_likelihood(e, np.zeros(len(rows), int), sd, nz["tau"], nz["nu"])
    np.testing.assert_allclose(ll, want, rtol=1e-10)
    # the scale grows with the move from the base: the checkpoints far from it are looser
    sd = cpt.checkpoint_sd(rows, "domain", cpt.mean_log_loss(rows, "domain"))
    assert (np.diff(np.median(sd, axis=0)) > 0).all()
    # one draw, Normal noise: the multivariate normal with per-checkpoint variances plus the shared offset
    one = replace(cpt.subset(np.arange(1)), noise={t: {k: v[:1] for k, v in nz.items() if k != "nu"}
                                                    for t, nz in cpt.noise.items()})
    got = run_log_likelihood(one, rows)[0]
    ref = 0.0
    for t in ("general", "domain"):
        mu = one.mean_log_loss(rows, t)[0]
        s = one.checkpoint_sd(rows, t, one.mean_log_loss(rows, t))[0]
        cov = np.diag(s**2) + one.noise[t]["tau"][0] ** 2
        ref += stats.multivariate_normal(mu, cov).logpdf(np.log(rows[f"loss_{t}"].to_numpy()))
    assert got == pytest.approx(ref, rel=1e-9)


def test_a_cpt_posterior_with_its_discrepancy_survives_the_loop_file(tmp_path, cpt):
    env = {"python": {"n_max": 443232.0, "n_min": 13408.0, "d_max": {str(n): 524288.0 for n in SIZES},
                      "ratios": [0.0, 0.25, 0.5, 0.75, 1.0]}}
    post = replace(cpt, ctx={**cpt.ctx, "discrepancy": {"general": {"tokens": 0.03, "size": None, "ratio": 0.1},
                                                        "domain": {"tokens": 0.02, "size": 0.1, "ratio": 0.1}},
                             "envelope": env}).subset(np.arange(0, 300, 2))
    back, _ = load_posterior(save_posterior(post, tmp_path / "p.npz"))
    assert isinstance(back, CPTPosterior) and back.ctx["discrepancy"] == post.ctx["discrepancy"]
    np.testing.assert_array_equal(back.discrepancy_z("general"), post.discrepancy_z("general"))
    grid = pd.DataFrame({"domain": "python", "n_params": 443232.0, "tokens": [5e5, 4e6], "r_domain": 0.5})
    pd.testing.assert_frame_equal(back.predict(grid, kind="mean"), post.predict(grid, kind="mean"))


# ----------------------------------------------------------------------------- probes of another domain
def test_the_note_on_probes_of_another_domain_names_them_and_the_channel():
    from bayes_dcpt.plan.planner import other_domain_notes

    table = pd.DataFrame({"rank": [1, 2, 3], "domain": ["python", "c_headers", "codec_tables"]})
    (note,) = other_domain_notes(table, ("python",), True)
    assert "#2, #3" in note and "c_headers, codec_tables" in note and "not of the target's python" in note
    assert "one shift common to every domain" in note
    assert "one shift" not in other_domain_notes(table, ("python",), False)[0]
    assert other_domain_notes(table[table["domain"] == "python"], ("python",), True) == []
    assert other_domain_notes(table, (), True) == []  # a user's callable: the target's domains are unknown


def test_a_plan_of_other_domains_probes_says_how_they_inform_the_target():
    from pathlib import Path

    from bayes_dcpt import load_fit

    fit = load_fit(Path(__file__).parents[1] / "models" / "example_cpt.nc")
    c = planner.candidates_from_menus(["c_headers", "python"], [443232.0], [2097152.0], [0.25, 0.5])
    tgt = planner.critical_ratio_target("python", 443232.0, 2097152.0, max_general_increase=0.03)
    assert tgt.domains == ("python",)
    plan = planner.suggest(fit, c[c["domain"] == "c_headers"], tgt, k=1, verify_top=0)
    assert any("not of the target's python" in n for n in plan.notes)
    plan = planner.suggest(fit, c[c["domain"] == "python"], tgt, k=1, verify_top=0)
    assert not any("not of the target's" in n for n in plan.notes)


def test_a_target_every_draw_agrees_on_proposes_no_probe():
    """Limited domain data of 10M tokens at 443k parameters: every draw says r* = 1 (domain data only). The
    planner used to rank probes by information 0 and propose two; now it stops and says there is nothing to learn."""
    from pathlib import Path

    from bayes_dcpt import load_fit

    fit = load_fit(Path(__file__).parents[1] / "models" / "example_cpt.nc")
    c = planner.candidates_from_menus(["python"], [100672.0, 443232.0], [524288.0], [0.25, 0.5])
    plan = fit.suggest(c, "limited-data", domain="python", n_params=443232.0, domain_tokens=1e7, k=2, verify_top=0)
    assert plan.table.empty and plan.stop and plan.checks["target_constant"]
    assert "every posterior draw gives the target the same value (1 domain share)" in "; ".join(plan.stop_reasons)
    plan = fit.suggest(c, "limited-data", domain="python", n_params=443232.0, domain_tokens=1e5, k=2, verify_top=0)
    assert len(plan.table) == 2 and not plan.checks["target_constant"]  # r* is uncertain there: probes proposed
