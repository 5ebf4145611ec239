"""Validation loss of a model: mean next-token loss in nats per token over a held-out token slice.

The slice is cut into non-overlapping windows of ``seq_len + 1`` tokens; under DDP each rank takes every
``world``-th window and the sums are reduced, so the loss is the same on any number of processes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bayes_dcpt.probe.configs import ProbeConfigError
from bayes_dcpt.probe.runtime import Runtime, all_reduce, autocast

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, tokens: np.ndarray, seq_len: int, batch_size: int, rt: Runtime | None = None
) -> float:
    """Mean next-token loss (nats per token) over non-overlapping windows of ``tokens``."""
    rt = rt or Runtime(next(model.parameters()).device)
    n = (len(tokens) - 1) // seq_len
    if n < 1:
        raise ProbeConfigError(
            f"the validation slice ({len(tokens)} tokens) is shorter than one sequence ({seq_len + 1})"
        )
    idx = np.arange(n)[rt.rank :: rt.world]
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=rt.device)
    for s in range(0, len(idx), batch_size):
        rows = idx[s : s + batch_size]
        x = np.stack([tokens[i * seq_len : i * seq_len + seq_len + 1] for i in rows])
        xt = torch.from_numpy(x).to(rt.device, non_blocking=True)
        with autocast(rt):
            logits = model(input_ids=xt[:, :-1]).logits
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), xt[:, 1:].reshape(-1), reduction="sum"
        )
        total[0] += loss.double()
        total[1] += xt[:, 1:].numel()
    all_reduce(total, rt)
    model.train(was_training)
    return float(total[0] / total[1])
