"""The two entry points users call, ``fit`` and ``load_fit``.

They dispatch to the fit of one law (:mod:`~bayes_dcpt.fitting.dcpt`) or to ``law="auto"`` (several laws weighted,
:mod:`~bayes_dcpt.fitting.auto`), so that neither of those modules needs to know the other.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.fitting import auto, dcpt
from bayes_dcpt.fitting.cpt import CPTFit
from bayes_dcpt.fitting.io import read_card

__all__ = ["fit", "load_fit"]


@functools.wraps(dcpt.fit)
def fit(data: Any, law: Any = "dcpt", target: str = "both", **kwargs: Any) -> Any:
    """Fit ``law`` (or ``"auto"``) to ``data``; the docstring is :func:`bayes_dcpt.fitting.dcpt.fit`'s."""
    if isinstance(law, str) and law.strip().lower() == "auto":
        return auto.fit_auto(data, target, **kwargs)
    return dcpt.fit(data, law, target, **kwargs)


def load_fit(path: str | Path) -> Any:
    """Read a fit written by ``Fit.save`` (or an ``AutoFit`` manifest); it predicts without refitting."""
    path = Path(path)
    if not path.is_file():
        raise BayesDCPTError(f"no such fit file: {path}")
    with open(path, "rb") as fh:
        head = fh.read(1)
    if head == b"{":  # an AutoFit manifest (law="auto")
        return auto.load_auto(path)
    card = read_card(path)
    if card is not None and card.get("law") == "cpt":
        return CPTFit.load(path)
    return dcpt.load_fit(path)
