"""Posterior update by PSIS reweighting: PSIS itself, the run likelihood, reliability, compounding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from planner_helpers import base_rows, jitter_posterior, probe_rows
from scipy import integrate, stats

from bayes_dcpt.errors import DataValidationError, UnknownDomainError
from bayes_dcpt.numerics.psis import psis
from bayes_dcpt.plan.simulate import World
from bayes_dcpt.plan.update import run_log_likelihood, update


@pytest.fixture(scope="module")
def world():
    return World.default(domains=("code",))


@pytest.fixture(scope="module")
def prior_like(world):
    """A wide ensemble around the truth (5% jitter): data must move it."""
    return jitter_posterior(world, S=2000, spread=0.05, seed=3)


# ------------------------------------------------------------------------------------------------- PSIS
@pytest.mark.parametrize("scale", [0.3, 1.0, 2.0, 4.0])
def test_psis_matches_arviz_stats(scale):
    from arviz_stats.base import array_stats

    lr = np.random.default_rng(int(scale * 10)).normal(0, scale, 4000)
    lw, k = psis(lr[None])
    lw_ref, k_ref = array_stats.psislw(-lr)  # arviz smooths the weights of -input (its LOO convention)
    assert k[0] == pytest.approx(float(k_ref), abs=1e-10)
    np.testing.assert_allclose(lw[0], lw_ref, atol=1e-10)


def test_psis_is_vectorised_over_rows_and_flags_heavy_tails():
    rng = np.random.default_rng(0)
    rows = np.stack([rng.normal(0, 0.2, 3000), rng.normal(0, 4.0, 3000), np.zeros(3000)])
    lw, k = psis(rows)
    assert lw.shape == rows.shape
    np.testing.assert_allclose(np.exp(lw).sum(axis=1), 1.0)
    assert k[0] < 0.5 and k[1] > 0.7 and k[2] == -np.inf
    np.testing.assert_allclose(np.exp(lw[2]), 1 / 3000)


# ---------------------------------------------------------------------------------------- run likelihood
def test_gaussian_run_likelihood_equals_the_multivariate_normal(prior_like, world):
    rows = probe_rows(world, [(3e8, 1e9, 0.4)], n_checkpoints=5, seed=1)
    ll = run_log_likelihood(prior_like, rows)
    for s in (0, 7, 1999):
        total = 0.0
        for t in ("general", "domain"):
            mu = prior_like.mean_log_loss(rows, t)[s]
            sig, tau = prior_like.noise[t]["sigma"][s], prior_like.noise[t]["tau"][s]
            cov = sig**2 * np.eye(len(rows)) + tau**2 * np.ones((len(rows), len(rows)))
            total += stats.multivariate_normal(mu, cov).logpdf(np.log(rows[f"loss_{t}"].to_numpy()))
        assert ll[s] == pytest.approx(total, rel=1e-9)


def test_student_t_run_likelihood_integrates_the_offset(world):
    post = jitter_posterior(world, S=5, spread=0.02)
    for t in ("general", "domain"):
        post.noise[t]["nu"] = np.full(5, 4.0)
    rows = probe_rows(world, [(1e8, 1e9, 0.5), (3e8, 1e9, 0.2)], n_checkpoints=4, seed=2)
    ll = run_log_likelihood(post, rows)
    s = 2
    total = 0.0
    for t in ("general", "domain"):
        mu = post.mean_log_loss(rows, t)[s]
        e = np.log(rows[f"loss_{t}"].to_numpy()) - mu
        sig, tau = post.noise[t]["sigma"][s], post.noise[t]["tau"][s]
        for rid in rows["run_id"].unique():
            er = e[(rows["run_id"] == rid).to_numpy()]

            def f(u, er=er, sig=sig, tau=tau):
                return np.prod(stats.t.pdf(er - u, 4.0, scale=sig)) * stats.norm.pdf(u, 0, tau)

            total += np.log(integrate.quad(f, -0.1, 0.1, points=[er.mean()], limit=200)[0])
    assert ll[s] == pytest.approx(total, rel=1e-6)


def test_update_uses_the_default_fits_robust_form_one_student_t_per_run(world):
    """A posterior of the default fit (robust, offsets integrated out) carries ``run_mixing``: its runs are
    multivariate Student-t with scale sigma^2 I + tau^2 11'. The update must score new runs with that model,
    not with a Student-t per checkpoint around a normal offset (the sampled-offset model), which differs."""
    post = jitter_posterior(world, S=4, spread=0.02)
    for t in ("general", "domain"):
        post.noise[t]["nu"] = np.full(4, 3.0)
    post.ctx["run_mixing"] = 1.0
    rows = probe_rows(world, [(1e8, 1e9, 0.5), (3e8, 1e9, 0.2)], n_checkpoints=4, seed=2)
    ll = run_log_likelihood(post, rows)
    for s in range(4):
        total = 0.0
        for t in ("general", "domain"):
            mu = post.mean_log_loss(rows, t)[s]
            y = np.log(rows[f"loss_{t}"].to_numpy())
            sig, tau = post.noise[t]["sigma"][s], post.noise[t]["tau"][s]
            for rid in rows["run_id"].unique():
                m = (rows["run_id"] == rid).to_numpy()
                k = int(m.sum())
                shape = sig**2 * np.eye(k) + tau**2 * np.ones((k, k))
                total += stats.multivariate_t(mu[m], shape, df=3.0).logpdf(y[m])
        assert ll[s] == pytest.approx(total, rel=1e-9)
    latent = run_log_likelihood(post.__class__(post.law, post.params, post.noise, ctx={}, reference=post.reference),
                                rows)
    assert not np.allclose(ll, latent, rtol=1e-3)  # the two noise models really differ here


def test_log_likelihood_adds_over_runs_and_skips_base_rows(prior_like, world):
    a = probe_rows(world, [(1e8, 1e9, 0.3)], seed=4, prefix="a")
    b = probe_rows(world, [(1e9, 1e9, 0.7)], seed=5, prefix="b")
    both = pd.concat([base_rows(world), a, b], ignore_index=True)
    np.testing.assert_allclose(
        run_log_likelihood(prior_like, both),
        run_log_likelihood(prior_like, a) + run_log_likelihood(prior_like, b),
        rtol=1e-12,
    )



def test_a_fit_that_left_the_warmup_out_does_not_learn_from_warmup_checkpoints(prior_like, world):
    """The warm-up's checkpoints (far off the law here) count only for a posterior whose fit used them."""
    a = probe_rows(world, [(1e8, 1e9, 0.3)], seed=4, prefix="a")
    warm = a["tokens"] < a["tokens"].iloc[2]  # the run reaches its peak LR at its third checkpoint
    a = a.assign(lr=np.where(warm, 5e-4, 1e-3))
    a.loc[warm, "loss_general"] *= 1.5  # the warm-up's transient: no law's business
    after = a[~warm].reset_index(drop=True)
    assert not np.allclose(run_log_likelihood(prior_like, a), run_log_likelihood(prior_like, after))
    leaves_out = prior_like._copy(ctx={**prior_like.ctx, "burn_in_warmup": 1.0})
    assert leaves_out.leaves_out_warmup and not prior_like.leaves_out_warmup
    np.testing.assert_allclose(run_log_likelihood(leaves_out, a), run_log_likelihood(leaves_out, after), rtol=1e-12)

# ------------------------------------------------------------------------------------------------ update
def test_update_moves_the_posterior_towards_the_truth(prior_like, world):
    rows = probe_rows(world, [(3e8, 1e9, 0.5)], seed=6)
    res = update(prior_like, rows)
    assert res.posterior.weights is not None and res.n_runs == 1 and res.n_rows == len(rows)
    # the reweighted predictive of the observed run is closer to the truth than before
    grid = rows.iloc[[-1]]
    true = world.mean(grid, "domain")[0]
    before = np.abs(np.exp(prior_like.mean_log_loss(grid, "domain"))[:, 0] - true).mean()
    after = np.average(
        np.abs(np.exp(prior_like.mean_log_loss(grid, "domain"))[:, 0] - true), weights=res.posterior.weights
    )
    assert after < 0.5 * before
    assert "k-hat" in res.message()


def test_reliability_flag(world):
    wide = jitter_posterior(world, S=2000, spread=0.05, seed=1)
    many = probe_rows(world, [(n, 1e9, r) for n in (1e8, 3e8, 1e9) for r in (0.2, 0.5, 0.8)], seed=7)
    res = update(wide, many)
    assert not res.reliable and res.khat > 0.7
    vague = jitter_posterior(world, S=2000, spread=0.002, seed=1, sigma=0.05, tau=0.05)
    res2 = update(vague, probe_rows(world, [(1e8, 1e9, 0.5)], seed=8))
    assert res2.reliable and res2.khat < 0.7 and res2.ess > 1000


def test_updates_compound(world):
    post = jitter_posterior(world, S=2000, spread=0.01, seed=2, sigma=0.03, tau=0.02)
    a = probe_rows(world, [(1e8, 1e9, 0.3)], seed=9, prefix="a")
    b = probe_rows(world, [(1e8, 1e9, 0.6)], seed=10, prefix="b")
    once = update(post, pd.concat([a, b], ignore_index=True))
    first = update(post, a)
    twice = update(first.posterior, b)
    assert once.reliable and twice.reliable
    # the same weights (up to the Pareto smoothing of the largest ones); diagnostics see the compounded ones
    np.testing.assert_allclose(twice.posterior.weights, once.posterior.weights, rtol=0.05, atol=1e-6)
    assert twice.ess < first.ess and twice.ess == pytest.approx(once.ess, rel=0.02)


def test_new_base_rows_join_the_reference(prior_like, world):
    rows = pd.concat(
        [base_rows(world, sizes=(2e9,)), probe_rows(world, [(1e8, 1e9, 0.5)], seed=11)], ignore_index=True
    )
    res = update(prior_like, rows)
    assert 2e9 in set(res.posterior.reference["n_params"])
    assert res.posterior.base_loss("code", 2e9) == pytest.approx(float(rows.loc[0, "loss_general"]))


def test_bad_rows_are_clear_errors(prior_like, world):
    rows = probe_rows(world, [(1e8, 1e9, 0.5)], seed=12)
    other = rows.assign(domain="law")
    with pytest.raises(UnknownDomainError, match="law"):
        update(prior_like, other)
    broken = rows.copy()
    broken.loc[2, "loss_domain"] = -1.0
    with pytest.raises(DataValidationError, match=r"column 'loss_domain'.*row 3"):
        update(prior_like, broken)
