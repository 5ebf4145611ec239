"""Tables that read at any terminal width, piped output included: never a number cut to ``0.89…``.

:func:`print_table` draws a plain table when every cell fits the console width, and otherwise lays the rows out
vertically (the row's label on one line, its ``column value`` pairs packed on the lines below), so a number is
shown whole or not at all. Cells are printed as plain text: a label such as ``E[general, python]`` is never read
as rich markup. Where one header cannot say what every row's cell is (a column of medians and probabilities, an
ESS that is the smaller of two), a legend line under the title says it, and the vertical layout can name each
row's cells itself (``median``, ``probability``, ``value``), so no cell is shown under a name that is not its own.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ESS_LEGEND", "num", "param_rows", "print_params", "print_table"]

_GAP = 2  # spaces between columns

#: What the parameter table's ESS column is: one number for two diagnostics, so the table says which.
ESS_LEGEND = "ESS: the smaller of the bulk and tail effective sample sizes (--json has both)"


def num(v: Any, spec: str = ".4g") -> str:
    """A number as a cell: ``n/a`` when missing, whole counts with no decimals."""
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "n/a"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format(float(v), spec)
    return str(v)


def print_table(console: Any, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                right: Sequence[bool] | None = None, labels: int = 1, legend: str = "",
                names: Sequence[Sequence[str] | None] | None = None) -> None:
    """Print ``rows`` under ``title``: a table if it fits the console width, else one block per row.

    ``right`` says which columns are right-aligned (default: all but the first ``labels``); the first
    ``labels`` columns name the row in the vertical layout. ``legend`` is printed under the title in the table
    layout, to say what a header cannot (a column whose rows hold different kinds of number). ``names`` gives,
    per row, the names of its cells after the labels in the vertical layout (``None``: the headers), where each
    cell is shown beside its name; the legend is printed there too unless every row is named this way.
    """
    right = list(right) if right is not None else [i >= labels for i in range(len(headers))]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    width = max(40, int(console.width))
    named = names is not None and all(n is not None for n in names)
    if title:  # wrapped at the console's width (a pipe or a narrow terminal), never cut
        _wrapped(console, title, width, hyphens=True)
    for gap in (_GAP, 1):  # two spaces between columns, one if that is what it takes to fit
        if sum(widths) + gap * (len(widths) - 1) <= int(console.width):
            if legend:
                _wrapped(console, legend, width)
            _horizontal(console, headers, rows, widths, right, gap)
            return
    if legend and not named:
        _wrapped(console, legend, width)
    _vertical(console, headers, rows, labels, names)


def _wrapped(console: Any, text: str, width: int, *, hyphens: bool = False) -> None:
    """``text`` wrapped at ``width``, never cut (a legend is not broken at the hyphen of ``risk-aware``)."""
    for line in textwrap.wrap(text, width, break_on_hyphens=hyphens) or [text]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool], gap: int) -> str:
    parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
    return (" " * gap).join(parts).rstrip()


def _horizontal(console: Any, headers: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int],
                right: Sequence[bool], gap: int) -> None:
    def out(text: str, style: str | None = None) -> None:
        console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)

    out(_line(headers, widths, right, gap), "bold")
    out(_line(["-" * w for w in widths], widths, right, gap))
    for r in rows:
        out(_line(r, widths, right, gap))


def _vertical(console: Any, headers: Sequence[str], rows: Sequence[Sequence[str]], labels: int,
              names: Sequence[Sequence[str] | None] | None = None) -> None:
    width = int(console.width)
    for i, r in enumerate(rows):
        console.print(" ".join(c for c in r[:labels] if c), style="bold", markup=False, highlight=False,
                      soft_wrap=True)
        own = names[i] if names is not None else None
        line = " "
        for h, c in zip(own if own is not None else headers[labels:], r[labels:], strict=True):
            if not c:
                continue
            item = f"  {h} {c}" if h else f"  {c}"
            if len(line) + len(item) > width and line.strip():
                console.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)
                line = " "
            if len(line) + len(item) > width:  # one long cell (a formula): wrapped under its header
                for piece in textwrap.wrap(item.strip(), width - 3, initial_indent="   ",
                                           subsequent_indent="     ", break_on_hyphens=False):
                    console.print(piece, markup=False, highlight=False, soft_wrap=True)
                continue
            line += item
        if line.strip():
            console.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)


def print_params(console: Any, title: str, summ: pd.DataFrame) -> None:
    """A posterior summary as :func:`param_rows` lays it out, with the legend saying what its ESS column is."""
    headers, rows = param_rows(summ)
    print_table(console, title, headers, rows, legend=ESS_LEGEND if "ESS" in headers else "")


def param_rows(summ: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of a posterior summary (ArviZ): label, mean, sd, HDI bounds, R-hat, ESS.

    Three significant digits, ESS the smaller of bulk and tail (``--json`` has every digit and both; the table says
    so in :data:`ESS_LEGEND`); no MCSE. The label keeps its coordinates
    (``E[general, python]``); a (law, parameter) index reads ``L3: E[general, python]``.
    """
    cols = [c for c in summ.columns if str(c).startswith(("hdi", "eti"))]  # hdi90_lb, hdi90_ub (or hdi_5%, ...)
    lo_col, hi_col = (cols[0], cols[-1]) if len(cols) >= 2 else (None, None)
    headers = ["parameter", "mean", "sd", "HDI lo", "HDI hi"]
    has_diag = "r_hat" in summ.columns
    if has_diag:
        headers += ["R-hat", "ESS"]
    rows = []
    for idx, row in summ.iterrows():
        label = ": ".join(str(x) for x in idx) if isinstance(idx, tuple) else str(idx)
        cells = [label, *(num(row.get(c), ".3g") if c else "n/a" for c in ("mean", "sd", lo_col, hi_col))]
        if has_diag:
            ess = min(float(row.get("ess_bulk", np.nan)), float(row.get("ess_tail", np.nan)))
            cells += [num(row.get("r_hat"), ".3f"), num(ess, ".0f")]
        rows.append(cells)
    return headers, rows
