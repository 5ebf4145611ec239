"""The typer application object, shared console and error handling of the ``bayes-dcpt`` CLI."""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
from typing import Any

import typer
from rich.console import Console

from bayes_dcpt._version import __version__
from bayes_dcpt.encoding import to_jsonable


def _plain_help() -> None:
    """Help that reads like a man page: ``FIT`` rather than ``{fit_path}``, no ``<bool>`` beside a flag.

    Typer >= 0.25 writes a required argument in braces on the usage line and the type ``<bool>`` beside every
    flag; both are hooks of its parameter classes, replaced here when present (older versions lack them).
    """
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - typer without its own core module
        return
    if hasattr(TyperArgument, "_usage_display_name"):
        def usage_name(self: Any) -> str:
            name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
            return name + ("..." if self.nargs != 1 else "")

        TyperArgument._usage_display_name = usage_name
    if hasattr(TyperOption, "display_type_rich"):
        type_of = TyperOption.display_type_rich

        def flag_type(self: Any, ctx: Any) -> str | None:
            return None if getattr(self, "is_flag", False) else type_of(self, ctx)

        TyperOption.display_type_rich = flag_type


_plain_help()


def reflowed(doc: str) -> str:
    r"""``doc`` with the lines of each paragraph joined, so that the help wraps them to the terminal's width.

    Typer's rich markup mode keeps a docstring's line breaks: a source line wider than the terminal wraps there and
    breaks again where the source did, mid-sentence. A line that ends in `` \`` (a shell continuation, in an example
    too long for one line) keeps its break: the example pastes into a shell as one command.
    """
    out = []
    for para in inspect.cleandoc(doc).split("\n\n"):
        text = ""
        for line in para.splitlines():
            text += ("\n" if text.endswith("\\") else " " if text else "") + line.strip()
        out.append(text)
    return "\n\n".join(out)


def reflow_help(typer_app: typer.Typer) -> None:
    """Every command's help, in ``typer_app`` and its groups, :func:`reflowed` from its docstring."""
    for info in typer_app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = reflowed(info.callback.__doc__)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)


app = typer.Typer(
    name="bayes-dcpt",
    help="Bayesian D-CPT scaling laws: fit probe runs, read credible intervals, plan the next probe.\n\n"
         "Example: [bold]bayes-dcpt data example --out probes.csv[/bold]\n\n"
         "Example: [bold]bayes-dcpt fit probes.csv --out fit.nc[/bold]\n\n"
         "Every command's --help has an example.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Validate, import, export and summarise CPT measurement tables.\n\n"
                            "Example: [bold]bayes-dcpt data validate probes.csv[/bold]", no_args_is_help=True)
app.add_typer(data_app, name="data")

_no_color = bool(os.environ.get("NO_COLOR"))
console = Console(no_color=_no_color, highlight=False)
err_console = Console(stderr=True, no_color=_no_color, highlight=False)

STATE: dict[str, Any] = {"debug": False}

#: Exit codes (README "Exit codes"): a user error; a fit whose sampler checks fail (R-hat, ESS, divergences,
#: BFMI, or an approximation without them); a fit whose law does not describe the data (posterior predictive
#: checks). Sampler problems take precedence: the adequacy verdict of unconverged chains is not reliable.
EXIT_USAGE, EXIT_SAMPLER, EXIT_MISFIT = 2, 3, 4

#: Significant digits of floats in ``--json`` output (no ``1.0000000000000004``).
JSON_DIGITS = 12


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


def _rounded(obj: Any) -> Any:
    """``obj`` with every float rounded to :data:`JSON_DIGITS` significant digits (floating-point dust removed)."""
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    if isinstance(obj, float) and math.isfinite(obj) and obj != 0.0:
        return float(f"{obj:.{JSON_DIGITS}g}")
    return obj


def emit_json(obj: Any, out: str | None = None) -> None:
    """Write JSON to stdout (or a file); floats carry at most :data:`JSON_DIGITS` significant digits."""
    text = json.dumps(_rounded(to_jsonable(obj)), indent=2, allow_nan=False)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


def prepare_outputs(*paths: Any) -> None:
    """Make the folder of every output path given, before any work (``None``: not asked).

    ``report --out`` always made its folder; the other commands wrote with no check, so a ``--out`` in a missing
    folder gave a traceback, after a fit of minutes had been sampled. A path that is a folder, or a folder that
    cannot be made, is one error line naming it.
    """
    from pathlib import Path

    from bayes_dcpt.errors import BayesDCPTError

    for p in paths:
        if p is None:
            continue
        path = Path(p).expanduser()
        if path.is_dir():
            raise BayesDCPTError(f"cannot write {p}: it is a folder, give a file name")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BayesDCPTError(f"cannot write {p}: its folder {path.parent} cannot be made "
                                 f"({exc.strerror or exc})") from exc


def duplicates_note(n: int, source: Any) -> str:
    """The note of ``data validate`` and ``data import`` when a table repeats rows exactly (kept once each)."""
    return (f"note: {n} row{'s' if n > 1 else ''} of {source} repeat{'s' if n == 1 else ''} another row exactly (same "
            f"run, tokens and losses) and {'is' if n == 1 else 'are'} kept once")
