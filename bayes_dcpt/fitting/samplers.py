"""Sampling a cached PyMC model: nutpie (default), PyMC's NUTS, numpyro, and the Laplace and ADVI approximations.

A model *entry* is a dict ``{"model", "arrays", "n_obs", "jax_from_obs", ...}`` kept in a model cache
(:func:`cached_entry`); the compiled nutpie model and the Laplace functions are stored in it on first use, so a
refit with new data of the same structure costs sampling only. The nutpie defaults were chosen by measurement
(see BENCHMARKS.md).
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.diagnostics import Diagnostics, diagnose

__all__ = [
    "JAX_FROM_OBS",
    "NUTPIE_DEFAULTS",
    "SAMPLERS",
    "cached_entry",
    "check_counts",
    "check_sampler",
    "laplace",
    "nutpie_backend",
    "nutpie_options",
    "run_sampler",
    "sample",
]

#: nutpie settings chosen by measurement (BENCHMARKS.md): the low-rank mass matrix captures the remaining
#: linear correlations of the anchored parameterisation; target_accept 0.9 removes the rare divergences.
NUTPIE_DEFAULTS: dict[str, Any] = {"adaptation": "low_rank", "target_accept": 0.9}
#: From this many fitted log losses on, nutpie compiles the CPT law's log-density with JAX (XLA) rather than
#: numba: on the 32,400-row scale set a leapfrog step costs 1.4x less (BENCHMARKS.md, scale); on small data
#: numba's loops are as fast and JAX's per-call overhead dominates. The D-CPT family's models stay on numba at
#: every size (there a step costs 1.15x more with JAX): a model cache passes ``jax_from_obs=None``.
#: ``sampler_kwargs={"backend": "numba" | "jax"}`` overrides either choice.
JAX_FROM_OBS = 10_000
SAMPLERS = ("nutpie", "pymc", "numpyro", "laplace", "advi")


def check_sampler(sampler: str) -> None:
    """Raise :class:`FitError` for a sampler name not in :data:`SAMPLERS`."""
    if sampler not in SAMPLERS:
        raise FitError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")


def check_counts(draws: int, tune: int, chains: int) -> None:
    """Raise :class:`FitError` unless draws and chains are >= 1 and tune >= 0."""
    for name, v in (("draws", draws), ("tune", tune), ("chains", chains)):
        if int(v) < (0 if name == "tune" else 1):
            raise FitError(f"{name} must be positive, got {v}")


def cached_entry(cache: dict[tuple, dict[str, Any]], key: tuple, build: Callable[[], Any],
                 arrays: dict[str, np.ndarray], n_obs: int, jax_from_obs: int | None = JAX_FROM_OBS) -> dict[str, Any]:
    """The entry of ``cache`` under ``key`` (built by ``build()`` on a miss) with the data ``arrays`` set.

    ``jax_from_obs``: from this many log losses on, nutpie compiles the model with JAX (``None``: never; measured
    per model family, see :data:`JAX_FROM_OBS`).
    """
    import pymc as pm

    entry = cache.get(key)
    if entry is None:
        entry = {"model": build(), "n_obs": n_obs, "jax_from_obs": jax_from_obs}
        cache[key] = entry
    else:
        with entry["model"]:
            pm.set_data(dict(arrays), coords={"obs": np.arange(n_obs)})
    entry["arrays"] = arrays
    entry["n_obs"] = n_obs
    return entry


def nutpie_backend(n_obs: int, requested: str | None = None, jax_from_obs: int | None = JAX_FROM_OBS) -> str:
    """The backend nutpie compiles a model with: ``requested``, else JAX from ``jax_from_obs`` log losses on."""
    if requested is not None:
        if requested not in ("numba", "jax"):
            raise FitError(f"unknown nutpie backend {requested!r}; choose 'numba' or 'jax'")
        return requested
    if jax_from_obs is not None and n_obs >= jax_from_obs and importlib.util.find_spec("jax") is not None:
        return "jax"
    return "numba"


def nutpie_options(entry: dict[str, Any], sampler_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings nutpie samples the entry's model with (the model card records them as ``settings``).

    :data:`NUTPIE_DEFAULTS` with ``sampler_kwargs`` over them, and the backend :func:`nutpie_backend` chooses
    for the entry's data size.
    """
    given = dict(sampler_kwargs or {})
    opts = {**NUTPIE_DEFAULTS, **given}
    opts["backend"] = nutpie_backend(int(entry["n_obs"]), given.get("backend"), entry["jax_from_obs"])
    return opts


def _compiled(entry: dict[str, Any], backend: str) -> Any:
    """The entry's nutpie model compiled with ``backend`` (cached in the entry) with the entry's data set."""
    import nutpie

    by = entry.setdefault("nutpie_by", {})
    if backend not in by:
        if backend == "jax":
            by[backend] = nutpie.compile_pymc_model(entry["model"], backend="jax", gradient_backend="jax",
                                                    freeze_model=False)  # data swapped by refits
        else:
            by[backend] = nutpie.compile_pymc_model(entry["model"])
    compiled = by[backend]
    keys = getattr(compiled, "shared_var_keys", None)
    known = {v.name for v in keys} if keys is not None else set(getattr(compiled, "_shared_data", {}))
    return compiled.with_data(**{k: v for k, v in entry["arrays"].items() if k in known})


def _nutpie(entry: dict[str, Any], *, draws: int, tune: int, chains: int, cores: int, seed: int,
            progressbar: bool, sampler_kwargs: Mapping[str, Any] | None) -> Any:
    import nutpie

    opts = nutpie_options(entry, sampler_kwargs)
    backend = opts.pop("backend")
    compiled = _compiled(entry, backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                             progress_bar=progressbar, **opts)


def sample(entry: dict[str, Any], sampler: str, *, draws: int, tune: int, chains: int, cores: int, seed: int,
           progressbar: bool, sampler_kwargs: Mapping[str, Any] | None = None) -> Any:
    """Posterior draws (an ArviZ DataTree) of the entry's model by ``sampler`` (one of :data:`SAMPLERS`)."""
    import pymc as pm

    model = entry["model"]
    if sampler == "nutpie":
        return _nutpie(entry, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, progressbar=progressbar,
                       sampler_kwargs=sampler_kwargs)
    if sampler in ("pymc", "numpyro"):
        if sampler == "numpyro":
            try:
                import numpyro  # noqa: F401
            except ImportError as exc:
                raise FitError("sampler 'numpyro' needs the numpyro extra: pip install 'bayes-dcpt[numpyro]'") from exc
        dense = {"dense_mass": True} if sampler == "numpyro" else {}
        nuts = {"target_accept": 0.9, **dense, **(sampler_kwargs or {})}
        with model:
            return pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                             nuts_sampler=sampler, progressbar=progressbar, compute_convergence_checks=False,
                             nuts=nuts)
    if sampler == "advi":
        with model:
            approx = pm.fit(n=30000, method="advi", random_seed=seed, progressbar=progressbar,
                            obj_optimizer=pm.adam(learning_rate=0.01))
            idata = approx.sample(draws * chains, random_seed=seed)
        return idata
    if sampler == "laplace":
        return laplace(entry, draws=draws * chains, seed=seed)
    raise FitError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")


def _laplace_functions(entry: dict[str, Any]) -> tuple[Any, Any, list]:
    """The compiled log-density (with gradient) and deterministics of the entry's model, cached in the entry."""
    if "laplace" not in entry:
        import pytensor
        import pytensor.tensor as pt

        model = entry["model"]
        value_vars = model.value_vars
        lp = model.logp(jacobian=True)
        grad = pt.concatenate([pt.flatten(g) for g in pytensor.grad(lp, value_vars)])
        fn_lp = model.compile_fn([lp, grad], inputs=value_vars, point_fn=False)
        outs = list(model.free_RVs) + list(model.deterministics)
        fn_det = model.compile_fn(model.replace_rvs_by_values(outs), inputs=value_vars, point_fn=False,
                                  on_unused_input="ignore")
        entry["laplace"] = (fn_lp, fn_det, outs)
    return entry["laplace"]


def laplace(entry: dict[str, Any], *, draws: int, seed: int) -> Any:
    """Laplace approximation in the unconstrained space: MAP (L-BFGS) + inverse Hessian, then the deterministics.

    The compiled log-density and deterministic functions are cached with the model, so an interactive refit
    costs an optimisation and ~2 x (number of parameters) gradient evaluations.
    """
    import arviz as az
    from scipy.optimize import minimize

    model = entry["model"]
    fn_lp, fn_det, outs = _laplace_functions(entry)
    ip = model.initial_point()
    names = [v.name for v in model.value_vars]
    shapes = [np.shape(ip[n]) for n in names]
    sizes = [int(np.prod(sh)) for sh in shapes]

    def unpack(x):
        out, i = [], 0
        for s, sh in zip(sizes, shapes, strict=True):
            out.append(x[i:i + s].reshape(sh))
            i += s
        return out

    def negf(x):
        lp, g = fn_lp(*unpack(x))
        if not np.isfinite(lp):
            return 1e20, np.zeros_like(x)
        return -float(lp), -np.asarray(g, float)

    x0 = np.concatenate([np.ravel(ip[n]) for n in names]).astype(float)
    x = minimize(negf, x0, jac=True, method="L-BFGS-B", options={"maxiter": 5000}).x
    n = x.size
    H = np.empty((n, n))
    h = 1e-5
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        H[:, j] = (negf(x + e)[1] - negf(x - e)[1]) / (2 * h)
    H = (H + H.T) / 2
    w, V = np.linalg.eigh(H)
    cov = (V / np.maximum(w, 1e-10)) @ V.T
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal(x, cov, size=draws, method="eigh")
    res_d: dict[str, list] = {o.name: [] for o in outs}
    for row in X:
        for o, v in zip(outs, fn_det(*unpack(row)), strict=True):
            res_d[o.name].append(v)
    dims = {o.name: list(model.named_vars_to_dims.get(o.name, ())) for o in outs}
    post = {k: np.asarray(v)[None] for k, v in res_d.items()}
    coords = {k: np.asarray(v) for k, v in model.coords.items() if v is not None}
    return az.from_dict({"posterior": post}, dims=dims, coords=coords)


def run_sampler(entry: dict[str, Any], sampler: str, var_names: list[str], *, draws: int, tune: int, chains: int,
                cores: int | None, seed: int, progressbar: bool,
                sampler_kwargs: Mapping[str, Any] | None) -> tuple[Any, Diagnostics, dict[str, Any]]:
    """Sample, time and diagnose a fit: ``(idata, diagnostics, sampler_config)``.

    The diagnostics cover ``var_names`` and the hierarchical ``mu_*`` and ``sd_*`` variables; ``sampler_config``
    is what the model card records of the run (``cores`` defaults to one per chain, at most the CPU count).
    """
    cores = cores or min(chains, os.cpu_count() or 1)
    t0 = time.perf_counter()
    idata = sample(entry, sampler, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                   progressbar=progressbar, sampler_kwargs=sampler_kwargs)
    seconds = time.perf_counter() - t0
    post_vars = [str(v) for v in idata["posterior"].data_vars]
    names = [*var_names, *(v for v in post_vars if v.startswith(("mu_", "sd_")))]
    diag = diagnose(idata, sampler, names, seconds, draws, chains)
    sampler_config = {"sampler": sampler, "draws": draws, "tune": tune, "chains": chains, "cores": cores,
                      "seed": seed, "options": _recordable(sampler_kwargs or {})}
    if sampler == "nutpie":  # what nutpie ran with (the defaults and the backend chosen by data size included)
        sampler_config["settings"] = _recordable(nutpie_options(entry, sampler_kwargs))
    return idata, diag, sampler_config


def _recordable(options: Mapping[str, Any]) -> dict[str, Any]:
    """Sampler options as the model card keeps them: callables (a progress callback) left out."""
    return {k: v for k, v in options.items() if not callable(v)}

