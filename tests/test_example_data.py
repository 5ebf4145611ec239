"""The embedded example grid: real probes, shipped with the package, complete and documented."""

from __future__ import annotations

import json

from bayes_dcpt import data as _data
from bayes_dcpt.data.dlc import dlc_features
from bayes_dcpt.datasets import example_path, load_example


def test_example_grid_is_complete():
    df = load_example()
    s = _data.summarize(df)
    assert len(s["n_params"]) >= 3 and len(s["domains"]) >= 3
    assert {0.0, 1.0} <= set(s["r_domain"]) and len(s["r_domain"]) >= 5
    assert s["runs"] == len(s["n_params"]) * len(s["domains"]) * len(s["r_domain"])
    assert s["rows_per_run_min"] >= 5
    base = _data.base_losses(df)
    assert len(base) == len(s["n_params"]) * len(s["domains"])  # a base row per (domain, N)
    assert df[["loss_general", "loss_domain"]].notna().all().all()
    # real training: at r = 1 the domain loss falls, at every size and in every domain
    cpt = _data.fit_rows(df)
    last = cpt[cpt.r_domain == 1.0].sort_values("tokens").groupby(["domain", "n_params"])["loss_domain"].last()
    first = base.set_index(["domain", "n_params"])["loss_domain"]
    assert (last < first.loc[last.index] - 0.2).all()
    feats = dlc_features(df, probe_tokens=32768)
    assert (feats["k2"] > 0).all()


def test_example_record_is_shipped_beside_the_csv():
    folder = example_path().parent
    meta = json.loads((folder / "example_cpt.meta.json").read_text())
    assert meta["command"].startswith("bayes-dcpt probe grid") and meta["seed"] == 0
    assert meta["rows"] == len(load_example())
    text = (folder / "EXAMPLE.md").read_text()
    for needle in (meta["command"], "non-embedding", "wall time", "bytes"):
        assert needle in text
    assert (folder / "example_grid.toml").is_file()
