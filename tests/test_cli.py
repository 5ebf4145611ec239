"""The command line: help, version, and one clear line with exit code 2 for user errors."""

from __future__ import annotations

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
    assert code == 0 and '"alpha"' in out
    assert len(pd.read_csv(tmp_path / "t.csv")) == 1


def test_debug_shows_traceback(cli):
    from bayes_dcpt.errors import DataValidationError

    with pytest.raises(DataValidationError):
        cli("--debug", "data", "validate", "/no/such/file.csv")
