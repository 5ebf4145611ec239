"""Bands that widen with extrapolation: the calibrated model discrepancy in predictions and decisions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from planner_helpers import jitter_posterior

from bayes_dcpt import decide as dc
from bayes_dcpt.decide.draws import law_draws
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.plan.simulate import World
from bayes_dcpt.posterior.extrapolation import domain_envelope, extrapolation_distances

KAPPA = {"tokens": 0.05, "size": 0.08, "ratio": 0.2}
ENVELOPE = {"code": {"n_max": 1e9, "n_min": 1e8, "d_max": {str(1e8): 2e9, str(3e8): 1e9, str(1e9): 1e9},
                     "ratios": [0.2, 0.4, 0.6, 0.8]}}


def with_discrepancy(post, kappa=KAPPA, envelope=ENVELOPE):
    ctx = {**post.ctx, "discrepancy": {t: dict(kappa) for t in post.targets}, "envelope": envelope}
    return replace(post, ctx=ctx)


@pytest.fixture(scope="module")
def world():
    return World.default(domains=("code",))


@pytest.fixture(scope="module")
def plain(world):
    return jitter_posterior(world, S=600, spread=0.01, sigma=1e-9, tau=1e-9)


@pytest.fixture(scope="module")
def post(plain):
    return with_discrepancy(plain)


def test_sd_is_zero_inside_the_data_and_follows_the_formula_outside(post):
    sd = post.discrepancy_sd("general", "code", 1e9, 1e9, 0.4)
    assert sd == 0.0
    # more tokens at a probed size: only the token distance
    assert post.discrepancy_sd("general", "code", 1e9, 4e9, 0.4) == pytest.approx(0.05 * np.log(4))
    # a larger size, with more tokens than probed at the largest size below it, between two probed ratios
    got = post.discrepancy_sd("general", "code", 3e9, 2e9, 0.5)
    want = np.sqrt((0.05 * np.log(2)) ** 2 + (0.08 * np.log(3)) ** 2 + (0.2 * 0.1) ** 2)
    assert got == pytest.approx(want)
    # vectorised over broadcast inputs, as decisions call it
    grid = post.discrepancy_sd("general", "code", np.array([[1e9], [3e9]]), 1e9, np.linspace(0, 1, 5)[None, :])
    assert grid.shape == (2, 5) and (grid[1] > grid[0]).all()


def test_tokens_limit_at_a_size_nobody_probed():
    env = domain_envelope(ENVELOPE, "code")
    # probed sizes: their own; between: the largest probed size below; below every probed size: the widest
    np.testing.assert_allclose(env.tokens_limit(np.array([1e8, 3e8, 2e8, 5e8, 2e9, 5e7])),
                               [2e9, 1e9, 2e9, 1e9, 1e9, 2e9])
    d = extrapolation_distances(env, 5e7, 2e9, 0.2)
    assert d["tokens"] == 0.0 and d["size"] == pytest.approx(np.log(2)) and d["ratio"] == 0.0


def test_a_domain_missing_from_the_envelope_uses_the_union_of_the_others():
    env = {"a": {"n_max": 1e9, "n_min": 1e8, "d_max": {str(1e9): 1e9}, "ratios": [0.5]},
           "b": {"n_max": 3e9, "n_min": 3e8, "d_max": {str(3e9): 4e9}, "ratios": [0.25]}}
    pooled = domain_envelope(env, "c")
    assert pooled.pooled and pooled.n_max == 3e9 and pooled.n_min == 1e8
    np.testing.assert_allclose(pooled.ratios, [0.25, 0.5])
    assert not domain_envelope(env, "a").pooled
    assert domain_envelope({}, "a") is None


def test_no_discrepancy_means_zero_and_unmeasured_slopes_add_nothing(plain):
    assert not plain.has_discrepancy
    assert plain.discrepancy_sd("general", "code", 1e11, 1e12, 0.5) == 0.0
    part = with_discrepancy(plain, {"tokens": None, "size": 0.1, "ratio": None})
    assert part.discrepancy_sd("general", "code", 1e9, 1e12, 0.5) == 0.0
    assert part.discrepancy_sd("general", "code", 1e10, 1e9, 0.5) == pytest.approx(0.1 * np.log(10))


def test_predictive_bands_widen_outside_the_data_and_mean_bands_do_not(plain, post):
    grid = pd.DataFrame({"domain": "code", "n_params": [1e9, 1e9, 1e10], "tokens": [1e9, 1e11, 1e11],
                         "r_domain": [0.4, 0.4, 0.4]})
    a, b = plain.predict(grid, kind="predictive"), post.predict(grid, kind="predictive")
    width = lambda p: (p["loss_general_hi"] - p["loss_general_lo"]).to_numpy()  # noqa: E731
    assert width(b)[0] == pytest.approx(width(a)[0], rel=1e-12)  # inside the data: unchanged
    assert width(b)[1] > 3 * width(a)[1] and width(b)[2] > width(b)[1]
    ma, mb = plain.predict(grid, kind="mean"), post.predict(grid, kind="mean")
    pd.testing.assert_frame_equal(ma, mb)
    # with negligible noise the predictive spread of the log loss beyond the law's is the discrepancy sd
    obs = np.log(post.sample_observations(grid.assign(run_id=["a", "b", "c"]), "general", seed=3))
    resid = obs - post.mean_log_loss(grid, "general")
    sd = post.frame_discrepancy_sd(grid, "general")
    assert resid[:, 2].std() == pytest.approx(sd[2], rel=0.1)


def test_a_runs_rows_share_one_discrepancy_draw(post):
    rows = pd.DataFrame({"domain": "code", "n_params": 1e9, "tokens": [2e10, 4e10, 8e10, 8e10],
                         "r_domain": 0.4, "run_id": ["a", "a", "a", "b"]})
    z = (np.log(post.sample_observations(rows, "general", seed=1)) - post.mean_log_loss(rows, "general")) \
        / post.frame_discrepancy_sd(rows, "general")
    np.testing.assert_allclose(z[:, 0], z[:, 2], atol=1e-6)
    assert abs(np.corrcoef(z[:, 2], z[:, 3])[0, 1]) < 0.15


def test_a_given_law_mean_gives_the_same_draws_and_is_what_they_scatter_around(post):
    """``log_mean`` (the law's values a caller has computed already: held-out scoring) replaces the evaluation."""
    rows = pd.DataFrame({"domain": "code", "n_params": [1e9, 3e9], "tokens": [2e10, 4e10], "r_domain": 0.4,
                         "run_id": ["a", "b"]})
    mu = post.mean_log_loss(rows, "general")
    np.testing.assert_array_equal(post.sample_observations(rows, "general", seed=3, log_mean=mu),
                                  post.sample_observations(rows, "general", seed=3))
    shifted = post.sample_observations(rows, "general", seed=3, log_mean=mu + 1.0)
    np.testing.assert_allclose(shifted, np.e * post.sample_observations(rows, "general", seed=3), rtol=1e-12)
    with pytest.raises(BayesDCPTError, match="log_mean has shape"):
        post.sample_observations(rows, "general", log_mean=mu[:, :1])


def test_law_draws_carry_one_seeded_factor_per_draw_and_target(plain, post):
    base = law_draws(plain, "general", "code", 1e9, 1e11, 0.4)
    got = law_draws(post, "general", "code", 1e9, 1e11, 0.4)
    sd = post.discrepancy_sd("general", "code", 1e9, 1e11, 0.4)
    np.testing.assert_allclose(np.log(got / base), post.discrepancy_z("general") * sd, rtol=1e-10)
    np.testing.assert_array_equal(got, law_draws(post, "general", "code", 1e9, 1e11, 0.4))
    np.testing.assert_array_equal(law_draws(post, "general", "code", 1e9, 1e11, 0.4, discrepancy=False), base)
    np.testing.assert_array_equal(law_draws(post, "general", "code", 1e9, 1e9, 0.4), law_draws(
        plain, "general", "code", 1e9, 1e9, 0.4))
    assert not np.allclose(post.discrepancy_z("general"), post.discrepancy_z("domain"))


def test_subset_and_reweight_carry_the_draws_that_belong_to_each_draw(post):
    idx = np.arange(0, post.n_draws, 3)
    sub = post.subset(idx)
    np.testing.assert_array_equal(sub.discrepancy_z("general"), post.discrepancy_z("general")[idx])
    np.testing.assert_array_equal(sub.base_loss_draws("code", 2e9), post.base_loss_draws("code", 2e9)[idx])
    w = np.ones(post.n_draws)
    np.testing.assert_array_equal(post.reweight(w).discrepancy_z("domain"), post.discrepancy_z("domain"))


def test_r_star_interval_widens_when_the_question_extrapolates(plain, post):
    # inside the probed sizes and tokens (a ratio between probed ones still counts: its slope left out here)
    inside = {"n_params": 1e9, "tokens": 1e9, "max_general_increase": 0.03}
    no_ratio = with_discrepancy(plain, {**KAPPA, "ratio": None})
    a, b = dc.tradeoff(plain, **inside), dc.tradeoff(no_ratio, **inside)
    np.testing.assert_array_equal(a.posterior["r_domain"], b.posterior["r_domain"])
    far = {"n_params": 3e9, "tokens": 3e10, "max_general_increase": 0.03}
    a, b = dc.tradeoff(plain, **far), dc.tradeoff(post, **far)
    wa = np.subtract(*a.summary().table.loc["r_domain", ["hi", "lo"]])
    wb = np.subtract(*b.summary().table.loc["r_domain", ["hi", "lo"]])
    assert wb > 1.5 * wa
    assert b.inputs["discrepancy"].startswith("calibrated") and a.inputs["discrepancy"].startswith("none")
    assert b.inputs["extrapolation_tokens"] > 0 and b.inputs["discrepancy_sd_general"] > 0
    # the same posterior gives the same answer
    np.testing.assert_array_equal(b.posterior["r_domain"], dc.tradeoff(post, **far).posterior["r_domain"])


def test_a_prediction_grid_with_base_rows_names_them_and_says_what_to_do():
    """Base-model rows (tokens == 0) in a prediction grid: one problem naming the rows and how to drop them."""
    import pandas as pd

    from bayes_dcpt.errors import DataValidationError
    from bayes_dcpt.posterior.frames import prediction_frame

    grid = pd.DataFrame({"domain": ["python"] * 3, "n_params": [1e5] * 3, "tokens": [0.0, 8192.0, 0.0],
                         "r_domain": [0.0, 0.5, 0.5]})
    with pytest.raises(DataValidationError) as exc:
        prediction_frame(grid, ["python"])
    text = str(exc.value)
    assert "tokens" in text and "rows 1, 3" in text and "base-model rows" in text and "df[df['tokens'] > 0]" in text
    assert len(prediction_frame(grid[grid["tokens"] > 0], ["python"])) == 1


def test_a_prediction_grid_names_every_problem_at_once(cli, tmp_path):
    """A non-numeric cell no longer hides the other rows' problems (a user fixed one, ran again, met the next)."""
    from pathlib import Path

    grid = tmp_path / "grid.csv"
    grid.write_text("domain,n_params,tokens,r_domain\npython,abc,2097152,0.5\npython,443232,-3,1.5\nmusic,1,1,0.5\n")
    code, _, err = cli("predict", Path(__file__).parents[1] / "models" / "example_cpt.nc", grid)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 4, err
    for col, row in (("n_params", 1), ("tokens", 2), ("r_domain", 2), ("domain", 3)):
        assert any(f"column '{col}'" in ln and f"(row {row};" in ln for ln in lines), (col, err)
    grid.write_text("domain,n_params,tokens,r_domain\npython,-inf,2097152,0.5\n")
    code, _, err = cli("predict", Path(__file__).parents[1] / "models" / "example_cpt.nc", grid)
    assert code == 2 and err.count("column 'n_params'") == 1, err  # an infinite cell: said once, not also as <= 0
