"""Decisions that say where their numbers come from: the base loss per draw, the measured crossing, no feasible draw,
and the base-anchored CPT law through every usage that applies to it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from planner_helpers import jitter_posterior

from bayes_dcpt import decide as dc
from bayes_dcpt.decide.draws import law_draws
from bayes_dcpt.decide.measured import check_against, measured_crossing, nearest_cell
from bayes_dcpt.errors import InputError
from bayes_dcpt.laws.cpt import CPT_LAW
from bayes_dcpt.plan.simulate import World
from bayes_dcpt.posterior.cpt import CPTPosterior

#: Posterior medians of a CPT-law fit to the embedded example grid (python domain), and its base models.
CPT_MEDIANS = {
    "general": {"amp": 0.141, "phi": 1.43, "lam": 9218.0, "psi": 1.6, "rho": 7.21, "kappa": 3.3, "h": 0.0092},
    "domain": {"amp": 0.178, "phi": 1.64, "lam": 10115.0, "psi": -0.05, "rho": 0.231, "kappa": 0.79, "sc": 0.272},
}
CPT_NOISE = {"general": (0.006, 0.0007, 5.2, 0.24), "domain": (0.0067, 0.0057, 4.4, 0.039)}
SIZES = (13408.0, 100672.0, 443232.0)
BASE = {"loss_general": [2.36134, 1.831637, 1.609723], "loss_domain": [2.512119, 2.130548, 1.994782]}


def cpt_posterior(S: int = 400, seed: int = 0) -> CPTPosterior:
    rng = np.random.default_rng(seed)
    params = {}
    for t, med in CPT_MEDIANS.items():
        params[(t, "python")] = {k: (v + rng.normal(0, 0.1, S)) if k in ("phi", "psi")
                                 else v * np.exp(rng.normal(0, 0.05, S)) for k, v in med.items()}
    noise = {t: {"sigma": np.full(S, s), "tau": np.full(S, u), "nu": np.full(S, nu), "sigma_move": np.full(S, m)}
             for t, (s, u, nu, m) in CPT_NOISE.items()}
    ref = pd.DataFrame({"domain": "python", "n_params": SIZES, **BASE})
    ctx = {"D_ref": 6.5536e-05, "heteroscedastic": 1.0, "run_mixing": 1.0}
    return CPTPosterior(CPT_LAW, params, noise, ctx, ref)


@pytest.fixture(scope="module")
def cpt():
    return cpt_posterior()


@pytest.fixture(scope="module")
def world():
    return World.default(domains=("code",))


@pytest.fixture(scope="module")
def dcpt(world):
    return jitter_posterior(world, S=800, spread=0.02)


def _width(d) -> float:
    row = d.summary().table.loc["r_domain"]
    return float(row["hi"] - row["lo"])


# ----------------------------------------------------------------------------- the base loss per draw
@pytest.mark.parametrize("n_params", [5e8, 3e9])
def test_dcpt_base_loss_at_a_size_nobody_probed_is_carried_per_draw(dcpt, world, n_params):
    d = dc.tradeoff(dcpt, n_params=n_params, tokens=1e10, max_general_increase=0.03)
    assert d.inputs["base_loss_source"] == "predicted by the base-loss law in N from 3 probed size(s)"
    true = world.base_loss(pd.DataFrame({"domain": ["code"], "n_params": [n_params], "tokens": [0.0],
                                         "r_domain": [np.nan]}), "general")[0]
    lo, hi = d.inputs["base_loss_interval"]
    assert lo < true < hi
    assert d.posterior["base_loss"].std() > 0
    assert "base_loss" in d.summary().table.index
    # the same median taken as known gives a narrower r*: the base loss's uncertainty was in the answer
    given = dc.tradeoff(dcpt, n_params=n_params, tokens=1e10, max_general_increase=0.03,
                        base_loss=d.inputs["base_loss"])
    assert given.inputs["base_loss_source"] == "given" and given.posterior["base_loss"].std() < 1e-12
    assert _width(d) > _width(given)


@pytest.mark.parametrize("n_params", [2e5, 2e6])
def test_cpt_law_at_a_size_nobody_probed(cpt, n_params):
    d = dc.tradeoff(cpt, n_params=n_params, tokens=524288, max_general_increase=0.03)
    assert d.inputs["law"] == "cpt"
    assert d.inputs["base_loss_source"].startswith("predicted by the base-loss law in N from 3")
    assert d.summary().counts["infeasible"] < cpt.n_draws / 2
    # the CPT law starts from the same base draw as the threshold: at D -> 0 the general loss is that base loss
    L0 = d.posterior["base_loss"].to_numpy()
    np.testing.assert_allclose(law_draws(cpt, "general", "python", n_params, 1e-3, 0.5), L0, rtol=1e-6)
    given = dc.tradeoff(cpt, n_params=n_params, tokens=524288, max_general_increase=0.03, base_loss=1.5)
    assert given.inputs["base_loss_source"] == "given"
    anchored = cpt.with_reference("python", n_params, loss_general=1.5)
    np.testing.assert_allclose(law_draws(anchored, "general", "python", n_params, 1e-3, 0.5), 1.5, rtol=1e-6)
    # a given base loss anchors the law too (not only the threshold): r* is that of the anchored posterior
    ref = dc.tradeoff(anchored, n_params=n_params, tokens=524288, max_general_increase=0.03)
    np.testing.assert_allclose(given.posterior["r_domain"], ref.posterior["r_domain"])


def test_cpt_law_answers_the_usages_that_apply(cpt):
    cur = dc.critical_ratio_curve(cpt, n_params=2e6, tokens_grid=[1e5, 5e5, 2e6])
    assert np.isfinite(cur.summary().table["median"]).all()
    lim = dc.limited_data(cpt, n_params=2e6, domain_tokens=2e5)
    assert lim.posterior["r_domain"].between(0, 1).all() and np.isfinite(lim.posterior["loss_domain"]).all()
    with pytest.raises(InputError, match="usage 'compute' does not apply to the 'cpt' law"):
        dc.compute_allocation(cpt, flops=1e15)
    with pytest.raises(InputError, match="does not apply"):
        dc.optimize(cpt, "compute", n_params=2e6, tokens=1e6)


# ------------------------------------------------------------------------------- the measured crossing
def _measured_frame(losses: dict[float, list[float]], base: float = 2.0, n: float = 1e9, d: float = 1e10):
    rows = [{"domain": "code", "n_params": n, "tokens": 0.0, "r_domain": np.nan, "loss_general": base,
             "run_id": "base"}]
    for r, ls in losses.items():
        for i, loss in enumerate(ls):
            rows.append({"domain": "code", "n_params": n, "tokens": d, "r_domain": r, "loss_general": loss,
                         "run_id": f"r{r}s{i}"})
            rows.append({"domain": "code", "n_params": n, "tokens": d / 4, "r_domain": r, "loss_general": loss,
                         "run_id": f"r{r}s{i}"})
    return pd.DataFrame(rows)


def test_measured_crossing_interpolates_between_the_straddling_ratios():
    df = _measured_frame({0.2: [2.02], 0.4: [2.03, 2.05], 0.6: [2.08], 0.8: [2.2]})
    m = measured_crossing(df, "code", 1e9, 1e10, max_general_increase=0.03, relative=True)
    assert m["kind"] == "interior" and m["bracket"] == [0.4, 0.6]
    assert m["crossing"] == pytest.approx(0.5)  # replicates at 0.4 averaged: 2% there, 4% at 0.6
    assert m["n_runs"] == 5 and m["base_loss_source"] == "measured"
    assert measured_crossing(df, "code", 1e9, 1e10, max_general_increase=0.5, relative=True)["kind"] == "above"
    assert measured_crossing(df, "code", 1e9, 1e10, max_general_increase=0.001, relative=True)["kind"] == "below"
    absolute = measured_crossing(df, "code", 1e9, 1e10, max_general_increase=0.06, relative=False)
    assert absolute["crossing"] == pytest.approx(0.5)
    assert measured_crossing(df, "code", 1e9, 1e10, max_general_increase=0.03, relative=True,
                             base_loss=2.04)["base_loss_source"] == "given"
    # not measured: another size, tokens without a checkpoint, one ratio only, no base model
    assert measured_crossing(df, "code", 3e9, 1e10, max_general_increase=0.03, relative=True) is None
    assert measured_crossing(df, "code", 1e9, 2e10, max_general_increase=0.03, relative=True) is None
    assert measured_crossing(df[df["r_domain"] != 0.4].iloc[:3], "code", 1e9, 1e10, max_general_increase=0.03,
                             relative=True) is None
    assert measured_crossing(df.iloc[1:], "code", 1e9, 1e10, max_general_increase=0.03, relative=True) is None


def test_a_decision_flags_a_measured_crossing_outside_its_interval(world):
    post = jitter_posterior(world, S=400, spread=0.01, sigma=1e-5, tau=1e-5)
    base = post.base_loss("code", 1e9)
    d0 = dc.tradeoff(post, n_params=1e9, tokens=1e10)
    r_med = float(d0.summary().table.loc["r_domain", "median"])
    # measurements whose crossing sits well above the law's: flagged, in the summary, the JSON and the table
    far = min(r_med + 0.3, 0.95)
    ratios = sorted({0.05, far - 0.05, far + 0.05, 1.0})
    df = _measured_frame({r: [base * (1 + 0.03 * (r / far))] for r in ratios}, base=base)
    d = dc.tradeoff(post, n_params=1e9, tokens=1e10, data=df)
    assert d.measured_crossing == pytest.approx(far, abs=1e-9)
    chk = d.measured_check()
    assert not chk["contains"] and not chk["agrees"]
    s = d.summary()
    assert s.flags and s.flags[0].startswith("DISAGREES") and "DISAGREES" in str(s)
    j = d.to_json()
    json.dumps(j)
    assert j["flags"] and j["measured_check"]["crossing"] == pytest.approx(far)
    assert "crossing_draws" not in j["measured_check"]
    from rich.console import Console

    con = Console(width=250, record=True)
    con.print(dc.decision_table(d))
    assert "FLAG" in con.export_text()
    # measurements made by the posterior's own law agree
    law_r = lambda r: float(np.median(law_draws(post, "general", "code", 1e9, 1e10, r)))  # noqa: E731
    ok = dc.tradeoff(post, n_params=1e9, tokens=1e10,
                     data=_measured_frame({r: [law_r(r)] for r in (0.1, 0.3, 0.5, 0.7, 0.9)}, base=base))
    assert ok.measured_check()["contains"] and not ok.summary().flags
    assert abs(ok.measured_crossing - r_med) < 0.03


def test_the_nearest_measured_cell_has_a_base_model_and_two_ratios_nearest_in_size_then_tokens():
    df = pd.concat([_measured_frame({0.2: [2.0], 0.6: [2.1]}, n=1e8, d=4e9),  # 1e8: D = 4e9 and 1e9, base row
                    _measured_frame({0.2: [1.8], 0.6: [1.9]}, n=1e9, d=4e9).iloc[1:],  # 1e9: no base model
                    _measured_frame({0.5: [1.7]}, n=3e9, d=4e9)])  # 3e9: one ratio
    assert nearest_cell(df, "code", 1e10, 3e9) == (1e8, 4e9)  # tokens: |log 4/3| < |log 1/3|
    assert nearest_cell(df, "code", 1e10, 1.5e9) == (1e8, 1e9)
    assert nearest_cell(df, "other", 1e10, 3e9) is None
    assert nearest_cell(df[df["n_params"] != 1e8], "code", 1e10, 3e9) is None


def test_an_answer_beyond_the_data_is_checked_where_they_measure_it_nearest(world):
    post = jitter_posterior(world, S=400, spread=0.01, sigma=1e-5, tau=1e-5)
    base = post.base_loss("code", 1e9)
    law_r = lambda r: float(np.median(law_draws(post, "general", "code", 1e9, 1e10, r)))  # noqa: E731
    good = _measured_frame({r: [law_r(r)] for r in (0.1, 0.3, 0.5, 0.7, 0.9)}, base=base)
    d = dc.tradeoff(post, n_params=4e9, tokens=4e10, data=good)  # measured at 1e9 (D = 1e10, 2.5e9) only
    near = d.nearest_check()
    assert d.measured_check() is None and (near["n_params"], near["tokens"]) == (1e9, 1e10)
    assert near["contains"] and near["agrees"] and not any(f.startswith("DISAGREES") for f in d.summary().flags)
    assert any(n.startswith("the law's r* where the data measure it (N = 1e+09, D = 1e+10") for n in d.summary().notes)
    assert dc.tradeoff(post, n_params=1e9, tokens=1e10, data=good).nearest_check() is None  # measured: checked there
    # measurements at 1e9 whose crossing sits well above the law's: the answer at 4e9 is flagged, text and JSON
    far = min(float(np.median(d.extras["nearest"]["r_star"])) + 0.3, 0.95)
    ratios = sorted({0.05, far - 0.05, far + 0.05, 1.0})
    bad = dc.tradeoff(post, n_params=4e9, tokens=4e10,
                      data=_measured_frame({r: [base * (1 + 0.03 * (r / far))] for r in ratios}, base=base))
    (flag,) = [f for f in bad.summary().flags if f.startswith("DISAGREES")]
    assert flag.startswith("DISAGREES where the data measure it (N = 1e+09, D = 1e+10")
    assert "beyond them, is doubtful" in flag and "measured crossing r = " in flag
    j = bad.to_json()
    assert not j["nearest_measured_check"]["agrees"] and j["nearest_measured_check"]["crossing"] == pytest.approx(far)
    assert json.dumps(j) and "r_star" not in j["nearest_measured_check"]


def test_optimize_passes_a_fits_data_and_the_curve_checks_every_measured_budget(world):
    post = jitter_posterior(world, S=300, spread=0.01)
    base = post.base_loss("code", 1e9)
    df = _measured_frame({0.2: [base * 1.0], 0.5: [base * 1.02], 0.8: [base * 1.06]}, base=base)
    fit = SimpleNamespace(posterior=post, data=df)
    d = dc.optimize(fit, "tradeoff", n_params=1e9, tokens=1e10)
    assert d.measured_crossing == pytest.approx(0.575)
    assert dc.optimize(post, "tradeoff", n_params=1e9, tokens=1e10).measured_crossing is None
    cur = dc.optimize(fit, "critical-curve", n_params=1e9, tokens_grid=[2.5e9, 1e10, 4e10])
    t = cur.summary().table
    assert np.isfinite(t.loc[[2.5e9, 1e10], "measured_crossing"]).all() and np.isnan(t.loc[4e10, "measured_crossing"])
    assert set(cur.measured_check()) == {2.5e9, 1e10}
    # the curve's check at a budget holds the same one-run interval as the tradeoff's there
    one = d.measured_check()
    assert cur.measured_check()[1e10]["one_run_interval"] == pytest.approx(one["one_run_interval"], abs=1e-9)
    assert t.loc[1e10, "one_run_contains"] == one["one_run_contains"]


def test_the_measured_crossing_is_checked_against_what_the_fit_predicts_the_measurements_show():
    # a predictor that returns the measurements themselves in every draw: the crossing it predicts is the measured
    # one (replicates averaged the same way), so the check agrees with the measured value at its median
    df = _measured_frame({0.2: [2.02], 0.4: [2.03, 2.05], 0.6: [2.08], 0.8: [2.2]})
    exact = lambda rows: np.tile(rows["loss_general"].to_numpy(float), (50, 1))  # noqa: E731
    m = measured_crossing(df, "code", 1e9, 1e10, max_general_increase=0.03, relative=True, predict=exact)
    assert np.allclose(m["predicted_draws"], 0.5)
    chk = check_against(m, np.full(50, 0.9), np.full(50, 1 / 50), 0.9)
    assert chk["agrees"] and not chk["contains"] and chk["pit"] == pytest.approx(0.5)
    assert chk["predicted_interval"] == pytest.approx([0.5, 0.5]) and "predicted_draws" not in chk
    # the same measurements predicted 1.5% lower at every ratio: the fit expects a later crossing, and the
    # measured one sits below every predicted draw
    def low(rows: pd.DataFrame) -> np.ndarray:
        return exact(rows) * np.exp(-0.015 + 0.001 * np.random.default_rng(0).standard_normal((50, len(rows))))

    chk = check_against(measured_crossing(df, "code", 1e9, 1e10, max_general_increase=0.03, relative=True,
                                          predict=low), np.linspace(0.45, 0.55, 50), np.full(50, 1 / 50), 0.9)
    assert chk["contains"] and not chk["agrees"] and chk["pit"] == 0.0 and chk["predicted_interval"][0] > 0.5


def _noisy_measurements(world):
    """A posterior with a little run noise, and measurements at N = 1e9, D = 1e10 it could itself have made."""
    post = jitter_posterior(world, S=400, spread=0.002, sigma=0.004, tau=0.003)
    base = post.base_loss("code", 1e9)
    rng = np.random.default_rng(3)
    law_r = lambda r: float(np.median(law_draws(post, "general", "code", 1e9, 1e10, r)))  # noqa: E731
    df = _measured_frame({r: [law_r(r) * np.exp(0.005 * rng.standard_normal())] for r in (0.1, 0.3, 0.5, 0.7, 0.9)},
                         base=base)
    return post, df


def test_a_decision_predicts_its_measurements_with_their_noise(world):
    # noisy measurements the posterior itself could have made: they agree, and the interval the fit predicts for
    # the measured crossing is wider than r*'s (it carries the runs' noise)
    post, df = _noisy_measurements(world)
    chk = dc.tradeoff(post, n_params=1e9, tokens=1e10, data=df).measured_check()
    assert chk["agrees"] and 0.05 < chk["pit"] < 0.95
    (lo, hi), (p_lo, p_hi) = chk["interval"], chk["predicted_interval"]
    assert p_hi - p_lo > 1.5 * (hi - lo)
    # the same runs 3% lower: a crossing the fit does not predict for them, flagged
    low = df.assign(loss_general=np.where(df["tokens"] > 0, df["loss_general"] * 0.97, df["loss_general"]))
    d = dc.tradeoff(post, n_params=1e9, tokens=1e10, data=low)
    chk = d.measured_check()
    assert not chk["agrees"] and chk["pit"] > 0.95
    assert d.summary().flags[0].startswith("DISAGREES") and "predictive quantile" in d.summary().flags[0]


# ------------------------------------------------------------------------------------ no feasible draw
def test_summary_of_a_decision_without_a_feasible_draw(dcpt):
    d = dc.tradeoff(dcpt, n_params=1e9, tokens=1e10, base_loss=1.0)
    assert d.summary().counts["infeasible"] == dcpt.n_draws
    s = d.summary()
    assert "r_domain" not in s.table.index and list(s.table.index) == ["base_loss"]
    assert s.notes[0].startswith("no posterior draw meets the constraint")
    assert "no posterior draw" in str(s)
    j = d.to_json()
    json.dumps(j)
    assert j["risk_aware"]["feasible"] is False and "r_domain" not in j
    # a table with no defined quantity at all is empty but keeps its columns
    e = dc.Decision("tradeoff", "other", d.inputs, d.posterior.assign(base_loss=np.nan), None, d.curves, d.extras)
    t = e.summary().table
    assert t.empty and list(t.columns) == ["description", "median", "lo", "hi", "mean", "valid_share"]
    json.dumps(e.to_json())
    assert not dc.DecisionSet([d, e]).summary().empty
    from rich.console import Console

    con = Console(width=250, record=True)
    con.print(dc.decision_table(d))
    assert "no posterior draw meets the constraint" in con.export_text()


def test_cpt_predictive_draws_from_a_given_law_mean_keep_the_noise_that_grows_with_the_move(cpt):
    """Held-out scoring passes the law's values it has already (``log_mean``): for the heteroscedastic CPT noise
    the draws must equal the plain call's, and the noise scale must follow the given mean's move from the base."""
    rows = pd.DataFrame({"domain": "python", "n_params": SIZES[1], "tokens": [2e-5, 1e-4, 4e-4],
                         "r_domain": 0.5, "run_id": ["a", "b", "c"]})
    mu = cpt.mean_log_loss(rows, "domain")
    plain = cpt.sample_observations(rows, "domain", seed=5, new_run=False)
    np.testing.assert_array_equal(cpt.sample_observations(rows, "domain", seed=5, new_run=False, log_mean=mu),
                                  plain)
    # the base model's own loss as the mean: no move, the noise is sigma alone; a mean e times lower: a wider one
    log_l0 = np.log(BASE["loss_domain"][1])

    def spread(log_mean):
        got = np.log(cpt.sample_observations(rows, "domain", seed=5, new_run=False, log_mean=log_mean))
        return (got - log_mean).std(axis=0)

    still, moved = spread(np.full_like(mu, log_l0)), spread(np.full_like(mu, log_l0 - 1.0))
    assert still.max() < 0.5 * moved.min()
    np.testing.assert_allclose(cpt.checkpoint_sd(rows, "domain", np.full_like(mu, log_l0)), CPT_NOISE["domain"][0])
    np.testing.assert_allclose(cpt.checkpoint_sd(rows, "domain", np.full_like(mu, log_l0 - 1.0)),
                               np.hypot(CPT_NOISE["domain"][0], CPT_NOISE["domain"][3]))


def test_one_runs_chance_to_stay_within_the_threshold_is_given_beside_the_laws(world):
    def run_probs(post):
        s = dc.tradeoff(post, n_params=1e9, tokens=1e10, max_general_increase=0.02).summary()
        p = s.probabilities
        return (p["law_within_at_median"].value, p["one_run_within_at_median"].value,
                p["one_run_within_at_risk_aware"].value)

    # runs that barely deviate from the law: one run's chance is the law's (0.5 at the median, ~0.9 at the risk-aware r)
    law, med, ra = run_probs(jitter_posterior(world, S=400, spread=0.01, sigma=1e-6, tau=1e-6))
    assert med == pytest.approx(law, abs=0.02) and ra == pytest.approx(0.9, abs=0.02)
    # runs that deviate by ~1.5% (offset and checkpoint noise): at the risk-aware r one run stays within it less often
    law, med, ra = run_probs(jitter_posterior(world, S=400, spread=0.01, sigma=0.01, tau=0.01))
    assert med == pytest.approx(0.5, abs=0.05) and 0.5 < ra < 0.85
    # keyed by stable names in --json, each statement with its sentence and the ratio it is about (no number to
    # parse out of a key)
    d = dc.tradeoff(jitter_posterior(world, S=400, spread=0.01, sigma=0.01, tau=0.01), n_params=1e9, tokens=1e10,
                    max_general_increase=0.02)
    j = json.loads(json.dumps(d.to_json()))["probabilities"]
    assert set(j) == {"law_within_at_median", "one_run_within_at_median", "one_run_within_at_risk_aware",
                      "r_star_at_least_half"}
    assert j["one_run_within_at_risk_aware"]["r_domain"] == pytest.approx(d.extras["risk_aware"]["r_domain"])
    assert j["one_run_within_at_risk_aware"]["statement"].startswith("P(one run at the risk-aware r = ")
    assert j["one_run_within_at_risk_aware"]["value"] == pytest.approx(ra)


def test_the_risk_aware_answer_for_one_run_keeps_that_run_within_the_threshold(world):
    """The largest r whose one run (its offset and noise included) stays within the threshold with probability 0.9:
    the law's risk-aware r when runs barely deviate, smaller when they do, and the probability met at it."""
    from bayes_dcpt.decide.ratio import _run_within

    def answer(post):
        d = dc.tradeoff(post, n_params=1e9, tokens=1e10, max_general_increase=0.02)
        ra = d.extras["risk_aware"]
        return d, ra["r_domain"], ra["one_run"]

    _, law_r, one = answer(jitter_posterior(world, S=400, spread=0.01, sigma=1e-6, tau=1e-6))
    assert one["feasible"] and one["r_domain"] == pytest.approx(law_r, abs=0.01)
    post = jitter_posterior(world, S=400, spread=0.01, sigma=0.01, tau=0.01)
    d, law_r, one = answer(post)
    assert one["feasible"] and one["r_domain"] < law_r - 0.01
    w = np.full(post.n_draws, 1.0 / post.n_draws)
    L0 = d.posterior["base_loss"].to_numpy()
    p_at = float(_run_within(post, "code", 1e9, 1e10, one["r_domain"],
                             law_draws(post, "general", "code", 1e9, 1e10, one["r_domain"]), L0 * 1.02, w))
    assert p_at == pytest.approx(0.9, abs=0.01)
    text = str(d.summary())
    assert f"risk-aware r for one run (P(it stays within) >= 0.9): {one['r_domain']:.4g}" in text
    assert d.to_json()["risk_aware"]["one_run"]["r_domain"] == pytest.approx(one["r_domain"])
    # runs so noisy that no ratio keeps one run within 2% with probability 0.9: said, not a number
    d, _, none = answer(jitter_posterior(world, S=400, spread=0.01, sigma=0.05, tau=0.05))
    assert not none["feasible"] and np.isnan(none["r_domain"]) and none["prob_at_r0"] < 0.9
    # ... and every surface words it the same way: "none", with the reason where there is room for one
    from rich.console import Console

    from bayes_dcpt.cli.asking import print_decisions
    from bayes_dcpt.report.answer_sections import _answer_line

    assert "risk-aware r for one run (P(it stays within) >= 0.9): none" in str(d.summary())
    assert "(for one run: none)" in _answer_line("code", d, 0.9)
    for show in (lambda c: c.print(dc.decision_table(d)), lambda c: print_decisions(c, d, 0.9)):
        con = Console(record=True, width=250)
        show(con)
        assert "no r keeps one run within the threshold with this probability" in con.export_text()


def test_the_ratio_where_one_run_crosses_the_threshold_is_the_crossing_of_simulated_runs(world):
    """The interval printed beside r* for the run a team trains: its quantiles are those of the ratio where a
    simulated run (a law draw shifted by one run's offset and noise) crosses the threshold; it is r*'s when runs
    barely deviate, wider when they do, and its lower end is the risk-aware answer for one run at P = 0.95."""
    from bayes_dcpt.decide.results import ONE_RUN_LABEL

    post = jitter_posterior(world, S=400, spread=0.01, sigma=0.006, tau=0.006)
    d = dc.tradeoff(post, n_params=1e9, tokens=1e10, max_general_increase=0.02)
    tab = d.summary().table
    one, rstar = tab.loc["one_run_crossing"], tab.loc["r_domain"]
    assert one["lo"] < rstar["lo"] - 0.01 and one["hi"] > rstar["hi"] + 0.01
    assert one["median"] == pytest.approx(rstar["median"], abs=0.02)
    # Monte Carlo: per draw, runs whose measured curve is the law times exp(one normal shift) cross where the law
    # crosses the threshold divided by that shift
    grid = np.linspace(0.0, 1.0, 1001)
    L0 = d.posterior["base_loss"].to_numpy()
    lg = law_draws(post, "general", "code", 1e9, 1e10, grid[None, :])
    rows = pd.DataFrame({"domain": "code", "n_params": 1e9, "tokens": 1e10, "r_domain": [0.5], "run_id": ["new"]})
    ve, vu = post.measurement_variance(rows, "general")
    rng = np.random.default_rng(0)
    shift = np.exp(rng.standard_normal((post.n_draws, 100)) * np.sqrt(ve + vu))  # (S, runs)
    below = lg[:, None, :] * shift[:, :, None] <= (L0 * 1.02)[:, None, None]
    crossing = np.where(below.any(axis=2), grid[len(grid) - 1 - np.argmax(below[:, :, ::-1], axis=2)], 0.0)
    sim = np.quantile(crossing, (0.05, 0.5, 0.95))
    np.testing.assert_allclose([one["lo"], one["median"], one["hi"]], sim, atol=0.01)
    # its lower end is the one-run risk-aware answer at P = 0.95
    at95 = dc.tradeoff(post, n_params=1e9, tokens=1e10, max_general_increase=0.02, prob=0.95)
    assert at95.extras["risk_aware"]["one_run"]["r_domain"] == pytest.approx(one["lo"], abs=1e-9)
    # the critical curve gives the same interval at each budget
    curve = dc.critical_ratio_curve(post, n_params=1e9, tokens_grid=[1e9, 1e10], max_general_increase=0.02)
    np.testing.assert_allclose(curve.summary().table.loc[1e10, ["one_run_lo", "one_run_hi"]].to_numpy(float),
                               [one["lo"], one["hi"]])
    # runs that barely deviate: r*'s interval
    quiet = dc.tradeoff(jitter_posterior(world, S=400, spread=0.01, sigma=1e-6, tau=1e-6), n_params=1e9,
                        tokens=1e10, max_general_increase=0.02).summary().table
    np.testing.assert_allclose(quiet.loc["one_run_crossing", ["lo", "hi"]].to_numpy(float),
                               quiet.loc["r_domain", ["lo", "hi"]].to_numpy(float), atol=0.005)
    # shown, and in the JSON, under its name
    assert ONE_RUN_LABEL in str(d.summary())
    from bayes_dcpt.report.answer_sections import _answer_line

    assert f"one run crosses the threshold at r = {one['lo']:.3f} to {one['hi']:.3f} (90%)" in _answer_line(
        "code", d, 0.9)
    assert d.to_json()["one_run_crossing"]["lo"] == pytest.approx(one["lo"])


def test_a_measured_crossing_is_checked_against_the_one_run_interval_too(world):
    post, df = _noisy_measurements(world)
    d = dc.tradeoff(post, n_params=1e9, tokens=1e10, data=df)
    chk = d.measured_check()
    tab = d.summary().table
    assert chk["one_run_interval"] == pytest.approx(list(tab.loc["one_run_crossing", ["lo", "hi"]]))
    assert chk["one_run_contains"] == (chk["one_run_interval"][0] <= chk["crossing"] <= chk["one_run_interval"][1])
    low = df.assign(loss_general=np.where(df["tokens"] > 0, df["loss_general"] * 0.97, df["loss_general"]))
    assert not dc.tradeoff(post, n_params=1e9, tokens=1e10, data=low).measured_check()["one_run_contains"]


def test_the_predictive_check_of_a_measured_crossing_holds_with_few_draws(world):
    """With a handful of draws the check draws several sets of new runs per draw: its predicted interval is an
    interval, not a few draws' points, and it agrees where the full posterior does (before: one replicate per draw,
    and a one-draw posterior said DISAGREES with an interval [x, x])."""
    post, df = _noisy_measurements(world)
    full = dc.tradeoff(post, n_params=1e9, tokens=1e10, data=df).measured_check()
    for k in (1, 3):
        few = dc.tradeoff(post.subset(np.arange(k)), n_params=1e9, tokens=1e10, data=df).measured_check()
        (lo, hi), (f_lo, f_hi) = few["predicted_interval"], full["predicted_interval"]
        assert hi - lo > 0.5 * (f_hi - f_lo)
        assert few["agrees"] and full["agrees"]


def _few_infeasible(S=4000, k=5):
    """A tradeoff decision over ``S`` draws of which ``k`` find no feasible ratio (r* undefined there)."""
    from bayes_dcpt.decide.results import Decision
    from bayes_dcpt.decide.wording import probability

    rng = np.random.default_rng(0)
    feasible = np.ones(S, bool)
    feasible[:k] = False
    r = np.where(feasible, rng.uniform(0.4, 0.8, S), np.nan)
    post = pd.DataFrame({"draw": np.arange(S), "r_domain": r, "feasible": feasible,
                         "always_satisfied": np.zeros(S, bool)})
    extras = {"counts": {"n_draws": S, "infeasible": k},
              "risk_aware": {"prob": 0.9, "r_domain": 0.45, "feasible": True, "method": "quantile"},
              "probabilities": {"law_within_at_median": probability("law_within_at_median", 0.5, 0.6)}}
    return Decision("tradeoff", "code", {"relative": True}, post, extras=extras)


def test_a_few_infeasible_draws_are_not_worded_as_0_percent():
    """5 infeasible draws of 4,000 (0.125%) read "0.1% ... (5 of 4000 draws)", never "0%" (before: "0% of the
    posterior weight finds no ratio"); shares that round to nothing or everything say so with < and >."""
    note = next(n for n in _few_infeasible().summary().notes if "finds no ratio" in n)
    assert note.startswith("0.1% of the posterior weight (5 of 4000 draws) finds no ratio"), note
    note = next(n for n in _few_infeasible(k=1).summary().notes if "finds no ratio" in n)
    assert note.startswith("<0.1% of the posterior weight (1 of 4000 draws)"), note
    from bayes_dcpt.decide.wording import percent

    assert [percent(x) for x in (0, 1e-5, 0.004, 0.25, 0.995, 0.99999, 1)] == \
        ["0%", "<0.1%", "0.4%", "25%", "99.5%", ">99.9%", "100%"]


def test_the_decision_table_names_each_number_for_what_it_is():
    """The column of medians, single ratios and probabilities is headed "estimate" with a legend (wide), and the
    stacked layout says "median" only beside an interval, "value" for a risk-aware ratio and "probability" for a
    probability (before: "median 0.500" on every probability row)."""
    from rich.console import Console

    from bayes_dcpt.cli.asking import print_decisions

    d = _few_infeasible()
    con = Console(record=True, width=250)
    print_decisions(con, d, 0.9)
    wide = con.export_text()
    header = next(ln for ln in wide.splitlines() if ln.startswith("quantity"))
    assert "estimate" in header and "median" not in header, wide
    assert "estimate: the posterior median where a 90% interval follows; a single ratio on risk-aware rows, a " \
           "probability on P(...) rows" in wide
    con = Console(record=True, width=60)
    print_decisions(con, d, 0.9)
    lines = con.export_text().splitlines()
    assert not any(ln.startswith("quantity") for ln in lines)  # the stacked layout
    cells = {lines[i]: lines[i + 1].strip() for i in range(len(lines) - 1) if lines[i + 1].startswith("   ")
             and not lines[i].startswith(" ")}
    assert cells["optimal domain share r*"].startswith("median ") and "90% interval" in cells[
        "optimal domain share r*"]
    assert cells["risk-aware r (P(constraint holds) >= 0.9)"] == "value 0.45"
    assert cells["P(constraint holds at the median r* = 0.6000)"] == "probability 0.500"
    assert all("90% interval" in c for c in cells.values() if c.startswith("median")), cells
    con = Console(record=True, width=250)  # the library's rich table: the same header and legend
    con.print(dc.decision_table(d))
    text = con.export_text()
    assert "estimate" in text and "estimate: the posterior median where a 90% interval follows" in text
