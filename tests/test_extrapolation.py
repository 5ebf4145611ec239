"""Held-out splits, their scores, stacking by held-out densities, and the discrepancy estimator (no MCMC here).

The scores are checked against a brute-force computation (scipy's multivariate normal / t densities of each run);
the stacking against a synthetic case where PSIS-LOO and held-out refits disagree (a flexible law interpolates
better and extrapolates worse); the discrepancy estimator against residuals simulated with a known kappa.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logsumexp

from bayes_dcpt.fitting.auto import _lpd_matrix
from bayes_dcpt.fitting.discrepancy import (
    data_envelope,
    estimate_kappa,
    extrapolation_distances,
    size_key,
    stacking_weight_interval,
    stacking_weights,
)
from bayes_dcpt.fitting.extrapolation import DOMAIN_PRIOR_RUNS, discrepancy_from_scores
from bayes_dcpt.fitting.holdout import HoldoutScore, make_splits, score_split
from bayes_dcpt.laws.registry import Law, Param, Prior
from bayes_dcpt.numerics.psis import psis
from bayes_dcpt.plan.simulate import World, probe_grid
from bayes_dcpt.posterior.draws import Posterior
from bayes_dcpt.posterior.extrapolation import discrepancy_slopes

SIZES = (1e8, 3e8, 1e9)


@pytest.fixture(scope="module")
def world() -> World:
    return World.default(domains=("code", "law"), sigma=0.004, tau=0.003)


@pytest.fixture(scope="module")
def grid_df(world) -> pd.DataFrame:
    grid = probe_grid(n_params=SIZES, r_domain=(0.0, 0.25, 0.5, 0.75, 1.0), domains=("code", "law"))
    return world.simulate(grid, seed=2)


# ------------------------------------------------------------------------------------------------- splits
def test_tokens_split_holds_out_the_last_third_of_log_tokens(grid_df):
    (s,) = make_splits(grid_df, ("tokens",))
    cpt = grid_df[grid_df["tokens"] > 0]
    lo, hi = np.log(cpt["tokens"].min()), np.log(cpt["tokens"].max())
    cut = np.exp(lo + 2 / 3 * (hi - lo))
    assert set(s.test["tokens"]) == {t for t in cpt["tokens"] if t > cut}
    assert (s.train["tokens"] <= cut).all() and (s.train["tokens"] == 0).sum() == (grid_df["tokens"] == 0).sum()
    assert len(s.train) + len(s.test) == len(grid_df)
    assert set(s.test["run_id"]) == set(cpt["run_id"])  # every run keeps its early checkpoints, loses its late ones


def test_early_tokens_split_holds_out_the_last_two_thirds_and_only_when_it_adds_rows(grid_df):
    late, early = make_splits(grid_df, ("tokens", "tokens_early"))
    cpt = grid_df[grid_df["tokens"] > 0]
    lo, hi = np.log(cpt["tokens"].min()), np.log(cpt["tokens"].max())
    cut = np.exp(lo + 1 / 3 * (hi - lo))
    assert early.kind == "tokens_early" and "two-thirds" in early.description
    assert set(early.test["tokens"]) == {t for t in cpt["tokens"] if t > cut}
    assert set(late.test["tokens"]) < set(early.test["tokens"])  # nested: the early origin reaches further
    assert early.train.loc[early.train["tokens"] > 0, "tokens"].nunique() >= 2
    # two early checkpoints and a late one: both origins hold out the same (last) one; one origin is all there is
    ticks = sorted(cpt["tokens"].unique())
    three = grid_df[grid_df["tokens"].isin([0.0, ticks[0], ticks[1], ticks[-1]])]
    assert make_splits(three, ("tokens_early",))[0].test["tokens"].unique().tolist() == [ticks[-1]]
    assert [s.kind for s in make_splits(three, ("tokens", "tokens_early"))] == ["tokens"]
    # two checkpoints: the early origin would leave one token count to fit, so it is not made
    two = grid_df[grid_df["tokens"].isin([0.0, ticks[0], ticks[-1]])]
    assert [s.kind for s in make_splits(two, ("tokens_early",))] == []


def test_splits_leave_out_the_lr_warmup_judged_on_the_whole_runs(grid_df):
    """The refits fit no warm-up checkpoint, even when a token origin cuts a run inside its warm-up."""
    ticks = sorted(grid_df.loc[grid_df["tokens"] > 0, "tokens"].unique())
    peak_at = ticks[2]  # the first two checkpoints of every run are inside its warm-up (LR at 1/4 and 1/2 of it)
    lr = np.where(grid_df["tokens"] >= peak_at, 1e-3, 1e-3 * grid_df["tokens"] / peak_at)
    df = grid_df.assign(lr=np.where(grid_df["tokens"] > 0, lr, np.nan))
    warm = df["tokens"].isin(ticks[:2])
    fitted = df[(df["tokens"] > 0) & ~warm]
    lo, hi = np.log(fitted["tokens"].min()), np.log(fitted["tokens"].max())
    late, early = make_splits(df, ("tokens", "tokens_early"))
    for s, origin in ((late, 2 / 3), (early, 1 / 3)):
        cut = np.exp(lo + origin * (hi - lo))  # the origins are fractions of the range the law is fitted on
        assert set(s.test["tokens"]) == {t for t in fitted["tokens"] if t > cut}
        assert not s.train["tokens"].isin(ticks[:2]).any() and not s.test["tokens"].isin(ticks[:2]).any()
        assert (s.train["tokens"] == 0).sum() == (df["tokens"] == 0).sum()
    (size,) = make_splits(df, ("size",))
    assert not size.test["tokens"].isin(ticks[:2]).any()  # the held-out size is scored where the law is fitted
    # a fit of every checkpoint (burn_in="none") keeps them
    (keep,) = make_splits(df, ("size",), burn_in="none")
    assert keep.test["tokens"].isin(ticks[:2]).any()


def test_size_split_keeps_every_base_row(grid_df):
    (s,) = make_splits(grid_df, ("size",))
    assert (s.test["n_params"] == SIZES[-1]).all() and (s.test["tokens"] > 0).all()
    assert len(s.test) == int(((grid_df["n_params"] == SIZES[-1]) & (grid_df["tokens"] > 0)).sum())
    base = s.train[s.train["tokens"] == 0]
    assert sorted(set(base["n_params"])) == list(SIZES)  # users have their base models
    assert not ((s.train["tokens"] > 0) & (s.train["n_params"] == SIZES[-1])).any()


def test_ratio_split_and_what_the_data_do_not_allow(grid_df):
    (s,) = make_splits(grid_df, ("ratio",))
    assert set(s.test["r_domain"]) == {0.25, 0.75} and set(s.test["domain"]) == {"code", "law"}
    one_size = grid_df[grid_df["n_params"] == SIZES[0]]
    assert [x.kind for x in make_splits(one_size, ("tokens", "size", "ratio"))] == ["tokens", "ratio"]
    with pytest.raises(Exception, match="unknown held-out split"):
        make_splits(grid_df, ("domain-order",))


def test_envelope_and_distances_follow_the_documented_interface(grid_df):
    env = data_envelope(grid_df)
    assert set(env) == {"code", "law"}
    e = env["code"]
    assert set(e) == {"n_max", "n_min", "d_max", "d_min", "ratios"}
    assert e["n_max"] == 1e9 and e["n_min"] == 1e8 and e["ratios"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert e["d_max"] == {size_key(n): 5e9 for n in SIZES} and size_key(1e9) == "1000000000.0"
    assert e["d_min"] == {size_key(n): float(grid_df.loc[grid_df.tokens > 0, "tokens"].min()) for n in SIZES}
    q = pd.DataFrame({"domain": ["code", "code", "code", "law"], "n_params": [1e9, 4e9, 3e8, 1e7],
                      "tokens": [2e10, 1e9, 5e9, 5e10], "r_domain": [0.5, 0.6, 0.1, 0.25]})
    d = extrapolation_distances(q, env)
    np.testing.assert_allclose(d["tokens"], [np.log(4), 0, 0, np.log(10)])
    np.testing.assert_allclose(d["size"], [0, np.log(4), 0, np.log(10)])
    np.testing.assert_allclose(d["ratio"], [0, 0.1, 0.1, 0])


# ------------------------------------------------------------------------------------------------ scoring
def _l3_posterior(world: World, S: int, seed: int, *, nu: float | None, hetero: bool = False) -> Posterior:
    """Draws scattered around the world's truth (so that lpd varies by draw), with known noise draws."""
    rng = np.random.default_rng(seed)
    params = {k: {n: v * np.exp(rng.normal(0, 0.02, S)) for n, v in p.items()} for k, p in world.params.items()}
    noise = {t: {"sigma": rng.uniform(0.003, 0.006, S), "tau": rng.uniform(0.001, 0.004, S)} for t in ("general",
                                                                                                     "domain")}
    if nu is not None:
        for t in noise:
            noise[t]["nu"] = np.full(S, nu) + rng.uniform(0, 3, S)
    cls = _Hetero if hetero else Posterior
    return cls(world.law, params, noise, ctx={"run_mixing": 1.0, **({"heteroscedastic": 1.0} if hetero else {})})


@dataclass
class _Hetero(Posterior):
    """Each checkpoint its own noise scale (growing with log D), as the CPT law's posterior has."""

    def checkpoint_sd(self, frame, target, log_mean):
        grow = 1.0 + 0.1 * np.log(np.asarray(frame["tokens"], float) / 1e8)
        return np.asarray(self.noise[target]["sigma"])[:, None] * grow[None, :]


def _brute_lpd(post: Posterior, split, target: str, run: str, conditional: bool, point: int | None = None) -> float:
    """A held-out run's log predictive density by dense covariances (``point``: that held-out checkpoint alone)."""
    test = split.test[(split.test["run_id"] == run) & split.test[f"loss_{target}"].notna()]
    test = test if point is None else test.iloc[[point]]
    early = split.train[(split.train["run_id"] == run) & (split.train["tokens"] > 0)] if conditional else \
        split.train.head(0)
    rows = pd.concat([test, early], ignore_index=True)
    logm = post.mean_log_loss(rows, target)
    sd = post.checkpoint_sd(rows, target, logm)
    y = np.log(rows[f"loss_{target}"].to_numpy())
    nz = post.noise[target]
    k = len(test)
    out = []
    for s in range(post.n_draws):
        cov = np.diag(sd[s] ** 2) + nz["tau"][s] ** 2
        if "nu" in nz:
            joint = stats.multivariate_t(logm[s], cov, df=nz["nu"][s]).logpdf(y)
            marg = stats.multivariate_t(logm[s, k:], cov[k:, k:], df=nz["nu"][s]).logpdf(y[k:]) if len(early) \
                else 0.0
        else:
            joint = stats.multivariate_normal(logm[s], cov).logpdf(y)
            marg = stats.multivariate_normal(logm[s, k:], cov[k:, k:]).logpdf(y[k:]) if len(early) else 0.0
        out.append(joint - marg)
    return float(logsumexp(out) - np.log(len(out)))


@pytest.mark.parametrize(("nu", "hetero"), [(None, False), (4.0, False), (3.0, True)])
def test_run_scores_equal_brute_force_densities(world, grid_df, nu, hetero):
    post = _l3_posterior(world, 12, 0, nu=nu, hetero=hetero)
    for split in make_splits(grid_df, ("tokens", "size")):
        sc = score_split(post, split, law="L3", zero_ratio=False, per_point=True)
        runs = sc.runs.set_index(["target", "run_id"])
        plain = score_split(post, split, law="L3", zero_ratio=False).runs  # per checkpoint only when asked
        assert plain["lpd_points"].isna().all() and np.array_equal(plain["lpd"], sc.runs["lpd"])
        rng = np.random.default_rng(1)
        for t in ("general", "domain"):
            ids = runs.loc[t].index.to_numpy()
            for run in rng.choice(ids, 3, replace=False):
                cond = split.kind == "tokens"
                want = _brute_lpd(post, split, t, run, conditional=cond)
                assert runs.loc[(t, run), "lpd"] == pytest.approx(want, rel=1e-8, abs=1e-8)
                # per checkpoint: each held-out checkpoint alone, given the run's fitted ones, summed over the run
                k = int(runs.loc[(t, run), "n_points"])
                each = sum(_brute_lpd(post, split, t, run, cond, point=i) for i in range(k))
                assert runs.loc[(t, run), "lpd_points"] == pytest.approx(each, rel=1e-8, abs=1e-8)
        # zero own-ratio losses are not scored unless asked: the general loss at r = 1, the domain loss at r = 0
        assert not ((sc.points["target"] == "domain") & (sc.points["r_domain"] == 0)).any()
        assert not ((sc.points["target"] == "general") & (sc.points["r_domain"] == 1)).any()


def test_point_scores_match_the_posterior_predictions(world, grid_df):
    post = _l3_posterior(world, 200, 3, nu=5.0)
    (split,) = make_splits(grid_df, ("size",))
    sc = score_split(post, split, zero_ratio=False, seed=4)
    p = sc.points[sc.points["target"] == "domain"].reset_index(drop=True)
    rows = p[["domain", "n_params", "tokens", "r_domain", "run_id"]]
    pred = post.predict(rows, 0.9, seed=4)
    np.testing.assert_allclose(p["pred"], pred["loss_domain_mean"], rtol=1e-12)
    mape = 100 * np.mean(np.abs(pred["loss_domain_mean"] - p["loss"]) / p["loss"])
    summ = sc.summary().set_index("target")
    assert summ.loc["domain", "mape"] == pytest.approx(mape)
    assert summ.loc["domain", "n_runs"] == p["run_id"].nunique() and summ.loc["domain", "n_points"] == len(p)
    assert ((p["lo"] < p["pred"]) & (p["pred"] < p["hi"])).all()
    assert 0.0 <= summ.loc["domain", "coverage"] <= 1.0
    np.testing.assert_allclose(p["delta_size"], np.log(1e9 / 3e8))
    assert (p["delta_tokens"] == 0).all() and (p["delta_ratio"] == 0).all()


# ---------------------------------------------------------------------------------------------- stacking
def test_stacking_weights_recover_a_known_mixture():
    rng = np.random.default_rng(0)
    y = np.where(rng.uniform(size=4000) < 0.3, rng.normal(2, 1, 4000), rng.normal(-2, 1, 4000))
    lpd = np.stack([stats.norm(2, 1).logpdf(y), stats.norm(-2, 1).logpdf(y)], axis=1)
    w = stacking_weights(lpd)
    assert w.sum() == pytest.approx(1.0) and w[0] == pytest.approx(0.3, abs=0.03)
    assert stacking_weights(lpd[:, :1]).tolist() == [1.0]
    # a candidate that fails on every unit gets no weight
    np.testing.assert_allclose(stacking_weights(np.c_[lpd[:, 0], np.full(len(y), -np.inf)]), [1.0, 0.0])



def test_stacking_weight_interval_is_narrow_when_the_runs_settle_it_and_wide_when_they_do_not():
    rng = np.random.default_rng(1)
    # unit weights of 1 are the plain objective; doubling one unit is the same as listing it twice
    lpd = rng.normal(size=(30, 3))
    np.testing.assert_allclose(stacking_weights(lpd, np.ones(30)), stacking_weights(lpd), atol=1e-6)
    a = np.ones(30)
    a[0] = 2.0
    np.testing.assert_allclose(stacking_weights(lpd, a), stacking_weights(np.r_[lpd, lpd[:1]]), atol=1e-4)
    # one law better on every one of 40 held-out runs: weight 1, and every replicate says so
    better = np.c_[np.full(40, -1.0), np.full(40, -3.0)] + rng.normal(0, 0.1, (40, 1))
    lo, hi = stacking_weight_interval(better, seed=0)
    assert lo[0] > 0.99 and hi[1] < 0.01
    # two laws each better on half of 8 runs, by runs of different weight: the data do not settle it
    tied = np.c_[rng.normal(0, 2, 8), rng.normal(0, 2, 8)]
    lo, hi = stacking_weight_interval(tied, seed=0)
    assert (hi - lo).min() > 0.5
    w = stacking_weights(tied)
    assert (lo <= w + 1e-9).all() and (w <= hi + 1e-9).all()
    # seeded: the same interval twice
    np.testing.assert_array_equal(stacking_weight_interval(tied, seed=3)[0], stacking_weight_interval(tied, seed=3)[0])
    # one held-out run or one law: the point weights, no interval
    assert stacking_weight_interval(better[:1])[0].tolist() == stacking_weights(better[:1]).tolist()
    assert stacking_weight_interval(better[:, :1])[1].tolist() == [1.0]

def _curve_law(name: str, formula) -> Law:
    pars = tuple(Param(f"c{i}", "coefficient", "identity", (0.0,), Prior("normal", 0.0, 1.0, "test")) for i in
                 range(4))
    return Law(name, name, pars, ("N", "D", "r"), formula, "test", "test", {f"c{i}": 0.0 for i in range(4)})


_LD0 = np.log(1e-3)  # log D (billions) of the first checkpoint: the polynomial's origin


def _power(xp, p, x):  # log L = c0 + log(1 + c1 D^-c2): the true family, without the wiggle
    return xp.exp(p["c0"]) * (1.0 + p["c1"] * x["D"] ** (-p["c2"]))


def _cubic(xp, p, x):  # log L = cubic in log D: interpolates anything smooth, extrapolates badly
    z = xp.log(x["D"]) - _LD0
    return xp.exp(p["c0"] + p["c1"] * z + p["c2"] * z**2 + p["c3"] * z**3)


def _least_squares_posterior(law: Law, df: pd.DataFrame, S: int, seed: int) -> Posterior:
    """A Gaussian approximation around the least-squares fit of ``law`` to the domain loss of ``df`` (a 'refit')."""
    from scipy.optimize import least_squares

    rows = df[df["tokens"] > 0]
    D = rows["tokens"].to_numpy() / 1e9
    y = np.log(rows["loss_domain"].to_numpy())
    npar = 3 if law.name == "power" else 4

    def resid(c):
        p = {f"c{i}": c[i] if i < npar else 0.0 for i in range(4)}
        return np.log(law(np, p, {"D": D})) - y

    x0 = np.array([y.min(), 1.0, 0.3]) if npar == 3 else np.array([y[0], 0.0, 0.0, 0.0])
    sol = least_squares(resid, x0)
    sigma = float(np.sqrt(np.mean(sol.fun**2)))
    cov = np.linalg.pinv(sol.jac.T @ sol.jac) * sigma**2
    draws = np.random.default_rng(seed).multivariate_normal(sol.x, cov, S)
    params = {("domain", "code"): {f"c{i}": draws[:, i] if i < npar else np.zeros(S) for i in range(4)}}
    noise = {"domain": {"sigma": np.full(S, sigma), "tau": np.zeros(S)}}
    return Posterior(law, params, noise)


def test_held_out_stacking_prefers_the_law_that_extrapolates_where_loo_prefers_the_one_that_interpolates():
    """A wiggle the power law cannot follow makes the cubic win PSIS-LOO; beyond the data the cubic runs off."""
    rng = np.random.default_rng(5)
    D = np.geomspace(1e6, 1e9, 24)
    z = np.log(D / 1e9)
    rows = []
    for k, r in enumerate((0.3, 0.6)):
        logl = np.log(0.8 * (1 + 2.0 * (D / 1e9) ** -0.3)) + 0.01 * np.sin(1.3 * z) + 0.001 * rng.normal(size=24)
        rows.append(pd.DataFrame({"domain": "code", "n_params": 1e9, "tokens": D, "r_domain": r, "loss_general": 3.0,
                                  "loss_domain": np.exp(logl), "run_id": f"run{k}"}))
    df = pd.concat(rows, ignore_index=True)
    laws = {"power": _curve_law("power", _power), "cubic": _curve_law("cubic", _cubic)}
    # PSIS-LOO on the full data
    loo = {}
    for name, law in laws.items():
        post = _least_squares_posterior(law, df, 400, 1)
        e = np.log(df["loss_domain"].to_numpy())[None] - post.mean_log_loss(df, "domain")
        ll = stats.norm(0, post.noise["domain"]["sigma"][:, None]).logpdf(e)
        lw, _ = psis(-ll.T)
        loo[name] = logsumexp(lw + ll.T, axis=1)
    w_loo = stacking_weights(np.c_[loo["power"], loo["cubic"]])
    # held-out refits on the last third of log D
    (split,) = make_splits(df, ("tokens",))
    scores = {n: [score_split(_least_squares_posterior(law, split.train, 400, 2), split, law=n)]
              for n, law in laws.items()}
    lpd = _lpd_matrix(scores)
    w_held = dict(zip(lpd.columns, stacking_weights(lpd.to_numpy()), strict=True))
    assert sum(loo["cubic"]) > sum(loo["power"]) and w_loo[1] > 0.7  # LOO rewards interpolation
    assert w_held["power"] > 0.9  # held-out refits reward extrapolation
    mape = {n: s[0].summary()["mape"].iloc[0] for n, s in scores.items()}
    assert mape["power"] < mape["cubic"]


# ------------------------------------------------------------------------------------------- discrepancy
def test_discrepancy_estimator_recovers_known_kappas():
    rng = np.random.default_rng(11)
    n = 3000
    v = rng.uniform(0.5, 2.0, n) * 1e-5
    dt = np.where(np.arange(n) % 3 == 0, rng.uniform(0.3, 1.5, n), 0.0)
    ds = np.where(np.arange(n) % 3 == 1, rng.choice([0.7, 1.5], n), 0.0)
    dr = np.zeros(n)
    e = rng.normal(0, np.sqrt(v + (0.02 * dt) ** 2 + (0.05 * ds) ** 2))
    k = estimate_kappa(e, v, {"tokens": dt, "size": ds, "ratio": dr}, uncertainty=True)
    assert k["tokens"] == pytest.approx(0.02, rel=0.1) and k["size"] == pytest.approx(0.05, rel=0.1)
    assert k["ratio"] is None  # nothing held out along the ratio: not measured
    # no discrepancy: the estimate stays at (or very near) zero
    e0 = rng.normal(0, np.sqrt(v))
    k0 = estimate_kappa(e0, v, {"tokens": dt, "size": ds}, uncertainty=True)
    assert k0["tokens"] < 0.002 and k0["size"] < 0.002
    ml = estimate_kappa(e, v, {"tokens": dt, "size": ds})  # the default: maximum likelihood
    assert ml["size"] == pytest.approx(k["size"], rel=0.02)  # many units: the posterior meets the ML slope


def test_two_token_origins_each_give_a_slope_and_the_larger_one_is_kept():
    """The late origin's errors do not grow (slope ~0), the early one's grow at 0.03 per e-fold: pooled, its
    larger distances and the late origin's many small errors would meet in between; each origin alone measures
    its own slope, and the band takes the larger (the law's error need not grow linearly with the distance)."""
    rng = np.random.default_rng(5)
    v = 1e-5

    def score(kind: str, kappa: float, lo: float, hi: float, n_runs: int) -> HoldoutScore:
        run = np.repeat(np.arange(n_runs), 4)
        d = np.tile(np.linspace(lo, hi, 4), n_runs)
        pts = pd.DataFrame({"split": kind, "target": "general", "run_id": [f"r{i}" for i in run],
                            "log_error": rng.normal(0, np.sqrt(v + (kappa * d) ** 2)), "log_sd": np.sqrt(v),
                            "delta_tokens": d, "delta_size": 0.0, "delta_ratio": 0.0})
        return HoldoutScore("L", kind, pd.DataFrame(), pts)

    late, early = score("tokens", 0.0, 0.2, 0.7, 120), score("tokens_early", 0.03, 0.3, 1.4, 60)
    size = score("size", 0.0, 0.0, 0.0, 20).points.assign(delta_size=np.tile([0.5, 0.7, 0.9, 1.1], 20))
    size = HoldoutScore("L", "size", pd.DataFrame(), size.assign(
        log_error=rng.normal(0, np.sqrt(v + (0.02 * size["delta_size"]) ** 2))))
    both = discrepancy_from_scores([late, size, early], ["general"])["general"]
    alone = {k: discrepancy_from_scores([s, size], ["general"])["general"] for k, s in
             (("late", late), ("early", early))}
    assert alone["late"]["tokens"] < 0.01 and alone["early"]["tokens"] == pytest.approx(0.03, rel=0.2)
    assert both["tokens"] == alone["early"]["tokens"]  # the larger slope, not a pooled compromise:
    one = HoldoutScore("L", "tokens", pd.DataFrame(), early.points.assign(split="tokens"))
    assert discrepancy_from_scores([late, size, one], ["general"])["general"]["tokens"] < 0.8 * both["tokens"]
    assert both["size"] == max(alone["late"]["size"], alone["early"]["size"])
    assert both["size"] == pytest.approx(0.02, rel=0.3) and both["ratio"] is None
    # one origin: exactly the pooled estimate it always was
    assert discrepancy_from_scores([late, size], ["general"])["general"] == alone["late"]


def test_a_few_held_out_runs_leave_the_slope_open():
    """Errors no larger than the band from 15 runs put the ML slope at 0, and say little: the posterior slope stays
    well above 0, and shrinks as runs accumulate; a run's checkpoints count as one unit of evidence."""
    rng = np.random.default_rng(3)
    sd = 0.0074

    def slope(n_runs: int, per_run: int, units: bool, uncertainty: bool = True) -> float:  # (opt-in)
        ks = []
        for _ in range(20):
            run = np.repeat(np.arange(n_runs), per_run)
            e = rng.normal(0, sd / np.sqrt(2), n_runs)[run] + rng.normal(0, sd / np.sqrt(2), run.size)
            d = np.tile(np.linspace(0.35, 0.7, per_run), n_runs)
            ks.append(estimate_kappa(e, np.full(run.size, sd**2), {"tokens": d}, units=run if units else None,
                                     uncertainty=uncertainty)["tokens"])
        return float(np.median(ks))

    assert slope(15, 2, True, uncertainty=False) < 0.1 * sd  # the ML slope: (nearly) no growth
    few, many = slope(15, 2, True), slope(500, 2, True)
    assert 0.4 * sd < few < 1.2 * sd and many < 0.6 * few
    assert slope(15, 8, True) > 1.5 * slope(15, 8, False)  # 8 checkpoints of a run are not 8 runs


def _long_grid_errors() -> tuple[np.ndarray, ...]:
    """The long-CPT grid's early-origin held-out errors of its general loss (tests/data: a refit of the packaged
    grid's checkpoints up to a third of its first 2^19 tokens' log range, scored on the rest of each run)."""
    from pathlib import Path

    r = pd.read_csv(Path(__file__).parent / "data" / "heldout_errors_long_tokens_early.csv")
    return (r["log_error"].to_numpy(), r["log_sd"].to_numpy() ** 2, r["delta_tokens"].to_numpy(),
            r["run_id"].to_numpy())


def test_the_likelihood_slope_is_found_where_its_gradient_in_kappa_vanishes():
    """A moment start six times the optimum used to overshoot to 0, where the gradient in kappa is 0, and stop
    there as if converged (the long grid's errors). On the variance scale the optimiser finds the minimum."""
    e, v, d, _ = _long_grid_errors()
    grid = np.linspace(0.0, 0.05, 5001)
    nll = [0.5 * np.sum(np.log(v + k**2 * d**2) + e**2 / (v + k**2 * d**2)) for k in grid]
    best = grid[int(np.argmin(nll))]
    assert np.sqrt(np.mean((e**2 - v) / d**2)) > 5 * best > 0  # the moment start lies far above it
    assert estimate_kappa(e, v, {"tokens": d})["tokens"] == pytest.approx(best, rel=0.01)


def test_split_conformal_slopes_hold_the_finite_sample_share_of_the_runs():
    """At level 0.9 over n runs, the bands hold ceil((n + 1) 0.9) / n of the held-out runs' errors (each run
    weighing as one), and no smaller slope does; on the long grid's errors the likelihood's slope, fitted to their
    bulk, holds 0.79 of them."""
    from scipy import stats as st

    e, v, d, run = _long_grid_errors()
    z = st.norm.ppf(0.95)

    def held(k: float) -> float:  # run-weighted share inside the 90% band
        inside = np.abs(e) <= z * np.sqrt(v + k**2 * d**2)
        return float(np.mean([inside[run == r].mean() for r in np.unique(run)]))

    matched = estimate_kappa(e, v, {"tokens": d}, units=run, coverage=0.9)["tokens"]
    ml = estimate_kappa(e, v, {"tokens": d}, units=run)["tokens"]
    n = len(np.unique(run))
    level = np.ceil((n + 1) * 0.9) / n  # 45 of 49 runs
    assert held(matched) == pytest.approx(level, abs=0.01) and held(matched * 0.95) < level
    assert held(ml) < 0.82 and matched > 3 * ml
    # errors within the noise need no slope; nine runs: the largest need of any
    assert estimate_kappa(0.1 * e, v, {"tokens": d}, units=run, coverage=0.9)["tokens"] == 0.0
    few = np.isin(run, np.unique(run)[:9])
    nine = estimate_kappa(e[few], v[few], {"tokens": d[few]}, units=run[few], coverage=0.9)["tokens"]
    need = np.sqrt(np.maximum(e[few] ** 2 / z**2 - v[few], 0.0)) / d[few]
    assert nine == pytest.approx(need.max())


def test_scoring_refits_cap_the_nuts_trees_unless_told():
    from bayes_dcpt.fitting.extrapolation import REFIT_DEFAULTS, REFIT_MAXDEPTH, refit_settings

    kw = refit_settings()
    # nutpie's default depth is 10; the dense-data fits' target_accept 0.95 is not the refits'
    assert kw["sampler_kwargs"] == {"maxdepth": REFIT_MAXDEPTH, "target_accept": 0.9} and REFIT_MAXDEPTH < 10
    assert {k: kw[k] for k in REFIT_DEFAULTS} == REFIT_DEFAULTS
    assert refit_settings({"sampler_kwargs": {"maxdepth": 10}})["sampler_kwargs"]["maxdepth"] == 10
    assert refit_settings({"sampler_kwargs": {"target_accept": 0.95}})["sampler_kwargs"] == {
        "maxdepth": REFIT_MAXDEPTH, "target_accept": 0.95}
    assert "sampler_kwargs" not in refit_settings({"sampler": "laplace"})  # only NUTS by nutpie has trees to cap


def test_an_unconverged_scoring_refit_is_sampled_again(monkeypatch):
    """R-hat over 1.01 or under 100 effective draws: the refit is sampled again with the retry settings, once."""
    from types import SimpleNamespace

    from bayes_dcpt.fitting import dcpt
    from bayes_dcpt.fitting import extrapolation as ex
    from bayes_dcpt.fitting.api import _refit_settings
    from bayes_dcpt.fitting.diagnostics import Diagnostics

    calls, n_obs = [], 500

    def fake_fit(data, law, target, **kw):  # converges only with the retry's draws
        calls.append(kw)
        rhat, ess = (1.05, 60.0) if kw["draws"] < 1000 else (1.003, 900.0)
        return SimpleNamespace(_diagnostics=Diagnostics("nutpie", 0, rhat, ess, ess, 1.0, kw["draws"], kw["chains"],
                                                        1.0), design=SimpleNamespace(obs=range(n_obs)))

    monkeypatch.setattr(dcpt, "fit", fake_fit)
    f, retried_after = ex._refit(None, "L1", "both", {}, None, 3, {})
    assert [(c["draws"], c["tune"], c["chains"], c["seed"]) for c in calls] == [(400, 400, 2, 3), (1000, 1000, 4, 3)]
    assert all("retry" not in c for c in calls) and calls[1]["sampler_kwargs"]["maxdepth"] == ex.REFIT_MAXDEPTH
    assert retried_after == ("R-hat 1.050 > 1.01", "ESS 60 < 100") and f._diagnostics.rhat_max < 1.01
    for settings in ({"retry": None}, {"draws": 1000, "tune": 1000, "chains": 4}, {"sampler": "laplace"}):
        calls.clear()
        assert ex._refit(None, "L1", "both", {}, None, 3, settings)[1] == () and len(calls) == 1
    calls.clear()
    n_obs = ex.REFIT_RETRY_MAX_OBS  # at scale a retry costs minutes: not retried
    assert ex._refit(None, "L1", "both", {}, None, 3, {})[1] == () and len(calls) == 1
    calls.clear()
    n_obs = 500  # nor a small part of data at that scale (the early-origin split of dense logs)
    assert ex._refit(None, "L1", "both", {}, None, 3, {}, ex.REFIT_RETRY_MAX_OBS)[1] == () and len(calls) == 1
    df = pd.DataFrame({"loss_general": [1.0, np.nan, 2.0], "loss_domain": [1.0, 1.0, 1.0]})
    assert (ex.log_losses(df, "both"), ex.log_losses(df, "general"), ex.log_losses(df, "domain")) == (5, 2, 3)
    # a quick fit retries no longer than itself
    assert _refit_settings(True, {"draws": 500, "tune": 300, "chains": 4})["retry"] == {"draws": 500, "tune": 300,
                                                                                         "chains": 4}
    assert ex.refit_settings({"sampler": "laplace"})["retry"] is None


def test_the_card_records_the_refit_settings_without_callables(grid_df):
    """A progress callback given for the refits runs them but is not written into the model card (JSON)."""
    import json
    from types import SimpleNamespace

    from bayes_dcpt.fitting.extrapolation import REFIT_MAXDEPTH, attach

    fit = SimpleNamespace(posterior=SimpleNamespace(ctx={}), targets=("general", "domain"), data=grid_df,
                          fitted_data=lambda: grid_df)
    attach(fit, [], 1.0, {"draws": 50, "sampler_kwargs": {"progress_callback": print, "target_accept": 0.95}})
    refit = fit.extrapolation["refit"]
    assert refit["draws"] == 50
    assert refit["sampler_kwargs"] == {"maxdepth": REFIT_MAXDEPTH, "target_accept": 0.95}
    json.dumps(fit.extrapolation)


def test_each_domain_gets_its_own_slope_where_its_errors_measure_one():
    """Domain ``miss`` (the law misses it) has errors growing at 0.05 per e-fold of tokens, ``fits`` none: pooled,
    one slope would widen ``fits``' bands for ``miss``' sake. Each gets its own; a domain with too few held-out
    points beyond the data (``few``) takes the pooled slope."""
    rng = np.random.default_rng(11)
    v = 1e-5

    def pts(dom: str, kappa: float, n_runs: int) -> pd.DataFrame:
        run = np.repeat(np.arange(n_runs), 4)
        d = np.tile(np.linspace(0.2, 1.2, 4), n_runs)
        return pd.DataFrame({"split": "tokens", "target": "general", "domain": dom,
                             "run_id": [f"{dom}{i}" for i in run],
                             "log_error": rng.normal(0, np.sqrt(v + (kappa * d) ** 2)), "log_sd": np.sqrt(v),
                             "delta_tokens": d, "delta_size": 0.0, "delta_ratio": 0.0})

    points = pd.concat([pts("miss", 0.05, 30), pts("fits", 0.0, 30), pts("few", 0.05, 1).iloc[:2]])
    scores = [HoldoutScore("L", "tokens", pd.DataFrame(), points)]
    kappa = discrepancy_from_scores(scores, ["general"], prior_runs=0.0)  # each domain's own, unshrunk
    k = kappa["general"]
    assert 0.01 < k["tokens"] < 0.045  # pooled: in between
    own = k["domains"]
    assert own["miss"]["tokens"] == pytest.approx(0.05, rel=0.25) and own["fits"]["tokens"] < 0.005
    assert own["few"]["tokens"] is None  # 2 points beyond the data: not measured on its own
    ctx = {"discrepancy": kappa}
    assert discrepancy_slopes(ctx, "general", "fits")[0]["tokens"] == own["fits"]["tokens"]
    assert discrepancy_slopes(ctx, "general", "few")[0]["tokens"] == k["tokens"]  # the pooled slope
    assert discrepancy_slopes(ctx, "general")[0]["tokens"] == k["tokens"]
    flat = discrepancy_from_scores(scores, ["general"], by_domain=False)["general"]
    assert "domains" not in flat and flat["tokens"] == k["tokens"]
    # the default shrinks each domain's slope towards the pooled one: DOMAIN_PRIOR_RUNS pseudo-runs against its 30
    shrunk = discrepancy_from_scores(scores, ["general"])["general"]["domains"]
    w = DOMAIN_PRIOR_RUNS / (30 + DOMAIN_PRIOR_RUNS)
    for d in ("miss", "fits"):
        want = np.sqrt((1 - w) * own[d]["tokens"] ** 2 + w * k["tokens"] ** 2)
        assert shrunk[d]["tokens"] == pytest.approx(want, rel=1e-9)
    assert own["fits"]["tokens"] < shrunk["fits"]["tokens"] < k["tokens"] < shrunk["miss"]["tokens"]
