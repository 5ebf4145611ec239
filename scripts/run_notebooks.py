"""Execute the jupytext notebooks top to bottom with nbclient; write the executed ``.ipynb`` beside each one.

Usage: ``python scripts/run_notebooks.py [notebooks/0*.py ...] [--quick] [--figures DIR] [--no-ipynb]``.
The figures go to ``notebooks/figures`` (or ``--figures``); ``--quick`` sets ``BAYES_DCPT_NB_QUICK=1``
(the small draw counts CI uses). :func:`run_notebook` is what ``tests/test_notebooks.py`` calls.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _kernel_name() -> str:
    """A kernel spec that runs this very interpreter (so the checkout on PYTHONPATH is what is imported)."""
    from jupyter_client.kernelspec import KernelSpecManager

    for name, spec in KernelSpecManager().get_all_specs().items():
        argv = spec["spec"]["argv"]
        if argv and Path(argv[0]).resolve() == Path(sys.executable).resolve():
            return name
    return "python3"


def run_notebook(
    path: Path, workdir: Path, env: dict[str, str], timeout: int = 900
) -> tuple[object, list[str]]:
    """Execute the notebook with ``env`` set in ``workdir``; returns (notebook, text outputs)."""
    import jupytext
    import nbclient

    nb = jupytext.read(path)
    old = {k: os.environ.get(k) for k in [*env, "PYTHONPATH"]}
    os.environ.update(env)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    try:
        client = nbclient.NotebookClient(
            nb, timeout=timeout, kernel_name=_kernel_name(), resources={"metadata": {"path": str(workdir)}}
        )
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                texts.append(out["data"]["text/plain"])
    return nb, texts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--figures", type=Path, default=REPO / "notebooks" / "figures")
    ap.add_argument("--no-ipynb", action="store_true")
    a = ap.parse_args(argv)
    import nbformat

    paths = a.paths or sorted((REPO / "notebooks").glob("0*.py"))
    env = {"BAYES_DCPT_NB_FIGURES": str(a.figures.resolve()), "MPLBACKEND": "Agg"}
    if a.quick:
        env["BAYES_DCPT_NB_QUICK"] = "1"
    for p in paths:
        print(f"running {p.name} ...", flush=True)
        nb, _ = run_notebook(p, p.resolve().parent, env)
        if not a.no_ipynb:
            nbformat.write(nb, p.with_suffix(".ipynb"))
    print(f"figures in {a.figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
