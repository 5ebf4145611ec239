"""The planner's small modules: old import paths still work, and each step of suggest holds on its own."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd
import pytest
from planner_helpers import jitter_posterior

from bayes_dcpt import hooks
from bayes_dcpt import plan as planner
from bayes_dcpt.errors import BayesDCPTError, DataValidationError
from bayes_dcpt.plan.batch import batch_table, choose_batch, constant_value, greedy_batch, stopping_checks
from bayes_dcpt.plan.cost import CostModel
from bayes_dcpt.plan.options import SuggestOptions
from bayes_dcpt.plan.persistence import read_loop_state, write_round
from bayes_dcpt.plan.scoring import eti_width, score_candidates, scoring_draws
from bayes_dcpt.plan.screening import canonical_order, screen_candidates
from bayes_dcpt.plan.simulate import World
from bayes_dcpt.plan.verification import IS_COLUMNS, check_by_reweighting, first_pick_by_check

# what these modules exported before the split: the CLI, notebooks, benchmarks and users import them from here
OLD_EXPORTS = {
    "bayes_dcpt.plan.planner": [
        "Plan", "Target", "TargetDraws", "as_target", "candidates_from_menus", "critical_ratio_target",
        "decision_target", "loss_target", "make_target", "plan_table", "read_candidates", "suggest",
        "suggest_for", "target_callable", "target_draws", "validate_candidates",
    ],
    "bayes_dcpt.plan.loop": [
        "STRATEGIES", "Executor", "LoopResult", "PlannerLoop", "SimulatorExecutor", "TableExecutor",
        "baseline_order", "gpu_hours_to_width", "load_posterior", "save_posterior",
    ],
}


@pytest.fixture(scope="module")
def world():
    return World.default(domains=("code",))


@pytest.fixture(scope="module")
def post(world):
    return jitter_posterior(world, S=600, spread=0.01)


@pytest.fixture(scope="module")
def cands():
    return planner.candidates_from_menus(
        ["code"], [1e8, 3e8, 1e9], [1e9, 3e9], [0.1, 0.5, 0.9], n_checkpoints=6, first_fraction=0.1
    )


@pytest.fixture(scope="module")
def target():
    return planner.critical_ratio_target("code", 1e9, 3e10, max_general_increase=0.03, relative=False)


def _opts(**kw) -> SuggestOptions:
    base = dict(k=3, budget_gpu_hours=None, cost_model=CostModel(), kappa=1.0, verify_top=3, seed=0,
                stop_width=None, min_info_per_gpu_hour=None, allow_repeats=True, singleton_check=True,
                n_checkpoints=8, first_fraction=0.02, max_draws=2000, n_verify=40, ci=0.9)
    return SuggestOptions(**(base | kw))


@pytest.mark.parametrize("module", sorted(OLD_EXPORTS))
def test_old_import_paths_still_export_the_same_objects(module):
    mod = importlib.import_module(module)
    for name in OLD_EXPORTS[module]:
        assert name in mod.__all__, name
        obj = getattr(mod, name)
        if hasattr(planner, name):
            assert obj is getattr(planner, name), name


def test_plan_plot_is_late_bound_to_the_viz_layer():
    assert hooks._IMPLEMENTATIONS["Plan.plot"][0] == "bayes_dcpt.viz.plan"
    assert hooks._IMPLEMENTATIONS["suggest"][0] == "bayes_dcpt.plan.planner"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"k": 0}, "k must be"),
        ({"k": 2.0}, "k must be"),
        ({"budget_gpu_hours": -1.0}, "budget_gpu_hours"),
        ({"budget_gpu_hours": float("inf")}, "budget_gpu_hours"),
        ({"kappa": -0.5}, "kappa"),
        ({"stop_width": 0.0}, "stop_width"),
        ({"ci": 1.0}, "ci must be"),
    ],
)
def test_bad_options_are_refused_before_any_work(post, cands, target, kw, match):
    with pytest.raises(BayesDCPTError, match=match):
        _opts(**kw)
    with pytest.raises(BayesDCPTError, match=match):
        planner.suggest(post, cands, target, **kw)


def test_screening_sorts_canonically_drops_duplicates_and_checks_the_fit(post, cands):
    shuffled = pd.concat([cands.iloc[::-1], cands.iloc[:2]], ignore_index=True)
    a, notes = screen_candidates(post, shuffled, require_base=True)
    b = canonical_order(cands)
    pd.testing.assert_frame_equal(a.drop(columns="row"), b.drop(columns="row"))
    assert notes == ["2 duplicate candidate row(s) dropped"]
    other = cands.assign(domain="law")
    with pytest.raises(DataValidationError, match="unknown domain"):
        screen_candidates(post, other, require_base=True)


def test_scoring_draws_subsample_is_seeded_and_weights_are_normalised(post, cands, target):
    td = target.evaluate(post)
    c = canonical_order(cands)
    d1 = scoring_draws(post, c, td, _opts(max_draws=200, seed=4), [])
    d2 = scoring_draws(post, c, td, _opts(max_draws=200, seed=4), [])
    assert d1.n_draws == 200 and np.isclose(d1.w.sum(), 1.0)
    np.testing.assert_array_equal(d1.z, d2.z)
    assert d1.outputs(0).shape == (200, 2 * d1.lens[0])
    np.testing.assert_allclose(d1.width_now, eti_width(td.z, None, 0.9))


def test_scores_verification_and_batch_compose_to_suggest(post, cands, target):
    opts = _opts(k=3, budget_gpu_hours=40.0, verify_top=3, n_verify=40)
    c = canonical_order(cands)
    td = target.evaluate(post)
    draws = scoring_draws(post, c, td, opts, [])
    scored = score_candidates(draws, c, opts)
    assert list(scored.scores["rank_score"].iloc[scored.order]) == list(range(1, len(c) + 1))
    verified = check_by_reweighting(scored, draws, opts)
    assert list(verified) == list(scored.order[:3])
    assert scored.scores.loc[verified, list(IS_COLUMNS)].notna().all().all()
    checks, reasons = stopping_checks(scored, td, opts)
    assert not reasons and checks["current_width"] == scored.current_width
    picks, info, first = choose_batch(scored, c, opts, None, "mm", reasons, [])
    assert 1 <= len(picks) <= 3 and picks[-1]["cum_gpu_hours"] <= 40.0 + 1e-9 and info > 0
    alone, _ = greedy_batch(scored, c, opts, int(scored.order[0]))
    assert alone[0]["cand"] == int(scored.order[0])
    table = batch_table(picks, c, scored.scores)
    plan = planner.suggest(post, cands, target, k=3, budget_gpu_hours=40.0, verify_top=3, n_verify=40)
    pd.testing.assert_frame_equal(plan.table.drop(columns=[x for x in plan.table if x.startswith("pred_")]),
                                  table, check_exact=True)
    assert plan.first_pick == first


def test_a_constant_target_counts_only_draws_of_positive_weight(post, cands, target):
    """Draws reweighted to 0 (after probes landed) say nothing about the target: the planner used to keep ranking
    probes because such a draw gave another value; an all-infeasible target says so in its stop reason."""
    import dataclasses

    z = np.array([[0.4], [0.4], [0.7], [0.4]])
    assert constant_value(z) is None
    np.testing.assert_array_equal(constant_value(z, np.array([0.5, 0.3, 0.0, 0.2])), [0.4])
    assert constant_value(z, np.array([0.0, 0.0, 1.0, 0.0]))[0] == 0.7
    assert constant_value(np.zeros((0, 1))) is None
    opts = _opts(k=2)
    c = canonical_order(cands)
    td = target.evaluate(post)
    scored = score_candidates(scoring_draws(post, c, td, opts, []), c, opts)
    flat = dataclasses.replace(td, z=np.zeros_like(td.z), n_nan=td.z.shape[0], n_clipped=td.z.shape[0])
    checks, reasons = stopping_checks(scored, flat, opts)
    assert checks["target_constant"]
    assert any("every draw infeasible, counted as 0" in r for r in reasons)
    one_off = flat.z.copy()
    one_off[0] = 0.3
    varied = dataclasses.replace(flat, z=one_off, n_nan=0)
    assert not stopping_checks(scored, varied, opts)[0]["target_constant"]
    w = np.ones(len(one_off))
    w[0] = 0.0
    checks, reasons = stopping_checks(scored, varied, opts, w)
    assert checks["target_constant"] and not any("infeasible" in r for r in reasons)
    assert any("every posterior draw of positive weight gives" in r for r in reasons)


def test_an_unreliable_reweighting_check_is_said_and_not_called_verified(post, cands, target):
    """k-hat above 0.7 for most simulated outcomes: the check cannot be trusted, so the plan says so.

    'verified' used to mean only that the check ran: a user saw True beside a k-hat fraction of 0.98.
    """
    opts = _opts(k=2, verify_top=3, n_verify=40)
    c = canonical_order(cands)
    draws = scoring_draws(post, c, target.evaluate(post), opts, [])
    scored = score_candidates(draws, c, opts)
    verified = check_by_reweighting(scored, draws, opts)
    picks = [{"cand": int(i)} for i in verified[:2]]
    scored.scores.loc[verified, "is_frac_khat_bad"] = 0.0
    assert batch_table(picks, c, scored.scores)["verified"].all()
    notes: list[str] = []
    assert first_pick_by_check(scored, verified, opts, notes)[1] in ("mm", "is") and not notes
    scored.scores.loc[verified[1], "is_frac_khat_bad"] = 0.9
    table = batch_table(picks, c, scored.scores)
    assert list(table["verified"]) == [True, False]
    assert first_pick_by_check(scored, verified, opts, notes) == (None, "mm")
    assert len(notes) == 1 and "unreliable" in notes[0] and "90%" in notes[0]


def test_an_empty_batch_table_keeps_its_columns(cands):
    t = batch_table([], canonical_order(cands), pd.DataFrame())
    assert t.empty and list(t.columns)[:2] == ["rank", "domain"] and t.columns[-1] == "verified"


def test_loop_state_round_trips_and_a_stale_posterior_is_dropped(tmp_path, post, world):
    data = pd.DataFrame({"domain": ["code"], "n_params": [1e8], "tokens": [1e9], "r_domain": [0.5],
                         "loss_general": [2.6], "loss_domain": [2.5], "run_id": ["r"], "loop_round": [1]})
    (tmp_path / "config.json").write_text(json.dumps({"k": 2}))
    write_round(tmp_path, data, post, 0)
    write_round(tmp_path, data, post, 1, pd.DataFrame({"rank": [1]}), {"round": 1, "probes": []})
    cfg, history, back, post1 = read_loop_state(tmp_path)
    assert cfg == {"k": 2} and history == [{"round": 1, "probes": []}] and len(back) == 1
    assert post1 is not None and post1.n_draws == post.n_draws
    assert (tmp_path / "plan_round1.csv").exists()
    (tmp_path / "rounds.jsonl").write_text("")  # the record of round 1 was lost: its posterior is stale
    _, history, back, post0 = read_loop_state(tmp_path)
    assert history == [] and back.empty and post0 is None
    with pytest.raises(BayesDCPTError, match="no loop state"):
        read_loop_state(tmp_path / "nowhere")
