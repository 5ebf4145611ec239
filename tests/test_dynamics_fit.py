"""The Bayesian CPT dynamics fit on a simulated truth: recovery, an unseen schedule, save/load, the schedule
decision, the planner with the schedule as a design variable, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import without_config_key

from bayes_dcpt.errors import DataValidationError, FitError, InputError
from bayes_dcpt.plan.simulate_dynamics import DEFAULT_SCHEDULES, DynamicsWorld
from bayes_dcpt.posterior.dynamics import DynamicsPosterior

pytestmark = pytest.mark.slow

FIT_KW = {"draws": 300, "tune": 400, "chains": 2, "seed": 3, "warn": False}
WSD = DEFAULT_SCHEDULES["wsd"].spec()


@pytest.fixture(scope="session")
def dyn_world() -> DynamicsWorld:
    return DynamicsWorld.default()


@pytest.fixture(scope="session")
def dyn_data(dyn_world) -> pd.DataFrame:
    return dyn_world.simulate(dyn_world.grid(every=32), seed=11)


@pytest.fixture(scope="session")
def dyn_fit(dyn_data):
    from bayes_dcpt.fitting.dynamics import fit_dynamics

    train = dyn_data[~dyn_data["run_id"].str.endswith("sched=wsd")]
    return fit_dynamics(train, **FIT_KW)


def test_auto_variant_and_recovery(dyn_fit, dyn_world, dyn_data):
    assert dyn_fit.law.name == "cpt-dynamics-replay"  # several ratios, one model size
    post = dyn_fit.posterior
    assert isinstance(post, DynamicsPosterior) and post.targets == ("general", "domain")
    # the noise is recovered
    for t in ("general", "domain"):
        s = post.noise[t]["sigma"]
        assert 0.5 * dyn_world.sigma < np.median(s) < 2.0 * dyn_world.sigma
    # the law's band (parameter uncertainty) covers the true noise-free curves of the fitted runs
    train = dyn_data[~dyn_data["run_id"].str.endswith("sched=wsd")]
    rows = train[["domain", "n_params", "r_domain", "schedule", "step", "run_id"]].copy()
    rows.loc[train["tokens"] == 0, "schedule"] = WSD  # base rows: any schedule, step 0
    pred = dyn_fit.predict(rows, ci=0.9, kind="mean")
    for t in ("general", "domain"):
        truth = dyn_world.law_values(train, t)
        inside = (truth >= pred[f"loss_{t}_lo"]) & (truth <= pred[f"loss_{t}_hi"])
        assert inside.mean() >= 0.8
        assert np.mean(np.abs(pred[f"loss_{t}_mean"] - truth) / truth) < 0.002
    s = dyn_fit.summary()
    assert {"L0[general/python]", "C2[domain/python]", "sigma[general]"} <= set(s.index)


def test_predicts_an_unseen_schedule_with_calibrated_bands(dyn_fit, dyn_data, dyn_world):
    test = dyn_data[dyn_data["run_id"].str.endswith("sched=wsd")]
    pred = dyn_fit.predict(test[["domain", "n_params", "r_domain", "schedule", "step", "run_id"]], ci=0.9)
    # 3 held-out runs of 10 checkpoints, 2 of them inside the LR warm-up (10 steps): the misses of the general
    # loss's band cluster at those two (a transient of a schedule never fitted) and within a run (they share its
    # offset), so coverage is lumpy; past the warm-up it must be near nominal, over all checkpoints not far below
    past_warmup = (test["step"] > 10).to_numpy()
    for t in ("general", "domain"):
        y = test[f"loss_{t}"].to_numpy()
        mape = np.mean(np.abs(pred[f"loss_{t}_mean"].to_numpy() - y) / y)
        inside = (y >= pred[f"loss_{t}_lo"].to_numpy()) & (y <= pred[f"loss_{t}_hi"].to_numpy())
        assert mape < 0.005 and 0.75 <= inside[past_warmup].mean() <= 1.0 and inside.mean() >= 0.65
    # whole curves, every step: identical until the WSD decay starts, then the predicted gap between the
    # schedules' final losses is the true one (here the anneal does not make up for WSD's smaller S1cpt)
    wsd = dyn_fit.curve("python", dyn_world.n_params, 0.5, WSD, kind="mean")
    const = dyn_fit.curve("python", dyn_world.n_params, 0.5, DEFAULT_SCHEDULES["const"], kind="mean")
    assert len(wsd) == 257 and wsd["step"].tolist() == list(range(257))
    assert np.allclose(wsd["loss_domain_mean"].iloc[:200], const["loss_domain_mean"].iloc[:200])
    for t in ("general", "domain"):
        gap = wsd[f"loss_{t}_mean"].iloc[-1] - const[f"loss_{t}_mean"].iloc[-1]
        true = np.diff([dyn_world.law_values(c.iloc[[-1]], t)[0] for c in (const, wsd)])[0]
        assert np.sign(gap) == np.sign(true) and abs(gap - true) < 0.003


def test_save_load_round_trip(dyn_fit, tmp_path):
    from bayes_dcpt.fitting.dynamics import load_dynamics_fit

    p = dyn_fit.save(tmp_path / "dyn.nc")
    back = load_dynamics_fit(p)
    rows = back.posterior.curve_rows("python", 1e5, 0.5, WSD, steps=[0, 100, 256])
    a = dyn_fit.predict(rows, seed=4)
    b = back.predict(rows, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert back.law.name == dyn_fit.law.name and back.card()["config"]["momentum"] == 0.999
    assert back.diagnostics(warn=False).as_dict() == dyn_fit.diagnostics(warn=False).as_dict()
    # the card keeps the keys (and order) of the files saved before the split
    assert list(back.card()) == ["package", "version", "law", "law_formula", "config", "config_key", "priors",
                                 "data_hash", "data_rows", "groups", "sampler", "diagnostics", "notes", "created"]
    assert repr(back).startswith("<DynamicsFit cpt-dynamics-replay groups=['general/python', 'domain/python'] "
                                 "draws=600")
    with pytest.raises(Exception, match=r"not a bayes-dcpt fit|no such fit"):
        load_dynamics_fit(tmp_path / "missing.nc")


def test_run_offsets_integrated_out_with_loo_terms(dyn_fit, tmp_path):
    """The dynamics fit integrates its run offsets out too: no per-run latent, LOO from the non-factorised terms,
    and a card written before the option loads as the sampled form."""
    from bayes_dcpt.fitting.dynamics import load_dynamics_fit

    assert dyn_fit.config.run_offsets == "marginal" and dyn_fit.posterior.ctx.get("run_mixing")
    assert "z_run" not in dyn_fit.idata["posterior"]
    ll = np.asarray(dyn_fit.log_likelihood()["obs_log_loss"])
    assert ll.shape[:2] == (2, 300) and np.isfinite(ll).all()
    assert np.isfinite(dyn_fit.loo().elpd)
    old = without_config_key(dyn_fit.save(tmp_path / "dyn.nc"), "run_offsets", tmp_path / "old.nc")
    assert load_dynamics_fit(old).config.run_offsets == "latent"


def test_sampled_run_offsets_refit_from_the_cached_model(dyn_data):
    """The sampled form stays available, and a refit with new data reuses its compiled model."""
    from bayes_dcpt.fitting.dynamics import fit_dynamics

    kw = {**FIT_KW, "draws": 30, "tune": 30, "run_offsets": "latent"}
    first = fit_dynamics(dyn_data[~dyn_data["run_id"].str.endswith("sched=wsd")], **kw)
    again = fit_dynamics(dyn_data[~dyn_data["run_id"].str.endswith("sched=cosine")], **kw)
    assert "z_run" in first.idata["posterior"] and "z_run" in again.idata["posterior"]
    assert "run_mixing" not in again.posterior.ctx


def test_prediction_rows_are_validated(dyn_fit):
    with pytest.raises(DataValidationError, match="column 'schedule': required column is missing"):
        dyn_fit.predict(pd.DataFrame({"n_params": [1e5], "r_domain": [0.5], "step": [3]}))
    with pytest.raises(DataValidationError, match="column 'step': beyond the end"):
        dyn_fit.predict({"n_params": [1e5], "r_domain": [0.5], "step": [300], "schedule": [WSD]})
    with pytest.raises(Exception, match="predicts points on runs with a schedule"):
        dyn_fit.posterior.surface("general", "python", 1e5, 1e6, 0.5)


def test_bad_fit_inputs(dyn_data):
    from bayes_dcpt.fitting.dynamics import fit_dynamics

    with pytest.raises(FitError, match="needs at least two model sizes"):
        fit_dynamics(dyn_data, "cpt-dynamics-n", **FIT_KW)
    with pytest.raises(FitError, match="not a CPT dynamics law"):
        fit_dynamics(dyn_data, "dcpt", **FIT_KW)
    with pytest.raises(DataValidationError, match="column 'base_schedule'"):
        fit_dynamics(dyn_data.drop(columns=["base_schedule"]), **FIT_KW)


# ------------------------------------------------------------------------------------------ decisions
def test_schedule_decision_per_draw(dyn_fit, dyn_world):
    from bayes_dcpt.decide.lr_choice import candidate_grid, choose_schedule

    cands = candidate_grid(DEFAULT_SCHEDULES, [0.25, 0.5, 0.75])
    d = choose_schedule(dyn_fit.posterior, cands, max_general_increase=0.03)
    tab = d.table()
    w = 1.0 / d.n_draws
    assert tab["P_best"].sum() == pytest.approx(1 - d.extras["counts"]["infeasible"] * w)
    # each draw's choice is the feasible candidate with the lowest domain loss (checked by brute force)
    lg, ld, ok = d.curves["loss_general"], d.curves["loss_domain"], d.curves["feasible"]
    brute = np.where(ok.any(1), np.argmin(np.where(ok, ld, np.inf), 1), -1)
    assert np.array_equal(brute, d.posterior["choice"].to_numpy())
    base = dyn_fit.posterior.base_loss("python", dyn_world.n_params)
    assert np.array_equal(ok, lg <= base * 1.03)
    ra = d.extras["risk_aware"]
    if ra["feasible"]:
        assert ra["P_feasible"] >= 0.9
    # the peak along the run is a stricter constraint than the end (a re-warmup bump counts)
    run = choose_schedule(dyn_fit.posterior, cands, max_general_increase=0.03, over="run").table()
    assert (run["P_feasible"].to_numpy() <= tab["P_feasible"].to_numpy() + 1e-12).all()
    # no threshold: every draw picks the lowest domain loss overall
    free = choose_schedule(dyn_fit.posterior, cands, max_general_increase=10.0)
    assert free.extras["counts"]["infeasible"] == 0
    assert np.array_equal(free.posterior["choice"].to_numpy(), np.argmin(ld, axis=1))
    js = d.to_json()
    assert len(js["candidates"]) == len(cands) and "risk_aware" in js
    json.dumps(js)
    fig = d.plot()
    assert fig.axes and str(d.summary())
    # the true best candidate under the truth is a likely choice
    truth_rows = pd.DataFrame({"domain": "python", "n_params": dyn_world.n_params, "r_domain": cands["r_domain"],
                               "schedule": cands["schedule"], "step": 256,
                               "base_schedule": dyn_world.base_schedule.spec()})
    tg, td = dyn_world.law_values(truth_rows, "general"), dyn_world.law_values(truth_rows, "domain")
    base_true = dyn_world.law_values(truth_rows.assign(step=0), "general")
    ok_true = tg <= base * 1.03
    if ok_true.any():
        best = int(np.argmin(np.where(ok_true, td, np.inf)))
        assert tab["P_best"].iloc[best] >= 0.1
    assert np.allclose(base_true, base_true[0])


def test_schedule_decision_errors(dyn_fit):
    from bayes_dcpt.decide.lr_choice import choose_schedule

    with pytest.raises(DataValidationError, match=r"column 'schedule': .*needs peak and steps"):
        choose_schedule(dyn_fit.posterior, pd.DataFrame({"schedule": ["cosine(peak=1)"], "r_domain": [0.5]}))
    with pytest.raises(InputError, match="over must be"):
        choose_schedule(dyn_fit.posterior, pd.DataFrame({"schedule": [WSD], "r_domain": [0.5]}), over="peak")
    with pytest.raises(InputError, match="dynamics fit"):
        choose_schedule(object(), pd.DataFrame({"schedule": [WSD], "r_domain": [0.5]}))


# ------------------------------------------------------------------------------------------- planner
def test_planner_takes_the_schedule_as_a_design_variable(dyn_fit, dyn_world):
    from bayes_dcpt.plan.candidates import checkpoint_frame, eval_checkpoints, validate_candidates
    from bayes_dcpt.plan.planner import loss_target, suggest

    tokens = 256 * dyn_world.tokens_per_step
    cands = pd.DataFrame([{"domain": "python", "n_params": dyn_world.n_params, "tokens": tokens, "r_domain": r,
                           "schedule": s.spec(), "n_checkpoints": 6} for s in DEFAULT_SCHEDULES.values()
                          for r in (0.25, 0.5, 0.75)])
    cv = validate_candidates(cands)
    long = checkpoint_frame(cv, eval_checkpoints(cv))
    assert long["step"].max() == 256 and long["step"].min() >= 1 and "schedule" in long
    target = loss_target(pd.DataFrame({"domain": ["python"], "n_params": [dyn_world.n_params], "tokens": [tokens],
                                       "r_domain": [0.5], "schedule": [WSD], "step": [256]}), "domain")
    plan = suggest(dyn_fit.posterior, cands, target, k=2, verify_top=0, max_draws=300)
    assert len(plan.table) >= 1 and "schedule" in plan.table
    # the schedule is a design variable: at the target's ratio, a WSD probe tells far more about the WSD
    # run's final domain loss than the flat schedule (no re-warmup, no anneal) does
    sc = plan.scores.set_index(["schedule", "r_domain"])["U_z"]
    assert plan.table.iloc[0]["r_domain"] == 0.5
    assert sc[(WSD, 0.5)] > 3 * sc[(DEFAULT_SCHEDULES["flat"].spec(), 0.5)]
    assert sc[(WSD, 0.5)] > sc.xs(0.25, level="r_domain").max()
    bad = cands.assign(schedule=["cosine(peak=1)", *list(cands["schedule"][1:])])
    with pytest.raises(DataValidationError, match=r"column 'schedule': .*\(row 1\)"):
        validate_candidates(bad)
    with pytest.raises(DataValidationError, match="schedule"):
        suggest(dyn_fit.posterior, cands.drop(columns=["schedule"]), target, k=1, verify_top=0)


# ----------------------------------------------------------------------------------------------- CLI
def test_cli_fit_predict_choose(cli, dyn_data, tmp_path):
    data = tmp_path / "d.csv"
    dyn_data[~dyn_data["run_id"].str.endswith("sched=wsd")].to_csv(data, index=False)
    out = tmp_path / "f.nc"
    code, so, se = cli("fit-dynamics", data, "--out", out, "--draws", "60", "--tune", "60", "--chains", "2",
                       "--seed", "3", "--json")
    res = json.loads(so)
    # 60 draws cannot pass the ESS check: a bad fit exits 3 (the file is written), never 0 silently
    assert code == (0 if res["diagnostics"]["sampler_ok"] else 3), se
    assert res["exit_code"] == code
    assert res["law"] == "cpt-dynamics-replay" and out.is_file()
    code, so, se = cli("predict-curve", out, "--schedule", WSD, "--n-params", "1e5", "--r-domain", "0.5",
                       "--out", tmp_path / "c.csv")
    assert code == 0, se
    # a bad fit's curves and decisions are said to be untrustworthy, as predict and optimize say it (they were not)
    bad = not res["diagnostics"]["ok"]
    assert ("not to be trusted" in se) == bad, se
    curve = pd.read_csv(tmp_path / "c.csv")
    assert len(curve) == 257 and {"loss_general_lo", "loss_domain_hi", "S2cpt"} <= set(curve.columns)
    code, so, se = cli("choose-schedule", out, "--schedule", f"wsd={WSD}", "--schedule",
                       f"const={DEFAULT_SCHEDULES['const'].spec()}", "--ratios", "0.25,0.75", "--json")
    assert code == 0, se
    js = json.loads(so)
    assert {c["name"] for c in js["candidates"]} == {"wsd", "const"}
    assert js["diagnostics"]["ok"] == res["diagnostics"]["ok"] and ("not to be trusted" in se) == bad
    code, so, se = cli("choose-schedule", out, "--schedule", "wsd=cosine(peak=1)", "--ratios", "0.5")
    assert code == 2 and "needs peak and steps" in se and "Traceback" not in se
    code, so, se = cli("predict-curve", out)
    assert code == 2 and "give either a ROWS file or --schedule" in se
    code, so, se = cli("fit-dynamics", tmp_path / "missing.csv")
    assert code == 2 and "no such file" in se
