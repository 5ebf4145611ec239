"""The experiment store: idempotent imports, concurrent writers, a killed writer, conflicts, bad files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt import data as _data
from bayes_dcpt.data.store import Store, StoreConflictError, StoreError, base_run_id, read_measurements
from bayes_dcpt.errors import DataValidationError

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_import_twice_no_duplicates_and_round_trip(tmp_path, sim_df):
    db = tmp_path / "runs.sqlite"
    with Store(db) as st:
        first = st.import_frame(sim_df)
        assert first["inserted"] == int(
            sim_df["loss_general"].notna().sum() + sim_df["loss_domain"].notna().sum()
        )
        assert first["skipped"] == 0
        again = st.import_frame(sim_df)
        assert again == {**first, "inserted": 0, "skipped": first["inserted"]}
        # what the table holds, counted as data validate counts it: CPT runs (not the base-model rows), losses
        cpt = sim_df[sim_df["tokens"] > 0]
        assert (first["rows"], first["base_rows"], first["runs"], first["losses"]) == (
            len(sim_df), len(sim_df) - len(cpt), cpt["run_id"].nunique(), first["inserted"])
        out = st.to_frame()
    assert len(out) == len(sim_df)
    key = ["run_id", "tokens"]
    a = sim_df.sort_values(key).reset_index(drop=True)
    b = out.sort_values(key).reset_index(drop=True)
    for c in ("domain", "run_id"):
        assert (a[c] == b[c]).all()
    for c in ("n_params", "tokens", "loss_general", "loss_domain"):
        np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-12)
    np.testing.assert_allclose(a["r_domain"].fillna(-1), b["r_domain"].fillna(-1))
    # base rows live in the base run, with r_domain NULL
    runs = Store(db).runs()
    base = runs[runs["run_id"].str.startswith("base|")]
    assert len(base) == sim_df[sim_df.tokens == 0].groupby(["domain", "n_params"]).ngroups
    assert base["r_domain"].isna().all()
    assert base_run_id("code", 1e8) == "base|code|N=1e+08"


def test_export_csv_parquet_and_read_measurements(tmp_path, sim_df):
    db = tmp_path / "runs.sqlite"
    with Store(db) as st:
        st.import_frame(sim_df)
        st.export(tmp_path / "out.csv")
        st.export(tmp_path / "out.parquet")
        with pytest.raises(StoreError, match=r"csv or \.parquet"):
            st.export(tmp_path / "out.json")
    for f in ("out.csv", "out.parquet"):
        back = _data.load(tmp_path / f)
        assert len(back) == len(sim_df)
    assert len(read_measurements(db)) == len(sim_df)
    assert len(read_measurements(tmp_path / "out.csv")) == len(sim_df)


def test_conflicting_reimport_is_an_error_and_writes_nothing(tmp_path, sim_df):
    db = tmp_path / "runs.sqlite"
    with Store(db) as st:
        st.import_frame(sim_df)
        n0 = len(st.evaluations())
        bad = sim_df.copy()
        # one new row (would be inserted) and one changed loss (a conflict)
        new = bad.iloc[[-1]].copy()
        new["tokens"] = new["tokens"] * 7.0
        bad.loc[bad.index[3], "loss_domain"] += 0.01
        bad = pd.concat([bad, new], ignore_index=True)
        rid = bad.loc[3, "run_id"]
        with pytest.raises(StoreConflictError, match=r"tokens=") as ei:
            st.import_frame(bad)
        assert rid in str(ei.value) and str(ei.value).startswith("table, row 4: ")  # the table's row is named
        assert len(st.evaluations()) == n0  # the new row was rolled back too
        res = st.import_frame(bad, replace=True)
        n_new = int(new[["loss_general", "loss_domain"]].notna().sum().sum())
        assert res["inserted"] == 1 + n_new
        assert len(st.evaluations()) == n0 + n_new


def test_a_conflict_names_the_file_and_its_line(tmp_path, sim_df):
    """A conflicting re-import named the run and tokens only (a walkthrough's case): with hundreds of rows the user
    had to search for it. The file, its data row and line are now named, counting exact repeats the load dropped."""
    db, f = tmp_path / "runs.sqlite", tmp_path / "again.csv"
    with Store(db) as st:
        st.import_frame(sim_df)
        bad = pd.concat([sim_df.iloc[[0]], sim_df], ignore_index=True)  # row 1 repeated exactly (kept once)
        bad.loc[6, "loss_domain"] += 0.01  # data row 7 of the file, line 8
        bad.to_csv(f, index=False)
        with pytest.raises(StoreConflictError) as ei:
            st.import_frame(f)
        assert str(ei.value).startswith(f"{f}, row 7 (line 8 of the file): run "), str(ei.value)
        assert ei.value.run_id == bad.loc[6, "run_id"]


def test_invalid_table_writes_nothing(tmp_path, sim_df):
    db = tmp_path / "runs.sqlite"
    bad = sim_df.copy()
    bad.loc[4, "r_domain"] = 1.5
    with Store(db) as st:
        with pytest.raises(DataValidationError, match="r_domain"):
            st.import_frame(bad)
        assert len(st.evaluations()) == 0 and len(st.runs()) == 0


def test_api_add_evaluation_and_status(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        st.upsert_run("a", domain="code", n_params=1e5, r_domain=0.3, seed=0, config={"lr": 1e-3})
        assert st.add_evaluation("a", 1024, "domain", 2.5, step=4, lr=1e-3)
        assert not st.add_evaluation("a", 1024, "domain", 2.5 * (1 + 1e-8))  # same measurement
        with pytest.raises(StoreConflictError, match="run 'a' at tokens=1024"):
            st.add_evaluation("a", 1024, "domain", 2.4)
        with pytest.raises(StoreError, match="unknown run"):
            st.add_evaluation("nope", 1, "domain", 2.0)
        with pytest.raises(StoreError, match="eval_set"):
            st.add_evaluation("a", 1, "train", 2.0)
        with pytest.raises(StoreError, match="loss"):
            st.add_evaluation("a", 1, "general", float("nan"))
        with pytest.raises(StoreError, match="status"):
            st.set_status("a", "finished")
        with pytest.raises(StoreError, match="r_domain"):
            st.upsert_run("b", r_domain=1.2)
        st.set_status("a", "done", wall_seconds=1.5)
        run = st.run("a")
        assert run["status"] == "done" and run["config"] == {"lr": 0.001} and run["seed"] == 0
        st.add_evaluation(base_run_id("code", 1e5), 0, "domain", 3.0)
        st.add_evaluation("a", 1024, "general", 2.9, step=4, lr=1e-3)
        df = st.to_frame()
        assert set(df["run_id"]) == {"a", "base|code|N=100000"}
        row = df[df.run_id == "a"].iloc[0]
        assert row["loss_general"] == 2.9 and row["loss_domain"] == 2.5 and row["step"] == 4


def test_not_a_database_is_refused_and_untouched(tmp_path, cli):
    p = tmp_path / "notes.sqlite"
    p.write_text("these are my notes, not a database\n" * 10)
    before = p.read_bytes()
    with pytest.raises(StoreError, match="not a SQLite database"):
        Store(p)
    assert p.read_bytes() == before
    code, _, err = cli("data", "show", "--db", p)
    assert code == 2 and "not a SQLite database" in err and len(err.strip().splitlines()) == 1
    # a SQLite file of some other program
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE users (name TEXT)")
    con.execute("INSERT INTO users VALUES ('x')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a bayes-dcpt store"):
        Store(other)
    con = sqlite3.connect(other)
    assert con.execute("SELECT name FROM users").fetchall() == [("x",)]
    con.close()


def test_corrupt_store_is_a_clear_error(tmp_path, sim_df):
    db = tmp_path / "runs.sqlite"
    with Store(db) as st:
        st.import_frame(sim_df)
    raw = bytearray(db.read_bytes())
    raw[100:4096] = b"\xff" * (4096 - 100)  # smash the first page after the header
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(bytes(raw))
    with pytest.raises(StoreError):
        Store(bad).to_frame()


_WRITER = textwrap.dedent(
    """
    import sys
    from bayes_dcpt.data.store import Store
    db, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Store(db) as st:
        st.upsert_run(name, domain="code", n_params=1e5, r_domain=0.5, seed=0, status="running")
        for i in range(n):
            st.add_evaluation(name, 1000 * (i + 1), "domain", 2.0 + 1.0 / (i + 1), step=i)
            st.add_evaluation(name, 1000 * (i + 1), "general", 3.0 + 1.0 / (i + 1), step=i)
            print(i, flush=True)
        st.set_status(name, "done")
    """
)


def test_concurrent_writers(tmp_path):
    db = tmp_path / "runs.sqlite"
    script = tmp_path / "w.py"
    script.write_text(_WRITER)
    n = 40
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), f"w{k}", str(n)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for k in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with Store(db) as st:
        ev = st.evaluations()
        assert len(ev) == 4 * n * 2
        assert (st.runs()["status"] == "done").all()
        df = st.to_frame()
    assert len(df) == 4 * n


def test_killed_writer_loses_no_committed_row(tmp_path):
    db = tmp_path / "runs.sqlite"
    script = tmp_path / "w.py"
    script.write_text(_WRITER)
    p = subprocess.Popen(
        [sys.executable, str(script), str(db), "victim", "100000"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done = -1
    deadline = time.monotonic() + 60
    while done < 30 and time.monotonic() < deadline:  # wait until >= 31 pairs are committed
        line = p.stdout.readline()
        if line.strip().isdigit():
            done = int(line)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert done >= 30
    with Store(db) as st:
        ev = st.evaluations("victim")
        # every pair printed was committed before the print; a pair may be half-written after it
        steps = sorted(set(ev["step"]))
        assert steps[: done + 1] == list(range(done + 1))
        full = ev.groupby("step").size()
        assert (full.loc[:done] == 2).all()
        for _, r in ev.iterrows():
            expect = (2.0 if r.eval_set == "domain" else 3.0) + 1.0 / (r.step + 1)
            assert r.loss == pytest.approx(expect, rel=1e-12)
        assert st.run("victim")["status"] == "running"
        # still writable, and the killed run's rows are readable as a frame
        st.add_evaluation("victim", 10**9, "domain", 1.5)
        st.set_status("victim", "failed")
        assert len(st.to_frame()) >= done + 2


def test_cli_import_show_export(cli, tmp_path, sim_df):
    src = tmp_path / "probes.csv"
    sim_df.to_csv(src, index=False)
    db = tmp_path / "runs.sqlite"
    code, out, err = cli("data", "import", src, "--db", db, "--json")
    assert code == 0, err
    assert '"skipped": 0' in out
    code, out, err = cli("data", "import", src, "--db", db)
    assert code == 0 and "0 losses added" in out
    code, out, err = cli("data", "show", "--db", db, "--runs")
    assert code == 0, err
    assert "code" in out and "done" in out
    code, out, err = cli("data", "show", "--db", db, "--json")
    assert code == 0 and '"runs": 15' in out
    code, out, err = cli("data", "export", "--db", db, "--out", tmp_path / "back.parquet")
    assert code == 0, err
    assert len(_data.load(tmp_path / "back.parquet")) == len(sim_df)
    for sub in ("import", "export", "show"):
        code, out, _ = cli("data", sub, "--help")
        assert code == 0 and "Example" in out


@pytest.mark.parametrize(
    "args, needle",
    [
        (("data", "import", "/no/such.csv", "--db", "{db}"), "no such file"),
        (("data", "export", "--db", "/no/such.sqlite", "--out", "{tmp}/x.csv"), "no such store"),
        (("data", "export", "--db", "{db}", "--out", "{tmp}/x.json"), "csv or .parquet"),
        (("data", "show", "--db", "/no/such.sqlite"), "no such store"),
        (("data", "import", "{bad}", "--db", "{db}"), "r_domain"),
        (("data", "import", "{conflict}", "--db", "{db}"), "already stored"),
    ],
)
def test_cli_store_errors_exit_2(cli, tmp_path, sim_df, args, needle):
    db = tmp_path / "runs.sqlite"
    with Store(db) as st:
        st.import_frame(sim_df)
    bad = sim_df.copy()
    bad.loc[2, "r_domain"] = 3.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    conflict = sim_df.copy()
    conflict.loc[7, "loss_general"] *= 1.1
    conflict.to_csv(tmp_path / "conflict.csv", index=False)
    fmt = {"db": db, "tmp": tmp_path, "bad": tmp_path / "bad.csv", "conflict": tmp_path / "conflict.csv"}
    code, out, err = cli(*[a.format(**fmt) for a in args])
    assert code == 2, (out, err)
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, err
    assert needle.lower() in lines[0].lower()


def test_store_and_cli_do_not_import_torch():
    code = "import sys, bayes_dcpt.cli, bayes_dcpt.data.store; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
