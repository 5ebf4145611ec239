"""The base-anchored CPT law: continual pre-training as a change from the base model the user already has.

The D-CPT forms describe a loss that falls with D from a level set by N and r; measured CPT probes do something
else: the domain loss starts at the base model's and falls along a saturating curve of the domain tokens seen,
and the general loss *rises* (forgetting) as domain tokens displace general ones, more the larger the domain
share. This law anchors both at the measured base-model losses ``L0`` (``D = 0`` gives them exactly) and models
the change (``s`` = the domain share, ``c = 2 / L0_general(N)`` the base model's capability, which carries the
size dependence)::

    general:  L_g = L0_g [1 + (a c^phi (s / u) + w c^phi_w) sat(lam c^psi u D; kappa) - h (1 - s) log(1 + D / D_ref)],
              u = s + rho c^chi (1 - s)              (general tokens undo forgetting rho c^chi times faster)
    domain:   L_d = L0_d [1 - g(c) (m / u) sat(lam c^psi u D; kappa)],  g(c) = expit(logit(a) + phi log c),
              m = s (1 + s_c) / (s + s_c),  u = m + rho (1 - s)
    sat(x; kappa) = 1 - (1 + x / kappa)^(-kappa)     (0 at x = 0, slope 1, saturating; exp(-x) as kappa -> inf)

``w c^phi_w`` is the optional re-warming rise (``fit(..., rewarm=True)``; without it ``w = 0``): CPT re-warms the
learning rate above the base model's final one, which lifts the general loss at every mixture, r = 0 included
(Gupta et al. 2023), more the more capable the model; it shares the forgetting's saturation, so the law still
starts at the base loss. Measured, it describes the r = 0 runs and calibrates a new ratio's band, but the rise is a
transient that fades as the model adapts to the new LR, and held constant it extrapolates worse in tokens and size:
opt-in (BENCHMARKS.md, "The re-warming rise"). ``share_power=True`` replaces ``s`` in the forgetting's amplitude by
``s^eta_s`` (each domain its own ``eta_s``; 1 is the form above): a domain whose general loss rises early in r
(codec_tables on the example grid) bends with ``eta_s`` below 1 (BENCHMARKS.md, "The share's exponent").
``transfer=True`` lets the general loss keep learning from the domain tokens too: ``h ((1 - s) + xi s)`` in place
of ``h (1 - s)``, each domain its own ``xi``; late in CPT the general loss at high r recovers faster than the
general tokens alone explain, and without it r* at a larger size sits low (BENCHMARKS.md, "Why r* at a larger size
misses", "The transfer with one rate exponent"). The general loss's
replay balance grows with the model's capability, ``rho c^chi`` (each domain its own ``chi``; ``replay_size``, the
default since 2026-12-07; without it ``chi = 0``): on both probe grids the forgetting of pure-domain CPT (r = 1)
grows with N while the general loss of mixed runs does not, which only a replay that works better in larger models
describes; without it the law's r* fell with N where the measured crossing does not (BENCHMARKS.md, "Replay that
grows with the model").

The amplitudes are relative to the base loss (``a``: forgetting at s = 1 as a share of L0_g; for the domain loss
the largest share of L0_d that CPT can remove, kept below 1 at every size by the logistic ``g``).
Limits: ``D -> 0`` gives the base losses; ``s -> 0`` leaves the domain loss at its base and lets the general loss
improve only through ``h``; forgetting and learning saturate; the domain loss stays positive. ``lam`` is the rate
per billion tokens. Chosen by how it extrapolates on real probe
grids (later tokens, a larger size, held-out ratios); see BENCHMARKS.md. Inputs: ``N``, ``D`` (billions), ``r``
(the target's own ratio, as for every law), ``L0`` (the target's base loss), ``L0g`` (the base general loss),
``D_ref`` (billions) and ``target`` (``"general"`` or ``"domain"``: the two losses have different forms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bayes_dcpt.laws.base import TINY, Law, Param, Prior

__all__ = ["CPT_LAW", "general_learning", "powered_share", "replay", "saturation"]


def saturation(xp: Any, x: Any, kappa: Any) -> Any:
    """``1 - (1 + x / kappa)^(-kappa)``: 0 at 0 with slope 1, tends to 1 (``1 - exp(-x)`` as kappa grows)."""
    return -xp.expm1(-kappa * xp.log1p(x / kappa))


def powered_share(xp: Any, s: Any, eta: Any) -> Any:
    """``s^eta`` for a share ``s`` in [0, 1], exactly 0 at ``s = 0`` for every ``eta > 0``.

    A floor alone would not do: at a small exponent (0.04) a floor of 1e-12 still gives 0.33, a forgetting term on
    the r = 0 runs the law has none of (a point fit used exactly that to reach 0.04 for codec_tables; 0.13 without).
    The floor inside the log keeps the gradient finite.
    """
    return xp.where(s > 0, xp.exp(eta * xp.log(xp.maximum(s, TINY))), 0.0)


def general_learning(s: Any, p: Mapping[str, Any]) -> Any:
    """The share of the general loss's continued learning ``h``: ``1 - s``, plus ``xi s`` with the transfer.

    One copy for the law and the PyMC model (numpy or PyTensor alike): without ``xi`` only the general tokens teach
    the general corpus; with it the domain tokens do too, ``xi`` times as much each.
    """
    return (1.0 - s) + (p["xi"] * s if "xi" in p else 0.0)


def replay(xp: Any, p: Mapping[str, Any], logc: Any) -> Any:
    """The general loss's replay balance: ``rho``, times ``c^chi`` with ``replay_size`` (``chi`` in ``p``).

    One copy for the law and the PyMC model: general tokens undo forgetting ``rho`` times faster than domain tokens
    cause it, and with ``chi > 0`` the more so the more capable the model.
    """
    return p["rho"] * xp.exp(p["chi"] * logc) if "chi" in p else p["rho"]


def _cpt(xp: Any, p: Mapping[str, Any], x: Mapping[str, Any]) -> Any:
    domain = x.get("target", "domain") == "domain"
    s = x["r"] if domain else 1.0 - x["r"]
    logc = xp.log(2.0 / x["L0g"])
    rate = p["lam"] * xp.exp(p["psi"] * logc)
    if domain:
        m = s * (1.0 + p["sc"]) / (s + p["sc"])
        u = m + p["rho"] * (1.0 - s)
        g = 1.0 / (1.0 + xp.exp(-(xp.log(p["amp"] / (1.0 - p["amp"])) + p["phi"] * logc)))
        return x["L0"] * (1.0 - g * (m / u) * saturation(xp, rate * u * x["D"], p["kappa"]))
    u = s + replay(xp, p, logc) * (1.0 - s)
    share = s if "eta_s" not in p else powered_share(xp, s, p["eta_s"])  # s^eta_s (share_power, opt-in)
    amp = p["amp"] * xp.exp(p["phi"] * logc) * (share / u)
    if "w" in p:  # the re-warming rise (fits without it have none)
        amp = amp + p["w"] * xp.exp(p["phi_w"] * logc)
    forget = amp * saturation(xp, rate * u * x["D"], p["kappa"])
    return x["L0"] * (1.0 + forget - p["h"] * general_learning(s, p) * xp.log1p(x["D"] / x["D_ref"]))


def _p(name: str, doc: str, prior: Prior) -> Param:
    return Param(name, doc, "log", (0.0,), prior)


#: Parameters; ``h``, ``w``, ``phi_w``, ``eta_s``, ``xi`` and ``chi`` are used by the general loss only, ``sc``
#: by the domain loss only.
_PARAMS = (
    _p("amp", "relative amplitude: forgetting at s = 1 as a share of L0_g (general); the largest share of L0_d "
       "that CPT removes at c = 1 (domain, in (0, 1))",
       Prior("lognormal", 0.25, 1.2, "a CPT move of about a quarter of the base loss (the fit sets the domain's "
                                     "as logit-normal)")),
    Param("phi", "capability exponent of the amplitude", "identity", (0.0,),
          Prior("normal", 0.0, 1.5, "larger models forget / learn somewhat less or more; c spans little, so wide")),
    _p("lam", "rate per billion tokens at s = 1",
       Prior("lognormal", 1.0, 1.5, "centred on the inverse of the data's middle token count (set by the fit)")),
    Param("psi", "capability exponent of the rate", "identity", (0.0,),
          Prior("normal", 0.0, 1.5, "as phi")),
    _p("rho", "general tokens undo forgetting (general) / pull the domain plateau back (domain) rho times",
       Prior("lognormal", 1.0, 1.5, "general ~10, domain ~0.1 on real probe grids (set per target and domain by "
                                    "the fit)")),
    _p("kappa", "tail shape of the saturation (small: log-like, large: exponential)",
       Prior("lognormal", 0.7, 1.0, "0.3-1.7 on real probe grids")),
    _p("h", "continued learning of the general corpus (general loss only), share of L0_g per e-fold of D / D_ref",
       Prior("lognormal", 0.003, 1.5, "small: the base model is already trained on that corpus")),
    _p("sc", "critical domain-batch fraction of the domain loss (domain loss only)",
       Prior("lognormal", 0.5, 1.5, "0.2-2 on real probe grids")),
    _p("w", "re-warming rise of the general loss at every mixture (general loss only), share of L0_g",
       Prior("lognormal", 0.01, 1.5, "about 1% on real probe grids (0.5-3% above the base after the warm-up)")),
    Param("phi_w", "capability exponent of the re-warming rise (general loss only)", "identity", (0.0,),
          Prior("normal", 0.0, 1.5, "as phi")),
    _p("eta_s", "exponent of the domain share in the forgetting (general loss only; 1: linear in s)",
       Prior("lognormal", 1.0, 0.75, "1 (the share as it is) within a factor of ~4")),
    _p("xi", "the general loss's continued learning from a domain token, relative to a general token (general "
             "loss only; the transfer)",
       Prior("lognormal", 1.0, 0.75, "a domain token teaches the general corpus about as much as its own token, "
                                     "within a factor of ~4 (point fits: 0-5)")),
    Param("chi", "capability exponent of the general loss's replay balance (general loss only; replay_size)",
          "identity", (0.0,), Prior("normal", 0.0, 1.5, "as phi (point fits on the probe grids: -0.1 to 2.8)")),
)

CPT_LAW = Law(
    name="cpt",
    title="L_g = L0_g [1 + a c^phi (s/u) sat(lam c^psi u D) - h (1-s) log(1+D/D_ref)];  "
          "L_d = L0_d [1 - g(c) (m/u) sat(lam c^psi u D)], c = 2/L0_g",
    params=_PARAMS,
    inputs=("N", "D", "r", "L0", "L0g", "D_ref"),
    formula=_cpt,
    family="cpt",
    reference="this package: base-anchored CPT law (forgetting and learning as saturating changes from the "
              "base model; cf. Wang et al. 2025's distribution-shift term and the CMR law's base anchoring)",
    example_params={"amp": 0.3, "phi": 0.0, "lam": 2e4, "psi": 0.0, "rho": 1.0, "kappa": 0.7, "h": 0.003,
                    "sc": 0.5, "w": 0.01, "phi_w": 0.0,
                    "eta_s": 1.0, "xi": 0.0, "chi": 0.0},
    aliases=("base-anchored", "cpt-law"),
    notes="anchored at the measured base-model losses; needs base rows (tokens == 0) of every (domain, size)",
)
