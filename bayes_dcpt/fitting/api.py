"""The two entry points users call, ``fit`` and ``load_fit``.

They dispatch to the fit of one law (:mod:`~bayes_dcpt.fitting.dcpt`) or to ``law="auto"`` (several laws weighted
by how they extrapolate, :mod:`~bayes_dcpt.fitting.auto`), so that neither of those modules needs to know the
other; ``fit`` then calibrates the bands for extrapolation (:mod:`~bayes_dcpt.fitting.extrapolation`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.fitting import auto, dcpt
from bayes_dcpt.fitting.config import DEFAULT_DRAWS, check_cpt_options
from bayes_dcpt.fitting.cpt import CPTFit
from bayes_dcpt.fitting.diagnostics import APPROXIMATE_SAMPLERS
from bayes_dcpt.fitting.discrepancy import data_envelope
from bayes_dcpt.fitting.extrapolation import REFIT_DEFAULTS, calibrate, retry_within
from bayes_dcpt.fitting.io import read_card
from bayes_dcpt.laws.dynamics import DYNAMICS_LAWS
from bayes_dcpt.laws.registry import get_law

__all__ = ["default_law", "fit", "load_fit"]


def _refit_settings(discrepancy: bool | Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The scoring refits' sampler settings: given, else the defaults (an approximate fit refits the same way)."""
    if isinstance(discrepancy, Mapping):
        return dict(discrepancy)
    sampler = kwargs.get("sampler", "nutpie")
    draws, tune, chains = (int(v if kwargs.get(k) is None else kwargs[k])
                           for k, v in (("draws", DEFAULT_DRAWS), ("tune", 1000), ("chains", 4)))
    if sampler in APPROXIMATE_SAMPLERS:
        return {"sampler": sampler, "draws": draws, "chains": chains}
    # never more than the fit itself: a quick fit gets quick scoring refits, and quick retries of unconverged ones
    own = {"draws": draws, "tune": tune, "chains": chains}
    return {**{k: min(v, REFIT_DEFAULTS[k]) for k, v in own.items()}, "retry": retry_within(own)}


def default_law(data: Any) -> str:
    """The law fitted when none is named: ``"cpt"`` when every (domain, size) probed has its base-model rows.

    The base-anchored CPT law describes measured CPT curves (forgetting, saturating learning) where the D-CPT
    law misses them (BENCHMARKS.md, models/README.md), but it needs the base model's losses (``tokens == 0``
    rows) at every size it fits; without them the D-CPT law (``"dcpt"``) is fitted.
    """
    df = _data.load(data)
    cpt = df[df["tokens"] > 0][["domain", "n_params"]].drop_duplicates()
    base = df[df["tokens"] == 0][["domain", "n_params"]].drop_duplicates()
    if cpt.empty or base.empty:
        return "dcpt"
    have = set(map(tuple, base.to_numpy().tolist()))
    return "cpt" if all(tuple(x) in have for x in cpt.to_numpy().tolist()) else "dcpt"


@functools.wraps(dcpt.fit)
def fit(data: Any, law: Any = None, target: str = "both", *, discrepancy: bool | Mapping[str, Any] = True,
        **kwargs: Any) -> Any:
    """Fit ``law`` (or ``"auto"``) to ``data``; the docstring is :func:`bayes_dcpt.fitting.dcpt.fit`'s.

    ``law`` None (default): :func:`default_law` (the CPT law when the data have base-model rows at every size,
    else the D-CPT law). ``discrepancy`` (default True) calibrates the bands for extrapolation from held-out
    refits; a mapping gives the refits' sampler settings (e.g. ``{"sampler": "laplace"}``); False skips them.
    """
    if law is None:
        law = default_law(data)
    if isinstance(law, str) and law.strip().lower() == "auto":
        if isinstance(discrepancy, Mapping) and "refit" not in kwargs:  # the held-out refits' sampler settings
            kwargs["refit"] = dict(discrepancy)
        return auto.fit_auto(data, target, discrepancy=bool(discrepancy), **kwargs)
    check_cpt_options([law], kwargs, f"not of {get_law(law).name}")
    warn = bool(kwargs.get("warn", True))
    # with the refits, the fit warns once they are done: one ConvergenceWarning for its sampler and its refits
    result = dcpt.fit(data, law, target, **{**kwargs, "warn": warn and not discrepancy})
    if discrepancy:
        if warn:  # the posterior predictive checks of the fit as sampled (computed once), as without the refits
            result.adequacy()
        calibrate(result, seed=int(kwargs.get("seed", 0)), refit=_refit_settings(discrepancy, kwargs))
        if warn:
            result.diagnostics(warn=True)
    else:  # where the probes are, for what decisions say of a thinly probed domain (no slope: bands unchanged)
        result.posterior.ctx.setdefault("envelope", data_envelope(result.fitted_data()))
    return result


fit.__signature__ = inspect.signature(dcpt.fit).replace(parameters=[  # type: ignore[attr-defined]
    *(p.replace(default=None) if p.name == "law" else p for p in inspect.signature(dcpt.fit).parameters.values()),
    inspect.Parameter("discrepancy", inspect.Parameter.KEYWORD_ONLY, default=True)])


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
    if card is not None and card.get("law") in DYNAMICS_LAWS:
        raise BayesDCPTError(f"{path}: a fit of the CPT dynamics law {card['law']!r} (made by bayes-dcpt "
                             "fit-dynamics), which predicts whole loss curves under an LR schedule: ask it with "
                             "bayes-dcpt predict-curve or choose-schedule (in Python: "
                             "bayes_dcpt.fitting.load_dynamics_fit)")
    return dcpt.load_fit(path)
