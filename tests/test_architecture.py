"""The package's shape is a contract: layers, no import cycles, no private imports across subpackages, small units.

The layer rule (``laws, data -> numerics -> posterior -> fitting | decide -> plan -> viz -> report -> cli``)
and the homes of PyMC, torch and matplotlib are import-linter contracts in ``pyproject.toml``; this file runs
them and adds what import-linter does not check: cycles between single modules, ``_private`` names imported
from another subpackage, and the size of modules and functions (a unit that must be longer says why in one
``# long: ...`` comment on the line above its ``def`` / at the top of the module).
"""

from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bayes_dcpt"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _subpackage(module: str) -> str:
    """``bayes_dcpt.fitting.dcpt`` -> ``bayes_dcpt.fitting``; top-level modules are their own unit."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_import_linter_contracts_hold():
    importlinter_cli = pytest.importorskip("importlinter.cli")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = importlinter_cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, out.getvalue()[-4000:]


def test_no_import_cycles_between_modules():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("bayes_dcpt")
    # package __init__ files re-export their children: an edge into a package is an edge into its API,
    # so only edges between leaf modules (and out of __init__ files) can form a real cycle
    packages = {m for m in graph.modules if (PKG.parent / m.replace(".", "/") / "__init__.py").is_file()}
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("bayes_dcpt")
                 and i not in packages} for m in graph.modules if m not in packages}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_private_names_imported_across_subpackages():
    bad = []
    for path in _modules():
        here = _subpackage(_name(path))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayes_dcpt"):
                if _subpackage(node.module) == here or node.module == "bayes_dcpt":
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name != "__version__":
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{alias.name}")
    assert not bad, "\n".join(bad)


def _has_reason(lines: list[str], lineno: int) -> bool:
    """A ``# long: <why>`` comment on one of the lines just above ``lineno`` (1-based), decorators skipped."""
    i = lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("@"):
        i -= 1
    return i >= 0 and lines[i].lstrip().startswith("# long:") and len(lines[i].split(":", 1)[1].strip()) > 10


def test_modules_and_functions_are_small_or_say_why():
    long_modules, long_functions = [], []
    for path in _modules():
        text = path.read_text()
        lines = text.splitlines()
        rel = path.relative_to(ROOT)
        if len(lines) > MAX_MODULE_LINES and not any(ln.startswith("# long:") for ln in lines[:40]):
            long_modules.append(f"{rel}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and not _has_reason(lines, node.lineno):
                    long_functions.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)


def test_library_code_never_switches_the_matplotlib_backend():
    offenders = [str(p.relative_to(ROOT)) for p in _modules() if "matplotlib.use(" in p.read_text()]
    assert not offenders, offenders


def test_ruff_is_clean_including_the_docstring_rules():
    """``ruff check`` with the project's rules (pyproject.toml), numpy docstring convention on the package."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (dev extra)")
    res = subprocess.run([ruff, "check", "--no-cache", "bayes_dcpt"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:]
