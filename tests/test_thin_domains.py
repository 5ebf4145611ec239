"""A domain probed at one size or one ratio (a new domain) is named, because its bands beyond its probes are not
calibrated: the fit's output, its ``--json``, the report and the decisions about it say so."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bayes_dcpt import datasets
from bayes_dcpt.decide.ratio import tradeoff
from bayes_dcpt.fitting import load_fit
from bayes_dcpt.fitting.discrepancy import data_envelope, fit_thin_domains
from bayes_dcpt.posterior.extrapolation import thin_domains
from bayes_dcpt.report.wording import thin_domains_line

MODEL = Path(__file__).parents[1] / "models" / "example_cpt.nc"


def _new_domain(df: pd.DataFrame, new: str) -> pd.DataFrame:
    """``df`` with ``new`` cut to a new domain's data: its base rows and its smallest size's run at r = 1."""
    dom = df["domain"] == new
    probe = dom & (df["n_params"] == df.loc[dom, "n_params"].min()) & np.isclose(df["r_domain"], 1.0)
    return df[~dom | (dom & ((df["tokens"] == 0) | probe))].reset_index(drop=True)


def test_thin_domains_names_one_size_and_one_ratio():
    env = data_envelope(_new_domain(datasets.load_example(), "python"))
    assert thin_domains(env) == {"python": {"size": 13408.0, "ratio": 1.0}}
    assert thin_domains(data_envelope(datasets.load_example())) == {}  # every domain on the full grid
    assert thin_domains(None) == {}


def test_thin_on_one_axis_only_and_not_when_no_domain_spans_more():
    env = {"a": {"d_max": {"1e4": 1e5, "1e5": 1e5}, "ratios": [0.5]},
           "b": {"d_max": {"1e4": 1e5, "1e5": 1e5}, "ratios": [0.25, 0.5]}}
    assert thin_domains(env) == {"a": {"ratio": 0.5}}
    one_size = {d: {"d_max": {"1e4": 1e5}, "ratios": [0.25, 0.5]} for d in ("a", "b")}
    assert thin_domains(one_size) == {}  # nobody probed a second size: nothing to be thin against


def test_line_names_the_domain_and_is_none_without_one():
    df = _new_domain(datasets.load_example(), "codec_tables")
    f = SimpleNamespace(posterior=SimpleNamespace(ctx={}), fitted_data=lambda: df)  # envelope from the data
    assert fit_thin_domains(f) == {"codec_tables": {"size": 13408.0, "ratio": 1.0}}
    line = thin_domains_line(fit_thin_domains(f))
    assert line.startswith("CAUTION: thinly probed domain: codec_tables at one model size (N = 13,408) and one "
                           "ratio (r = 1)")
    assert "not calibrated" in line
    full = SimpleNamespace(posterior=SimpleNamespace(ctx={"envelope": data_envelope(datasets.load_example())}))
    assert fit_thin_domains(full) == {} and thin_domains_line({}) is None


@pytest.fixture(scope="module")
def thin_fit():
    """The committed example fit whose envelope says python was probed at one size and ratio (a new domain's)."""
    f = load_fit(MODEL)
    env = data_envelope(_new_domain(datasets.load_example(), "python"))
    f.posterior = f.posterior._copy(ctx={**f.posterior.ctx, "envelope": env})
    return f


def test_decision_about_a_thin_domain_cautions(thin_fit):
    d = tradeoff(thin_fit.posterior, domain="python", n_params=443232, tokens=2e6)
    assert d.inputs["thinly_probed"] == {"size": 13408.0, "ratio": 1.0}
    notes = d.summary().notes
    assert any(n.startswith("CAUTION: python was probed at one model size (N = 13,408) and one ratio") for n in notes)
    other = tradeoff(thin_fit.posterior, domain="c_headers", n_params=443232, tokens=2e6)
    assert "thinly_probed" not in other.inputs
    assert not any("was probed at" in n for n in other.summary().notes)


def test_report_section_flags_a_thin_domain(thin_fit):
    from bayes_dcpt.report.fit_sections import _extrapolation_blocks

    blocks = _extrapolation_blocks(thin_fit)
    bad = [b for b in blocks if getattr(b, "bad", False)]
    assert len(bad) == 1 and "python at one model size" in bad[0].text


def test_fit_json_carries_the_thin_domains(thin_fit, tmp_path):
    from bayes_dcpt.cli.fit_cmd import fit_json
    from bayes_dcpt.cli.verdict import verdict

    payload = fit_json(thin_fit, verdict(thin_fit), tmp_path / "f.nc", 0, [])
    thin = json.loads(json.dumps(payload, default=str))["thin_domains"]
    assert thin["domains"] == {"python": {"size": 13408.0, "ratio": 1.0}}
    assert thin["note"].startswith("CAUTION: thinly probed domain: python")


def test_fit_and_predict_commands_name_a_new_domain(cli, tmp_path):
    """End to end on the example with codec_tables cut to a new domain's data: `fit` prints the CAUTION and
    `predict` repeats it when the grid asks about that domain (not when it asks about the others)."""
    train = tmp_path / "train.csv"
    _new_domain(datasets.load_example(), "codec_tables").to_csv(train, index=False)
    code, out, err = cli("fit", train, "--out", tmp_path / "f.nc", "--draws", "100", "--tune", "100", "--chains", "2",
                         "--no-calibration", "--allow-bad-fit")
    assert code == 0, err
    assert "CAUTION: thinly probed domain: codec_tables at one model size (N = 13,408)" in " ".join(out.split())
    full = datasets.load_example()
    ask = full[(full["tokens"] > 0) & (full["n_params"] == full["n_params"].max())]
    for dom, named in (("codec_tables", True), ("python", False)):
        grid = tmp_path / f"{dom}.csv"
        ask[ask["domain"] == dom].to_csv(grid, index=False)
        code, out, err = cli("predict", tmp_path / "f.nc", grid, "--out", tmp_path / f"p_{dom}.csv")
        assert code == 0, err
        assert ("thinly probed domain: codec_tables" in " ".join(err.split())) is named
    # a decision about it says so too, from a fit without the held-out calibration (its envelope from its data)
    code, out, err = cli("optimize", tmp_path / "f.nc", "--domain", "codec_tables", "--n-params", "443232",
                         "--tokens", "524288")
    assert code == 0, err
    assert "FLAG: CAUTION: codec_tables was probed at one model size (N = 13,408)" in " ".join(out.split())
