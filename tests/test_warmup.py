"""The LR warm-up's checkpoints, told by the run's schedule where it is known, else by the logged LRs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayes_dcpt import data as _data
from bayes_dcpt.data.warmup import after_burn_in, in_warmup, warmup_steps
from bayes_dcpt.datasets import load_example, load_long_cpt


@pytest.mark.parametrize(("spec", "steps"), [
    ("constant(peak=0.0005, steps=256, warmup=10)", 10),      # lr_i = peak i / 10: 99% of it at step 10
    ("cosine(peak=0.003, steps=512, warmup=50, final=3e-4)", 50),
    ("wsd(peak=1e-3, steps=100, warmup=200)", None),          # not a valid schedule (warm-up longer than the run)
    ("cosine(peak=1e-3, steps=100)", 0),                       # no warm-up
    ("[0.1, 0.5, 0.995, 1.0, 1.0]", 3),                         # explicit: 99% of the peak first at step 3
    ("wsd", None),                                             # a name resolved elsewhere
    ("file:lrs.npy", None),                                    # a file this check does not open
    ("", None),
])
def test_warmup_steps_of_a_schedule(spec, steps):
    assert warmup_steps(spec) == steps


@pytest.mark.parametrize("load", [load_example, load_long_cpt])
def test_the_schedule_and_the_logged_lrs_agree_on_the_packaged_grids(load):
    """Whole runs: the schedule flags the rows the logged LRs flag (the fits of these grids do not move)."""
    df = load()
    by_schedule = in_warmup(df)
    by_lr = in_warmup(df.drop(columns="schedule"))
    assert by_schedule.any()
    np.testing.assert_array_equal(by_schedule, by_lr)
    assert not in_warmup(df.drop(columns=["schedule", "lr"])).any()  # neither: nothing is flagged


def _run_in_progress():
    """An example run whose logged checkpoints all lie inside its warm-up (8k and 16k tokens, 40% and 80% of the
    peak LR), beside the example's complete runs."""
    df = load_example()
    run = df.loc[df["tokens"] > 0, "run_id"].iloc[0]
    partial = (df["run_id"] == run) & (df["tokens"] > 16384)
    return df[~partial].reset_index(drop=True), run


def test_a_run_still_warming_is_all_warm_up_when_its_schedule_is_known():
    df, run = _run_in_progress()
    mine = (df["run_id"] == run).to_numpy()
    assert in_warmup(df)[mine].all()
    assert not (after_burn_in(df)["run_id"] == run).any()  # nothing of it is fitted, nor conditioned on
    # with the logged LRs alone the run's last checkpoint is taken for its peak (the limit the schedule lifts)
    by_lr = in_warmup(df.drop(columns="schedule"))
    assert by_lr[mine].tolist() == [True, False]
    np.testing.assert_array_equal(in_warmup(df)[~mine], by_lr[~mine])


def test_an_explicit_schedule_and_rows_without_one():
    """A JSON list of per-step LRs tells like a spec; a run without a readable schedule falls back to its LRs."""
    df = load_example()
    run = df.loc[df["tokens"] > 0, "run_id"].iloc[0]
    mine = df["run_id"] == run
    df.loc[mine, "schedule"] = json.dumps([5e-5 * i for i in range(1, 10)] + [5e-4] * 247)  # 10 warm-up steps
    np.testing.assert_array_equal(in_warmup(df), in_warmup(load_example()))
    df.loc[mine, "schedule"] = "my_schedule"  # a name: the logged LRs decide for this run
    np.testing.assert_array_equal(in_warmup(df), in_warmup(load_example()))


def test_the_schema_module_keeps_its_names():
    assert _data.in_warmup is in_warmup and _data.after_burn_in is after_burn_in


def test_a_stored_run_in_progress_is_left_out_until_it_passes_its_warmup(tmp_path):
    """Through the experiment store (the planner's loop reads its runs from it): the schedule travels with the
    run, so a run whose checkpoints all lie inside its warm-up conditions nothing until it reaches its peak LR."""
    from bayes_dcpt.data import Store

    df, run = _run_in_progress()
    store = Store(tmp_path / "runs.sqlite")
    store.import_frame(df)
    back = store.to_frame()
    mine = (back["run_id"] == run).to_numpy()
    assert mine.sum() == 2 and in_warmup(back)[mine].all()
    assert int(in_warmup(back).sum()) == int(in_warmup(df).sum())


def test_data_whose_every_checkpoint_is_warming_say_so(cli, tmp_path):
    """Probes stopped inside their warm-up have nothing the law describes: one error that says why, and how to fit
    them anyway, not "every row has tokens == 0"."""
    from bayes_dcpt.errors import FitError
    from bayes_dcpt.fitting.dcpt import fit  # the single-law fit (no held-out calibration)

    df = load_example()
    df = df[(df["domain"] == "python") & (df["tokens"] <= 16384)]  # base rows and the 8k, 16k warm-up checkpoints
    for law in ("cpt", "L3"):
        with pytest.raises(FitError, match="every CPT checkpoint lies inside its run's LR warm-up"):
            fit(df, law, "both", draws=10, tune=10, chains=1, warn=False)
    path = tmp_path / "warming.csv"
    df.to_csv(path, index=False)
    code, _, err = cli("fit", path, "--out", tmp_path / "f.nc")
    assert code != 0 and "LR warm-up" in err and "--burn-in none" in err and "Traceback" not in err


def test_data_with_nothing_but_zero_ratio_rows_are_not_blamed_on_the_warmup():
    """An L-law leaves the zero own-ratio losses out: data holding only those (past the warm-up) have nothing to
    fit for another reason, and the error must not name the warm-up."""
    from bayes_dcpt.errors import FitError
    from bayes_dcpt.fitting.dcpt import fit

    df = load_example()
    df = df[(df["domain"] == "python") & ((df["tokens"] == 0) | (df["r_domain"] == 0.0)) & ~in_warmup(df)]
    with pytest.raises(FitError, match="no CPT measurements to fit") as err:
        fit(df, "L3", "domain", draws=10, tune=10, chains=1, warn=False)
    assert "warm-up" not in str(err.value)
