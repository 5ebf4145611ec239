"""The typer application object, shared console and error handling of the ``bayes-dcpt`` CLI."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from rich.console import Console

from bayes_dcpt._version import __version__
from bayes_dcpt.encoding import dumps

app = typer.Typer(
    name="bayes-dcpt",
    help="Bayesian D-CPT scaling laws: fit probe runs, read credible intervals, plan the next probe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Validate, import, export and summarise CPT measurement tables.", no_args_is_help=True)
app.add_typer(data_app, name="data")

_no_color = bool(os.environ.get("NO_COLOR"))
console = Console(no_color=_no_color, highlight=False)
err_console = Console(stderr=True, no_color=_no_color, highlight=False)

STATE: dict[str, Any] = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bayes-dcpt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Bayesian D-CPT scaling laws for continual pre-training."""
    STATE["debug"] = debug


def emit_json(obj: Any, out: str | None = None) -> None:
    """Write JSON to stdout (or a file)."""
    text = dumps(obj, indent=2)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")

