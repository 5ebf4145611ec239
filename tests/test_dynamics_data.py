"""The dynamics schema: schedules travel with the measurements; errors name the column and the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt.data.dynamics import area_features, load_dynamics, prediction_rows
from bayes_dcpt.errors import DataValidationError
from bayes_dcpt.laws.lr_schedules import Schedule, phase_areas

PT = "cosine(peak=3e-3, steps=512, warmup=50, final=3e-4)"
CONST = "constant(peak=1e-3, steps=256, warmup=10)"
WSD = "wsd(peak=1e-3, steps=256, warmup=10, final=1e-4)"


def _frame() -> pd.DataFrame:
    rows = [{"domain": "py", "n_params": 1e5, "tokens": 0, "r_domain": np.nan, "loss_general": 2.0,
             "loss_domain": 2.2, "run_id": "base|py|N=100000", "step": 0, "schedule": None, "base_schedule": PT}]
    for name, spec in (("const", CONST), ("wsd", WSD)):
        for s in (8, 64, 256):
            rows.append({"domain": "py", "n_params": 1e5, "tokens": s * 2048.0, "r_domain": 0.5,
                         "loss_general": 2.0 - s * 1e-4, "loss_domain": 2.2 - s * 1e-3, "run_id": f"r|{name}",
                         "step": s, "schedule": spec, "base_schedule": PT})
    return pd.DataFrame(rows)


def test_valid_frame_and_exact_areas():
    df = load_dynamics(_frame())
    assert df["step"].dtype == np.int64 and df.loc[0, "schedule"] is None
    assert df.loc[1, "schedule"] == Schedule("constant", steps=256, peak=1e-3, warmup=10).spec()
    f = area_features(df, momentum=0.99)
    want = phase_areas(WSD, PT, 0.99).at([8, 64, 256])
    got = f[df["run_id"] == "r|wsd"]
    for c in ("S1pt", "S1cpt", "S2pt", "S2cpt"):
        assert np.array_equal(got[c].to_numpy(), want[c])
    assert f.loc[0, "S1cpt"] == 0 and f.loc[0, "S2cpt"] == 0 and f.loc[0, "S1pt"] == pytest.approx(want["S1pt"][0])


def test_names_mapping_base_fill_and_lr_check():
    raw = _frame()
    raw["schedule"] = raw["schedule"].map({CONST: "c", WSD: "w", None: None})
    raw.loc[1:, "base_schedule"] = None  # only the base row says it: filled for the base model's rows
    df = load_dynamics(raw, schedules={"c": CONST, "w": Schedule("wsd", steps=256, peak=1e-3, warmup=10,
                                                                 final=1e-4)})
    assert df["base_schedule"].nunique() == 1 and df["schedule"].dropna().nunique() == 2
    ok = _frame()
    ok["lr"] = [np.nan] + [Schedule("constant", steps=256, peak=1e-3, warmup=10).lrs()[s - 1] for s in (8, 64, 256)] \
        + [Schedule("wsd", steps=256, peak=1e-3, warmup=10, final=1e-4).lrs()[s - 1] for s in (8, 64, 256)]
    load_dynamics(ok)
    ok.loc[6, "lr"] = 1e-3  # the WSD run at step 256 has decayed to 1e-4
    with pytest.raises(DataValidationError, match=r"column 'lr': does not match the schedule.*\(row 7\)"):
        load_dynamics(ok)


@pytest.mark.parametrize("edit, column, needle, rows", [
    (lambda d: d.drop(columns=["schedule"]), "schedule", "required column is missing", ()),
    (lambda d: d.assign(step=d["step"].where(d.index != 2, 3.5)), "step", "whole number", (3,)),
    (lambda d: d.assign(step=d["step"].where(d.index != 2, np.nan)), "step", "missing value", (3,)),
    (lambda d: d.assign(step=d["step"].where(d.index != 3, 300)), "step", "beyond the end", (4,)),
    (lambda d: d.assign(step=d["step"].where(d.index != 3, 2)), "step", "increase with tokens", (2, 3, 4)),
    (lambda d: d.assign(step=d["step"].where(d.index != 0, 5)), "step", "base-model rows", (1,)),
    (lambda d: d.assign(schedule=d["schedule"].where(d.index != 2, "cosine(peak=1e-3)")), "schedule",
     "needs peak and steps", (3,)),
    (lambda d: d.assign(schedule=d["schedule"].where(d.index != 2, None)), "schedule", "missing CPT schedule", (3,)),
    (lambda d: d.assign(schedule=d["schedule"].where(d.index != 2, WSD)), "schedule", "different schedules",
     (2, 3, 4)),
    (lambda d: d.assign(base_schedule=d["base_schedule"].where(d.index != 5, CONST)), "base_schedule",
     "different base schedules", tuple(range(1, 8))),
    (lambda d: d.assign(base_schedule=None), "base_schedule", "no pre-training schedule", tuple(range(1, 8))),
])
def test_bad_frames_name_column_and_rows(edit, column, needle, rows):
    with pytest.raises(DataValidationError) as ei:
        load_dynamics(edit(_frame()))
    probs = [p for p in ei.value.problems if p.column == column and needle in p.message]
    assert probs, str(ei.value)
    assert probs[0].rows == rows


def test_file_schedules_resolve_relative_to_the_data(tmp_path):
    raw = _frame()
    np.save(tmp_path / "wsd.npy", Schedule("wsd", steps=256, peak=1e-3, warmup=10, final=1e-4).lrs())
    raw["schedule"] = raw["schedule"].map({CONST: CONST, WSD: "file:wsd.npy", None: None})
    raw.to_csv(tmp_path / "d.csv", index=False)
    df = load_dynamics(tmp_path / "d.csv")
    f = area_features(df)
    assert np.allclose(f.loc[df["run_id"] == "r|wsd", "S2cpt"], phase_areas(WSD, PT).at([8, 64, 256])["S2cpt"])


def test_prediction_rows_fill_defaults_and_check():
    rows = prediction_rows(pd.DataFrame({"n_params": [1e5, 1e5], "r_domain": 0.5, "schedule": WSD,
                                         "tokens": [0.0, 2048.0 * 100]}),
                           domains=["py"], base_schedules={("py", 1e5): PT}, tokens_per_step={("py", 1e5): 2048.0})
    assert rows["step"].tolist() == [0, 100] and rows["base_schedule"].iloc[0].startswith("cosine(")
    with pytest.raises(DataValidationError, match="no base schedule given"):
        prediction_rows({"domain": ["py"], "n_params": [2e5], "r_domain": [0.5], "schedule": [WSD], "step": [3]},
                        domains=["py"], base_schedules={("py", 1e5): PT})
    with pytest.raises(DataValidationError, match="tokens per step of this base model are not known"):
        prediction_rows({"domain": ["py"], "n_params": [1e5], "r_domain": [0.5], "schedule": [WSD],
                         "tokens": [1e5]}, domains=["py"], base_schedules={("py", 1e5): PT})
    with pytest.raises(DataValidationError, match="unknown domain"):
        prediction_rows({"domain": ["law"], "n_params": [1e5], "r_domain": [0.5], "schedule": [WSD], "step": [3],
                         "base_schedule": [PT]}, domains=["py"])
    with pytest.raises(DataValidationError, match="beyond the end"):
        prediction_rows({"domain": ["py"], "n_params": [1e5], "r_domain": [0.5], "schedule": [WSD], "step": [999],
                         "base_schedule": [PT]}, domains=["py"])


def test_store_round_trip_keeps_the_schedules(tmp_path):
    from bayes_dcpt.data.store import Store

    df = load_dynamics(_frame())
    with Store(tmp_path / "s.sqlite") as st:
        st.import_frame(df)
        st.set_lr_trace("r|wsd", "cpt", Schedule("wsd", steps=256, peak=1e-3, warmup=10, final=1e-4).lrs())
        back = st.to_frame()
        tr = st.lr_trace("r|wsd")
        assert st.lr_trace("r|const") is None and set(st.lr_traces()) == {"r|wsd"}
        st.export(tmp_path / "out.csv")
    assert np.array_equal(tr, Schedule("wsd", steps=256, peak=1e-3, warmup=10, final=1e-4).lrs())
    again = load_dynamics(back)
    key = ["run_id", "tokens"]
    a = again.sort_values(key).reset_index(drop=True)
    b = df.sort_values(key).reset_index(drop=True)
    assert a["schedule"].tolist() == b["schedule"].tolist() and a["base_schedule"].tolist() == b["base_schedule"].tolist()
    assert load_dynamics(tmp_path / "out.csv")["schedule"].dropna().nunique() == 2
