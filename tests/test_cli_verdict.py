"""A bad fit cannot slip through: fit's exit codes, the verdict it prints, the warnings and --json of the commands
that read a fit, remedies in CLI words, decisions at a size nobody probed, law=auto.

The fits are the session's small NUTS fit with its diagnostics or adequacy replaced (no sampling here): ``bd.fit``
is stubbed to return them, so ``bayes-dcpt fit`` runs end to end in seconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pandas as pd
import pytest

from bayes_dcpt.cli import EXIT_MISFIT, EXIT_SAMPLER
from bayes_dcpt.posterior.adequacy import Adequacy, AdequacyCheck

DIAG_KEYS = {"ok", "sampler_ok", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "adequate", "misfit"}


def _variant(fit, *, sampler_bad: bool = False, misfit: bool = False):
    """A copy of ``fit`` whose sampler checks fail and/or whose law does not describe its data."""
    from bayes_dcpt.fitting import Fit

    d = fit.diagnostics(warn=False)
    d = replace(d, rhat_max=1.2 if sampler_bad else 1.001, ess_bulk_min=30.0 if sampler_bad else 900.0,
                ess_tail_min=900.0, divergences=0, bfmi_min=0.9,
                problems=("R-hat 1.200 > 1.01", "ESS 30 < 400") if sampler_bad else (), misfit=())
    out = Fit(fit.data, fit.law, fit.config, fit.idata, sampler_config=fit.sampler_config, diagnostics=d,
              design=fit._design)
    dom = fit.domains[0]
    n = float(fit.data["n_params"].max())
    checks = [AdequacyCheck("coverage", "general", dom, n, 0.9, "0.90 +- 0.05", 0.5, True, "ok")]
    if misfit:
        checks.append(AdequacyCheck("trend_tokens", "domain", dom, n, 250.0, "chi2(2)", 1e-50, False,
                                    "within-run residuals along log D: chi2(2) = 250.0"))
    out._adequacy = Adequacy(tuple(checks), 0.01, 0.9)
    return out


@pytest.fixture(scope="module")
def fits(small_fit, tmp_path_factory):
    d = tmp_path_factory.mktemp("verdict")
    out = {}
    for name, kw in {"good": {}, "sampler": {"sampler_bad": True}, "misfit": {"misfit": True},
                     "both": {"sampler_bad": True, "misfit": True}}.items():
        f = _variant(small_fit, **kw)
        out[name] = (f, f.save(d / f"{name}.nc"))
    return out


@pytest.fixture
def data_csv(tmp_path, df3):
    p = tmp_path / "d.csv"
    df3.to_csv(p, index=False)
    return p


def _stub_fit(monkeypatch, result, calls=None):
    import bayes_dcpt.fitting as fitting

    def fake(df, law, target, **kw):
        if calls is not None:
            calls.append({"law": law, "target": target, **kw})
        return result

    monkeypatch.setattr(fitting, "fit", fake)


@pytest.mark.parametrize("name, code", [("good", 0), ("sampler", EXIT_SAMPLER), ("misfit", EXIT_MISFIT),
                                        ("both", EXIT_SAMPLER)])
def test_fit_exit_code_says_what_is_wrong_and_the_file_is_written(cli, monkeypatch, fits, data_csv, tmp_path, name,
                                                                  code):
    _stub_fit(monkeypatch, fits[name][0])
    out = tmp_path / "f.nc"
    rc, stdout, err = cli("fit", data_csv, "--out", out)
    assert rc == code, (stdout, err)
    assert out.is_file()
    assert "sampler:" in stdout and "adequacy:" in stdout and f"fit written to {out}" in stdout
    if code:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and f"exit code {code}" in lines[0], err
        assert "--allow-bad-fit" in lines[0]
        assert "what to try:" in stdout
    else:
        assert err.strip() == ""
    if name in ("misfit", "both"):
        assert "MISFIT" in stdout and "misses" not in err
        assert "--law cpt" in stdout  # the remedy, in CLI words
    if name == "sampler":  # checks that pass on chains that disagree vouch for nothing
        assert "adequacy: not established" in stdout and "adequacy: OK" not in stdout
    if name == "good":
        assert "adequacy: OK" in stdout
    rc, stdout, err = cli("fit", data_csv, "--out", out, "--allow-bad-fit")
    assert rc == 0
    if code:
        assert err.startswith("warning:") and "--allow-bad-fit" in err


def test_fit_json_carries_the_verdict_and_exit_code(cli, monkeypatch, fits, data_csv, tmp_path):
    _stub_fit(monkeypatch, fits["misfit"][0])
    rc, stdout, _ = cli("fit", data_csv, "--out", tmp_path / "f.nc", "--json")
    assert rc == EXIT_MISFIT
    js = json.loads(stdout)
    assert js["exit_code"] == EXIT_MISFIT
    assert DIAG_KEYS <= set(js["diagnostics"])
    assert js["diagnostics"]["sampler_ok"] is True and js["diagnostics"]["adequate"] is False
    assert js["diagnostics"]["misfit"] and js["adequacy"]["n_failed"] == 1
    assert any(r["parameter"].startswith("E[") for r in js["summary"])


def test_fit_passes_cli_options_to_the_fit(cli, monkeypatch, fits, data_csv, tmp_path):
    calls: list[dict] = []
    _stub_fit(monkeypatch, fits["good"][0], calls)
    rc, _, err = cli("fit", data_csv, "--out", tmp_path / "f.nc", "--law", "cpt", "--target-accept", "0.95",
                     "--domain-levels", "pooled", "--draws", "10")
    assert rc == 0, err
    assert calls[-1]["law"] == "cpt" and calls[-1]["sampler_kwargs"] == {"target_accept": 0.95}
    assert calls[-1]["domain_levels"] == "pooled" and calls[-1]["draws"] == 10
    rc, _, err = cli("fit", data_csv, "--out", tmp_path / "f.nc", "--law", "auto", "--auto-laws", "L3,cpt")
    assert calls[-1]["law"] == "auto" and calls[-1]["candidates"] == ["L3", "cpt"]
    assert "screen" not in calls[-1]  # law="auto" screens by default
    rc, _, err = cli("fit", data_csv, "--out", tmp_path / "f.nc", "--law", "auto", "--no-screen")
    assert calls[-1]["law"] == "auto" and calls[-1]["screen"] is False


def test_fit_domains_fits_only_the_named_domains(cli, monkeypatch, fits, data_csv, df3, tmp_path):
    seen: list = []
    import bayes_dcpt.fitting as fitting

    monkeypatch.setattr(fitting, "fit", lambda df, law, target, **kw: seen.append(df) or fits["good"][0])
    names = sorted(df3["domain"].astype(str).unique())
    rc, _, err = cli("fit", data_csv, "--out", tmp_path / "f.nc", "--domains", names[0])
    assert rc == 0, err
    assert set(seen[-1]["domain"].astype(str)) == {names[0]}
    assert len(seen[-1]) == int((df3["domain"].astype(str) == names[0]).sum())  # its base rows too
    assert (seen[-1]["tokens"] == 0).any() == (df3.loc[df3["domain"] == names[0], "tokens"] == 0).any()
    rc, _, err = cli("fit", data_csv, "--out", tmp_path / "f.nc", "--domains", f"{names[0]},nope")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "--domains" in lines[0] and "'nope'" in lines[0], err
    assert names[0] in lines[0]  # the domains the data have


def test_a_joint_l_law_misfit_suggests_one_fit_per_domain():
    """Fitted together the domains share noise and shape parameters: one domain's misfit degrades the others'."""
    from bayes_dcpt.fitting.diagnostics import misfit_remedies

    a = Adequacy((AdequacyCheck("trend_ratio", "domain", "x", 1.0, 1.0, "", 0.0, False, "m"),), 0.01, 0.9)

    def says(family, n_domains):
        return any("one fit per domain" in r for r in misfit_remedies(a, family, n_domains))

    assert says("dcpt", 2) and not says("dcpt", 1)
    assert not says("cross-domain", 3) and not says("cpt", 3)


@pytest.mark.parametrize("args, needle", [
    (("--law", "cpt-dynamics"), "fit-dynamics"),
    (("--law", "mixing"), "not fitted by"),
    (("--auto-laws", "L3,L1"), "--law auto"),
    (("--law", "auto", "--auto-laws", "L3"), "at least two"),
    (("--law", "cpt", "--no-screen"), "--law auto"),
    (("--domain-levels", "shared"), "--domain-levels"),
    (("--target-accept", "1.5"), "--target-accept"),
])
def test_fit_option_errors_name_the_option(cli, data_csv, tmp_path, args, needle):
    rc, _, err = cli("fit", data_csv, "--out", tmp_path / "f.nc", *args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and needle in lines[0], err


def test_law_auto_prints_every_candidate_with_weight_and_verdict(cli, monkeypatch, fits, data_csv, tmp_path):
    from bayes_dcpt.fitting.auto_fit import AutoFit

    good, misfit = fits["good"][0], fits["misfit"][0]
    comp = pd.DataFrame({"rank": [0, 1], "elpd": [100.0, 90.0], "se": [5.0, 6.0], "weight": [0.8, 0.2]},
                        index=["L3", "L1"])
    # the stacked posterior's own checks decide the verdict (here: they fail, as L1's do)
    auto = AutoFit({"L3": good, "L1": misfit}, comp, {"L3": 0.8, "L1": 0.2}, {"L3": [], "L1": ["R2 (general)"]},
                   good.posterior, _adequacy=misfit.adequacy())
    _stub_fit(monkeypatch, auto)
    rc, stdout, _err = cli("fit", data_csv, "--law", "auto", "--out", tmp_path / "auto.nc")
    assert "candidate laws" in stdout
    table = stdout.split("candidate laws")[1].split("parameters of")[0]
    # one entry per law (laid out vertically at narrow widths): its weight, then its two verdicts
    assert re.search(r"L3\s+(weight\s+)?0\.8\b.*?sampler\s+ok\s+adequacy\s+ok", table, re.S), table
    assert re.search(r"L1\s+(weight\s+)?0\.2\b.*?adequacy\s+MISFIT", table, re.S), table
    assert rc == EXIT_MISFIT  # L1 carries weight and misses the data
    rc, stdout, _ = cli("fit", data_csv, "--law", "auto", "--out", tmp_path / "auto.nc", "--json")
    js = json.loads(stdout)
    assert {r["law"] for r in js["laws"]} == {"L3", "L1"} and js["diagnostics"]["per_law"]["L1"]["adequate"] is False


def test_laws_lists_cpt_and_what_fits_it(cli):
    rc, out, _ = cli("laws")
    assert rc == 0
    assert re.search(r"^cpt\b", out, re.M) and "fit --law cpt" in out and "auto" in out


# ------------------------------------------------------------------------- commands that read a fit
@pytest.mark.parametrize("cmd", [
    ("predict", "{fit}", "{data}", "--json"),
    ("optimize", "{fit}", "--n-params", "{n}", "--tokens", "1e10", "--json"),
    ("suggest", "{fit}", "--n-params", "{n}", "--tokens", "1e10", "-k", "1", "--json"),
    ("report", "{fit}", "--out", "{tmp}/r.html", "--no-plan", "--dpi", "40", "--json"),
])
def test_commands_on_a_bad_fit_warn_and_carry_the_diagnostics(cli, fits, data_csv, tmp_path, small_fit, cmd):
    n = str(float(small_fit.data["n_params"].max()))
    for name in ("misfit", "good"):
        argv = [a.format(fit=fits[name][1], data=data_csv, n=n, tmp=tmp_path) for a in cmd]
        rc, out, err = cli(*argv)
        assert rc == 0, err
        js = json.loads(out)
        assert DIAG_KEYS <= set(js["diagnostics"]), js["diagnostics"]
        assert js["diagnostics"]["adequate"] is (name == "good")
        warned = [ln for ln in err.splitlines() if ln.startswith("warning:")]
        if name == "misfit":
            assert len(warned) == 1 and "does not describe the data" in warned[0], err
        else:
            assert not warned, err


def test_decisions_need_the_run_and_name_the_options(cli, fits):
    path = fits["good"][1]
    for argv in (("optimize", path), ("suggest", path)):
        rc, _, err = cli(*argv)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1, err
        assert "--n-params and --tokens" in lines[0] and "TypeError" not in err and "n_params" not in lines[0]


def test_a_size_nobody_probed_takes_the_base_loss_law_or_base_loss(cli, fits):
    """Without --base-loss, a size nobody probed gets its base loss from the base-loss law in N fitted beside the
    fit (with its uncertainty, and says so); --base-loss overrides it."""
    path = fits["good"][1]
    args = ("--n-params", "7e9", "--tokens", "1e11", "--json")
    rc, out, err = cli("optimize", path, *args)
    assert rc == 0, err
    (answer,) = json.loads(out)["domains"].values()  # one layout for one domain or several
    assert "base-loss law" in json.dumps(answer["inputs"]).replace("_", "-"), out
    rc, out, err = cli("optimize", path, *args, "--base-loss", "2.5")
    assert rc == 0, err
    assert next(iter(json.loads(out)["domains"].values()))["inputs"]["base_loss"] == 2.5
    rc, out, err = cli("suggest", path, *args, "-k", "1")
    assert rc == 0, err
    rc, out, err = cli("suggest", path, *args, "-k", "1", "--base-loss", "2.5")
    assert rc == 0, err
    assert json.loads(out)["plan"]
    rc, _, err = cli("suggest", path, "--target", "compute", *args, "--base-loss", "2.5")
    assert rc == 2 and "--base-loss applies to --target tradeoff" in err


def test_json_floats_carry_no_floating_point_dust(cli, fits):
    rc, out, err = cli("optimize", fits["good"][1], "--n-params", str(float(fits["good"][0].data["n_params"].max())),
                       "--tokens", "1e10", "--json")
    assert rc == 0, err
    # at most 12 significant digits (1.0000000000000004 and the like are dust; 0.00925531632541 is not)
    significant = [re.sub(r"[-.]", "", m).lstrip("0") for m in re.findall(r"-?\d+\.\d+", out)]
    assert significant and max(len(d) for d in significant) <= 12
    shares = [float(v) for v in re.findall(r'"valid_share": ([0-9.e+-]+)', out)]
    assert shares and all(0 <= v <= 1 for v in shares)


# ------------------------------------------------------------------------------------------- wording
def test_every_remedy_is_said_with_options_fit_has():
    """Each remedy the fitting layer can give, in CLI words: no Python keyword left, every option real."""
    import typer.main

    from bayes_dcpt.cli import app
    from bayes_dcpt.fitting.config import FitConfig
    from bayes_dcpt.fitting.diagnostics import dcpt_remedies, dynamics_remedies, misfit_remedies
    from bayes_dcpt.report.wording import cli_words

    click_cmd = typer.main.get_command(app).commands["fit"]
    options = {o for p in click_cmd.params for o in getattr(p, "opts", [])}
    data = pd.DataFrame({"tokens": [1.0, 2.0], "run_id": ["a", "b"]})
    texts = []
    for cfg in (FitConfig(law="L3", target="both", run_offsets="latent"),
                FitConfig(law="L3", target="both", robust=False),
                FitConfig(law="L3", target="both", domain_levels="pooled")):
        texts += dcpt_remedies(cfg, data, 3)
    every = tuple(AdequacyCheck(c, "domain", "x", 1.0, 1.0, "", 0.0, False, "m")
                  for c in ("coverage", "trend_tokens", "trend_ratio", "trend_size", "loo_pit", "tails"))
    for family in ("dcpt", "cpt"):
        texts += misfit_remedies(Adequacy(every, 0.01, 0.9), family, 3)
    texts += dynamics_remedies()
    assert texts
    for t in texts:
        said = cli_words(t)
        assert not re.search(r"\b[a-z_]+=", said), said
        for opt in re.findall(r"(?<![\w-])--[a-z][a-z-]*", said):
            assert opt in options, (opt, said)


def test_help_reads_like_a_man_page(cli):
    """No <bool> beside a flag, no {fit_path} in braces, in the help of any command."""
    from bayes_dcpt.cli import app

    def commands(typer_app, prefix=()):
        for c in typer_app.registered_commands:
            yield (*prefix, c.name)
        for g in typer_app.registered_groups:
            yield from commands(g.typer_instance, (*prefix, g.name))

    for cmd in commands(app):
        rc, out, _ = cli(*cmd, "--help")
        assert rc == 0
        assert "<bool>" not in out and not re.search(r"\{[a-z_]+\}", out), (cmd, out)


def test_unconverged_scoring_refits_are_said_with_the_fit(cli, monkeypatch, small_fit, df3, data_csv, tmp_path):
    """A held-out refit whose draws cannot average densities (here 2 x 15 draws, no retry) is named in the held-out
    table, by a warning, in ``bayes-dcpt fit``'s extrapolation line and in its ``--json``: the discrepancy measured
    on it may move with the seed, though the fit itself passes its checks."""
    from bayes_dcpt.errors import ConvergenceWarning
    from bayes_dcpt.fitting.diagnostics import unconverged_refits, warn_convergence
    from bayes_dcpt.fitting.extrapolation import holdout_table, law_holdout_scores, model_settings

    scores = law_holdout_scores(df3, small_fit.law, "both", model_settings(small_fit), ("tokens",),
                                zero_ratio=small_fit.config.zero_ratio, seed=1,
                                refit={"draws": 15, "tune": 15, "chains": 2, "retry": None})
    table = holdout_table(scores)
    assert table["refit_unconverged"].str.contains(r"ESS \d+ < 100").all(), table
    f = _variant(small_fit)
    f.extrapolation = {"splits": ["tokens"], "holdout": table.to_dict(orient="records"), "streams": {}}
    assert list(unconverged_refits(f)) == ["tokens"]
    with pytest.warns(ConvergenceWarning, match="held-out refits did not converge .tokens: .*ESS"):
        warn_convergence(f, None)  # the refits alone: the fit's own checks pass
    _stub_fit(monkeypatch, f)
    rc, out, err = cli("fit", data_csv, "--out", tmp_path / "f.nc")
    assert rc == 0, (out, err)  # the fit's own checks pass: a caution, not a failure
    assert "CAUTION: 1 held-out refit did not converge (tokens: " in " ".join(out.split())
    rc, out, err = cli("fit", data_csv, "--out", tmp_path / "g.nc", "--json")
    ex = json.loads(out)["extrapolation"]
    assert ex["unconverged_refits"]["tokens"].startswith(("ESS", "R-hat"))
    # each held-out refit's error, as the text says it
    assert [(h["split"], h["target"]) for h in ex["holdout"]] == list(zip(table["split"], table["target"], strict=True))
    assert ex["holdout"][0]["mape"] == pytest.approx(table["mape"].iloc[0])
    assert f"{table['mape'].iloc[0]:.1f}% ({table['target'].iloc[0]} loss)" in " ".join(
        cli("fit", data_csv, "--out", tmp_path / "h.nc")[1].split())
    converged = _variant(small_fit)
    converged.extrapolation = {**f.extrapolation, "holdout": table.assign(refit_unconverged="").to_dict("records")}
    assert unconverged_refits(converged) == {}


def test_suggest_json_carries_the_plans_notes_and_cautions(cli):
    """``suggest --json`` had the table and the summary only: the CAUTION the text prints (a target far beyond what
    the fit checked) and the stopping checks were not there for a pipeline. They are now, as in ``optimize --json``."""
    from pathlib import Path

    fit = Path(__file__).parents[1] / "models" / "example_cpt.nc"
    rc, out, err = cli("suggest", fit, "--target", "tradeoff", "--domain", "python", "--n-params", "4432320",
                       "--tokens", "2097152", "--max-general-increase", "0.03", "-k", "1", "--json")
    assert rc == 0, err
    js = json.loads(out)
    assert js["plan"] and js["k"] == 1 and isinstance(js["stop_reasons"], list)
    assert js["checks"]["target_beyond_reach"] is True  # 10x the largest probed size
    assert len(js["flags"]) == 1 and js["flags"][0].startswith("CAUTION") and "10x" in js["flags"][0]
    assert set(js["flags"]) <= set(js["notes"])
    rc, out, err = cli("suggest", fit, "--target", "tradeoff", "--domain", "python", "--n-params", "443232",
                       "--tokens", "2097152", "--max-general-increase", "0.03", "-k", "1", "--json")
    assert rc == 0 and json.loads(out)["flags"] == [], err  # at a probed size: nothing to caution
