"""The law registry: every supported scaling law by name and alias, in one read-only mapping.

:data:`LAWS` is built from :mod:`~bayes_dcpt.laws.dcpt` (the D-CPT family L1-L7 and the Cross-Domain law),
:mod:`~bayes_dcpt.laws.cpt` (the base-anchored CPT law) and :mod:`~bayes_dcpt.laws.related` (Chinchilla, Kaplan,
cross-lingual, Data Mixing, BiMix, CMR); other modules add theirs with :func:`register` (the CPT learning-dynamics
laws do). The law abstraction itself (:class:`Law`, :class:`Param`, :class:`Prior`, input preparation) lives in
:mod:`~bayes_dcpt.laws.base` and is re-exported here, so ``from bayes_dcpt.laws.registry import Law, get_law``
keeps working.

Quickstart::

    >>> from bayes_dcpt.laws.registry import get_law
    >>> law = get_law("dcpt")
    >>> law.evaluate(law.example_params, n_params=1.8e9, tokens=10e9, r=0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from bayes_dcpt.errors import UnknownLawError
from bayes_dcpt.laws.base import BILLION, TINY, Law, Param, Prior, inputs_from_frame, prepare_inputs
from bayes_dcpt.laws.cpt import CPT_LAW
from bayes_dcpt.laws.dcpt import cross_domain_laws, dcpt_laws
from bayes_dcpt.laws.related import related_laws

__all__ = [
    "BILLION",
    "LAWS",
    "TINY",
    "Law",
    "Param",
    "Prior",
    "chinchilla_at_ratio",
    "get_law",
    "inputs_from_frame",
    "list_laws",
    "prepare_inputs",
    "register",
]


def _build_registry() -> dict[str, Law]:
    """The built-in laws by name, in a fixed order: D-CPT L1-L7, Cross-Domain K1-K4, CPT, the related laws."""
    dcpt = dcpt_laws()
    l3 = next(law for law in dcpt if law.name == "L3")
    return {law.name: law for law in (*dcpt, *cross_domain_laws(l3), CPT_LAW, *related_laws())}


_REGISTRY: dict[str, Law] = _build_registry()
#: Every registered law by name (a read-only view: :func:`register` adds to it).
LAWS: Mapping[str, Law] = MappingProxyType(_REGISTRY)
_ALIASES = {a: law.name for law in LAWS.values() for a in (law.name.lower(), *law.aliases)}


def register(law: Law) -> None:
    """Add a law to the registry (used by modules that define further laws, e.g. the LR-schedule law)."""
    _REGISTRY[law.name] = law
    for a in (law.name.lower(), *law.aliases):
        _ALIASES[a] = law.name


def get_law(name: str | Law) -> Law:
    """Look up a law by name or alias (``"dcpt"`` is ``L3``, ``"cross-domain"`` is ``cross-domain-K3``)."""
    if isinstance(name, Law):
        return name
    key = str(name).strip().lower()
    if key in _ALIASES:
        return LAWS[_ALIASES[key]]
    known = ", ".join(sorted(set(_ALIASES)))
    raise UnknownLawError(f"unknown law {name!r}; known laws: {known}")


def list_laws(family: str | None = None) -> list[str]:
    """Names of the registered laws, optionally of one family (dcpt, cross-domain, chinchilla, mixture, cmr)."""
    return [n for n, law in LAWS.items() if family is None or law.family == family]


def chinchilla_at_ratio(law: Law | str, params: Mapping[str, Any], r: Any) -> dict[str, Any]:
    """The Chinchilla-form constants (E0, A, alpha, B0, beta) of a D-CPT law at a fixed ratio ``r``.

    This is the paper's consistency requirement: at fixed r, L = E0 + A/N^alpha + B0/D^beta. Works on
    per-draw parameter arrays.
    """
    law = get_law(law)
    if law.at_ratio is None:
        raise ValueError(f"law {law.name} has no Chinchilla form at fixed r")
    p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    return law.at_ratio(p, np.asarray(r, dtype=float))
