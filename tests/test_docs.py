r"""Docs as tests: the README's commands, its Python quickstart and the examples of the ``--help`` texts run as
written on the example data, so that none of them can drift from the code again.

* The README's ``bash`` blocks: every line that starts with ``bayes-dcpt`` runs in one empty folder, block by
  block and in order (the first block makes the files the later ones read), and must exit 0. The lines that
  train probe models (``probe pretrain``, ``probe run``, ``probe grid``: minutes to hours of CPU) run with their
  ``--tokens`` divided by :data:`TOKEN_DIVISOR` and the grid with its smallest token count: the same code path in
  seconds; the README says they take minutes.
* The ``python`` quickstart runs as a script in that folder, then every other ``python`` block (the Trainer
  callback of "From your Trainer": a tiny model, seconds; skipped without ``accelerate``, which the Trainer needs).
* Every ``Example:`` of a command's or group's ``--help`` runs in the same folder after the README's commands (an
  example continued with `` \`` at a line's end is one command, as a shell reads it).

One slow end-to-end path: the default fits take minutes.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Probe-training lines run with their token counts divided by this (same code path, seconds instead of minutes).
TOKEN_DIVISOR = 32
#: Commands that train probe models: scaled down (see the module docstring).
TRAINING = ("probe pretrain", "probe run")
#: Commands not run here, with the test that runs their code path on a small input instead.
ELSEWHERE = {"probe grid": "tests/test_probe_grid.py (a 2-run grid through the same CLI)",
             "demo": "tests/test_demo.py (the demo end to end)"}


def code_blocks(text: str, lang: str) -> list[str]:
    """The fenced code blocks of ``text`` in language ``lang``, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def commands(block: str) -> list[list[str]]:
    """The ``bayes-dcpt`` command lines of a bash block as argument lists (continuations joined, comments cut)."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        if line.strip().startswith("bayes-dcpt "):
            out.append(shlex.split(line, comments=True))
    return out


def examples_of(help_text: str) -> list[list[str]]:
    """The ``Example: [bold]...[/bold]`` commands of one help text as argument lists.

    An example too long for one line of an 80-column terminal continues on the next with `` \\`` at the line's end
    (a shell continuation, so that it pastes as one command); a line break without it would run the first line alone.
    """
    return [shlex.split(" ".join(re.sub(r"\\\n\s*", " ", ex).split()))
            for ex in re.findall(r"Example: \[bold\](.*?)\[/bold\]", help_text, flags=re.S)]


def help_examples() -> list[list[str]]:
    """The ``Example:`` lines of every command's and group's help text, as argument lists."""
    from bayes_dcpt.cli import app

    found: list[list[str]] = []

    def walk(typer_app) -> None:
        if isinstance(typer_app.info.help, str):  # a group's own help (bayes-dcpt, data, probe)
            found.extend(examples_of(typer_app.info.help))
        for cmd in typer_app.registered_commands:
            found.extend(examples_of(cmd.callback.__doc__ or ""))
        for group in typer_app.registered_groups:
            walk(group.typer_instance)

    walk(app)
    return found


def _scaled(args: list[str]) -> list[str]:
    """A probe-training command with its ``--tokens`` divided by TOKEN_DIVISOR."""
    out = list(args)
    if "--tokens" in out:
        i = out.index("--tokens") + 1
        out[i] = str(max(4096, int(float(out[i])) // TOKEN_DIVISOR))
    return out


def _where(args: list[str]) -> str:
    return " ".join(args[1:3])


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run one documented command line (``bayes-dcpt ...``) in ``cwd`` with this checkout's package."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "MPLBACKEND": "Agg", "COLUMNS": "100"}
    code = "import sys; from bayes_dcpt.cli import _entry; sys.argv[0] = 'bayes-dcpt'; _entry()"
    return subprocess.run([sys.executable, "-c", code, *args[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)


def test_the_readme_shows_commands_and_a_quickstart():
    text = README.read_text()
    blocks = [commands(b) for b in code_blocks(text, "bash")]
    assert sum(map(len, blocks)) >= 20
    assert len(code_blocks(text, "python")) >= 1
    assert len(help_examples()) >= 15


def test_the_help_examples_name_commands_the_cli_has(cli):
    for args in help_examples():
        assert args[0] == "bayes-dcpt"
        name = args[1:3] if args[1] in ("data", "probe") else args[1:2]
        code, out, err = cli(*name, "--help")
        assert code == 0 and "Usage" in out, (args, err)


@pytest.mark.slow
def test_every_documented_command_runs_as_written(tmp_path):
    text = README.read_text()
    pytest.importorskip("torch")
    done: list[str] = []
    for block in code_blocks(text, "bash"):
        for args in commands(block):
            key = _where(args)
            if any(key.startswith(k) or args[1] == k for k in ELSEWHERE):
                continue
            todo = _scaled(args) if any(key.startswith(k) for k in TRAINING) else args
            out = run(todo, tmp_path)
            assert out.returncode == 0, f"README: {' '.join(args)}\nexit {out.returncode}\n{out.stdout[-3000:]}" \
                                        f"\n{out.stderr[-3000:]}"
            assert "Traceback" not in out.stderr, out.stderr
            done.append(" ".join(args))
    quick = code_blocks(text, "python")[0]
    script = tmp_path / "quickstart.py"
    script.write_text(quick)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    q = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=1800)
    assert q.returncode == 0, q.stderr[-3000:]
    for i, block in enumerate(code_blocks(text, "python")[1:], start=2):
        if "transformers" in block and importlib.util.find_spec("accelerate") is None:
            continue
        script = tmp_path / f"readme_python_{i}.py"
        script.write_text(block)
        q = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=1800)
        assert q.returncode == 0, f"README python block {i}\n{q.stderr[-3000:]}"
    for args in help_examples():
        key = _where(args)
        if " ".join(args) in done or any(key.startswith(k) or args[1] == k for k in ELSEWHERE):
            continue
        todo = _scaled(args) if any(key.startswith(k) for k in TRAINING) else args
        out = run(todo, tmp_path)
        assert out.returncode == 0, f"--help example: {' '.join(args)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        done.append(" ".join(args))  # an example shown twice (a group's and its command's) runs once
