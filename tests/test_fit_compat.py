"""Fits saved by earlier versions of the package load with the current code and predict exactly the same.

``tests/data/fit_v0_1.nc`` is a small D-CPT fit (2 chains x 50 draws of a synthetic grid) saved by the package
before the fitting split (commit 77bd364), with its predictions in ``fit_v0_1_predictions.csv``; the script that
wrote both is ``tests/data/make_fit_v0_1.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt.fitting import Fit, load_fit

DATA = Path(__file__).resolve().parent / "data"
INPUTS = ["domain", "n_params", "tokens", "r_domain"]


@pytest.fixture(scope="module")
def old_fit() -> Fit:
    return load_fit(DATA / "fit_v0_1.nc")


@pytest.fixture(scope="module")
def old_predictions() -> pd.DataFrame:
    # the CSV holds the shortest repr of every float64; Python's float() reads it back bit for bit
    df = pd.read_csv(DATA / "fit_v0_1_predictions.csv", dtype=str)
    return df.assign(**{c: df[c].map(float) for c in df if c != "domain"})


def test_fit_saved_by_v0_1_loads_with_its_card(old_fit):
    card = old_fit.card()
    assert isinstance(old_fit, Fit) and old_fit.law.name == "L3"
    assert old_fit.targets == ("general", "domain") and old_fit.domains == ["code"]
    assert old_fit.config.run_offsets == "marginal" and old_fit.posterior.ctx.get("run_mixing") == 1.0
    assert old_fit.posterior.n_draws == 100
    assert card["sampler"]["draws"] == 50 and card["sampler"]["chains"] == 2
    d = old_fit.diagnostics(warn=False)
    assert d.sampler == "nutpie" and d.draws == 50 and d.chains == 2


@pytest.mark.parametrize("kind", ["mean", "predictive"])
def test_fit_saved_by_v0_1_predicts_identically(old_fit, old_predictions, kind):
    """The same bands: the same draws through the same prediction code (up to the last bit of rounding, which
    numpy releases may reorder)."""
    got = old_fit.predict(old_predictions[INPUTS], kind=kind, seed=0).drop(columns=INPUTS)
    want = old_predictions[[c for c in old_predictions if c.startswith(f"{kind}__")]]
    assert list(got.columns) == [c.split("__", 1)[1] for c in want.columns]
    for col in got.columns:
        np.testing.assert_allclose(got[col].to_numpy(), want[f"{kind}__{col}"].to_numpy(), rtol=1e-12, err_msg=col)


def test_fit_saved_by_v0_1_round_trips(old_fit, old_predictions, tmp_path):
    """Saved again by the current code, the fit still predicts the same."""
    again = load_fit(old_fit.save(tmp_path / "again.nc"))
    a = again.predict(old_predictions[INPUTS], kind="predictive", seed=0)
    b = old_fit.predict(old_predictions[INPUTS], kind="predictive", seed=0)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
