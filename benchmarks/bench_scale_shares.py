"""The last divergences at scale: the stick-breaking shares' spread, and what removes them at what cost.

Data: the scale set of ``bench_scale.py`` (6 domains x 3 sizes x 9 ratios x 200 checkpoints: 32,400 rows, both
losses). Each variant is the D-CPT fit as ``dcpt.fit(df, "dcpt", "both", seed=S)`` runs it by default (4 chains x
1,000 draws after 1,000 tuning steps, ``parametrization="auto"``, i.e. ``"split"`` here; no calibration refits),
with the shares' spread and NUTS's target acceptance named by the variant (``poolX``: the spread of each share over
domains ``HalfNormal(X)`` on the logit scale, learnt; ``fixedX``: fixed at X, no hyperparameter, as the exponents'
``EXPONENT_SPREAD``; ``taY``: target_accept Y; a part not named is the package's):

* ``pool0.5ta0.9``: the package before the sixteenth round (the rows measured as ``default`` then);
* ``pool0.5ta0.95``: target_accept 0.95 alone (what the fit's remedy for divergences says);
* ``pool0.25ta0.95``: both, what the split hierarchies (dense data) now use (``fitting.config.DENSE_SHARE_SPREAD``,
  ``DENSE_TARGET_ACCEPT``);
* ``fixed0.4ta0.9``: a fixed spread.

Per fit: divergences, R-hat max, ESS bulk min, leapfrog steps per draw, the share of the world's true values inside
the 90% intervals, the wall time (loaded when two fits run side by side), and where the divergent draws sit (each
variable whose divergent draws rank under 0.02 or over 0.98 among all its draws). The variants patch the model
builder in the fit's own process only (``fitting.dcpt_model._ModelBuilder.rv``).

Run: ``.venv/bin/python benchmarks/bench_scale_shares.py --variants pool0.5ta0.9,pool0.25ta0.95 --seeds 1,2 --tag T``
(one fresh process per fit); rows go to
``benchmarks/results/scale_shares_<tag>.csv``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from bench_scale import OUT, recovery, scale_set, scale_world


def _patch(variant: str) -> dict:
    """Patch the model builder for ``variant``; return the sampler settings it needs."""
    from bayes_dcpt.fitting import dcpt_model as M

    orig = M._ModelBuilder.rv
    kw = {"sampler_kwargs": {"target_accept": float(variant.split("ta")[1])}} if "ta" in variant else {}
    if variant.startswith("pool"):
        pool = float(variant[4:].split("ta")[0])

        def rv(self, name, mu, sd, varying, pool_sd=0.5, axis=None):
            return orig(self, name, mu, sd, varying, pool if name.startswith("share_") else pool_sd, axis)

        M._ModelBuilder.rv = rv
    elif variant.startswith("fixed"):
        fixed = float(variant[5:].split("ta")[0])

        def rv(self, name, mu, sd, varying, pool_sd=0.5, axis=None):
            if not (varying and name.startswith("share_")):
                return orig(self, name, mu, sd, varying, pool_sd, axis)
            import pymc as pm

            mu_h = pm.Normal(f"mu_{name}", mu, sd, dims="target")
            z = pm.Normal(f"z_{name}", 0.0, 1.0, dims=("target", "domain"))
            return pm.Deterministic(name, mu_h[:, None] + fixed * z, dims=("target", "domain"))

        M._ModelBuilder.rv = rv
    return kw


def _where(fit) -> str:
    """Variables a divergent draw sits at the edge of (rank among all draws under 0.02 or over 0.98)."""
    post, div = fit.idata["posterior"], np.asarray(fit.idata["sample_stats"]["diverging"]).astype(bool).ravel()
    if not div.any():
        return ""
    out = []
    for v in post.data_vars:
        a = np.asarray(post[v]).reshape(div.size, -1)
        ranks = (a[None, :, :] < a[div][:, None, :]).mean(axis=1)
        k = int(np.argmax(np.abs(ranks - 0.5).max(axis=0)))
        if np.abs(ranks[:, k] - 0.5).max() > 0.48:
            out.append(f"{v}[{k}]:" + "/".join(f"{r:.3f}" for r in ranks[:, k]))
    return " ".join(out)


def one(variant: str, seed: int) -> dict:
    from bayes_dcpt.fitting import dcpt

    kw = _patch(variant)
    df = scale_set(200)
    t0 = time.perf_counter()
    f = dcpt.fit(df, "dcpt", "both", seed=seed, warn=False, **kw)
    wall = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = f.diagnostics()
    s = f.summary()
    worst = s["ess_bulk"].astype(float).idxmin()
    return {"variant": variant, "seed": seed, "rows": int((df["tokens"] > 0).sum()), "fit s": wall,
            "divergences": d.divergences, "R-hat max": d.rhat_max, "ESS bulk min": d.ess_bulk_min,
            "lowest-ESS variable": worst, "steps/draw": float(np.asarray(f.idata["sample_stats"]["n_steps"]).mean()),
            "truth in 90%": recovery(f, scale_world()), "divergent draws at": _where(f)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="pool0.5ta0.9,pool0.5ta0.95,pool0.25ta0.95,fixed0.4ta0.9")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    print(machine())
    rows = []
    for variant in a.variants.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            # one process per fit: a variant's patch must not leak into the next
            code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    f"import bench_scale_shares as b; print('ROW', json.dumps(b.one({variant!r}, {seed})))")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            row = json.loads(out.split("ROW ", 1)[1])
            print(row, flush=True)
            rows.append(row)
            pd.DataFrame(rows).to_csv(OUT / f"scale_shares{'_' + a.tag if a.tag else ''}.csv", index=False)
    print(md_table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
