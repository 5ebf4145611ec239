"""How far a question lies outside the probed data, and how much the law's own error may grow out there.

The posterior of a law's parameters assumes the law is right. Beyond the probes -- more tokens, another model size,
a ratio nobody ran -- the law's error grows with the distance, and a fit measures how fast from held-out refits
(the fitting layer stores it on the posterior's ``ctx``)::

    ctx["discrepancy"] = {target: {"tokens": k_t, "size": k_n, "ratio": k_r,      # None: not measured
                                   "domains": {domain: {"tokens": ..., ...}}}}   # optional, per domain
    ctx["discrepancy"][target]["reach"] = {"tokens": Delta, "size": Delta, "ratio": Delta}  # measured out to
    ctx["discrepancy"][target]["size_from_one_size"] = True  # when the size refit fitted a single size
    ctx["envelope"]    = {domain: {"n_max", "n_min", "d_max": {str(N): max tokens probed at N},
                                   "d_min": {str(N): min tokens fitted at N}, "ratios": [r]}}

This module turns them into the sd of the log-loss error at any ``(domain, N, D, r)`` (zero inside the data)::

    sd = sqrt((k_t Delta_tokens)^2 + (k_n Delta_size)^2 + (k_r Delta_ratio)^2)
    Delta_tokens = max(0, log(D / d_max(N)))
    Delta_size   = max(0, log(N / n_max)) + max(0, log(n_min / N))
    Delta_ratio  = distance of r to the nearest probed ratio

``d_max(N)`` is the largest token count probed at that size; at a size nobody probed, the one of the largest probed
size below it, or the largest of all below every probed size. Distances below the smallest probed size count too:
the held-out calibration measures them the same way. A domain missing from the envelope is measured against the
union of the other domains' envelopes (the hierarchical fit pools the domains; its data extent is theirs). A
slope that could not be measured (``None``) adds nothing and is reported as such. A domain's own slopes (measured on
its own held-out errors) replace the pooled ones where they were measured: a domain the law misses must not widen
the bands of the domains it describes.

The held-out refits measure the law's error only as far out as their held-out points lie (``reach``: the largest
size held out is a few times the next; the later tokens a third of a run's log-token range). A question farther out
than :data:`REACH_FACTOR` times that gets its band from the measured slope carried on, an assumption no data
checked: :func:`beyond_reach` finds such questions (and those along an axis no refit measured, those beyond the
sizes of a fit whose size refit had a single size to fit, or on a fit with no calibration at all), :func:`reach_words`
says so.

Before the data the law describes nothing either: a question at fewer tokens than the earliest fitted checkpoint
(``d_min(N)``, the LR warm-up's rows are left out of the fit) lies in the warm-up or before the first evaluation,
where no checkpoint checked the law and no refit measured its error. Its distance ``Delta_early = log(d_min(N) /
D)`` (``D > 0``; ``D = 0`` is the base model, which the data hold) does not widen the band (no slope was measured
backwards), but :func:`beyond_reach` cautions it past :data:`REACH_FACTOR`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AXES", "EARLY", "ONE_SIZE_REFIT", "REACH_AXES", "REACH_FACTOR", "DomainEnvelope", "any_slope",
           "beyond_reach", "discrepancy_slopes", "domain_envelope", "extrapolation_distances", "reach_factor",
           "reach_remedy", "reach_words", "thin_domains", "thin_words"]

#: The directions of extrapolation, in the order of ``ctx["discrepancy"][target]``.
AXES = ("tokens", "size", "ratio")
#: A question more than this factor past the held-out refits' reach (along tokens or size) is cautioned
#: (:func:`beyond_reach`): the refits measured the error out to 4.4x the largest size, so beyond 8.8x it is
#: cautioned. Twice, not once: a little past what was measured is not news (a fit with one token origin reaches a
#: run's last third of log tokens, 4x on the example's runs, the default question's distance); 15,000x the
#: largest probed size when 4.4x was measured is.
REACH_FACTOR = 2.0
#: The axes :func:`beyond_reach` checks. A ratio between the probed ones is an interpolation (and r lies in
#: [0, 1]); the default held-out splits hold no ratio out, so its slope is unmeasured on most fits.
REACH_AXES = ("tokens", "size")
#: The key of :func:`extrapolation_distances`' distance before the earliest fitted checkpoint (not an axis of the
#: discrepancy: it widens no band, :func:`beyond_reach` cautions it).
EARLY = "early_tokens"
#: The key of ``ctx["discrepancy"][target]`` set (True) when the size split's held-out refit fitted a single size:
#: its size slope says nothing of a fit of two sizes beyond them (:func:`beyond_reach` cautions such questions).
ONE_SIZE_REFIT = "size_from_one_size"


@dataclass(frozen=True)
class DomainEnvelope:
    """Where one domain's CPT probes are: sizes with their largest token counts, the size range, the ratios."""

    sizes: np.ndarray
    d_max: np.ndarray
    n_min: float
    n_max: float
    ratios: np.ndarray
    pooled: bool = False
    d_min: np.ndarray | None = None

    def tokens_limit(self, n_params: np.ndarray) -> np.ndarray:
        """``d_max(N)``: probed size -> its largest tokens; else the largest probed size below N; else the widest."""
        n = np.asarray(n_params, float)
        if self.sizes.size == 0:
            return np.full(n.shape, np.inf)
        # sizes are sorted: the probed sizes at or below N are a prefix (a probed size matches within 1e-6)
        i_below = np.sum(self.sizes <= n[..., None] * (1 + 1e-6), axis=-1) - 1
        return np.where(i_below >= 0, self.d_max[np.maximum(i_below, 0)], self.d_max.max())

    def tokens_floor(self, n_params: np.ndarray) -> np.ndarray:
        """``d_min(N)``, read as :meth:`tokens_limit` reads ``d_max`` (0 without a recorded ``d_min``).

        A probed size's earliest fitted tokens, else the one of the largest probed size below N, else the earliest.
        """
        n = np.asarray(n_params, float)
        if self.d_min is None or self.sizes.size == 0:
            return np.zeros(n.shape)
        i_below = np.sum(self.sizes <= n[..., None] * (1 + 1e-6), axis=-1) - 1
        return np.where(i_below >= 0, self.d_min[np.maximum(i_below, 0)], self.d_min.min())


def domain_envelope(envelope: Mapping[str, Any] | None, domain: str) -> DomainEnvelope | None:
    """The envelope of ``domain`` (or the union of all domains' when it is missing); None without any envelope."""
    if not envelope:
        return None
    names = [str(domain)] if str(domain) in envelope else list(envelope)
    d_max: dict[float, float] = {}
    d_min: dict[float, float] = {}
    n_min, n_max, ratios = np.inf, -np.inf, set()
    for name in names:
        env = envelope[name]
        for k, v in dict(env.get("d_max", {})).items():
            d_max[float(k)] = max(float(v), d_max.get(float(k), -np.inf))
        for k, v in dict(env.get("d_min", {})).items():  # fits saved before it have none: nothing is "early"
            d_min[float(k)] = min(float(v), d_min.get(float(k), np.inf))
        n_min = min(n_min, float(env.get("n_min", np.inf)))
        n_max = max(n_max, float(env.get("n_max", -np.inf)))
        ratios |= {float(r) for r in env.get("ratios", [])}
    sizes = np.array(sorted(d_max), float)
    floor = np.array([d_min.get(s, 0.0) for s in sizes], float) if d_min else None
    return DomainEnvelope(sizes, np.array([d_max[s] for s in sizes], float), n_min, n_max,
                          np.array(sorted(ratios), float), pooled=str(domain) not in envelope, d_min=floor)


def extrapolation_distances(env: DomainEnvelope | None, n_params: Any, tokens: Any,
                            r_domain: Any) -> dict[str, np.ndarray]:
    """``{axis: Delta}`` of broadcast raw-count inputs beyond ``env`` (all zero without an envelope).

    The :data:`AXES` and :data:`EARLY` (how far before the earliest fitted checkpoint, ``D > 0``).
    """
    N, D, r = np.broadcast_arrays(*(np.asarray(v, float) for v in (n_params, tokens, r_domain)))
    if env is None:
        return {a: np.zeros(N.shape) for a in (*AXES, EARLY)}
    with np.errstate(divide="ignore", invalid="ignore"):
        tok = np.maximum(0.0, np.nan_to_num(np.log(D / env.tokens_limit(N)), nan=0.0, neginf=0.0))
        floor = env.tokens_floor(N)
        early = np.where((D > 0) & (floor > 0), np.log(floor / np.where(D > 0, D, 1.0)), 0.0)
        size = np.zeros(N.shape)
        if np.isfinite(env.n_max):
            size = size + np.maximum(0.0, np.log(N / env.n_max))
        if np.isfinite(env.n_min):
            size = size + np.maximum(0.0, np.log(env.n_min / N))
    ratio = (np.min(np.abs(r[..., None] - env.ratios), axis=-1) if env.ratios.size else np.zeros(N.shape))
    return {"tokens": tok, "size": np.nan_to_num(size), "ratio": np.nan_to_num(ratio),
            EARLY: np.maximum(0.0, np.nan_to_num(early, nan=0.0, posinf=0.0))}


def discrepancy_slopes(ctx: Mapping[str, Any], target: str,
                       domain: str | None = None) -> tuple[dict[str, float], list[str]]:
    """The slopes ``{axis: kappa}`` of ``target`` (unmeasured ones as 0) and the axes left unmeasured.

    With ``domain``, that domain's own slope on each axis where it was measured, else the pooled one.
    """
    disc = (ctx.get("discrepancy") or {}).get(target) or {}
    own = ((disc.get("domains") or {}).get(str(domain)) or {}) if domain is not None else {}
    slopes, missing = {}, []
    for a in AXES:
        v = own.get(a)
        if v is None or not np.isfinite(float(v)):
            v = disc.get(a)
        if v is None or not np.isfinite(float(v)):
            missing.append(a)
            slopes[a] = 0.0
        else:
            slopes[a] = max(float(v), 0.0)
    return slopes, missing


def any_slope(ctx: Mapping[str, Any], target: str) -> bool:
    """True when some slope of ``target`` (pooled or a domain's own) is > 0."""
    disc = (ctx.get("discrepancy") or {}).get(target) or {}
    values = [disc.get(a) for a in AXES] + [d.get(a) for d in (disc.get("domains") or {}).values() for a in AXES]
    return any(v is not None and np.isfinite(float(v)) and float(v) > 0 for v in values)


def thin_domains(envelope: Mapping[str, Any] | None) -> dict[str, dict[str, float]]:
    """The domains probed at one model size, or at one ratio, where the other domains' probes span several.

    ``{domain: {"size": N, "ratio": r}}`` with the thin axes only (empty when no domain is thin). Such a domain is
    a new one (its base rows and a probe run or two): its own measurements cannot show how its losses change along
    that axis (the prior says it, or the other domains' shape under a shared law), and no held-out refit measures
    the law's error for it there, so its bands beyond its probes are not calibrated (BENCHMARKS.md, "A new domain
    from its base rows and two probe checkpoints").
    """
    if not envelope:
        return {}
    sizes = {d: {float(k) for k in dict(env.get("d_max", {}))} for d, env in envelope.items()}
    ratios = {d: {float(r) for r in env.get("ratios", [])} for d, env in envelope.items()}
    out: dict[str, dict[str, float]] = {}
    for d in envelope:
        axes = {}
        for axis, own in (("size", sizes), ("ratio", ratios)):
            others = set().union(*(v for k, v in own.items() if k != d))
            if len(own[d]) == 1 and len(others) > 1:
                axes[axis] = next(iter(own[d]))
        if axes:
            out[str(d)] = axes
    return out


def thin_words(axes: Mapping[str, float]) -> str:
    """``"one model size (N = 13,408) and one ratio (r = 1)"``: where a thin domain was probed (its thin axes)."""
    said = [f"one model size (N = {axes['size']:,.0f})" if "size" in axes else "",
            f"one ratio (r = {axes['ratio']:g})" if "ratio" in axes else ""]
    return " and ".join(w for w in said if w)


def beyond_reach(ctx: Mapping[str, Any], target: str, distances: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The axes along which a question lies farther beyond the data than the fit measured its law's error.

    ``distances``: one question's ``{axis: Delta}`` (:func:`extrapolation_distances`). Returns, for each axis of
    :data:`REACH_AXES` with ``Delta > 0`` that is not covered, ``{"distance": Delta, "reach": measured distance or
    None, "why": ...}``; ``why`` is ``"uncalibrated"`` (the fit has no discrepancy: its bands beyond the data are
    the parameters' uncertainty alone), ``"unmeasured"`` (no held-out point lay beyond the data along this axis,
    e.g. one probed model size: the band does not grow along it), ``"one size"`` (beyond the probed sizes of a fit
    whose size refit fitted a single size: ``ctx["discrepancy"][target]["size_from_one_size"]``, a slope that
    refit could not measure, since it has no size trend of its own) or ``"beyond"`` (``exp(Delta)`` more than
    :data:`REACH_FACTOR` times the factor ``exp(reach)`` the refits measured out to). Empty when the question
    lies within reach. A fit saved before reaches were recorded has slopes without a reach: only its unmeasured
    axes are reported. And :data:`EARLY` (``why="early"``) when the question lies more than :data:`REACH_FACTOR`
    times before the earliest fitted checkpoint, calibrated or not: no data checked the law there.
    """
    disc = (ctx.get("discrepancy") or {}).get(target)
    out: dict[str, dict[str, Any]] = {}
    for a in REACH_AXES:
        d = float(np.max(np.asarray(distances.get(a, 0.0), float)))
        if not d > 1e-9:
            continue
        reach = ((disc or {}).get("reach") or {}).get(a)
        if not disc:
            out[a] = {"distance": d, "reach": None, "why": "uncalibrated"}
        elif disc.get(a) is None:
            out[a] = {"distance": d, "reach": None, "why": "unmeasured"}
        elif a == "size" and disc.get(ONE_SIZE_REFIT):
            out[a] = {"distance": d, "reach": None if reach is None else float(reach), "why": "one size"}
        elif reach is not None and d > float(reach) + np.log(REACH_FACTOR):
            out[a] = {"distance": d, "reach": float(reach), "why": "beyond"}
    early = float(np.max(np.asarray(distances.get(EARLY, 0.0), float)))
    if early > np.log(REACH_FACTOR):
        out[EARLY] = {"distance": early, "reach": None, "why": "early"}
    return out


def reach_words(far: Mapping[str, Mapping[str, Any]]) -> str:
    """What :func:`beyond_reach` found, in words.

    E.g. ``"model size 15,793x outside the probed sizes (the held-out refits measured the law's error out to
    4.39x). That far out ..."``.
    """
    what = {"size": "model size {f} outside the probed sizes", "tokens": "tokens {f} beyond the probed tokens",
            EARLY: "tokens {f} below the earliest fitted checkpoint"}
    parts = []
    for a, v in far.items():
        said = what[a].format(f=reach_factor(v["distance"]))
        if v["why"] == "beyond":
            said += f" (the held-out refits measured the law's error out to {reach_factor(v['reach'])})"
        elif v["why"] == "unmeasured":
            said += " (no held-out refit measured the law's error along it: the band does not widen there)"
        elif v["why"] == "one size":
            said += (" (the held-out refit that measured the law's error in N fitted one size, so it had no size "
                     "trend to extrapolate and cannot show how a fit of two sizes errs beyond them: the band there "
                     "is unchecked, and r* most of all, where two close losses cross)")
        elif v["why"] == "early":
            said += (" (the law describes no data there: the LR warm-up, left out of the fit, or before the first "
                     "evaluation; the band does not widen there)")
        parts.append(said)
    text = "; ".join(parts)
    if any(v["why"] == "uncalibrated" for v in far.values()):
        return (text + ", and the fit's bands were not calibrated for extrapolation (fitted without its held-out "
                "refits): they carry the law's parameter uncertainty alone, not its error out there")
    if any(v["why"] == "beyond" for v in far.values()):
        text += (". That far out the band widens by the growth measured nearer, carried on: an assumption no data "
                 "checked")
    return text


def reach_remedy(far: Mapping[str, Mapping[str, Any]]) -> str:
    """What to do about what :func:`beyond_reach` found: probe closer to it, and/or ask where the runs were fitted."""
    said = ["probe closer to it (a larger size, longer runs)"] if set(far) - {EARLY} else []
    if EARLY in far:
        said.append("ask at tokens the runs were fitted at (the law describes CPT from its earliest fitted checkpoint "
                    "on; no checkpoint checked it before)")
    return " and ".join(said)


def reach_factor(distance: float) -> str:
    """A log distance as a multiple: ``"4.39x"``, ``"15,793x"``."""
    f = float(np.exp(distance))
    return f"{f:.3g}x" if f < 1000 else f"{f:,.0f}x"
