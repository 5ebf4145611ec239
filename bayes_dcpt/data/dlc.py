"""Domain-specific Learnable Coefficient (DLC) features k1, k2, k3 of the Cross-Domain D-CPT Law.

The paper (section 3.2, appendix H) describes a domain by the first "Taylor coefficients" of its
domain validation loss near the start of CPT, measured on a cheap probe run:

* ``k1`` the initial validation loss (``k1="base"``: the base model's loss, tokens == 0; the paper's
  appendix H instead uses the loss after the first probe checkpoint, ``k1="first"``);
* ``k2 = L(0) - L(b)``, the drop after a probe budget of ``b`` tokens (the paper: 5k steps);
* ``k3 = (L(0) - L(b)) - (L(b) - L(2b))`` (the paper's text writes ``L0 - L10000``, an algebra slip).

Which run serves as the probe is not stated in the paper; here it is, per domain, the smallest model
size and the largest domain ratio measured (or the ones given), and the loss at ``b`` and ``2b`` is
interpolated linearly in log-tokens between measured checkpoints (never extrapolated).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_dcpt.errors import DataValidationError, Problem

__all__ = ["attach_features", "dlc_features"]


def _interp_log(tokens: np.ndarray, loss: np.ndarray, at: float, domain: str) -> float:
    order = np.argsort(tokens)
    t, y = tokens[order], loss[order]
    if at < t[0] * (1 - 1e-9) or at > t[-1] * (1 + 1e-9):
        raise DataValidationError(
            [Problem("tokens", f"domain {domain!r}: the probe run has no checkpoints around {at:.4g} tokens "
                               f"(measured {t[0]:.4g} to {t[-1]:.4g}); lower probe_tokens or add checkpoints")]
        )
    return float(np.interp(np.log(at), np.log(t), y))


def dlc_features(
    df: pd.DataFrame,
    *,
    probe_tokens: float | None = None,
    k1: str = "base",
    n_params: float | None = None,
    r_domain: float | None = None,
    domains: list[str] | None = None,
) -> pd.DataFrame:
    """Compute (k1, k2, k3) per domain from each domain's own early domain-loss measurements.

    Parameters
    ----------
    df
        Validated schema frame (see :func:`bayes_dcpt.data.schema.load`); needs tokens == 0 base rows with
        ``loss_domain`` for each domain's probe model size.
    probe_tokens
        The probe budget ``b`` in tokens. Default: the probe run's first positive checkpoint.
    k1
        ``"base"`` (loss before CPT) or ``"first"`` (loss at the budget ``b``).
    n_params, r_domain
        Which probe run to use; default the smallest size and the largest ratio measured per domain.
    domains
        Restrict to these domains.

    Returns
    -------
    pandas.DataFrame
        One row per domain: ``domain, k1, k2, k3, probe_n_params, probe_r_domain, probe_tokens``.
    """
    if k1 not in ("base", "first"):
        raise DataValidationError([Problem("k1", f"unknown k1 definition {k1!r}; use 'base' or 'first'")])
    rows = []
    for dom in domains or sorted(df["domain"].unique()):
        d = df[(df["domain"] == dom) & df["loss_domain"].notna()]
        cpt = d[d["tokens"] > 0]
        if cpt.empty:
            raise DataValidationError([Problem("domain", f"domain {dom!r} has no CPT rows with a domain loss")])
        n = float(n_params) if n_params is not None else float(cpt["n_params"].min())
        at_n = cpt[np.isclose(cpt["n_params"], n)]
        if at_n.empty:
            raise DataValidationError([Problem("n_params", f"domain {dom!r} has no probe run with n_params={n:g}")])
        r = float(r_domain) if r_domain is not None else float(at_n["r_domain"].max())
        run = at_n[np.isclose(at_n["r_domain"], r)]
        if run.empty:
            raise DataValidationError([Problem("r_domain", f"domain {dom!r} has no probe run with r_domain={r:g}")])
        run = run.groupby("tokens", as_index=False)["loss_domain"].mean()
        base = d[(d["tokens"] == 0) & np.isclose(d["n_params"], n)]
        if base.empty:
            raise DataValidationError(
                [Problem("tokens", f"domain {dom!r}: no base row (tokens == 0) with a domain loss for n_params={n:g}; "
                                   "the DLC features need the loss before CPT")]
            )
        L0 = float(base["loss_domain"].mean())
        t = run["tokens"].to_numpy(float)
        y = run["loss_domain"].to_numpy(float)
        b = float(probe_tokens) if probe_tokens is not None else float(t.min())
        Lb = _interp_log(t, y, b, dom)
        L2b = _interp_log(t, y, 2 * b, dom) if 2 * b <= t.max() * (1 + 1e-9) else np.nan
        rows.append(
            {
                "domain": dom,
                "k1": L0 if k1 == "base" else Lb,
                "k2": L0 - Lb,
                "k3": (L0 - Lb) - (Lb - L2b),
                "probe_n_params": n,
                "probe_r_domain": r,
                "probe_tokens": b,
            }
        )
    return pd.DataFrame(rows)


def attach_features(
    frame: pd.DataFrame, features: pd.DataFrame, needed: tuple[str, ...] = ("k1", "k2")
) -> pd.DataFrame:
    """Join per-domain features onto an observation frame; unknown domains and bad values raise."""
    feats = features.set_index("domain")
    missing = sorted(set(frame["domain"]) - set(feats.index))
    if missing:
        raise DataValidationError([Problem("domain", f"no DLC features for domain(s) {missing}")])
    out = frame.copy()
    for k in ("k1", "k2", "k3"):
        out[k] = frame["domain"].map(feats[k]).to_numpy(float)
    for k in needed:
        bad = ~np.isfinite(out[k]) | (out[k] <= 0)
        if bad.any():
            doms = sorted(set(out.loc[bad, "domain"]))
            raise DataValidationError(
                [Problem(k, f"DLC feature {k} must be finite and > 0; it is not for domain(s) {doms} "
                            "(k2 <= 0 means the domain loss did not drop during the probe)")]
            )
    return out
