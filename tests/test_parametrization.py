"""The hierarchy's parameterisations: ``"split"`` is the same posterior as ``"noncentered"``, and ``"auto"`` picks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _example():
    from bayes_dcpt.data import schema
    from bayes_dcpt.datasets import load_example

    return schema.load(load_example())


def test_auto_is_noncentred_on_few_rows_per_domain_and_split_on_many():
    from bayes_dcpt.fitting.config import SPLIT_FROM_ROWS, resolve_parametrization

    df = _example()
    assert resolve_parametrization("auto", df) == "noncentered"  # the example grid: ~108 rows per domain
    rows = pd.concat([df[df["tokens"] > 0]] * (SPLIT_FROM_ROWS // 50 + 1), ignore_index=True)
    assert resolve_parametrization("auto", rows) == "split"
    first = rows["domain"] == rows["domain"].iloc[0]
    one_short = pd.concat([rows[~first], rows[first].iloc[:SPLIT_FROM_ROWS - 1]], ignore_index=True)
    assert resolve_parametrization("auto", one_short) == "noncentered"  # the thinnest domain decides
    for name in ("noncentered", "centered", "mixed", "split"):
        assert resolve_parametrization(name, df) == name


def test_unknown_parametrization_is_refused_with_the_choices():
    import bayes_dcpt as bd
    from bayes_dcpt.errors import FitError

    with pytest.raises(FitError, match="'auto', 'centered', 'noncentered', 'mixed', 'split'"):
        bd.fit(_example(), law="dcpt", parametrization="centred", discrepancy=False)


def test_split_hierarchy_is_the_noncentred_posterior_up_to_the_jacobian():
    """Centred levels and drops, non-centred shares: the same model, other coordinates.

    For any point, log p_split(x) = log p_nc(z) - sum log(scale) with z = (x - loc) / scale for every centred
    variable (the change of variables), so both sample the same posterior.
    """
    from bayes_dcpt.fitting.config import FitConfig
    from bayes_dcpt.fitting.dcpt_model import build_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.laws.registry import get_law

    df, law = _example(), get_law("dcpt")
    split_cfg = FitConfig(law="L3", target="both", parametrization="split")
    nc_cfg = FitConfig(law="L3", target="both", parametrization="noncentered")
    design = make_design(df, law, split_cfg)
    split, nc = build_model(law, split_cfg, design), build_model(law, nc_cfg, design)
    centred = [v.name for v in split.free_RVs if v.name == "log_far_loss" or v.name.startswith("log_drop_")]
    assert len(centred) == 4  # the far-corner level and the drops of A, B and C
    assert {f"z_{n}" for n in centred} <= {v.name for v in nc.free_RVs}
    assert any(v.name.startswith("z_share_") for v in split.free_RVs)  # the shares stay non-centred
    sep = np.array([[1.0] if t == "domain" else [0.0] for t in design.targets])
    loss_lo_d = np.log(design.arrays()["loss_lo_d"])
    f_split, f_nc = split.compile_logp(), nc.compile_logp()
    rng = np.random.default_rng(0)
    ip = split.initial_point()
    for _ in range(3):
        x = {k: v + rng.normal(0, 0.05, np.shape(v)) for k, v in ip.items()}
        z, log_jac = dict(x), 0.0
        for n in centred:
            mu, sd = x[f"mu_{n}"][:, None], np.exp(x[f"sd_{n}_log__"])[:, None]
            if n == "log_far_loss":
                mu, sd = sep * loss_lo_d + (1 - sep) * mu, sep * 0.5 + (1 - sep) * sd
            z[f"z_{n}"] = (z.pop(n) - mu) / sd
            log_jac += float(np.sum(np.log(sd * np.ones_like(z[f"z_{n}"]))))
        assert float(f_split(x)) == pytest.approx(float(f_nc(z)) - log_jac, rel=1e-9)
