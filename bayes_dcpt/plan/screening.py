"""Candidates against a fit: what :func:`~bayes_dcpt.plan.planner.suggest` checks before it scores anything.

A candidate table that is valid on its own (:mod:`bayes_dcpt.plan.candidates`) may still not fit the
posterior: a domain the fit never saw, or a base model size that has no checkpoint and pays nothing to
pre-train one. The candidates are then put in a canonical order with exact duplicates dropped, so the plan
does not depend on how the table was sorted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_dcpt.errors import DataValidationError, Problem
from bayes_dcpt.plan.candidates import validate_candidates
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["canonical_order", "check_against_fit", "screen_candidates"]


def screen_candidates(post: Posterior, candidates: pd.DataFrame, require_base: bool) -> tuple[pd.DataFrame, list[str]]:
    """Validate ``candidates``, check them against ``post`` and sort them canonically; returns them and notes."""
    cands = candidates if candidates.attrs.get("bayes_dcpt_candidates") else validate_candidates(candidates)
    check_against_fit(post, cands, require_base)
    cands = canonical_order(cands)
    notes: list[str] = []
    if cands.attrs.get("n_duplicates"):
        notes.append(f"{cands.attrs['n_duplicates']} duplicate candidate row(s) dropped")
    return cands, notes


def canonical_order(cands: pd.DataFrame) -> pd.DataFrame:
    """Sort candidates into a canonical order and drop exact duplicate rows.

    The plan then does not depend on the input order; ``attrs["n_duplicates"]`` counts the dropped rows.
    """
    df = cands.copy()
    df["row"] = np.arange(1, len(df) + 1)
    extra = [c for c in df.columns if c not in ("domain", "n_params", "tokens", "r_domain", "row")]
    keys = [df[c].astype(str).to_numpy() for c in reversed(extra)]
    keys += [
        df["r_domain"].to_numpy(float),
        df["tokens"].to_numpy(float),
        df["n_params"].to_numpy(float),
        df["domain"].astype(str).to_numpy(),
    ]
    order = np.lexsort(keys)
    df = df.iloc[order].reset_index(drop=True)
    dup = df.drop(columns=["row"]).astype(str).duplicated()
    df = df[~dup.to_numpy()].reset_index(drop=True)
    df.attrs["n_duplicates"] = int(dup.sum())
    return df


def check_against_fit(post: Posterior, cands: pd.DataFrame, require_base: bool) -> None:
    """Raise :class:`DataValidationError` for unknown domains and (with ``require_base``) missing base models."""
    problems = []
    unknown = ~cands["domain"].isin(post.domains)
    if unknown.any():
        names = sorted(set(cands.loc[unknown, "domain"]))
        problems.append(
            Problem(
                "domain",
                f"unknown domain(s) {names}; the fit knows {post.domains}",
                tuple(int(i) + 1 for i in np.flatnonzero(unknown.to_numpy())),
            )
        )
    ref = post.reference
    if require_base and ref is not None and len(ref):
        have = np.unique(ref["n_params"].to_numpy(float))
        known = np.isclose(cands["n_params"].to_numpy(float)[:, None], have[None, :], rtol=1e-6).any(axis=1)
        pays = np.zeros(len(cands), bool)
        if "pretrain_tokens" in cands:
            pays = np.nan_to_num(cands["pretrain_tokens"].to_numpy(float)) > 0
        bad = ~known & ~pays
        if bad.any():
            sizes = ", ".join(f"{x:.4g}" for x in have)
            problems.append(
                Problem(
                    "n_params",
                    f"no base checkpoint of this size (base models: {sizes}); add a "
                    "pretrain_tokens column to pay for pre-training it, or pass require_base=False",
                    tuple(int(i) + 1 for i in np.flatnonzero(bad)),
                )
            )
    if problems:
        raise DataValidationError(problems, source=cands.attrs.get("source") or "candidates").at_first_line(
            cands.attrs.get("first_line"))


