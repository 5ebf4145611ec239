"""Expected information of probe runs from posterior draws: the planner's estimators, on plain arrays.

For a probe with noise-free outputs ``f_s`` (K log-losses per draw, shape ``(S, K)``), a target quantity
``z_s`` (shape ``(S, m)``) and Gaussian noise with covariance ``R``:

* :class:`Ensemble` / :class:`Conditioner` -- the moment-matched estimators of ``../shared/planner.md``
  section 5 ("MM-GOIG")::

      U_theta = 1/2 logdet(I + R^-1 Sigma_f)
      U_z     = 1/2 [logdet Sigma_zz - logdet(Sigma_zz - Sigma_zf (Sigma_f + R)^-1 Sigma_fz)]

  computed in an ensemble square-root form: every candidate's outputs are whitened by ``R`` and reduced to
  the principal components whose signal variance exceeds ``tol`` (in noise units; the others carry less
  than ``tol/2`` nats), and a batch is conditioned on exactly (Schur complement of the joint ensemble
  covariance, kept as ``P = I - Q Q^T`` over the draws), so scoring 500 candidates and choosing a batch
  needs no (sum K)^2 matrix.
* :func:`is_information` -- the importance-reweighting check: simulate outcomes, reweight the draws
  (Pareto-smoothed), and measure how much the target's variance (and histogram entropy) shrinks.
* :func:`nmc_information` -- nested Monte Carlo (Ryan 2003), the reference estimator of I(theta; y).

Noise (:class:`BlockNoise`): the outputs are split in blocks (one per loss of one run); a block of size
``k`` has covariance ``sigma^2 I + tau^2 11^T`` (checkpoint noise plus one run offset), blocks are
independent; ``sigma`` and ``tau`` may vary over draws.

Quickstart::

    >>> ens = Ensemble.build(F[None], R[None], z, weights)      # one candidate: F (S, K), R (K, K)
    >>> cond = Conditioner(ens); cond.scores()["U_z"]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.numerics.psis import ess as _ess
from bayes_dcpt.numerics.psis import psis
from bayes_dcpt.numerics.runblock import run_terms

__all__ = [
    "BlockNoise",
    "Conditioner",
    "Ensemble",
    "block_log_likelihood",
    "ensemble_matrix",
    "is_information",
    "mm_information",
    "nmc_information",
]

EIG_TOL = 1e-8


def _norm_weights(weights: np.ndarray | None, S: int) -> np.ndarray:
    if weights is None:
        return np.full(S, 1.0 / S)
    w = np.asarray(weights, float)
    if w.shape != (S,) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise BayesDCPTError("weights must be finite, non-negative and one per draw")
    return w / w.sum()


def ensemble_matrix(X: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Centred, scaled draws ``A``: ``A^T A`` is the (weighted, unbiased) covariance of ``X`` over axis 0."""
    X = np.asarray(X, float)
    S = X.shape[0]
    w = _norm_weights(weights, S)
    mean = np.tensordot(w, X, axes=(0, 0))
    denom = 1.0 - np.sum(w**2)
    if denom <= 0:
        raise BayesDCPTError("the draws have an effective sample size of 1; no covariance can be estimated")
    scale = np.sqrt(w / denom).reshape((S,) + (1,) * (X.ndim - 1))
    return (X - mean) * scale


@dataclass(frozen=True)
class BlockNoise:
    """Gaussian noise of one probe's output vector with per-run offsets.

    Parameters
    ----------
    blocks
        Index arrays partitioning the K outputs (one block per loss of one run).
    sigma, tau
        Per-draw checkpoint noise and run-offset sd of each block, shape ``(S, n_blocks)``.
    """

    blocks: tuple[np.ndarray, ...]
    sigma: np.ndarray
    tau: np.ndarray

    @property
    def size(self) -> int:
        """Number of outputs K."""
        return int(sum(len(b) for b in self.blocks))

    def mean_cov(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Noise covariance averaged over draws: ``E[sigma^2] I + E[tau^2] 11^T`` per block."""
        S = self.sigma.shape[0]
        w = _norm_weights(weights, S)
        s2 = w @ self.sigma**2
        t2 = w @ self.tau**2
        R = np.zeros((self.size, self.size))
        for b, idx in enumerate(self.blocks):
            R[np.ix_(idx, idx)] = t2[b]
            R[idx, idx] += s2[b]
        return R

    def sample(self, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One noise vector per entry of ``draws`` (draw indices), shape ``(len(draws), K)``."""
        out = np.empty((len(draws), self.size))
        for b, idx in enumerate(self.blocks):
            u = rng.standard_normal((len(draws), 1)) * self.tau[draws, b][:, None]
            e = rng.standard_normal((len(draws), len(idx))) * self.sigma[draws, b][:, None]
            out[:, idx] = u + e
        return out


def block_log_likelihood(Y: np.ndarray, F: np.ndarray, noise: BlockNoise) -> np.ndarray:
    """``log p(y_j | theta_s)`` for outcomes ``Y`` (J, K) and draws ``F`` (S, K): shape ``(J, S)``.

    Every (outcome, draw) pair at once: the run sums of ``y_j - f_s`` are expanded so that no ``(J, S, K)``
    array is formed, then :func:`~bayes_dcpt.numerics.runblock.run_terms` gives the Gaussian block terms.
    """
    J, S = Y.shape[0], F.shape[0]
    center = F.mean(axis=0)
    Yc, Fc = Y - center, F - center
    out = np.zeros((J, S))
    for b, idx in enumerate(noise.blocks):
        k = len(idx)
        yb, fb = Yc[:, idx], Fc[:, idx]
        ss = (yb**2).sum(1)[:, None] + (fb**2).sum(1)[None, :] - 2.0 * yb @ fb.T
        ss = np.maximum(ss, 0.0)
        t = yb.sum(1)[:, None] - fb.sum(1)[None, :]
        out += run_terms(np, t, ss, float(k), noise.sigma[:, b][None, :] ** 2, noise.tau[:, b][None, :] ** 2)
    return out


# ------------------------------------------------------------------------------ moment-matched (MM)
@dataclass
class Ensemble:
    """Whitened, rank-reduced candidate outputs and the target, as ensemble square roots.

    ``B[c]`` (S, r) are candidate c's principal output components in noise units (observation noise is the
    identity there; zero columns pad candidates with fewer components); ``Z`` (S, m) is the centred,
    scaled target, so that ``B[c]^T B[c]``, ``B[c]^T Z`` and ``Z^T Z`` are the MM covariances.
    """

    B: np.ndarray
    Z: np.ndarray
    rank: np.ndarray

    @classmethod
    def build(
        cls,
        F: np.ndarray,
        R: np.ndarray,
        z: np.ndarray,
        weights: np.ndarray | None = None,
        tol: float = EIG_TOL,
    ) -> Ensemble:
        """From outputs ``F`` (C, S, K), noise covariances ``R`` (C, K, K) and target draws ``z`` (S[, m])."""
        parts = [cls._features(F, R, weights, tol)]
        return cls._assemble(parts, z, weights)

    @staticmethod
    def _features(F: np.ndarray, R: np.ndarray, weights: np.ndarray | None, tol: float) -> np.ndarray:
        F = np.asarray(F, float)
        K = F.shape[2]
        A = ensemble_matrix(np.moveaxis(F, 1, 0), weights)  # (S, C, K)
        A = np.moveaxis(A, 0, 1)  # (C, S, K)
        try:
            L = np.linalg.cholesky(R)
        except np.linalg.LinAlgError as exc:
            raise BayesDCPTError("a noise covariance is not positive definite (sigma must be > 0)") from exc
        # whitened: At = A L^-T  <=>  At^T = L^-1 A^T
        At = np.swapaxes(np.linalg.solve(L, np.swapaxes(A, 1, 2)), 1, 2)  # (C, S, K)
        G = np.swapaxes(At, 1, 2) @ At  # (C, K, K)
        lam, V = np.linalg.eigh(G)  # ascending
        keep = lam > tol
        r = max(int(keep.sum(axis=1).max()), 1)
        V = V[:, :, K - r :] * keep[:, None, K - r :]
        return At @ V  # (C, S, r)

    @staticmethod
    def _assemble(parts: Sequence[np.ndarray], z: np.ndarray, weights: np.ndarray | None) -> Ensemble:
        r = max(p.shape[2] for p in parts)
        padded = [
            np.concatenate([p, np.zeros((*p.shape[:2], r - p.shape[2]))], axis=2) if p.shape[2] < r else p
            for p in parts
        ]
        B = np.concatenate(padded, axis=0)
        rank = (np.abs(B).sum(axis=1) > 0).sum(axis=1)
        z = np.asarray(z, float)
        z = z[:, None] if z.ndim == 1 else z
        Z = ensemble_matrix(z, weights)
        return Ensemble(B=B, Z=Z, rank=rank)

    @classmethod
    def from_chunks(
        cls,
        chunks: Sequence[tuple[np.ndarray, np.ndarray]],
        z: np.ndarray,
        weights: np.ndarray | None = None,
        tol: float = EIG_TOL,
    ) -> Ensemble:
        """Like :meth:`build` from ``(F, R)`` chunks of candidates (bounds the memory of large tables)."""
        parts = [cls._features(F, R, weights, tol) for F, R in chunks]
        return cls._assemble(parts, z, weights)


class Conditioner:
    """Moment-matched information of every candidate, conditioned on the probes chosen so far.

    Conditioning on a chosen probe's (unobserved) outcome is the Gaussian/Kalman update of the joint
    ensemble covariance; its posterior covariance does not depend on the outcome value, so no fantasy
    outcomes are needed (BatchBALD-style joint scoring).
    """

    def __init__(self, ens: Ensemble):
        self.ens = ens
        C, S, r = ens.B.shape
        self._G0 = np.swapaxes(ens.B, 1, 2) @ ens.B  # (C, r, r)
        self._H0 = np.einsum("csr,sm->crm", ens.B, ens.Z)  # (C, r, m)
        self._Szz0 = ens.Z.T @ ens.Z
        m = ens.Z.shape[1]
        self._jit = 1e-12 * max(float(np.trace(self._Szz0)) / m, 1e-300)
        self._Bs = np.ascontiguousarray(np.moveaxis(ens.B, 1, 0)).reshape(S, C * r)  # (S, C*r)
        self.Q = np.zeros((S, 0))
        self._QB = np.zeros((0, C, r))
        self._QZ = np.zeros((0, m))
        self.chosen: list[int] = []

    @property
    def target_cov(self) -> np.ndarray:
        """Covariance of the target given the chosen probes (m, m)."""
        return self._Szz0 - self._QZ.T @ self._QZ

    def target_information(self) -> float:
        """I(z; y_chosen) in nats (Gaussian): the information of the whole chosen batch."""
        m = self._Szz0.shape[0]
        j = self._jit * np.eye(m)
        return 0.5 * float(np.linalg.slogdet(self._Szz0 + j)[1] - np.linalg.slogdet(self.target_cov + j)[1])

    def scores(self, idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Conditional ``U_theta``, ``U_z`` (nats) and the target's posterior variances ``v_post`` (C, m)."""
        sel = slice(None) if idx is None else np.asarray(idx)
        G = self._G0[sel] - np.einsum("qcr,qcs->crs", self._QB[:, sel], self._QB[:, sel])
        H = self._H0[sel] - np.einsum("qcr,qm->crm", self._QB[:, sel], self._QZ)
        Szz = self.target_cov
        m = Szz.shape[0]
        r = G.shape[1]
        M = G + np.eye(r)[None]
        Lm = np.linalg.cholesky(M)
        X = np.linalg.solve(Lm, H)  # L^-1 H  (C, r, m)
        post = Szz[None] - np.swapaxes(X, 1, 2) @ X  # (C, m, m)
        j = self._jit * np.eye(m)
        ld0 = np.linalg.slogdet(Szz + j)[1]
        ld1 = np.linalg.slogdet(post + j[None])[1]
        U_z = np.maximum(0.5 * (ld0 - ld1), 0.0)
        U_t = np.sum(np.log(np.diagonal(Lm, axis1=1, axis2=2)), axis=1)  # 1/2 logdet M
        v_post = np.maximum(np.diagonal(post, axis1=1, axis2=2), 0.0)
        return {"U_theta": U_t, "U_z": U_z, "v_post": v_post}

    def condition(self, c: int) -> None:
        """Add candidate ``c``'s outcome to the conditioning set (a repeat adds an independent replicate)."""
        b = self.ens.B[c]
        Pb = b - self.Q @ self._QB[:, c, :]
        M = np.eye(b.shape[1]) + b.T @ Pb
        L = np.linalg.cholesky(0.5 * (M + M.T))
        qn = np.linalg.solve(L, Pb.T).T  # Pb L^-T
        keep = np.linalg.norm(qn, axis=0) > 0
        qn = qn[:, keep]
        self.Q = np.concatenate([self.Q, qn], axis=1)
        C, _, r = self.ens.B.shape
        self._QB = np.concatenate([self._QB, (qn.T @ self._Bs).reshape(-1, C, r)], axis=0)
        self._QZ = np.concatenate([self._QZ, qn.T @ self.ens.Z], axis=0)
        self.chosen.append(int(c))


def mm_information(
    F: np.ndarray, R: np.ndarray, z: np.ndarray | None = None, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """Moment-matched ``(U_theta, U_z)`` of one probe: outputs ``F`` (S, K), noise ``R`` (K, K), target z."""
    F = np.asarray(F, float)
    zz = np.zeros(F.shape[0]) if z is None else z
    ens = Ensemble.build(F[None], np.asarray(R, float)[None], zz, weights)
    sc = Conditioner(ens).scores()
    return float(sc["U_theta"][0]), (float(sc["U_z"][0]) if z is not None else float("nan"))


# --------------------------------------------------------------------------- importance reweighting
def is_information(
    F: np.ndarray,
    noise: BlockNoise,
    z: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    n_sim: int = 200,
    seed: int = 0,
    bins: int = 30,
) -> dict[str, float]:
    """Importance-reweighting estimate of the information a probe gives about ``z``.

    Simulates ``n_sim`` outcomes ``y_j = f(theta_{s_j}) + noise``, reweights all draws by ``p(y_j|theta_s)``
    (Pareto-smoothed, self-normalised) and returns

    * ``U_z_is`` = 1/2 log(sum_i Var z_i / E_y sum_i Var(z_i | y)): the Gaussian-equivalent information
      from the expected variance reduction (directly comparable with the moment-matched U_z for scalar z);
    * ``U_z_is_se``: its Monte Carlo standard error (delta method over the simulated outcomes);
    * ``U_z_is_entropy``: H[z] - E_y H[z|y] with a ``bins``-bin histogram of z (scalar z only; NaN else);
    * ``khat_median``, ``khat_max``, ``frac_khat_bad`` (k-hat > 0.7) and ``ess_median`` of the weights.

    A collapsed ESS means a very informative probe; the estimate is then a lower bound on the gain.
    """
    F = np.asarray(F, float)
    S = F.shape[0]
    w = _norm_weights(weights, S)
    z = np.asarray(z, float)
    z = z[:, None] if z.ndim == 1 else z
    rng = np.random.default_rng(seed)
    draws = rng.choice(S, size=n_sim, p=w)
    Y = F[draws] + noise.sample(draws, rng)
    ll = block_log_likelihood(Y, F, noise)
    with np.errstate(divide="ignore"):
        lw, khat = psis(np.log(w)[None, :] + ll)
    W = np.exp(lw)
    zbar = W @ z  # (J, m)
    var_post = W @ (z**2) - zbar**2  # (J, m)
    # unbiased weighted variances (the correction is capped at 2: below an ESS of 2 there is no variance)
    corr = 1.0 / np.maximum(1.0 - np.sum(W**2, axis=1), 0.5)
    a = np.maximum(var_post.sum(axis=1), 0.0) * corr
    mean0 = w @ z
    v0 = float((w @ (z - mean0) ** 2).sum()) / (1 - np.sum(w**2))
    ea = float(a.mean())
    out: dict[str, float] = {}
    if v0 <= 0:
        out["U_z_is"], out["U_z_is_se"] = 0.0, 0.0
    else:
        ea = max(ea, 1e-300)
        out["U_z_is"] = max(0.5 * float(np.log(v0 / ea)), 0.0)
        out["U_z_is_se"] = 0.5 * float(a.std(ddof=1) / np.sqrt(len(a)) / max(a.mean(), 1e-300))
    if z.shape[1] == 1 and v0 > 0:
        edges = np.quantile(z[:, 0], np.linspace(0, 1, bins + 1))
        edges = np.unique(edges)
        if len(edges) > 2:
            cell = np.clip(np.searchsorted(edges, z[:, 0], side="right") - 1, 0, len(edges) - 2)
            onehot = np.zeros((S, len(edges) - 1))
            onehot[np.arange(S), cell] = 1.0
            p0 = w @ onehot
            pj = W @ onehot
            h0 = -np.sum(p0 * np.log(np.where(p0 > 0, p0, 1.0)))
            hj = -np.sum(pj * np.log(np.where(pj > 0, pj, 1.0)), axis=1)
            out["U_z_is_entropy"] = float(h0 - hj.mean())
        else:
            out["U_z_is_entropy"] = 0.0
    else:
        out["U_z_is_entropy"] = float("nan")
    kk = np.where(np.isnan(khat), np.inf, khat)
    out["khat_median"] = float(np.median(kk))
    out["khat_max"] = float(np.max(kk))
    out["frac_khat_bad"] = float(np.mean(kk > 0.7))
    out["ess_median"] = float(np.median(_ess(W)))
    return out


# ------------------------------------------------------------------------------------ nested Monte Carlo
def nmc_information(
    F: np.ndarray,
    noise: BlockNoise,
    weights: np.ndarray | None = None,
    *,
    n_outer: int = 400,
    n_inner: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """Nested Monte Carlo estimate of I(theta; y) for one probe, with its standard error.

    ``EIG ~ 1/N sum_n [log p(y_n|theta_n) - log 1/M sum_m p(y_n|theta_m)]`` with ``y_n ~ p(y|theta_n)`` and
    independent inner draws ``theta_m`` (Ryan 2003; bias O(1/M), so ``M`` defaults to all the draws). No
    Gaussian assumption: the reference for the moment-matched ``U_theta`` (an upper bound of it).
    """
    F = np.asarray(F, float)
    S = F.shape[0]
    w = _norm_weights(weights, S)
    rng = np.random.default_rng(seed)
    outer = rng.choice(S, size=n_outer, p=w)
    Y = F[outer] + noise.sample(outer, rng)
    ll = block_log_likelihood(Y, F, noise)  # (N, S)
    num = ll[np.arange(n_outer), outer]
    if n_inner is None or n_inner >= S:
        # all draws as the inner sample, weighted; exclude the outer draw itself to keep them independent
        lw = np.log(np.maximum(w, 1e-300))[None, :] + ll
        lw[np.arange(n_outer), outer] = -np.inf
        norm = np.log1p(-w[outer])
        den = logsumexp(lw, axis=1) - norm
    else:
        inner = rng.choice(S, size=(n_outer, n_inner), p=w)
        den = logsumexp(np.take_along_axis(ll, inner, axis=1), axis=1) - np.log(n_inner)
    vals = num - den
    return float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(n_outer))
