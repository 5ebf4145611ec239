"""The run-block layout (one row per run) computes the same log-density as one entry per observation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from bayes_dcpt.numerics.runblock import RunBlocks


def test_run_blocks_lay_out_ragged_runs_and_spot_run_level_values():
    run_idx = np.array([2, 0, 0, 1, 2, 2, 0])
    b = RunBlocks(run_idx)
    assert (b.n_runs, b.width) == (3, 3)
    assert b.counts.tolist() == [3.0, 1.0, 3.0]
    v = np.arange(7.0)
    m = b.matrix(v, fill=-1.0)
    assert m.tolist() == [[1.0, 2.0, 6.0], [3.0, -1.0, -1.0], [0.0, 4.0, 5.0]]  # order within a run kept
    assert b.mask().sum() == 7
    assert b.per_run(np.array([5, 7, 7, 6, 5, 5, 7])).tolist() == [7, 6, 5]
    assert b.per_run(v) is None  # varies along a run
    assert b.column(np.array([5, 7, 7, 6, 5, 5, 7.0])).shape == (3, 1)
    assert b.column(v).shape == (3, 3)


def _ragged(df, seed=0):
    """Drop a random share of checkpoints so runs have different lengths."""
    rng = np.random.default_rng(seed)
    keep = (df["tokens"] == 0) | (rng.random(len(df)) > 0.3)
    return df[keep].reset_index(drop=True)


def _logp(model, point):
    return float(model.compile_logp(mode="JAX")(point))


@pytest.mark.parametrize(("law", "ragged"), [("cross-domain", True), ("L3", False)])  # + the gathered DLC K
def test_dcpt_model_has_the_same_log_density_in_both_layouts(law, ragged):
    """Ragged runs each log their own token grid; the example's runs share one per cell (``D^-beta`` per grid)."""
    from bayes_dcpt.data import schema
    from bayes_dcpt.datasets import load_example
    from bayes_dcpt.fitting.config import FitConfig
    from bayes_dcpt.fitting.dcpt_model import build_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.laws.registry import get_law

    df = schema.load(load_example())
    df = _ragged(df) if ragged else df
    law_ = get_law(law)
    design = make_design(df, law_, FitConfig(law=law_.name, target="both"))
    a = design.arrays()
    assert design.blocks and np.shape(a["N"])[1] == 1 and np.shape(a["r"])[1] == 1  # run-level: one column
    cells = a["t_run"] * len(design.domains) + a["d_run"]
    assert np.array_equal(a["pair_cell"][a["run_pair"]], cells)  # every run's (cell, token grid) pair
    assert np.array_equal(a["pair_log_D"][a["run_pair"]], a["log_D"])
    n_cells = len(np.unique(cells))
    assert len(a["pair_cell"]) > 3 * n_cells if ragged else len(a["pair_cell"]) == n_cells
    blocks = build_model(law_, FitConfig(law=law_.name, target="both"), design)
    flat = build_model(law_, FitConfig(law=law_.name, target="both"), dataclasses.replace(design, blocks=False))
    rng = np.random.default_rng(1)
    ip = blocks.initial_point()
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.1, np.shape(v)) for k, v in ip.items()}
        assert _logp(blocks, point) == pytest.approx(_logp(flat, point), rel=1e-10)


@pytest.mark.parametrize("opt_in", [False, True])
def test_cpt_model_log_density_is_each_runs_multivariate_t(opt_in):
    """The CPT model's likelihood, recomputed by hand from the law's numpy formula and one scipy density per run
    (with the opt-in terms: the re-warming rise and the share's exponent, when ``opt_in``)."""
    from bayes_dcpt.data import schema
    from bayes_dcpt.datasets import load_example
    from bayes_dcpt.fitting.config import FitConfig
    from bayes_dcpt.fitting.cpt_model import build_cpt_model, make_cpt_design
    from bayes_dcpt.laws.cpt import CPT_LAW
    from bayes_dcpt.laws.registry import BILLION

    df = _ragged(schema.load(load_example()))
    df = df[df["domain"] == df["domain"].iloc[0]]
    cfg = FitConfig(law="cpt", target="both", zero_ratio=True, rewarm=opt_in, share_power=opt_in)
    design = make_cpt_design(df, cfg)
    model = build_cpt_model(cfg, design)
    point = model.initial_point()
    rng = np.random.default_rng(2)
    point = {k: v + rng.normal(0, 0.2, np.shape(v)) for k, v in point.items()}
    own = ["h", "sc"] + (["w", "phi_w"] if opt_in else [])  # the re-warming rise is opt-in
    names = ["amp", "lam", "phi", "psi", "rho", "kappa", *own, *(["eta_s"] if opt_in else []), "sigma", "sigma_move",
             "tau", "nu"]
    outs = model.replace_rvs_by_values([model.potentials[0]] + [model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars,
                          point_fn=True, mode="JAX")
    pot, *got = (np.asarray(v) for v in fn(point))
    vals = dict(zip(names, got, strict=True))
    o = design.obs
    ref = 0.0
    for run in np.unique(o["run_idx"]):
        rows = o[o["run_idx"] == run]
        t = design.targets.index(rows["target"].iloc[0])
        p = {k: np.asarray(vals[k])[t] if np.ndim(vals[k]) == 1 else np.asarray(vals[k])[t, 0]
             for k in ("amp", "lam", "phi", "psi", "rho", "kappa")}
        p |= {k: float(vals[k]) for k in own}
        if opt_in:
            p["eta_s"] = float(np.asarray(vals["eta_s"])[0]) if design.targets[t] == "general" else 1.0
        x = {"N": rows["n_params"].to_numpy() / BILLION, "D": rows["tokens"].to_numpy() / BILLION,
             "r": rows["r_domain"].to_numpy(), "L0": rows["L0"].to_numpy(), "L0g": rows["L0g"].to_numpy(),
             "D_ref": design.d_ref, "target": design.targets[t]}
        if design.targets[t] == "general":
            x["r"] = 1.0 - x["r"]  # the law takes the target's own ratio
        log_mu = np.log(CPT_LAW.formula(np, p, x))
        e = np.log(rows["loss"].to_numpy()) - log_mu
        var = vals["sigma"][t] ** 2 + (vals["sigma_move"][t] * (log_mu - np.log(x["L0"]))) ** 2
        cov = np.diag(var) + vals["tau"][t] ** 2
        ref += stats.multivariate_t(np.zeros(len(e)), cov, df=vals["nu"][t]).logpdf(e)
    assert float(pot) == pytest.approx(ref, rel=1e-9)


def test_large_fits_compile_with_jax_and_small_ones_with_numba():
    """Large CPT-law fits compile with JAX; the D-CPT family stays on numba at every size (measured faster)."""
    from importlib.util import find_spec

    from bayes_dcpt.errors import FitError
    from bayes_dcpt.fitting.samplers import JAX_FROM_OBS, nutpie_backend

    assert nutpie_backend(JAX_FROM_OBS - 1) == "numba"
    assert nutpie_backend(JAX_FROM_OBS) == ("jax" if find_spec("jax") else "numba")
    assert nutpie_backend(10 * JAX_FROM_OBS, None, jax_from_obs=None) == "numba"
    assert nutpie_backend(10, "jax") == "jax"
    assert nutpie_backend(10, "jax", jax_from_obs=None) == "jax"
    with pytest.raises(FitError, match="backend"):
        nutpie_backend(10, "cuda")


def test_dcpt_family_models_never_choose_jax_by_size():
    from bayes_dcpt.data import schema
    from bayes_dcpt.datasets import load_example
    from bayes_dcpt.fitting.config import FitConfig
    from bayes_dcpt.fitting.dcpt_model import get_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.laws.registry import get_law

    law_ = get_law("dcpt")
    cfg = FitConfig(law="dcpt", target="both")
    entry = get_model(law_, cfg, make_design(schema.load(load_example()), law_, cfg))
    assert entry["jax_from_obs"] is None


def test_nutpie_settings_are_recorded_and_the_remedy_asks_for_more_than_was_used():
    """The settings nutpie ran with (defaults, the user's, the backend by size) and a remedy above them."""
    from bayes_dcpt.fitting.diagnostics import sampler_remedy
    from bayes_dcpt.fitting.samplers import JAX_FROM_OBS, NUTPIE_DEFAULTS, nutpie_options

    entry = {"n_obs": 10 * JAX_FROM_OBS, "jax_from_obs": None}
    assert nutpie_options(entry) == {**NUTPIE_DEFAULTS, "backend": "numba"}
    mine = nutpie_options(entry, {"target_accept": 0.8, "backend": "jax"})
    assert (mine["target_accept"], mine["backend"], mine["adaptation"]) == (0.8, "jax", NUTPIE_DEFAULTS["adaptation"])
    assert "0.95" in sampler_remedy({"settings": nutpie_options(entry)})
    assert "0.98" in sampler_remedy({"settings": nutpie_options(entry, {"target_accept": 0.95})})
    assert "0.95" in sampler_remedy(None)  # a card written before the settings were recorded


def test_the_jax_backend_samples_and_swaps_data_without_recompiling():
    """A JAX-compiled model refitted on part of its data (the calibration refits' path) gets the new data."""
    pytest.importorskip("jax")
    import bayes_dcpt as bd
    from bayes_dcpt.datasets import load_example

    df = load_example()
    df = df[df["domain"] == df["domain"].iloc[0]]
    kw = {"law": "cpt", "draws": 60, "tune": 60, "chains": 1, "seed": 3, "discrepancy": False, "warn": False,
          "sampler_kwargs": {"backend": "jax", "init": "optimum"}}
    full = bd.fit(df, **kw)
    early = bd.fit(df[df["tokens"] <= df["tokens"].max() / 4], **kw, run_slots=full.design.run_capacity)
    assert full.sampler_config["options"] == {"backend": "jax", "init": "optimum"}
    assert full.sampler_config["settings"]["backend"] == "jax"  # what nutpie ran with, recorded
    assert full.sampler_config["start"]["init"] == "optimum"  # the start works through the JAX model too
    assert early.design.run_capacity == full.design.run_capacity  # the same compiled model, new data
    # the refit sees only the early checkpoints: its noise and rates differ from the full fit's
    lam = [float(np.asarray(f.idata["posterior"]["lam"]).mean()) for f in (full, early)]
    assert lam[0] != pytest.approx(lam[1], rel=1e-6)


def test_chains_start_near_the_optimum(small_fit, df3):
    """On request (init="optimum") nutpie's chains start near the log density's optimum (recorded on the card),
    apart from each other; by default at nutpie's own jittered start, with no start record."""
    from bayes_dcpt.errors import FitError
    from bayes_dcpt.fitting import fit
    from bayes_dcpt.fitting.samplers import START_JITTER, _compiled, _log_density, start_at_optimum

    assert "start" not in small_fit.sampler_config and small_fit.sampler_config["settings"]["init"] == "jitter"
    opt = fit(df3, "dcpt", "both", seed=3, draws=20, tune=20, chains=1, warn=False,
              sampler_kwargs={"init": "optimum"})
    start = opt.sampler_config["start"]  # the model card says where the chains started
    assert start["init"] == "optimum" and start["optimum_lp"] > start["start_lp"]
    entry = small_fit._model_entry()
    compiled = _compiled(entry, "numba")
    moved, info = start_at_optimum(compiled, entry["model"], seed=5)
    a, b = moved.initial_point_func(1), moved.initial_point_func(2)
    assert not np.allclose(a, b) and np.max(np.abs(a - b)) <= 2 * START_JITTER  # apart, but near one point
    logp = _log_density(compiled)
    assert logp(a)[0] > logp(compiled.initial_point_func(1))[0]  # far better than nutpie's own start
    assert info["optimum_lp"] == pytest.approx(start["optimum_lp"], rel=0.05)
    with pytest.raises(FitError, match="init"):
        fit(df3, "dcpt", "both", draws=20, tune=20, chains=1, warn=False, sampler_kwargs={"init": "mode"})


def test_a_hierarchy_starts_away_from_its_funnel_neck():
    """Data with no spread between groups put the joint mode at a group scale of 0; the start keeps the scale at
    the support point and optimises the rest (the group values move to the data)."""
    import nutpie
    import pymc as pm

    from bayes_dcpt.fitting.samplers import START_JITTER, _support_point, start_at_optimum

    with pm.Model() as model:
        sd_x = pm.HalfNormal("sd_x", 1.0)
        mu = pm.Normal("mu", 0.0, 1.0)
        x = pm.Normal("x", mu, sd_x, shape=5)
        pm.Normal("y", x, 0.05, observed=np.full(5, 0.3))
    compiled = nutpie.compile_pymc_model(model)
    moved, info = start_at_optimum(compiled, model, seed=0)
    support, scales = _support_point(model)
    assert model.value_vars[0].name == "sd_x_log__" and list(scales) == [0]
    start = moved.initial_point_func(7)
    assert abs(start[0] - support[0]) <= START_JITTER  # the scale: at the support point, not at log(0)
    assert np.allclose(start[2:], 0.3, atol=0.05 + START_JITTER)  # the group values: at the data
    assert info["optimum_lp"] > info["start_lp"]


def test_one_checkpoint_per_run_and_several_do_not_share_a_compiled_model():
    """A width-1 input is built with a static 1; data with one checkpoint per run (a refit on early tokens) and
    then with several (the full fit) once reused the first model and failed on the new shape (`fit --law auto` on
    the example grid's first two-thirds of tokens: "The type's shape ((None, 1)) is not compatible with the
    data's ((90, 3))")."""
    from bayes_dcpt.data import schema
    from bayes_dcpt.datasets import load_example
    from bayes_dcpt.fitting.config import FitConfig
    from bayes_dcpt.fitting.cpt_model import get_cpt_model, make_cpt_design
    from bayes_dcpt.fitting.dcpt_model import get_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.laws.registry import get_law

    df = schema.load(load_example())
    df = df[df["domain"] == df["domain"].iloc[0]]
    cpt = df[(df["tokens"] > 0) & ~schema.in_warmup(df)]  # the fits leave the LR warm-up out
    first = df[(df["tokens"] == 0) | (df["tokens"] == cpt["tokens"].min())]  # one fitted checkpoint per run
    cfg = FitConfig(law="cpt", target="both", zero_ratio=True)
    one, many = make_cpt_design(first, cfg), make_cpt_design(df, cfg)
    assert one.layout() != many.layout()
    a, b = get_cpt_model(cfg, one), get_cpt_model(cfg, many)  # the second raised before
    assert a is not b and b["model"]["D"].get_value().shape[1] > 1
    law, cfg3 = get_law("L3"), FitConfig(law="L3", target="both")
    d1, d2 = make_design(first, law, cfg3), make_design(df, law, cfg3)
    if d1.blocks and d2.blocks:
        assert d1.layout() != d2.layout()
        assert get_model(law, cfg3, d1) is not get_model(law, cfg3, d2)


def test_every_model_samples_the_noise_priors_its_card_prints():
    """One copy of the noise priors: the D-CPT and CPT models (and the dynamics one) draw sigma, tau and nu from
    ``likelihood.NOISE_PRIORS``'s values, and the prior tables print those values."""
    import pymc as pm

    from bayes_dcpt.data import schema
    from bayes_dcpt.datasets import load_example
    from bayes_dcpt.fitting.config import FitConfig
    from bayes_dcpt.fitting.cpt_model import build_cpt_model, cpt_prior_table, make_cpt_design
    from bayes_dcpt.fitting.dcpt_model import build_model
    from bayes_dcpt.fitting.design import make_design
    from bayes_dcpt.fitting.likelihood import NOISE_PRIORS, NU_FLOOR, SIGMA_MEDIAN, TAU_SCALE
    from bayes_dcpt.fitting.priors import prior_table
    from bayes_dcpt.laws.registry import get_law

    df = schema.load(load_example())
    law_ = get_law("L3")
    dcpt = build_model(law_, FitConfig(law="L3", target="both"), make_design(df, law_, FitConfig(law="L3",
                                                                                                 target="both")))
    cfg = FitConfig(law="cpt", target="both", zero_ratio=True)
    cpt = build_cpt_model(cfg, make_cpt_design(df, cfg))
    for model in (dcpt, cpt):
        sigma, tau, nu = pm.draw([model["sigma"], model["tau"], model["nu"]], draws=4000, random_seed=3)
        assert np.median(sigma) == pytest.approx(SIGMA_MEDIAN, rel=0.1)
        assert np.median(tau) == pytest.approx(TAU_SCALE * 0.6745, rel=0.1)  # HalfNormal's median
        assert nu.min() >= NU_FLOOR and np.median(nu) == pytest.approx(NU_FLOOR + 16.78, rel=0.1)  # Gamma(2, 0.1)
    for tab in (prior_table("L3").set_index("parameter")["prior"], cpt_prior_table().set_index("parameter")["prior"]):
        for name in ("sigma", "tau", "nu"):
            assert tab[name].startswith(NOISE_PRIORS[name][0])
    # a fit saved before the floor and the per-domain noise: its table says what it sampled
    old = FitConfig(law="cpt", nu_floor=0.0, noise_scope="target", replay_scope="target")
    for tab in (prior_table("L3", cfg=old).set_index("parameter")["prior"],
                cpt_prior_table(old).set_index("parameter")["prior"]):
        assert tab["nu"].startswith("Gamma(2, 0.1)")
    assert cpt_prior_table(old).set_index("parameter").loc["tau", "prior"].endswith("per target")
    scope = prior_table("L3", cfg=old).set_index("parameter").loc["sigma, tau, nu scope", "prior"]
    assert scope == "one each per target"
