"""The command line: help, version, and one clear line with exit code 2 for user errors."""

from __future__ import annotations

import json
import pandas as pd
import pytest


def test_version_and_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("bayes-dcpt ")
    code, out, _ = cli("--help")
    assert code == 0 and "fit-point" in out


def test_validate_good_file(cli, tmp_path, sim_df):
    p = tmp_path / "ok.csv"
    sim_df.to_csv(p, index=False)
    code, out, err = cli("data", "validate", p)
    assert code == 0, err
    assert "valid" in out and "code" in out
    code, out, _ = cli("data", "validate", p, "--json")
    assert code == 0 and '"runs": 15' in out


def test_validate_bad_file_lists_problems(cli, tmp_path, sim_df):
    bad = sim_df.copy()
    bad.loc[5, "r_domain"] = 1.7
    bad = bad.drop(columns="n_params")
    p = tmp_path / "bad.csv"
    bad.to_csv(p, index=False)
    code, out, err = cli("data", "validate", p)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and "n_params" in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args, needle",
    [
        (("data", "validate", "/no/such/file.csv"), "no such file"),
        (("fit-point", "/no/such/file.csv"), "no such file"),
        (("fit-point", "{ok}", "--law", "L9"), "unknown law"),
        (("fit-point", "{ok}", "--target", "both2"), "--target"),
        (("fit-point", "{ok}", "--n-grid", "0"), "n-grid"),
        (("fit-point", "{ok}", "--domain", "music"), "unknown domain"),
        (("no-such-command",), "No such command"),
    ],
)
def test_user_errors_exit_2_with_one_line(cli, tmp_path, sim_df, args, needle):
    ok = tmp_path / "ok.csv"
    sim_df.to_csv(ok, index=False)
    args = [a.format(ok=ok) for a in args]
    code, out, err = cli(*args)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, err
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in err


def test_fit_point_prints_table_and_json(cli, tmp_path, sim_df):
    ok = tmp_path / "ok.csv"
    sim_df.to_csv(ok, index=False)
    code, out, err = cli("fit-point", ok, "--target", "domain", "--n-grid", "300", "--n-starts", "2")
    assert code == 0, err
    assert "alpha" in out and "mape" in out
    code, out, _ = cli("fit-point", ok, "--target", "domain", "--n-grid", "300", "--n-starts", "2", "--json",
                       "--out", tmp_path / "t.csv")
    assert code == 0
    doc = json.loads(out)
    assert doc["law"] == "L3" and "Huber" in doc["method"] and len(doc["fits"]) == 1
    (one,) = doc["fits"]
    assert one["target"] == "domain" and "alpha" in one["params"] and one["metrics"]["n"] == int((sim_df["tokens"] > 0).sum())
    assert isinstance(one["notes"], list) and isinstance(one["converged"], bool)
    assert len(pd.read_csv(tmp_path / "t.csv")) == 1


def test_debug_shows_traceback(cli):
    from bayes_dcpt.errors import DataValidationError

    with pytest.raises(DataValidationError):
        cli("--debug", "data", "validate", "/no/such/file.csv")


def test_validate_import_and_show_count_the_example_csv_alike(cli, tmp_path):
    """One file, one count: ``data validate``, ``data import`` and ``data show`` print the same line for the
    embedded example, and its numbers are pandas' own count of the file (a base-model row is not a CPT run; a
    loss is one value of loss_general or loss_domain, what the store keeps one record of)."""
    import json

    from bayes_dcpt.datasets import example_path

    csv = example_path()
    raw = pd.read_csv(csv)
    rows, base = len(raw), int((raw["tokens"] == 0).sum())
    runs = raw.loc[raw["tokens"] > 0, "run_id"].nunique()
    losses = int(raw[["loss_general", "loss_domain"]].notna().sum().sum())
    assert (rows, base, runs, losses) == (324, 9, 45, 648)  # 3 domains x 3 sizes x 5 ratios x 7 checkpoints + bases
    line = f"{rows} rows ({rows - base} checkpoints of {runs} CPT runs + {base} base-model rows), {losses} losses"
    want = {"rows": rows, "base_rows": base, "runs": runs, "losses": losses}

    code, out, err = cli("data", "validate", csv)
    assert code == 0, err
    assert line in out.splitlines(), out
    code, out, _ = cli("data", "validate", csv, "--json")
    assert code == 0 and {k: json.loads(out)[k] for k in want} == want

    db = tmp_path / "runs.sqlite"
    code, out, err = cli("data", "import", csv, "--db", db)
    assert code == 0, err
    assert line in out.splitlines() and f"{losses} losses added, 0 already stored" in out, out
    code, out, _ = cli("data", "import", csv, "--db", db, "--json")  # again: every loss is a duplicate
    got = json.loads(out)
    assert code == 0 and {k: got[k] for k in want} == want and (got["inserted"], got["skipped"]) == (0, losses)
    code, out, _ = cli("data", "show", "--db", db)
    assert code == 0 and line in out.splitlines() and f"CPT runs by status: done {runs}" in out, out

    # into a store that holds part of the file: the same counts of the file, and which of its losses are new
    part = tmp_path / "part.sqlite"
    head = raw[raw["run_id"].str.contains("c_headers|N=13408", regex=False)]
    head.to_csv(tmp_path / "head.csv", index=False)
    code, out, err = cli("data", "import", tmp_path / "head.csv", "--db", part)
    assert code == 0, err
    assert "36 rows (35 checkpoints of 5 CPT runs + 1 base-model row), 72 losses" in out, out
    for extra in (("--dry-run",), ()):
        code, out, err = cli("data", "import", csv, "--db", part, *extra)
        assert code == 0, err
        assert line in out.splitlines(), out
        assert f"{losses - 72} losses{' to ' + str(part) if extra else ' added'}, 72 already stored" in out, out
