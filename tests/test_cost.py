"""GPU-hour cost model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.plan.cost import CostModel


def test_six_n_d_at_the_documented_a100_defaults():
    cm = CostModel()
    c = pd.DataFrame({"n_params": [1e9], "tokens": [1e10]})
    # 6e19 FLOPs / (312e12 * 0.4 * 3600 FLOP per GPU-hour) + 0.25 h overhead
    assert cm.gpu_hours(c)[0] == pytest.approx(6e19 / (312e12 * 0.4 * 3600) + 0.25)
    assert "312 TFLOP/s" in cm.describe()


def test_pretraining_is_paid_only_when_the_base_is_missing_and_once_per_batch():
    cm = CostModel(gpu_flops=1e15, mfu=0.5, overhead_hours=0.0)
    c = pd.DataFrame(
        {"n_params": [1e9, 1e9, 2e9], "tokens": [1e9, 1e9, 1e9], "pretrain_tokens": [np.nan, 2e10, 2e10]}
    )
    comp = cm.components(c)
    per = 6 * 1e9 * 1e9 / (1e15 * 0.5 * 3600)
    np.testing.assert_allclose(comp["cpt_hours"], [per, per, 2 * per])
    np.testing.assert_allclose(comp["pretrain_hours"], [0.0, 20 * per, 40 * per])
    marg = cm.marginal_hours(c, paid_bases={(1e9, 2e10)})
    np.testing.assert_allclose(marg, [per, per, 2 * per + 40 * per])


@pytest.mark.parametrize("kw", [{"mfu": 0.0}, {"mfu": 1.5}, {"gpu_flops": -1.0}, {"overhead_hours": -0.1}])
def test_invalid_settings(kw):
    with pytest.raises(BayesDCPTError):
        CostModel(**kw)
