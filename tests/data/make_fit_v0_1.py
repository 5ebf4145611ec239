"""Write the backward-compatibility fixture ``fit_v0_1.nc`` and its predictions ``fit_v0_1_predictions.csv``.

Run with the package as it was before the fitting split (commit 77bd364, module ``bayes_dcpt.fitting.core``)::

    git worktree add /tmp/oldpkg 77bd364
    PYTHONPATH=/tmp/oldpkg python tests/data/make_fit_v0_1.py
    git worktree remove /tmp/oldpkg

``tests/test_fit_compat.py`` loads the file with the current code and checks the predictions are the same.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import bayes_dcpt
from bayes_dcpt.fitting import fit

try:  # the layout of 77bd364
    from bayes_dcpt.simulate import World, probe_grid
except ImportError:  # the layered layout
    from bayes_dcpt.plan.simulate import World, probe_grid

HERE = Path(__file__).resolve().parent
GRID = pd.DataFrame({
    "domain": "code",
    "n_params": [1e8, 3e8, 1e9, 3e9, 1e9, 1e9],
    "tokens": [5e8, 2e9, 4e9, 2e10, 1e9, 4e9],
    "r_domain": [0.1, 0.5, 0.9, 0.5, 0.3, 0.7],
})


def main() -> None:
    print("package:", bayes_dcpt.__file__, bayes_dcpt.__version__)
    world = World.default(sigma=0.003, tau=0.003)
    df = world.simulate(probe_grid(n_params=(1e8, 1e9), r_domain=(0.1, 0.5, 0.9), n_checkpoints=4), seed=1)
    f = fit(df, "dcpt", "both", draws=50, tune=100, chains=2, cores=1, seed=7, warn=False)
    print(f, f.diagnostics(warn=False))
    path = f.save(HERE / "fit_v0_1.nc")
    print(path, path.stat().st_size, "bytes")
    mean = f.predict(GRID, kind="mean")
    pred = f.predict(GRID, kind="predictive", seed=0)
    bands = [p.drop(columns=list(GRID)).add_prefix(f"{kind}__") for kind, p in (("mean", mean), ("predictive", pred))]
    out = pd.concat([GRID, *bands], axis=1)
    out.to_csv(HERE / "fit_v0_1_predictions.csv", index=False)
    print(out)


if __name__ == "__main__":
    main()
