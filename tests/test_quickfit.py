"""The numpy SMC posterior used as the planner loop's stand-in refit."""

from __future__ import annotations

import numpy as np
import pytest
from planner_helpers import base_rows

from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.smc import SMCRefit, smc_posterior
from bayes_dcpt.plan.simulate import World, probe_grid


@pytest.fixture(scope="module")
def rich_data():
    world = World.default(domains=("code",))
    df = world.simulate(
        probe_grid(
            n_params=(1e8, 3e8, 1e9), r_domain=(0.1, 0.3, 0.5, 0.7, 0.9), max_tokens=5e9, n_checkpoints=6
        ),
        seed=2,
    )
    return world, df


def test_smc_covers_the_true_parameters(rich_data):
    world, df = rich_data
    post = smc_posterior(df, "dcpt", n_draws=1000, seed=0, ctx={"D_min": 0.1})
    s = post.summary(ci=0.98)
    well_identified = {("domain", "B"), ("domain", "beta"), ("domain", "eta"), ("general", "eps")}
    for _, r in s.iterrows():
        if (r["target"], r["param"]) in well_identified:
            truth = world.params[(r["target"], "code")][r["param"]]
            assert r["lo"] <= truth <= r["hi"], (r["target"], r["param"], truth, r["lo"], r["hi"])
    # the noise is learnt: sigma near the world's 0.004
    sig = post.noise["domain"]["sigma"]
    assert 0.002 < np.median(sig) < 0.008
    # predictions of a held-out configuration bracket the truth
    pts = df.iloc[[10]].assign(r_domain=0.4)
    pred = np.exp(post.mean_log_loss(pts, "domain"))[:, 0]
    true = world.mean(pts, "domain")[0]
    assert np.quantile(pred, 0.01) < true < np.quantile(pred, 0.99)
    assert post.ctx["smc_stages_domain"] > 1 and post.ctx["smc_unique_domain"] > 0.5


def test_smc_is_deterministic_and_refit_is_warm_startable(rich_data):
    _, df = rich_data
    sub = df[df["n_params"] == 1e8]
    a = smc_posterior(sub, "dcpt", n_draws=300, seed=4, n_moves=3)
    b = smc_posterior(sub, "dcpt", n_draws=300, seed=4, n_moves=3)
    np.testing.assert_array_equal(a.params[("domain", "code")]["E"], b.params[("domain", "code")]["E"])
    rf = SMCRefit("dcpt", n_draws=300, n_moves=3, final_moves=6, warm=True, ctx={"D_min": 0.1})
    first = rf(df[df["n_params"] <= 3e8])
    second = rf(df)
    assert rf.calls == 2
    assert second.ctx["smc_stages_domain"] < first.ctx["smc_stages_domain"] + 10
    e1 = first.params[("domain", "code")]["B"]
    e2 = second.params[("domain", "code")]["B"]
    assert np.std(e2) < np.std(e1)  # more data, tighter posterior


def test_smc_rejects_laws_without_n_d_r():
    world = World.default(domains=("code",))
    with pytest.raises(FitError, match="N, D, r"):
        smc_posterior(base_rows(world), "chinchilla")
