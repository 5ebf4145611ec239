"""Every notebook (``notebooks/0*.py``, jupytext percent format) runs top to bottom and writes its figures.

Each notebook is converted with jupytext and executed by nbclient in a kernel of this interpreter, with
``BAYES_DCPT_NB_QUICK=1`` (few draws, one domain) and its figures sent to a temporary folder
(``BAYES_DCPT_NB_FIGURES``): every notebook must honour both variables and write at least one PNG
there. A notebook
that needs ``../shared/data`` must say so and skip its body cleanly when the data is absent: the last test
runs the real-data notebook with ``BAYES_DCPT_SHARED_DATA`` pointing nowhere.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from run_notebooks import run_notebook  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.py"))
#: Notebooks that read ../shared/data (they print a skip message when it is absent).
REAL_DATA = {"05_real_data.py"}


def _figures_named(path: Path) -> set[str]:
    """PNG names saved as ``savefig(FIG_DIR / "NN_name.png")`` (other spellings: at least one PNG)."""
    return set(re.findall(r'FIG_DIR / "([^"]+\.png)"', path.read_text()))


def test_notebooks_found():
    names = {p.name for p in NOTEBOOKS}
    assert {
        "01_quickstart.py",
        "02_new_domain.py",
        "03_choosing_the_ratio.py",
        "04_planning.py",
        "05_real_data.py",
        "07_honest_fit.py",
    } <= names
    for p in NOTEBOOKS:
        head = p.read_text()[:400]
        assert "format_name: percent" in head, f"{p.name} is not a jupytext percent notebook"
        assert "savefig" in p.read_text(), f"{p.name} saves no figure"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_writes_figures(path: Path, tmp_path: Path):
    figs = tmp_path / "figures"
    env = {"BAYES_DCPT_NB_QUICK": "1", "BAYES_DCPT_NB_FIGURES": str(figs), "MPLBACKEND": "Agg"}
    if path.name in REAL_DATA and not (REPO / ".." / "shared" / "data").is_dir():
        pytest.skip("../shared/data is absent (the skip path is tested below)")
    run_notebook(path, tmp_path, env)
    expected = _figures_named(path)
    written = {p.name for p in figs.glob("*.png")}
    assert written, f"{path.name} wrote no PNG into $BAYES_DCPT_NB_FIGURES"
    assert expected <= written, f"missing figures: {expected - written}"
    for name in written:
        assert (figs / name).stat().st_size > 5_000, f"{name} looks empty"


@pytest.mark.slow
def test_real_data_notebook_skips_without_shared_data(tmp_path: Path):
    path = REPO / "notebooks" / "05_real_data.py"
    figs = tmp_path / "figures"
    env = {
        "BAYES_DCPT_NB_QUICK": "1",
        "BAYES_DCPT_NB_FIGURES": str(figs),
        "MPLBACKEND": "Agg",
        "BAYES_DCPT_SHARED_DATA": str(tmp_path / "no-such-folder"),
    }
    _, texts = run_notebook(path, tmp_path, env)
    assert any("skipped" in t and "shared/data" in t for t in texts), texts
    assert not list(figs.glob("*.png"))
