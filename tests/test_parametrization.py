"""The hierarchy's parameterisations: ``"split"`` and ``"split_weak_d"`` are the same posterior as ``"noncentered"``,
and ``"auto"`` picks by the rows per domain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _example():
    from bayes_dcpt.data import schema
    from bayes_dcpt.datasets import load_example

    return schema.load(load_example())


def test_auto_is_noncentred_on_few_rows_per_domain_and_split_on_many():
    from bayes_dcpt.fitting.config import CENTRED_D_DROP_FROM_ROWS, SPLIT_FROM_ROWS, resolve_parametrization

    df = _example()
    assert resolve_parametrization("auto", df) == "noncentered"  # the example grid: ~108 rows per domain
    cpt = df[df["tokens"] > 0]

    def per_domain(n):  # n fitted rows in every domain (the example's rows repeated)
        return pd.concat([g.sample(n, replace=True, random_state=0) for _, g in cpt.groupby("domain")],
                         ignore_index=True)

    assert resolve_parametrization("auto", per_domain(SPLIT_FROM_ROWS)) == "split_weak_d"
    assert resolve_parametrization("auto", per_domain(CENTRED_D_DROP_FROM_ROWS - 1)) == "split_weak_d"
    rows = per_domain(CENTRED_D_DROP_FROM_ROWS)
    assert resolve_parametrization("auto", rows) == "split"
    first = rows["domain"] == rows["domain"].iloc[0]
    one_short = pd.concat([rows[~first], rows[first].iloc[:SPLIT_FROM_ROWS - 1]], ignore_index=True)
    assert resolve_parametrization("auto", one_short) == "noncentered"  # the thinnest domain decides
    for name in ("noncentered", "centered", "mixed", "split", "split_weak_d"):
        assert resolve_parametrization(name, df) == name


def test_unknown_parametrization_is_refused_with_the_choices():
    import bayes_dcpt as bd
    from bayes_dcpt.errors import FitError

    with pytest.raises(FitError, match="'auto', 'centered', 'noncentered', 'mixed', 'split', 'split_weak_d'"):
        bd.fit(_example(), law="dcpt", parametrization="centred", discrepancy=False)


@pytest.mark.parametrize("split_name", ["split", "split_weak_d"])
def test_split_hierarchy_is_the_noncentred_posterior_up_to_the_jacobian(split_name):
    """Centred levels and drops, non-centred shares: the same model, other coordinates (and, for dense data, a
    tighter prior on the shares' spread).

    For any point, log p_split(x) = log p_nc(z) - sum log(scale) with z = (x - loc) / scale for every centred
    value (the change of variables), so both sample the same posterior. ``"split_weak_d"`` centres the drop along
    D for the domain loss only (``u_log_drop_B``: centred rows shifted and scaled, non-centred rows as they are).
    """
    from bayes_dcpt.fitting.config import DENSE_SHARE_SPREAD, FitConfig
    from bayes_dcpt.fitting.dcpt_model import build_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.laws.registry import get_law

    df, law = _example(), get_law("dcpt")
    split_cfg = FitConfig(law="L3", target="both", parametrization=split_name)
    nc_cfg = FitConfig(law="L3", target="both", parametrization="noncentered")
    design = make_design(df, law, split_cfg)
    split, nc = build_model(law, split_cfg, design), build_model(law, nc_cfg, design)
    names = {v.name for v in split.free_RVs}
    centred = [n for n in names if n == "log_far_loss" or n.startswith("log_drop_")]
    weak = split_name == "split_weak_d"
    # the far-corner level and the drops along N and r; along D (B) too, or for the domain loss only
    assert sorted(centred) == (["log_drop_A", "log_drop_C", "log_far_loss"] if weak else
                               ["log_drop_A", "log_drop_B", "log_drop_C", "log_far_loss"])
    assert ("u_log_drop_B" in names) == weak
    assert {f"z_{n}" for n in centred} <= {v.name for v in nc.free_RVs}
    assert any(n.startswith("z_share_") for n in names)  # the shares stay non-centred
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
        if weak:  # centred on the domain-loss row (sep = 1), non-centred on the general one
            mu, sd = x["mu_log_drop_B"][:, None], np.exp(x["sd_log_drop_B_log__"])[:, None]
            z["z_log_drop_B"] = np.where(sep == 1, (z.pop("u_log_drop_B") - mu) / sd, x["u_log_drop_B"])
            log_jac += float(np.sum(np.log(sd) * sep * np.ones_like(z["z_log_drop_B"])))
        # and the dense-data prior of the shares' spread: HalfNormal(DENSE_SHARE_SPREAD) for HalfNormal(0.5)
        shift = sum(float(np.sum(np.log(0.5 / DENSE_SHARE_SPREAD)
                                 - np.exp(2 * x[k]) / 2 * (DENSE_SHARE_SPREAD**-2 - 0.5**-2)))
                    for k in x if k.startswith("sd_share_"))
        assert shift != 0.0
        assert float(f_split(x)) == pytest.approx(float(f_nc(z)) - log_jac + shift, rel=1e-9)


@pytest.mark.parametrize("parametrization, given, want, draws, want_draws",
                         [("split", None, 0.95, None, 1500), ("split_weak_d", None, 0.95, None, 1500),
                          ("noncentered", None, None, None, 1000), ("split", 0.99, 0.99, 700, 700)])
def test_dense_data_fits_run_nuts_at_a_higher_target_acceptance(monkeypatch, parametrization, given, want, draws,
                                                                 want_draws):
    """The split hierarchies (dense data) sample at ``DENSE_TARGET_ACCEPT`` and ``DENSE_DRAWS`` unless told; the
    others at nutpie's default and 1000 draws (BENCHMARKS.md, "Sixteenth round": their last rare divergences at
    32,400 rows; "Seventeenth round": their tail ESS)."""
    from bayes_dcpt.fitting import dcpt
    from bayes_dcpt.fitting.config import DENSE_DRAWS, DENSE_TARGET_ACCEPT

    seen = {}

    class Stop(Exception):
        pass

    def fake(entry, sampler, names, **kw):
        seen.update(kw["sampler_kwargs"] or {}, draws=kw["draws"])
        raise Stop

    monkeypatch.setattr(dcpt, "run_sampler", fake)
    with pytest.raises(Stop):
        dcpt.fit(_example(), "dcpt", "both", parametrization=parametrization, warn=False, draws=draws,
                 sampler_kwargs=None if given is None else {"target_accept": given})
    assert seen.get("target_accept") == want and DENSE_TARGET_ACCEPT == 0.95
    assert seen["draws"] == want_draws and DENSE_DRAWS == 1500
