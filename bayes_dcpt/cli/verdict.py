"""What the command line says about a fit's health: the sampler checks, the adequacy verdict, remedies in CLI words.

A fit is *bad* when its sampler checks fail (R-hat, ESS, divergences, BFMI; an approximation has none) or when its
law does not describe the data (the posterior predictive checks of ``fit.adequacy()``). ``bayes-dcpt fit`` prints
the verdict (:func:`print_verdict`) and exits with :meth:`Verdict.exit_code` (3: sampler, 4: misfit) unless
``--allow-bad-fit``; the commands that read a saved fit (predict, optimize, suggest, report) print one warning on
stderr (:func:`warn_if_bad`) and carry :meth:`Verdict.as_json` in their ``--json`` output.

The remedies come from :mod:`bayes_dcpt.fitting.diagnostics` in Python words (``law='cpt'``);
:func:`~bayes_dcpt.report.wording.cli_words` says them with the options of ``bayes-dcpt fit`` (``--law cpt``).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bayes_dcpt.cli._app import EXIT_MISFIT, EXIT_SAMPLER
from bayes_dcpt.cli.tables import num
from bayes_dcpt.fitting.diagnostics import reduce_present, unconverged_said
from bayes_dcpt.report.wording import cli_words, unconverged_refits_line

__all__ = ["Verdict", "cli_words", "print_verdict", "print_wrapped", "sampler_line", "verdict", "warn_if_bad"]

#: Weight below which a candidate of a ``law="auto"`` fit does not enter its verdict (it hardly enters its answers).
MIN_WEIGHT = 0.01

@dataclass(frozen=True)
class Verdict:
    """A fit's health as the command line reports it.

    ``adequate`` is None when the kind of fit has no adequacy checks (the dynamics law).
    """

    sampler_ok: bool
    adequate: bool | None
    problems: tuple[str, ...]
    misfit: tuple[str, ...]
    stats: dict[str, Any]
    adequacy_summary: str = ""
    remedies: tuple[str, ...] = ()
    per_law: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The held-out refits that did not converge (``"split: why; ..."``), on which the bands beyond the data rest.
    refits_unconverged: str = ""

    @property
    def ok(self) -> bool:
        """The sampler converged and the law describes the data (as far as it was checked)."""
        return self.sampler_ok and self.adequate is not False

    def exit_code(self) -> int:
        """0, or 3 when the sampler checks fail (first: misfit verdicts of bad chains are unreliable), or 4."""
        if not self.sampler_ok:
            return EXIT_SAMPLER
        return EXIT_MISFIT if self.adequate is False else 0

    def as_json(self) -> dict[str, Any]:
        """``{ok, sampler_ok, rhat_max, ess_bulk_min, ess_tail_min, divergences, bfmi_min, adequate, misfit, ...}``."""
        out = {"ok": self.ok, "sampler_ok": self.sampler_ok, **self.stats, "adequate": self.adequate,
               "problems": list(self.problems), "misfit": list(self.misfit), "remedies": list(self.remedies)}
        if self.per_law:
            out["per_law"] = self.per_law
        if self.refits_unconverged:
            out["refits_unconverged"] = self.refits_unconverged
        return out

    @property
    def failed_checks(self) -> str:
        """``7 of 68 checks fail`` (the adequacy checks)."""
        return _count(self.adequacy_summary, self.misfit)

    def headline(self) -> str:
        """One line: what is wrong (or OK)."""
        parts = []
        if not self.sampler_ok:
            parts.append("the sampler checks fail (" + "; ".join(self.problems) + ")")
        if self.adequate is False:
            parts.append(f"the law does not describe the data ({_count(self.adequacy_summary, self.misfit)})")
        return " and ".join(parts) if parts else "OK"


def _count(summary: str, misfit: tuple[str, ...]) -> str:
    m = re.search(r"\((\d+ of \d+ checks fail)\)", summary)
    return m.group(1) if m else f"{len(misfit)} checks fail"


def _stats(d: Any) -> dict[str, Any]:
    keys = ("sampler", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min", "draws", "chains",
            "seconds", "approximate")
    return {k: getattr(d, k) for k in keys}


def _adequacy(fit: Any) -> Any:
    """The fit's adequacy checks, or None when its kind has none."""
    if not callable(getattr(fit, "adequacy", None)) or getattr(fit, "data", None) is None:
        return None
    with np.errstate(all="ignore"):  # heavy-tailed replicates overflow harmlessly in the far tails
        return fit.adequacy()


def _misfit_remedies(fit: Any, adequacy: Any) -> list[str]:
    from bayes_dcpt.fitting.diagnostics import misfit_remedies

    if adequacy is None or adequacy.ok:
        return []
    return misfit_remedies(adequacy, fit.law.family, len(fit.domains))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(cli_words(i) for i in items))


def verdict(fit: Any) -> Verdict:
    """The verdict on any fit: one law (its diagnostics and adequacy) or ``law="auto"`` (its weighted candidates)."""
    with np.errstate(all="ignore"):
        d = fit.diagnostics(warn=False)
    refits = said[1] if (said := unconverged_said(fit)) else ""
    if isinstance(d, Mapping) or isinstance(getattr(d, "candidates", None), Mapping):  # law="auto"
        return replace(_stacked_verdict(fit, d), refits_unconverged=refits)
    adequacy = _adequacy(fit)
    adequate = None if adequacy is None else bool(adequacy.ok and not d.misfit)
    remedies = (list(fit.remedies()) if not d.sampler_ok else []) + _misfit_remedies(fit, adequacy)
    return Verdict(d.sampler_ok, adequate, _unique(d.problems), tuple(d.misfit), _stats(d),
                   adequacy.summary() if adequacy is not None else "", _unique(remedies), refits_unconverged=refits)


def _stacked_verdict(fit: Any, diags: Mapping[str, Any]) -> Verdict:
    """A ``law="auto"`` fit: the candidates that carry weight decide (a negligible one hardly enters the answers)."""
    weights = dict(getattr(fit, "weights", {}) or {})
    used = [k for k in diags if weights.get(k, 1.0) >= MIN_WEIGHT] or list(diags)
    fits = getattr(fit, "fits", {})
    per_law: dict[str, dict[str, Any]] = {}
    problems, misfit, remedies, summaries = [], [], [], []
    adequate: bool | None = None
    for name in used:
        one = verdict(fits[name]) if name in fits else None
        d = diags[name]
        per_law[name] = {"weight": weights.get(name), **(one.as_json() if one else d.as_dict())}
        problems += [f"{name}: {p}" for p in d.problems]
        if one is not None:
            misfit += [f"{name}: {m}" for m in one.misfit]
            remedies += list(one.remedies)
            summaries.append(one.adequacy_summary)
            if one.adequate is not None:
                adequate = bool((adequate is not False) and one.adequate)
    stats = {"sampler": ", ".join(sorted({str(diags[n].sampler) for n in used})),
             "rhat_max": reduce_present([diags[n].rhat_max for n in used], max),
             "ess_bulk_min": reduce_present([diags[n].ess_bulk_min for n in used], min),
             "ess_tail_min": reduce_present([diags[n].ess_tail_min for n in used], min),
             "divergences": sum(int(diags[n].divergences) for n in used),
             "bfmi_min": reduce_present([diags[n].bfmi_min for n in used], min),
             "laws": used}
    n_fail = sum(int(m.group(1)) for s in summaries if (m := re.search(r"\((\d+) of", s)))
    n_all = sum(int(m.group(1)) for s in summaries if (m := re.search(r"of (\d+) checks", s)))
    summary = f"MISFIT ({n_fail} of {n_all} checks fail)" if misfit and n_all else ""
    stacked = fit.adequacy() if callable(getattr(fit, "adequacy", None)) else None
    if stacked is not None:  # the answers come from the stacked posterior: its own checks decide
        adequate = bool(stacked.ok)
        misfit = [f"stack: {c.where()}: {c.message}" for c in stacked.failures]
        summary = stacked.summary()
        if not stacked.ok:
            from bayes_dcpt.fitting.diagnostics import misfit_remedies

            remedies += misfit_remedies(stacked, "auto")
    return Verdict(not problems, adequate, _unique(problems), tuple(misfit), stats, summary, _unique(remedies),
                   per_law)


# ------------------------------------------------------------------------------------------------- printing
def print_wrapped(console: Any, text: str, first: str = "  - ", rest: str = "    ", style: str | None = None) -> None:
    """``text`` wrapped to the console width with a hanging indent (printed as plain text, no markup)."""
    width = max(40, int(console.width) - 1)
    for line in textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False):
        console.print(line, style=style, markup=False, highlight=False, soft_wrap=True)


def sampler_line(v: Verdict) -> str:
    """The sampler's settings and checks in one line."""
    s = v.stats
    if s.get("approximate"):
        return f"{s['sampler']} is an approximation: no convergence diagnostics"
    head = f"{s['sampler']}" + (f", {s['chains']} chain{'' if s['chains'] == 1 else 's'} x {s['draws']} draws, "
                                f"{s['seconds']:.0f} s" if "chains" in s else "")
    return (f"{head}: divergences {s['divergences']}, R-hat max {num(s['rhat_max'], '.4f')}, ESS bulk/tail min "
            f"{num(s['ess_bulk_min'], '.0f')}/{num(s['ess_tail_min'], '.0f')}, "
            f"BFMI min {num(s['bfmi_min'], '.2f')}")


def print_verdict(console: Any, v: Verdict, limit: int = 8) -> None:
    """The sampler checks, the adequacy verdict with where the law misses the data, and what to try."""
    ok, bad = "green", "bold red"
    console.print(f"[{ok if v.sampler_ok else bad}]sampler[/]: " + ("OK" if v.sampler_ok else "PROBLEMS"),
                  highlight=False)
    print_wrapped(console, sampler_line(v), first="  ")
    for p in v.problems:
        print_wrapped(console, p, style="red")
    if v.adequate is None:
        console.print("adequacy: not checked for this kind of fit", highlight=False)
    elif v.adequate and not v.sampler_ok:  # checks on chains that disagree say nothing either way
        console.print("adequacy: not established: ", end="", highlight=False)
        console.print((v.adequacy_summary or "the posterior predictive checks pass") + ", but on draws that "
                      "failed the sampler checks, so they are not reliable; fix the sampler first",
                      markup=False, highlight=False)
    elif v.adequate:
        console.print(f"[{ok}]adequacy[/]: OK, ", end="", highlight=False)
        console.print(v.adequacy_summary or "the law describes the data", markup=False, highlight=False)
    else:
        console.print(f"[{bad}]adequacy[/]: MISFIT, the law does not describe the data "
                      f"({_count(v.adequacy_summary, v.misfit)}):", highlight=False)
        for m in v.misfit[:limit]:
            print_wrapped(console, m, style="red")
        if len(v.misfit) > limit:
            console.print(f"  - and {len(v.misfit) - limit} more (--json lists them all)", highlight=False)
    if v.remedies:
        console.print("what to try:", highlight=False)
        for r in v.remedies:
            print_wrapped(console, r)


def warn_if_bad(err_console: Any, fit: Any, source: Any) -> Verdict:
    """One warning on stderr when the fit read from ``source`` is bad; returns the verdict (for ``--json``)."""
    v = verdict(fit)
    refits = unconverged_refits_line(fit)  # the fit may be fine; its bands beyond the data rest on these refits
    if not v.ok:  # one warning, the refits in it
        text = (f"warning: {source}: {v.headline()}; predictions and decisions from this fit are not to be "
                "trusted." + (f" Try: {v.remedies[0]}." if v.remedies else "")
                + (f" Also, {refits}." if refits else ""))
        err_console.print(text, style="yellow", markup=False, highlight=False, soft_wrap=True)
    elif refits:
        err_console.print(f"caution: {source}: {refits}", style="yellow", markup=False, highlight=False,
                          soft_wrap=True)
    return v
