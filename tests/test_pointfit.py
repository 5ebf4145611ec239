"""The paper's point fit and the Epoch-style bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_dcpt import data
from bayes_dcpt.errors import FitError, UnknownDomainError
from bayes_dcpt.fitting.pointfit import bootstrap, fit_arrays, fit_point, huber, metrics


def test_huber_matches_definition():
    r = np.array([-0.01, -1e-4, 0.0, 5e-4, 0.02])
    d = 1e-3
    exp = np.array([d * (0.01 - d / 2), 0.5e-8, 0.0, 0.5 * 25e-8, d * (0.02 - d / 2)])
    np.testing.assert_allclose(huber(r, d), exp)


def test_metrics():
    m = metrics(np.array([2.0, 3.0]), np.array([2.0, 3.3]))
    assert m["mape"] == pytest.approx(5.0)
    assert m["mae"] == pytest.approx(0.15)


def test_recovers_known_l3_parameters(world, sim_df):
    res = fit_point(sim_df, "dcpt", "both")
    rows = data.fit_rows(res.predict(sim_df))
    for t in ("general", "domain"):
        truth = world.mean(rows, t)
        rel = np.abs(rows[f"loss_{t}_pred"].to_numpy() / truth - 1)
        assert rel.max() < 0.005, (t, rel.max())
        f = res.fits[(t, "code")]
        assert f.metrics["r2"] > 0.99 and f.success
        assert f.params["eta"] > 1
        for k in ("alpha", "beta"):
            assert f.params[k] == pytest.approx(world.params[(t, "code")][k], rel=0.25)


def test_fit_is_deterministic(sim_df):
    a = fit_point(sim_df, "dcpt", "domain", n_grid=500, n_starts=2, seed=3)
    b = fit_point(sim_df, "dcpt", "domain", n_grid=500, n_starts=2, seed=3)
    assert a["domain"].params == b["domain"].params


def test_several_domains_are_fitted_separately():
    from bayes_dcpt.plan.simulate import World, probe_grid

    w = World.default(domains=("code", "law"), sigma=0.002, tau=0.0)
    df = w.simulate(probe_grid(domains=("code", "law"), n_params=(1e8, 1e9)), seed=2)
    res = fit_point(df, "dcpt", "domain", n_grid=800, n_starts=3)
    assert set(res.fits) == {("domain", "code"), ("domain", "law")}
    with pytest.raises(UnknownDomainError):
        fit_point(df, "dcpt", "domain", domain="music")


def test_too_few_points_is_a_clear_error(sim_df):
    small = sim_df[sim_df["tokens"] > 0].head(5)
    with pytest.raises(FitError, match="5 measured points for 9 parameters"):
        fit_point(small, "dcpt", "domain")


def test_cross_domain_point_fit_with_dlc_features():
    from bayes_dcpt.plan.simulate import World, probe_grid

    # domains that differ in their irreducible loss: what the cross-domain law's F/K^mu term describes
    w = World.default(domains=("a", "b", "c"), sigma=0.002, tau=0.0, spread=0.3, vary=("E",))
    df = w.simulate(probe_grid(domains=("a", "b", "c"), n_params=(1e8, 1e9)), seed=4)
    res = fit_point(df, "cross-domain", "domain", n_grid=1500, n_starts=4)
    f = res[("domain", "*")]
    assert f.features is not None and set(f.features["domain"]) == {"a", "b", "c"}
    assert (f.features["k2"] > 0).all()
    assert f.metrics["mape"] < 1.0


def test_fit_arrays_any_law():
    law_p = {"c": 1.2, "k": 0.4, "t": -1.5}
    r = np.linspace(0, 1, 20)
    y = law_p["c"] + law_p["k"] * np.exp(law_p["t"] * r)
    got = fit_arrays("mixing", {"r": r}, y)
    for k, v in law_p.items():
        assert got[k] == pytest.approx(v, rel=1e-3)


def test_bootstrap_intervals_cover_truth_and_run_resampling_is_wider(world):
    from bayes_dcpt.plan.simulate import World, probe_grid

    w = World.default(sigma=0.003, tau=0.006)
    df = w.simulate(probe_grid(n_params=(1e8, 3e8, 1e9)), seed=5)
    bp = bootstrap(df, "dcpt", "domain", n=40, by="point", seed=1, n_grid=1000, n_starts=3)
    br = bootstrap(df, "dcpt", "domain", n=40, by="run", seed=1, point=bp.point)
    iv_p = bp.intervals(0.9).set_index("param")
    iv_r = br.intervals(0.9).set_index("param")
    width = lambda iv, k: iv.loc[k, "hi"] - iv.loc[k, "lo"]  # noqa: E731
    # whole-run resampling respects the shared run offsets: wider intervals on the token exponent
    assert width(iv_r, "beta") > width(iv_p, "beta")
    pred = br.predict(data.fit_rows(df).head(20))
    assert (pred["loss_domain_lo"] <= pred["loss_domain_mean"] + 1e-9).all()
    assert (pred["loss_domain_hi"] >= pred["loss_domain_mean"] - 1e-9).all()


@pytest.mark.realdata
def test_mixinglaws_holdout_ratio(mixinglaws_df):
    """Fit L3 on 4 ratios of the Pythia-70M CPT sweep; predict the held-out ratio (0.715) within 1% MAPE."""
    hold = np.isclose(mixinglaws_df["r_domain"], 0.71484375)
    res = fit_point(mixinglaws_df[~hold], "dcpt", "both")
    test = data.fit_rows(mixinglaws_df[hold])
    pred = res.predict(test)
    for t in ("general", "domain"):
        m = metrics(pred[f"loss_{t}"], pred[f"loss_{t}_pred"])
        assert m["n"] == 10 and m["mape"] < 1.0, (t, m)


def test_the_point_fit_says_when_the_law_misses_and_what_the_data_do_not_pin(sim_df):
    """A table of estimates hides a misfit and estimates stuck at their limits; the notes say both.

    The example's codec_tables domain loss misses the D-CPT law by 22% in sample, with eps at the edge of its
    range; data simulated from the law itself get no misfit note.
    """
    from bayes_dcpt import datasets

    ex = datasets.load_example()
    notes = fit_point(ex, "dcpt", "domain", domain="codec_tables", n_grid=1000, n_starts=4)[
        ("domain", "codec_tables")].notes
    assert any(n.startswith("in-sample error") and "does not describe" in n for n in notes), notes
    assert any(n.startswith("eps at the edge of its range") for n in notes), notes
    good = fit_point(sim_df, "dcpt", "both", n_grid=1000, n_starts=4)
    assert not any("does not describe" in n for f in good.fits.values() for n in f.notes)
