"""The fit file: one netCDF (h5netcdf) DataTree with the posterior, the fitted data and the model card.

A fit is saved without its log-likelihood (recomputed on demand) and written atomically (temporary file, then
rename). The model card (JSON in the tree's attributes) records the law, configuration, priors, data hash,
sampler settings and diagnostics; readers use it to rebuild the fit without refitting. It also records a digest
of the posterior draws: the written file is read back and checked against it before it replaces anything, and
every read checks it again, so a file whose draws did not reach the disk intact (once seen: a posterior group of
zeros beside intact sample statistics, not reproduced) is an error, never a fit that predicts from zeros.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.errors import BayesDCPTError

__all__ = [
    "CARD_ATTR",
    "DATA_GROUP",
    "read_card",
    "read_fit_file",
    "text_column",
    "write_fit_file",
]

#: The tree attribute holding the model card (JSON) and the group holding the fitted data.
CARD_ATTR = "bayes_dcpt_card"
DATA_GROUP = "bayes_dcpt_data"
#: The tree attribute holding :func:`posterior_digest` of the draws as written.
DIGEST_ATTR = "bayes_dcpt_posterior_sha256"


def posterior_digest(tree: Any) -> str:
    """SHA-256 of the posterior draws (every variable by name, as float64): what a reader checks the file by."""
    h = hashlib.sha256()
    post = tree["posterior"]
    for name in sorted(str(k) for k in post.data_vars):
        h.update(name.encode())
        h.update(np.ascontiguousarray(np.asarray(post[name].values, dtype=float)).tobytes())
    return h.hexdigest()


def _read_tree(path: Path) -> Any:
    import xarray as xr

    with xr.open_datatree(path, engine="h5netcdf") as tree:
        return tree.load()


def text_column(values: pd.Series) -> np.ndarray:
    """Strings for netCDF: missing values (None, NaN) as ""."""
    return values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)) \
        .to_numpy().astype(object)


def write_fit_file(idata: Any, data: pd.DataFrame, numeric: Sequence[str], text: Sequence[str],
                   card: Mapping[str, Any], path: str | Path) -> Path:
    """Write a posterior (without its log-likelihood), the fitted data and the model card to netCDF, atomically.

    ``numeric`` and ``text`` name the data columns stored as floats and as strings; :func:`read_fit_file`
    reads the file back.
    """
    import xarray as xr

    path = Path(path)
    tree = idata.copy()
    if "log_likelihood" in tree.children:
        del tree["log_likelihood"]
    ds = xr.Dataset({c: ("row", data[c].to_numpy(float)) for c in numeric})
    for c in text:
        ds[c] = ("row", text_column(data[c]))
    tree[DATA_GROUP] = xr.DataTree(ds)
    tree.attrs[CARD_ATTR] = json.dumps(card, default=str)
    tree.attrs[DIGEST_ATTR] = digest = posterior_digest(tree)
    tmp = path.with_suffix(path.suffix + ".tmp")
    for _attempt in range(2):  # written, read back and checked before it replaces the old file
        tree.to_netcdf(tmp, engine="h5netcdf")
        if posterior_digest(_read_tree(tmp)) == digest:
            os.replace(tmp, path)
            return path
    tmp.unlink(missing_ok=True)
    raise BayesDCPTError(f"{path}: the posterior draws read back from the written file differ from the fit's (twice);"
                         " nothing was replaced: check the disk and write the fit again")


def read_fit_file(path: Path, writer: str) -> tuple[Any, dict[str, Any], pd.DataFrame]:
    """Read a file of :func:`write_fit_file`: (posterior tree without the data, model card, raw data frame).

    Every failure is one :class:`BayesDCPTError` naming the file; ``writer`` names the method that writes
    such files (for the message when the file is netCDF but not ours).
    """
    try:
        tree = _read_tree(path)
    except Exception as exc:
        raise BayesDCPTError(f"{path}: not a readable bayes-dcpt fit (netCDF): {str(exc).splitlines()[0]}") from exc
    card_json = tree.attrs.get(CARD_ATTR)
    if card_json is None or DATA_GROUP not in tree.children or "posterior" not in tree.children:
        raise BayesDCPTError(f"{path}: not a bayes-dcpt fit (no model card); was it written by {writer}?")
    digest = tree.attrs.get(DIGEST_ATTR)  # files written before the digest have none
    if digest is not None and posterior_digest(tree) != digest:
        raise BayesDCPTError(f"{path}: the posterior draws do not match the digest they were written with (file "
                             f"corrupted?); refit, or restore the file from a copy")
    ds = tree[DATA_GROUP].to_dataset()
    raw = pd.DataFrame({c: ds[c].values for c in ds.data_vars})
    del tree[DATA_GROUP]
    return tree, json.loads(card_json), raw


def read_card(path: Path) -> dict[str, Any] | None:
    """The model card of a fit file without loading its draws (``None`` when the file has none)."""
    import xarray as xr

    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            card_json = tree.attrs.get(CARD_ATTR)
    except Exception:
        return None
    return None if card_json is None else json.loads(card_json)
