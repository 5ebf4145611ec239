"""Run offsets integrated out of the likelihood: closed forms, the model's wiring, LOO terms, predictive."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import without_config_key
from scipy import stats

from bayes_dcpt.fitting.marginal import run_loglik
from bayes_dcpt.numerics.runblock import loo_pointwise as run_loo_pointwise


def _runs(rng, n_runs=5, capacity=8):
    sizes = rng.integers(1, 6, n_runs)
    run_idx = np.repeat(np.arange(n_runs), sizes)
    rng.shuffle(run_idx)
    group = np.zeros(capacity, dtype=np.int64)
    group[:n_runs] = rng.integers(0, 2, n_runs)
    return run_idx, group


def _cov(sig, tau, n):
    return sig**2 * np.eye(n) + tau**2 * np.ones((n, n))


@pytest.mark.parametrize("robust", [False, True])
def test_joint_loglik_is_the_multivariate_normal_or_t_of_each_run(robust):
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(3)
    run_idx, group = _runs(rng)
    sig, tau, nu = np.array([0.01, 0.03]), np.array([0.02, 0.005]), np.array([3.0, 12.0])
    e = rng.normal(size=run_idx.size) * 0.03
    ev = pt.dvector()
    lp = run_loglik(ev, run_idx, group, pt.as_tensor(sig), pt.as_tensor(tau),
                    pt.as_tensor(nu) if robust else None, capacity=8)
    got = float(pytensor.function([ev], lp)(e))
    ref = 0.0
    for k in np.unique(run_idx):
        m = run_idx == k
        g = group[k]
        S = _cov(sig[g], tau[g], m.sum())
        dist = (stats.multivariate_t(np.zeros(m.sum()), S, df=nu[g]) if robust
                else stats.multivariate_normal(np.zeros(m.sum()), S))
        ref += dist.logpdf(e[m])
    assert got == pytest.approx(ref, rel=1e-10, abs=1e-9)


@pytest.mark.parametrize("robust", [False, True])
def test_loo_terms_are_each_checkpoints_predictive_given_the_rest_of_its_run(robust):
    rng = np.random.default_rng(4)
    run_idx, group = _runs(rng)
    sig, tau, nu = np.array([0.01, 0.03]), np.array([0.02, 0.005]), np.array([3.0, 12.0])
    g_obs = group[run_idx]
    e = rng.normal(size=run_idx.size) * 0.03
    got = run_loo_pointwise(e[None], run_idx, sig[g_obs][None], tau[g_obs][None],
                            nu[g_obs][None] if robust else None)[0]

    def logpdf(x, S, df):
        if x.size == 0:
            return 0.0
        d = stats.multivariate_t(np.zeros(x.size), S, df=df) if robust else stats.multivariate_normal(
            np.zeros(x.size), S)
        return float(d.logpdf(x))

    for i in range(e.size):
        members = np.flatnonzero(run_idx == run_idx[i])
        rest = members[members != i]
        g = g_obs[i]
        want = logpdf(e[members], _cov(sig[g], tau[g], members.size), nu[g]) - logpdf(
            e[rest], _cov(sig[g], tau[g], rest.size), nu[g])
        assert got[i] == pytest.approx(want, rel=1e-9, abs=1e-9), i


def test_the_models_likelihood_term_is_the_per_run_density_of_the_law_residuals(small_fit):
    """Wiring: observations to runs, runs to (target, domain) cells (each its own sigma, tau, nu), at a random point."""
    from bayes_dcpt.fitting.dcpt_model import get_model

    assert small_fit.config.run_offsets == "marginal"
    entry = get_model(small_fit.law, small_fit.config, small_fit.design)
    model = entry["model"]
    rng = np.random.default_rng(0)
    point = {k: v + 0.2 * rng.standard_normal(np.shape(v)) for k, v in model.initial_point().items()}
    names = [p.name for p in small_fit.law.params] + ["sigma", "tau", "nu"]
    f = model.compile_fn([model["obs_log_loss"], *[model[n] for n in names]], inputs=model.value_vars,
                         point_fn=False, on_unused_input="ignore")
    out = f(*[point[v.name] for v in model.value_vars])
    got, vals = float(out[0]), dict(zip(names, out[1:], strict=True))
    obs = small_fit.design.obs
    ref = 0.0
    for ti, t in enumerate(small_fit.targets):
        rows = obs[obs["target"] == t]
        p = {k: np.asarray(vals[k])[ti] for k in (p.name for p in small_fit.law.params)}
        x = {"N": rows["n_params"].to_numpy() / 1e9, "D": rows["tokens"].to_numpy() / 1e9,
             "r": rows["r"].to_numpy()}
        e = np.log(rows["loss"].to_numpy()) - np.log(small_fit.law(np, p, x))
        for run in rows["run_idx"].unique():
            m = (rows["run_idx"] == run).to_numpy()
            di = int(rows["d_idx"].to_numpy()[m][0])  # the noise is each (target, domain)'s own
            sig, tau, nu = (float(np.asarray(vals[n])[ti, di]) for n in ("sigma", "tau", "nu"))
            ref += stats.multivariate_t(np.zeros(m.sum()), _cov(sig, tau, m.sum()), df=nu).logpdf(e[m])
    assert got == pytest.approx(ref, rel=1e-8)


def test_pointwise_loglik_and_loo_of_a_marginal_fit(small_fit):
    ll = small_fit.log_likelihood()["obs_log_loss"]
    post = small_fit.idata["posterior"]
    assert ll.shape == (post.sizes["chain"], post.sizes["draw"], len(small_fit.design.obs))
    assert np.isfinite(np.asarray(ll)).all()
    loo = small_fit.loo()
    assert np.isfinite(loo.elpd)


def test_latent_form_is_kept_and_old_cards_load_as_latent(df3, tmp_path):
    from bayes_dcpt.fitting import fit, load_fit

    f = fit(df3, "dcpt", "general", sampler="laplace", seed=0, warn=False, run_offsets="latent")
    assert "z_run" in f.idata["posterior"] and f.config.run_offsets == "latent"
    assert "run_mixing" not in f.posterior.ctx
    again = fit(df3[df3["n_params"] > df3["n_params"].min()], "dcpt", "general", sampler="laplace", seed=1,
                warn=False, run_offsets="latent")  # a refit of the cached latent model with other data
    assert "z_run" in again.idata["posterior"]
    path = f.save(tmp_path / "latent.nc")
    assert load_fit(path).config.run_offsets == "latent"
    # a card written before the option existed has no run_offsets: such fits were sampled with latent offsets
    old = without_config_key(path, "run_offsets", tmp_path / "old.nc")
    assert load_fit(old).config.run_offsets == "latent"
    with pytest.raises(Exception, match="run_offsets"):
        fit(df3, "dcpt", "general", sampler="laplace", run_offsets="sampled")


def test_predictive_draws_follow_the_robust_marginal_model(small_fit):
    """A new run: each point Student-t(nu), scale sqrt(sigma^2 + tau^2); a run's checkpoints correlated."""
    import pandas as pd

    post = small_fit.posterior
    S = post.n_draws
    sig, tau, nu = 0.01, 0.02, 5.0
    noise = {t: {"sigma": np.full(S, sig), "tau": np.full(S, tau), "nu": np.full(S, nu)}
             for t in post.targets}
    p = dataclasses.replace(post, noise=noise, ctx={**post.ctx, "run_mixing": 1.0})
    one = pd.DataFrame({"domain": "code", "n_params": 1e9, "tokens": 1e10, "r_domain": 0.5,
                        "run_id": [f"r{i}" for i in range(40)]})
    mu = p.mean_log_loss(one, "domain")
    z = (np.log(p.sample_observations(one, "domain", seed=1)) - mu).ravel() / np.hypot(sig, tau)
    qs = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    assert np.allclose(np.quantile(z, qs), stats.t.ppf(qs, nu), atol=0.05)
    two = one.assign(run_id=np.repeat([f"r{i}" for i in range(20)], 2))
    d = np.log(p.sample_observations(two, "domain", seed=2)) - p.mean_log_loss(two, "domain")
    corr = np.corrcoef(d[:, 0::2].ravel(), d[:, 1::2].ravel())[0, 1]
    assert corr == pytest.approx(tau**2 / (sig**2 + tau**2), abs=0.03)
