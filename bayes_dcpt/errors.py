"""Exceptions and warnings of bayes-dcpt.

Every error that a user can cause (bad data, unknown law, unknown domain, bad option values) is a
:class:`BayesDCPTError`. The CLI turns these into one clear line per problem and exit code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "BayesDCPTError",
    "ConvergenceWarning",
    "DataValidationError",
    "FitError",
    "InputError",
    "MisfitWarning",
    "Problem",
    "UnknownDomainError",
    "UnknownLawError",
    "format_rows",
    "row_numbers",
]


class BayesDCPTError(Exception):
    """Base class of every user-facing error raised by bayes-dcpt."""

    def lines(self) -> list[str]:
        """One message line per problem (what the CLI prints)."""
        return [str(self)]


def format_rows(rows: Sequence[int], limit: int = 8) -> str:
    """Render 1-based row numbers compactly: ``"row 3"``, ``"rows 3, 7, 9 and 12 more"``."""
    rows = list(rows)
    if not rows:
        return "no rows"
    head = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {head}{more}"


def row_numbers(mask: Any) -> tuple[int, ...]:
    """The 1-based data rows where a boolean ``mask`` (array or Series) is true."""
    import numpy as np

    return tuple(int(i) + 1 for i in np.flatnonzero(np.asarray(mask, dtype=bool)))


@dataclass(frozen=True)
class Problem:
    """One problem found in a table: the column (field), the 1-based data rows, and what is wrong.

    ``first_line`` is the line of the file that holds data row 1 (2 for a CSV with a header), when known: the
    message then says both, ``row 6 (line 7 of the file)``.
    """

    column: str
    message: str
    rows: tuple[int, ...] = field(default_factory=tuple)
    first_line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.rows:
            where = f" ({format_rows(self.rows)})"
            if self.first_line is not None:
                lines = format_rows([r + self.first_line - 1 for r in self.rows]).replace("row", "line", 1)
                where = f" ({format_rows(self.rows)}; {lines} of the file)"
        if self.column in ("file", "data"):
            return f"{self.message}{where}"
        return f"column '{self.column}': {self.message}{where}"


class DataValidationError(BayesDCPTError, ValueError):
    """The input table (or file) is not valid CPT data; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        super().__init__(self._text())

    def _text(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            return f"{prefix}{self.problems[0]}"
        body = "; ".join(str(p) for p in self.problems)
        return f"{prefix}{len(self.problems)} problems: {body}"

    def lines(self) -> list[str]:  # noqa: D102
        prefix = f"{self.source}: " if self.source else ""
        return [f"{prefix}{p}" for p in self.problems]

    def at_first_line(self, first_line: int | None) -> DataValidationError:
        """The same problems, each naming the file's line as well as the row.

        ``first_line``: the line that holds data row 1; ``None`` (not a text file): the rows alone, this error.
        """
        if first_line is None:
            return self
        return DataValidationError([replace(p, first_line=first_line) for p in self.problems], self.source)


class UnknownLawError(BayesDCPTError, ValueError):
    """A law name that is not in the registry."""


class UnknownDomainError(BayesDCPTError, ValueError):
    """A domain that the fit (or the data) does not know."""


class InputError(BayesDCPTError, ValueError):
    """An argument or option value is invalid (e.g. negative tokens); the message names the field."""


class FitError(BayesDCPTError, RuntimeError):
    """A fit could not be carried out (e.g. too little data for the chosen law)."""


class MisfitWarning(UserWarning):
    """The fitted law does not describe the data (posterior predictive checks fail): answers are not trusted."""


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics (R-hat, ESS, divergences, BFMI) are outside the safe range."""
