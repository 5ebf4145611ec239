"""The Bayesian core: recovery, diagnostics, bands, save/load, determinism, cached compilation.

One small session-scoped NUTS fit (2 chains x 300 draws) serves most tests; compiled models are cached so
refits of the same structure do not recompile.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt import data
from bayes_dcpt.errors import BayesDCPTError, ConvergenceWarning, DataValidationError, FitError
from bayes_dcpt.fitting import compare, fit, load_fit, prior_table
from bayes_dcpt.fitting.dcpt_model import _MODEL_CACHE
from bayes_dcpt.plan.simulate import World, probe_grid

# the held-out calibration refits are tested on the session's small_fit and in test_extrapolation.py; here they
# would only double each fit's time
KW = {"draws": 300, "tune": 300, "chains": 2, "cores": 2, "warn": False, "discrepancy": False}


def test_parameters_recovered(small_fit, world3):
    """Truth inside the 90% interval for the large majority of law parameters."""
    s = small_fit.posterior.summary(0.9)
    inside = []
    for _, row in s.iterrows():
        truth = world3.params[(row["target"], row["domain"])][row["param"]]
        inside.append(row["lo"] <= truth <= row["hi"])
    assert np.mean(inside) >= 0.8, s.assign(inside=inside)


def test_law_band_covers_true_curve(small_fit, world3, df3):
    rows = data.fit_rows(df3)
    pred = small_fit.predict(rows, kind="mean")
    for t in ("general", "domain"):
        truth = world3.mean(rows, t)
        cover = (pred[f"loss_{t}_lo"] <= truth) & (truth <= pred[f"loss_{t}_hi"])
        assert cover.mean() >= 0.8, (t, cover.mean())


def test_summary_and_diagnostics(small_fit):
    s = small_fit.summary()
    for col in ("mean", "sd", "hdi90_lb", "hdi90_ub", "r_hat", "ess_bulk", "ess_tail"):
        assert col in s.columns
    assert any(str(i).startswith("alpha") for i in s.index)
    d = small_fit.diagnostics(warn=False)
    assert d.divergences >= 0 and d.rhat_max > 0.99 and d.ess_bulk_min > 0
    assert d.as_dict()["sampler"] == "nutpie"


def test_bad_diagnostics_warn_loudly(df3):
    with pytest.warns(ConvergenceWarning, match="R-hat|ESS|divergent"):
        fit(df3, "dcpt", "both", draws=15, tune=5, chains=2, seed=0, discrepancy=False)


def test_a_fit_warns_once_with_every_failing_check(df3):
    """A fit whose sampler checks fail and whose held-out refits did not converge says so in one ConvergenceWarning
    (it used to warn for itself, then again for its refits), naming each failing check of both."""
    refit = {"draws": 15, "tune": 15, "chains": 2, "retry": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = fit(df3, "dcpt", "both", draws=15, tune=5, chains=2, seed=0, discrepancy=refit)
    said = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(said) == 1, said
    problems = f.diagnostics(warn=False).problems
    assert problems and all(p in said[0] for p in problems), (problems, said)
    assert "held-out refits did not converge (tokens: " in said[0]


def test_predictive_bands(small_fit):
    grid = pd.DataFrame({"domain": "code", "n_params": [3e8, 3e9], "tokens": [1e9, 2e10], "r_domain": [0.5, 0.5]})
    p = small_fit.predict(grid, ci=0.9)
    m = small_fit.predict(grid, ci=0.9, kind="mean")
    for t in ("general", "domain"):
        assert (p[f"loss_{t}_lo"] < p[f"loss_{t}_mean"]).all() and (p[f"loss_{t}_mean"] < p[f"loss_{t}_hi"]).all()
        # the predictive band adds the run offset and noise to the law's band
        assert ((p[f"loss_{t}_hi"] - p[f"loss_{t}_lo"]) > (m[f"loss_{t}_hi"] - m[f"loss_{t}_lo"])).all()
    # extrapolating to 10x the largest N is less certain than interpolating
    w = m["loss_domain_hi"] - m["loss_domain_lo"]
    assert w.iloc[1] > w.iloc[0]


def test_prediction_input_errors(small_fit):
    bad = pd.DataFrame({"domain": ["code", "music"], "n_params": [1e9, -1], "tokens": [1e9, 1e9],
                        "r_domain": [0.5, 1.5]})
    with pytest.raises(DataValidationError) as ei:
        small_fit.predict(bad)
    text = str(ei.value)
    assert "n_params" in text and "r_domain" in text and "music" in text


def test_save_load_roundtrip(small_fit, tmp_path, df3):
    path = small_fit.save(tmp_path / "fit.nc")
    f2 = load_fit(path)
    grid = data.fit_rows(df3).head(7)
    a = small_fit.predict(grid, seed=5)
    b = f2.predict(grid, seed=5)
    pd.testing.assert_frame_equal(a, b)
    card = f2.card()
    assert card["law"] == "L3" and card["data_hash"] == data.data_hash(df3)
    assert any(p["parameter"] == "alpha" for p in card["priors"])
    assert f2.diagnostics(warn=False).rhat_max == small_fit.diagnostics(warn=False).rhat_max


def test_load_errors(tmp_path):
    with pytest.raises(BayesDCPTError, match="no such fit"):
        load_fit(tmp_path / "missing.nc")
    (tmp_path / "junk.nc").write_bytes(b"not netcdf at all")
    with pytest.raises(BayesDCPTError, match="not a readable"):
        load_fit(tmp_path / "junk.nc")


def test_same_seed_same_posterior_and_no_recompile(small_fit, df3):
    n_models = len(_MODEL_CACHE)
    again = fit(df3, "dcpt", "both", seed=3, **KW)
    assert len(_MODEL_CACHE) == n_models  # structure unchanged -> cached model reused
    a = small_fit.posterior.param_draws("domain", "code")["beta"]
    b = again.posterior.param_draws("domain", "code")["beta"]
    np.testing.assert_array_equal(a, b)


def test_refit_with_new_data_reuses_compiled_model(small_fit, world3):
    """New data of the same structure (one more run, within the run capacity) is a data swap, not a compile."""
    key_before = set(_MODEL_CACHE)
    grid = probe_grid(r_domain=(0.1, 0.3, 0.5, 0.7, 0.9, 0.6))
    df = world3.simulate(grid, seed=9)
    f = fit(df, "dcpt", "both", seed=1, **KW)
    assert set(_MODEL_CACHE) == key_before
    assert f.posterior.n_draws == 600


def test_prior_predictive_is_plausible(small_fit, df3):
    """Prior curves: centred on the data's scale, decreasing in tokens for almost every draw."""
    prior = small_fit.prior_predictive(draws=300, seed=1)
    rows = data.fit_rows(df3)
    for t in ("general", "domain"):
        med = np.median(np.exp(prior.mean_log_loss(rows, t)), axis=0)
        ratio = med / rows[f"loss_{t}"].to_numpy()
        assert (ratio > 0.5).all() and (ratio < 2.0).all(), (t, ratio.min(), ratio.max())
        curve = prior.surface(t, "code", 1e9, np.geomspace(1e8, 1e11, 20), 0.5)
        decreasing = np.all(np.diff(curve, axis=1) <= 1e-12, axis=1)
        assert decreasing.mean() > 0.95
        assert np.isfinite(curve).all() and (curve > 0).all()


def test_priors_are_written_down():
    tab = prior_table("dcpt")
    assert {"parameter", "prior", "reason"} <= set(tab.columns)
    assert tab["reason"].str.len().min() > 10
    assert {"alpha", "beta", "eps", "sigma", "tau", "nu"} <= set(tab["parameter"])
    assert "log exponent across domains" in set(tab["parameter"])  # the hierarchy's fixed spread has its reason


def test_fit_builds_on_the_base_and_keeps_its_card_format(small_fit):
    """Fit is a BaseFit; its model card keeps the keys (and order) of the files saved before the split, plus the
    adequacy checks."""
    from bayes_dcpt.fitting import BaseFit

    assert isinstance(small_fit, BaseFit)
    assert list(small_fit.card()) == ["package", "version", "law", "law_formula", "config", "config_key", "priors",
                                      "data_hash", "data_rows", "targets", "domains", "sampler", "diagnostics",
                                      "adequacy", *(["extrapolation"] if small_fit.extrapolation else []),
                                      "created"]
    pd.testing.assert_frame_equal(small_fit.priors(), prior_table("L3"))
    assert repr(small_fit) == "<Fit L3 targets=['general', 'domain'] domains=['code'] draws=600 diagnostics=" + (
        "ok>" if small_fit.diagnostics(warn=False).sampler_ok else "BAD>")


def test_bad_arguments(df3):
    with pytest.raises(FitError, match="sampler"):
        fit(df3, sampler="gibbs")
    with pytest.raises(FitError, match="not a law of"):
        fit(df3, law="mixing")
    with pytest.raises(FitError, match="draws"):
        fit(df3, draws=0)


def test_laplace_fast_approximation(df3, world3):
    f = fit(df3, "dcpt", "both", sampler="laplace", draws=200, chains=2, seed=1, warn=False)
    d = f.diagnostics(warn=False)
    assert d.approximate and not d.ok
    pred = f.predict(data.fit_rows(df3).head(20), kind="mean")
    truth = world3.mean(data.fit_rows(df3).head(20), "domain")
    assert np.mean(np.abs(pred["loss_domain_mean"] / truth - 1)) < 0.01


@pytest.mark.slow
def test_hierarchical_domains_and_unknown_domain():
    w = World.default(domains=("code", "law"), sigma=0.003, tau=0.003)
    df = w.simulate(probe_grid(domains=("code", "law"), n_params=(1e8, 1e9)), seed=2)
    f = fit(df, "dcpt", "domain", seed=1, **KW)
    alpha = f.idata["posterior"]["alpha"]
    assert set(alpha.dims) >= {"target", "domain"}
    grid = pd.DataFrame({"domain": ["code", "law"], "n_params": 5e8, "tokens": 2e9, "r_domain": 0.5})
    p = f.predict(grid, kind="mean")
    truth = np.concatenate([w.mean(grid.iloc[[0]], "domain"), w.mean(grid.iloc[[1]], "domain")])
    assert ((p["loss_domain_lo"] <= truth) & (truth <= p["loss_domain_hi"])).all()
    with pytest.raises(DataValidationError, match="unknown domain"):
        f.predict(grid.assign(domain="music"))


@pytest.mark.slow
def test_compare_laws_by_loo(df3):
    a = fit(df3, "dcpt", "domain", seed=1, **KW)
    b = fit(df3, "L1", "domain", seed=1, **KW)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = compare({"L3": a, "L1": b})
    assert set(tab.index) == {"L3", "L1"}
    assert "elpd" in " ".join(tab.columns)
    assert tab.index[0] == "L3"  # the data come from L3


@pytest.mark.slow
def test_auto_law_stacks_candidates_and_predicts(df3, tmp_path):
    # held-out refits by Laplace approximation keep this cheap (test_auto.py has the NUTS refits)
    # fit_unweighted: every candidate fitted to all the data, whatever its weight (its checks in the table)
    auto = fit(df3, "auto", "domain", seed=1, candidates=("L3", "L1"), refit={"sampler": "laplace"},
               fit_unweighted=True, **KW)
    tab = auto.table()
    assert set(auto.fits) == {"L3", "L1"} and tab["fitted"].all()
    assert abs(tab["weight"].sum() - 1) < 1e-6
    assert tab.iloc[0]["law"] == "L3"  # the data come from L3
    assert "implicit_trend" in tab.set_index("law").loc["L1", "requirements_failed"]
    rows = data.fit_rows(df3).head(5)
    p = auto.predict(rows, kind="mean")
    assert (p["loss_domain_lo"] <= p["loss_domain_mean"]).all()
    d = auto.optimize("limited-data", n_params=1e9, domain_tokens=2e9)
    assert np.isfinite(d.posterior["r_domain"]).all()
    path = auto.save(tmp_path / "auto.json")
    again = load_fit(path)
    assert set(again.weights) == set(auto.weights)
    # a fit made of fits: the base interface answered per candidate
    weighted = "+".join(k for k in auto.fits if auto.weights[k] > 0)  # a law of weight 0 is no component
    assert repr(again).startswith(f"<AutoFit stack({weighted}) weights=")
    assert set(auto.summary().index.get_level_values("law")) == set(auto.fits)
    assert set(auto.card()["candidates"]) == set(auto.fits) and set(auto.priors()["law"]) == set(auto.fits)
    assert set(auto.diagnostics(warn=False)) == set(auto.remedies()) == set(auto.fits)


@pytest.mark.slow
def test_cross_domain_new_domain_from_a_few_probes():
    """A domain seen only through its base rows and two early checkpoints gets a whole-surface prediction whose
    band is wider than the well-measured domains' and covers the truth."""
    doms = ("a", "b", "c", "new")
    w = World.default(domains=doms, sigma=0.003, tau=0.003, spread=0.3, vary=("E",), seed=3)
    df = w.simulate(probe_grid(domains=doms, n_params=(1e8, 3e8, 1e9)), seed=4)
    new = df[df["domain"] == "new"]
    first_two = np.sort(new.loc[new["tokens"] > 0, "tokens"].unique())[:2]
    keep = (new["tokens"] == 0) | ((new["n_params"] == 1e8) & (new["r_domain"] == 0.9)
                                    & new["tokens"].isin(first_two))
    df2 = pd.concat([df[df["domain"] != "new"], new[keep]], ignore_index=True)
    f = fit(df2, "cross-domain", "domain", seed=1, draws=400, tune=400, chains=2, warn=False, discrepancy=False)
    assert set(f.features["domain"]) == set(doms)
    grid = pd.DataFrame([{"domain": d, "n_params": 1e9, "tokens": 5e9, "r_domain": r} for d in doms
                         for r in (0.3, 0.9)])
    p = f.predict(grid, kind="mean")
    truth = np.concatenate([w.mean(grid[grid["domain"] == d], "domain") for d in doms])
    covered = (p["loss_domain_lo"] <= truth) & (truth <= p["loss_domain_hi"])
    assert covered.mean() >= 0.75
    width = (p["loss_domain_hi"] - p["loss_domain_lo"]).to_numpy()
    is_new = (grid["domain"] == "new").to_numpy()
    assert width[is_new].min() > 1.5 * width[~is_new].max()
    assert covered[is_new].all()


def test_bad_diagnostics_name_remedies_fitted_to_the_model(small_fit):
    """The convergence warning says what to try for this fit (few runs -> run_effect=False, ...)."""
    import dataclasses

    import bayes_dcpt.fitting.dcpt as core

    rem = small_fit.remedies()
    assert rem[-1].startswith("more tuning and draws")
    few = small_fit.data[small_fit.data["run_id"].isin(small_fit.data["run_id"].unique()[:4])]
    clone = core.Fit.__new__(core.Fit)
    clone.__dict__.update(small_fit.__dict__)
    clone.data = few
    clone.config = dataclasses.replace(small_fit.config, run_effect=True)
    assert any("run_effect=False" in r for r in clone.remedies())
    clone.config = dataclasses.replace(small_fit.config, run_effect=False)
    assert not any("run_effect=False" in r for r in clone.remedies())
    assert not any("run_offsets=" in r or "robust=True" in r for r in small_fit.remedies())  # the defaults
    clone.config = dataclasses.replace(small_fit.config, run_offsets="latent")
    assert any("run_offsets='marginal'" in r for r in clone.remedies())
    clone.config = dataclasses.replace(small_fit.config, robust=False)
    assert any("robust=True" in r for r in clone.remedies())
    # the sampler remedy asks for a target_accept above the one the fit ran with (recorded in its settings)
    assert small_fit.sampler_config["sampler"] == "nutpie"
    used = small_fit.sampler_config["settings"]["target_accept"]
    assert f"'target_accept': {0.95 if used < 0.95 else 0.98}" in rem[-1]
    clone.sampler_config = {**small_fit.sampler_config, "settings": {"target_accept": 0.95}}
    assert "'target_accept': 0.98" in clone.remedies()[-1]


def test_one_measurement_per_run_drops_the_run_effect(df3):
    """With a single checkpoint per run the run offset is unidentifiable: the fit leaves it out and says so."""
    from bayes_dcpt.fitting import fit

    cpt = df3[df3["tokens"] > 0]
    last = cpt.loc[cpt.groupby("run_id")["tokens"].idxmax()]
    with pytest.warns(UserWarning, match="single measurement"):
        f = fit(last, "dcpt", "general", sampler="laplace", seed=0, warn=False)
    assert f.config.run_effect is False
    assert "tau" not in f.idata["posterior"]
