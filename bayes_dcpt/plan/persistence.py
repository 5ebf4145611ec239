"""Loop state on disk: posteriors in one ``.npz`` file, and the files a resumable loop writes as it goes.

A posterior file keeps its class (a base-anchored CPT law's posterior evaluates differently), its whole context
(the calibrated discrepancy and data envelope included) and the discrepancy's per-draw values.

A :class:`~bayes_dcpt.plan.loop.PlannerLoop` with a ``state_dir`` stores every result as it lands
(``config.json``, ``data.csv``, ``rounds.jsonl``, ``posterior.npz``, ``plan_round<N>.csv``), each written
atomically (a temporary file, then a rename), so an interrupted loop leaves a consistent state to resume from.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.encoding import dumps, to_jsonable
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.laws.registry import get_law
from bayes_dcpt.posterior.cpt import CPTPosterior
from bayes_dcpt.posterior.draws import Posterior

__all__ = ["load_posterior", "read_loop_state", "save_posterior", "write_atomic", "write_round"]

#: The posterior classes a file can hold (a base-anchored law's posterior needs its own ``law_inputs``).
_CLASSES: dict[str, type[Posterior]] = {"Posterior": Posterior, "CPTPosterior": CPTPosterior}


def save_posterior(post: Posterior, path: str | Path, **meta: Any) -> Path:
    """Store a posterior's draws, weights, context and reference in one ``.npz`` file (atomic write)."""
    if type(post).__name__ not in _CLASSES:
        raise BayesDCPTError(f"a {type(post).__name__} cannot be stored in a loop file (only {sorted(_CLASSES)})")
    arrays: dict[str, np.ndarray] = {}
    for (t, d), p in post.params.items():
        for name, v in p.items():
            arrays[f"p|{t}|{d}|{name}"] = np.asarray(v, float)
    for t, nz in post.noise.items():
        for name, v in nz.items():
            arrays[f"n|{t}|{name}"] = np.asarray(v, float)
    if post.weights is not None:
        arrays["weights"] = np.asarray(post.weights, float)
    for t in post.targets:  # the discrepancy's draws belong to the posterior's draws (a subset's are not re-drawn)
        arrays[f"z|{t}"] = np.asarray(post.discrepancy_z(t), float)
    header = {
        "law": post.law.name,
        "class": type(post).__name__,
        "ctx": to_jsonable(post.ctx),
        "reference": post.reference.to_csv(index=False),
        "meta": meta,
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, p)
    return p


def load_posterior(path: str | Path) -> tuple[Posterior, dict[str, Any]]:
    """Read a posterior written by :func:`save_posterior`; returns it and the stored ``meta``."""
    with np.load(path) as z:
        header = json.loads(bytes(z["header"]).decode())
        params: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        noise: dict[str, dict[str, np.ndarray]] = {}
        weights = None
        disc_z = {}
        for key in z.files:
            parts = key.split("|")
            if parts[0] == "p":
                params.setdefault((parts[1], parts[2]), {})[parts[3]] = z[key]
            elif parts[0] == "n":
                noise.setdefault(parts[1], {})[parts[2]] = z[key]
            elif parts[0] == "z":
                disc_z[parts[1]] = z[key]
            elif key == "weights":
                weights = z[key]
    law = get_law(header["law"])
    order = {n: i for i, n in enumerate(law.param_names)}
    params = {k: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], 99))) for k, v in params.items()}
    cls = _CLASSES.get(header.get("class", "Posterior"), Posterior)
    post = cls(law, params, noise, header["ctx"], weights=weights)
    if header["reference"].strip():
        post.reference = pd.read_csv(io.StringIO(header["reference"]))
    for t, v in disc_z.items():
        if len(v) == post.n_draws:
            post.discrepancy_z(t)[:] = v
    return post, header.get("meta", {})


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)



def write_round(
    d: Path,
    data: pd.DataFrame,
    post: Posterior,
    round_: int,
    plan_table: pd.DataFrame | None = None,
    record: dict[str, Any] | None = None,
) -> None:
    """Store the state after round ``round_`` (0: the start): data, posterior, the round's plan and record."""
    buf = io.StringIO()
    data.to_csv(buf, index=False)
    write_atomic(d / "data.csv", buf.getvalue())
    save_posterior(post, d / "posterior.npz", round=round_)
    if plan_table is not None:
        plan_table.to_csv(d / f"plan_round{round_}.csv", index=False)
    if round_ > 0:
        with open(d / "rounds.jsonl", "a") as fh:
            fh.write(dumps(record) + "\n")
    elif not (d / "rounds.jsonl").exists():
        write_atomic(d / "rounds.jsonl", "")


def read_loop_state(d: Path) -> tuple[dict[str, Any], list[dict[str, Any]], pd.DataFrame, Posterior | None]:
    """The config, the round records, the data up to the last recorded round and its posterior (None if stale).

    The posterior is returned only when it was stored after the last recorded round; otherwise the loop
    must refit (an interruption between storing the data and the record).
    """
    if not (d / "config.json").exists():
        raise BayesDCPTError(f"{d} holds no loop state (config.json missing)")
    cfg = json.loads((d / "config.json").read_text())
    lines = (
        [ln for ln in (d / "rounds.jsonl").read_text().splitlines() if ln.strip()]
        if (d / "rounds.jsonl").exists()
        else []
    )
    history = [json.loads(ln) for ln in lines]
    done = len(history)
    data = pd.read_csv(d / "data.csv")
    data = data[data["loop_round"] <= done].reset_index(drop=True)
    post = None
    if (d / "posterior.npz").exists():
        post, meta = load_posterior(d / "posterior.npz")
        if int(meta.get("round", -1)) != done:
            post = None
    return cfg, history, data, post
