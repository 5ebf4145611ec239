"""The noise scales (sigma, tau, nu) are each (target, domain)'s own: a domain the law misses, or a noisier domain,
must not set the bands or the fit of the others.

One slow path fits two domains, one of them ten times noisier, and checks that each gets its own noise and that
the quiet domain's bands stay narrow; the rest checks the posterior's readers on hand-made draws.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt.errors import UnknownDomainError
from bayes_dcpt.laws.registry import get_law
from bayes_dcpt.plan.simulate import World, probe_grid
from bayes_dcpt.posterior import Posterior

S = 400
DOMS = ["code", "law"]


def _post(sigma=(0.002, 0.02), tau=(0.001, 0.01), nu=None) -> Posterior:
    """Both targets, two domains with the same law; noise per (target, domain) as given (domain order DOMS)."""
    law = get_law("L3")
    rng = np.random.default_rng(0)
    params = {(t, d): {k: v * np.exp(rng.normal(0, 0.002, S)) for k, v in law.example_params.items()}
              for t in ("general", "domain") for d in DOMS}
    nz = {"sigma": np.tile(np.asarray(sigma, float), (S, 1)), "tau": np.tile(np.asarray(tau, float), (S, 1))}
    if nu is not None:
        nz["nu"] = np.tile(np.asarray(nu, float), (S, 1))
    noise = {t: {k: v.copy() for k, v in nz.items()} for t in ("general", "domain")}
    return Posterior(law, params, noise, ctx={"noise_domains": list(DOMS)})


def _rows(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"domain": ["code"] * n + ["law"] * n, "n_params": 3e8, "tokens": np.geomspace(1e9, 4e9, n).
                         tolist() * 2, "r_domain": 0.5, "run_id": ["a"] * n + ["b"] * n})


def test_each_domain_reads_its_own_noise_draws():
    post = _post()
    assert post.noise_domains == DOMS
    np.testing.assert_allclose(post.noise_of("domain", "law")["sigma"], 0.02)
    np.testing.assert_allclose(post.noise_of("general", "code")["tau"], 0.001)
    rows = post.noise_rows("domain", ["law", "code", "law"])
    assert rows["sigma"].shape == (S, 3)
    np.testing.assert_allclose(rows["sigma"][0], [0.02, 0.002, 0.02])
    with pytest.raises(UnknownDomainError, match="'music'"):
        post.noise_of("domain", "music")
    # a posterior with noise per target (older fits) answers the same for every domain
    flat = Posterior(post.law, post.params, {t: {k: v[:, 0] for k, v in nz.items()} for t, nz in post.noise.items()})
    assert flat.noise_domains is None
    np.testing.assert_allclose(flat.noise_rows("domain", ["law", "code"])["sigma"], 0.002)


def test_a_noisy_domain_does_not_widen_a_quiet_domains_band():
    post = _post()
    pred = post.predict(_rows(), ci=0.9)
    width = np.log(pred["loss_domain_hi"] / pred["loss_domain_lo"]).to_numpy()
    quiet, noisy = width[:4], width[4:]
    # 90% band of log sd sqrt(sigma^2 + tau^2): 2 * 1.645 * 0.0022 = 0.0074 against 0.074
    assert np.all(quiet < 0.012) and np.all(noisy > 0.05)
    ve, vu = post.measurement_variance(_rows(), "general")
    assert ve.shape == vu.shape == (S, 8)
    np.testing.assert_allclose(ve[0], [0.002**2] * 4 + [0.02**2] * 4)
    np.testing.assert_allclose(vu[0], [0.001**2] * 4 + [0.01**2] * 4)


def test_a_runs_offset_and_student_t_scale_follow_its_domain():
    """With run mixing (the default robust fit), a run's offset sd and degrees of freedom are its domain's."""
    post = _post(sigma=(1e-6, 1e-6), tau=(0.001, 0.05), nu=(50.0, 50.0))
    post.ctx["run_mixing"] = 1.0
    rows = _rows()
    draws = np.log(post.sample_observations(rows, "domain", seed=1, discrepancy=False)) - post.mean_log_loss(
        rows, "domain")
    sd_quiet, sd_noisy = draws[:, 0].std(), draws[:, 4].std()
    assert sd_quiet == pytest.approx(0.001, rel=0.2) and sd_noisy == pytest.approx(0.05, rel=0.2)
    # checkpoints of one run share the offset: within a run they move together
    assert np.corrcoef(draws[:, 4], draws[:, 5])[0, 1] > 0.99


def test_subset_and_update_keep_each_domains_noise():
    from bayes_dcpt.plan.update import run_log_likelihood

    post = _post()
    sub = post.subset(np.arange(0, S, 2))
    assert sub.noise["domain"]["sigma"].shape == (S // 2, 2)
    np.testing.assert_allclose(sub.noise_of("domain", "law")["sigma"], 0.02)
    # a new run of the quiet domain 1% off the law is far less likely than the same run of the noisy domain
    rows = _rows()
    for t in ("general", "domain"):
        rows[f"loss_{t}"] = np.exp(post.mean_log_loss(rows, t).mean(axis=0)) * 1.01
    ll_code = run_log_likelihood(post, rows[rows["domain"] == "code"]).mean()
    ll_law = run_log_likelihood(post, rows[rows["domain"] == "law"]).mean()
    assert ll_code < ll_law - 10


def test_a_stack_of_per_domain_and_per_target_noise_keeps_the_columns():
    from bayes_dcpt.fitting.stacked import stacked_posterior

    per_domain = _post()
    per_target = Posterior(per_domain.law, per_domain.params,
                           {t: {k: np.full(S, 0.005) for k in ("sigma", "tau")} for t in ("general", "domain")})
    st = stacked_posterior([per_domain, per_target], [0.5, 0.5], n_draws=200, seed=0)
    assert st.noise_domains == DOMS and st.noise["domain"]["sigma"].shape == (200, 2)
    comp = st.component
    law_sigma = st.noise_of("domain", "law")["sigma"]
    np.testing.assert_allclose(law_sigma[comp == 0], 0.02)
    np.testing.assert_allclose(law_sigma[comp == 1], 0.005)
    assert st.view(0).noise_of("domain", "code")["sigma"][0] in (0.002, 0.005)


def test_a_law_of_weight_zero_is_not_a_component_of_the_stack():
    """`auto` keeps the full fit of a law it left out of the stack (unconverged, weight 0): the stack was named
    ``stack(cpt+L1+L7)`` though it drew from cpt alone. A law of weight 0 is no component now."""
    from bayes_dcpt.fitting.stacked import stacked_posterior

    a = _post()
    b = Posterior(a.law, a.params, {t: {k: np.full(S, 0.005) for k in ("sigma", "tau")} for t in ("general", "domain")})
    st = stacked_posterior([a, b], [0.0, 1.0], n_draws=100, seed=0)
    assert len(st.components) == 1 and st.law.name == f"stack({a.law.name})"
    np.testing.assert_allclose(st.noise_of("domain", "law")["sigma"], 0.005)  # every draw from the weighted one
    assert len(stacked_posterior([a, b], [0.3, 0.7], n_draws=100, seed=0).components) == 2


@pytest.mark.slow
def test_a_joint_fit_gives_each_domain_its_own_noise():
    """Two domains, one with ten times the checkpoint noise: each gets its own sigma, the quiet one stays narrow."""
    from bayes_dcpt.fitting import fit

    world = World.default(domains=("code", "law"), sigma=0.002, tau=0.0005)
    df = world.simulate(probe_grid(n_params=(1e8, 3e8), r_domain=(0.2, 0.5, 0.8), n_checkpoints=5,
                                   domains=("code", "law")), seed=2)
    noisy = (df["domain"] == "law") & (df["tokens"] > 0)
    rng = np.random.default_rng(5)
    for t in ("general", "domain"):
        df.loc[noisy, f"loss_{t}"] *= np.exp(rng.normal(0, 0.02, int(noisy.sum())))
    f = fit(df, "dcpt", "both", seed=1, draws=150, tune=250, chains=2, warn=False, discrepancy=False)
    post = f.posterior
    assert post.noise_domains == ["code", "law"]
    for t in ("general", "domain"):
        s_code = float(np.median(post.noise_of(t, "code")["sigma"]))
        s_law = float(np.median(post.noise_of(t, "law")["sigma"]))
        assert s_code < 0.005 and s_law > 0.012, (t, s_code, s_law)
    # the adequacy check reads each domain's own tails
    tails = [c for c in f.adequacy().checks if c.check == "tails"]
    assert {c.domain for c in tails} == {"code", "law"}


def test_an_unknown_noise_scope_is_one_clear_error(df3):
    from bayes_dcpt.errors import FitError
    from bayes_dcpt.fitting import fit

    with pytest.raises(FitError, match="noise_scope must be 'domain' or 'target'"):
        fit(df3, "dcpt", "both", noise_scope="run", draws=10, tune=10, chains=1, warn=False)


def test_a_stack_of_posteriors_with_different_draw_counts_evaluates_each_components_base_loss_law():
    """Candidates of different draw counts (a retried full fit, dense data's 1,500 per chain): every component of
    the stack is aligned with the stacked draws, so what it keeps per draw (its base-loss law's draws, used by the
    CPT law at an unmeasured size) has the stack's count. Before, the report of such a stack raised a broadcast
    error (4,000 base-law draws against 12,000 stacked ones)."""
    from bayes_dcpt.fitting.stacked import stacked_posterior

    ref = pd.DataFrame({"domain": ["code", "code", "law", "law"], "n_params": [1e8, 3e8] * 2,
                        "loss_general": [3.2, 2.9, 3.2, 2.9], "loss_domain": [2.5, 2.2, 2.7, 2.4]})
    big = replace(_post(), reference=ref)
    l1 = get_law("L1")
    rng = np.random.default_rng(1)
    small = Posterior(l1, {(t, d): {k: v * np.exp(rng.normal(0, 0.002, 150)) for k, v in l1.example_params.items()}
                           for t in ("general", "domain") for d in DOMS},
                      {t: {k: np.full(150, 0.005) for k in ("sigma", "tau")} for t in ("general", "domain")},
                      reference=ref)
    st = stacked_posterior([big, small], [0.5, 0.5], n_draws=S, seed=0)
    assert [c.n_draws for c in st.components] == [S, S]
    for k in range(2):
        base = st._template(k).base_values("code", "general", np.full((S, 1), 1e9))
        assert base.shape == (S, 1) and np.isfinite(base).all()
    # a component's own draw sits behind each stacked draw
    comp = st.component
    for k, post in enumerate((big, small)):
        own = st.components[k].params[("general", "code")]["E"][comp == k]
        assert np.isin(own, post.params[("general", "code")]["E"]).all()
        np.testing.assert_array_equal(own, st.params[("general", "code")][f"{post.law.name}__E"][comp == k])
