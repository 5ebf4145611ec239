"""Bad inputs on every subcommand: a missing file, a wrong schema, an unknown law or name, a bad flag value.

Each must end with exit code 2 and exactly one clear line on stderr naming what is wrong, never a traceback.
The table covers every command registered on the app (a test checks that none is left out).
"""

from __future__ import annotations

import pytest

# (case id, argv with {placeholders}, a word the one error line must contain)
CASES: list[tuple[str, tuple[str, ...], str]] = [
    # data validate / import / export / show
    ("validate-missing", ("data", "validate", "/no/such/file.csv"), "no such file"),
    ("validate-schema", ("data", "validate", "{nocol}"), "n_params"),
    ("validate-flag", ("data", "validate", "{ok}", "--jsn"), "no such option"),
    ("validate-run-mixture", ("data", "validate", "{remix}"), "column 'r_domain': run 'run-a' changes its value "
                                                              "between checkpoints (0.5, 0.25)"),
    ("import-run-mixture", ("data", "import", "{remix}", "--db", "{store}"), "run 'run-a' changes its value"),
    ("import-missing", ("data", "import", "/no/such/file.csv", "--db", "{tmp}/a.sqlite"), "no such file"),
    ("import-schema", ("data", "import", "{nocol}", "--db", "{tmp}/a.sqlite"), "n_params"),
    ("import-no-db", ("data", "import", "{ok}"), "--db"),
    (
        "export-missing",
        ("data", "export", "--db", "/no/such.sqlite", "--out", "{tmp}/x.csv"),
        "no such store",
    ),
    ("export-schema", ("data", "export", "--db", "{ok}", "--out", "{tmp}/x.csv"), "not a SQLite database"),
    ("export-format", ("data", "export", "--db", "{store}", "--out", "{tmp}/x.xlsx"), "xlsx"),
    ("show-missing", ("data", "show", "--db", "/no/such.sqlite"), "no such store"),
    ("show-schema", ("data", "show", "--db", "{ok}"), "not a SQLite database"),
    # fit, fit-point, predict, laws
    ("fit-missing", ("fit", "/no/such/file.csv", "--out", "{tmp}/f.nc"), "no such file"),
    ("fit-rewarm-law", ("fit", "{ok}", "--law", "L1", "--rewarm", "--out", "{tmp}/f.nc"), "option of the CPT law"),
    ("fit-share-auto", ("fit", "{ok}", "--law", "auto", "--auto-laws", "L1,L3", "--share-power", "--out",
                        "{tmp}/f.nc"), "no cpt candidate"),
    ("fit-schema", ("fit", "{nocol}", "--out", "{tmp}/f.nc"), "n_params"),
    ("fit-law", ("fit", "{ok}", "--law", "L9", "--out", "{tmp}/f.nc"), "unknown law"),
    ("fit-draws", ("fit", "{ok}", "--draws", "0", "--out", "{tmp}/f.nc"), "--draws"),
    ("fit-target", ("fit", "{ok}", "--target", "both2", "--out", "{tmp}/f.nc"), "--target"),
    ("fit-sampler", ("fit", "{ok}", "--sampler", "gibbs", "--out", "{tmp}/f.nc"), "--sampler"),
    ("fit-run-offsets", ("fit", "{ok}", "--run-offsets", "random", "--out", "{tmp}/f.nc"), "--run-offsets"),
    ("fitpoint-missing", ("fit-point", "/no/such/file.csv"), "no such file"),
    ("fitpoint-schema", ("fit-point", "{nocol}"), "n_params"),
    ("fitpoint-law", ("fit-point", "{ok}", "--law", "L9"), "unknown law"),
    ("fitpoint-anchored-law", ("fit-point", "{ok}", "--law", "cpt"), "fit --law cpt"),
    ("fitpoint-grid", ("fit-point", "{ok}", "--n-grid", "0"), "n-grid"),
    ("predict-missing", ("predict", "/no/such/fit.nc", "{grid}"), "no such fit file"),
    ("predict-schema", ("predict", "{ok}", "{grid}"), "not a readable bayes-dcpt fit"),
    ("predict-zeroed-draws", ("predict", "{zeroed}", "{grid}"), "do not match the digest they were written with"),
    ("predict-grid-schema", ("predict", "{fit}", "{nocol}"), "n_params"),
    ("predict-grid-missing", ("predict", "{fit}", "/no/such/grid.csv"), "no such file"),
    # rows as the file numbers them (its base-model rows included), and the file named
    ("predict-grid-domain-row", ("predict", "{fit}", "{unkdom}"), "unkdom.csv: column 'domain': unknown domain(s) "
                                                                   "['nope']; the fit knows ['code'] (row 11; line 12"),
    ("predict-kind", ("predict", "{fit}", "{grid}", "--kind", "median"), "--kind"),
    ("predict-ci", ("predict", "{fit}", "{grid}", "--ci", "2"), "--ci"),
    ("laws-family", ("laws", "--family", "nonesuch"), "unknown law family"),
    ("laws-flag", ("laws", "--famly", "dcpt"), "no such option"),
    # report
    ("report-missing", ("report", "/no/such/fit.nc", "--out", "{tmp}/r.html"), "no such fit file"),
    ("report-schema", ("report", "{ok}", "--out", "{tmp}/r.html"), "not a readable bayes-dcpt fit"),
    ("report-format", ("report", "{fit}", "--out", "{tmp}/r.html", "--format", "pdf"), "--format"),
    ("report-domain", ("report", "{fit}", "--out", "{tmp}/r.html", "--domain", "music"), "unknown domain"),
    ("report-nparams", ("report", "{fit}", "--out", "{tmp}/r.html", "--n-params", "-5"), "n_params"),
    (
        "report-threshold",
        ("report", "{fit}", "--out", "{tmp}/r.html", "--max-general-increase", "-1"),
        "max-general-increase",
    ),
    ("report-ci", ("report", "{fit}", "--out", "{tmp}/r.html", "--ci", "1.5"), "--ci"),
    ("report-k", ("report", "{fit}", "--out", "{tmp}/r.html", "--k", "0"), "--k"),
    (
        "report-candidates",
        ("report", "{fit}", "--out", "{tmp}/r.html", "--candidates", "/no/such/c.csv"),
        "no such candidates file",
    ),
    (
        "report-cand-schema",
        ("report", "{fit}", "--out", "{tmp}/r.html", "--candidates", "{nocand}"),
        "r_domain",
    ),
    ("report-base-loss", ("report", "{fit}", "--out", "{tmp}/r.html", "--base-loss", "x"), "--base-loss"),
    # demo
    ("demo-draws", ("demo", "--out", "{tmp}/d", "--refit", "--draws", "0"), "--draws"),
    ("demo-models", ("demo", "--out", "{tmp}/d", "--models", "/no/such/dir"), "--models"),
    ("demo-out-file", ("demo", "--out", "{ok}"), "--out"),
    # optimize, suggest, loop
    (
        "optimize-missing",
        ("optimize", "/no/such/fit.nc", "--n-params", "1e9", "--tokens", "1e10"),
        "no such fit",
    ),
    ("optimize-schema", ("optimize", "{ok}", "--n-params", "1e9", "--tokens", "1e10"), "not a readable"),
    (
        "optimize-usage",
        ("optimize", "{fit}", "--usage", "best", "--n-params", "1e9", "--tokens", "1e10"),
        "--usage",
    ),
    ("optimize-nparams", ("optimize", "{fit}", "--n-params", "-1", "--tokens", "1e10"), "n_params"),
    (
        "optimize-domain",
        ("optimize", "{fit}", "--n-params", "1e9", "--tokens", "1e10", "--domain", "music"),
        "unknown domain",
    ),
    ("suggest-missing", ("suggest", "/no/such/fit.nc", "--candidates", "{cands}"), "no such fit"),
    ("data-example-unknown", ("data", "example", "--dataset", "nope", "--out", "{tmp}/x.csv"), "dataset"),
    ("candidates-missing", ("candidates", "/no/such/fit.nc", "--out", "{tmp}/c.csv"), "no such fit"),
    ("candidates-ratio", ("candidates", "--domains", "python", "--n-params", "1e8", "--tokens", "1e9",
                          "--ratios", "1.5", "--out", "{tmp}/c.csv"), "r_domain"),
    ("suggest-cands-missing", ("suggest", "{fit}", "--candidates", "/no/such/c.csv", "--n-params", "1e9",
                               "--tokens", "1e10"), "no such file"),
    (
        "suggest-cands-schema",
        ("suggest", "{fit}", "--candidates", "{nocand}", "--n-params", "1e9", "--tokens", "1e10"),
        "r_domain",
    ),
    ("suggest-target", ("suggest", "{fit}", "--candidates", "{cands}", "--target", "best"), "unknown target"),
    ("suggest-k", ("suggest", "{fit}", "--candidates", "{cands}", "-k", "0"), "-k"),
    (
        "loop-missing",
        ("loop", "/no/such/file.csv", "--candidates", "{cands}", "--state-dir", "{tmp}/l"),
        "no such file",
    ),
    ("loop-schema", ("loop", "{nocol}", "--candidates", "{cands}", "--state-dir", "{tmp}/l"), "n_params"),
    ("loop-executor", ("loop", "{ok}", "--executor", "cloud", "--state-dir", "{tmp}/l"), "--executor"),
    ("loop-refit", ("loop", "{ok}", "--refit", "gibbs", "--state-dir", "{tmp}/l"), "--refit"),
    ("loop-draws", ("loop", "{ok}", "--draws", "1", "--state-dir", "{tmp}/l"), "--draws"),
    # probe
    ("probe-presets-flag", ("probe", "presets", "--bogus"), "no such option"),
    ("probe-corpora-out", ("probe", "corpora", "--out", "{ok}"), "corpora"),
    (
        "probe-pretrain-preset",
        (
            "probe",
            "pretrain",
            "--preset",
            "huge",
            "--general",
            "{ok}",
            "--tokens",
            "1000",
            "--out",
            "{tmp}/b",
        ),
        "preset",
    ),
    (
        "probe-pretrain-missing",
        (
            "probe",
            "pretrain",
            "--preset",
            "micro",
            "--general",
            "/no/such/g.jsonl",
            "--tokens",
            "1000",
            "--out",
            "{tmp}/b",
        ),
        "/no/such/g.jsonl",
    ),
    (
        "probe-pretrain-tokens",
        ("probe", "pretrain", "--preset", "micro", "--general", "{ok}", "--tokens", "0", "--out", "{tmp}/b"),
        "--tokens",
    ),
    (
        "probe-run-missing",
        (
            "probe",
            "run",
            "--model",
            "/no/such/model",
            "--general",
            "{ok}",
            "--domain",
            "{ok}",
            "--domain-name",
            "x",
            "--ratio",
            "0.5",
            "--tokens",
            "1000",
            "--db",
            "{tmp}/r.sqlite",
        ),
        "/no/such/model",
    ),
    (
        "probe-run-ratio",
        (
            "probe",
            "run",
            "--model",
            "{tmp}",
            "--general",
            "{ok}",
            "--domain",
            "{ok}",
            "--domain-name",
            "x",
            "--ratio",
            "1.5",
            "--tokens",
            "1000",
            "--db",
            "{tmp}/r.sqlite",
        ),
        "r_domain",
    ),
    (
        "probe-grid-missing",
        ("probe", "grid", "/no/such/grid.toml", "--db", "{tmp}/g.sqlite"),
        "/no/such/grid.toml",
    ),
    ("probe-grid-schema", ("probe", "grid", "{ok}", "--db", "{tmp}/g.sqlite"), "not valid TOML"),
    (
        "probe-grid-executor",
        ("probe", "grid", "{spec}", "--db", "{tmp}/g.sqlite", "--executor", "cloud"),
        "executor",
    ),
    (
        "probe-grid-workers",
        ("probe", "grid", "{spec}", "--db", "{tmp}/g.sqlite", "--workers", "0"),
        "--workers",
    ),
    ("fitdyn-missing", ("fit-dynamics", "/no/such/file.csv"), "no such file"),
    ("fitdyn-schema", ("fit-dynamics", "{nocol}"), "n_params"),
    ("fitdyn-law", ("fit-dynamics", "{ok}", "--law", "L9"), "unknown law"),
    ("fitdyn-law-family", ("fit-dynamics", "{ok}", "--law", "dcpt"), "not a CPT dynamics law"),
    ("fitdyn-target", ("fit-dynamics", "{ok}", "--target", "both2"), "--target"),
    ("fitdyn-sampler", ("fit-dynamics", "{ok}", "--sampler", "gibbs"), "--sampler"),
    ("fitdyn-draws", ("fit-dynamics", "{ok}", "--draws", "0"), "--draws"),
    ("curve-missing", ("predict-curve", "/no/such/fit.nc", "--schedule", "const"), "no such fit file"),
    ("curve-schema", ("predict-curve", "{ok}", "--schedule", "const"), "not a readable bayes-dcpt fit"),
    ("curve-law", ("predict-curve", "{fit}", "--schedule", "const", "--n-params", "1e6", "--r-domain", "0.5"),
     "not of the CPT dynamics law"),
    ("curve-neither", ("predict-curve", "{fit}"), "either a ROWS file or --schedule"),
    ("curve-kind", ("predict-curve", "{fit}", "--schedule", "const", "--kind", "median"), "--kind"),
    ("choose-missing", ("choose-schedule", "/no/such/fit.nc", "--schedule", "a=const", "--ratios", "0.5"),
     "no such fit file"),
    ("choose-spec", ("choose-schedule", "{fit}", "--schedule", "const", "--ratios", "0.5"), "name=spec"),
    ("choose-ratios", ("choose-schedule", "{fit}", "--schedule", "a=const", "--ratios", "x"), "--ratios"),
    ("choose-law", ("choose-schedule", "{fit}", "--schedule", "a=const", "--ratios", "0.5"),
     "not of the CPT dynamics law"),
    ("unknown-command", ("no-such-command",), "no such command"),
]


def _zeroed_draws(path, out):
    """A copy of a saved fit whose posterior draws are all zero, card and sample statistics intact.

    Once seen in a saved fit (not reproduced): a file that loaded, passed every check its card recorded, and
    predicted from zeros.
    """
    import shutil

    import h5py

    shutil.copy(path, out)
    with h5py.File(out, "r+") as h:
        post = h["posterior"]
        for name in post:
            if post[name].dtype.kind == "f" and name not in ("chain", "draw"):
                post[name][...] = 0.0
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory, sim_df, small_fit_path):
    from bayes_dcpt.data.store import Store
    from bayes_dcpt.datasets import example_path
    from bayes_dcpt.plan.candidates import candidates_from_menus

    d = tmp_path_factory.mktemp("errs")
    ok = d / "ok.csv"
    sim_df.to_csv(ok, index=False)
    nocol = d / "nocol.csv"
    sim_df.drop(columns=["n_params"]).to_csv(nocol, index=False)
    nocand = d / "nocand.csv"
    candidates_from_menus(["code"], [1e8], [1e9], [0.5]).drop(columns=["r_domain"]).to_csv(
        nocand, index=False
    )
    grid = d / "grid.csv"
    sim_df[sim_df["tokens"] > 0][["domain", "n_params", "tokens", "r_domain"]].head(3).to_csv(
        grid, index=False
    )
    cands = d / "cands.csv"
    candidates_from_menus(["code"], [1e8], [1e9], [0.5]).to_csv(cands, index=False)
    unkdom = d / "unkdom.csv"
    bad = sim_df.head(12).copy()
    assert (bad["tokens"].head(11) == 0).sum() >= 1  # base-model rows come before the bad one
    bad.loc[bad.index[10], "domain"] = "nope"
    bad.to_csv(unkdom, index=False)
    remix = d / "remix.csv"  # one run_id whose ratio changes between its checkpoints
    cpt = sim_df[sim_df["tokens"] > 0].head(3).assign(run_id="run-a", r_domain=[0.5, 0.5, 0.25])
    cpt.to_csv(remix, index=False)
    store = d / "store.sqlite"
    with Store(store) as st:
        st.import_frame(sim_df)
    return {
        "zeroed": _zeroed_draws(small_fit_path, d / "zeroed.nc"),
        "ok": ok,
        "nocol": nocol,
        "nocand": nocand,
        "grid": grid,
        "cands": cands,
        "unkdom": unkdom,
        "remix": remix,
        "store": store,
        "fit": small_fit_path,
        "spec": example_path().parent / "example_grid.toml",
    }


@pytest.mark.parametrize("args, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_clear_line(cli, files, tmp_path, args, needle):
    argv = [a.format(tmp=tmp_path, **files) for a in args]
    code, out, err = cli(*argv)
    # the session's small fit may carry a warning about its sampler checks, and data notes: not errors
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not ln.startswith(("warning:", "note:"))]
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert needle.lower() in lines[0].lower(), (needle, lines[0])
    assert "Traceback" not in err and "Traceback" not in out


def test_the_table_covers_every_subcommand():
    """Every registered command (and every command of every sub-app) appears in the table above."""
    from bayes_dcpt.cli import app

    def names(typer_app, prefix=()):
        for c in typer_app.registered_commands:
            yield (*prefix, c.name or c.callback.__name__.replace("_", "-"))
        for g in typer_app.registered_groups:
            yield from names(g.typer_instance, (*prefix, g.name))

    covered = {tuple(a for a in c[1] if not a.startswith(("-", "{", "/"))) for c in CASES}
    for cmd in names(app):
        assert any(c[: len(cmd)] == cmd for c in covered), f"no bad-input case for: {' '.join(cmd)}"


def test_an_output_in_a_missing_folder_is_made_and_a_bad_one_said_before_any_work(cli, tmp_path):
    """``predict --out`` in a folder that did not exist gave a traceback (``report --out`` made its folder), and
    ``fit --out`` would fail only after its sampling: every output path's folder is now made before any work, and
    a path that cannot be written is one error line, exit 2."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    fit, data = root / "models" / "example_cpt.nc", root / "bayes_dcpt" / "datasets" / "example_cpt.csv"
    code, out, err = cli("predict", fit, data, "--out", tmp_path / "new" / "deeper" / "p.csv")
    assert code == 0 and (tmp_path / "new" / "deeper" / "p.csv").is_file(), err
    (tmp_path / "plain").write_text("a file where a folder should be")
    for args in (("predict", fit, data, "--out", tmp_path / "new"),  # a folder, not a file
                 ("fit", data, "--out", tmp_path / "plain" / "fit.nc", "--draws", "10", "--tune", "10"),
                 ("candidates", fit, "--out", tmp_path / "plain" / "c.csv")):
        code, out, err = cli(*args)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: cannot write"), (args[0], err)
        assert "Traceback" not in err


def test_a_dynamics_fit_given_to_a_decision_command_is_named_not_a_traceback(cli, tmp_path, monkeypatch):
    """``predict``/``optimize``/``suggest``/``report`` on a ``fit-dynamics`` file raised TypeError (its card's
    ``momentum`` in the D-CPT fit's config); now one line says what the file is and which commands read it."""
    from pathlib import Path

    from bayes_dcpt.fitting import api

    root = Path(__file__).parents[1]
    fit, data = root / "models" / "example_cpt.nc", root / "bayes_dcpt" / "datasets" / "example_cpt.csv"
    monkeypatch.setattr(api, "read_card", lambda path: {"law": "cpt-dynamics", "config": {"momentum": 0.99}})
    for args in (("predict", fit, data), ("optimize", fit, "--n-params", "1e5", "--tokens", "1e5")):
        code, out, err = cli(*args)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1, (args[0], err)
        assert "CPT dynamics law 'cpt-dynamics'" in lines[0] and "predict-curve" in lines[0], lines[0]


def test_a_grid_of_no_rows_is_an_error_not_zero_predictions(cli, tmp_path):
    """``predict fit.nc header_only.csv`` said "0 predictions written" and exited 0; ``data validate`` refuses the
    same file. Now predict does too, naming the file."""
    from pathlib import Path

    fit = Path(__file__).parents[1] / "models" / "example_cpt.nc"
    empty = tmp_path / "empty.csv"
    empty.write_text("domain,n_params,tokens,r_domain\n")
    code, out, err = cli("predict", fit, empty, "--out", tmp_path / "p.csv")
    assert code == 2 and f"{empty}: the grid has no rows" in err and not (tmp_path / "p.csv").exists(), err


def test_exact_duplicate_rows_are_said_not_dropped_silently(cli, tmp_path):
    """A table repeating a row exactly validated as one row fewer with no word (a review's case); ``data validate``
    and ``data import`` now say how many repeats were kept once, and ``--json`` counts them."""
    import json
    from pathlib import Path

    src = (Path(__file__).parents[1] / "bayes_dcpt" / "datasets" / "example_cpt.csv").read_text().splitlines()
    f = tmp_path / "dup.csv"
    f.write_text("\n".join([*src[:4], src[3], src[3]]) + "\n")  # the third data row twice more
    code, out, err = cli("data", "validate", f)
    assert code == 0 and f"note: 2 rows of {f} repeat another row exactly" in err, err
    code, out, err = cli("data", "validate", f, "--json")
    assert code == 0 and json.loads(out)["duplicates_dropped"] == 2
    code, out, err = cli("data", "import", f, "--db", tmp_path / "s.sqlite")
    assert code == 0 and "note: 2 rows" in err, err
    code, out, err = cli("data", "validate", Path(__file__).parents[1] / "bayes_dcpt" / "datasets" / "example_cpt.csv")
    assert code == 0 and "repeat" not in err


def test_json_errors_reach_stdout(cli, tmp_path):
    """``data validate bad.csv --json`` printed nothing on stdout (a walkthrough's case): a pipeline parsing the JSON
    could not tell a bad file from a crash. A user error under ``--json`` is now JSON on stdout as well, with the same
    line as stderr, naming the field and the row; without ``--json`` stdout stays empty."""
    import json

    bad = tmp_path / "bad.csv"
    bad.write_text("domain,n_params,tokens,r_domain,loss_general,loss_domain,run_id\n"
                   "python,1000,4096,0.5,3.1,2.9,a\npython,1000,8192,1.5,3.0,2.8,a\n")
    code, out, err = cli("data", "validate", bad, "--json")
    assert code == 2, (code, out, err)
    msg = json.loads(out)["error"]
    assert msg["exit_code"] == 2 and len(msg["messages"]) == 1
    assert "r_domain" in msg["messages"][0] and "row" in msg["messages"][0], msg
    assert msg["messages"][0] in err
    code, out, err = cli("data", "validate", bad)
    assert code == 2 and out == "" and "r_domain" in err
    code, out, err = cli("fit", tmp_path / "none.csv", "--out", tmp_path / "f.nc", "--json")
    assert code == 2 and "no such file" in json.loads(out)["error"]["messages"][0].lower()


def test_negative_and_infinite_tokens_are_named_as_such(cli, tmp_path):
    """``tokens = -5`` was told about base-model rows (tokens == 0) and ``tokens = inf`` was "non-numeric" (a
    walkthrough's case): each now gets its own words, with its row."""
    from pathlib import Path

    fit = Path(__file__).parents[1] / "models" / "example_cpt.nc"
    grid = tmp_path / "g.csv"
    grid.write_text("domain,n_params,tokens,r_domain\npython,443232,-5,0.5\npython,443232,inf,0.5\n")
    code, out, err = cli("predict", fit, grid, "--out", tmp_path / "p.csv")
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 2, err
    neg, inf = (next(ln for ln in lines if f"(row {i};" in ln) for i in (1, 2))
    assert "must be > 0" in neg and "base-model" not in neg, neg
    assert "infinite" in inf and "non-numeric" not in inf, inf


def test_a_candidate_file_error_names_the_file_and_its_line(cli, tmp_path):
    """An unknown domain in ``--candidates`` was said of "candidates" with a row number only (a walkthrough's case):
    the file and its line are named now, as for every other bad value in the file."""
    from pathlib import Path

    fit = Path(__file__).parents[1] / "models" / "example_cpt.nc"
    c = tmp_path / "cand.csv"
    c.write_text("domain,n_params,tokens,r_domain\npython,13408,4096,0.5\nrust,13408,4096,0.5\n")
    code, out, err = cli("suggest", fit, "--candidates", c, "--target", "tradeoff", "--domain", "python",
                         "--n-params", "443232", "--tokens", "2097152", "--max-general-increase", "0.03")
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: {c}: column 'domain': unknown domain(s) ['rust']"), lines[0]
    assert lines[0].endswith("(row 2; line 3 of the file)"), lines[0]
    c.write_text("domain,n_params,tokens,r_domain\npython,13408,4096,0.5\npython,13408,4096,1.5\n")
    code, out, err = cli("suggest", fit, "--candidates", c, "--target", "tradeoff", "--domain", "python",
                         "--n-params", "443232", "--tokens", "2097152", "--max-general-increase", "0.03")
    assert code == 2 and "must be in [0, 1] (row 2; line 3 of the file)" in err, err
