"""How far the held-out refits measured the law's error ("reach"), and the caution on questions asked farther out.

The bands beyond the data grow with the distance at slopes the held-out refits measure, but only as far out as
their held-out points lay (the largest size a few times the next, a run's last third of log tokens). A question at
15,000x the largest probed size is answered by carrying that slope on: an assumption, which the decisions, the
predictions, the planner and the fit's own line now name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt.decide.ratio import tradeoff
from bayes_dcpt.fitting import load_fit
from bayes_dcpt.fitting.extrapolation import discrepancy_from_scores
from bayes_dcpt.fitting.holdout import HoldoutScore
from bayes_dcpt.plan.planner import reach_notes
from bayes_dcpt.plan.targets import critical_ratio_target, loss_target
from bayes_dcpt.posterior.extrapolation import REACH_FACTOR, beyond_reach, reach_words
from bayes_dcpt.report.wording import extrapolation_line

MODEL = Path(__file__).parents[1] / "models" / "example_cpt.nc"
FAR = {"n_params": 7e9, "tokens": 1e10}  # a 7B model from probes of at most 443k parameters
NEAR = {"n_params": 443232.0, "tokens": 4 * 524288.0}  # the demo's question: 4x the largest probed tokens


def _score(kind: str, d_tokens: np.ndarray, d_size: np.ndarray) -> HoldoutScore:
    rng = np.random.default_rng(0)
    n = len(d_tokens)
    pts = pd.DataFrame({"split": kind, "target": "general", "run_id": [f"r{i // 4}" for i in range(n)],
                        "log_error": rng.normal(0, 0.01, n), "log_sd": 0.01, "delta_tokens": d_tokens,
                        "delta_size": d_size, "delta_ratio": 0.0})
    return HoldoutScore("L", kind, pd.DataFrame(), pts)


def test_reach_is_the_farthest_held_out_distance_along_each_axis():
    late = _score("tokens", np.tile(np.linspace(0.2, 0.7, 4), 10), np.zeros(40))
    early = _score("tokens_early", np.tile(np.linspace(0.3, 1.4, 4), 10), np.zeros(40))
    size = _score("size", np.zeros(40), np.full(40, 1.48))
    both = discrepancy_from_scores([late, early, size], ["general"])["general"]
    assert both["reach"] == {"tokens": pytest.approx(1.4), "size": pytest.approx(1.48), "ratio": None}
    alone = discrepancy_from_scores([late], ["general"])["general"]  # one origin, no size split
    assert alone["reach"] == {"tokens": pytest.approx(0.7), "size": None, "ratio": None}
    assert alone["size"] is None


def test_beyond_reach_names_each_case():
    disc = {"general": {"tokens": 0.02, "size": 0.01, "ratio": None,
                        "reach": {"tokens": 1.4, "size": 1.48, "ratio": None}}}
    ctx = {"discrepancy": disc}
    assert beyond_reach(ctx, "general", {"tokens": 1.39, "size": 0.0, "ratio": 0.3}) == {}  # inside reach
    margin = np.log(REACH_FACTOR)  # "twice as far out" as a factor: 16x measured -> cautioned beyond 32x
    assert beyond_reach(ctx, "general", {"tokens": 1.4 + margin - 0.01, "size": 0.0}) == {}
    assert beyond_reach(ctx, "general", {"tokens": 1.4 + margin + 0.01})["tokens"]["why"] == "beyond"
    far = beyond_reach(ctx, "general", {"tokens": 0.5, "size": np.log(7e9 / 443232)})
    assert list(far) == ["size"] and far["size"]["why"] == "beyond" and far["size"]["reach"] == 1.48
    words = reach_words(far)
    assert "model size 15,793x outside the probed sizes" in words and "out to 4.39x" in words
    assert "assumption" in words
    # an axis no refit measured (one probed size): the band does not widen along it
    one_size = {"discrepancy": {"general": {"tokens": 0.02, "size": None, "reach": {"tokens": 1.4}}}}
    far = beyond_reach(one_size, "general", {"tokens": 0.0, "size": 0.7})
    assert far["size"]["why"] == "unmeasured" and "does not widen" in reach_words(far)
    # a fit without calibration: any distance beyond the data is the parameters' uncertainty alone
    far = beyond_reach({}, "general", {"tokens": 0.2, "size": 0.0})
    assert far["tokens"]["why"] == "uncalibrated" and "not calibrated" in reach_words(far)
    # a fit saved before reaches were recorded: its measured slopes are not second-guessed
    old = {"discrepancy": {"general": {"tokens": 0.02, "size": 0.01}}}
    assert beyond_reach(old, "general", {"tokens": 9.0, "size": 9.0}) == {}
    assert beyond_reach(ctx, "general", {"ratio": 0.9}) == {}  # between probed ratios: interpolation


@pytest.fixture(scope="module")
def committed():
    return load_fit(MODEL)


def test_the_committed_model_records_its_reach(committed):
    reach = committed.posterior.ctx["discrepancy"]["general"]["reach"]
    assert reach["size"] == pytest.approx(np.log(443232 / 100672), rel=1e-6)  # the size split: 443k from 101k
    # the early origin: its refit fits the first two checkpoints after the LR warm-up (32k, 65k) and predicts to 524k
    assert reach["tokens"] == pytest.approx(np.log(524288 / 65536), rel=1e-6)
    line = extrapolation_line(committed)
    assert "measured the law's error out to 4.4x in model size and 8x in tokens" in " ".join(line.split())


def test_a_decision_far_beyond_the_data_says_so_and_the_demo_question_does_not(committed):
    far = tradeoff(committed.posterior, domain="python", max_general_increase=0.03, **FAR)
    notes = [n for n in far.summary().notes if n.startswith("CAUTION: this question lies beyond")]
    assert len(notes) == 1 and "15,793x" in notes[0]
    assert set(json.loads(json.dumps(far.to_json()))["inputs"]["beyond_reach"]) == {"tokens", "size"}
    small = tradeoff(committed.posterior, domain="python", max_general_increase=0.03, n_params=1000.0,
                     tokens=NEAR["tokens"])  # 13x below the smallest probed size, where 4.4x was measured
    assert set(small.inputs["beyond_reach"]) == {"size"}
    near = tradeoff(committed.posterior, domain="python", max_general_increase=0.03, **NEAR)
    assert "beyond_reach" not in near.inputs
    assert not any("lies beyond" in n for n in near.summary().notes)


def test_the_planner_cautions_on_a_target_beyond_reach(committed):
    post = committed.posterior
    far = reach_notes(post, critical_ratio_target("python", **FAR).where)
    assert len(far) == 1 and far[0].startswith("CAUTION: the target lies beyond")
    assert reach_notes(post, critical_ratio_target("python", **NEAR).where) == []
    pts = pd.DataFrame({"domain": ["python"], "n_params": [7e9], "tokens": [1e6], "r_domain": [0.5]})
    assert "model size" in reach_notes(post, loss_target(pts).where)[0]


def test_predict_names_the_rows_beyond_reach(tmp_path, cli):
    grid = tmp_path / "grid.csv"
    grid.write_text("domain,n_params,tokens,r_domain\npython,443232,2097152,0.5\npython,7e9,1e10,0.5\n")
    code, _, err = cli("predict", MODEL, grid)
    assert code == 0
    assert "CAUTION: 1 of 2 rows lie beyond what the fit's data checked: row 2 (line 3 of the file)" in " ".join(
        err.split())
    code, out, _ = cli("predict", MODEL, grid, "--json")
    payload = json.loads(out)
    assert [r["row"] for r in payload["beyond_reach"]] == [2]
    assert payload["beyond_reach"][0]["axes"]["size"]["why"] == "beyond"
    code, _, err = cli("predict", MODEL, grid, "--kind", "mean")
    assert "without its error beyond the data" in " ".join(err.split())


def test_compute_and_limited_data_answers_far_out_are_cautioned(committed):
    from bayes_dcpt.decide.limited import limited_data

    lim = limited_data(committed.posterior, domain="python", n_params=7e9, domain_tokens=1e10)
    assert "size" in lim.inputs["beyond_reach"]
    assert any(n.startswith("CAUTION: this question lies beyond") for n in lim.summary().notes)
    from bayes_dcpt.decide.compute import compute_allocation

    dcpt = load_fit(MODEL.with_name("example_dcpt.nc"))
    comp = compute_allocation(dcpt.posterior, flops=1e15, domain="python")
    assert "size" in comp.inputs["beyond_reach"]  # N_opt ~ 1e7 from probes of at most 443k parameters
    assert any(n.startswith("CAUTION: the answer (its median size and tokens) lies beyond")
               for n in comp.summary().notes)


def test_commands_that_read_a_fit_say_its_refits_did_not_converge(tmp_path, cli):
    """The committed D-CPT fit's three held-out refits are unconverged: the bands beyond its data rest on them, so
    predict (like fit and the report) says so, on stderr and in --json; the CPT fit's two unconverged refits too."""
    grid = tmp_path / "grid.csv"
    grid.write_text("domain,n_params,tokens,r_domain\npython,443232,2097152,0.5\n")
    dcpt = MODEL.with_name("example_dcpt.nc")
    _, _, err = cli("predict", dcpt, grid)
    warned = [ln for ln in err.splitlines() if ln.startswith(("warning:", "caution:"))]
    assert len(warned) == 1  # one warning on a bad fit: the misfit, and its refits in the same line
    assert "does not describe the data" in warned[0] and "held-out refits did not converge (tokens: R-hat" in warned[0]
    _, out, _ = cli("predict", dcpt, grid, "--json")
    assert json.loads(out)["diagnostics"]["refits_unconverged"].startswith("tokens: R-hat")
    # the CPT fit describes its data; two of its refits (later tokens from both origins) stayed at R-hat 1.010 and
    # 1.012: said the same way, without the misfit
    _, out, err = cli("predict", MODEL, grid, "--json")
    said = json.loads(out)["diagnostics"]["refits_unconverged"]
    assert said.startswith("tokens: R-hat") and "tokens_early: R-hat" in said and "size:" not in said
    assert "2 held-out refits did not converge (tokens: R-hat" in " ".join(err.split())
    assert "does not describe the data" not in err


def test_a_question_before_the_earliest_fitted_checkpoint_is_cautioned(committed, tmp_path, cli):
    """The law is fitted from the first checkpoint after the LR warm-up (32,768 tokens on the example): a question
    at 1,000 tokens lies where no checkpoint checked it. The base model (tokens = 0) is data, not a question."""
    env = committed.posterior.ctx["envelope"]["python"]
    assert set(env["d_min"].values()) == {32768.0}  # recomputed from the fitted rows when a saved fit is loaded
    ctx = committed.posterior.ctx
    dist = committed.posterior.extrapolation("python", 100672.0, [1000.0, 20000.0, 0.0, 32768.0], 0.5)
    assert dist["early_tokens"] == pytest.approx([np.log(32.768), np.log(32768 / 20000), 0.0, 0.0])
    assert beyond_reach(ctx, "general", {"early_tokens": np.log(32768 / 20000)}) == {}  # within REACH_FACTOR
    far = beyond_reach(ctx, "general", {"early_tokens": np.log(32.768)})
    assert far["early_tokens"]["why"] == "early" and "32.8x below the earliest fitted checkpoint" in reach_words(far)
    # it widens no band: the slopes measure the error forwards in tokens, not backwards
    assert committed.posterior.discrepancy_sd("general", "python", 100672.0, 1000.0, 0.5) == 0.0
    early = tradeoff(committed.posterior, domain="python", max_general_increase=0.03, n_params=100672.0, tokens=1000.0)
    assert set(early.inputs["beyond_reach"]) == {"early_tokens"}
    note = next(n for n in early.summary().notes if n.startswith("CAUTION: this question lies beyond"))
    assert "ask at tokens the runs were fitted at" in note and "probe closer" not in note
    grid = tmp_path / "grid.csv"
    grid.write_text("domain,n_params,tokens,r_domain\npython,100672,0,0.5\npython,100672,1000,0.5\n")
    code, out, _ = cli("predict", MODEL, grid, "--json")
    assert code == 0 and [r["row"] for r in json.loads(out)["beyond_reach"]] == [2]


def test_suggest_says_its_widths_are_assumed_for_a_target_beyond_reach(cli, tmp_path):
    """The expected widths ('0.955 now, 0.317 after') of a 7e9-parameter target read as plain claims; the line
    now says they are the law's carried out there, and plan.checks records it for a script."""
    cands = tmp_path / "c.csv"
    cands.write_text("domain,n_params,tokens,r_domain\npython,443232,2097152,0.5\n")
    args = ("suggest", MODEL, "--candidates", cands, "--domain", "python", "-k", "1")
    code, out, err = cli(*args, "--n-params", "7e9", "--tokens", "1e10")
    assert code == 0, err
    assert "both widths are the law's carried out to a target beyond what the fit's data checked" in " ".join(
        out.split())
    code, out, err = cli(*args, "--n-params", str(NEAR["n_params"]), "--tokens", str(NEAR["tokens"]))
    assert code == 0 and "carried out to a target beyond" not in " ".join(out.split())


def test_the_earliest_tokens_of_a_size_nobody_probed_are_its_nearest_smaller_probed_sizes():
    """As the largest tokens are read: a size between probed ones takes the smaller one's earliest checkpoint; a
    question both far and early gets both remedies."""
    from bayes_dcpt.posterior.extrapolation import EARLY, domain_envelope, reach_remedy

    env = domain_envelope({"code": {"n_max": 1e9, "n_min": 1e8, "d_max": {"100000000.0": 1e10, "1000000000.0": 1e10},
                                    "d_min": {"100000000.0": 1e6, "1000000000.0": 1e8}, "ratios": [0.5]}}, "code")
    np.testing.assert_allclose(env.tokens_floor(np.array([1e9, 0.99e9, 7e9, 1e7])), [1e8, 1e6, 1e8, 1e6])
    both = {"size": {"distance": 9.0, "reach": 1.5, "why": "beyond"}, EARLY: {"distance": 4.0, "why": "early"}}
    said = reach_remedy(both)
    assert said.startswith("probe closer to it") and "ask at tokens the runs were fitted at" in said
    assert reach_remedy({EARLY: both[EARLY]}).startswith("ask at tokens")


def test_a_size_slope_from_a_one_size_refit_is_cautioned():
    """With two probed sizes the size split refits one size, which has no size trend of its own: its band at the
    held-out size is wide enough to hold the law's error there, so it measures a slope of about 0 whatever the
    two-size fit misses beyond its sizes (on the long grid the law's r* at 4.4x missed the measured crossing by
    0.12 with an interval 0.07 wide). Every question beyond the probed sizes is then cautioned, even within reach;
    a size refit of two or more sizes measures the slope as before."""
    tokens = _score("tokens", np.tile(np.linspace(0.2, 0.7, 4), 10), np.zeros(40))
    size = _score("size", np.zeros(40), np.full(40, 2.0))
    size.info["fitted_sizes"] = 1
    disc = discrepancy_from_scores([tokens, size], ["general"])
    assert disc["general"]["size_from_one_size"] is True
    ctx = {"discrepancy": disc}
    far = beyond_reach(ctx, "general", {"tokens": 0.0, "size": np.log(4.4)})  # within the 7.4x measured
    assert list(far) == ["size"] and far["size"]["why"] == "one size"
    words = reach_words(far)
    assert "fitted one size" in words and "4.4x outside the probed sizes" in words
    assert beyond_reach(ctx, "general", {"tokens": 0.5, "size": 0.0}) == {}  # at a probed size: nothing to say
    size.info["fitted_sizes"] = 2
    disc = discrepancy_from_scores([tokens, size], ["general"])
    assert "size_from_one_size" not in disc["general"]
    assert beyond_reach({"discrepancy": disc}, "general", {"tokens": 0.0, "size": np.log(4.4)}) == {}


def test_the_size_refit_records_how_many_sizes_it_fitted(small_fit, df3):
    """The held-out refit of the size split records the sizes it fitted (the flag above reads it), and a two-size
    fit's extrapolation line says its size error is not measured."""
    from types import SimpleNamespace

    from bayes_dcpt.fitting.extrapolation import law_holdout_scores, model_settings

    sizes = np.sort(df3.loc[df3["tokens"] > 0, "n_params"].unique())
    two = df3[df3["n_params"].isin(sizes[-2:])].reset_index(drop=True)
    scores = law_holdout_scores(two, small_fit.law, "both", model_settings(small_fit), ("size",),
                                zero_ratio=small_fit.config.zero_ratio, seed=1,
                                refit={"draws": 15, "tune": 15, "chains": 2, "retry": None})
    assert [s.split for s in scores] == ["size"] and scores[0].info["fitted_sizes"] == 1
    disc = discrepancy_from_scores(scores, ["general", "domain"])
    assert all(disc[t]["size_from_one_size"] for t in ("general", "domain"))
    line = extrapolation_line(SimpleNamespace(extrapolation={"splits": ["size"], "discrepancy": disc}))
    assert "refit fitted one size" in line and "in model size" not in line  # no size reach claimed
