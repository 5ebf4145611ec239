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


# ------------------------------------------------------------------ --help examples that paste into a shell
def _help_paths() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, as the words before ``--help`` (``()``: ``bayes-dcpt`` itself)."""
    from bayes_dcpt.cli import app

    paths: list[tuple[str, ...]] = [()]

    def walk(typer_app, prefix: tuple[str, ...]) -> None:
        for cmd in typer_app.registered_commands:
            paths.append((*prefix, cmd.name or cmd.callback.__name__.replace("_", "-")))
        for group in typer_app.registered_groups:
            paths.append((*prefix, group.name))
            walk(group.typer_instance, (*prefix, group.name))

    walk(app, ())
    return paths


def _rendered_examples(text: str) -> list[list[str]]:
    """The ``Example:`` commands of a rendered ``--help``, read as a shell reads a paste: a line continues onto the
    next only when it ends with `` \\``."""
    import shlex

    out, lines = [], [ln.strip() for ln in text.splitlines()]
    for i, line in enumerate(lines):
        if not line.startswith("Example: "):
            continue
        cmd = line[len("Example: "):]
        while cmd.endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd = cmd[:-1] + " " + lines[i]
        out.append(shlex.split(cmd.split("  (")[0]))  # demo: "...  (what make demo runs)"
    return out


@pytest.mark.parametrize("path", _help_paths(), ids=lambda p: " ".join(p) or "bayes-dcpt")
@pytest.mark.parametrize("columns", [80, 250])
def test_every_help_has_an_example_that_pastes_as_one_command(cli, monkeypatch, path, columns):
    """README: every command has ``--help`` with an example; at 80 and 250 columns each example reads, line by
    line, as the one command the docstring means (a long one continues with `` \\``, never wraps bare)."""
    from test_docs import examples_of

    from bayes_dcpt.cli import app

    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, err = cli(*path, "--help")
    assert code == 0, err
    node, doc = app, app.info.help
    for word in path:  # the help text the examples come from: the group's or the command's
        group = next((g for g in node.registered_groups if g.name == word), None)
        if group is not None:
            node, doc = group.typer_instance, group.typer_instance.info.help
        else:
            doc = next(c.callback.__doc__ for c in node.registered_commands
                       if (c.name or c.callback.__name__.replace("_", "-")) == word)
    documented = examples_of(doc)
    assert documented, f"bayes-dcpt {' '.join(path)} --help has no example"
    assert _rendered_examples(out) == documented, out
    assert all(len(ln) <= columns for ln in out.splitlines())


def test_help_paragraphs_wrap_as_one_paragraph(cli, monkeypatch):
    """A docstring's line breaks inside a sentence do not show (fit-dynamics: "written anyway; --allow-bad-fit")."""
    monkeypatch.setenv("COLUMNS", "250")
    _, out, _ = cli("fit-dynamics", "--help")
    assert "the fit is written anyway; --allow-bad-fit exits 0" in out


# ------------------------------------------------------------------ a closed pipe is not a bug
def test_a_closed_stdout_pipe_exits_quietly_and_not_as_a_bug(tmp_path):
    """``bayes-dcpt laws | head -1``: the reader has gone; no traceback, and not exit 1 (README: 1 is a bug)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from bayes_dcpt.cli import EXIT_PIPE

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    read, write = os.pipe()
    os.close(read)  # every write to the pipe fails: the reader is gone before the first line
    try:
        proc = subprocess.run([sys.executable, "-c", "from bayes_dcpt.cli import _entry; _entry()", "laws"],
                              stdout=write, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, timeout=300)
    finally:
        os.close(write)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.returncode == EXIT_PIPE != 1, proc.stderr


# ------------------------------------------------------------------ one chain: R-hat cannot be computed
def test_one_chain_is_a_sampler_problem_said_readably():
    """R-hat compares chains: with one it is NaN, which is a listed problem (not a pass), no numpy warning leaks,
    the CLI says ``R-hat max n/a`` and ``--chains 2``, and ``--json`` has ``null``."""
    import json
    import warnings
    from types import SimpleNamespace

    import arviz as az

    from bayes_dcpt.cli.verdict import sampler_line, verdict
    from bayes_dcpt.encoding import dumps
    from bayes_dcpt.fitting.diagnostics import RHAT_NEEDS_CHAINS, diagnose, diagnostics_from_card

    rng = np.random.default_rng(0)

    def idata(chains: int):
        return az.from_dict({"posterior": {"a": rng.normal(size=(chains, 500)), "b": rng.normal(size=(chains, 500, 2))},
                             "sample_stats": {"diverging": np.zeros((chains, 500), bool)}})

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the All-NaN RuntimeWarning of np.nanmax would raise here
        one = diagnose(idata(1), "nutpie", ["a", "b"], 1.0, 500, 1)
        two = diagnose(idata(2), "nutpie", ["a", "b"], 1.0, 500, 2)
    assert two.sampler_ok and two.rhat_max < 1.01, str(two)
    assert np.isnan(one.rhat_max) and not one.sampler_ok and not one.ok
    assert one.problems == (RHAT_NEEDS_CHAINS,)
    assert "R-hat max n/a" in str(one) and "1 chain x 500 draws" in str(one) and "nan" not in str(one)
    assert json.loads(dumps(one.as_dict()))["rhat_max"] is None
    back = diagnostics_from_card({"diagnostics": json.loads(dumps(one.as_dict()))})  # a saved fit, loaded
    assert np.isnan(back.rhat_max) and back.problems == one.problems and str(back) == str(one)
    fake = SimpleNamespace(diagnostics=lambda warn=False: one, remedies=lambda: ["more tuning and draws"])
    v = verdict(fake)
    assert v.problems == ("R-hat needs at least 2 chains: run --chains 2 or more",)
    assert not v.sampler_ok and v.exit_code() == 3
    line = sampler_line(v)
    assert "R-hat max n/a" in line and "nan" not in line and "1 chain x" in line
    assert json.loads(dumps(v.as_json()))["rhat_max"] is None


def test_a_low_ess_problem_names_which_ess_it_is():
    """The fit table labels its ESS column min(bulk, tail); the problem it raises names each one that is short, with
    its value (when both failed, only the smaller was named: a user raising draws for the tail alone was misled)."""
    import arviz as az

    from bayes_dcpt.fitting.diagnostics import diagnose

    walk = np.cumsum(np.random.default_rng(1).normal(size=(2, 300)), axis=1)  # a random walk: ESS far below 400
    d = diagnose(az.from_dict({"posterior": {"a": walk}, "sample_stats": {"diverging": np.zeros((2, 300), bool)}}),
                 "nutpie", ["a"], 1.0, 300, 2)
    (ess,) = [p for p in d.problems if p.startswith("ESS")]
    assert d.ess_bulk_min < 400 and d.ess_tail_min < 400
    assert ess == f"ESS (bulk {d.ess_bulk_min:.0f}, tail {d.ess_tail_min:.0f}) < 400", d.problems
    iid = np.random.default_rng(2).normal(size=(2, 300))  # near-independent draws: bulk ESS ~600, tail below 400
    d = diagnose(az.from_dict({"posterior": {"a": iid}, "sample_stats": {"diverging": np.zeros((2, 300), bool)}}),
                 "nutpie", ["a"], 1.0, 300, 2)
    ess = [p for p in d.problems if p.startswith("ESS")]
    assert (d.ess_bulk_min >= 400) == (ess == [] or "bulk" not in ess[0]), (d.ess_bulk_min, ess)
    assert (d.ess_tail_min >= 400) == (ess == [] or "tail" not in ess[0]), (d.ess_tail_min, ess)


def test_chains_in_separate_modes_are_named_with_what_separates_them():
    """R-hat 1.73 on the long grid's D-CPT fit came from chains split two and two between two ways of missing one
    domain's loss; the fit said only 'R-hat 1.735' and 'more tuning and draws', which cannot join modes. Now the
    problem names the groups and the parameters furthest apart, the remedy is not more draws, the card keeps the
    groups, and ``fit.modes()`` gives each mode's posterior."""
    import dataclasses
    import json
    from pathlib import Path

    import arviz as az

    import bayes_dcpt as bd
    from bayes_dcpt.encoding import dumps
    from bayes_dcpt.fitting.diagnostics import diagnose, diagnostics_from_card, sampler_remedy, separated_chains

    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 400))
    b = rng.normal(size=(4, 400, 2))
    b[[0, 2], :, 1] += 12.0  # chains 0 and 2 in another mode of b[1]; a is shared
    stats = {"diverging": np.zeros((4, 400), bool)}
    two = az.from_dict({"posterior": {"a": a, "b": b}, "sample_stats": stats}, dims={"b": ["domain"]},
                       coords={"domain": ["code", "law"]})
    groups, params = separated_chains(two, ["a", "b"])
    assert groups == ((0, 2), (1, 3)) and params[0].startswith("b[law] (")
    d = diagnose(two, "nutpie", ["a", "b"], 1.0, 400, 4)
    assert d.chain_groups == ((0, 2), (1, 3)) and not d.sampler_ok
    (line,) = [p for p in d.problems if "separate modes" in p]
    assert "2 separate modes (chains 0, 2 | 1, 3)" in line and "b[law]" in line and "more draws will not" in line
    back = diagnostics_from_card({"diagnostics": json.loads(dumps(d.as_dict()))})
    assert back.chain_groups == d.chain_groups and str(back) == str(d)
    assert "more draws will not join" in sampler_remedy(None, d) and "more tuning" in sampler_remedy(None, None)
    slow = a + np.array([0.0, 0.3, 0.6, 0.9])[:, None]  # chains that disagree but overlap: R-hat fails, no modes
    d = diagnose(az.from_dict({"posterior": {"a": slow}, "sample_stats": stats}), "nutpie", ["a"], 1.0, 400, 4)
    assert d.rhat_max > 1.01 and d.chain_groups == () and not any("modes" in p for p in d.problems)
    # chains drifting slowly through one posterior (AR(1), rho 0.999) do not meet either, but are not settled
    # within themselves: their remedy is more draws, so they are not called modes (a reviewer's case)
    walk = np.zeros((4, 1000, 30))
    eps = rng.normal(size=walk.shape)
    for i in range(1, 1000):
        walk[:, i] = 0.999 * walk[:, i - 1] + eps[:, i]
    d = diagnose(az.from_dict({"posterior": {"w": walk}, "sample_stats": {"diverging": np.zeros((4, 1000), bool)}}),
                 "nutpie", ["w"], 1.0, 1000, 4)
    assert d.rhat_max > 1.1 and d.chain_groups == () and "more tuning" in sampler_remedy(None, d)
    # a parameter constant within each chain (stuck chains) is said so, not as a 300-digit number of sd; only
    # parameters that keep groups apart are named; chain labels that are not integers are their positions
    stuck = np.repeat(np.array([0.0, 0.0, 1.0, 1.0])[:, None], 400, axis=1)
    named = az.from_dict({"posterior": {"s": stuck, "a": a}, "sample_stats": stats},
                         coords={"chain": ["w", "x", "y", "z"]})
    groups, params = separated_chains(named, ["s", "a"])
    assert groups == ((0, 1), (2, 3)) and params == ["s (constant within each chain)"]

    fit = bd.load_fit(Path(__file__).parents[1] / "models" / "example_cpt.nc")
    (only,) = fit.modes()
    assert fit.diagnostics(warn=False).chain_groups == () and only is fit.posterior
    n = int(fit.idata["posterior"].sizes["draw"])
    fit._diagnostics = dataclasses.replace(fit._diagnostics, chain_groups=((1,), (0, 2, 3)))
    first, rest = fit.modes()
    assert first.n_draws == n and rest.n_draws == 3 * n
    (target, domain) = key = ("general", "python")
    mode_amp = first.params[key]["amp"]  # chain 1's draws, read straight from the sampler's output
    amp = fit.idata["posterior"]["amp"].sel(chain=1, target=target, domain=domain)
    np.testing.assert_allclose(mode_amp, np.asarray(amp), rtol=1e-12)
