"""Measured losses against a fit's bands (``posterior.heldout``, ``Fit.check_predictions``, ``predict``'s check).

The check must judge only what is a test of extrapolation (held-out runs, enough of them), say which side the
misses fall on, and never judge rows the fit had.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt.posterior.heldout import MIN_RUNS, band_range, check_predictions


def _pred(inside: int, below: int = 0, above: int = 0, *, domain: str = "code", runs: int | None = None,
          start: int = 0, tokens: float = 1e6) -> pd.DataFrame:
    """Predictions of ``inside + below + above`` runs (one checkpoint each): band [0.95, 1.05] around 1.0."""
    n = inside + below + above
    y = np.r_[np.ones(inside), np.full(below, 0.9), np.full(above, 1.2)]
    ids = [f"{domain}|{i % (runs or n) + start}" for i in range(n)]
    return pd.DataFrame({"domain": domain, "n_params": 1e6, "tokens": tokens + np.arange(n), "r_domain": 0.5,
                         "run_id": ids, "loss_general": y, "loss_general_mean": 1.0, "loss_general_lo": 0.95,
                         "loss_general_hi": 1.05})


def test_verdicts_follow_the_range_and_name_the_side():
    assert band_range(0.9) == pytest.approx((0.80, 0.95))
    ok = check_predictions(_pred(9, 1), 0.9)  # 0.90 inside
    assert ok.ok is True and ok.problems == []
    assert ok.table.set_index("domain").loc["code", "verdict"] == "calibrated"
    assert "hold them as calibrated" in ok.summary()

    low = check_predictions(_pred(6, 0, 4), 0.9)  # 0.60 inside, every miss above the band
    assert low.ok is False
    row = low.table.set_index("domain").loc["code"]
    assert row["verdict"] == "too narrow" and row["above"] == pytest.approx(0.4) and row["below"] == 0
    assert row["bias"] < 0  # the prediction is below the measurements
    assert "the law predicts too low" in low.problems[0] and "MISCALIBRATED" in low.summary()
    high = check_predictions(_pred(6, 4), 0.9)
    assert "the law predicts too high" in high.problems[0]

    wide = check_predictions(_pred(20), 0.9)  # 1.00 inside
    assert wide.ok is False and "bands too wide" in wide.problems[0]


def test_a_miss_few_runs_cannot_establish_is_said_but_not_flagged():
    """Seven runs at 0.71 inside allow a 90% band (plausible 0.43-0.93): outside the range, not established."""
    c = check_predictions(_pred(5, 0, 2), 0.9)
    row = c.table.iloc[0]
    assert row["verdict"] == "too narrow" and not row["clear"]
    assert row["plausible_lo"] < 0.5 and row["plausible_hi"] > 0.9
    assert c.ok is True and c.problems == [] and len(c.outside) == 1
    assert "by less than its few runs can establish" in c.summary() and "MISCALIBRATED" not in c.summary()
    assert "(not established)" in str(c)


def test_plausible_coverage_counts_runs_not_checkpoints():
    from bayes_dcpt.posterior.heldout import plausible_coverage

    lo, hi = plausible_coverage(np.r_[np.ones(9), 0.0])  # Jeffreys' Beta(9.5, 1.5)
    assert (lo, hi) == pytest.approx((0.669, 0.982), abs=0.002)
    # the same share from 10 runs of 10 checkpoints is no more evidence than from 10 runs of one
    many = check_predictions(_pred(90, 0, 10, runs=10), 0.9).table.iloc[0]
    assert (many["plausible_lo"], many["plausible_hi"]) == pytest.approx((lo, hi))


def test_few_runs_are_shown_not_judged():
    """Checkpoints of one run share its offset: coverage from fewer than MIN_RUNS runs is not judged."""
    c = check_predictions(_pred(2, 0, 8, runs=MIN_RUNS - 1), 0.9)
    assert c.table.set_index("domain").loc["code", "verdict"] == "too few runs"
    assert c.ok is None and c.problems == [] and "too few held-out runs" in c.summary()


def test_rows_the_fit_had_are_scored_apart_and_never_judged():
    held, had = _pred(6, 0, 4, tokens=2e6), _pred(10, domain="code", start=100)
    both = pd.concat([held, had], ignore_index=True)
    c = check_predictions(both, 0.9, fitted=had)
    t = c.table.set_index(["domain", "where"])
    assert t.loc[("code", "held out"), "rows"] == 10 and t.loc[("code", "in the fit's data"), "rows"] == 10
    assert t.loc[("code", "in the fit's data"), "verdict"] == "in the fit's data"
    assert len(c.problems) == 1 and "10 rows in the fit's data" in c.summary()
    only_fit = check_predictions(had, 0.9, fitted=had)
    assert only_fit.ok is None and "all 10 rows are in the fit's data" in only_fit.summary()
    # without run names, a measurement is the fit's when its domain, N, D and r are
    no_ids = check_predictions(both.drop(columns="run_id"), 0.9, fitted=had.drop(columns="run_id"))
    assert (no_ids.table["where"] == "held out").sum() == 1  # one domain: no every-domain row
    # unnamed runs are one per (domain, N, r, seed): two seeds at one point are two runs
    two = pd.concat([_pred(5, tokens=3e6), _pred(5, tokens=3e6)], ignore_index=True).drop(columns="run_id")
    assert check_predictions(two.assign(seed=np.repeat([0, 1], 5)), 0.9).table.iloc[0]["runs"] == 2
    assert check_predictions(two, 0.9).table.iloc[0]["runs"] == 1
    same_point = check_predictions(_pred(10).drop(columns="run_id"), 0.9, fitted=had.drop(columns="run_id"))
    assert (same_point.table["where"] == "in the fit's data").all()


def test_several_domains_are_judged_each_on_its_own():
    both = pd.concat([_pred(9, 1, domain="code"), _pred(5, 5, domain="law")], ignore_index=True)
    c = check_predictions(both, 0.9)
    t = c.table.set_index("domain")
    assert t.loc["code", "verdict"] == "calibrated" and t.loc["law", "verdict"] == "too narrow"
    assert t.loc["*", "rows"] == 20 and t.loc["*", "clear"]  # every domain together: 0.70 from 20 runs
    assert [p.split(":")[0] for p in c.problems] == ["general loss, law", "general loss, every domain"]
    d = json.loads(json.dumps(c.to_dict()))
    assert d["ok"] is False and d["range"] == pytest.approx([0.8, 0.95]) and len(d["groups"]) == 3


@pytest.fixture(scope="module")
def replicate(world3) -> pd.DataFrame:
    """New runs of the simulated world (another seed; their own run names), measured 15% above what it says."""
    from tests.conftest import probe_grid

    new = world3.simulate(probe_grid(), seed=2)
    new = new[new["tokens"] > 0].copy()
    new["run_id"] = new["run_id"] + "|replicate"
    for t in ("general", "domain"):
        new[f"loss_{t}"] *= 1.15
    return new.reset_index(drop=True)


def test_fit_flags_runs_its_law_misses(small_fit, df3, replicate):
    c = small_fit.check_predictions(replicate)
    assert c.ok is False and (c.table["where"] == "held out").all()
    for t in ("general", "domain"):
        row = c.table.set_index(["target", "domain"]).loc[(t, "code")]
        assert row["verdict"] == "too narrow" and row["above"] > 0.5 and row["bias"] < -5
    # the same new runs as the world measures them: the fit's bands hold them
    fair = replicate.assign(**{f"loss_{t}": replicate[f"loss_{t}"] / 1.15 for t in ("general", "domain")})
    assert small_fit.check_predictions(fair).ok is True
    own = small_fit.check_predictions(df3)
    assert own.ok is None and (own.table["where"] == "in the fit's data").all()


def test_predict_prints_and_carries_the_check(cli, small_fit_path, replicate, tmp_path):
    grid = tmp_path / "later_runs.csv"
    replicate.to_csv(grid, index=False)
    code, out, err = cli("predict", small_fit_path, grid, "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert "measured losses against the 90% predictive bands" in out
    assert "FLAG: MISCALIBRATED" in out and "the law predicts too low" in out
    code, out, _ = cli("predict", small_fit_path, grid, "--json")
    check = json.loads(out)["check"]
    assert check["ok"] is False and {g["verdict"] for g in check["groups"]} >= {"too narrow"}
    code, out, err = cli("predict", small_fit_path, grid, "--kind", "mean", "--json")
    assert "check" not in json.loads(out)  # the law's own band is not meant to hold single runs
    assert "checking them needs the default --kind predictive" in err


def test_baselines_are_scored_on_the_same_rows_beside_the_fit():
    held = _pred(9, 1)
    better = pd.DataFrame({"loss_general_mean": held["loss_general"] * 1.001})  # nearly exact
    worse = pd.DataFrame({"loss_general_mean": held["loss_general"] * 1.2})
    c = check_predictions(held, 0.9, baselines={"L3": worse, "L1": better})
    row = c.table.iloc[0]
    assert c.baselines == ["L3", "L1"] and row["mape_L1"] == pytest.approx(0.1) and row["mape_L3"] == pytest.approx(20)
    assert not bool(row["beats_baselines"])
    assert c.worse_than_baselines == ["general loss, code: the point fit of L1 predicts these runs better (0.10% "
                                      f"against {row['mape']:.2f}%)"]
    assert "point fits L3 / L1: general 20.00 / 0.10%" in c.summary()
    only_worse = check_predictions(held, 0.9, baselines={"L3": worse})
    assert bool(only_worse.table.iloc[0]["beats_baselines"]) and only_worse.worse_than_baselines == []


def test_point_baselines_are_the_papers_fit_of_each_domain(df3):
    from bayes_dcpt.fitting.baselines import point_baselines
    from bayes_dcpt.fitting.pointfit import fit_point

    rows = df3[df3["tokens"] > 0].reset_index(drop=True)
    base = point_baselines(df3, rows, laws=("L1",))
    direct = fit_point(df3, "L1", "domain", domain="code").predict(rows)["loss_domain_pred"].to_numpy()
    np.testing.assert_allclose(base["L1"]["loss_domain_mean"].to_numpy(), direct)
    assert np.isfinite(base["L1"]["loss_general_mean"]).all()


def test_predict_baseline_flag(cli, small_fit_path, replicate, tmp_path):
    grid = tmp_path / "later_runs.csv"
    replicate.to_csv(grid, index=False)
    code, out, _ = cli("predict", small_fit_path, grid, "--baseline", "--json")
    groups = json.loads(out)["check"]["groups"]
    assert code == 0 and all(np.isfinite(g["mape_L3"]) and np.isfinite(g["mape_L1"]) for g in groups)
    assert all(isinstance(g["beats_baselines"], bool) for g in groups)
    code, out, _ = cli("predict", small_fit_path, grid, "--baseline")
    assert code == 0 and "MAPE % L3 / L1" in out
    code, _, err = cli("predict", small_fit_path, grid, "--baseline", "--kind", "mean")
    assert code == 2 and "--baseline needs --kind predictive" in err


def test_fit_says_how_far_off_its_law_was_on_the_data_it_held_out():
    """``fit`` and the report say each held-out refit's error, not only that refits were made: how the law
    extrapolated within the user's own data is the first thing to know before trusting it further out."""
    from pathlib import Path

    import bayes_dcpt as bd
    from bayes_dcpt.report.wording import extrapolation_line

    f = bd.load_fit(Path(__file__).parents[1] / "models" / "example_cpt.nc")
    line = extrapolation_line(f)
    rec = {(r["split"], r["target"]): r["mape"] for r in f.extrapolation["holdout"]}
    assert (f"Held out within the data, the law's predictions were off by {rec[('tokens', 'general')]:.1f}% "
            f"(general loss) and {rec[('tokens', 'domain')]:.1f}% (domain loss) over the last third of tokens") in line
    assert f"{rec[('size', 'domain')]:.1f}% (domain loss) over the largest size" in line


def test_report_checks_runs_measured_since_the_fit(cli, small_fit, small_fit_path, replicate, tmp_path):
    """``report --measured``: a section with the check and each domain's runs over the predictive bands, the key
    answers say the verdict, and --json carries the check; --baseline without runs is refused."""
    from bayes_dcpt.report.build import build_report

    rep = build_report(small_fit, out=tmp_path / "r.html", measured=replicate, plan=False)
    html = (tmp_path / "r.html").read_text()
    assert rep.check is not None and rep.check.ok is False
    assert "Runs measured since the fit: did the predictions hold?" in html and "MISCALIBRATED" in html
    assert "code: measured runs against the predicted bands" in html  # the figure's alt text
    grid = tmp_path / "later_runs.csv"
    replicate.to_csv(grid, index=False)
    code, out, err = cli("report", small_fit_path, "--out", tmp_path / "r2.html", "--measured", grid, "--no-plan",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["check"]["ok"] is False
    code, _, err = cli("report", small_fit_path, "--out", tmp_path / "r3.html", "--baseline")
    assert code == 2 and "--baseline scores the point fits on the runs of --measured" in err
    unknown = replicate.assign(domain="law")
    with pytest.raises(Exception, match="unknown domain"):
        build_report(small_fit, out=tmp_path / "r4.html", measured=unknown, plan=False)


def test_losses_the_law_does_not_describe_are_not_scored():
    """A law fitted without the losses measured with none of their own corpus (the D-CPT law: domain loss at r = 0,
    general loss at r = 1) is not judged on them."""
    held = pd.concat([_pred(9, 1), _pred(0, 10, start=50).assign(r_domain=0.0)], ignore_index=True)
    held["loss_domain"], held["loss_domain_mean"] = held["loss_general"], 1.0
    held["loss_domain_lo"], held["loss_domain_hi"] = 0.95, 1.05
    every = check_predictions(held, 0.9).table.set_index("target")
    assert every.loc["domain", "rows"] == 20 and every.loc["general", "rows"] == 20
    fitted_only = check_predictions(held, 0.9, zero_ratio=False).table.set_index("target")
    assert fitted_only.loc["domain", "rows"] == 10 and fitted_only.loc["domain", "verdict"] == "calibrated"
    assert fitted_only.loc["general", "rows"] == 20  # r = 0 holds all of the general loss's own corpus


def test_checkpoints_inside_the_lr_warmup_are_not_scored_when_the_fit_leaves_them_out():
    """Each run's first checkpoint is inside its LR warm-up, where the law is not fitted: it misses the band, but
    a fit with burn_in="warmup" is not judged on it, and the summary says how many rows it left out."""
    late = _pred(12).assign(lr=1e-3)
    early = _pred(0, 12).assign(lr=5e-4, tokens=lambda d: d["tokens"] - 5e5)  # the same runs, earlier, below
    held = pd.concat([early, late], ignore_index=True)
    every = check_predictions(held, 0.9)
    assert every.table.loc[0, "rows"] == 24 and every.ok is False and every.warmup_rows == 0
    after = check_predictions(held, 0.9, warmup=True)
    assert after.table.loc[0, "rows"] == 12 and after.ok and after.warmup_rows == 12
    assert "12 rows inside their runs' LR warm-up not scored" in after.summary()
    assert after.to_dict()["warmup_rows"] == 12
    # without an lr column nothing can be told apart: every row is scored
    assert check_predictions(held.drop(columns="lr"), 0.9, warmup=True).warmup_rows == 0


def test_measured_runs_are_shaded_where_the_fit_had_no_data(small_fit, df3):
    """Drawn over the bands, runs measured after the fit are shaded from where the fit's data end (their bands are
    an extrapolation there), not from where the drawn rows end."""
    from bayes_dcpt.posterior.extrapolation import domain_envelope
    from bayes_dcpt.viz.curves import loss_curves

    early = df3[(df3["tokens"] > 0) & (df3["tokens"] <= df3["tokens"].median())]
    n = float(early["n_params"].max())

    def span_start(**kw):
        ax = loss_curves(small_fit, domain="code", data=early, n_params=[n], targets=["general"], extend=50.0,
                         **kw).axes[0]
        (patch,) = ax.patches  # axvspan: a Rectangle (matplotlib >= 3.9) or a Polygon (3.8); its left edge
        return float(np.atleast_2d(patch.get_xy())[:, 0].min()), ax.get_xlabel()

    drawn, label = span_start()
    fitted, fit_label = span_start(shade_from_fit=True)
    env = domain_envelope(small_fit.posterior.ctx["envelope"], "code")
    assert drawn == pytest.approx(early.loc[early["n_params"] == n, "tokens"].max())
    assert fitted == pytest.approx(float(env.tokens_limit(np.asarray(n)))) and fitted > drawn
    assert "beyond the fit's data" in fit_label and "beyond the data)" in label


def test_a_fit_says_whether_it_left_the_warmup_out(small_fit):
    """The posterior carries the fit's burn-in, so its check and its updates skip what its fit skipped."""
    from bayes_dcpt.fitting.base import config_ctx
    from bayes_dcpt.fitting.config import FitConfig

    assert small_fit.config.burn_in == "warmup" and small_fit.posterior.leaves_out_warmup
    assert "burn_in_warmup" not in config_ctx({}, FitConfig(burn_in="none"))


def test_one_display_of_the_check_for_the_terminal_and_the_report():
    """predict and the report show the same cells: figures formatted once, the established miss marked."""
    held = pd.concat([_pred(3, 12, domain="code"), _pred(14, 1, domain="law", start=40)], ignore_index=True)
    base = {"L3": held[["loss_general_mean"]] * 1.1}
    check = check_predictions(held, 0.9, baselines=base)
    shown = check.display()
    assert list(shown.columns) == ["target", "domain", "rows are", "runs", "points", "MAPE %", "bias %", "inside",
                                   "plausible", "below / above", "band %", "MAPE % L3", "verdict"]
    code = shown[shown["domain"] == "code"].iloc[0]
    assert code["inside"] == "0.20" and code["verdict"] == "too narrow, clearly" and code["runs"] == "15"
    mape_l3 = check.table.set_index("domain").loc["code", "mape_L3"]
    assert code["bias %"].startswith("+") and code["MAPE % L3"] == f"{mape_l3:.2f}" != code["MAPE %"]
    assert shown[shown["domain"] == "law"].iloc[0]["verdict"] == "calibrated"
