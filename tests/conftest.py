"""Shared fixtures: synthetic worlds, the public data (skipped cleanly when absent), CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NO_COLOR", "1")

from bayes_dcpt.plan.simulate import World, probe_grid

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared" / "data").resolve()


def shared(*parts: str) -> Path:
    """Path into ../shared/data, skipping the test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"public data not present: {p}")
    return p


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture(scope="session")
def world() -> World:
    return World.default(domains=("code",), sigma=0.002, tau=0.0)


@pytest.fixture(scope="session")
def sim_df(world: World) -> pd.DataFrame:
    return world.simulate(probe_grid(), seed=1)


@pytest.fixture(scope="session")
def mixinglaws_df() -> pd.DataFrame:
    shared("mixinglaws")
    from bayes_dcpt.datasets import load_mixinglaws_cpt

    return load_mixinglaws_cpt()


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit_code, stdout, stderr)."""
    from bayes_dcpt.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def stdlib_corpora(tmp_path_factory) -> Path:
    """The offline example corpora (general prose + 3 domains) gathered from this Python installation."""
    pytest.importorskip("torch")
    from bayes_dcpt.probe.corpora import gather_stdlib

    out = tmp_path_factory.mktemp("corpora")
    gather_stdlib(out)
    return out


# ------------------------------------------------------------------ one small real NUTS fit for the session
FIT_KW = {"draws": 300, "tune": 300, "chains": 2, "cores": 2, "warn": False}


@pytest.fixture(scope="session")
def world3() -> World:
    return World.default(sigma=0.003, tau=0.003)


@pytest.fixture(scope="session")
def df3(world3) -> pd.DataFrame:
    return world3.simulate(probe_grid(), seed=1)


@pytest.fixture(scope="session")
def small_fit(df3):
    """D-CPT law, both targets, one domain; 2 chains x 300 draws (compiled once per session)."""
    from bayes_dcpt.fitting import fit

    return fit(df3, "dcpt", "both", seed=3, **FIT_KW)


@pytest.fixture(scope="session")
def small_fit_path(small_fit, tmp_path_factory):
    return small_fit.save(tmp_path_factory.mktemp("fit") / "fit.nc")


def without_config_key(path: Path, key: str, out: Path) -> Path:
    """Copy a saved fit with ``key`` removed from its model card's config (a card written before ``key`` existed)."""
    import json

    import xarray as xr

    tree = xr.open_datatree(path)
    tree.load()
    card = json.loads(tree.attrs["bayes_dcpt_card"])
    del card["config"][key]
    tree.attrs["bayes_dcpt_card"] = json.dumps(card)
    tree.to_netcdf(out)
    tree.close()
    return out


#: Test files that take many minutes, in the order they start: with two pytest-xdist workers (``make test``,
#: ``--dist loadfile --no-loadscope-reorder``) each begins one of them, so that neither is left running alone at the
#: end (test_docs' run of every documented command is ~10 min, the notebooks ~7 min; in collection order test_docs
#: ran alone for its last minutes: 21 min in all).
SLOW_FILES_FIRST = ("test_docs.py", "test_notebooks.py")


def pytest_collection_modifyitems(config, items):
    """Start the slowest test files first (see :data:`SLOW_FILES_FIRST`); the rest keep their order."""
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
