"""The optimize, suggest and loop commands on a saved fit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bayes_dcpt.plan.planner import candidates_from_menus


@pytest.fixture
def cand_csv(tmp_path):
    c = candidates_from_menus(domains=["code"], n_params=[1e8, 3e8, 1e9], tokens=[1e9, 5e9],
                              r_domain=[0.1, 0.3, 0.5, 0.7, 0.9])
    p = tmp_path / "cand.csv"
    c.to_csv(p, index=False)
    return p


def test_optimize_json_has_r_star_interval(cli, small_fit_path, tmp_path):
    code, out, err = cli("optimize", small_fit_path, "--n-params", "1e9", "--tokens", "2e10",
                         "--max-general-increase", "0.02", "--json", "--plot", tmp_path / "d.png")
    assert code == 0, err
    js = json.loads(out)
    assert set(js) == {"usage", "domains", "diagnostics"} and list(js["domains"]) == ["code"]  # a one-domain fit
    r = js["domains"]["code"]["r_domain"]
    assert 0 <= r["lo"] <= r["median"] <= r["hi"] <= 1
    assert (tmp_path / "d.png").stat().st_size > 1000
    code, out, err = cli("optimize", small_fit_path, "--usage", "compute", "--n-params", "1e9", "--tokens", "2e10")
    assert code == 0, err
    assert "N_opt" in out or "n_opt" in out.lower()


def test_suggest_writes_a_plan_within_budget(cli, small_fit_path, cand_csv, tmp_path):
    code, out, err = cli("suggest", small_fit_path, "--candidates", cand_csv, "--n-params", "1e9", "--tokens", "2e10",
                         "--max-general-increase", "0.02", "-k", "2", "--budget-gpu-hours", "4",
                         "--out", tmp_path / "plan.csv")
    assert code == 0, err
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert 1 <= len(plan) <= 2 and plan["gpu_hours"].sum() <= 4 + 1e-9


def test_loop_runs_stores_and_resumes(cli, df3, cand_csv, tmp_path):
    d = tmp_path / "d.csv"
    df3.to_csv(d, index=False)
    args = ["loop", d, "--candidates", cand_csv, "--n-params", "1e9", "--tokens", "2e10", "--refit", "smc",
            "-k", "1", "--state-dir", tmp_path / "L"]
    code, out, err = cli(*args, "--rounds", "1")
    assert code == 0, err
    assert (tmp_path / "L" / "rounds.jsonl").read_text().count("\n") == 1
    code, out, err = cli(*args, "--rounds", "2")
    assert code == 2 and "--resume" in err
    code, out, err = cli(*args, "--rounds", "2", "--resume")
    assert code == 0, err
    assert (tmp_path / "L" / "rounds.jsonl").read_text().count("\n") == 2
    data = pd.read_csv(tmp_path / "L" / "data.csv")
    assert set(data["loop_round"].dropna().astype(int)) >= {1, 2}


def test_loop_simulates_on_the_scale_of_the_users_data(cli, tmp_path):
    """--executor simulate answers from the law fitted to DATA, not from a synthetic world of another scale.

    It used to simulate the package's default world: losses of 5-7 nats beside measured ones of 1.6-2.0, after
    which the refit put r* at 0 for 99.5% of its draws and the loop reported a width of 0.
    """
    import numpy as np

    from bayes_dcpt import datasets

    df = datasets.load_example()
    df = df[df["domain"] == "python"]
    d, c = tmp_path / "probes.csv", tmp_path / "cand.csv"
    df.to_csv(d, index=False)
    candidates_from_menus(domains=["python"], n_params=[100672, 443232], tokens=[262144, 524288],
                          r_domain=[0.25, 0.5, 0.75]).to_csv(c, index=False)
    code, _out, err = cli("loop", d, "--candidates", c, "--executor", "simulate", "--refit", "smc", "--domain",
                         "python", "--n-params", "443232", "--tokens", "2097152", "--rounds", "1", "-k", "1",
                         "--state-dir", tmp_path / "L")
    assert code == 0, err
    data = pd.read_csv(tmp_path / "L" / "data.csv")
    sim = data[data["loop_round"] == 1]
    assert len(sim) > 0
    for _, row in sim.drop_duplicates(["n_params"]).iterrows():
        measured = df[(df["n_params"] == row["n_params"]) & (df["tokens"] > 0)]
        got = sim[sim["n_params"] == row["n_params"]]
        for t in ("general", "domain"):
            ratio = got[f"loss_{t}"].median() / measured[f"loss_{t}"].median()
            assert 0.8 < ratio < 1.25, (t, ratio)
    last = json.loads((tmp_path / "L" / "rounds.jsonl").read_text().splitlines()[-1])
    assert last["clipped_share_after"] < 0.5 and last["width_after"] > 0.02 and np.isfinite(last["khat"])


@pytest.mark.parametrize("args, needle", [
    (("optimize", "/no/fit.nc"), "no such fit"),
    (("optimize", "{fit}", "--usage", "foo"), "--usage"),
    (("optimize", "{fit}", "--max-general-increase", "-1"), "max-general-increase"),
    (("optimize", "{fit}", "--n-params", "1e9", "--tokens", "1e9", "--domain", "music"), "music"),
    (("suggest", "{fit}", "--candidates", "/no/cand.csv", "--n-params", "1e9", "--tokens", "1e10"), "cand.csv"),
    (("suggest", "{fit}", "--candidates", "{fit}", "--n-params", "1e9", "--tokens", "1e10"),
     "unsupported file type"),
    (("loop", "--candidates", "x.csv"), "DATA"),
    (("loop", "{fit}", "--executor", "gpu"), "--executor"),
])
def test_plan_commands_bad_input(cli, small_fit_path, args, needle):
    args = [str(a).format(fit=small_fit_path) for a in args]
    code, out, err = cli(*args)
    assert code == 2
    # the session's small fit may carry a warning about its sampler checks: not an error line
    lines = [ln for ln in err.strip().splitlines() if ln and not ln.startswith(("warning:", "note:"))]
    assert len(lines) == 1, err
    assert needle.lower() in lines[0].lower(), lines[0]


def test_suggest_with_db_skips_measured_candidates(cli, small_fit_path, df3, tmp_path):
    from bayes_dcpt.data.store import Store

    db = tmp_path / "runs.sqlite"
    with Store(db) as st:
        st.import_frame(df3)
    c = candidates_from_menus(domains=["code"], n_params=[1e8, 1e9], tokens=[1e9], r_domain=[0.2, 0.5, 0.9])
    cand = tmp_path / "c.csv"
    c.to_csv(cand, index=False)
    code, out, err = cli("suggest", small_fit_path, "--candidates", cand, "--db", db, "--n-params", "1e9",
                         "--tokens", "2e10", "-k", "2", "--out", tmp_path / "p.csv")
    assert code == 0, err
    plan = pd.read_csv(tmp_path / "p.csv")
    assert set(plan["r_domain"].round(6)) == {0.2}


def test_optimize_checks_its_answer_against_the_fit_data_and_prints_the_flag(cli):
    """Where the fit's runs measure the crossing, `optimize` checks r* against it and says DISAGREES in its table
    output and its --json (before, the command answered from the posterior alone and printed no note)."""
    model = Path(__file__).parents[1] / "models" / "example_cpt.nc"
    # codec_tables at 131k tokens: the law's r* (0.55) sits above the crossing its runs measure (0.31)
    ask = ("optimize", model, "--domain", "codec_tables", "--n-params", "443232", "--tokens", "131072",
           "--max-general-increase", "0.03")
    code, out, err = cli(*ask)
    assert code == 0, err
    assert "FLAG: DISAGREES with the data" in out and "measured crossing r = 0.313" in out
    code, out, err = cli(*ask, "--json")
    js = json.loads(out)["domains"]["codec_tables"]
    assert js["measured_check"]["crossing"] == pytest.approx(0.313, abs=0.001) and not js["measured_check"]["agrees"]
    assert any(f.startswith("DISAGREES") for f in js["flags"])


def test_optimize_measured_checks_against_the_runs_given(cli, tmp_path):
    """--measured replaces the fit's own data as what r* is checked against (e.g. runs trained after the fit)."""
    from bayes_dcpt import datasets

    model = Path(__file__).parents[1] / "models" / "example_cpt.nc"
    ask = ("optimize", model, "--domain", "codec_tables", "--n-params", "443232", "--tokens", "131072",
           "--max-general-increase", "0.03", "--json")
    df = datasets.load_example()
    big = (df["n_params"] == 443232) & (df["domain"] == "codec_tables")
    for rows, checked in ((df[big], True), (df[~big], False)):
        path = tmp_path / f"runs_{checked}.csv"
        rows.to_csv(path, index=False)
        code, out, err = cli(*ask, "--measured", path)
        assert code == 0, err
        js = json.loads(out)["domains"]["codec_tables"]
        assert ("measured_check" in js) is checked and ("nearest_measured_check" in js) is not checked
        # the runs given decide the flag: the asked cell's crossing, else the nearest cell they measure (101k here)
        check = js["measured_check"] if checked else js["nearest_measured_check"]
        assert any(f.startswith("DISAGREES") for f in js["flags"]) is (not check["agrees"])
        assert not check["agrees"] or not checked  # 443k's own runs contradict r* here
    no_general = tmp_path / "domain_loss_only.csv"
    df[big].drop(columns=["loss_general"]).to_csv(no_general, index=False)
    code, out, err = cli(*ask, "--measured", no_general)  # valid runs that cannot check r*: said, not silent
    assert code == 0 and "measured_check" not in json.loads(out)["domains"]["codec_tables"]
    assert f"note: {no_general} measures no crossing for codec_tables here" in " ".join(err.split())
    code, _, err = cli("optimize", model, "--usage", "compute", "--n-params", "443232", "--tokens", "524288",
                       "--measured", tmp_path / "runs_True.csv")
    assert code == 2 and "--measured checks the answers of --usage tradeoff and critical-curve" in err
