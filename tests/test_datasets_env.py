"""``BAYES_DCPT_SHARED_DATA``: an explicit data folder is the only place looked at."""

from __future__ import annotations

import pytest

from bayes_dcpt import datasets


def test_explicit_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYES_DCPT_SHARED_DATA", str(tmp_path))
    assert datasets.shared_data_dir() == tmp_path.resolve()


def test_explicit_missing_folder_is_reported_not_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYES_DCPT_SHARED_DATA", str(tmp_path / "absent"))
    with pytest.raises(datasets.DatasetUnavailable, match="BAYES_DCPT_SHARED_DATA"):
        datasets.shared_data_dir()
    with pytest.raises(datasets.DatasetUnavailable):
        datasets.load_mixinglaws_cpt()


def test_epoch_chinchilla_rows_are_all_fitted():
    """Every Chinchilla point is general data with its own share 1 (not a skipped zero-ratio row)."""
    from conftest import shared

    shared("epoch_chinchilla")
    from bayes_dcpt.data.schema import to_long

    df = datasets.load_epoch_chinchilla()
    long = to_long(df, "general")
    assert len(long) == 240 and (long["r"] == 1.0).all()
