"""The building blocks of a report and how a value reads in a cell.

A report is a flat list of blocks (headings, paragraphs, tables, images, preformatted text): the sections
(:mod:`~bayes_dcpt.report.sections`) produce them and the renderers (:mod:`~bayes_dcpt.report.render`)
turn them into HTML or Markdown, so what a report says and how it looks are kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Block", "Heading", "Image", "Para", "Pre", "Table", "fmt", "fmt_frame", "interval"]


@dataclass
class Heading:
    """A section heading; level-2 headings with an anchor make the table of contents."""

    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    """A paragraph, flagged as a problem (``bad``) or an all-clear (``good``)."""

    text: str
    bad: bool = False
    good: bool = False


@dataclass
class Table:
    """A table of display strings; ``bad`` is a boolean mask of the same shape (cells flagged red)."""

    frame: pd.DataFrame
    bad: pd.DataFrame | None = None
    caption: str = ""


@dataclass
class Image:
    """A PNG figure with its alt text, caption and a file-name stem (for Markdown reports)."""

    png: bytes
    alt: str
    caption: str
    name: str


@dataclass
class Pre:
    """Preformatted text (commands, the plan's summary)."""

    text: str


Block = Heading | Para | Table | Image | Pre


def fmt(v: Any, spec: str = ".4g") -> str:
    """A value as the report shows it: ``n/a`` for missing, yes/no, thousands separators for big integers."""
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if abs(int(v)) >= 10000 else str(int(v))
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "n/a"
        if float(v).is_integer() and 1000 <= abs(v) < 1e15:
            return f"{int(v):,}"
        return format(float(v), spec)
    return str(v)


def interval(lo: Any, hi: Any, spec: str = ".3g") -> str:
    """``lo to hi``, each formatted with ``spec``."""
    return f"{fmt(lo, spec)} to {fmt(hi, spec)}"


def fmt_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell of ``df`` as display text."""
    return df.map(fmt) if hasattr(df, "map") else df.applymap(fmt)
