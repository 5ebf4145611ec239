"""Python spellings of fit options said as command-line options, for what the CLI and the reports tell the reader.

The remedies of :mod:`bayes_dcpt.fitting.diagnostics` and some error messages name Python keywords
(``law='cpt'``, ``sampler_kwargs={'target_accept': 0.95}``, ``pass domain=...``); a reader of the command line or
of a report wants the options of ``bayes-dcpt fit`` (``--law cpt``, ``--target-accept 0.95``, ``--domain``).
:func:`extrapolation_line` says, for both, what a fit's bands beyond its data rest on, and whether the held-out refits
they were measured with converged (:func:`~bayes_dcpt.fitting.diagnostics.unconverged_said`);
:func:`thin_domains_line` names the domains probed too thinly for their bands beyond the probes to be calibrated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bayes_dcpt.fitting.diagnostics import unconverged_said
from bayes_dcpt.posterior.extrapolation import (
    EARLY,
    ONE_SIZE_REFIT,
    reach_factor,
    reach_remedy,
    reach_words,
    thin_words,
)

__all__ = ["cli_words", "extrapolation_line", "holdout_errors", "reach_rows_line", "thin_domains_line",
           "unconverged_refits_line"]

# Python spellings of fit options in messages and remedies, and how the command line says them (in this order).
_WORDS: tuple[tuple[str, Any], ...] = (
    (r"sampler_kwargs=\{'target_accept': ([0-9.]+)\}", r"--target-accept \1"),
    (r"more tuning and draws\b(?! \(--tune)", "more tuning and draws (--tune, --draws)"),
    (r"more tuning/draws", "more tuning and draws (--tune, --draws)"),
    (r"robust=True", "the Student-t likelihood (without --normal)"),
    (r"robust=False", "--normal"),
    (r"run_effect=False", "--no-run-effect"),
    (r"\(fit_dynamics\)", "(bayes-dcpt fit-dynamics)"),
    (r"\bfit_dynamics\b", "bayes-dcpt fit-dynamics"),
    (r"a simpler law\b(?! \(--law)", "a simpler law (--law)"),
    (r"each on its own rows", "each on its own rows (--domains NAME)"),
    (r"\bbase_loss=\.\.\.,? ?(--base-loss)?", "--base-loss"),
    (r"pass the reference loss explicitly", "pass the base model's general loss with --base-loss"),
    (r"\bpass (\w+)=\.\.\.", lambda m: f"pass --{m.group(1).replace('_', '-')}"),
    (r"\bat n_params=([0-9.e+-]+)", r"at N = \1"),
    (r"\bneeds \[((?:'\w+'(?:, )?)+)\]",
     lambda m: "needs " + " and ".join("--" + n.strip("' ").replace("_", "-") for n in m.group(1).split(","))),
)
# Any other ``name=value`` left: ``--name value`` (``True``: the flag; ``False``: its ``--no-`` form).
_ASSIGN = re.compile(r"\b([a-z][a-z_]*)=(?:'([^']*)'|\"([^\"]*)\"|([\w.+-]+))")


def _option(m: re.Match[str]) -> str:
    name = "--" + m.group(1).replace("_", "-")
    value = next(g for g in m.groups()[1:] if g is not None)
    if value == "True":
        return name
    if value == "False":
        return "--no-" + name[2:]
    return f"{name} {value}"


def cli_words(text: str, *, generic: bool = True) -> str:
    """``text`` with Python option spellings (``law='cpt'``, ``run_effect=False``) said as CLI options.

    ``generic=False`` (error messages, which may quote data such as run ids ``code|N=1e+08|r=0.5``) applies the
    known spellings only, not the rule that turns any ``name=value`` into ``--name value``.
    """
    for pattern, repl in _WORDS:
        text = re.sub(pattern, repl, text)
    return _ASSIGN.sub(_option, text) if generic else text


def extrapolation_line(f: Any) -> str | None:
    """What the bands beyond the data rest on: the held-out splits and, where measured, the shared data streams."""
    ex = getattr(f, "extrapolation", None)
    if not ex:
        return None
    line = f"extrapolation: bands beyond the data calibrated by held-out refits ({', '.join(ex.get('splits', []))})"
    if reach := _reach_said(ex.get("discrepancy") or {}):
        line += (f", which measured the law's error out to {reach} beyond what each refit fitted (a question more "
                 "than twice that far out is cautioned)")
    if any(isinstance(k, Mapping) and k.get(ONE_SIZE_REFIT) for k in (ex.get("discrepancy") or {}).values()):
        line += ("; the size split's refit fitted one size, which shows nothing of how the law's error grows with N "
                 "(every question beyond the probed sizes is cautioned)")
    streams = ex.get("streams") or {}
    if streams:
        shares = []
        for t, by in streams.items():
            s = sorted(v["shared_share"] for v in by.values())
            shares.append(f"{s[0]:.0%}" + (f"-{s[-1]:.0%}" if s[-1] - s[0] >= 0.005 else "") + f" ({t} loss)")
        line += ("; runs of different sizes on one data stream share " + ", ".join(shares) + " of their deviations "
                 "from the law, which predictions at a new size on a probed stream inherit")
    if errors := holdout_errors(f):
        line += (f". Held out within the data, the law's predictions were off by {errors} (mean absolute error of "
                 "each refit; the bands beyond the data grow to match)")
    if refits := unconverged_refits_line(f):
        line += f". CAUTION: {refits}"
    return line


#: How the held-out splits read in a sentence (``fitting.holdout``).
_SPLIT_WORDS = {"tokens": "the last third of tokens", "tokens_early": "the last two-thirds of tokens",
                "size": "the largest size", "ratio": "held-out ratios"}


def holdout_errors(f: Any) -> str:
    """``"2.7% (general loss) and 6.4% (domain loss) over the last third of tokens, ..."``: the refits' MAPE.

    Each held-out refit's error before the bands were widened by it: how well the law extrapolated within the
    user's own data, the first thing to know before trusting it further out. Only the fit's law's refits (a
    stack's table holds every candidate's); empty when the fit was not calibrated.
    """
    records = (getattr(f, "extrapolation", None) or {}).get("holdout") or []
    law = getattr(getattr(f, "law", None), "name", None)
    rows = [r for r in records if law is None or r.get("law") in (None, law)]
    said = []
    for split in dict.fromkeys(r.get("split") for r in rows):
        cells = [f"{r['mape']:.1f}% ({r['target']} loss)" for r in rows
                 if r.get("split") == split and r.get("mape") is not None]
        if cells:
            said.append(f"{' and '.join(cells)} over {_SPLIT_WORDS.get(str(split), str(split))}")
    return ", ".join(said)


def unconverged_refits_line(f: Any) -> str | None:
    """``"3 held-out refits did not converge (...): the discrepancy measured on them may move with the seed ..."``.

    What the command line and the report say of a fit's unconverged held-out refits
    (:func:`~bayes_dcpt.fitting.diagnostics.unconverged_said`); None when they converged.
    """
    if not (said := unconverged_said(f)):
        return None
    n, which, what = said
    return (f"{n} held-out refit{'s' if n > 1 else ''} did not converge ({which}): {what} measured on "
            f"{'them' if n > 1 else 'it'} may move with the seed (compare a fit with another seed)")


def _reach_said(kappa: Mapping[str, Any]) -> str:
    """``"4.4x in model size and 8x in tokens"``: how far the held-out refits measured (all targets).

    Not the size of a refit that fitted one size (``size_from_one_size``): it measured nothing of the size trend.
    """
    said = []
    for a, what in (("size", "in model size"), ("tokens", "in tokens")):
        v = [float(r) for k in kappa.values() if isinstance(k, Mapping)
             if not (a == "size" and k.get(ONE_SIZE_REFIT))
             if (r := (k.get("reach") or {}).get(a)) is not None]
        if v:
            said.append(f"{reach_factor(max(v))} {what}")
    return " and ".join(said)


def reach_rows_line(far: Sequence[Mapping[str, Any]], n_rows: int, kind: str = "predictive") -> str:
    """A CAUTION naming the rows of a prediction grid that lie farther out than the fit measured its law's error.

    ``far``: ``[{"row": i, "line": j, "axes": beyond_reach(...)}]`` (rows numbered as the file numbers its data
    rows); the first row's axes are worded in full, the others by number. ``kind="mean"``: the bands are the law's
    parameter uncertainty alone (no discrepancy), which the line says.
    """
    first = far[0]
    where = f"row {first['row']}" + (f" (line {first['line']} of the file)" if "line" in first else "")
    more = [str(r["row"]) for r in far[1:]]
    every = {a: v for r in far for a, v in r["axes"].items()}  # the remedy and the --kind mean clause: all rows'
    widened = bool(set(every) - {EARLY})  # rows only before the data: their band never widens, mean or not
    others = f"; also row{'s' if len(more) > 1 else ''} {', '.join(more[:10])}" + (" ..." if len(more) > 10 else "")
    return (f"CAUTION: {len(far)} of {n_rows} rows lie beyond what the fit's data checked: {where}: "
            f"{reach_words(first['axes'])}{others if more else ''}. Their bands are the law's answer carried out "
            f"there, not measured; {reach_remedy(every)} before acting on them."
            + (" With --kind mean they are narrower still: the law's parameter uncertainty alone, without its error "
               "beyond the data (the default --kind predictive carries it)." if kind == "mean" and widened else ""))


def thin_domains_line(thin: Mapping[str, Mapping[str, float]]) -> str | None:
    """A caution naming the thinly probed domains ``thin``; None when there are none.

    ``thin``: :func:`~bayes_dcpt.fitting.discrepancy.fit_thin_domains` of a fit, or the part of it a command asks
    about (``predict`` names the grid's domains only).

    Such a domain (a new one, its base rows and a probe or two) borrows how its losses change along that axis from
    the prior or the other domains, and no held-out refit measures the law's error for it there.
    """
    if not thin:
        return None
    parts = [f"{dom} at {thin_words(axes)}" for dom, axes in thin.items()]
    return ("CAUTION: thinly probed domain" + ("s" if len(parts) > 1 else "") + ": " + "; ".join(parts) + ". "
            "How such a domain's losses change along that axis comes from the prior (or from the other domains, "
            "under a law that shares its shape), and no held-out refit measured the law's error for it there: its "
            "bands at other sizes or ratios carry the other domains' error, not its own, and are not calibrated (a "
            "new domain's can miss by far; BENCHMARKS.md, \"A new domain\"). Probe it at a second size and ratio "
            "before acting on them (bayes-dcpt suggest --domain NAME ranks the probes).")
