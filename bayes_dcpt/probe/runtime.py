"""Where a probe runs: the device, the data-parallel group under ``torchrun``, and the throughput it reaches.

CPU by default without CUDA; with CUDA, bf16 autocast. Under ``torchrun`` (``WORLD_SIZE > 1``) the loop runs
data-parallel (DDP; gloo on CPU, NCCL on CUDA) and every rank draws the same global batch. Each CUDA-only step
is its own small function, so the CPU path reads straight through. Model FLOP utilisation is reported
against the peak bf16 FLOP/s of the accelerator when its name is known.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from bayes_dcpt.probe.configs import ProbeConfigError, TrainSettings
from bayes_dcpt.probe.networks import LoadedModel

__all__ = [
    "PEAK_FLOPS",
    "Runtime",
    "all_reduce",
    "autocast",
    "autocast_enabled",
    "barrier",
    "broadcast",
    "compile_wanted",
    "flops_per_token",
    "fused_adamw",
    "make_runtime",
    "mfu",
    "peak_flops",
    "runtime",
    "synchronize",
    "unwrap",
]

#: Peak dense bf16 FLOP/s of common accelerators, for model FLOP utilisation (matched by name).
PEAK_FLOPS = {
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10": 125e12,
    "L4": 121e12,
    "4090": 165e12,
    "3090": 71e12,
    "V100": 125e12,
    "T4": 65e12,
}


@dataclass
class Runtime:
    """The device of this process, its rank in the data-parallel group, and whether to autocast to bf16."""

    device: torch.device
    rank: int = 0
    world: int = 1
    ddp: bool = False
    autocast: bool = False
    #: This process joined the data-parallel group itself (under ``torchrun``), so it leaves it when done.
    owns_group: bool = False

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the process that writes results)."""
        return self.rank == 0


def make_runtime(settings: TrainSettings) -> Runtime:
    """The runtime the settings ask for; joins the process group when launched by ``torchrun``."""
    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and settings.device != "cpu"
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise ProbeConfigError("device cuda requested but CUDA is not available")
    if world > 1:
        rank, dev, joined = _join_process_group(cuda)
    else:
        rank, dev, joined = 0, (_cuda_device(settings) if cuda else torch.device("cpu")), False
    return Runtime(dev, rank, world, world > 1, autocast=autocast_enabled(dev), owns_group=joined)


@contextmanager
def runtime(settings: TrainSettings) -> Iterator[Runtime]:
    """:func:`make_runtime` for one run; when the run succeeds, every rank leaves the group it joined.

    PyTorch asks for ``destroy_process_group`` before exit; a group left joined is torn down at interpreter exit,
    rank by rank in no set order. The barrier first means no rank closes its connections while another still
    uses them (a teardown without it aborted a gloo rank now and then in our tests: SIGABRT after the results
    were stored, which ``torchrun`` reports as a failed launch). A group the caller created stays theirs. After
    an error the group is not touched: the other ranks may be inside a collective, and ``torchrun`` stops them.
    """
    rt = make_runtime(settings)
    yield rt
    if rt.owns_group:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def autocast_enabled(device: torch.device) -> bool:
    """Whether a probe on ``device`` computes in bf16 autocast: on CUDA yes, on CPU no (fp32, as measured)."""
    return device.type == "cuda"


def autocast(rt: Runtime) -> torch.autocast:
    """The autocast context of a forward pass: bf16 on CUDA, disabled (fp32) elsewhere."""
    return torch.autocast(rt.device.type, dtype=torch.bfloat16, enabled=rt.autocast)


def compile_wanted(setting: bool | None, device: torch.device) -> bool:
    """Whether to ``torch.compile`` the model: as the settings say, else on CUDA only.

    Compilation costs more than it saves in a short CPU probe.
    """
    return bool(setting) if setting is not None else device.type == "cuda"


def fused_adamw(device: torch.device) -> bool:
    """Whether AdamW uses its fused CUDA kernel (CUDA only; the CPU path keeps the reference implementation)."""
    return device.type == "cuda"


def _join_process_group(cuda: bool) -> tuple[int, torch.device, bool]:
    """The rank, its device, and whether this process joined the group here (False: the caller had initialised it)."""
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if cuda else "gloo")
    return rank, (_cuda_local_device(local) if cuda else torch.device("cpu")), joined


def _cuda_local_device(local: int) -> torch.device:
    """CUDA only: this rank's GPU, made the current device."""
    dev = torch.device(f"cuda:{local}")
    torch.cuda.set_device(dev)
    return dev


def _cuda_device(settings: TrainSettings) -> torch.device:
    """CUDA only: the GPU the settings name (``cuda:i``), or the current one."""
    return torch.device(settings.device if settings.device.startswith("cuda") else "cuda")


def synchronize(rt: Runtime) -> None:
    """Wait for the GPU to finish (CUDA only; a no-op on CPU), so step timings are real."""
    if rt.device.type == "cuda":
        torch.cuda.synchronize(rt.device)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model under ``torch.compile`` and DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


# ------------------------------------------------------------------------------------- process group
def all_reduce(t: torch.Tensor, rt: Runtime) -> None:
    """Sum ``t`` over the ranks in place (a no-op without DDP)."""
    if rt.ddp:
        import torch.distributed as dist

        dist.all_reduce(t)


def barrier(rt: Runtime) -> None:
    """Wait for every rank (a no-op without DDP)."""
    if rt.ddp:
        import torch.distributed as dist

        dist.barrier()


def broadcast(obj: Any, rt: Runtime) -> Any:
    """Rank 0's value on every rank."""
    if not rt.ddp:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------------------------------- throughput
def peak_flops(device: torch.device) -> float | None:
    """Peak bf16 FLOP/s of a CUDA device whose name is in :data:`PEAK_FLOPS` (else, and on CPU, None)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, v in PEAK_FLOPS.items():
        if key in name:
            return v
    return None


def flops_per_token(n_params: int, layers: int, hidden: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N plus attention 12 L d T (the PaLM appendix B formula)."""
    return 6.0 * n_params + 12.0 * layers * hidden * seq_len


def _layers_hidden(model: torch.nn.Module) -> tuple[int, int]:
    cfg = getattr(unwrap(model), "config", None)
    return int(getattr(cfg, "num_hidden_layers", 0) or 0), int(getattr(cfg, "hidden_size", 0) or 0)


def mfu(loaded: LoadedModel, settings: TrainSettings, tok_s: float, rt: Runtime) -> float | None:
    """Model FLOP utilisation of ``tok_s`` tokens/s over every rank (None when the peak is unknown)."""
    peak = peak_flops(rt.device)
    if peak is None or tok_s <= 0:
        return None
    layers, hidden = _layers_hidden(loaded.model)
    return tok_s * flops_per_token(loaded.n_params, layers, hidden, settings.seq_len) / (peak * rt.world)
