"""Sampler diagnostics of a fit (R-hat, ESS, divergences, BFMI) and what to try when they are bad.

The thresholds are :mod:`bayes_dcpt.constants`; a fit keeps its :class:`Diagnostics` in its model card, so a
loaded fit reports the diagnostics of the run that produced it. :func:`warn_convergence` says in one warning what
failed: the fit's sampler checks and its held-out refits (:mod:`~bayes_dcpt.fitting.extrapolation`) that did not
converge.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.constants import BFMI_MIN, ESS_MIN, RHAT_MAX
from bayes_dcpt.errors import ConvergenceWarning
from bayes_dcpt.fitting.config import FitConfig

__all__ = ["APPROXIMATE_SAMPLERS", "RHAT_NEEDS_CHAINS", "Diagnostics", "chain_labels", "dcpt_remedies", "diagnose",
           "diagnostics_from_card", "dynamics_remedies", "misfit_remedies", "number_or_na", "reduce_present",
           "sampler_remedy", "separated_chains", "separated_words", "unconverged_refits", "unconverged_refits_words",
           "unconverged_said", "warn_convergence"]

#: Samplers that approximate the posterior (no MCMC diagnostics).
APPROXIMATE_SAMPLERS = ("laplace", "advi")
#: The problem of a run with one chain: R-hat compares chains, so it has none (NaN), and an unchecked run is not a
#: converged one. The CLI says ``--chains 2`` (:func:`~bayes_dcpt.report.wording.cli_words`).
RHAT_NEEDS_CHAINS = "R-hat needs at least 2 chains: run chains=2 or more"


def number_or_na(value: Any, fmt: str) -> str:
    """``value`` formatted with ``fmt``, or ``n/a`` when it is missing (NaN: R-hat of one chain, BFMI unrecorded).

    How every diagnostic value is written for a reader (this summary, the report): never ``nan``.
    """
    try:
        return format(float(value), fmt) if np.isfinite(value) else "n/a"
    except (TypeError, ValueError):
        return "n/a"


@dataclass(frozen=True)
class Diagnostics:
    """Sampler diagnostics of a fit; ``ok`` is False when any threshold is crossed."""

    sampler: str
    divergences: int
    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    bfmi_min: float
    draws: int
    chains: int
    seconds: float
    approximate: bool = False
    problems: tuple[str, ...] = ()
    #: Where the law does not describe the data (failed posterior predictive checks); empty when it does.
    misfit: tuple[str, ...] = ()
    #: Groups of chains that share no posterior region (:func:`separated_chains`), by chain label; empty when the
    #: chains overlap (or R-hat passes). Two or more groups: separate modes, which more draws do not join.
    chain_groups: tuple[tuple[int, ...], ...] = ()

    @property
    def sampler_ok(self) -> bool:
        """True when R-hat, ESS, divergences and BFMI are all in the safe range."""
        return not self.problems

    @property
    def ok(self) -> bool:
        """True when the sampler converged *and* the law describes the data."""
        return not self.problems and not self.misfit

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (used in model cards, reports and ``--json``)."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}  # as JSON reads back
        d["ok"] = self.ok
        d["sampler_ok"] = self.sampler_ok
        d["adequate"] = not self.misfit
        return d

    def __str__(self) -> str:
        parts = ([] if self.sampler_ok else ["PROBLEMS: " + "; ".join(self.problems)]) + \
            ([] if not self.misfit else [f"MISFIT: the law does not describe the data ({'; '.join(self.misfit)})"])
        head = "OK" if self.ok else " | ".join(parts)
        if self.approximate:
            return f"{self.sampler} (approximate, no MCMC diagnostics): {head}"
        n = number_or_na
        return (f"{self.sampler}, {self.chains} chain{'' if self.chains == 1 else 's'} x {self.draws} draws, "
                f"{self.seconds:.1f} s: divergences {self.divergences}, R-hat max {n(self.rhat_max, '.4f')}, "
                f"ESS bulk min {n(self.ess_bulk_min, '.0f')}, ESS tail min {n(self.ess_tail_min, '.0f')}, "
                f"BFMI min {n(self.bfmi_min, '.2f')} -> {head}")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython and Jupyter show the one-line verdict above, not the dataclass's field list."""
        p.text("Diagnostics(...)" if cycle else str(self))


def _values(obj: Any, names: list[str]) -> np.ndarray:
    """All values of the variables ``names`` in an ArviZ result (DataTree or Dataset), flattened."""
    ds = obj["posterior"].to_dataset() if hasattr(obj, "children") and "posterior" in obj.children else obj
    if hasattr(ds, "to_dataset"):
        ds = ds.to_dataset()
    return np.concatenate([np.ravel(np.asarray(ds[n])) for n in names if n in ds])


def reduce_present(values: Any, reduce: Any) -> float:
    """``reduce`` (max or min) over the values that are there (not NaN or None); NaN when none is.

    R-hat of one chain is missing (NaN), not bad; an infinite R-hat (chains stuck apart) is kept: it is the worst
    value, not a missing one. No All-NaN RuntimeWarning.
    """
    values = np.asarray([np.nan if v is None else v for v in np.ravel(values)], dtype=float)
    values = values[~np.isnan(values)]
    return float(reduce(values)) if values.size else float("nan")


def _bfmi_min(idata: Any) -> float:
    import arviz as az

    try:
        bf = az.bfmi(idata)
        return float(np.nanmin(np.asarray(bf.to_dataset().to_array() if hasattr(bf, "to_dataset") else bf)))
    except Exception:  # energy not recorded by this sampler
        return float("nan")


#: Quantiles of a chain's draws that bound "its region" of a parameter: two chains whose [1%, 99%] ranges of one
#: parameter do not meet share no region of the posterior there.
APART_QUANTILES = (0.01, 0.99)
#: Largest split-R-hat within a group of chains for the groups to be called modes: chains that drift slowly through
#: one posterior (too few draws) also fail to meet, but are not settled within themselves; for them more draws are
#: the remedy, and they are not called modes.
SETTLED_RHAT = 1.05


def chain_labels(post: Any) -> list[int]:
    """The posterior's chain labels as integers (their positions when a label is not an integer)."""
    values = list(np.asarray(post["chain"].values)) if "chain" in post.coords else []
    try:
        labels = [int(c) for c in values]
    except (TypeError, ValueError):
        return list(range(int(post.sizes.get("chain", len(values)))))
    return labels if len(set(labels)) == len(labels) else list(range(len(labels)))


def _split_rhat(x: np.ndarray) -> float:
    """Largest split-R-hat (Gelman et al. 2013) over the parameters of draws ``(chain, draw, parameter)`` (ArviZ's)."""
    from arviz_stats.base import array_stats

    if x.shape[1] < 4 or x.shape[2] == 0:  # too few draws to split
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.asarray(array_stats.rhat(x, chain_axis=0, draw_axis=1, method="split"), float)
    r[np.ptp(x, axis=(0, 1)) == 0] = 1.0  # a constant parameter agrees across chains (ArviZ gives NaN)
    return float(np.nanmax(r)) if np.isfinite(r).any() else float("nan")  # e.g. one chain: nothing to compare


def _chain_parameters(post: Any, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Draws ``(chain, draw, parameter)`` of every element of ``names``, and each element's label.

    Labels name the element's coordinates, e.g. ``B[domain, c_headers]``.
    """
    cols, labels = [], []
    for n in names:
        da = post[n]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        arr = np.asarray(da.transpose("chain", "draw", *other), float)
        arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
        cols.append(arr)
        if not other:
            labels.append(str(n))
            continue
        idx = np.indices([da.sizes[d] for d in other]).reshape(len(other), -1).T
        for ix in idx:
            labels.append(f"{n}[" + ", ".join(str(da[d].values[i]) for d, i in zip(other, ix, strict=True)) + "]")
    return np.concatenate(cols, axis=2), labels


def separated_chains(idata: Any, names: list[str], top: int = 3) -> tuple[tuple[tuple[int, ...], ...], list[str]]:
    """Groups of chains that share no posterior region, and the parameters furthest apart between the groups.

    Why: R-hat says chains disagree, not how. Chains that merely mix slowly converge with more draws; chains whose
    ranges of some parameter do not even meet (:data:`APART_QUANTILES`) while each group is settled within itself
    (split-R-hat at most :data:`SETTLED_RHAT` over the group's chains) sit in separate modes, and more tuning or
    draws leaves them there (on the long-CPT grid, the D-CPT law's chains split two and two between two ways of
    missing one domain's loss, R-hat 1.73: BENCHMARKS.md). Two chains are in one group when every parameter's
    ranges meet (groups: the connected components). The parameters named are those that keep two groups apart,
    those whose group means differ most first, in units of the within-chain sd.

    Returns ``((), [])`` when the chains form one group, a group is not settled (slow chains, not modes), or there
    is one chain. Groups are given by chain label (:func:`chain_labels`).
    """
    post = idata["posterior"]
    names = [n for n in names if n in post.data_vars]
    if not names or int(post.sizes.get("chain", 1)) < 2:
        return (), []
    x, labels = _chain_parameters(post, names)
    ok = np.all(np.isfinite(x), axis=(0, 1))
    x, labels = x[:, :, ok], [lab for lab, k in zip(labels, ok, strict=True) if k]
    lo, hi = np.quantile(x, APART_QUANTILES, axis=1)  # (chain, parameter)
    n = x.shape[0]
    apart = (hi[:, None, :] < lo[None, :, :]) | (hi[None, :, :] < lo[:, None, :])  # (chain, chain, parameter)
    group = list(range(n))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if not apart[i, j].any():
                group[root(j)] = root(i)
    roots = sorted({root(i) for i in range(n)}, key=lambda r: min(i for i in range(n) if root(i) == r))
    if len(roots) < 2:
        return (), []
    member = np.array([roots.index(root(i)) for i in range(n)])
    if any(not _split_rhat(x[member == g]) <= SETTLED_RHAT for g in range(len(roots))):
        return (), []  # a group still drifting: slow chains, whose remedy is more draws
    chain_ids = chain_labels(post)
    groups = tuple(tuple(chain_ids[i] for i in range(n) if member[i] == g) for g in range(len(roots)))
    mean, sd = x.mean(axis=1), x.std(axis=1)
    gmean = np.array([mean[member == g].mean(axis=0) for g in range(len(roots))])
    gsd = np.sqrt(np.array([np.mean(sd[member == g] ** 2, axis=0) for g in range(len(roots))]).mean(axis=0))
    across = member[:, None] != member[None, :]
    separating = np.flatnonzero(apart[across].any(axis=0))  # parameters that keep chains of two groups apart
    gap = np.ptp(gmean, axis=0)
    spread = np.where(gsd > 0, gap / np.where(gsd > 0, gsd, 1.0), np.inf)
    order = separating[np.argsort(-spread[separating], kind="stable")][:top]
    return groups, [f"{labels[k]} ({spread[k]:.0f} sd)" if np.isfinite(spread[k])
                    else f"{labels[k]} (constant within each chain)" for k in order]


def separated_words(groups: tuple[tuple[int, ...], ...], params: list[str]) -> str:
    """:func:`separated_chains` as a problem line: which chains, how far apart, in what."""
    said = " | ".join(", ".join(str(c) for c in g) for g in groups)
    return (f"the chains sit in {len(groups)} separate modes (chains {said}), each settled, that share no posterior "
            f"region, furthest apart in {', '.join(params)}: more draws will not join them")


def diagnose(idata: Any, sampler: str, var_names: list[str], seconds: float, draws: int, chains: int) -> Diagnostics:
    """The diagnostics of a sampler run over the parameters ``var_names`` (those present in the posterior)."""
    import arviz as az

    if sampler in APPROXIMATE_SAMPLERS:
        return Diagnostics(sampler, 0, float("nan"), float("nan"), float("nan"), float("nan"), draws, chains,
                           seconds, True, (f"{sampler} is an approximation: no convergence diagnostics; "
                                           "check against NUTS before trusting intervals",))
    post = idata["posterior"]
    names = [v for v in var_names if v in post.data_vars]
    n_chains = int(dict(post.sizes).get("chain", chains))
    with warnings.catch_warnings():  # one chain: R-hat is NaN by definition; said as a problem below, not warned
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat_max = reduce_present(_values(az.rhat(idata, var_names=names), names), np.max)
        ess_b = reduce_present(_values(az.ess(idata, var_names=names, method="bulk"), names), np.min)
        ess_t = reduce_present(_values(az.ess(idata, var_names=names, method="tail"), names), np.min)
    ss = idata["sample_stats"] if "sample_stats" in idata.children else None
    div = int(np.asarray(ss["diverging"]).sum()) if ss is not None and "diverging" in ss else 0
    bfmi_min = _bfmi_min(idata)
    problems = []
    groups: tuple[tuple[int, ...], ...] = ()
    if div > 0:
        problems.append(f"{div} divergent transitions")
    if n_chains < 2:
        problems.append(RHAT_NEEDS_CHAINS)
    elif not np.isfinite(rhat_max):
        problems.append("R-hat could not be computed")
    elif rhat_max > RHAT_MAX:
        problems.append(f"R-hat {rhat_max:.3f} > {RHAT_MAX}")
        groups, params = separated_chains(idata, names)
        if groups:
            problems.append(separated_words(groups, params))
    if not (np.isfinite(ess_b) and np.isfinite(ess_t)):
        problems.append("ESS could not be computed")
    elif ess_b < ESS_MIN or ess_t < ESS_MIN:
        failing = [f"{k} {v:.0f}" for k, v in (("bulk", ess_b), ("tail", ess_t)) if v < ESS_MIN]
        problems.append(f"ESS ({', '.join(failing)}) < {ESS_MIN}")  # each failing one named, with its value
    if np.isfinite(bfmi_min) and bfmi_min < BFMI_MIN:
        problems.append(f"BFMI {bfmi_min:.2f} < {BFMI_MIN}")
    return Diagnostics(sampler, div, rhat_max, ess_b, ess_t, bfmi_min, draws, chains, seconds, False,
                       tuple(problems), chain_groups=groups)


def diagnostics_from_card(card: Mapping[str, Any]) -> Diagnostics:
    """The :class:`Diagnostics` stored in a model card (a missing value, NaN written as JSON ``null``, is NaN again)."""
    skip = ("ok", "sampler_ok", "adequate")
    floats = ("rhat_max", "ess_bulk_min", "ess_tail_min", "bfmi_min")

    def value(k: str, v: Any) -> Any:
        if k in ("problems", "misfit"):
            return tuple(v)
        if k == "chain_groups":
            return tuple(tuple(int(c) for c in g) for g in v)
        return float("nan") if k in floats and v is None else v

    return Diagnostics(**{k: value(k, v) for k, v in card["diagnostics"].items() if k not in skip})


def sampler_remedy(sampler_config: Mapping[str, Any] | None = None, diagnostics: Diagnostics | None = None) -> str:
    """The generic sampler remedy, with a ``target_accept`` above the one the fit used (0.9 -> 0.95 -> 0.98).

    When the chains sit in separate modes (``diagnostics.chain_groups``), more draws are no remedy: say what is.
    """
    if diagnostics is not None and len(diagnostics.chain_groups) > 1:
        return _modes_remedy(sampler_config, diagnostics.divergences, " (or one fit per domain)")
    return f"more tuning and draws, sampler_kwargs={{'target_accept': {_next_accept(sampler_config)}}}, " \
           "or a simpler law"


def _next_accept(sampler_config: Mapping[str, Any] | None) -> float:
    """A ``target_accept`` above the one the fit sampled with (0.9, nutpie's setting here, when not recorded)."""
    used = float(((sampler_config or {}).get("settings") or {}).get("target_accept", 0.9))
    return 0.95 if used < 0.95 else 0.98


def _modes_remedy(sampler_config: Mapping[str, Any] | None, divergences: int, alternative: str = "") -> str:
    """The remedy for chains in separate modes (``alternative``: another way out, said after the law's)."""
    return ("separate modes, which more draws will not join: the law fits the data two ways or more (or a chain is "
            "stuck in a poor one); compare the modes' predictions with held-out checkpoints (in Python: "
            f"bayes_dcpt.load_fit(path).modes()), then use a law that describes the data{alternative}"
            + (f", and sampler_kwargs={{'target_accept': {_next_accept(sampler_config)}}} for the divergences"
               if divergences else ""))


def dcpt_remedies(config: FitConfig, data: pd.DataFrame, n_domains: int,
                  sampler_config: Mapping[str, Any] | None = None,
                  diagnostics: Diagnostics | None = None) -> list[str]:
    """What to try when a D-CPT fit's diagnostics are bad, most specific first (from its model and data)."""
    out = []
    cpt = data[data["tokens"] > 0] if "tokens" in data else data
    runs = cpt["run_id"].nunique() if "run_id" in cpt else 0
    if config.run_effect and 0 < runs < 8:
        out.append(f"only {runs} runs: a per-run offset is hardly identified beside the checkpoint noise, "
                   "try run_effect=False")
    if config.run_effect and config.run_offsets == "latent":
        out.append("sampled run offsets: try run_offsets='marginal' (integrated out; 4-7x the ESS)")
    if config.run_effect and config.run_offsets == "marginal" and not config.robust:
        out.append("Normal likelihood with integrated run offsets: try robust=True (outlying checkpoints made "
                   "it diverge on the example grid) or run_offsets='latent'")
    if n_domains >= 2 and config.domain_levels == "pooled":
        out.append("several domains: try domain_levels='separate' (each domain's own domain-loss level)")
    out.append(sampler_remedy(sampler_config, diagnostics))
    return out


def misfit_remedies(adequacy: Any, law_family: str, n_domains: int = 1) -> list[str]:
    """What to try when the law does not describe the data, from where the checks failed (``n_domains``: fitted)."""
    failed = {c.check for c in adequacy.failures}
    out = []
    if law_family in ("dcpt", "cross-domain", "chinchilla") and failed - {"tails"}:
        out.append("a law that describes CPT curves: law='cpt' (anchored at the base model; forgetting and saturating "
                   "learning) or law='auto' (laws weighed by how they extrapolate)")
    elif failed - {"tails"} and law_family == "auto":
        out.append("other candidate laws (candidates=...); where one domain or size fails, check its probes (a "
                   "diverged run, a data-order artefact) before trusting its predictions")
    elif failed - {"tails"}:
        out.append("law='auto' (laws weighed by how they extrapolate); where one domain or size fails, check its "
                   "probes (a diverged run, a data-order artefact) before trusting its predictions")
    if law_family == "dcpt" and n_domains >= 2 and failed - {"tails"}:
        out.append("one fit per domain, each on its own rows: fitted together, the domains share eps and eta and "
                   "pool the exponents, so a domain the law misses can still pull the others' fits (each domain "
                   "has its own noise scales; measured on the long-CPT grid: BENCHMARKS.md)")
    if "trend_tokens" in failed:
        out.append("the early checkpoints inside the LR warm-up follow another curve: drop them (tokens below a few "
                   "warm-up lengths) or fit the LR-aware dynamics law (fit_dynamics)")
    if "tails" in failed:
        out.append("heavy-tailed noise stands in for the misfit: do not trust the bands until the law fits")
    return out


def unconverged_refits(fit: Any) -> dict[str, str]:
    """``{split: why}`` for the held-out refits of ``fit`` whose draws cannot be trusted to average densities.

    Read from the held-out table the fit keeps: ``fit.extrapolation["holdout"]`` of one law; a ``law="auto"``
    fit's ``holdout`` (every candidate's refits, keyed ``"law split"``: a law without weight might have earned
    some with a converged refit). Empty when every refit converged, or for fits saved before this was recorded.
    """
    table = getattr(fit, "holdout", None)
    rows = (table.to_dict(orient="records") if isinstance(table, pd.DataFrame)
            else (getattr(fit, "extrapolation", None) or {}).get("holdout") or [])
    out: dict[str, str] = {}
    for row in rows:
        if isinstance(row.get("refit_unconverged"), str) and row["refit_unconverged"]:
            key = f"{row['law']} {row['split']}" if isinstance(table, pd.DataFrame) else str(row["split"])
            out.setdefault(key, row["refit_unconverged"])
    return out


def unconverged_said(fit: Any) -> tuple[int, str, str] | None:
    """:func:`unconverged_refits` in words: ``(how many, "split: why; ...", "what rests on them")``, or None."""
    bad = unconverged_refits(fit)
    if not bad:
        return None
    what = "the discrepancy and the laws' weights" if hasattr(fit, "weights") else "the discrepancy"
    return len(bad), "; ".join(f"{k}: {v}" for k, v in bad.items()), what


def unconverged_refits_words(fit: Any) -> str | None:
    """:func:`unconverged_said` as the sentence a warning says (from ``held-out refits did not converge``), or None.

    The fit itself may be fine; what rests on those refits (the discrepancy beyond the data, ``law="auto"``'s
    weights) may move with the seed: on the example grid the early-origin refit (R-hat 1.027 at 4 x 1,000) put two
    seeds' held-out elpd 65 apart (BENCHMARKS.md, "Held-out elpd ... two seeds").
    """
    if not (said := unconverged_said(fit)):
        return None
    _, which, what = said
    return (f"held-out refits did not converge ({which}): {what} measured on them may move with the seed; compare a "
            "fit with another seed, or give the refits more draws "
            "(bayes_dcpt.fit(..., discrepancy={'retry': {'draws': 2000, 'tune': 2000, 'chains': 4}})).")


def warn_convergence(fit: Any, sampler: str | None, stacklevel: int = 3) -> None:
    """One :class:`~bayes_dcpt.errors.ConvergenceWarning` for ``fit``, naming every check that failed, if any did.

    ``sampler``: the fit's own failing sampler checks said (None when they pass); the held-out refits that did not
    converge (:func:`unconverged_refits_words`) are added to the same message, so a fit warns once, not once for
    itself and again for its refits. ``stacklevel``: as the caller would give :func:`warnings.warn`.
    """
    refits = unconverged_refits_words(fit)
    if sampler and refits:
        text = f"{sampler} Also, {refits}"
    elif sampler or refits:
        text = sampler or f"bayes-dcpt: {refits}"
    else:
        return
    warnings.warn(text, ConvergenceWarning, stacklevel=stacklevel + 1)


def dynamics_remedies(diagnostics: Diagnostics | None = None) -> list[str]:
    """What to try when a dynamics fit's diagnostics are bad (chains in separate modes: not more draws)."""
    if diagnostics is not None and len(diagnostics.chain_groups) > 1:
        return [_modes_remedy(None, diagnostics.divergences)]
    return ["more tuning/draws, or a simpler law variant"]
