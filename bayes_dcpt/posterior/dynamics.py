"""Posterior draws of the CPT dynamics law: whole loss curves of any run, with bands, from its LR schedule.

:class:`DynamicsPosterior` is a :class:`~bayes_dcpt.posterior.draws.Posterior` whose rows are points on a CPT run
(``domain, n_params, r_domain, schedule, step``; ``base_schedule`` defaults to the fitted base model's),
so the planner (:mod:`bayes_dcpt.plan.planner`) and the schedule decision (:mod:`bayes_dcpt.decide.lr_choice`)
use it like any posterior. The areas S1/S2 of every row are computed from the schedules exactly
(:mod:`bayes_dcpt.laws.lr_schedules`) with the fit's annealing momentum.

Noise model (the same as the Bayesian fit's)::

    log L_obs = log L_law(S1pt, S1cpt, S2pt, S2cpt[, N][, r]; theta) + u_run + e,
    u_run ~ Normal(0, tau),  e ~ StudentT(nu, 0, sigma)

Quickstart::

    >>> post = dyn_fit.posterior
    >>> rows = post.curve_rows("python", 100_672, 0.5, "wsd(peak=1e-3, steps=256, warmup=10, final=1e-4)")
    >>> post.predict(rows, ci=0.9)           # loss_general_mean/_lo/_hi, loss_domain_..., S1pt, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.constants import CI_PROB
from bayes_dcpt.data.dynamics import AREA_COLUMNS, area_features, prediction_rows, schedule_of
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.laws.dynamics import VARIANTS
from bayes_dcpt.laws.lr_schedules import DEFAULT_MOMENTUM
from bayes_dcpt.laws.registry import BILLION
from bayes_dcpt.numerics.quantiles import weighted_quantile
from bayes_dcpt.posterior.draws import Posterior
from bayes_dcpt.posterior.noise import log_noise

__all__ = ["DynamicsPosterior"]


@dataclass
class DynamicsPosterior(Posterior):
    """Posterior of a CPT dynamics law (see :class:`~bayes_dcpt.posterior.draws.Posterior` for the attributes).

    ``ctx`` holds ``momentum`` (the annealing momentum lambda), ``base_schedules`` (``{(domain,
    n_params): spec}`` of the fitted base models) and ``tokens_per_step`` (``{(domain, n_params): tokens}``
    of the fitted runs), used to fill rows that omit ``base_schedule`` or ``step``.
    """

    @property
    def momentum(self) -> float:
        """The annealing momentum lambda the areas are computed with."""
        return float(self.ctx.get("momentum", DEFAULT_MOMENTUM))

    # ----------------------------------------------------------------------------------------- rows
    def rows(self, frame: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
        """Validated prediction rows with canonical schedules, ``step``/``tokens`` filled and the four areas."""
        df = prediction_rows(frame, domains=self.domains, base_schedules=self.ctx.get("base_schedules"),
                             tokens_per_step=self.ctx.get("tokens_per_step"))
        feats = area_features(df, self.momentum)
        for c in AREA_COLUMNS:
            df[c] = feats[c].to_numpy()
        return df

    def curve_rows(self, domain: str, n_params: float, r_domain: float, schedule: Any, *,
                   base_schedule: Any = None, steps: Any = None) -> pd.DataFrame:
        """Rows for a whole curve: every step ``0..T`` of ``schedule`` (or the given ``steps``)."""
        from bayes_dcpt.laws.lr_schedules import parse_schedule

        sched = parse_schedule(schedule)
        st = np.arange(sched.steps + 1) if steps is None else np.asarray(steps, dtype=np.int64)
        out = pd.DataFrame({"domain": domain, "n_params": float(n_params), "r_domain": float(r_domain),
                            "schedule": sched.spec(), "step": st})
        if base_schedule is not None:
            out["base_schedule"] = parse_schedule(base_schedule).spec()
        return out

    # ------------------------------------------------------------------------------------ evaluation
    def _x(self, df: pd.DataFrame, target: str) -> dict[str, np.ndarray]:
        use_n, use_r = VARIANTS[self.law.name]
        x = {c: df[c].to_numpy(float)[None, :] for c in AREA_COLUMNS}
        if use_n:
            x["N"] = df["n_params"].to_numpy(float)[None, :] / BILLION
        if use_r:
            x["r_cpt"] = df["r_domain"].to_numpy(float)[None, :]
            x["is_domain"] = np.full((1, len(df)), 1.0 if target == "domain" else 0.0)
        return x

    def law_draws(self, frame: pd.DataFrame, target: str) -> np.ndarray:
        """Noise-free law per draw for validated rows (with areas): shape ``(S, len(frame))``."""
        df = frame if all(c in frame for c in AREA_COLUMNS) else self.rows(frame)
        out = np.full((self.n_draws, len(df)), np.nan)
        doms = df["domain"].astype(str).to_numpy()
        for d in np.unique(doms):
            m = doms == d
            p = self.param_draws(target, str(d))
            pe = {k: np.asarray(v, float)[:, None] for k, v in p.items()}
            with np.errstate(all="ignore"):
                out[:, m] = np.asarray(self.law(np, pe, self._x(df[m], target)), float)
        return out

    def mean_log_loss(self, frame: pd.DataFrame, target: str) -> np.ndarray:  # noqa: D102
        return np.log(self.law_draws(frame, target))

    def surface(self, *args: Any, **kwargs: Any) -> np.ndarray:  # noqa: D102
        raise BayesDCPTError("the CPT dynamics law predicts points on runs with a schedule: use law_draws(rows) "
                             "or predict(rows) with domain, n_params, r_domain, schedule and step")

    def predict(self, frame: pd.DataFrame | Mapping[str, Any], ci: float = CI_PROB, *, kind: str = "predictive",
                seed: int = 0) -> pd.DataFrame:
        """Posterior mean and central ``ci`` interval of each fitted loss at any points of any runs.

        Parameters
        ----------
        frame
            Rows with ``domain, n_params, r_domain, schedule`` and ``step`` (or ``tokens``); optional
            ``base_schedule`` (default: the fitted base model's) and ``run_id`` (rows of one run share a
            run offset in predictive draws; default: every distinct (domain, n_params, r_domain,
            schedule) is one new run).
        ci
            Interval probability (equal-tailed).
        kind
            ``"predictive"`` (a new run's measurements: law + run offset + noise) or ``"mean"`` (the law).

        Returns
        -------
        pandas.DataFrame
            The rows (with ``step``, ``tokens``, the areas) plus ``loss_<target>_mean``, ``_lo``, ``_hi``.
        """
        if kind not in ("predictive", "mean"):
            raise BayesDCPTError(f"kind must be 'predictive' or 'mean', not {kind!r}")
        if not 0 < ci < 1:
            raise BayesDCPTError(f"ci must be in (0, 1), got {ci}")
        df = self.rows(frame)
        if "run_id" not in df:
            df["run_id"] = (df["domain"].astype(str) + "|" + df["n_params"].map("{:.6g}".format) + "|"
                            + df["r_domain"].map("{:.6g}".format) + "|" + df["schedule"].astype(str))
        lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
        rng = np.random.default_rng(seed)
        w = self.weights
        for t in self.targets:
            law = self.law_draws(df, t)
            if kind == "mean":
                draws = law
            else:
                runs = df["run_id"].astype(str).to_numpy()
                draws = law * np.exp(log_noise(rng, self.noise_rows(t, df["domain"]), runs, self.n_draws,
                                               mixing=bool(self.ctx.get("run_mixing"))))
            mean = np.nansum(law * (w[:, None] if w is not None else 1.0 / law.shape[0]), axis=0)
            q = weighted_quantile(draws, [lo, hi], w, axis=0)
            df[f"loss_{t}_mean"] = mean
            df[f"loss_{t}_lo"] = q[0]
            df[f"loss_{t}_hi"] = q[1]
        return df

    def schedules(self) -> dict[str, Any]:
        """The fitted base schedules ``{(domain, n_params): Schedule}``."""
        return {k: schedule_of(v) for k, v in self.ctx.get("base_schedules", {}).items()}
