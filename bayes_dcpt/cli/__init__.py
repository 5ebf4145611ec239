"""The ``bayes-dcpt`` command line: a thin layer over the Python API.

User errors (bad data, unknown law or domain, bad option values, missing files) print one clear line
per problem to stderr and exit with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.25 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer on the real click
    from click.exceptions import ClickException, NoArgsIsHelpError

# Importing a module registers its commands; `--help` lists them in this order (the daily workflow first).
from bayes_dcpt.cli import fit_cmd  # noqa: F401, I001  (laws, fit-point, fit, predict)
from bayes_dcpt.cli import plan_cmd  # noqa: F401  (optimize, suggest, loop)
from bayes_dcpt.cli import report_cmd  # noqa: F401
from bayes_dcpt.cli import demo_cmd  # noqa: F401
from bayes_dcpt.cli import dynamics_cmd  # noqa: F401  (fit-dynamics, predict-curve, choose-schedule)
from bayes_dcpt.cli import data_cmd, probe_cmd, store_cmd  # noqa: F401  (the data and probe groups)
from bayes_dcpt.cli._app import STATE, app, err_console
from bayes_dcpt.errors import BayesDCPTError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    STATE["debug"] = "--debug" in args
    try:
        app(args=args, standalone_mode=False, prog_name="bayes-dcpt")
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
        err_console.print(f"[red]error:[/red] {msg}", soft_wrap=True)
        return 2
    except BayesDCPTError as exc:
        if STATE["debug"]:
            raise
        for line in exc.lines():
            err_console.print(f"[red]error:[/red] {line}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


def _entry() -> None:
    sys.exit(main())
