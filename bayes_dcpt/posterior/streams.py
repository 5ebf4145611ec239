"""Runs of different sizes on the same data stream share their deviations from the law.

Probe grids train every model size on the same mixture with the same data seed: the same batches in the same
order. Where a batch helps or hurts the evaluation loss (a data-order jump, a block of repeated text), every size
shows it at the same checkpoint. Measured on the embedded grids, the law's residuals at one (domain, ratio, seed,
tokens) correlate 0.72-0.92 across sizes for the general loss (BENCHMARKS.md, "Shared data streams"). The
likelihood treats runs as independent, so it cannot use that; a prediction for a *new size on a probed stream*
can: the deviation the smaller sizes showed at that checkpoint is, in part, the new run's too.

For each (target, domain) with two or more fitted sizes on common streams, the training residuals
``e = log y - E[log f]`` (posterior mean of the law) give the shared variance ``omega^2`` (the mean covariance
across pairs of sizes over their common checkpoints) and the total ``v``; a new row on a stream probed at ``K``
other sizes is shifted by the best linear predictor of the shared part::

    shift = K omega^2 / (K omega^2 + (v - omega^2)) * mean of the K sizes' residuals at that checkpoint

and its noise keeps the share of the residual variance that those residuals leave open (:func:`stream_shift`);
the law's discrepancy beyond the data is kept whole (the residuals are measured at the fitted sizes, so they say
nothing about how the law's error grows with size). A stream is ``(domain, r_domain, seed, tokens)``: data without
a ``seed`` column have no streams, and rows at a size the stream was fitted at (in-sample rows) are left as they
are. ``ctx["streams"]`` holds, per target,
``{"domains": {domain: {"omega2", "total"}}, "keys": {key: [mean residual, sizes...]}}`` (the sizes
the stream was fitted at; ``K`` is their number). The residuals are those of the rows the model was fitted to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MIN_COMMON", "stream_deviations", "stream_keys", "stream_shift", "stream_summary"]

#: Common checkpoints a pair of sizes needs before its covariance counts.
MIN_COMMON = 10
_MAX_DRAWS = 200


def stream_keys(frame: pd.DataFrame) -> np.ndarray | None:
    """``"domain|r|seed|tokens"`` per row (``""`` where the seed is missing), or None without a seed column."""
    if "seed" not in frame or not len(frame):
        return None
    seed = pd.to_numeric(frame["seed"], errors="coerce").to_numpy(float)
    parts = [frame["domain"].astype(str).to_numpy(),
             np.char.mod("%.12g", pd.to_numeric(frame["r_domain"], errors="coerce").to_numpy(float)),
             np.char.mod("%.12g", seed),
             np.char.mod("%.12g", pd.to_numeric(frame["tokens"], errors="coerce").to_numpy(float))]
    keys = np.array(["|".join(p) for p in zip(*parts, strict=True)], dtype=object)
    keys[~np.isfinite(seed)] = ""
    return keys


def _components(res: pd.DataFrame) -> dict[str, float] | None:
    """Shared and total variance of one (target, domain)'s residuals (columns: sizes, index: stream keys)."""
    sizes = list(res.columns)
    covs, tots = [], []
    for i, a in enumerate(sizes):
        for b in sizes[i + 1:]:
            both = res[[a, b]].dropna()
            if len(both) < MIN_COMMON:
                continue
            c = np.cov(both[a].to_numpy(), both[b].to_numpy())
            covs.append(c[0, 1])
            tots.append(0.5 * (c[0, 0] + c[1, 1]))
    if not covs:
        return None
    return {"omega2": max(float(np.mean(covs)), 0.0), "total": float(np.mean(tots))}


def stream_deviations(post: Any, data: pd.DataFrame,
                      components: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None) -> dict[str, Any]:
    """``ctx["streams"]`` of a posterior from the data it was fitted on (empty without shared streams).

    ``components``: ``{target: {domain: {"omega2", "total"}}}`` measured elsewhere (a held-out refit on one size
    cannot measure them; it takes the full fit's, so that the discrepancy its errors calibrate is the error left
    after the streams, as predictions will use it). None: measured here, from every pair of fitted sizes.
    """
    cpt = data[pd.to_numeric(data["tokens"], errors="coerce") > 0].reset_index(drop=True)
    keys = stream_keys(cpt)
    if keys is None or not (keys != "").any():
        return {}
    idx = np.unique(np.linspace(0, post.n_draws - 1, min(post.n_draws, _MAX_DRAWS)).astype(int))
    sub = post.subset(idx) if len(idx) < post.n_draws else post
    out: dict[str, Any] = {}
    for t in post.targets:
        col = f"loss_{t}"
        if col not in cpt:
            continue
        own = cpt["r_domain"].to_numpy(float) if t == "domain" else 1.0 - cpt["r_domain"].to_numpy(float)
        ok = (cpt[col].notna().to_numpy() & (keys != "") & cpt["domain"].astype(str).isin(post.domains).to_numpy()
              & ((own > 0) | bool(getattr(post, "fits_zero_ratio", False))))
        if not ok.any():
            continue
        rows = cpt[ok].reset_index(drop=True)
        with np.errstate(all="ignore"):
            res = np.log(rows[col].to_numpy(float)) - np.nanmean(sub.mean_log_loss(rows, t), axis=0)
        frame = pd.DataFrame({"key": keys[ok], "domain": rows["domain"].astype(str).to_numpy(),
                              "n": rows["n_params"].to_numpy(float), "res": res})
        frame = frame[np.isfinite(frame["res"])]
        if components is not None:
            present = set(frame["domain"])
            comps = {d: dict(c) for d, c in (components.get(t) or {}).items() if d in present}
        else:
            comps = {}
            for d, g in frame.groupby("domain"):
                c = _components(g.pivot_table(index="key", columns="n", values="res", aggfunc="mean"))
                if c is not None:
                    comps[str(d)] = c
        if not comps:
            continue
        g = frame[frame["domain"].isin(comps)].groupby("key")
        mean, sizes = g["res"].mean(), g["n"].agg(lambda s: sorted(set(s)))
        out[t] = {"domains": comps,
                  "keys": {k: [float(mean[k]), *sizes[k]] for k in mean.index}}
    return out


def stream_shift(ctx: Mapping[str, Any], frame: pd.DataFrame, target: str) -> tuple[np.ndarray, np.ndarray]:
    """The log-scale shift of each row of ``frame`` and the factor on its noise sd, both ``(len(frame),)``.

    Off the probed streams, at a size the stream was fitted at, or without streams: shift 0, factor 1. On a probed
    stream at a new size the noise keeps the part of the variance the other sizes' residuals leave open::

        factor^2 = (idio + omega^2 idio / (K omega^2 + idio)) / (omega^2 + idio),   idio = total - omega^2
    """
    shift, factor = np.zeros(len(frame)), np.ones(len(frame))
    st = (ctx.get("streams") or {}).get(target)
    keys = stream_keys(frame) if st else None
    if keys is None:
        return shift, factor
    N = pd.to_numeric(frame["n_params"], errors="coerce").to_numpy(float)
    entries = pd.Series(keys).map(st["keys"])
    hit = entries.notna().to_numpy() & (keys != "")
    doms = frame["domain"].astype(str).to_numpy()
    for i in np.flatnonzero(hit):
        entry, comp = entries.iloc[i], st["domains"].get(doms[i])
        sizes = np.asarray(entry[1:], float)
        if comp is None or np.any(np.isclose(sizes, N[i], rtol=1e-6)):
            continue
        K, omega2 = len(sizes), comp["omega2"]
        idio = max(comp["total"] - omega2, 1e-12)
        shift[i] = K * omega2 / (K * omega2 + idio) * entry[0]
        factor[i] = np.sqrt((idio + omega2 * idio / (K * omega2 + idio)) / (omega2 + idio))
    return shift, factor


def stream_summary(ctx: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """``{target: {domain: {"shared_sd", "total_sd", "shared_share"}}}`` of ``ctx["streams"]`` (JSON-ready, small).

    ``shared_share`` is ``omega^2 / total``: the share of a checkpoint's residual variance that runs of other sizes
    on its stream share (about the correlation of their residuals).
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for t, st in (ctx.get("streams") or {}).items():
        out[t] = {d: {"shared_sd": float(np.sqrt(c["omega2"])), "total_sd": float(np.sqrt(c["total"])),
                      "shared_share": float(c["omega2"] / c["total"]) if c["total"] > 0 else 0.0}
                  for d, c in st["domains"].items()}
    return out
