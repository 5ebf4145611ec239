"""The CPT law's optional terms: the re-warming rise (``rewarm``), the share's exponent (``share_power``) and the
general loss's learning from domain tokens (``transfer``), opt-in; a replay balance that grows with the model
(``replay_size``), on by default.

Re-warming rise: every r = 0 run of the example grid sits above its base loss after the warm-up, which the law's
continued learning alone cannot describe; without the term the run offsets absorb it and their scale widens every
run's band. Opt-in: it extrapolates worse in tokens and size (BENCHMARKS.md, "The re-warming rise").

Share's exponent: codec_tables' general loss rises early in r, which forgetting linear in the domain share cannot
bend to; ``s^eta_s`` per domain can (BENCHMARKS.md, "The share's exponent").

Transfer (with one rate exponent of the general loss since 2026-12-07): late in CPT the general loss at high r
recovers faster than the general tokens alone explain, on both shuffled probe grids; ``h ((1 - s) + xi s)`` per
domain lets the domain tokens teach it too (BENCHMARKS.md, "Why r* at a larger size misses", "The transfer with one
rate exponent").

Replay that grows with the model: on both probe grids pure-domain CPT (r = 1) forgets more at a larger size while
mixed runs do not; ``rho c^chi`` per domain lets replay work better in a more capable model (BENCHMARKS.md, "Replay
that grows with the model").
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_dcpt import fit, load_fit
from bayes_dcpt.data import schema as _data
from bayes_dcpt.datasets import example_path, load_example
from bayes_dcpt.decide.measured import measured_crossing
from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.config import FitConfig
from bayes_dcpt.fitting.cpt_model import build_cpt_model, make_cpt_design
from bayes_dcpt.fitting.extrapolation import model_settings
from bayes_dcpt.laws.cpt import CPT_LAW

P = {"amp": 0.3, "phi": 0.0, "lam": 2e4, "psi": 0.0, "rho": 10.0, "kappa": 0.7, "h": 0.003, "sc": 0.5}
X = {"N": 1e-4, "L0": 2.0, "L0g": 2.0, "D_ref": 1e-4}


def _law(p: dict, r_domain: float, d: np.ndarray, target: str = "general") -> np.ndarray:
    own = 1.0 - r_domain if target == "general" else r_domain
    return CPT_LAW.formula(np, p, {**X, "D": d, "r": own, "target": target})


def test_the_rise_lifts_the_general_loss_at_every_mixture_and_keeps_the_base_at_zero_tokens():
    d = np.array([0.0, 1e-6, 1e-4, 1e-3])
    with_rise = P | {"w": 0.02, "phi_w": 0.0}
    for r in (0.0, 0.5):
        lo, hi = _law(P, r, d), _law(with_rise, r, d)
        assert hi[0] == lo[0] == X["L0"]  # anchored at the base model
        assert np.all(hi[1:] > lo[1:])
    # at r = 0 the rise is the only thing lifting the loss: without it the law can only fall (continued learning)
    assert np.all(_law(P, 0.0, d)[1:] < X["L0"]) and _law(with_rise, 0.0, d)[2] > X["L0"] * 1.01
    # more capable models (lower base loss, c = 2 / L0g) rise more when phi_w > 0; the domain loss has no rise
    capable = {**X, "L0g": 1.6, "L0": 1.6, "D": d, "r": 1.0, "target": "general"}
    strong = CPT_LAW.formula(np, with_rise | {"phi_w": 2.0}, capable)
    assert strong[2] / 1.6 > _law(with_rise, 0.0, d)[2] / X["L0"]
    np.testing.assert_array_equal(_law(with_rise, 0.5, d, "domain"), _law(P, 0.5, d, "domain"))
    # once saturated, the rise is w at every token count (a constant: it does not fade)
    far = np.array([0.1, 1.0, 100.0])
    np.testing.assert_allclose((_law(with_rise, 0.0, far) - _law(P, 0.0, far)) / X["L0"], 0.02, rtol=0.01)


@pytest.fixture(scope="module")
def two_fits():
    df = load_example()
    df = df[df["domain"] == "c_headers"]
    kw = {"draws": 300, "tune": 300, "chains": 2, "seed": 1, "warn": False, "discrepancy": False}
    return df, fit(df, "cpt", "general", **kw), fit(df, "cpt", "general", rewarm=True, **kw)


def test_with_the_rise_the_zero_ratio_runs_no_longer_set_every_runs_offset_scale(two_fits):
    _, without, with_rise = two_fits
    assert without.config.rewarm is False and with_rise.config.rewarm is True
    tau = {k: float(np.median(f.posterior.noise_of("general", "c_headers")["tau"]))
           for k, f in (("without", without), ("with", with_rise))}
    assert tau["with"] < 0.6 * tau["without"]
    rows = _data.fit_rows(with_rise.fitted_data())
    zero = rows[rows["r_domain"] == 0].reset_index(drop=True)
    y = np.log(zero["loss_general"].to_numpy(float))
    bias = {k: abs(float(np.mean(y - f.posterior.mean_log_loss(zero, "general").mean(axis=0))))
            for k, f in (("without", without), ("with", with_rise))}
    assert bias["with"] < 0.5 * bias["without"]
    w = with_rise.posterior.params[("general", "c_headers")]["w"]
    assert 0.003 < float(np.median(w)) < 0.05  # about 1-2% of the base loss, as the r = 0 runs show
    assert {"w", "phi_w"} <= set(with_rise.priors()["parameter"]) and "w" in with_rise.summary().index
    assert "w" not in set(without.priors()["parameter"]) and "w" not in without.posterior.params[
        ("general", "c_headers")]


def test_a_fit_saved_before_the_rise_loads_without_it(two_fits, tmp_path):
    _, without, with_rise = two_fits
    old_card = without.card()
    old_card["config"] = {k: v for k, v in old_card["config"].items() if k != "rewarm"}
    old = type(without)._from_card(without.data, without.idata, old_card, without._diagnostics)
    assert old.config.rewarm is False
    back = load_fit(with_rise.save(tmp_path / "rise.nc"))
    assert back.config.rewarm is True
    np.testing.assert_allclose(back.posterior.params[("general", "c_headers")]["w"],
                               with_rise.posterior.params[("general", "c_headers")]["w"])


def test_the_shares_exponent_bends_the_rise_in_r_and_leaves_it_at_s_1():
    d = np.array([0.0, 1e-4, 1e-3])
    bent = P | {"eta_s": 0.3}
    np.testing.assert_allclose(_law(P | {"eta_s": 1.0}, 0.5, d), _law(P, 0.5, d), rtol=1e-12)
    for r in (0.1, 0.25, 0.5):  # below 1 the general loss rises earlier in r ...
        assert np.all(_law(bent, r, d)[1:] > _law(P, r, d)[1:])
    np.testing.assert_allclose(_law(bent, 1.0, d), _law(P, 1.0, d), rtol=1e-12)  # ... and as much at s = 1
    assert _law(bent, 0.0, d)[0] == X["L0"]
    # with no domain data (s = 0) there is no forgetting, however small the exponent (a floor alone left 0.33 of it)
    np.testing.assert_array_equal(_law(P | {"eta_s": 0.04}, 0.0, d), _law(P, 0.0, d))
    np.testing.assert_array_equal(_law(bent, 0.5, d, "domain"), _law(P, 0.5, d, "domain"))


def test_with_the_shares_exponent_codec_tables_r_star_meets_the_measured_crossing(cli, tmp_path):
    """codec_tables' general loss already rises 3% at r of about 0.31 (443k, 131k tokens); linear in s the law puts
    r* near 0.50, and the decision says it disagrees with the data and names the exponent; with it (fitted through
    the CLI's ``--share-power``) r* comes down towards the crossing, about half the way (0.55 to 0.43, with the
    replay's growth with the model; 0.50 to 0.40 without it; on the grid's file-ordered first version, to within
    0.08 of it)."""
    df = load_example()
    df = df[df["domain"] == "codec_tables"]
    kw = {"draws": 300, "tune": 300, "chains": 2, "seed": 1, "warn": False, "discrepancy": False}
    ask = {"n_params": 443232.0, "tokens": 131072.0, "max_general_increase": 0.03, "data": df}
    crossing = measured_crossing(df, "codec_tables", 443232.0, 131072.0, max_general_increase=0.03,
                                 relative=True)["crossing"]
    linear = fit(df, "cpt", "both", **kw)
    code, _out, err = cli("fit", example_path(), "--law", "cpt", "--share-power", "--domains", "codec_tables",
                         "--draws", "300", "--tune", "300", "--chains", "2", "--seed", "1", "--no-calibration",
                         "--allow-bad-fit", "--out", tmp_path / "power.nc")
    assert code == 0, err
    powered = load_fit(tmp_path / "power.nc")
    assert powered.config.share_power is True and linear.config.share_power is False
    r_star, notes = {}, {}
    for power, f in ((False, linear), (True, powered)):
        s = f.optimize("tradeoff", **ask).summary(0.9)  # one domain fitted: its decision itself
        r_star[power] = float(s.table.loc["r_domain", "median"])
        notes[power] = [n for n in s.notes if n.startswith("DISAGREES")]
    eta = powered.posterior.params[("general", "codec_tables")]["eta_s"]
    assert np.quantile(eta, 0.95) < 0.6  # well below linear
    assert "eta_s" in set(powered.priors()["parameter"]) and "eta_s[codec_tables]" in powered.summary().index
    assert abs(r_star[True] - crossing) < 0.6 * abs(r_star[False] - crossing), (r_star, crossing)
    assert abs(r_star[False] - crossing) > 0.12 and r_star[True] < r_star[False], (r_star, crossing)
    assert notes[False] and all("--share-power" in n for n in notes[False]), notes
    assert not any("--share-power" in n for n in notes[True]), notes


def test_an_option_of_the_cpt_law_is_refused_for_another_law():
    df = load_example()
    with pytest.raises(FitError, match="share_power: an option of the CPT law"):
        fit(df, "L1", "general", share_power=True, draws=10, tune=10, chains=1)
    with pytest.raises(FitError, match="rewarm: an option of the CPT law"):
        fit(df, "auto", "general", rewarm=True, candidates=["L1", "L3"])


def test_the_transfer_lets_domain_tokens_teach_the_general_loss_and_keeps_the_base():
    d = np.array([0.0, 1e-4, 1e-3, 1e-2])
    np.testing.assert_array_equal(_law(P | {"xi": 0.0}, 0.5, d), _law(P, 0.5, d))  # xi = 0: the law as it was
    taught = P | {"xi": 2.0}
    for r in (0.25, 0.5, 1.0):  # with domain data the general loss keeps learning more ...
        assert _law(taught, r, d)[0] == X["L0"] and np.all(_law(taught, r, d)[1:] < _law(P, r, d)[1:])
    np.testing.assert_array_equal(_law(taught, 0.0, d), _law(P, 0.0, d))  # ... and without it nothing changes
    # at r = 1 the learning is h xi log(1 + D / D_ref) of the base loss, forgetting aside
    gap = (_law(P, 1.0, d) - _law(taught, 1.0, d)) / X["L0"]
    np.testing.assert_allclose(gap, P["h"] * 2.0 * np.log1p(d / X["D_ref"]), rtol=1e-12)
    np.testing.assert_array_equal(_law(taught, 0.5, d, "domain"), _law(P, 0.5, d, "domain"))


def test_the_transfer_is_fitted_per_domain_with_one_general_rate_exponent_through_the_cli_and_saved(cli, tmp_path):
    code, _out, err = cli("fit", example_path(), "--law", "cpt", "--transfer", "--domains", "c_headers,python",
                          "--target", "general", "--draws", "200", "--tune", "200", "--chains", "2", "--seed", "1",
                          "--no-calibration", "--allow-bad-fit", "--out", tmp_path / "transfer.nc")
    assert code == 0, err
    f = load_fit(tmp_path / "transfer.nc")
    assert f.config.transfer is True and f.config.rate_scope == "general"
    xi = {d: f.posterior.params[("general", d)]["xi"] for d in ("c_headers", "python")}
    assert all(np.all(v > 0) for v in xi.values()) and not np.allclose(xi["c_headers"], xi["python"])
    priors = f.priors().set_index("parameter")
    assert priors.loc["xi", "prior"] == "LogNormal(0, 0.75) per domain"
    assert priors.loc["psi", "prior"].startswith("Normal(0, 1.5) one for all domains (general loss)")
    assert "xi[c_headers]" in f.summary().index
    # the general loss's rate exponent is one for all domains; each domain keeps its own rate
    psi = {d: f.posterior.params[("general", d)]["psi"] for d in ("c_headers", "python")}
    np.testing.assert_array_equal(psi["c_headers"], psi["python"])
    lam = {d: f.posterior.params[("general", d)]["lam"] for d in ("c_headers", "python")}
    assert not np.allclose(lam["c_headers"], lam["python"])
    code, _out, err = cli("fit", example_path(), "--law", "L1", "--transfer", "--out", tmp_path / "no.nc")
    assert code == 2 and "transfer: an option of the CPT law" in " ".join(err.split())


def test_without_the_transfer_each_domain_keeps_its_rate_exponent_and_older_transfer_fits_their_priors(two_fits):
    """Cards written before 2026-12-07 have no ``rate_scope`` nor ``xi_sd``: one psi per domain, the wider prior."""
    _, without, _ = two_fits
    assert without.config.transfer is False and without.config.rate_scope == "domain"
    assert without.priors().set_index("parameter").loc["psi", "prior"] == "Normal(0, 1.5) per domain"
    card = without.card()
    card["config"] = {k: v for k, v in card["config"].items() if k not in ("rate_scope", "xi_sd")} | {
        "transfer": True}
    old = type(without)._from_card(without.data, without.idata, card, without._diagnostics)
    assert old.config.rate_scope == "domain" and old.config.xi_sd == 1.5
    priors = old.priors().set_index("parameter")
    assert priors.loc["xi", "prior"] == "LogNormal(0, 1.5) per domain" and "~20" in priors.loc["xi", "reason"]
    with pytest.raises(FitError, match="rate_scope must be"):
        fit(load_example(), "cpt", "general", rate_scope="target", draws=10, tune=10, chains=1)
    # a refit of such a fit (held-out scoring, calibration) samples the prior it was fitted with
    assert model_settings(old)["xi_sd"] == 1.5 and model_settings(old)["rate_scope"] == "domain"


def test_with_both_losses_only_the_general_losss_rate_exponent_is_shared_by_the_domains():
    df = load_example()
    cfg = FitConfig(law="cpt", target="both", transfer=True, rate_scope="general", xi_sd=0.75)
    model = build_cpt_model(cfg, make_cpt_design(df, cfg))
    free = {v.name for v in model.free_RVs}
    assert {"psi_general", "psi_domain_loss"} <= free and "psi" not in free
    values = [model.rvs_to_values[model[k]] for k in ("psi_general", "psi_domain_loss")]
    out = model.replace_rvs_by_values([model["psi"]])[0]
    psi = model.compile_fn(out, inputs=values, point_fn=False)(0.7, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(psi, [[0.7, 0.7, 0.7], [0.1, 0.2, 0.3]])


def test_replay_that_grows_with_the_model_spares_mixed_runs_at_larger_sizes_only():
    d = np.array([0.0, 1e-4, 1e-3, 1e-2])
    np.testing.assert_array_equal(_law(P | {"chi": 0.0}, 0.5, d), _law(P, 0.5, d))  # chi = 0: the law as it was
    grown = P | {"chi": 2.0}
    larger = {"L0g": 1.6, "L0": 1.6}  # a more capable model (c = 2 / L0g > 1)
    at = lambda p, r, x: CPT_LAW.formula(np, p, {**X, **x, "D": d, "r": 1.0 - r, "target": "general"})  # noqa: E731
    for r in (0.25, 0.5, 0.75):  # a larger model forgets less in a mixed run ...
        assert at(grown, r, larger)[0] == 1.6 and np.all(at(grown, r, larger)[1:] < at(P, r, larger)[1:])
    np.testing.assert_array_equal(at(grown, 1.0, larger), at(P, 1.0, larger))  # ... and as much with no replay
    np.testing.assert_allclose(_law(grown, 0.5, d), _law(P, 0.5, d), rtol=1e-12)  # c = 1: unchanged
    np.testing.assert_array_equal(_law(grown, 0.5, d, "domain"), _law(P, 0.5, d, "domain"))


def test_replay_that_grows_with_the_model_is_the_default_fitted_per_domain_and_saved(cli, tmp_path):
    args = ("fit", example_path(), "--domains", "c_headers,python", "--target", "general", "--draws", "200", "--tune",
            "200", "--chains", "2", "--seed", "1", "--no-calibration", "--allow-bad-fit")
    code, _out, err = cli(*args, "--out", tmp_path / "replay.nc")
    assert code == 0, err
    f = load_fit(tmp_path / "replay.nc")
    assert f.law.name == "cpt" and f.config.replay_size is True
    chi = {d: f.posterior.params[("general", d)]["chi"] for d in ("c_headers", "python")}
    assert not np.allclose(chi["c_headers"], chi["python"]) and np.std(chi["python"]) > 0
    assert "chi" in set(f.priors()["parameter"]) and "chi[c_headers]" in f.summary().index
    code, _out, err = cli(*args, "--no-replay-size", "--out", tmp_path / "same.nc")  # the law as it was
    assert code == 0, err
    f = load_fit(tmp_path / "same.nc")
    assert f.config.replay_size is False and "chi" not in f.posterior.params[("general", "python")]
    assert "chi" not in set(f.priors()["parameter"])
    with pytest.raises(FitError, match="replay_size: an option of the CPT law"):
        fit(load_example(), "L1", "general", replay_size=True, draws=10, tune=10, chains=1)
    assert fit(load_example(), "L1", "general", draws=10, tune=10, chains=1, discrepancy=False,
               warn=False).config.replay_size is False  # the default is the CPT law's alone
