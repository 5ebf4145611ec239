"""The data arrays fed to the D-CPT model: observations in long form, indices, reference points and anchors.

Everything goes into the PyMC model through ``pm.Data``, so a refit with new data of the same structure swaps the
arrays of the cached compiled model instead of recompiling (:mod:`bayes_dcpt.fitting.dcpt_model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.dlc import attach_features, dlc_features
from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.config import FitConfig
from bayes_dcpt.fitting.marginal import run_groups
from bayes_dcpt.laws.registry import BILLION, Law
from bayes_dcpt.numerics.runblock import RunBlocks

__all__ = ["Design", "block_layout", "make_design", "run_blocks", "run_capacity", "token_grids"]


@dataclass
class Design:
    """Arrays fed to the PyMC model (all through pm.Data so refits do not recompile)."""

    targets: tuple[str, ...]
    domains: list[str]
    obs: pd.DataFrame
    runs: list[str]
    run_capacity: int
    lref: np.ndarray
    d_min: float
    n_ref: float
    d_ref: float
    features: pd.DataFrame | None
    n_sizes: int
    r_ref: np.ndarray
    anchor_lo: np.ndarray
    anchor_hi: np.ndarray
    loss_lo: np.ndarray
    loss_lo_d: np.ndarray
    varying_axes: dict[str, tuple[str, ...]]
    blocks: bool = False

    def arrays(self) -> dict[str, np.ndarray]:
        """The named arrays of the model's ``pm.Data`` containers.

        With ``blocks`` (run offsets integrated out) the observations are laid out one row per run
        (:class:`~bayes_dcpt.numerics.runblock.RunBlocks`: run-level N and r as ``(R, 1)`` columns, the checkpoints
        as ``(R, K)`` matrices with a ``mask``); otherwise one entry per observation. Tokens enter as ``log_D``:
        the laws' ``D**-beta`` is ``exp(-beta log D)``, and with ``D = exp(log_D)`` PyTensor cancels the log, which
        saves one logarithm per checkpoint and evaluation (a quarter of the gradient's cost on dense logs).
        """
        o = self.obs
        n, d = o["n_params"].to_numpy(float) / BILLION, o["tokens"].to_numpy(float) / BILLION
        r, y = o["r"].to_numpy(float), np.log(o["loss"].to_numpy(float))
        if self.blocks:
            b, out = run_blocks(o)
            log_d = b.matrix(np.log(d), 0.0)
            out |= {"N": b.column(n), "log_D": log_d, "r": b.column(r), "log_loss": b.matrix(y), "mask": b.mask()}
            out |= token_grids(out["t_run"] * len(self.domains) + out["d_run"], log_d)
        else:
            out = {"t_idx": o["t_idx"].to_numpy(np.int64), "d_idx": o["d_idx"].to_numpy(np.int64),
                   "run_idx": o["run_idx"].to_numpy(np.int64),
                   "run_group": run_groups(self.runs, self.targets, self.run_capacity),
                   "run_domain": _run_domains(o, self.run_capacity),
                   "N": n, "log_D": np.log(d), "r": r, "log_loss": y}
        out |= {
            "loss_ref": self.lref.astype(float),
            "D_min": np.asarray(self.d_min, float),
            "N_ref": np.asarray(self.n_ref, float),
            "D_ref": np.asarray(self.d_ref, float),
            "r_ref": self.r_ref.astype(float),
            "anchor_lo": self.anchor_lo.astype(float),
            "anchor_hi": self.anchor_hi.astype(float),
            "loss_lo": self.loss_lo.astype(float),
            "loss_lo_d": self.loss_lo_d.astype(float),
        }
        if self.features is not None:
            f = self.features.set_index("domain").loc[self.domains]
            for k in ("k1", "k2", "k3"):
                v = f[k].to_numpy(float)
                out[k] = np.where(np.isfinite(v), v, 1.0)  # an unused feature may be missing (e.g. k3 for K3)
        return out

    def layout(self, arrays: dict[str, np.ndarray] | None = None) -> tuple[bool, ...]:
        """Run-block layout (:func:`block_layout`); part of the compiled structure.

        ``arrays``: this design's :meth:`arrays` when the caller has them already (they are not built twice).
        """
        if not self.blocks:
            return ()
        return block_layout(self.arrays() if arrays is None else arrays)


def _run_domains(obs: pd.DataFrame, capacity: int) -> np.ndarray:
    """Domain index of every run slot (empty slots get 0): with ``run_group``, a run's noise cell."""
    out = np.zeros(capacity, dtype=np.int64)
    out[obs["run_idx"].to_numpy(np.int64)] = obs["d_idx"].to_numpy(np.int64)
    return out


def block_layout(arrays: dict[str, np.ndarray]) -> tuple[bool, ...]:
    """Which ``(R, K)`` inputs of a run-block model are wider than one column (part of its compiled structure).

    A width-1 input gets a static 1 (it broadcasts along the run): N and r when they do not vary along a run, and
    the checkpoint matrices when every run has one checkpoint. Data with one checkpoint per run (a refit on early
    tokens) therefore compile another model than data with several (the full fit), which before reused the first
    model and failed on the new shape.
    """
    return tuple(np.shape(v)[1] > 1 for _, v in sorted(arrays.items()) if np.ndim(v) == 2)


def token_grids(cells: np.ndarray, log_d: np.ndarray) -> dict[str, np.ndarray]:
    """The distinct (parameter cell, token grid) pairs of a run-block layout, for ``D^-beta`` once per pair.

    Runs of one (target, domain) cell that log the same token grid share their ``D^-beta`` row: the model computes
    it for each pair (``pair_cell``, ``pair_log_D``) and gathers it by ``run_pair``. Probe grids usually evaluate
    every run at the same steps, so the pairs are the cells and the token term's transcendentals fall from one per
    checkpoint to one per cell and grid point (BENCHMARKS.md, scale); with a grid per run nothing is shared and
    the gather costs little.
    """
    key = np.column_stack([np.asarray(cells, float), log_d])
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return {"pair_cell": np.asarray(cells, np.int64)[first], "pair_log_D": log_d[first],
            "run_pair": inv.reshape(-1).astype(np.int64)}


def run_blocks(obs: pd.DataFrame) -> tuple[RunBlocks, dict[str, np.ndarray]]:
    """The run-block layout of observations (``run_idx``, ``t_idx``, ``d_idx``) and each run's target, domain, size.

    A run must stay in one domain (the run-level parameters are its domain's): one that does not is a data error.
    """
    b = RunBlocks(obs["run_idx"].to_numpy())
    d_run = b.per_run(obs["d_idx"].to_numpy(np.int64))
    if d_run is None:
        bad = obs.groupby("run_id")["domain"].nunique()
        raise FitError(f"run {bad[bad > 1].index[0]!r} has rows of several domains: give each its own run_id")
    return b, {"t_run": b.per_run(obs["t_idx"].to_numpy(np.int64)), "d_run": d_run, "n_run": b.counts}


def run_capacity(n: int) -> int:
    """Run capacity: a power of two with >= 50% headroom, so adding runs rarely changes the compiled shapes.

    Unused run offsets are sampled from their prior and touch no observation.
    """
    return int(max(8, 2 ** int(np.ceil(np.log2(max(1.5 * n, 1))))))


def _fitted_long(df: pd.DataFrame, cfg: FitConfig) -> pd.DataFrame:
    """The measurements to fit, one row per (target, checkpoint)."""
    long = _data.to_long(cfg.fitted_data(df), cfg.target)
    if not cfg.zero_ratio:
        # a loss measured with none of its own corpus in the mixture (general loss at r_domain = 1, domain
        # loss at r_domain = 0) lies below the paper's inflection ratio, where the law does not hold
        # (appendix I.3: "meaningless"); such rows are kept in the data but not fitted
        long = long[long["r"] > 0].reset_index(drop=True)
    if long.empty:
        raise cfg.nothing_to_fit(df)
    return long


def _dlc_features(df: pd.DataFrame, long: pd.DataFrame, law: Law, cfg: FitConfig,
                  domains: list[str]) -> pd.DataFrame | None:
    """The domains' DLC features of a cross-domain law (None for the other laws); each must be positive."""
    if law.dlc is None:
        return None
    if len(domains) < 2:
        raise FitError("the cross-domain law needs at least two domains")
    features = dlc_features(df, probe_tokens=cfg.probe_tokens, domains=domains)
    attach_features(long.head(0).assign(domain=pd.Series(dtype=str)), features, law.dlc_features)
    for k in law.dlc_features:
        bad = ~np.isfinite(features[k]) | (features[k] <= 0)
        if bad.any():
            raise FitError(f"DLC feature {k} is not positive for domain(s) {list(features.loc[bad, 'domain'])}")
    return features


def make_design(df: pd.DataFrame, law: Law, cfg: FitConfig, run_slots: int | None = None) -> Design:
    """The model's data arrays for the measurements ``df`` (validated schema frame) under ``cfg``.

    ``run_slots``: at least this many run slots (a refit on part of a fit's data keeps the fit's compiled model).
    """
    targets = _data.targets_of(cfg.target)
    long = _fitted_long(df, cfg)
    domains = sorted(long["domain"].unique().tolist())
    features = _dlc_features(df, long, law, cfg, domains)
    long["t_idx"] = long["target"].map({t: i for i, t in enumerate(targets)})
    long["d_idx"] = long["domain"].map({d: i for i, d in enumerate(domains)})
    run_key = long["target"] + "::" + long["run_id"]
    runs, run_idx = np.unique(run_key.to_numpy(), return_inverse=True)
    long["run_idx"] = run_idx
    n_per_target = [int((long["target"] == t).sum()) for t in targets]
    for t, n in zip(targets, n_per_target, strict=True):
        if n < 3:
            raise FitError(f"target {t}: only {n} measured points")
    lref = np.array([float(np.median(long.loc[long["target"] == t, "loss"])) for t in targets])
    pos = long["tokens"].to_numpy(float)
    nn = long["n_params"].to_numpy(float)
    return Design(
        targets=targets, domains=domains, obs=long.reset_index(drop=True), runs=list(runs),
        run_capacity=max(run_capacity(len(runs)), run_slots or 0), lref=lref, d_min=float(pos.min()) / BILLION,
        n_ref=float(np.exp(np.mean(np.log(nn / BILLION)))), d_ref=float(np.exp(np.mean(np.log(pos / BILLION)))),
        features=features, n_sizes=int(long["n_params"].nunique()),
        r_ref=np.array([_r_ref(long.loc[long["target"] == t, "r"].to_numpy(float)) for t in targets]),
        anchor_lo=np.array([_anchors(long[long["target"] == t])[0] for t in targets]),
        anchor_hi=np.array([_anchors(long[long["target"] == t])[1] for t in targets]),
        loss_lo=np.array([float(np.quantile(long.loc[long["target"] == t, "loss"], 0.1)) for t in targets]),
        loss_lo_d=np.array([[_q10(long, t, d) for d in domains] for t in targets]),
        varying_axes={"axes": _varying_axes(long)},
        blocks=cfg.run_effect and cfg.run_offsets == "marginal",
    )


def _q10(long: pd.DataFrame, target: str, domain: str) -> float:
    """10% quantile of one (target, domain)'s losses (the target's over all domains when it has none)."""
    v = long.loc[(long["target"] == target) & (long["domain"] == domain), "loss"]
    if not len(v):
        v = long.loc[long["target"] == target, "loss"]
    return float(np.quantile(v, 0.1))


def _anchors(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(N, D, r) at the low and high ends of the data (N, D in billions; r the positive ratios)."""
    n = rows["n_params"].to_numpy(float) / BILLION
    d = rows["tokens"].to_numpy(float) / BILLION
    r = rows["r"].to_numpy(float)
    rp = r[r > 0] if (r > 0).any() else np.array([0.5])
    return np.array([n.min(), d.min(), rp.min()]), np.array([n.max(), d.max(), rp.max()])


def _varying_axes(long: pd.DataFrame) -> tuple[str, ...]:
    """Axes with at least two distinct values in every target (a structural property of the model)."""
    out = []
    for axis, col in (("N", "n_params"), ("D", "tokens"), ("r", "r")):
        ok = True
        for _, g in long.groupby("target"):
            v = g[col].to_numpy(float)
            v = v[v > 0] if axis == "r" else v
            ok &= len(np.unique(v)) >= 2
        if ok:
            out.append(axis)
    return tuple(out)


def _r_ref(r: np.ndarray) -> float:
    """Reference ratio of a target: the median of its positive ratios (0.5 when there are none)."""
    pos = r[r > 0]
    return float(np.median(pos)) if pos.size else 0.5
