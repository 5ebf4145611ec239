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
    with pytest.raises(DataValidationError, match="UTF-8|unreadable"):
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
