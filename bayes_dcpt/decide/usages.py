"""The usages by name: one entry point for the CLI, the planner and ``fit.optimize(...)``.

:data:`USAGES` maps each usage's name to the function that answers it (:func:`~bayes_dcpt.decide.ratio.tradeoff`,
:func:`~bayes_dcpt.decide.limited.limited_data`, :func:`~bayes_dcpt.decide.compute.compute_allocation`,
:func:`~bayes_dcpt.decide.ratio.critical_ratio_curve`); :func:`optimize` answers a usage by name for a fit or a
posterior, and is what a fit's ``.optimize()`` calls (registered as the ``"optimize"`` hook, so the fitting
layer needs no import of this one). The usage functions are attributes of this module, so
``getattr(usages, name)`` finds them.

Quickstart::

    >>> from bayes_dcpt import decide
    >>> d = decide.optimize(fit, "tradeoff", n_params=1.8e9, tokens=10e9, max_general_increase=0.03)
    >>> d.summary()                    # median, 90% interval, counts, P(...) and the risk-aware r
    >>> d.to_json()["r_domain"]        # {"median": ..., "lo": ..., "hi": ...}
    >>> decide.usage_inputs("compute")  # ('domain', 'flops', 'r_domain', 'target')
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from bayes_dcpt import hooks
from bayes_dcpt.decide.compute import compute_allocation
from bayes_dcpt.decide.inputs import positive
from bayes_dcpt.decide.limited import limited_data
from bayes_dcpt.decide.ratio import critical_ratio_curve, tradeoff
from bayes_dcpt.decide.results import Decision, DecisionSet
from bayes_dcpt.errors import InputError
from bayes_dcpt.posterior.draws import Posterior, as_posterior

__all__ = [
    "USAGES",
    "compute_allocation",
    "critical_ratio_curve",
    "limited_data",
    "optimize",
    "tradeoff",
    "usage_inputs",
]

USAGES: dict[str, Callable[..., Decision | DecisionSet]] = {
    "tradeoff": tradeoff,
    "limited-data": limited_data,
    "compute": compute_allocation,
    "critical-curve": critical_ratio_curve,
}
_USAGE_ALIASES = {"limited_data": "limited-data", "compute-allocation": "compute", "compute_allocation": "compute",
                  "critical_curve": "critical-curve", "critical-ratio-curve": "critical-curve", "trade-off": "tradeoff"}


def _usage_name(usage: str) -> str:
    key = str(usage).strip().lower()
    key = _USAGE_ALIASES.get(key, key)
    if key not in USAGES:
        raise InputError(f"unknown usage {usage!r}; choose one of {list(USAGES)}")
    return key


def usage_inputs(usage: str) -> tuple[str, ...]:
    """The keyword inputs a usage accepts (for the CLI: which options to pass)."""
    fn = USAGES[_usage_name(usage)]
    return tuple(n for n, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY)


@hooks.provides("optimize")
def optimize(post: Any, usage: str, **inputs: Any) -> Decision | DecisionSet:
    """Answer one usage by name, for a fit or a posterior.

    ``usage`` is ``"tradeoff"``, ``"limited-data"``, ``"compute"`` or ``"critical-curve"``.

    Inputs are the keyword arguments of :func:`tradeoff`, :func:`limited_data`,
    :func:`compute_allocation` or :func:`critical_ratio_curve`. Two conveniences for a CLI that has only
    ``--n-params`` and ``--tokens``: for ``"limited-data"``, ``tokens`` means the available domain tokens;
    for ``"compute"`` without ``flops``, the budget is ``6 * n_params * tokens`` (how best to spend the
    compute of that plan). An input the usage does not take is an error that names it. Given a fit, the usages
    that can check their answer against the measurements (``tradeoff``, ``critical-curve``) get its data.
    """
    data = None if isinstance(post, Posterior) else getattr(post, "data", None)
    post = as_posterior(post)
    name = _usage_name(usage)
    kw = dict(inputs)
    if data is not None and "data" in usage_inputs(name):
        kw.setdefault("data", data)
    if name == "limited-data" and "tokens" in kw:
        if "domain_tokens" in kw:
            raise InputError("give either tokens or domain_tokens for usage 'limited-data', not both")
        kw["domain_tokens"] = kw.pop("tokens")
    if name == "compute" and "flops" not in kw and {"n_params", "tokens"} <= set(kw):
        kw["flops"] = 6.0 * positive("n_params", kw.pop("n_params")) * positive("tokens", kw.pop("tokens"))
    allowed = usage_inputs(name)
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise InputError(f"usage {name!r} does not take {unknown}; its inputs are {list(allowed)}")
    missing = [n for n, p in inspect.signature(USAGES[name]).parameters.items()
               if p.kind is p.KEYWORD_ONLY and p.default is inspect.Parameter.empty and n not in kw]
    if missing:
        raise InputError(f"usage {name!r} needs {missing}")
    return USAGES[name](post, **kw)
