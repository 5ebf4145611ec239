"""Closed loop: executors, baselines, budgets, persistence and resuming after an interruption."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import shared
from planner_helpers import base_rows, synthetic_data

from bayes_dcpt import plan as planner
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.fitting.smc import SMCRefit
from bayes_dcpt.plan.cost import CostModel
from bayes_dcpt.plan.loop import (
    PlannerLoop,
    SimulatorExecutor,
    TableExecutor,
    baseline_order,
    gpu_hours_to_width,
    load_posterior,
    save_posterior,
)
from bayes_dcpt.plan.simulate import probe_grid

L_REF = {"general": 2.5, "domain": 2.4}
CTX = {"D_min": 0.1}


def quick_refit(seed: int = 0) -> SMCRefit:
    # a fixed prior scale and D_min make refits of a resumed loop identical to the uninterrupted ones
    return SMCRefit("dcpt", n_draws=300, n_moves=3, final_moves=6, seed=seed, l_ref=L_REF, ctx=CTX)


@pytest.fixture(scope="module")
def setting():
    world, df = synthetic_data(seed=0)
    cands = planner.candidates_from_menus(
        ["code"], [1e8, 3e8, 1e9], [1e9, 3e9], [0.2, 0.5, 0.8], n_checkpoints=5, first_fraction=0.1
    )
    target = planner.critical_ratio_target("code", 1e9, 3e10, max_general_increase=0.03, relative=False)
    post = quick_refit()(df)
    return world, df, cands, target, post


def make_loop(setting, tmp_path=None, **kw):
    world, df, cands, target, post = setting
    ex = kw.pop("executor", None) or SimulatorExecutor(world, seed=1, n_checkpoints=5, first_fraction=0.1)
    return PlannerLoop(
        candidates=cands,
        target=target,
        executor=ex,
        refit=kw.pop("refit", quick_refit()),
        posterior=post,
        data=df,
        state_dir=tmp_path,
        suggest_kwargs={"verify_top": 0, "max_draws": 300},
        **kw,
    )


# -------------------------------------------------------------------------------------------- executors
def test_simulator_executor_is_seeded_by_round(setting):
    world, _, cands, _, _ = setting
    ex = SimulatorExecutor(world, seed=3, n_checkpoints=5, first_fraction=0.1)
    a = ex.run(cands.iloc[[0, 4]], round=1)
    b = ex.run(cands.iloc[[0, 4]], round=1)
    c = ex.run(cands.iloc[[0, 4]], round=2)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["loss_domain"], c["loss_domain"])
    assert a["run_id"].nunique() == 2 and (a.groupby("run_id").size() == 5).all()
    assert set(a["tokens"]) >= {float(cands.iloc[0]["tokens"])}


def test_table_executor_reveals_measured_runs():
    world, _ = synthetic_data()
    grid = world.simulate(
        probe_grid(n_params=(1e8, 3e8), r_domain=(0.2, 0.8), max_tokens=1e9, n_checkpoints=4), seed=0
    )
    ex = TableExecutor(grid)
    cands = ex.candidates()
    assert len(cands) == 4 and "run_id" in cands and "checkpoints" in cands
    got = ex.run(cands.iloc[[1]], round=1)
    assert set(got["run_id"]) == {cands.iloc[1]["run_id"]} and len(got) == 4
    assert len(ex.base_rows()) == 2
    with pytest.raises(BayesDCPTError, match="not in the measured table"):
        ex.run(cands.iloc[[1]].assign(run_id="nope"), round=1)


@pytest.mark.realdata
def test_table_executor_on_the_mixinglaws_cpt_sweep():
    shared("mixinglaws")
    from bayes_dcpt.datasets import load_mixinglaws_cpt

    ex = TableExecutor(load_mixinglaws_cpt())
    cands = ex.candidates()
    assert len(cands) == 5 and (cands["checkpoints"].str.count(";") == 9).all()
    rows = ex.run(cands.iloc[[0]], round=1)
    assert len(rows) == 10 and rows["loss_domain"].notna().all()


# -------------------------------------------------------------------------------------------- baselines
def test_baseline_orders(setting):
    _, _, cands, _, _ = setting
    hours = CostModel().gpu_hours(cands)
    rng = np.random.default_rng(0)
    cheap = baseline_order("cheapest", cands, hours, rng)
    assert (np.diff(hours[cheap]) >= 0).all()
    uni = baseline_order("uniform", cands, hours, rng)
    assert sorted(uni) == list(range(len(cands)))
    first_four = cands.iloc[uni[:4]]
    assert first_four["n_params"].nunique() >= 2 and first_four["r_domain"].nunique() >= 2
    r1 = baseline_order("random", cands, hours, np.random.default_rng(5))
    r2 = baseline_order("random", cands, hours, np.random.default_rng(5))
    assert (r1 == r2).all()
    with pytest.raises(BayesDCPTError, match="unknown strategy"):
        baseline_order("best", cands, hours, rng)


# ------------------------------------------------------------------------------------------------- loop
@pytest.mark.parametrize("strategy", ["planner", "uniform", "random", "cheapest"])
def test_loop_never_exceeds_the_budget(setting, strategy):
    loop = make_loop(setting, strategy=strategy, k=2, budget_gpu_hours=20.0, max_rounds=6)
    res = loop.run()
    assert len(res.history) >= 1
    assert res.history["cum_gpu_hours"].max() <= 20.0 + 1e-9
    assert res.history["gpu_hours"].sum() == pytest.approx(loop.spent)
    assert {"width_before", "width_after", "khat", "ess", "refit", "reweighted"} <= set(res.history.columns)
    assert res.stopped
    new = res.data[res.data["loop_round"] > 0]
    assert new["run_id"].nunique() == res.history["n_probes"].sum()


def test_loop_records_and_resumes_after_an_interruption(setting, tmp_path):
    full = make_loop(setting, tmp_path / "a", k=2, max_rounds=3).run()

    class Flaky(SimulatorExecutor):
        def run(self, probes, *, round):
            if round == 3:
                raise RuntimeError("cluster went down")
            return super().run(probes, round=round)

    world = setting[0]
    flaky = Flaky(world, seed=1, n_checkpoints=5, first_fraction=0.1)
    loop = make_loop(setting, tmp_path / "b", k=2, max_rounds=3, executor=flaky)
    with pytest.raises(RuntimeError, match="cluster"):
        loop.run()
    d = tmp_path / "b"
    assert len((d / "rounds.jsonl").read_text().splitlines()) == 2
    assert (d / "plan_round1.csv").exists() and (d / "posterior.npz").exists()
    _, _, cands, target, _ = setting
    resumed = PlannerLoop.resume(
        d,
        candidates=cands,
        target=target,
        refit=quick_refit(),
        executor=SimulatorExecutor(world, seed=1, n_checkpoints=5, first_fraction=0.1),
        max_rounds=3,
        suggest_kwargs={"verify_top": 0, "max_draws": 300},
    )
    assert len(resumed.history) == 2
    res = resumed.run()
    cols = ["round", "gpu_hours", "cum_gpu_hours", "width_before", "width_after", "refit"]
    pd.testing.assert_frame_equal(res.history[cols], full.history[cols])
    hist = [json.loads(x) for x in (d / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in hist] == [1, 2, 3]
    data = pd.read_csv(d / "data.csv")
    assert sorted(data["loop_round"].unique()) == [0, 1, 2, 3]


def test_a_state_directory_is_not_silently_reused(setting, tmp_path):
    make_loop(setting, tmp_path, k=2, max_rounds=1).run()
    with pytest.raises(BayesDCPTError, match="another loop"):
        make_loop(setting, tmp_path, k=3, max_rounds=1)
    with pytest.raises(BayesDCPTError, match="no loop state"):
        PlannerLoop.resume(
            tmp_path / "empty", candidates=setting[2], target=setting[3], refit=quick_refit(), executor=None
        )


def test_pool_loop_chooses_each_measured_run_once(setting):
    world = setting[0]
    grid = world.simulate(
        probe_grid(n_params=(1e8, 3e8), r_domain=(0.2, 0.5, 0.8), max_tokens=1e9, n_checkpoints=5),
        seed=4,
        run_prefix="pool",
    )
    ex = TableExecutor(grid)
    start = pd.concat([base_rows(world), grid[grid["run_id"] == grid["run_id"].iloc[-1]]], ignore_index=True)
    cands = ex.candidates()
    for strategy in ("planner", "random"):
        loop = PlannerLoop(
            candidates=cands,
            target=setting[3],
            executor=ex,
            refit=quick_refit(),
            data=start,
            strategy=strategy,
            k=2,
            max_rounds=5,
            suggest_kwargs={"verify_top": 0, "max_draws": 300},
        )
        res = loop.run()
        chosen = [p["run_id"] for r in loop.history for p in r["probes"]]
        assert len(chosen) == len(set(chosen)) and len(chosen) <= len(cands)
        assert set(chosen) <= set(cands["run_id"])
        assert "affordable" in res.stopped or "max_rounds" in res.stopped


def test_loop_stops_at_the_width_tolerance(setting):
    loop = make_loop(setting, k=2, stop_width=5.0, max_rounds=3)
    res = loop.run()
    assert res.history.empty and "<=" in res.stopped


def test_posterior_round_trip(setting, tmp_path):
    post = setting[4]
    w = np.random.default_rng(0).random(post.n_draws)
    p2 = post.reweight(w)
    save_posterior(p2, tmp_path / "p.npz", round=4)
    back, meta = load_posterior(tmp_path / "p.npz")
    assert meta == {"round": 4}
    np.testing.assert_array_equal(back.weights, p2.weights)
    for k, v in p2.params.items():
        for name, arr in v.items():
            np.testing.assert_array_equal(back.params[k][name], arr)
    assert list(back.params[("general", "code")]) == list(p2.params[("general", "code")])
    pd.testing.assert_frame_equal(
        back.reference.reset_index(drop=True), p2.reference.reset_index(drop=True), check_dtype=False
    )


def test_gpu_hours_to_width():
    h = pd.DataFrame(
        {
            "round": [1, 2, 3],
            "cum_gpu_hours": [5.0, 12.0, 20.0],
            "width_before": [0.5, 0.3, 0.2],
            "width_after": [0.3, 0.2, 0.09],
        }
    )
    assert gpu_hours_to_width(h, 0.25) == 12.0
    assert gpu_hours_to_width(h, 0.1) == 20.0
    assert gpu_hours_to_width(h, 0.05) == np.inf
    assert gpu_hours_to_width(h, 0.6) == 0.0


def test_a_width_made_of_boundary_values_does_not_count():
    h = pd.DataFrame(
        {
            "round": [1, 2],
            "cum_gpu_hours": [5.0, 12.0],
            "width_before": [0.5, 0.0],
            "width_after": [0.0, 0.05],
            "clipped_share_before": [0.1, 0.9],
            "clipped_share_after": [0.9, 0.2],
        }
    )
    assert gpu_hours_to_width(h, 0.1) == 12.0


class _Shifted:
    """An executor whose runs measure ``factor`` times what the world says: a law the posterior cannot know."""

    def __init__(self, inner, factor):
        self.inner, self.factor = inner, factor

    def run(self, probes, round):  # noqa: A002 (the executor protocol's name)
        rows = self.inner.run(probes, round=round)
        return rows.assign(**{f"loss_{t}": rows[f"loss_{t}"] * self.factor for t in ("general", "domain")})


def test_the_loop_checks_its_new_runs_against_the_bands_it_predicted(setting):
    """Each round's probes are runs no fit has seen: the loop scores them against the bands its posterior predicted
    before they ran, and says when its law keeps missing them."""
    world = setting[0]
    fair = make_loop(setting, strategy="uniform", k=3, max_rounds=2)
    res = fair.run()
    assert {"inside_general", "inside_domain", "mape_general"} <= set(res.history.columns)
    assert not any(c.startswith("run_inside_") for c in res.history.columns)
    check = res.new_runs_check()
    assert check["general"]["runs"] == 6 and not check["general"]["established"]
    shifted = make_loop(setting, strategy="uniform", k=3, max_rounds=2,
                        executor=_Shifted(SimulatorExecutor(world, seed=1, n_checkpoints=5, first_fraction=0.1),
                                          1.15))
    check = shifted.run().new_runs_check()
    assert check["general"]["inside"] < 0.6 and check["general"]["established"], check
    assert check["domain"]["established"]
