"""Reports and figures: HTML (self-contained) and Markdown, red flags on bad diagnostics, the CLI, and a real
headless Chromium that opens the HTML, sees no errors, sees every image decoded, and takes a screenshot.

The fits are the session's small NUTS fit (one simulated domain, 2 chains x 300 draws) and a deliberately
under-sampled refit of the same model (2 chains x 30 draws: its diagnostics must be flagged).
"""

from __future__ import annotations

import base64
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser_helpers import find_chromium, open_page

from bayes_dcpt.errors import BayesDCPTError, InputError, UnknownDomainError
from bayes_dcpt.report.build import build_report, default_candidates

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = (
    "key",
    "data",
    "law",
    "parameters",
    "diagnostics",
    "curves",
    "tradeoff",
    "compute",
    "plan",
    "reproduce",
)


@pytest.fixture(scope="module")
def html_report(small_fit, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    rep = build_report(small_fit, out=out, plan_csv=out.parent / "plan.csv", k=2)
    return rep, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def bad_fit(df3, small_fit):
    """The small fit's model with far too few draws: R-hat and ESS must fail."""
    from bayes_dcpt.fitting import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(df3, "dcpt", "both", draws=30, tune=30, chains=2, seed=5, warn=False)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# ================================================================================================ HTML
def test_html_report_has_every_section_and_is_self_contained(html_report):
    rep, text = html_report
    for s in SECTIONS:
        assert f'id="{s}"' in text, s
    # no external resource of any kind: every src is a PNG data URI, no link/script tags, no URLs
    srcs = re.findall(r'src="([^"]*)"', text)
    # one domain: rank plot, 2 curve figures, trade-off, compute allocation, plan
    assert len(srcs) == len(rep.images) == 6
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    for s in srcs:
        w, h = _png_size(base64.b64decode(s.split(",", 1)[1]))
        assert w >= 300 and h >= 200
    assert "<link" not in text and "<script" not in text
    assert "http://" not in text and "https://" not in text
    assert "<style>" in text


def test_html_report_shows_the_decisions_it_returns(html_report, small_fit):
    rep, text = html_report
    d = rep.tradeoff
    s = d.summary()
    r = s.table.loc["r_domain"]
    assert f"r* = {r['median']:.3f}" in text
    assert f"{r['lo']:.3f} to {r['hi']:.3f}" in text
    # the same answer as asking the fit directly with the inputs the report used
    inp = rep.inputs
    again = small_fit.optimize(
        "tradeoff",
        n_params=inp["n_params"],
        tokens=inp["tokens"],
        max_general_increase=inp["max_general_increase"],
    )
    assert np.allclose(again.posterior["r_domain"], d.posterior["r_domain"], equal_nan=True)
    # defaults: largest measured size with a base row, 4 x the largest measured tokens
    assert inp["n_params"] == small_fit.data.loc[small_fit.data["tokens"] == 0, "n_params"].max()
    assert inp["tokens"] == 4 * small_fit.data["tokens"].max()
    assert "infeasible" in text and "risk-aware" in text
    # compute allocation at the risk-aware ratio, with the FLOPs of the asked run
    comp = rep.compute[small_fit.domains[0]]
    assert comp.inputs["r_domain"] == pytest.approx(s.risk_aware["r_domain"])
    assert comp.inputs["flops"] == pytest.approx(6 * inp["n_params"] * inp["tokens"])


def test_html_report_plan_and_csv(html_report, small_fit):
    rep, text = html_report
    plan = rep.plan
    assert plan is not None and 1 <= len(plan.table) <= 2
    csv = pd.read_csv(rep.path.parent / "plan.csv")
    assert len(csv) == len(plan.table)
    assert list(csv["domain"]) == list(plan.table["domain"])
    top = plan.table.iloc[0]
    assert f"next probe: {top['domain']}" in text
    # every suggested probe comes from the default candidate menu
    menu = default_candidates(small_fit)
    keys = set(zip(menu["n_params"], menu["tokens"], menu["r_domain"], strict=True))
    for _, row in plan.table.iterrows():
        assert (row["n_params"], row["tokens"], row["r_domain"]) in keys


def test_passing_diagnostics_are_not_flagged(small_fit, tmp_path):
    """The renderer's other branch: a fit whose diagnostics record passes every check shows no red in them."""
    from dataclasses import replace

    from bayes_dcpt.fitting import Fit

    d = replace(
        small_fit.diagnostics(warn=False),
        divergences=0,
        rhat_max=1.004,
        ess_bulk_min=900.0,
        ess_tail_min=850.0,
        bfmi_min=0.9,
        problems=(),
    )
    good = Fit(
        small_fit.data,
        small_fit.law,
        small_fit.config,
        small_fit.idata,
        sampler_config=small_fit.sampler_config,
        diagnostics=d,
        design=small_fit._design,
    )
    text = build_report(good, out=tmp_path / "good.html", plan=False).path.read_text(encoding="utf-8")
    diag = text.split('id="diagnostics"')[1].split("<h2")[0]
    checks = diag.split("<table>")[1].split("</table>")[0]
    assert "bad" not in checks and "BAD" not in checks and checks.count(">ok<") == 5
    assert '<p class="good">Yes: every convergence check passes' in diag
    assert "All checks pass" not in text  # the sampler's verdict never speaks for the law
    key = text.split('id="key"')[1].split("<h2")[0]
    assert '<p class="good">sampler: OK' in key


def test_bad_diagnostics_are_flagged_red(bad_fit, tmp_path):
    d = bad_fit.diagnostics(warn=False)
    assert not d.ok
    out = build_report(bad_fit, out=tmp_path / "bad.html", plan=False).path
    text = out.read_text(encoding="utf-8")
    diag = text.split('id="diagnostics"')[1].split("<h2")[0]
    assert '<p class="bad">NO: ' in diag
    # the failing checks' cells are red (class bad) and say BAD, passing ones do not
    assert re.search(
        r'<td class="num bad">\u26a0 [0-9.]+</td><td>&gt;= 400</td><td class="bad">\u26a0 BAD</td>', diag
    )
    params = text.split('id="parameters"')[1].split("<h2")[0]
    assert params.count("bad") >= 1
    key = text.split('id="key"')[1].split("<h2")[0]
    assert '<p class="bad">sampler: PROBLEMS' in key
    assert 'id="plan"' not in text  # plan=False drops the section


def test_a_one_chain_fit_says_why_it_has_no_r_hat(df3, tmp_path):
    """R-hat compares chains, so a fit of one chain has none: the report says why wherever it would show the value
    (it printed ``R-hat max nan``), names the missing chains as a problem in words (not ``chains=2``), and says the
    sampler settings in words (``1 chain of 30 draws after 30 tuning steps``, not ``1 chains x 30 draws``)."""
    from bayes_dcpt.fitting import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = fit(df3, "dcpt", "both", draws=30, tune=30, chains=1, seed=5, warn=False, discrepancy=False)
    assert one.diagnostics(warn=False).chains == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no All-NaN reduction over the missing R-hat either
        text = build_report(one, out=tmp_path / "one.md", plan=False).path.read_text(encoding="utf-8")
    assert not re.search(r"\bnan\b", text, flags=re.IGNORECASE)
    assert "chains=" not in text and "1 chains" not in text
    key = text.split("## Key answers")[1].split("\n## ")[0]
    assert "sampler: PROBLEMS (R-hat n/a with one chain: run 2 chains or more;" in key
    assert "nutpie, 1 chain of 30 draws:" in key
    assert "R-hat is n/a throughout: it compares chains, and this fit ran one (run 2 or more)." in text
    diag = text.split("## Diagnostics")[1].split("\n## ")[0]
    assert "Sampler nutpie: 1 chain of 30 draws after 30 tuning steps, seed 5;" in diag
    assert re.search(r"\| R-hat \(max\) \| \*\*\u26a0 n/a \(one chain; run 2 or more\)\*\* \|", diag), diag
    assert "NO: R-hat n/a with one chain: run 2 chains or more; " in diag
    assert "No rank plot: it compares chains, and this fit ran one" in diag
    assert "# fit (1 chain of 30 draws after 30 tuning steps, seed 5)" in text


# ============================================================================================ Markdown
def test_markdown_report_writes_pngs_beside_it(small_fit, tmp_path):
    out = tmp_path / "r.md"
    rep = build_report(small_fit, out=out, plan=False)
    assert rep.format == "md"
    text = out.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == len(rep.images) == 5  # no plan figure
    for link in links:
        p = tmp_path / link
        assert p.is_file() and p.parent.name == "r_files"
        w, h = _png_size(p.read_bytes())
        assert w >= 300 and h >= 200
    assert "## Diagnostics: the sampler and the fit" in text and "| parameter |" in text
    assert "data:image" not in text


# ========================================================================================= bad inputs
@pytest.mark.parametrize(
    "kw, err, needle",
    [
        ({"format": "pdf"}, InputError, "format"),
        ({"domain": "music"}, UnknownDomainError, "music"),
        ({"n_params": -5.0}, InputError, "n_params"),
        ({"tokens": 0.0}, InputError, "tokens"),
        ({"max_general_increase": -0.1}, InputError, "max_general_increase"),
        ({"ci": 1.5}, InputError, "ci"),
        ({"k": 0}, InputError, "k"),
    ],
)
def test_bad_report_inputs_write_nothing(small_fit, tmp_path, kw, err, needle):
    out = tmp_path / "x.html"
    with pytest.raises(err, match=needle):
        build_report(small_fit, out=out, **kw)
    assert not out.exists()


# ============================================================================================= figures
def test_figures_are_labelled_and_leave_no_pyplot_state(small_fit):
    import matplotlib.pyplot as plt

    from bayes_dcpt import viz as plotting

    before = plt.get_fignums()
    dom = small_fit.domains[0]
    fig = plotting.loss_curves(small_fit, domain=dom)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "CPT tokens" in ax.get_xlabel() and "nats/token" in ax.get_ylabel()
    n_sizes = small_fit.data["n_params"].nunique()
    assert len(fig.axes) == n_sizes * len(small_fit.targets)
    # one fitted line per ratio with its own line style: distinct without colour
    styles = {ln.get_linestyle() for ln in ax.get_lines() if len(ln.get_xdata()) > 10}
    assert len(styles) >= 4
    fig2 = plotting.loss_vs_ratio(small_fit, domain=dom)
    assert "r_domain" in fig2.axes[0].get_xlabel()
    fig3 = plotting.rank_plot(small_fit, n=2)
    assert len(fig3.axes) >= 2
    for f in (fig, fig2, fig3):
        assert _png_size(plotting.figure_png(f, dpi=50))[0] > 100
    assert plt.get_fignums() == before
    with pytest.raises(UnknownDomainError):
        plotting.loss_curves(small_fit, domain="music")
    with pytest.raises(InputError):
        plotting.loss_vs_ratio(small_fit, domain=dom, ci=2.0)


def test_curves_pass_through_the_data(small_fit):
    """The band drawn is the fit's own predictive band: its median curve tracks the measurements."""
    from bayes_dcpt import data as _data

    rows = _data.fit_rows(small_fit.data)
    pred = small_fit.predict(rows, kind="mean")
    rel = np.abs(pred["loss_domain_mean"] - rows["loss_domain"]) / rows["loss_domain"]
    assert float(np.median(rel)) < 0.01


# ================================================================================================= CLI
def test_report_cli_html_and_md(cli, small_fit_path, tmp_path):
    code, out, err = cli("report", small_fit_path, "--out", tmp_path / "r.html", "--no-plan", "--dpi", "60")
    assert code == 0, err
    assert "report written to" in out and (tmp_path / "r.html").is_file()
    code, out, err = cli(
        "report",
        small_fit_path,
        "--out",
        tmp_path / "r.txt",
        "--format",
        "md",
        "--no-plan",
        "--dpi",
        "60",
        "--max-general-increase",
        "0.05",
    )
    assert code == 0, err
    text = (tmp_path / "r.txt").read_text()
    assert text.startswith("# bayes-dcpt report") and "5.0% of the base loss" in text
    assert (tmp_path / "r_files").is_dir()


# ============================================================================================ browser
chromium = pytest.mark.skipif(
    find_chromium() is None, reason="chromium is not installed (apt-get install chromium)"
)


def check_in_browser(path: Path, shot: Path) -> None:
    """Open ``path`` in headless Chromium: no errors, every image decoded, only file:/data: loads, screenshot."""
    res = open_page(path.resolve().as_uri())
    assert res.errors == [], res.errors
    assert res.title.startswith("bayes-dcpt report")
    assert len(res.images) >= 6
    for img in res.images:
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
    assert all(u.startswith(("file:", "data:")) for u in res.request_urls), res.request_urls
    shot.write_bytes(res.screenshot)
    w, h = _png_size(res.screenshot)
    assert w >= 1000 and h >= 2000
    assert shot.stat().st_size > 50_000


@chromium
def test_report_renders_in_headless_chromium(html_report, tmp_path):
    rep, _ = html_report
    check_in_browser(rep.path, tmp_path / "screenshot.png")


@chromium
def test_browser_check_catches_a_broken_image(tmp_path):
    """The browser test can fail: a page with an undecodable image and a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bayes-dcpt report x</title></head><body>"
        '<img src="data:image/png;base64,AAAA"><script>console.error("boom")</script></body></html>'
    )
    res = open_page(bad.as_uri())
    assert any("boom" in e for e in res.console_errors)
    assert res.images and res.images[0]["naturalWidth"] == 0
    with pytest.raises(AssertionError):
        check_in_browser(bad, tmp_path / "s.png")


def test_load_errors_are_user_errors(tmp_path):
    from bayes_dcpt.fitting import load_fit

    p = tmp_path / "x.nc"
    p.write_text("not netcdf")
    with pytest.raises(BayesDCPTError):
        load_fit(p)


@pytest.mark.parametrize(("model", "hollow"), [("example_cpt.nc", False), ("example_dcpt.nc", True)])
def test_curves_draw_the_zero_ratio_series_a_law_fits(model, hollow):
    """The CPT law fits the losses measured with none of their own corpus (own ratio 0): their series get the
    law's band like any other; the D-CPT law (fitted without them) marks them hollow, "(not fitted)"."""
    import matplotlib.pyplot as plt

    from bayes_dcpt.fitting import load_fit
    from bayes_dcpt.viz import curves as plotting

    fit = load_fit(Path(__file__).parents[1] / "models" / model)
    assert fit.posterior.fits_zero_ratio is not hollow
    fig = plotting.loss_curves(fit, domain="python", n_params=[fit.data["n_params"].max()])
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    bands = [len(ax.collections) for ax in fig.axes]  # one fill per ratio with a band (and the misfit frame)
    n_ratios = fit.data.loc[fit.data["tokens"] > 0, "r_domain"].nunique()
    plt.close(fig)
    assert any("(not fitted)" in t for t in labels) is hollow
    if not hollow:
        assert min(bands) >= n_ratios


def test_the_report_says_what_the_bands_beyond_the_data_rest_on():
    """A calibrated fit's diagnostics end with the held-out splits its bands beyond the data were calibrated on (and
    the shared data streams where measured); a fit without that calibration says nothing of it."""
    from bayes_dcpt.fitting import load_fit
    from bayes_dcpt.report.fit_sections import diagnostics_section

    fit = load_fit(Path(__file__).parents[1] / "models" / "example_cpt.nc")
    texts = [getattr(b, "text", "") for b in diagnostics_section(fit, dpi=40)]
    assert any("calibrated by held-out refits (tokens, size, tokens_early)" in t for t in texts)
    fit.extrapolation = None
    assert not any("held-out refits" in getattr(b, "text", "") for b in diagnostics_section(fit, dpi=40))


@pytest.mark.slow
def test_a_law_auto_fit_reports_its_weighed_laws(df3, tmp_path):
    """``bayes-dcpt report`` of a ``law="auto"`` fit (it raised AttributeError: an AutoFit has no single config):
    the candidate laws with their weights and bootstrap intervals, the heaviest law's model, per-law parameters,
    and a reproduce command that weighs the same candidates again (Laplace fits: this is about the report)."""
    from bayes_dcpt.fitting import fit, load_fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = fit(df3, "auto", "both", candidates=("L3", "L1"), seed=1, sampler="laplace",
                   refit={"sampler": "laplace"}, discrepancy=False)
    back = load_fit(auto.save(tmp_path / "auto.nc"))
    out = tmp_path / "auto.md"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_report(back, out=out, format="md", plan=False)
    text = out.read_text(encoding="utf-8")
    assert "Candidate laws, weighed" in text and "weight 5%" in text and "weight 95%" in text
    t = back.table()
    for _, r in t.iterrows():
        assert 0.0 <= r["weight_lo"] <= r["weight_hi"] <= 1.0
    assert f"the heaviest law, {back.best.law.name}" in text
    assert "--law auto --auto-laws L3,L1" in text
    assert re.search(r"\|\s*L1\s*\|", text) and re.search(r"\|\s*L3\s*\|", text)  # per-law parameter rows


def test_the_report_shows_r_stars_check_against_the_runs_and_flags_a_disagreement():
    """Key answers carry every flag (a DISAGREES too, not only CAUTIONs) and the r* section each domain's check."""
    from bayes_dcpt.fitting import load_fit
    from bayes_dcpt.report import answer_sections as sections

    fit = load_fit(Path(__file__).parents[1] / "models" / "example_cpt.nc")
    bad = {}
    # the demo's question (4x beyond the runs), and one between two checkpoints of 443k, nearest to 131k tokens,
    # where the runs' crossing of c_headers and codec_tables dips below the law's r*
    for tokens in (4 * 524288, 140_000):
        decs = fit.optimize("tradeoff", n_params=443232, tokens=tokens, max_general_increase=0.03)
        decs = {d: decs[d] for d in decs}
        paras = [b for b in sections.key_answers(decs, None, fit.diagnostics(warn=False), [], 0.9)
                 if getattr(b, "text", "").split(":")[0] in decs]
        section = [b for b in sections.tradeoff_section(decs, {"n_params": 443232, "tokens": tokens,
                                                               "relative": True, "max_general_increase": 0.03,
                                                               "prob": 0.9}, 0.9, 60)
                   if type(b).__name__ == "Para" and "where the data measure it" in b.text]
        assert len(paras) == len(decs) == len(section) == 3  # asked beyond the runs: checked nearest, every domain
        for dom, d in decs.items():
            disagrees = not d.nearest_check()["agrees"]
            (line,) = [p.text for p in paras if p.text.startswith(f"{dom}:")]
            (note,) = [p for p in section if p.text.startswith(f"{dom}:")]
            assert ("DISAGREES where the data measure it" in line) == disagrees == note.bad
        bad[tokens] = {p.text.split(":")[0] for p in section if p.bad}
    assert bad[140_000] >= {"codec_tables"}, bad  # the law's r* 0.55 against the runs' 0.31 at 131k


def test_each_size_is_shaded_beyond_its_own_data(small_fit):
    """The 'beyond the data' shading starts at each size's own largest measured tokens: a size probed to fewer
    tokens extrapolates sooner (it started at the largest tokens of any size)."""
    from bayes_dcpt import viz as plotting

    df = small_fit.data
    small = df["n_params"] == df["n_params"].min()
    cut = np.sort(df.loc[small & (df["tokens"] > 0), "tokens"].unique())[-2]
    data = df[~small | (df["tokens"] <= cut)]
    dom = small_fit.domains[0]
    fig = plotting.loss_curves(small_fit, domain=dom, data=data)
    sizes = sorted(data.loc[data["tokens"] > 0, "n_params"].unique())
    # axvspan gives a Rectangle (matplotlib >= 3.9: get_xy() its corner) or a Polygon (3.8: its vertices)
    starts = [min(np.atleast_2d(p.get_xy())[:, 0].min() for p in ax.patches)
              for ax in fig.axes[::len(small_fit.targets)]]
    assert starts[0] == pytest.approx(cut)
    last = data.loc[data["n_params"] == sizes[-1], "tokens"].max()
    assert last > cut and starts[-1] == pytest.approx(last)
