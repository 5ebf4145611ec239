"""What defines a model: the configuration of a D-CPT fit and of a dynamics fit.

Both are frozen dataclasses whose every field shapes the PyMC model; their hash (:meth:`FitConfig.key`) keys the
compiled-model caches and goes into every saved model card, so a loaded fit knows exactly what was fitted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bayes_dcpt.data.schema import after_burn_in, fit_rows
from bayes_dcpt.errors import FitError
from bayes_dcpt.laws.lr_schedules import DEFAULT_MOMENTUM
from bayes_dcpt.laws.registry import get_law

__all__ = ["CENTRED_D_DROP_FROM_ROWS", "CPT_OPTIONS", "DEFAULT_DRAWS", "DENSE_DRAWS", "DENSE_SHARE_SPREAD",
           "DENSE_TARGET_ACCEPT", "PARAMETRIZATIONS", "SPLIT_FROM_ROWS", "XI_SD", "DynamicsConfig", "FitConfig",
           "check_cpt_options", "config_key", "is_dense", "resolve_parametrization"]

#: The hierarchy parameterisations of the D-CPT family's model (``fitting/MODEL.md``): ``"split"`` is centred
#: for what the data pin and non-centred for the shares; ``"split_weak_d"`` also non-centres the general loss's
#: drop along D; ``"mixed"`` centres the domain loss only; ``"auto"`` (the default) is resolved by
#: :func:`resolve_parametrization` before the model is built.
PARAMETRIZATIONS = ("auto", "centered", "noncentered", "mixed", "split", "split_weak_d")
#: ``"auto"`` is a split hierarchy from this many fitted measurements per domain on, else ``"noncentered"``.
#: Measured (BENCHMARKS.md, "Fits at the scale of real probe logs"): with 162 and 675 per domain the split
#: hierarchy took 3.0-3.8x fewer leapfrog steps per draw with far fewer divergences and better R-hat; on the
#: example grid (108 per domain) it diverged more (30 divergences against 2 in a short run).
SPLIT_FROM_ROWS = 150
#: ... and ``"split"`` (the general loss's drop along D centred too) from this many on, ``"split_weak_d"`` below.
#: Measured on the scale set (tenth round): that drop's per-domain posterior sd is 1.7-2.1 times the population
#: spread at 162-675 rows per domain (non-centred there, two seeds each: divergences 12, 12, 9, 63 -> 41, 4, 0, 2,
#: ESS 1.3-3.4x higher) and 0.31-0.46 at 2,700-5,400 (where non-centring it did not help); it crosses 1 at
#: about 1,200 (1,180-1,330 interpolated in log rows).
CENTRED_D_DROP_FROM_ROWS = 1200
#: The split hierarchies (dense data) sample the stick-breaking shares' spread over domains on a HalfNormal of this
#: scale (logit scale; 0.5 otherwise) and NUTS at this target acceptance (nutpie, PyMC, NumPyro; 0.9 otherwise),
#: unless ``sampler_kwargs`` names one. The data inside the range do not pin the shares (how far each curve still
#: falls beyond it), so their spread is what its prior allows: at 32,400 rows the HalfNormal(0.5) tail (spreads of
#: 0.7-1) put a domain's share logit into the sigmoid's flat tail, where the default fit's last divergences sat
#: (seeds 1 and 2: 2 and 1; the spread's posterior was its prior, mean 0.35). HalfNormal(0.25) still covers the
#: spreads the simulated worlds have (coefficients varied by 0.15 on the log scale) and the posterior means of the
#: general loss's spreads there (0.11-0.13). Both changes together: 0 divergences in every seed, R-hat <= 1.010,
#: ESS bulk >= 446 in three seeds (divergences 2 / 1 / 0 before); target_accept alone: 0 divergences but R-hat 1.013
#: (BENCHMARKS.md, "Sixteenth round").
DENSE_SHARE_SPREAD = 0.25
DENSE_TARGET_ACCEPT = 0.95
#: Posterior draws per chain of an MCMC fit when none are asked for ...
DEFAULT_DRAWS = 1000
#: ... and of a fit of the split hierarchies (dense data). There the worst-mixing direction is one the data
#: inside the range do not pin (a domain's far level split between E and the ratio term: E = 0.24 +- 0.11), and at
#: target_accept 0.95 the tail ESS of 4 x 1000 draws fell under 400 in one seed of three at 32,400 rows (391) and
#: at 4,050 rows (392). Half as many draws again cost a quarter more sampling (tuning is the other half of the
#: iterations): 4 x 1500 gave ESS bulk/tail 733/750 in that seed, 23 s more (BENCHMARKS.md, "Seventeenth round").
DENSE_DRAWS = 1500


def is_dense(parametrization: str) -> bool:
    """Whether ``parametrization`` is one of the split hierarchies chosen for dense data (see above)."""
    return parametrization in ("split", "split_weak_d")


def resolve_parametrization(parametrization: str, df: Any) -> str:
    """``parametrization``, with ``"auto"`` made concrete from the CPT rows (tokens > 0) per domain of ``df``.

    Strong data pin each domain's levels and drops, so a non-centred offset becomes a deterministic function of
    the population mean and spread (a curved ridge: 100-350 leapfrog steps per draw from a few thousand rows on);
    with few rows per domain the centred levels make funnels instead, and up to ``CENTRED_D_DROP_FROM_ROWS`` the
    general loss's drop along D is still weakly pinned (``"split_weak_d"``). The concrete name goes into the
    :class:`FitConfig` (and the model card), so a refit on part of the data keeps the fit's parameterisation.
    """
    if parametrization != "auto":
        return parametrization
    per_domain = fit_rows(df).groupby("domain").size()
    fewest = int(per_domain.min()) if len(per_domain) else 0
    if fewest < SPLIT_FROM_ROWS:
        return "noncentered"
    return "split" if fewest >= CENTRED_D_DROP_FROM_ROWS else "split_weak_d"


def config_key(config: object) -> str:
    """Short stable hash of a configuration dataclass (12 hex digits of the SHA-256 of its sorted JSON)."""
    return hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:12]


#: Options of the base-anchored CPT law alone (its re-warming rise, its share exponent, its transfer: opt-in; its
#: replay's growth with the model: on by default; measured in BENCHMARKS.md): asked of another law they are
#: refused, and ``law="auto"`` gives them to its CPT candidate.
CPT_OPTIONS = ("rewarm", "share_power", "transfer", "replay_size")

#: The prior sd of the transfer's ``log xi`` (a domain token teaches the general corpus as much as a general token,
#: within a factor of ~4): wider (1.5, before 2026-12-07), a chain wanders down a flat tail where the transfer
#: switches off and the forgetting's rate and amplitude take its place (R-hat 1.01-1.06 on the example's size split;
#: BENCHMARKS.md, "The transfer with one rate exponent").
XI_SD = 0.75


def check_cpt_options(laws: Sequence[Any], kwargs: Mapping[str, Any], why: str) -> None:
    """Refuse an option of the CPT law alone when none of ``laws`` is the CPT law: it would change nothing, silently.

    ``why`` ends the message (which laws were asked instead).
    """
    asked = [k for k in CPT_OPTIONS if kwargs.get(k)]
    if asked and not any(get_law(n).family == "cpt" for n in laws):
        raise FitError(f"{', '.join(asked)}: an option of the CPT law (law='cpt'), {why}; it would change nothing")


@dataclass(frozen=True)
class FitConfig:
    """Everything that defines the model (hashed into the model card)."""

    law: str = "L3"
    target: str = "both"
    robust: bool = True
    run_effect: bool = True
    hierarchical: bool | None = None  # None: partial pooling whenever there are >= 2 domains
    parametrization: str = "noncentered"
    domain_levels: str = "separate"  # domain-loss far-corner levels: own per domain ("separate") or "pooled"
    monotone: bool = True
    probe_tokens: float | None = None
    prior_scale: float = 1.0  # multiplies every prior sd (sensitivity analyses)
    anchored: bool = True  # sample power-law terms through their values at the ends of the data range
    zero_ratio: bool = False  # fit observations whose own ratio is 0 (L3 is not meaningful there)
    run_offsets: str = "marginal"  # per-run offsets integrated out ("marginal") or sampled ("latent")
    nu_floor: float = 2.0  # Student-t degrees of freedom nu = nu_floor + Gamma(2, 0.1); 0: no floor (older fits)
    burn_in: str = "warmup"  # "warmup": leave out checkpoints inside their run's LR warm-up; "none": fit all
    noise_scope: str = "domain"  # noise scales (sigma, tau, nu) per (target, "domain"), or per "target" (older fits)
    replay_scope: str = "domain"  # the CPT law's replay balance rho per (target, "domain"), or per "target" (older)
    rate_scope: str = "domain"  # the CPT law's rate exponent psi per (target, "domain"), or "general": the general
    # loss's one for all domains (the default with the transfer)
    rewarm: bool = False  # the CPT law's re-warming rise of the general loss (opt-in: measured, BENCHMARKS.md)
    share_power: bool = False  # the CPT law's general loss rises with s^eta_s per domain, not with s (opt-in)
    transfer: bool = False  # the CPT law's general loss also keeps learning from the domain tokens (opt-in)
    xi_sd: float = 1.5  # the transfer's prior sd of log xi (XI_SD since 2026-12-07; 1.5 in fits saved before)
    replay_size: bool = False  # the CPT law's general-loss replay balance rho c^chi (fit()'s default for the CPT
    # law; False: other laws, and CPT fits saved before it)

    def key(self) -> str:
        """Short stable hash of the configuration."""
        return config_key(self)

    def fitted_data(self, df: Any) -> Any:
        """The measurements the model is fitted to: ``df`` without the LR warm-up checkpoints (``burn_in``)."""
        return after_burn_in(df, self.burn_in)

    def nothing_to_fit(self, df: Any) -> FitError:
        """The error for data with no CPT measurement to fit: none measured, or every one inside its LR warm-up."""
        if self.burn_in == "warmup" and len(fit_rows(df)) and not len(fit_rows(self.fitted_data(df))):
            return FitError("no CPT measurements to fit: every CPT checkpoint lies inside its run's LR warm-up "
                            "(before the run reaches its peak LR), which the fit leaves out; add checkpoints past "
                            "the warm-up, or fit them all with burn_in='none' (--burn-in none)")
        return FitError("no CPT measurements to fit (every row has tokens == 0 or no loss)")


@dataclass(frozen=True)
class DynamicsConfig:
    """Everything that defines the model (hashed into the model card)."""

    law: str = "cpt-dynamics"
    target: str = "both"
    momentum: float = DEFAULT_MOMENTUM
    robust: bool = True
    run_effect: bool = True
    prior_scale: float = 1.0
    run_offsets: str = "marginal"  # per-run offsets integrated out ("marginal") or sampled ("latent")
    nu_floor: float = 2.0  # Student-t degrees of freedom nu = nu_floor + Gamma(2, 0.1); 0: no floor (older fits)

    def key(self) -> str:
        """Short stable hash of the configuration."""
        return config_key(self)
