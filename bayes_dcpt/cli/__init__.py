"""The ``bayes-dcpt`` command line: a thin layer over the Python API.

User errors (bad data, unknown law or domain, bad option values, missing files) print one clear line
per problem to stderr and exit with code 2; ``--debug`` shows the traceback instead. ``fit`` exits 3 when
the sampler checks fail and 4 when the law does not describe the data (the fit is written; ``--allow-bad-fit``
exits 0). Anything else is a bug: its traceback is printed and the exit code is 1.
"""

from __future__ import annotations

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
from bayes_dcpt.cli._app import EXIT_MISFIT, EXIT_SAMPLER, EXIT_USAGE, STATE, app, err_console
from bayes_dcpt.report.wording import cli_words
from bayes_dcpt.errors import BayesDCPTError

__all__ = ["EXIT_MISFIT", "EXIT_SAMPLER", "EXIT_USAGE", "app", "main"]


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
        return EXIT_USAGE
    except BayesDCPTError as exc:
        if STATE["debug"]:
            raise
        for line in exc.lines():
            err_console.print("error: " + cli_words(line, generic=False), style="red", markup=False,
                              highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


def _entry() -> None:
    sys.exit(main())
