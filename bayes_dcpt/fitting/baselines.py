"""The paper's point fits as the baseline a Bayesian fit's predictions are judged against.

A Bayesian fit earns its keep when it predicts runs it did not see at least as well as a careful point fit of the
same data, with bands that hold them: the honest-fit benchmarks judge every split so (BENCHMARKS.md), and
``bayes-dcpt predict --baseline`` lets a user judge their own held-out runs the same way. The baselines are the
paper's procedure (Huber on log loss, L-BFGS-B, :func:`~bayes_dcpt.fitting.pointfit.fit_point`), each domain
fitted alone, of the D-CPT law (L3) and of the additive L1, which extrapolated best among the point fits on our
grids; their predictions go beside the fit's in :func:`bayes_dcpt.posterior.heldout.check_predictions`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayes_dcpt.data import schema as _data
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.fitting.pointfit import fit_point

__all__ = ["BASELINE_LAWS", "point_baselines"]

#: The point fits a Bayesian fit's held-out predictions are set beside: the D-CPT law and the additive L1.
BASELINE_LAWS = ("L3", "L1")


def point_baselines(train: pd.DataFrame, rows: pd.DataFrame, laws: Sequence[str] = BASELINE_LAWS,
                    ) -> dict[str, pd.DataFrame]:
    """``{law: frame}``: each law's point-fit prediction ``loss_<target>_mean`` of every row of ``rows``.

    Each domain of ``train`` (a table of the data schema) is fitted alone, as the paper does; a row of a domain
    the law could not be fitted to (too few points for its parameters) is NaN, and a law that fails on every
    domain is left out with a warning rather than stopping the check.
    """
    train = _data.load(train)
    rows = rows.reset_index(drop=True)
    targets = [t for t in _data.TARGETS if train[f"loss_{t}"].notna().any()]
    out: dict[str, pd.DataFrame] = {}
    for law in laws:
        preds = {f"loss_{t}_mean": np.full(len(rows), np.nan) for t in targets}
        fitted = False
        for dom in sorted(set(rows["domain"].astype(str)) & set(train["domain"].astype(str))):
            mask = (rows["domain"].astype(str) == dom).to_numpy()
            for t in targets:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        pf = fit_point(train, law, t, domain=dom)
                except BayesDCPTError:
                    continue
                preds[f"loss_{t}_mean"][mask] = pf.predict(rows[mask])[f"loss_{t}_pred"].to_numpy(float)
                fitted = True
        if fitted:
            out[law] = pd.DataFrame(preds)
        else:
            warnings.warn(f"the point fit of {law} could not be fitted to any domain: left out of the baselines",
                          stacklevel=2)
    return out
