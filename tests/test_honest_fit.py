"""An honest fit: the adequacy checks pass a well-specified fit, flag a law that misses its data (simulated, and the
committed D-CPT model of the example), the noise cannot hide a wrong law, and the base-anchored CPT law fits.

The fits are small NUTS fits (2 chains x 300 draws) without the held-out calibration refits (``discrepancy=False``;
those have their own tests in ``test_extrapolation.py``); the session's ``small_fit`` is the well-specified case.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt.cli.demo_cmd import default_models_dir, model_path
from bayes_dcpt.data import schema as _data
from bayes_dcpt.datasets import load_example
from bayes_dcpt.errors import FitError, MisfitWarning
from bayes_dcpt.fitting import fit, load_fit
from bayes_dcpt.fitting.config import FitConfig
from bayes_dcpt.posterior.adequacy import NU_FLAG, check_adequacy

KW = {"draws": 300, "tune": 300, "chains": 2, "cores": 2, "warn": False, "discrepancy": False}
MODELS = default_models_dir()


@pytest.fixture(scope="module")
def curved(df3) -> pd.DataFrame:
    """``df3`` with a bend along log D the D-CPT law cannot follow: data from one law, fitted by another.

    The domain loss gains a quadratic in log D (+-4% at the ends of each run), the size of the shape errors the
    D-CPT law made on the example's ``codec_tables`` curves; the general loss is left as simulated.
    """
    df = df3.copy()
    cpt = df["tokens"] > 0
    x = np.log(df.loc[cpt, "tokens"])
    z = (x - x.mean()) / (x.max() - x.mean())
    df.loc[cpt, "loss_domain"] = df.loc[cpt, "loss_domain"] * np.exp(0.04 * (2 * z**2 - 1))
    return df


@pytest.fixture(scope="module")
def misfit(curved):
    return fit(curved, "dcpt", "both", seed=4, **KW)


def test_a_well_specified_fit_passes_the_adequacy_checks(small_fit):
    a = small_fit.adequacy()
    assert a.ok, a.summary()
    assert {c.check for c in a.checks} >= {"coverage", "trend_tokens", "trend_ratio", "loo_pit", "tails"}
    d = small_fit.diagnostics(warn=False)
    assert d.misfit == () and d.ok == d.sampler_ok
    assert small_fit.card()["adequacy"]["ok"] is True


@pytest.mark.slow
def test_a_law_that_misses_the_curves_is_flagged_where_it_misses(misfit):
    d = misfit.diagnostics(warn=False)
    assert d.rhat_max < 1.05 and d.divergences == 0, str(d)  # the chains mix: only the adequacy checks can tell
    a = misfit.adequacy()
    assert not a.ok and not d.ok and d.misfit
    failed = [c for c in a.checks if not c.ok]
    assert any(c.target == "domain" for c in failed), a.summary()
    assert not any(c.target == "general" and c.check.startswith("trend") for c in failed), a.summary()
    assert {c.check for c in failed} & {"trend_tokens", "coverage", "loo_pit", "tails"}
    with pytest.warns(MisfitWarning, match="does not describe"):
        misfit.diagnostics(warn=True)
    assert "All checks pass" not in str(d)
    js = misfit.card()["adequacy"]
    assert js["ok"] is False and js["n_failed"] == len(js["failures"]) > 0


def test_the_committed_dcpt_model_converges_but_misses_its_data():
    f = load_fit(model_path(MODELS, "dcpt"))
    d = f.diagnostics(warn=False)
    assert d.sampler_ok, str(d)  # R-hat 1.003, ESS > 1,100: the sampler is not the problem
    a = f.adequacy()
    assert not a.ok and not d.ok
    where = {c.domain for c in a.checks if not c.ok}
    assert "codec_tables" in where, a.summary()


def test_a_notebook_shows_the_verdict_and_where_it_fails_not_the_dataclass():
    from IPython.lib.pretty import pretty

    f = load_fit(model_path(MODELS, "dcpt"))
    a = f.adequacy()
    shown = pretty(a).splitlines()
    assert shown[0].startswith(f"MISFIT ({len(a.failures)} of {len(a.checks)} checks fail)")
    assert len(shown) == 1 + len(a.failures) and all(ln.startswith("  FAIL ") for ln in shown[1:])
    assert a.failures[0].message in shown[1] and "AdequacyCheck(" not in pretty(a)
    d = pretty(f.diagnostics(warn=False))
    assert d == str(f.diagnostics(warn=False)) and "MISFIT" in d and "R-hat max" in d


def test_the_committed_cpt_model_describes_its_data_and_converged():
    p = model_path(MODELS, "cpt")
    f = load_fit(p)
    assert f.law.name == "cpt" and _data.data_hash(f.data) == _data.data_hash(load_example())
    d = f.diagnostics(warn=False)
    assert d.sampler_ok, str(d)
    assert d.rhat_max < 1.01 and d.ess_bulk_min >= 400 and d.divergences == 0
    assert f.adequacy().ok, f.adequacy().summary()
    assert f.posterior.ctx.get("discrepancy"), "the committed model carries its calibration for extrapolation"
    readme = (MODELS / "README.md").read_text()
    assert p.name in readme and f"R-hat max {d.rhat_max:.3f}" in readme


def test_the_noise_cannot_fall_below_its_floor(small_fit):
    assert small_fit.config.nu_floor == 2.0 and FitConfig().nu_floor == 2.0
    nu = small_fit.idata["posterior"]["nu"].values
    assert np.all(nu >= 2.0)
    assert small_fit.card()["config"]["nu_floor"] == 2.0


def test_heavy_tails_are_flagged(small_fit):
    """The same fit with its noise's degrees of freedom near the floor: the tails check fails and says why."""
    post = small_fit.posterior
    heavy = {t: {**v, "nu": np.full_like(np.asarray(v["nu"], float), NU_FLAG - 0.5)}
             for t, v in post.noise.items()}
    a = check_adequacy(replace(post, noise=heavy), small_fit.data, checks=("tails",))
    tails = [c for c in a.checks if c.check == "tails"]
    assert tails and not any(c.ok for c in tails)
    assert "heavy-tailed" in a.summary()


def test_large_data_use_fewer_draws_in_the_checks_and_still_pass(small_fit, monkeypatch):
    """The checks' per-draw arrays are capped in cells (at least 200 draws): the same verdict, fewer draws."""
    from bayes_dcpt.posterior import adequacy

    post = small_fit.posterior
    seen = []
    subset = type(post).subset
    monkeypatch.setattr(type(post), "subset", lambda self, idx: seen.append(len(idx)) or subset(self, idx))
    monkeypatch.setattr(adequacy, "_MAX_CELLS", 1)
    a = check_adequacy(post, small_fit.data)
    assert seen == [adequacy._MIN_DRAWS] and post.n_draws > adequacy._MIN_DRAWS
    assert a.ok, a.summary()
    monkeypatch.setattr(adequacy, "_MAX_CELLS", 10**12)
    seen.clear()
    check_adequacy(post, small_fit.data, checks=("tails",))
    assert seen == ([] if post.n_draws <= adequacy._MAX_DRAWS else [adequacy._MAX_DRAWS])


def test_warmup_checkpoints_are_left_out_and_said_so():
    df = load_example()
    warm = _data.in_warmup(df)
    assert warm.any() and (df.loc[warm, "tokens"] > 0).all()
    cfg = FitConfig(target="both")
    kept = cfg.fitted_data(df)
    assert len(kept) == len(df) - warm.sum()
    assert len(FitConfig(target="both", burn_in="none").fitted_data(df)) == len(df)


@pytest.mark.slow
def test_cli_fit_law_auto_end_to_end(cli, df3, tmp_path):
    """``bayes-dcpt fit --law auto``: real fits of two laws, weighed by their held-out refits, the verdict in JSON."""
    import json

    data = tmp_path / "probes.csv"
    df3[df3["domain"] == df3["domain"].iloc[0]].to_csv(data, index=False)
    out = tmp_path / "auto.json"
    code, so, se = cli("fit", data, "--law", "auto", "--auto-laws", "L3,L1", "--target", "domain", "--draws", "150",
                       "--tune", "150", "--chains", "2", "--no-calibration", "--allow-bad-fit", "--out", out, "--json")
    assert code == 0, se
    js = json.loads(so)
    assert {r["law"] for r in js["laws"]} == {"L3", "L1"}
    assert sum(r["weight"] for r in js["laws"]) == pytest.approx(1.0)
    for r in js["laws"]:  # how firmly the held-out runs settle each weight
        assert 0.0 <= r["weight_lo"] <= r["weight_hi"] <= 1.0
    assert "adequate" in js["diagnostics"] and "per_law" in js["diagnostics"]
    back = load_fit(out)
    assert set(back.weights) == {"L3", "L1"} and back.method == "holdout-stacking"
    assert js.get("notes", []) == back.notes  # what law='auto' noted reaches the command line's output


def test_a_saved_cpt_fit_predicts_and_checks_as_it_did_before_saving(tmp_path):
    """The LR warm-up is left out of the fit; the saved data keep ``lr`` and the card the reference token count, so
    the loaded fit has the same data, the same ``D_ref`` and the same predictions (before, ``D_ref`` was re-derived
    from every row on load: 0.5% on the log loss of a saved fit on the example grid's first two-thirds of tokens,
    and its recomputed adequacy checks failed 10 groups the fit had passed)."""
    df = load_example()
    df = df[(df["domain"] == "python") & (df["tokens"] < 262144)]
    assert _data.in_warmup(df).any()
    f = fit(df, "cpt", "both", draws=100, tune=100, chains=1, seed=0, warn=False, discrepancy=False,
            sampler="laplace")
    back = load_fit(f.save(tmp_path / "cpt.nc"))
    assert {"lr", "step", "schedule"} <= set(back.data)  # what tells the warm-up (data.warmup) is saved
    assert len(back.config.fitted_data(back.data)) == len(f.config.fitted_data(f.data))
    np.testing.assert_array_equal(_data.in_warmup(back.data), _data.in_warmup(f.data))
    assert back.posterior.ctx["D_ref"] == f.posterior.ctx["D_ref"]
    assert back.card()["D_ref"] == f.posterior.ctx["D_ref"]
    rows = _data.fit_rows(_data.load(df)).reset_index(drop=True)
    np.testing.assert_allclose(back.posterior.mean_log_loss(rows, "general"),
                               f.posterior.mean_log_loss(rows, "general"))
    old_card = {k: v for k, v in back.card().items() if k != "D_ref"}  # a file of an older version: it says so
    with pytest.warns(UserWarning, match="older bayes-dcpt"):
        type(back)._from_card(back.data.drop(columns="lr"), back.idata, old_card, back._diagnostics)


def test_a_stack_is_checked_against_the_data_its_candidates_were_fitted_to(monkeypatch):
    """``law="auto"``'s adequacy checks leave out the LR warm-up like its candidates' fits do."""
    from types import SimpleNamespace

    from bayes_dcpt.fitting import auto_fit, base

    seen = []
    monkeypatch.setattr(base, "check_adequacy", lambda post, data, zero_ratio: seen.append(data) or "checked")
    df = _data.load(load_example())
    from bayes_dcpt.fitting.base import BaseFit

    cand = SimpleNamespace(data=df, config=FitConfig(law="cpt", target="both"), law=SimpleNamespace(family="cpt"))
    cand.fitted_data = lambda: BaseFit.fitted_data(cand)  # the fits' own method on the fake candidate
    a = auto_fit.AutoFit({"cpt": cand}, pd.DataFrame(), {"cpt": 1.0}, {},
                         posterior=SimpleNamespace(fits_zero_ratio=True))
    assert a.adequacy() == "checked"
    assert len(seen[0]) == len(df) - int(_data.in_warmup(df).sum()) < len(df)


def test_the_cpt_law_bends_each_domains_rise_in_r_with_its_own_replay_balance(tmp_path):
    """rho per (target, domain) by default (replay_scope): the posterior carries each domain's own; one per target
    on request and for cards written before the option (their draws have no domain axis)."""
    df = load_example()
    df = df[df["domain"].isin(["c_headers", "python"]) & (df["tokens"] < 262144)]
    kw = {"draws": 100, "tune": 100, "chains": 1, "seed": 0, "warn": False, "discrepancy": False,
          "sampler": "laplace"}
    own = fit(df, "cpt", "both", **kw)
    assert own.idata["posterior"]["rho"].dims[-2:] == ("target", "domain")
    rho = {d: own.posterior.params[("general", d)]["rho"] for d in own.domains}
    assert not np.allclose(rho["c_headers"], rho["python"])
    assert "per domain" in own.priors().set_index("parameter").loc["rho", "prior"]
    back = load_fit(own.save(tmp_path / "own.nc"))
    np.testing.assert_allclose(back.posterior.params[("general", "python")]["rho"], rho["python"])
    shared = fit(df, "cpt", "both", replay_scope="target", **kw)
    assert shared.idata["posterior"]["rho"].dims[-1] == "target"
    row = shared.priors().set_index("parameter").loc["rho"]
    assert row["prior"].endswith("per target") and "per domain because" not in row["reason"]
    np.testing.assert_allclose(shared.posterior.params[("general", "c_headers")]["rho"],
                               shared.posterior.params[("general", "python")]["rho"])
    old_card = shared.card()
    old_card["config"] = {k: v for k, v in old_card["config"].items() if k != "replay_scope"}
    old = type(shared)._from_card(shared.data, shared.idata, old_card, shared._diagnostics)
    assert old.config.replay_scope == "target"
    with pytest.raises(FitError, match="replay_scope"):
        fit(df, "cpt", "both", replay_scope="run", **kw)


def test_a_fit_s_repr_says_misfit_not_ok_when_its_law_misses_the_data():
    """The committed D-CPT fit converged but misses codec_tables: its repr must not read 'diagnostics=ok'."""
    bad, good = (load_fit(model_path(default_models_dir(), law)) for law in ("dcpt", "cpt"))
    assert repr(bad).endswith("diagnostics=MISFIT>") and repr(good).endswith("diagnostics=ok>")
