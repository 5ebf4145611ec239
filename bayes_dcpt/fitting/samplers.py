"""Sampling a cached PyMC model: nutpie (default), PyMC's NUTS, numpyro, and the Laplace and ADVI approximations.

A model *entry* is a dict ``{"model", "arrays", "n_obs", "jax_from_obs", ...}`` kept in a model cache
(:func:`cached_entry`); the compiled nutpie model and the Laplace functions are stored in it on first use, so a
refit with new data of the same structure costs sampling only. The nutpie defaults were chosen by measurement
(see BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from bayes_dcpt.errors import FitError
from bayes_dcpt.fitting.diagnostics import Diagnostics, diagnose
from bayes_dcpt.fitting.progress import nutpie_callback

__all__ = [
    "FASTMATH_FLAGS",
    "JAX_FROM_OBS",
    "NUTPIE_DEFAULTS",
    "SAMPLERS",
    "cached_entry",
    "check_counts",
    "check_sampler",
    "compile_numba",
    "laplace",
    "nutpie_backend",
    "nutpie_options",
    "recordable",
    "run_sampler",
    "sample",
    "start_at_optimum",
]

#: nutpie settings chosen by measurement (BENCHMARKS.md): the low-rank mass matrix captures the remaining
#: linear correlations of the anchored parameterisation; target_accept 0.9 removes the rare divergences. The
#: chains start at nutpie's own jittered support point ("jitter"); "optimum" (:func:`start_at_optimum`) is an
#: opt-in: no faster at full length, and once a chain stuck near it (BENCHMARKS.md, scale, fourth round).
NUTPIE_DEFAULTS: dict[str, Any] = {"adaptation": "low_rank", "target_accept": 0.9, "init": "jitter"}
#: Half-width of the uniform jitter (unconstrained space) around the optimum each chain starts from.
START_JITTER = 0.1
#: From this many fitted log losses on, nutpie compiles the CPT law's log-density with JAX (XLA) rather than
#: numba: on the 32,400-row scale set a leapfrog step costs 1.4x less (BENCHMARKS.md, scale); on small data
#: numba's loops are as fast and JAX's per-call overhead dominates. The D-CPT family's models stay on numba at
#: every size (there a step costs 1.15x more with JAX): a model cache passes ``jax_from_obs=None``.
#: ``sampler_kwargs={"backend": "numba" | "jax"}`` overrides either choice.
JAX_FROM_OBS = 10_000
SAMPLERS = ("nutpie", "pymc", "numpyro", "laplace", "advi")
#: Milliseconds between two progress updates nutpie sends a reporter (:mod:`~bayes_dcpt.fitting.progress`).
PROGRESS_MS = 500


def check_sampler(sampler: str) -> None:
    """Raise :class:`FitError` for a sampler name not in :data:`SAMPLERS`."""
    if sampler not in SAMPLERS:
        raise FitError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")


def check_counts(draws: int | None, tune: int, chains: int) -> None:
    """Raise :class:`FitError` unless draws and chains are >= 1 and tune >= 0 (None: the fit's default)."""
    for name, v in (("draws", draws), ("tune", tune), ("chains", chains)):
        if v is not None and int(v) < (0 if name == "tune" else 1):
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


#: numba's fast-math flags for the models nutpie samples: reassociation alone. It lets LLVM vectorise the sums
#: over checkpoints (gradients 1.66x faster than without fast-math at 32,400 rows, BENCHMARKS.md "Fast-math at
#: scale") and a fresh compile and a cached one agree bit for bit; PyTensor's other flags (contraction into fused
#: multiply-adds, approximate functions, reciprocals) made them differ.
FASTMATH_FLAGS = frozenset({"reassoc"})


@contextmanager
def _reassoc_only() -> Iterator[None]:
    """PyTensor compiles its numba functions with :data:`FASTMATH_FLAGS`, cached apart from its own fast-math.

    PyTensor has one switch (``numba__fastmath``: its five flags or none) and one cache key for each setting, so
    the flags are narrowed where it calls ``numba.njit`` (functions that ask for no fast-math keep none), and the
    cache entries get their own name, so that code compiled elsewhere with all five flags is never loaded here.
    The elementwise loops PyTensor generates keep its flags: with them, too, the cold and the warm compile agree
    (``tests/test_seeded.py``). Private PyTensor API: if it moves, the models compile without fast-math (correct,
    slower).
    """
    import pytensor

    try:
        from pytensor.link.numba import cache as nb_cache
        from pytensor.link.numba.dispatch import basic as nb_basic

        njit, locate = nb_basic._njit, nb_cache.NumbaPyTensorCacheLocator.get_disambiguator
    except (ImportError, AttributeError):
        with pytensor.config.change_flags(numba__fastmath=False):
            yield
        return

    def narrowed(*args: Any, fastmath: Any = False, **kwargs: Any) -> Any:
        return njit(*args, fastmath=set(FASTMATH_FLAGS) if fastmath else False, **kwargs)

    def disambiguator(self: Any) -> str:
        return f"{locate(self)}-{'-'.join(sorted(FASTMATH_FLAGS))}"

    nb_basic._njit, nb_cache.NumbaPyTensorCacheLocator.get_disambiguator = narrowed, disambiguator
    try:
        with pytensor.config.change_flags(numba__fastmath=True):
            yield
    finally:
        nb_basic._njit, nb_cache.NumbaPyTensorCacheLocator.get_disambiguator = njit, locate


def compile_numba(model: Any) -> Any:
    """``model`` compiled by nutpie with the numba backend, with :data:`FASTMATH_FLAGS` as its only fast-math.

    Why: with PyTensor's full fast-math a model compiled fresh and the same model loaded from numba's cache computed
    log-density gradients ~1e-14 apart, which the chains amplify: the same seed gave other draws in the first
    process after a model changed than in every later one. Without any fast-math the draws agree but the gradient
    costs 1.2x (972 rows) to 1.9x (32,400 rows) as much; reassociation alone agrees and keeps most of the speed
    (BENCHMARKS.md, "Reproducibility: found" and "Fast-math at scale").
    """
    import nutpie

    with _reassoc_only():
        return nutpie.compile_pymc_model(model)


def _compiled(entry: dict[str, Any], backend: str) -> Any:
    """The entry's nutpie model compiled with ``backend`` (cached in the entry) with the entry's data set."""
    import nutpie

    by = entry.setdefault("nutpie_by", {})
    if backend not in by:
        if backend == "jax":
            by[backend] = nutpie.compile_pymc_model(entry["model"], backend="jax", gradient_backend="jax",
                                                    freeze_model=False)  # data swapped by refits
        else:
            by[backend] = compile_numba(entry["model"])
    compiled = by[backend]
    keys = getattr(compiled, "shared_var_keys", None)
    known = {v.name for v in keys} if keys is not None else set(getattr(compiled, "_shared_data", {}))
    return compiled.with_data(**{k: v for k, v in entry["arrays"].items() if k in known})


def _log_density(compiled: Any) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``x -> (log density, gradient)`` of a compiled nutpie model with its data, at a flat unconstrained point.

    Calls the function nutpie samples with (numba: its C callback through ctypes; JAX: its Python wrapper), so
    nothing is compiled again; a failed evaluation is ``-inf``.
    """
    import ctypes

    n = int(compiled.n_dim)
    if hasattr(compiled, "compiled_logp_func"):  # numba
        cfunc, user_data = compiled.compiled_logp_func.ctypes, compiled.user_data
        dbl = ctypes.POINTER(ctypes.c_double)

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            x = np.ascontiguousarray(x, dtype=float)
            grad, lp = np.empty(n), np.empty(1)
            code = cfunc(n, x.ctypes.data_as(dbl), grad.ctypes.data_as(dbl), lp.ctypes.data_as(dbl),
                         ctypes.c_void_p(user_data.ctypes.data))
            return (float(lp[0]), grad) if code == 0 else (-np.inf, np.zeros(n))
    else:  # a Python-function model (the JAX backend)
        logp, shared = compiled._make_logp_func(), compiled._shared_data

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            try:
                lp, grad = logp(np.ascontiguousarray(x, dtype=float), **shared)
            except Exception:  # any failed evaluation is an invalid point
                return -np.inf, np.zeros(n)
            return float(lp), np.asarray(grad, dtype=float)
    return f


def _support_point(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """The model's support point as nutpie's flat unconstrained vector, and the indices of the hierarchy's scales.

    The vector holds the free variables in model order (as nutpie joins them); the scales are ``sd_*`` and
    ``sigma_K``.
    """
    ip = model.initial_point()
    parts = [np.ravel(ip[v.name]).astype(float) for v in model.value_vars]
    ends = np.cumsum([p.size for p in parts])
    scales = [np.arange(e - p.size, e) for v, p, e in zip(model.value_vars, parts, ends, strict=True)
              if v.name.startswith(("sd_", "sigma_K"))]
    return np.concatenate(parts), (np.concatenate(scales) if scales else np.zeros(0, dtype=int))


def start_at_optimum(compiled: Any, model: Any, seed: int, jitter: float = START_JITTER,
                     maxiter: int = 3000) -> tuple[Any, dict]:
    """``compiled`` with its chains started near the conditional optimum of the log density, and what was done.

    Why: nutpie's default start is the prior's support point with a U(-1, 1) jitter in every unconstrained
    coordinate; with thousands of log losses that point is far out in the likelihood, the first warm-up steps
    see huge gradients, and a chain can spend hundreds of leapfrog steps per iteration or stall (BENCHMARKS.md,
    scale). Here L-BFGS maximises the log density over every parameter except the hierarchy's scales (``sd_*``,
    ``sigma_K``), which stay at the support point: the joint mode of a hierarchy sits at a scale of zero, the
    funnel's neck, a bad place to start. Each chain starts at that point plus a U(-jitter, jitter) jitter
    (seeded per chain), so chains still start apart. If the optimisation fails, the default start is kept.
    """
    from scipy.optimize import minimize

    f = _log_density(compiled)
    field = "_make_initial_points" if hasattr(compiled, "_make_initial_points") else "initial_point_func"
    x0 = np.asarray(getattr(compiled, field)(seed), dtype=float)  # nutpie's own start: support point + jitter
    support, fixed = _support_point(model)
    x0[fixed] = support[fixed]
    free = np.setdiff1d(np.arange(x0.size), fixed)
    lp0 = f(x0)[0]

    def neg(z: np.ndarray) -> tuple[float, np.ndarray]:
        x = x0.copy()
        x[free] = z
        lp, g = f(x)
        if not np.isfinite(lp) or not np.all(np.isfinite(g)):
            return 1e20, np.zeros(free.size)
        return -lp, -g[free]

    res = minimize(neg, x0[free], jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    info = {"init": "optimum", "start_lp": float(lp0) if np.isfinite(lp0) else None,
            "optimum_lp": float(-res.fun) if res.fun < 1e20 else None, "iterations": int(res.nit)}
    if not np.isfinite(res.fun) or res.fun >= 1e20 or (np.isfinite(lp0) and -res.fun < lp0):
        info["init"] = "jitter (the optimisation failed)"
        return compiled, info
    x_opt = x0.copy()
    x_opt[free] = res.x

    def initial_point(chain_seed: Any) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(np.sum(np.atleast_1d(chain_seed)))]))
        return x_opt + rng.uniform(-jitter, jitter, size=x_opt.size)

    return dataclasses.replace(compiled, **{field: initial_point}), info


def _nutpie(entry: dict[str, Any], *, draws: int, tune: int, chains: int, cores: int, seed: int,
            progressbar: bool, sampler_kwargs: Mapping[str, Any] | None) -> tuple[Any, dict[str, Any] | None]:
    """Draws by nutpie, and where the chains started (:func:`start_at_optimum`'s record; None: nutpie's own start)."""
    import nutpie

    opts = nutpie_options(entry, sampler_kwargs)
    backend = opts.pop("backend")
    init = opts.pop("init")
    if init not in ("optimum", "jitter"):
        raise FitError(f"unknown nutpie start init={init!r}; choose 'optimum' or 'jitter' (nutpie's own)")
    compiled, start = _compiled(entry, backend), None
    if init == "optimum":
        compiled, start = start_at_optimum(compiled, entry["model"], seed)
    if "progress_callback" not in opts and (callback := nutpie_callback()) is not None:
        opts["progress_callback"] = callback  # a reporter is installed (progress.reporting): the chains' progress
        opts.setdefault("progress_rate", PROGRESS_MS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
                             progress_bar=progressbar, **opts), start


def sample(entry: dict[str, Any], sampler: str, *, draws: int, tune: int, chains: int, cores: int, seed: int,
           progressbar: bool, sampler_kwargs: Mapping[str, Any] | None = None) -> Any:
    """Posterior draws (an ArviZ DataTree) of the entry's model by ``sampler`` (one of :data:`SAMPLERS`)."""
    import pymc as pm

    model = entry["model"]
    if sampler == "nutpie":
        return _nutpie(entry, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, progressbar=progressbar,
                       sampler_kwargs=sampler_kwargs)[0]
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
    kw = {"draws": draws, "tune": tune, "chains": chains, "cores": cores, "seed": seed, "progressbar": progressbar,
          "sampler_kwargs": sampler_kwargs}
    idata, start = _nutpie(entry, **kw) if sampler == "nutpie" else (sample(entry, sampler, **kw), None)
    seconds = time.perf_counter() - t0
    post_vars = [str(v) for v in idata["posterior"].data_vars]
    names = [*var_names, *(v for v in post_vars if v.startswith(("mu_", "sd_")))]
    diag = diagnose(idata, sampler, names, seconds, draws, chains)
    sampler_config = {"sampler": sampler, "draws": draws, "tune": tune, "chains": chains, "cores": cores,
                      "seed": seed, "options": recordable(sampler_kwargs or {})}
    if sampler == "nutpie":  # what nutpie ran with (the defaults and the backend chosen by data size included)
        sampler_config["settings"] = recordable(nutpie_options(entry, sampler_kwargs))
        if start is not None:  # where the chains started (start_at_optimum)
            sampler_config["start"] = start
    return idata, diag, sampler_config


def recordable(options: Mapping[str, Any]) -> dict[str, Any]:
    """Sampler options as the model card keeps them: callables (a progress callback) left out, at any depth.

    The refits' settings nest their ``sampler_kwargs``.
    """
    return {k: recordable(v) if isinstance(v, Mapping) else v for k, v in options.items() if not callable(v)}

