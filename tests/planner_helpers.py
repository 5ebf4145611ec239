"""Shared builders for the planner, update and loop tests: synthetic worlds and cheap posteriors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_dcpt import data as _data
from bayes_dcpt.fitting.smc import smc_posterior
from bayes_dcpt.laws.registry import get_law
from bayes_dcpt.plan.simulate import DEFAULT_TRUTH, World
from bayes_dcpt.posterior.draws import Posterior

SIZES = (1e8, 3e8, 1e9)


def base_rows(world: World, sizes=SIZES, domain: str = "code") -> pd.DataFrame:
    """Measured base-model rows (tokens == 0) of every size (noise-free)."""
    b = pd.DataFrame(
        {"domain": domain, "n_params": [float(s) for s in sizes], "tokens": 0.0, "r_domain": np.nan}
    )
    for t in ("general", "domain"):
        b[f"loss_{t}"] = world.base_loss(b, t)
    b["run_id"] = [f"base|{domain}|{s:g}" for s in sizes]
    return b


def probe_rows(
    world: World,
    designs,
    *,
    seed: int = 0,
    n_checkpoints: int = 6,
    first_fraction: float = 0.1,
    prefix: str = "run",
) -> pd.DataFrame:
    """Simulated probe runs for ``designs`` = [(n_params, tokens, r_domain), ...]."""
    parts = []
    for i, (n, d, r) in enumerate(designs):
        ck = np.unique(np.geomspace(first_fraction * d, d, n_checkpoints).round())
        parts.append(
            pd.DataFrame(
                {
                    "domain": "code",
                    "n_params": float(n),
                    "tokens": ck,
                    "r_domain": float(r),
                    "run_id": f"{prefix}{i}",
                }
            )
        )
    return world.simulate(pd.concat(parts, ignore_index=True), seed=seed, base_rows=False)


def synthetic_data(seed: int = 0) -> tuple[World, pd.DataFrame]:
    """A realistic starting data set: base rows plus five cheap-to-medium probes."""
    world = World.default(domains=("code",))
    designs = [(1e8, 1e9, 0.2), (1e8, 1e9, 0.6), (3e8, 2e9, 0.4), (1e9, 1e9, 0.3), (3e8, 1e9, 0.8)]
    df = pd.concat([base_rows(world), probe_rows(world, designs, seed=seed)], ignore_index=True)
    return world, _data.load(df)


def smc_fixture(seed: int = 0, n_draws: int = 800) -> tuple[World, pd.DataFrame, Posterior]:
    """World, data and an SMC posterior of it (about a second)."""
    world, df = synthetic_data(seed)
    post = smc_posterior(df, "dcpt", n_draws=n_draws, seed=seed, n_moves=6, ctx={"D_min": 0.1})
    return world, df, post


def jitter_posterior(
    world: World,
    S: int = 1000,
    spread: float = 0.01,
    seed: int = 0,
    sigma: float = 0.004,
    tau: float = 0.003,
    sizes=SIZES,
) -> Posterior:
    """Independent multiplicative jitter of the true parameters: a fast, well-behaved ensemble."""
    rng = np.random.default_rng(seed)
    params = {
        (t, "code"): {k: v * np.exp(rng.normal(0, spread, S)) for k, v in DEFAULT_TRUTH[t].items()}
        for t in ("general", "domain")
    }
    noise = {t: {"sigma": np.full(S, sigma), "tau": np.full(S, tau)} for t in ("general", "domain")}
    ref = base_rows(world, sizes)[["domain", "n_params", "loss_general", "loss_domain"]]
    return Posterior(get_law("dcpt"), params, noise, {"D_min": 0.1}, ref)
