"""The schema: loading, aliases, validation errors naming column and rows, and garbage in."""

from __future__ import annotations

import string

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_dcpt import data
from bayes_dcpt.errors import DataValidationError


def good_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "domain": ["code"] * 4,
            "n_params": [1e8] * 4,
            "tokens": [0, 1e8, 2e8, 4e8],
            "r_domain": [np.nan, 0.5, 0.5, 0.5],
            "loss_general": [2.9, 2.95, 2.96, 2.97],
            "loss_domain": [1.8, 1.6, 1.55, 1.5],
        }
    )


def test_load_good_frame_types_and_run_ids():
    df = data.load(good_frame())
    assert list(df.columns[:7]) == ["domain", "n_params", "tokens", "r_domain", "loss_general", "loss_domain", "run_id"]
    assert df["tokens"].dtype == np.float64
    assert df.loc[0, "run_id"].startswith("base|code")
    assert df.loc[1, "run_id"] == df.loc[3, "run_id"]
    assert data.summarize(df)["runs"] == 1


def test_non_default_index_is_not_misaligned():
    f = good_frame()
    f.index = [10, 11, 12, 13]
    df = data.load(f)
    assert (df["domain"] == "code").all() and len(df) == 4


def test_aliases_are_normalised():
    f = good_frame().rename(columns={"n_params": "N", "tokens": "tokens_seen", "loss_domain": "domain_loss"})
    df = data.load(f)
    assert {"n_params", "tokens", "loss_domain"} <= set(df.columns)


def test_ambiguous_alias_is_an_error():
    f = good_frame().rename(columns={"n_params": "N"})
    f["params"] = f["N"]
    with pytest.raises(DataValidationError, match="ambiguous"):
        data.load(f)


@pytest.mark.parametrize(
    "mutate, column, rows",
    [
        (lambda f: f.drop(columns="tokens"), "tokens", None),
        (lambda f: f.assign(r_domain=[np.nan, 0.5, 1.5, 0.5]), "r_domain", "row 3"),
        (lambda f: f.assign(n_params=[1e8, -1, 1e8, 0]), "n_params", "rows 2, 4"),
        (lambda f: f.assign(tokens=[0, -5, 2e8, 4e8]), "tokens", "row 2"),
        (lambda f: f.assign(loss_domain=[1.8, 0.0, 1.55, 1.5]), "loss_domain", "row 2"),
        (lambda f: f.assign(loss_general=[2.9, np.inf, 2.96, 2.97]), "loss_general", "row 2"),
        (lambda f: f.assign(n_params=[1e8, np.nan, 1e8, 1e8]), "n_params", "row 2"),
        (lambda f: f.assign(r_domain=[np.nan, np.nan, 0.5, 0.5]), "r_domain", "row 2"),
        (lambda f: f.assign(tokens=["0", "1e8", "abc", "4e8"]), "tokens", "row 3"),
        (lambda f: f.assign(domain=["code", "", "code", "code"]), "domain", "row 2"),
        (lambda f: f.assign(loss_general=[np.nan] * 4, loss_domain=[1.8, np.nan, 1.5, 1.4]), "loss_general/loss_domain",
         "row 2"),
    ],
)
def test_bad_values_name_column_and_rows(mutate, column, rows):
    with pytest.raises(DataValidationError) as ei:
        data.load(mutate(good_frame()))
    msgs = [str(p) for p in ei.value.problems]
    assert any(f"'{column}'" in m and (rows is None or rows in m) for m in msgs), msgs


def test_conflicting_duplicates_are_an_error_but_exact_duplicates_are_dropped():
    f = good_frame()
    dup = pd.concat([f, f.iloc[[2]]], ignore_index=True)
    assert len(data.load(dup)) == 4
    bad = dup.copy()
    bad.loc[4, "loss_domain"] = 1.9
    with pytest.raises(DataValidationError, match=r"different losses.*rows 3, 5"):
        data.load(bad)


def test_a_run_that_changes_its_mixture_between_checkpoints_is_an_error():
    """One run_id, two ratios: every law would read it as one curve through two mixtures. The user's store keeps
    what it had (validation comes before any write), and the message names the run, the values and every row."""
    f = pd.DataFrame({"domain": "code", "n_params": 1e8, "tokens": [1e9, 2e9, 4e9], "r_domain": [0.5, 0.5, 0.25],
                      "loss_general": [2.1, 2.0, 1.95], "loss_domain": [1.8, 1.7, 1.65], "run_id": "code-small"})
    with pytest.raises(DataValidationError) as ei:
        data.load(f)
    (p,) = ei.value.problems
    assert p.column == "r_domain" and p.rows == (1, 2, 3)
    assert "run 'code-small' changes its value between checkpoints (0.5, 0.25)" in str(p)
    two = f.assign(n_params=[1e8, 1e8, 3e8], r_domain=0.5, run_id=["a", "a", "a"])
    with pytest.raises(DataValidationError, match=r"'n_params'.*run 'a'"):
        data.load(two)
    assert len(data.load(f.assign(run_id=None))) == 3  # without run ids, each ratio is its own run
    # the base model's rows are every run's: repeated with each run's ratio (as log importers write step 0), and
    # with the runs' own ids, they are one base run, not a run changing its mixture
    two_runs = pd.DataFrame({"domain": "code", "n_params": 1e8, "tokens": [0, 1e9, 0, 1e9],
                             "r_domain": [0.25, 0.25, 0.5, 0.5], "loss_general": [2.2, 2.1, 2.2, 2.15],
                             "loss_domain": [1.9, 1.8, 1.9, 1.7], "run_id": ["a", "a", "b", "b"]})
    assert len(data.load(two_runs)) == 3 and len(data.load(two_runs.drop(columns="run_id"))) == 3


def test_all_problems_are_reported_together():
    f = good_frame().assign(r_domain=[np.nan, 2.0, 0.5, 0.5], n_params=[1e8, 1e8, -3, 1e8])
    with pytest.raises(DataValidationError) as ei:
        data.load(f)
    cols = {p.column for p in ei.value.problems}
    assert {"r_domain", "n_params"} <= cols


def test_files(tmp_path):
    p = tmp_path / "ok.csv"
    good_frame().to_csv(p, index=False)
    assert len(data.load(p)) == 4
    q = tmp_path / "ok.parquet"
    good_frame().to_parquet(q)
    assert len(data.load(q)) == 4
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        data.load(tmp_path / "empty.csv")
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataValidationError, match=r"UTF-8|unreadable"):
        data.load(tmp_path / "bin.csv")
    text = p.read_text()
    (tmp_path / "trunc.csv").write_text(text[: len(text) - 9])
    with pytest.raises(DataValidationError):
        data.load(tmp_path / "trunc.csv")
    (tmp_path / "bad.parquet").write_bytes(q.read_bytes()[:100])
    with pytest.raises(DataValidationError, match="unreadable parquet"):
        data.load(tmp_path / "bad.parquet")
    with pytest.raises(DataValidationError, match="no such file"):
        data.load(tmp_path / "missing.csv")
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataValidationError, match="unsupported"):
        data.load(tmp_path / "x.xlsx")


def test_to_long_uses_each_targets_own_ratio():
    df = data.load(good_frame())
    long = data.to_long(df)
    g = long[long.target == "general"]
    d = long[long.target == "domain"]
    assert np.allclose(g["r"], 0.5) and np.allclose(d["r"], 0.5)
    f = good_frame().assign(r_domain=[np.nan, 0.2, 0.2, 0.2])
    long = data.to_long(data.load(f))
    assert np.allclose(long[long.target == "general"]["r"], 0.8)
    assert len(long) == 6  # base rows are never fitted


def test_base_losses_and_hash():
    df = data.load(good_frame())
    b = data.base_losses(df)
    assert float(b["loss_domain"].iloc[0]) == 1.8
    assert data.data_hash(df) == data.data_hash(df.iloc[::-1])


# ------------------------------------------------------------------ property-based: garbage in, our error out
cells = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10**12, max_value=10**12),
    st.text(alphabet=string.printable, max_size=8),
    st.booleans(),
)
colnames = st.sampled_from(
    ["domain", "n_params", "tokens", "r_domain", "loss_general", "loss_domain", "run_id", "N", "D", "r", "x", "seed"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(colnames, st.lists(cells, min_size=0, max_size=6), min_size=0, max_size=8))
def test_garbage_frames_raise_our_error_or_load(cols):
    n = max((len(v) for v in cols.values()), default=0)
    frame = pd.DataFrame({k: (v + [None] * (n - len(v))) for k, v in cols.items()}, dtype=object)
    try:
        out = data.load(frame)
    except DataValidationError as exc:
        assert str(exc)
        return
    assert (out["n_params"] > 0).all()
    assert ((out["r_domain"] >= 0) & (out["r_domain"] <= 1) | out["r_domain"].isna()).all()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_bytes_raise_our_error(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("g") / "x.csv"
    p.write_bytes(blob)
    try:
        data.load(p)
    except DataValidationError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_parquet_raises_our_error(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("g") / "x.parquet"
    p.write_bytes(blob)
    with pytest.raises(DataValidationError):
        data.load(p)


# ------------------------------------------------------------------ user review: truncated files, NaN text, typos
def extra_frame() -> pd.DataFrame:
    """The good frame with the extra columns the package's own datasets carry (a quoted comma in base_schedule)."""
    f = good_frame()
    return f.assign(
        seed=0, step=[0, 1, 2, 4], lr=[np.nan, 1e-3, 1e-3, 1e-3], schedule="cosine", base_schedule="constant,warmup=10"
    )


def test_ragged_and_truncated_csv_name_the_line_and_legit_csvs_load(tmp_path):
    p = tmp_path / "ok.csv"
    extra_frame().to_csv(p, index=False)
    text = p.read_text()
    assert '"constant,warmup=10"' in text  # quoted commas count as one field
    cut = text.rstrip("\n")[:-25]  # cut inside the last line (line 5), no final newline
    (tmp_path / "cut.csv").write_text(cut)
    with pytest.raises(DataValidationError, match=r"line 5 .*has \d+ fields but the header has 11.*truncated"):
        data.load(tmp_path / "cut.csv")
    lines = text.splitlines(keepends=True)
    lines[2] = lines[2].rstrip("\n") + ",extra\n"  # a ragged line inside the file
    (tmp_path / "ragged.csv").write_text("".join(lines))
    with pytest.raises(DataValidationError, match=r"line 3 \(data row 2\) has 12 fields but the header has 11") as ei:
        data.load(tmp_path / "ragged.csv")
    assert "truncated" not in ei.value.problems[0].message
    legit = {
        "crlf": text.replace("\n", "\r\n"),
        "nonl": text.rstrip("\n"),
        "blank": text + "\n\n \n",
        "crlf_nonl": text.rstrip("\n").replace("\n", "\r\n"),
    }
    for name, body in legit.items():
        (tmp_path / f"{name}.csv").write_bytes(body.encode())
        df = data.load(tmp_path / f"{name}.csv")
        assert len(df) == 4 and (df["base_schedule"] == "constant,warmup=10").all(), name


def test_truncated_csv_import_leaves_the_store_unchanged(tmp_path, cli):
    from bayes_dcpt.data.store import Store

    good = tmp_path / "good.csv"
    extra_frame().to_csv(good, index=False)
    db = tmp_path / "runs.sqlite"
    with Store(db) as st:
        st.import_frame(good)
        before = st.evaluations()
    more = extra_frame().assign(r_domain=[np.nan, 0.25, 0.25, 0.25], loss_domain=[1.8, 1.7, 1.65, 1.62])
    more.to_csv(tmp_path / "more.csv", index=False)
    (tmp_path / "cut.csv").write_text((tmp_path / "more.csv").read_text().rstrip("\n")[:-30])
    code, out, err = cli("data", "import", tmp_path / "cut.csv", "--db", db)
    assert code == 2, (out, err)
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and "line 5" in lines[0] and "truncated" in lines[0], err
    with Store(db) as st:
        with pytest.raises(DataValidationError, match="truncated"):
            st.import_frame(tmp_path / "cut.csv")
        pd.testing.assert_frame_equal(st.evaluations(), before)


def test_literal_nan_is_an_error_but_an_empty_loss_cell_is_missing(tmp_path):
    f = good_frame().astype({"loss_general": object})
    f.loc[2, "loss_general"] = ""
    p = tmp_path / "empty_cell.csv"
    f.to_csv(p, index=False)
    assert np.isnan(data.load(p).loc[2, "loss_general"])  # a run that did not measure that loss
    for cell, column in [("NaN", "loss_general"), ("nan", "loss_domain"), ("NaN", "n_params"), ("-nan", "tokens")]:
        g = good_frame().astype({column: object})
        g.loc[2, column] = cell
        q = tmp_path / f"{column}.csv"
        g.to_csv(q, index=False)
        with pytest.raises(DataValidationError) as ei:
            data.load(q)
        msg = str(ei.value)
        assert f"column '{column}'" in msg and "row 3; line 4 of the file" in msg, msg
        assert "leave the cell empty" in msg and "NaN is not a measurement" in msg, msg
    with pytest.raises(DataValidationError, match=r"'loss_domain': NaN is not a measurement.*row 2"):
        data.load(good_frame().astype({"loss_domain": object}).assign(loss_domain=[1.8, "nan", 1.55, 1.5]))
    # Parquet stores NaN and missing alike: a float NaN loss there reads as not measured
    q = tmp_path / "nan.parquet"
    good_frame().assign(loss_general=[2.9, np.nan, 2.96, 2.97]).to_parquet(q)
    assert len(data.load(q)) == 4


def test_misspelt_column_is_an_error_other_extra_columns_are_kept(tmp_path, cli):
    p = tmp_path / "typo.csv"
    extra_frame().rename(columns={"loss_general": "loss_genral"}).to_csv(p, index=False)
    with pytest.raises(DataValidationError) as ei:
        data.load(p)
    assert str(ei.value).endswith("column 'loss_genral': not in the schema; did you mean 'loss_general'?")
    code, out, err = cli("data", "validate", p)
    assert code == 2 and "did you mean 'loss_general'" in err and len(err.strip().splitlines()) == 1, (out, err)
    with pytest.raises(DataValidationError, match=r"'n_parms': not in the schema; did you mean 'n_params'") as ei:
        data.load(good_frame().rename(columns={"n_params": "n_parms"}))
    assert len(ei.value.problems) == 1  # no second "required column is missing" for the same column
    kept = extra_frame().assign(my_note="x", loss_general_std=0.01)  # extra columns, loss_general present
    df = data.load(kept)
    assert {"seed", "step", "lr", "schedule", "base_schedule", "my_note", "loss_general_std"} <= set(df.columns)


def test_absent_loss_column_is_allowed_and_shown_in_the_summary(tmp_path, cli):
    p = tmp_path / "domain_only.csv"
    good_frame().drop(columns="loss_general").to_csv(p, index=False)
    s = data.summarize(data.load(p))
    assert s["loss_general_rows"] == 0 and s["loss_columns_absent"] == ["loss_general"]
    assert data.summarize(data.load(good_frame()))["loss_columns_absent"] == []
    code, out, err = cli("data", "validate", p, "--json")
    assert code == 0 and '"loss_columns_absent": [' in out and '"loss_general"' in out, (out, err)
    code, out, err = cli("data", "validate", p)
    assert code == 0 and "no column loss_general" in " ".join(out.split()), out
