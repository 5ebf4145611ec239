"""The ``bayes-dcpt`` command line: a thin layer over the Python API.

User errors (bad data, unknown law or domain, bad option values, missing files) print one clear line
per problem to stderr and exit with code 2; ``--debug`` shows the traceback instead. ``fit`` exits 3 when
the sampler checks fail and 4 when the law does not describe the data (the fit is written; ``--allow-bad-fit``
exits 0). With ``--json`` a user error is also printed on stdout, ``{"error": {"exit_code": 2, "messages":
[...]}}``, so that a pipeline reading the JSON sees why there is no answer. Anything else is a bug: its traceback
is printed and the exit code is 1. When the reader of stdout goes away (``bayes-dcpt laws | head -1``) the command
stops quietly with 141 (:data:`EXIT_PIPE`).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import typer

try:  # typer >= 0.25 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer on the real click
    from click.exceptions import ClickException, NoArgsIsHelpError

# Importing a module registers its commands; `--help` lists them in this order (the daily workflow first).
from bayes_dcpt.cli import point_cmd  # noqa: F401, I001  (laws, fit-point)
from bayes_dcpt.cli import fit_cmd  # noqa: F401  (fit, predict)
from bayes_dcpt.cli import plan_cmd  # noqa: F401  (optimize, suggest, loop)
from bayes_dcpt.cli import candidates_cmd  # noqa: F401
from bayes_dcpt.cli import report_cmd  # noqa: F401
from bayes_dcpt.cli import demo_cmd  # noqa: F401
from bayes_dcpt.cli import dynamics_cmd  # noqa: F401  (fit-dynamics, predict-curve, choose-schedule)
from bayes_dcpt.cli import data_cmd, probe_cmd, store_cmd  # noqa: F401  (the data and probe groups)
from bayes_dcpt.cli._app import (EXIT_MISFIT, EXIT_SAMPLER, EXIT_USAGE, STATE, app, emit_json, err_console,
                                 reflow_help)
from bayes_dcpt.report.wording import cli_words
from bayes_dcpt.errors import BayesDCPTError

__all__ = ["EXIT_MISFIT", "EXIT_PIPE", "EXIT_SAMPLER", "EXIT_USAGE", "app", "main"]

reflow_help(app)  # every command registered above: its paragraphs wrap to the terminal, examples paste as written

#: Exit code when stdout's reader has gone (a closed pipe: ``bayes-dcpt laws | head -1``): 128 + SIGPIPE (13), what
#: the shell reports for ``git log | head -1`` or ``yes | head -1``, which the signal kills. Not 1 (a bug, README
#: "Exit codes") and not 0: the output was cut short, and ``set -o pipefail`` should see it as coreutils make it.
EXIT_PIPE = 141


def _stdout_gone() -> int:
    """Point stdout at devnull so that the interpreter's last flush cannot fail again; returns :data:`EXIT_PIPE`.

    Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError instead of killing the process; the
    Python docs (``signal`` module, "Note on SIGPIPE") recommend exactly this redirect.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (already replaced or closed): nothing to flush
        pass
    return EXIT_PIPE


def _is_broken_pipe(exc: BaseException) -> bool:
    """Click turns a BrokenPipeError into ``sys.exit(1)`` inside its own ``except``: the exit's context says so."""
    return isinstance(exc, BrokenPipeError) or isinstance(exc.__context__, BrokenPipeError)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    STATE["debug"] = "--debug" in args
    try:
        # heavy-tailed noise draws overflow exp() to inf far in the tails of a band, log(0) gives -inf there: both
        # are harmless to the quantiles the commands print, and a RuntimeWarning would only alarm the reader
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            code = app(args=args, standalone_mode=False, prog_name="bayes-dcpt")
        if isinstance(code, int) and not isinstance(code, bool):  # click returns an Exit's code without raising
            return code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except NoArgsIsHelpError:  # typer has already printed the help
        return 0
    except ClickException as exc:
        if STATE["debug"]:
            raise
        msg = exc.format_message().replace("\n", " ")
        err_console.print(f"error: {msg}", style="red", markup=False, highlight=False, soft_wrap=True)
        return _json_error(args, [msg])
    except BayesDCPTError as exc:
        if STATE["debug"]:
            raise
        lines = [cli_words(line, generic=False) for line in exc.lines()]
        for line in lines:
            err_console.print("error: " + line, style="red", markup=False, highlight=False, soft_wrap=True)
        return _json_error(args, lines)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except BrokenPipeError:
        return _stdout_gone()
    except SystemExit as exc:
        if _is_broken_pipe(exc):
            return _stdout_gone()
        raise
    return 0


def _json_error(args: list[str], messages: list[str]) -> int:
    """A user error under ``--json``: the same lines as JSON on stdout (a pipeline parses stdout, not stderr)."""
    if "--json" in args:
        try:
            emit_json({"error": {"exit_code": EXIT_USAGE, "messages": messages}})
        except (BrokenPipeError, OSError, ValueError):  # no reader of stdout: stderr has said it
            pass
    return EXIT_USAGE


def _entry() -> None:
    try:
        code = main()
        sys.stdout.flush()  # the last buffered output fails here, not in the interpreter's shutdown
    except BrokenPipeError:
        code = _stdout_gone()
    sys.exit(code)
