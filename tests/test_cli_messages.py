"""Messages that read well: one line per bad cell with its file line, ordinals, counts, commands to reproduce."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("column, value, needle", [
    ("n_params", "abc", "not a number"),
    ("tokens", "abc", "not a number"),
    ("r_domain", "abc", "not a number"),
    ("n_params", "-3", "must be > 0"),
])
def test_one_bad_cell_gives_one_line_naming_row_and_file_line(cli, tmp_path, sim_df, column, value, needle):
    bad = sim_df.copy()
    bad[column] = bad[column].astype(object)
    bad.loc[5, column] = value
    p = tmp_path / "bad.csv"
    bad.to_csv(p, index=False)
    rc, _, err = cli("data", "validate", p)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert needle in lines[0] and "row 6; line 7 of the file" in lines[0], lines[0]


def test_file_lines_are_not_claimed_when_rows_and_lines_differ(tmp_path, sim_df):
    """A blank line inside the file shifts rows against lines: then only the row is named."""
    from bayes_dcpt.data import schema
    from bayes_dcpt.errors import DataValidationError

    bad = sim_df.copy()
    bad.loc[5, "n_params"] = -3
    text = bad.to_csv(index=False).splitlines()
    p = tmp_path / "blank.csv"
    p.write_text("\n".join([*text[:3], "", *text[3:]]) + "\n")
    with pytest.raises(DataValidationError) as exc:
        schema.load(p)
    msg = str(exc.value).replace(str(p), "FILE")  # the test's folder name has "lines" in it
    assert "row 6" in msg and "line" not in msg
    with pytest.raises(DataValidationError) as exc:  # a frame has no file lines
        schema.load(bad)
    assert "(row 6)" in str(exc.value)


def test_ordinals_and_counts():
    from bayes_dcpt.report.answer_sections import arg, refit_path
    from bayes_dcpt.report.fit_sections import checkpoints_per_run, ordinal

    assert [ordinal(k) for k in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert checkpoints_per_run({"rows_per_run_min": 7, "rows_per_run_max": 7}) == "7 checkpoints"
    assert checkpoints_per_run({"rows_per_run_min": 1, "rows_per_run_max": 1}) == "1 checkpoint"
    assert checkpoints_per_run({"rows_per_run_min": 5, "rows_per_run_max": 7}) == "5 to 7 checkpoints"
    assert arg(2097152.0) == "2097152" and arg(np.float64(443232)) == "443232" and arg(0.25) == "0.25"
    assert refit_path("models/example_dcpt.nc") == "example_dcpt-refit.nc" and refit_path(None) == "refit.nc"


def test_json_rounding_keeps_values_and_drops_dust():
    from bayes_dcpt.cli._app import _rounded

    assert _rounded({"a": [1.0000000000000004, 0.30000000000000004, 1e-300, 0.0, 12345678.9, None, "x", 3]}) == {
        "a": [1.0, 0.3, 1e-300, 0.0, 12345678.9, None, "x", 3]}


def test_error_lines_say_cli_options_not_python():
    from bayes_dcpt.report.wording import cli_words

    assert cli_words("usage 'tradeoff' needs ['n_params', 'tokens']", generic=False) == \
        "usage 'tradeoff' needs --n-params and --tokens"
    assert "pass --domain" in cli_words("answered for several domains; pass domain=... to choose", generic=False)
    msg = cli_words("no base-model general loss at n_params=4e+05 (run code|N=1e+08|r=0.5); pass the reference "
                    "loss explicitly", generic=False)
    assert "--base-loss" in msg and "r=0.5" in msg and "at N = 4e+05" in msg


def test_cli_words_says_a_cli_remedy_once_however_often_it_is_applied():
    from bayes_dcpt.report.wording import cli_words

    once = cli_words("more tuning and draws, or a simpler law")
    assert once == "more tuning and draws (--tune, --draws), or a simpler law (--law)"
    assert cli_words(once) == once
