"""Prediction grids: the rows a posterior is asked about, checked before any law is evaluated.

A grid names ``domain, n_params, tokens, r_domain``; every problem (a missing column, a non-numeric or
non-positive size, tokens of 0 (a base-model row, not a CPT checkpoint), a ratio outside [0, 1], an unknown
domain) is reported with its column and rows in one :class:`~bayes_dcpt.errors.DataValidationError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.errors import DataValidationError, Problem, row_numbers

__all__ = ["prediction_frame"]


def prediction_frame(frame: pd.DataFrame | Mapping[str, Any], domains: list[str]) -> pd.DataFrame:
    """Validate the input columns of a prediction grid (clear errors naming column and rows)."""
    df = pd.DataFrame(frame).reset_index(drop=True) if not isinstance(frame, pd.DataFrame) else frame.reset_index(
        drop=True)
    if "domain" not in df and len(domains) == 1:
        df = df.assign(domain=domains[0])
    problems = []
    for c in ("domain", "n_params", "tokens", "r_domain"):
        if c not in df:
            problems.append(Problem(c, "required column is missing from the prediction grid"))
    if problems:
        raise DataValidationError(problems)
    for c in ("n_params", "tokens", "r_domain"):
        v = pd.to_numeric(df[c], errors="coerce")
        if v.isna().any():
            problems.append(Problem(c, "missing or non-numeric value", row_numbers(v.isna())))
        if np.isinf(v).any():
            problems.append(Problem(c, "infinite value (inf)", row_numbers(np.isinf(v))))
        df[c] = v.where(~np.isinf(v))  # reported once: an infinite cell fails no range check below
    # every problem at once: a non-numeric cell (NaN here) fails no range check, the other rows are checked
    if (df["n_params"] <= 0).any():
        problems.append(Problem("n_params", "model size must be > 0", row_numbers(df["n_params"] <= 0)))
    if (df["tokens"] < 0).any():
        problems.append(Problem("tokens", "CPT tokens must be > 0", row_numbers(df["tokens"] < 0)))
    if (df["tokens"] == 0).any():
        problems.append(Problem("tokens", "predictions are of CPT checkpoints and need tokens > 0 (tokens == 0 "
                                          "are base-model rows: drop them, e.g. df[df['tokens'] > 0])",
                                row_numbers(df["tokens"] == 0)))
    bad_r = (df["r_domain"] < 0) | (df["r_domain"] > 1)
    if bad_r.any():
        problems.append(Problem("r_domain", "must be in [0, 1]", row_numbers(bad_r)))
    unknown = ~df["domain"].astype(str).isin(domains)
    if unknown.any():
        names = sorted(set(df.loc[unknown, "domain"].astype(str)))
        problems.append(Problem("domain", f"unknown domain(s) {names}; the fit knows {domains}", row_numbers(unknown)))
    if problems:
        raise DataValidationError(problems)
    df["domain"] = df["domain"].astype(str)
    return df
