"""Resume checkpoints of a probe: model, optimizer, data positions and random states in one file.

A checkpoint is written after every evaluation and every ``checkpoint_every`` steps (atomically: a
temporary file then a rename), so ``resume=True`` continues a killed probe exactly. It is read with
:func:`~bayes_dcpt.probe.networks.safe_torch_load` (weights only: a pickle that would run code is refused),
and one that does not fit the run is a :class:`~bayes_dcpt.probe.networks.CheckpointError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from bayes_dcpt.probe.networks import CheckpointError, safe_torch_load
from bayes_dcpt.probe.runtime import unwrap

__all__ = ["checkpoint_path", "restore_checkpoint", "safe_name", "save_checkpoint"]


def safe_name(run_id: str) -> str:
    """``run_id`` as a file name (every character but letters, digits and ``-_.=+`` replaced by ``_``)."""
    return "".join(c if c.isalnum() or c in "-_.=+" else "_" for c in run_id)


def checkpoint_path(checkpoint_dir: str | None, run_id: str) -> Path | None:
    """The resume checkpoint of a run in ``checkpoint_dir`` (None: the run keeps no checkpoint)."""
    return Path(checkpoint_dir) / (safe_name(run_id) + ".pt") if checkpoint_dir else None


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Write the model, the optimizer, torch's random state and the loop's ``state`` to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    payload = {
        "model": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "optim": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "state": json.dumps(state),
    }
    torch.save(payload, tmp)
    os.replace(tmp, path)


def restore_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Load the checkpoint at ``path`` into ``model`` and ``opt``; returns the loop's saved state."""
    ck = safe_torch_load(path)
    try:
        unwrap(model).load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        torch.set_rng_state(ck["torch_rng"])
        return json.loads(ck["state"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not match this run ({exc})") from exc
