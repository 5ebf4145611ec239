"""Runs of different sizes on one data stream share their deviations from the law: measured, and used at a new size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import probe_grid
from planner_helpers import jitter_posterior

from bayes_dcpt.data import schema as _data
from bayes_dcpt.datasets import load_example
from bayes_dcpt.fitting import fit, load_fit
from bayes_dcpt.plan.simulate import World
from bayes_dcpt.posterior.streams import stream_deviations, stream_keys, stream_shift

SHARED, IDIO = 0.02, 0.004


@pytest.fixture(scope="module")
def world() -> World:
    return World.default(domains=("code",), sigma=0.0, tau=0.0)


def _streams(world: World, shared: float, seed: int = 0) -> pd.DataFrame:
    """The world's probe grid with a deviation per (ratio, tokens) common to every size, plus a size's own noise."""
    df = world.simulate(probe_grid(), seed=1).assign(seed=0)
    rng = np.random.default_rng(seed)
    key = df["r_domain"].astype(str) + "|" + df["tokens"].astype(str)
    dev = {k: rng.normal(0, shared, 2) for k in key.unique()}
    cpt = (df["tokens"] > 0).to_numpy()
    for j, t in enumerate(("general", "domain")):
        e = np.array([dev[k][j] for k in key]) + rng.normal(0, IDIO, len(df))
        df[f"loss_{t}"] = np.where(cpt, df[f"loss_{t}"] * np.exp(e), df[f"loss_{t}"])
    return df.assign(true_dev_general=[dev[k][0] for k in key], true_dev_domain=[dev[k][1] for k in key])


def test_stream_keys_need_a_seed():
    df = pd.DataFrame({"domain": ["a", "a"], "r_domain": [0.5, 0.5], "tokens": [1e6, 1e6], "seed": [0, np.nan]})
    keys = stream_keys(df)
    assert keys[0] == "a|0.5|0|1000000" and keys[1] == ""
    assert stream_keys(df.drop(columns="seed")) is None


def test_a_new_size_on_a_probed_stream_inherits_its_shared_deviation(world):
    post = jitter_posterior(world, S=200, spread=0.001, sigma=0.02, tau=0.001)
    df = _streams(world, SHARED)
    big = np.isclose(df["n_params"], df["n_params"].max())
    st = stream_deviations(post, df[~big])
    for t in ("general", "domain"):
        comp = st[t]["domains"]["code"]
        assert comp["omega2"] == pytest.approx(SHARED**2, rel=0.5)
        assert comp["omega2"] / comp["total"] > 0.8  # the shared part dominates the residuals
    post.ctx["streams"] = st
    test = df[big & (df["tokens"] > 0)].reset_index(drop=True)
    for t in ("general", "domain"):
        own = test["r_domain"] if t == "domain" else 1 - test["r_domain"]
        rows = test[own > 0].reset_index(drop=True)
        shift, factor = stream_shift(post.ctx, rows, t)
        assert np.corrcoef(shift, rows[f"true_dev_{t}"])[0, 1] > 0.95
        assert (factor < 0.6).all()  # the noise keeps what two sizes' residuals leave open
        y = rows[f"loss_{t}"].to_numpy()
        err = {}
        for label, ctx_streams in (("with", st), ("without", {})):
            post.ctx["streams"] = ctx_streams
            err[label] = np.mean(np.abs(np.median(post.sample_observations(rows, t), axis=0) / y - 1))
        post.ctx["streams"] = st
        assert err["with"] < 0.5 * err["without"]
    # in-sample rows (a size the stream was fitted at) and rows without a seed are left alone
    small = df[~big & (df["tokens"] > 0)].reset_index(drop=True)
    assert not stream_shift(post.ctx, small, "general")[0].any()
    shift, factor = stream_shift(post.ctx, test.drop(columns="seed"), "general")
    assert not shift.any() and (factor == 1).all()


def test_independent_runs_get_no_shift(world):
    post = jitter_posterior(world, S=200, spread=0.001, sigma=0.02, tau=0.001)
    df = _streams(world, 0.0)
    big = np.isclose(df["n_params"], df["n_params"].max())
    st = stream_deviations(post, df[~big])
    comp = st["general"]["domains"]["code"]
    assert comp["omega2"] / comp["total"] < 0.4
    post.ctx["streams"] = st
    shift, _ = stream_shift(post.ctx, df[big & (df["tokens"] > 0)].reset_index(drop=True), "general")
    assert np.abs(shift).max() < 2 * IDIO


def test_a_refit_on_one_size_scores_the_held_out_size_with_the_fits_streams(world):
    """The size discrepancy is calibrated on the predictor the fit uses: a refit on one size cannot measure the
    streams, so it takes the full fit's variances, and its held-out errors are those left after the streams."""
    from bayes_dcpt.fitting.holdout import Split, score_split

    post = jitter_posterior(world, S=200, spread=0.001, sigma=0.02, tau=0.001)
    df = _data.load(_streams(world, SHARED))
    sizes = np.sort(df["n_params"].unique())
    comps = {t: st["domains"] for t, st in stream_deviations(post, df).items()}
    small, mid = np.isclose(df["n_params"], sizes[0]), np.isclose(df["n_params"], sizes[1])
    train, test = df[small | (df["tokens"] == 0)], df[mid & (df["tokens"] > 0)]
    assert stream_deviations(post, train) == {}  # one size: nothing to measure the shared part with
    refit = stream_deviations(post, train, components=comps)
    assert refit["general"]["domains"] == comps["general"] and len(refit["general"]["keys"]) > 10
    split = Split("size", train, test)
    err, lpd = {}, {}
    for label, ctx_streams in (("with", refit), ("without", {})):
        post.ctx["streams"] = ctx_streams
        score = score_split(post, split, seed=1)
        pts = score.points
        err[label] = pts.groupby("target")["log_error"].apply(lambda e: float(np.mean(np.abs(e))))
        assert np.allclose(pts["pred"], np.exp(np.log(pts["loss"]) - pts["log_error"]), rtol=1e-3)
        lpd[label] = score.runs.groupby("target")["lpd"].sum()
    assert (err["with"] < 0.5 * err["without"]).all(), err
    # the held-out density (what law="auto" weighs laws by) is that of the same predictor: higher with the streams
    assert (lpd["with"] > lpd["without"]).all(), lpd


@pytest.mark.slow
def test_a_calibrated_fit_carries_its_streams_through_save_and_load(tmp_path):
    """The example grid (python), the largest size's CPT runs held out: a fit of the two smaller sizes predicts them
    closer to the measurements with the deviations their streams showed at the smaller sizes, and its saved file
    keeps the seeds that define the streams."""
    df = load_example()
    df = df[df["domain"] == "python"]
    big = np.isclose(df["n_params"], df["n_params"].max()) & (df["tokens"] > 0)
    f = fit(df[~big], "cpt", "both", seed=0, warn=False, sampler="laplace", draws=400,
            discrepancy={"sampler": "laplace", "draws": 200})
    summary = f.extrapolation["streams"]
    assert set(summary) == {"general", "domain"}
    assert 0.2 < summary["general"]["python"]["shared_share"] <= 1.0
    back = load_fit(f.save(tmp_path / "f.nc"))
    assert "seed" in back.data and back.extrapolation["streams"] == summary
    test = _data.load(df[big]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back.predict(test), f.predict(test))
    streams = f.posterior.ctx.pop("streams")
    plain = f.predict(test)
    f.posterior.ctx["streams"] = streams
    shifted = f.predict(test)
    for t in ("general", "domain"):
        y = test[f"loss_{t}"].to_numpy(float)
        mape = {k: np.nanmean(np.abs(p[f"loss_{t}_mean"].to_numpy(float) / y - 1)) for k, p in
                (("plain", plain), ("shifted", shifted))}
        assert mape["shifted"] < mape["plain"], (t, mape)


def test_the_fit_command_says_what_the_bands_beyond_the_data_rest_on():
    from types import SimpleNamespace

    from bayes_dcpt.report.wording import extrapolation_line

    assert extrapolation_line(SimpleNamespace(extrapolation=None)) is None
    streams = {"general": {"a": {"shared_share": 0.81}, "b": {"shared_share": 0.83}},
               "domain": {"a": {"shared_share": 0.68}}}
    f = SimpleNamespace(extrapolation={"splits": ["tokens", "size"], "streams": streams})
    line = extrapolation_line(f)
    assert "held-out refits (tokens, size)" in line and "81%-83% (general loss), 68% (domain loss)" in line
    f.extrapolation["streams"] = {}
    assert "data stream" not in extrapolation_line(f)
