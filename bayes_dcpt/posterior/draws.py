"""Posterior draws of a fitted law, as plain numpy: predict any (domain, N, D, r) with bands.

:class:`Posterior` is what every consumer downstream of the sampler works with (decisions, the
planner, reports): parameter draws per (target, domain), the observation-noise draws, the DLC of each
domain for the cross-domain law, and the base-model reference losses. It never imports PyMC; a
:class:`~bayes_dcpt.fitting.Fit` builds one from its ``idata``, and a bootstrap can build one too.

Noise model (shared with the PyMC likelihood)::

    log L_obs = log L_law(N, D, r; theta) + u_run + e,   u_run ~ Normal(0, tau),   e ~ StudentT(nu, 0, sigma)

``kind="mean"`` bands show the law itself (parameter uncertainty); ``kind="predictive"`` bands add a
new run's offset and the checkpoint noise: where a new measurement will fall. Outside the probed data the
predictive bands also carry the law's own error (the model discrepancy the fit calibrated,
:mod:`bayes_dcpt.posterior.extrapolation`): one Normal draw per posterior draw and run, its sd growing with the
distance beyond the data. Decisions and the planner use the same discrepancy with one standard-normal draw
``z_s`` per posterior draw and target (:meth:`Posterior.discrepancy_shift`), so every answer that extrapolates
widens with it; the law itself stays pure (:meth:`Posterior.surface`, :meth:`Posterior.mean_log_loss`).

Quickstart::

    >>> post = fit.posterior                      # or Posterior(...) from draws
    >>> post.predict(grid, ci=0.9)                # loss_general_mean/_lo/_hi, loss_domain_...
    >>> post.surface("domain", "code", 1e9, 1e10, np.linspace(0, 1, 51))   # (S, 51) losses
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.errors import BayesDCPTError, UnknownDomainError
from bayes_dcpt.laws.registry import BILLION, Law
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.posterior.base_law import BaseLaw, fit_base_law
from bayes_dcpt.posterior.extrapolation import (
    AXES,
    any_slope,
    beyond_reach,
    discrepancy_slopes,
    domain_envelope,
    extrapolation_distances,
)
from bayes_dcpt.posterior.frames import prediction_frame
from bayes_dcpt.posterior.noise import log_noise
from bayes_dcpt.posterior.streams import stream_shift

__all__ = ["Posterior", "as_posterior"]


@dataclass
class Posterior:
    """Posterior draws of one law fitted to one or both targets over one or more domains.

    Attributes
    ----------
    law
        The law (same form for both targets).
    params
        ``(target, domain) -> {name: (S,) draws}`` in natural units (N, D in billions); the cross-domain
        law also carries each domain's ``K`` draws.
    noise
        ``target -> {"sigma", "tau"[, "nu"]}`` on the log-loss scale, each ``(S,)`` (one per target) or
        ``(S, n_domains)`` (per (target, domain), columns in the order of ``ctx["noise_domains"]``); read them
        through :meth:`noise_of` and :meth:`noise_rows`, which handle both.
    ctx
        Constants of the fit (``D_min`` in billions for the C > C0 constraint; ``discrepancy`` and ``envelope``
        when the fit calibrated its extrapolation, :mod:`bayes_dcpt.posterior.extrapolation`).
    reference
        Base-model losses (tokens == 0 rows): ``domain, n_params, loss_general, loss_domain``.
    weights
        Optional normalised importance weights over the S draws (after a cheap update).
    """

    law: Law
    params: dict[tuple[str, str], dict[str, np.ndarray]]
    noise: dict[str, dict[str, np.ndarray]]
    ctx: dict[str, Any] = field(default_factory=dict)
    reference: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["domain", "n_params", "loss_general", "loss_domain"]))
    weights: np.ndarray | None = None
    _base_laws: dict[tuple[str, str], BaseLaw | None] = field(default_factory=dict, init=False, repr=False,
                                                              compare=False)
    _disc_z: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------------------------ structure
    @property
    def targets(self) -> tuple[str, ...]:
        """Fitted targets, in the order general, domain."""
        ts = {t for t, _ in self.params}
        return tuple(t for t in ("general", "domain") if t in ts)

    @property
    def domains(self) -> list[str]:
        """Fitted domains."""
        return sorted({d for _, d in self.params})

    @property
    def n_draws(self) -> int:
        """Number of posterior draws S."""
        first = next(iter(self.params.values()))
        return int(np.asarray(next(iter(first.values()))).shape[0])

    def param_draws(self, target: str, domain: str) -> dict[str, np.ndarray]:
        """Natural-unit parameter draws ``{name: (S,)}`` for one target and domain."""
        self._check(target, domain)
        return self.params[(target, domain)]

    def _check(self, target: str, domain: str) -> None:
        if target not in self.targets:
            raise BayesDCPTError(f"the fit has no {target!r} loss; fitted targets: {list(self.targets)}")
        if (target, domain) not in self.params:
            raise UnknownDomainError(f"unknown domain {domain!r}; the fit knows {self.domains}")

    @property
    def fits_zero_ratio(self) -> bool:
        """Whether the fit described losses with none of their own corpus (own ratio 0).

        The domain loss at ``r = 0`` and the general loss at ``r = 1``: the base-anchored law fits them, the D-CPT
        laws only with ``zero_ratio=True`` (the paper finds L3 meaningless there).
        """
        return bool(self.ctx.get("zero_ratio"))

    @property
    def leaves_out_warmup(self) -> bool:
        """Whether the fit left the checkpoints inside their run's LR warm-up out (``burn_in="warmup"``).

        Such rows (:func:`~bayes_dcpt.data.warmup.in_warmup`) are then not scored against the bands nor conditioned
        on by an update: the law describes the loss after the warm-up's transient.
        """
        return bool(self.ctx.get("burn_in_warmup"))

    # --------------------------------------------------------------------------------------- noise
    @property
    def noise_domains(self) -> list[str] | None:
        """The domains of the noise draws' columns when the noise is per (target, domain), else None."""
        doms = self.ctx.get("noise_domains")
        return None if doms is None else [str(d) for d in doms]

    def _noise_columns(self, domains: Any) -> np.ndarray:
        """Column of each entry of ``domains`` in the per-domain noise draws."""
        known = self.noise_domains or []
        pos = {d: i for i, d in enumerate(known)}
        doms = np.asarray(domains).astype(str)
        missing = sorted(set(doms) - set(pos))
        if missing:
            raise UnknownDomainError(f"unknown domain {missing[0]!r}: the fit has noise draws for {known}")
        return np.array([pos[d] for d in doms], dtype=np.int64)

    def noise_of(self, target: str, domain: str) -> dict[str, np.ndarray]:
        """One (target, domain)'s noise draws ``{name: (S,)}`` (the target's own when the noise is per target)."""
        return {k: v[:, 0] for k, v in self.noise_rows(target, [domain]).items()}

    def noise_rows(self, target: str, domains: Any) -> dict[str, np.ndarray]:
        """Each noise parameter per draw and row, ``(S, n)``; ``domains`` holds each row's domain."""
        if target not in self.noise:
            raise BayesDCPTError(f"the posterior has no noise draws for the {target} loss; it has {list(self.noise)}")
        n = len(domains)
        cols = self._noise_columns(domains) if self.noise_domains is not None else None
        out = {}
        for k, v in self.noise[target].items():
            v = np.asarray(v, float)
            out[k] = v[:, cols] if v.ndim == 2 else np.broadcast_to(v[:, None], (len(v), n))
        return out

    # ---------------------------------------------------------------------------------- evaluation
    def surface(self, target: str, domain: str, n_params: Any, tokens: Any, r_domain: Any) -> np.ndarray:
        """Noise-free law per draw on broadcast inputs (raw counts): shape ``(S, *broadcast_shape)``.

        ``r_domain`` is the domain share; the general loss is evaluated at its own ratio ``1 - r_domain``.
        """
        p = self.param_draws(target, domain)
        N, D, rd = np.broadcast_arrays(np.asarray(n_params, float), np.asarray(tokens, float),
                                       np.asarray(r_domain, float))
        shape = N.shape
        pe = {k: np.asarray(v, float).reshape((-1,) + (1,) * len(shape)) for k, v in p.items()}
        x = self.law_inputs(target, domain, N[None], D[None], rd[None], pe)
        with np.errstate(all="ignore"):
            out = np.asarray(self.law(np, pe, x), float)
        return np.broadcast_to(out, (self.n_draws, *shape))

    def law_inputs(self, target: str, domain: str, n_params: np.ndarray, tokens: np.ndarray, r_domain: np.ndarray,
                   params: dict[str, np.ndarray]) -> dict[str, Any]:
        """The law's inputs for raw-count arrays whose first axis is the draw axis (of size 1 or S).

        N and D in billions and the target's own ratio (``1 - r_domain`` for the general loss); ``params`` are the
        draws shaped to broadcast against the inputs. Posteriors of laws with further inputs extend this.
        """
        r = r_domain if target == "domain" else 1.0 - r_domain
        x: dict[str, Any] = {"N": n_params / BILLION, "D": tokens / BILLION, "r": r}
        if "K" in params:
            x["K"] = params["K"]
        return x

    def mean_log_loss(self, frame: pd.DataFrame, target: str) -> np.ndarray:
        """``log`` of the law per draw for the rows of a schema frame: shape ``(S, len(frame))``."""
        out = np.full((self.n_draws, len(frame)), np.nan)
        doms = frame["domain"].to_numpy()
        for d in np.unique(doms):
            m = doms == d
            sub = frame[m]
            out[:, m] = np.log(self.surface(target, str(d), sub["n_params"].to_numpy(float),
                                            sub["tokens"].to_numpy(float), sub["r_domain"].to_numpy(float)))
        return out

    def sample_observations(self, frame: pd.DataFrame, target: str, *, seed: int = 0, new_run: bool = True,
                            discrepancy: bool = True, log_mean: np.ndarray | None = None) -> np.ndarray:
        """Posterior predictive draws of the observed loss, ``(S, len(frame))``.

        Rows with the same ``run_id`` share one run offset per draw (a new run when ``new_run``). A row on a data
        stream the fit saw at other sizes is centred on the law plus that stream's shared deviation there
        (:mod:`bayes_dcpt.posterior.streams`; fits calibrated for extrapolation carry it). With
        ``discrepancy``, rows outside the data also get the law's error: one Normal draw per draw and run, scaled
        by each row's :meth:`discrepancy_sd` (its own random stream, so predictions inside the data are unchanged).
        ``log_mean``: :meth:`mean_log_loss` of ``frame`` when the caller has it already (the law is the costly
        part on large frames).
        """
        rng = np.random.default_rng(seed)
        mu = self.mean_log_loss(frame, target) if log_mean is None else np.asarray(log_mean, float)
        if mu.shape != (self.n_draws, len(frame)):
            raise BayesDCPTError(f"log_mean has shape {mu.shape}; expected (draws, rows) = "
                                 f"{(self.n_draws, len(frame))}, as mean_log_loss(frame, target) returns")
        runs = frame["run_id"].to_numpy() if "run_id" in frame else np.arange(len(frame))
        sd = self.checkpoint_sd(frame, target, mu) if self.ctx.get("heteroscedastic") else None
        noise = log_noise(rng, self.noise_rows(target, frame["domain"]), runs, self.n_draws, new_run=new_run,
                          mixing=bool(self.ctx.get("run_mixing")), sd=sd)
        # a new size on a probed data stream inherits part of its deviation there (posterior.streams)
        shift, factor = stream_shift(self.ctx, frame, target)
        log_y = mu + shift[None, :] + noise * factor[None, :]
        sd_disc = self.frame_discrepancy_sd(frame, target) if discrepancy else np.zeros(len(frame))
        if np.any(sd_disc > 0):
            _, inv = np.unique(np.asarray(runs).astype(str), return_inverse=True)
            z = np.random.default_rng([seed, 7919]).standard_normal((self.n_draws, int(inv.max()) + 1))
            log_y = log_y + z[:, inv] * sd_disc[None, :]
        return np.exp(log_y)

    # ----------------------------------------------------------------------------- model discrepancy
    @property
    def has_discrepancy(self) -> bool:
        """True when the fit calibrated the law's error beyond the data (some slope > 0)."""
        return any(any_slope(self.ctx, t) for t in self.targets)

    def extrapolation(self, domain: str, n_params: Any, tokens: Any, r_domain: Any) -> dict[str, np.ndarray]:
        """``{"tokens", "size", "ratio", "early_tokens"}`` distances of raw-count inputs beyond the fit's data envelope.

        ``early_tokens``: how far before the earliest fitted checkpoint (widens no band; cautioned past reach).
        """
        return extrapolation_distances(domain_envelope(self.ctx.get("envelope"), domain), n_params, tokens,
                                       r_domain)

    def discrepancy_sd(self, target: str, domain: str, n_params: Any, tokens: Any, r_domain: Any) -> np.ndarray:
        """The sd of the law's log-loss error at broadcast raw-count inputs (0 inside the data or without one).

        ``sqrt(sum over tokens, size, ratio of (kappa * distance)^2)``, :mod:`bayes_dcpt.posterior.extrapolation`.
        """
        slopes, _ = discrepancy_slopes(self.ctx, target, domain)
        shape = np.broadcast_shapes(*(np.shape(v) for v in (n_params, tokens, r_domain)))
        if not any(v > 0 for v in slopes.values()):
            return np.zeros(shape)
        dist = self.extrapolation(domain, n_params, tokens, r_domain)
        return np.sqrt(sum((slopes[a] * dist[a]) ** 2 for a in AXES))

    def frame_discrepancy_sd(self, frame: pd.DataFrame, target: str) -> np.ndarray:
        """:meth:`discrepancy_sd` of each row of a schema frame, shape ``(len(frame),)``."""
        out = np.zeros(len(frame))
        if not any_slope(self.ctx, target):
            return out
        doms = frame["domain"].astype(str).to_numpy()
        for d in np.unique(doms):
            m = doms == d
            out[m] = self.discrepancy_sd(target, str(d), *(frame.loc[m, c].to_numpy(float)
                                                            for c in ("n_params", "tokens", "r_domain")))
        return out

    def frame_beyond_reach(self, frame: pd.DataFrame) -> list[dict[str, dict[str, Any]]]:
        """Per row of a schema frame, the axes along which it lies farther out than the fit measured its law's error.

        :func:`~bayes_dcpt.posterior.extrapolation.beyond_reach` for each fitted target, merged (the first
        target's finding on an axis wins); ``{}`` for a row within reach.
        """
        out: list[dict[str, dict[str, Any]]] = [{} for _ in range(len(frame))]
        doms = frame["domain"].astype(str).to_numpy()
        for d in np.unique(doms):  # the distances of one domain's rows at once, as frame_discrepancy_sd does
            rows = np.flatnonzero(doms == d)
            dist = self.extrapolation(str(d), *(frame[c].to_numpy(float)[rows] for c in ("n_params", "tokens",
                                                                                         "r_domain")))
            for j, i in enumerate(rows):
                one = {a: v[j] for a, v in dist.items()}
                for t in self.targets:
                    out[i] = {**beyond_reach(self.ctx, t, one), **out[i]}
        return out

    def discrepancy_z(self, target: str) -> np.ndarray:
        """One standard-normal draw per posterior draw for ``target``'s discrepancy, seeded: shape ``(S,)``.

        Fixed for a posterior (the same question gets the same answer) and carried by :meth:`subset`.
        """
        if target not in self._disc_z:
            rng = np.random.default_rng([zlib.crc32(f"disc|{target}".encode()), self.n_draws])
            self._disc_z[target] = rng.standard_normal(self.n_draws)
        return self._disc_z[target]

    def discrepancy_shift(self, target: str, domain: str, n_params: Any, tokens: Any, r_domain: Any) -> Any:
        """``z_s * sd`` on the log scale where the inputs' first axis is the draw (size S or 1): ``(S, ...)``.

        0.0 when the fit has no discrepancy. What decisions multiply the law by (``exp`` of it): one shift of
        unknown sign per draw, growing with the distance beyond the data.
        """
        sd = self.discrepancy_sd(target, domain, n_params, tokens, r_domain)
        if not np.any(sd > 0):
            return 0.0
        z = self.discrepancy_z(target).reshape((-1,) + (1,) * max(np.ndim(sd) - 1, 0))
        return z * sd if np.ndim(sd) else self.discrepancy_z(target) * float(sd)

    def log_loss_with_discrepancy(self, frame: pd.DataFrame, target: str) -> np.ndarray:
        """:meth:`mean_log_loss` plus each draw's discrepancy shift ``z_s * sd(row)``: shape ``(S, len(frame))``."""
        mu = self.mean_log_loss(frame, target)
        sd = self.frame_discrepancy_sd(frame, target)
        return mu + self.discrepancy_z(target)[:, None] * sd[None, :] if np.any(sd > 0) else mu

    def without_discrepancy(self) -> Posterior:
        """A copy that ignores the calibrated discrepancy: the law's parameter uncertainty alone."""
        return self._copy(ctx={k: v for k, v in self.ctx.items() if k != "discrepancy"})

    def checkpoint_sd(self, frame: pd.DataFrame, target: str, log_mean: np.ndarray) -> np.ndarray:
        """Each checkpoint's noise scale on the log scale per draw, shape ``(S, len(frame))``.

        ``sigma`` of each row's domain here; posteriors whose noise grows with the loss's move from the base model
        override it.
        """
        return np.broadcast_to(self.noise_rows(target, frame["domain"])["sigma"], np.shape(log_mean))

    def measurement_variance(self, frame: pd.DataFrame, target: str) -> tuple[np.ndarray, np.ndarray]:
        """Variances of a new measurement's noise on the log scale per draw and row: checkpoint and run offset.

        Both ``(S, len(frame))`` (the run offset's is that of each row's run, by its domain). Student-t noise
        enters through its variance (``nu / (nu - 2)`` times the scale squared, ``nu`` floored at 2.5); with the
        robust fit's run mixing the offset shares that factor. What the planner's Gaussian information and the
        check of a decision against noisy measurements use.
        """
        nz = self.noise_rows(target, frame["domain"])
        sig = nz["sigma"]
        var_e = (self.checkpoint_sd(frame, target, self.mean_log_loss(frame, target)) ** 2
                 if self.ctx.get("heteroscedastic") else sig**2)
        var_u = nz["tau"] ** 2 if "tau" in nz else np.zeros_like(sig)
        if "nu" in nz:
            nu = np.maximum(nz["nu"], 2.5)
            var_e = var_e * (nu / (nu - 2.0))
            if self.ctx.get("run_mixing"):
                var_u = var_u * nu / (nu - 2.0)
        return np.asarray(var_e, float), np.asarray(var_u, float)

    def predict(self, frame: pd.DataFrame, ci: float = CI_PROB, *, kind: str = "predictive",
                seed: int = 0) -> pd.DataFrame:
        """Posterior mean and central ``ci`` interval of each fitted loss for any rows.

        Parameters
        ----------
        frame
            Rows with ``domain, n_params, tokens, r_domain`` (raw counts; other columns are kept).
        ci
            Interval probability (equal-tailed).
        kind
            ``"predictive"`` (a new run's measurement: law + run offset + noise) or ``"mean"`` (the law).

        Returns
        -------
        pandas.DataFrame
            The input columns plus ``loss_<target>_mean`` (posterior mean of the law; ``"predictive"`` at a new
            size on a data stream the fit saw, times that stream's shared deviation: :mod:`bayes_dcpt.posterior.
            streams`), ``_lo``, ``_hi`` (the ``ci`` interval of ``kind``) for each fitted target.
        """
        if kind not in ("predictive", "mean"):
            raise BayesDCPTError(f"kind must be 'predictive' or 'mean', not {kind!r}")
        if not 0 < ci < 1:
            raise BayesDCPTError(f"ci must be in (0, 1), got {ci}")
        frame = prediction_frame(frame, self.domains)
        out = frame.copy()
        lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
        for t in self.targets:
            log_mean = self.mean_log_loss(frame, t)
            if kind == "mean":
                draws = np.exp(log_mean)
            else:
                f2 = frame.copy()
                f2["run_id"] = np.arange(len(frame)).astype(str) if "run_id" not in frame else frame["run_id"]
                draws = self.sample_observations(f2, t, seed=seed, log_mean=log_mean)
            w = self.weights
            # the point prediction is the posterior mean of the law itself for both kinds (the predictive
            # distribution with Student-t noise may have no mean); the bands follow ``kind``
            law_draws = draws
            if kind == "predictive":  # on a probed data stream at a new size, with its shared deviation there
                law_draws = np.exp(log_mean + stream_shift(self.ctx, frame, t)[0][None, :])
            mean = np.nansum(law_draws * (w[:, None] if w is not None else 1.0 / draws.shape[0]), axis=0)
            qs = weighted_quantile(draws, [lo, hi], w, axis=0)
            out[f"loss_{t}_mean"] = mean
            out[f"loss_{t}_lo"] = qs[0]
            out[f"loss_{t}_hi"] = qs[1]
        return out

    # ------------------------------------------------------------------------------------ reference
    def base_loss(self, domain: str, n_params: float, target: str = "general") -> float:
        """The base-model loss L^0 of ``target`` at ``n_params``.

        Measured (tokens == 0 rows, or given with :meth:`with_reference`) where known, else the median of the
        base-loss law fitted to the base rows (:mod:`bayes_dcpt.posterior.base_law`).
        """
        return float(np.nanmedian(self.base_loss_draws(domain, n_params, target)))

    def base_loss_draws(self, domain: str, n_params: float, target: str = "general") -> np.ndarray:
        """The base-model loss at ``n_params`` per draw: shape ``(S,)`` (constant where it was measured)."""
        v = self.base_values(domain, target, np.full((self.n_draws,), float(n_params)))
        return np.broadcast_to(v, (self.n_draws,)).astype(float)

    def base_source(self, domain: str, n_params: float, target: str = "general") -> str:
        """Where :meth:`base_loss` comes from: ``"measured"`` or ``"predicted (base-loss law in N, k sizes)"``."""
        if self._measured_base(domain, target, np.asarray([float(n_params)]))[1].all():
            return "measured"
        law = self.base_law(domain, target)
        return f"predicted by the base-loss law in N from {law.n_sizes} probed size(s)" if law else "unavailable"

    def _measured_base(self, domain: str, target: str, n_params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ref = self.reference[self.reference["domain"] == domain]
        out = np.full(np.shape(n_params), np.nan)
        known = np.zeros(np.shape(n_params), bool)
        for n, v in zip(ref["n_params"].to_numpy(float), ref[f"loss_{target}"].to_numpy(float), strict=True):
            if np.isfinite(v):
                m = np.isclose(n_params, n, rtol=1e-6)
                out = np.where(m, v, out)
                known |= m
        return out, known

    def base_law(self, domain: str, target: str) -> BaseLaw | None:
        """The base-loss law in N of ``(target, domain)`` fitted to the measured base rows (cached; None: no rows)."""
        key = (domain, target)
        if key not in self._base_laws:
            ref = self.reference[(self.reference["domain"] == domain) & self.reference[f"loss_{target}"].notna()]
            seed = zlib.crc32(f"base|{domain}|{target}".encode())
            self._base_laws[key] = None if ref.empty else fit_base_law(
                ref["n_params"].to_numpy(float), ref[f"loss_{target}"].to_numpy(float), n_draws=self.n_draws,
                seed=seed)
        return self._base_laws[key]

    def base_values(self, domain: str, target: str, n_params: np.ndarray) -> np.ndarray:
        """Base-model ``target`` losses at raw sizes whose first axis is the draw axis (size 1 or S).

        Measured (or given) values where known; elsewhere the base-loss law's draws, shape ``(S, ...)``.
        """
        out, known = self._measured_base(domain, target, np.asarray(n_params, float))
        if known.all():
            return out
        law = self.base_law(domain, target)
        if law is None:
            missing = float(np.ravel(np.asarray(n_params, float))[~np.ravel(known)][0])
            raise BayesDCPTError(
                f"no base-model {target} loss for domain {domain!r} at n_params={missing:.4g}, and no base rows to "
                "predict it from: pass the base model's measured loss (base_loss=..., --base-loss) or add its "
                "evaluation (a tokens == 0 row)")
        return np.where(known, out, law(np.asarray(n_params, float)))

    def with_reference(self, domain: str, n_params: float, *, loss_general: float | None = None,
                       loss_domain: float | None = None) -> Posterior:
        """A copy that takes these as the base model's measured losses at ``n_params`` (the user knows them)."""
        ref = self.reference
        keep = ~((ref["domain"] == domain) & np.isclose(ref["n_params"].astype(float), float(n_params)))
        old = ref[~keep]
        row = {"domain": domain, "n_params": float(n_params),
               "loss_general": loss_general if loss_general is not None else
               (float(old["loss_general"].mean()) if len(old) else np.nan),
               "loss_domain": loss_domain if loss_domain is not None else
               (float(old["loss_domain"].mean()) if len(old) else np.nan)}
        return self._copy(reference=pd.concat([ref[keep], pd.DataFrame([row])], ignore_index=True))

    # ------------------------------------------------------------------------------------- updating
    def reweight(self, weights: np.ndarray) -> Posterior:
        """A copy whose summaries use normalised importance ``weights`` over the draws."""
        w = np.asarray(weights, float)
        if w.shape != (self.n_draws,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise BayesDCPTError("weights must be finite, non-negative, one per draw and not all zero")
        return self._copy(weights=w / w.sum())

    def resample(self, n: int | None = None, seed: int = 0) -> Posterior:
        """Draws resampled according to the weights (an unweighted posterior of ``n`` draws)."""
        rng = np.random.default_rng(seed)
        n = n or self.n_draws
        p = self.weights if self.weights is not None else np.full(self.n_draws, 1.0 / self.n_draws)
        idx = rng.choice(self.n_draws, size=n, replace=True, p=p)
        return self.subset(idx)

    def subset(self, idx: np.ndarray) -> Posterior:
        """The posterior restricted to the draws ``idx`` (weights dropped)."""
        idx = np.asarray(idx)
        params = {k: {n: np.asarray(v)[idx] for n, v in d.items()} for k, d in self.params.items()}
        noise = {t: {n: np.asarray(v)[idx] for n, v in d.items()} for t, d in self.noise.items()}
        # the draws that belong to each posterior draw travel with it: the discrepancy's z and the base-loss law's
        z = {t: self.discrepancy_z(t)[idx] for t in self.targets}
        laws = {k: None if b is None else BaseLaw(b.E[idx], b.L_hi[idx], b.alpha[idx], b.n_hi, b.n_sizes)
                for k, b in self._all_base_laws().items()}
        new = replace(self, params=params, noise=noise, weights=None)
        new._disc_z.update(z)
        new._base_laws.update(laws)
        return new

    def _all_base_laws(self) -> dict[tuple[str, str], BaseLaw | None]:
        """Every base-loss law the reference supports, fitted now (so that a subset can carry their draws)."""
        for d in self.reference["domain"].astype(str).unique():
            for t in ("general", "domain"):
                if f"loss_{t}" in self.reference:
                    self.base_law(d, t)
        return dict(self._base_laws)

    def _copy(self, **changes: Any) -> Posterior:
        """``replace`` that keeps the per-draw discrepancy z (and the base-loss laws unless the reference changes)."""
        new = replace(self, **changes)
        if "params" not in changes and "noise" not in changes:
            new._disc_z.update(self._disc_z)
            if "reference" not in changes:
                new._base_laws.update(self._base_laws)
        return new

    def summary(self, ci: float = CI_PROB) -> pd.DataFrame:
        """Mean, sd and central interval of every parameter draw (weights respected)."""
        rows = []
        lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
        for (t, d), p in self.params.items():
            for name, v in p.items():
                v = np.asarray(v, float)
                w = self.weights
                mean = float(np.average(v, weights=w))
                sd = float(np.sqrt(np.average((v - mean) ** 2, weights=w)))
                q = weighted_quantile(v, [lo, hi], w)
                rows.append({"target": t, "domain": d, "param": name, "mean": mean, "sd": sd,
                             "lo": float(q[0]), "hi": float(q[1])})
        return pd.DataFrame(rows)


def as_posterior(obj: Any) -> Posterior:
    """The :class:`Posterior` of a fit (anything with a ``.posterior``), or the posterior itself."""
    if isinstance(obj, Posterior):
        return obj
    post = getattr(obj, "posterior", None)
    if isinstance(post, Posterior):
        return post
    raise BayesDCPTError(f"expected a fit or a Posterior, got a {type(obj).__name__}")
