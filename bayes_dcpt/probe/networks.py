"""Models for probes: byte-level Llama-style presets built from a config, or a local Hugging Face checkpoint.

* :data:`PRESETS` -- small decoders (vocabulary 256: the UTF-8 bytes, so no tokenizer file) built with
  ``transformers.LlamaConfig`` (RMSNorm, rotary positions, SwiGLU, tied embeddings); no download.
* :func:`load_base` -- a base checkpoint directory: one written by ``bayes-dcpt probe pretrain``
  (safetensors weights + ``probe_meta.json``), or any Hugging Face causal-LM directory with its tokenizer.
  Remote code is never executed unless ``trust_remote_code=True`` is passed explicitly.
* :func:`safe_torch_load` -- ``torch.load(..., weights_only=True)`` that turns a refused (e.g. malicious)
  pickle into a :class:`CheckpointError`.

Parameter counts: :func:`count_params` returns the non-embedding count (every weight except the
token-embedding matrix, which is tied to the output head), the N of the scaling laws here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bayes_dcpt.errors import BayesDCPTError

__all__ = [
    "PRESETS",
    "CheckpointError",
    "LoadedModel",
    "ModelError",
    "build_preset",
    "count_params",
    "load_base",
    "safe_torch_load",
    "save_base",
]

#: name -> (hidden size, layers, heads, MLP width); ~non-embedding parameters in the comment.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "micro": (32, 1, 2, 96),  # ~12k  (tests)
    "tiny": (64, 2, 4, 176),  # ~0.1M
    "small": (96, 4, 4, 256),  # ~0.44M
    "medium": (128, 4, 4, 352),  # ~0.8M
    "large": (160, 6, 5, 432),  # ~1.9M
    "xl": (256, 8, 8, 688),  # ~6.3M
    "xxl": (512, 8, 8, 1376),  # ~25M
}
META_FILE = "probe_meta.json"


class ModelError(BayesDCPTError):
    """An unknown preset, a missing or unusable model directory."""


class CheckpointError(BayesDCPTError):
    """A checkpoint file that is missing, corrupt, or not a plain weights file (refused)."""


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256); token 0 (NUL, absent from text) separates documents."""

    vocab_size = 256
    eos_id = 0
    name = "bytes"

    def encode(self, piece: bytes) -> np.ndarray:
        return np.frombuffer(piece, dtype=np.uint8).astype(np.int64)


class HFTokenizer:
    """A Hugging Face tokenizer behind the same two-method interface."""

    def __init__(self, tok: Any, name: str):
        self.tok = tok
        self.name = name
        self.vocab_size = len(tok)
        eos = tok.eos_token_id
        self.eos_id = int(eos if eos is not None else (tok.pad_token_id or 0))

    def encode(self, piece: bytes) -> np.ndarray:
        ids = self.tok(piece.decode("utf-8", errors="replace"), add_special_tokens=False)["input_ids"]
        return np.asarray(ids, dtype=np.int64)


@dataclass
class LoadedModel:
    """A model ready for training with its tokenizer and description."""

    model: torch.nn.Module
    tokenizer: ByteTokenizer | HFTokenizer
    name: str
    meta: dict[str, Any]

    @property
    def n_params(self) -> int:
        """Non-embedding parameter count (the N of the scaling laws)."""
        return count_params(self.model)

    @property
    def n_params_total(self) -> int:
        """Parameter count including the token embeddings."""
        return count_params(self.model, embeddings=True)


def preset_config(preset: str, max_len: int = 1024):
    """The ``LlamaConfig`` of a preset; unknown names raise :class:`ModelError`."""
    from transformers import LlamaConfig

    if preset not in PRESETS:
        raise ModelError(
            f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)} or give a directory"
        )
    d, layers, heads, ffn = PRESETS[preset]
    cfg = LlamaConfig(
        vocab_size=256,
        hidden_size=d,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_len,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=0,
        rope_theta=10000.0,
    )
    cfg._attn_implementation = "sdpa"
    return cfg


def build_preset(preset: str, seed: int = 0, max_len: int = 1024) -> LoadedModel:
    """A freshly initialised byte-level model of a preset size (deterministic given ``seed``)."""
    from transformers import LlamaForCausalLM

    cfg = preset_config(preset, max_len)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    return LoadedModel(
        model, ByteTokenizer(), preset, {"preset": preset, "tokenizer": "bytes", "init_seed": seed}
    )


def count_params(model: torch.nn.Module, embeddings: bool = False) -> int:
    """Parameters of ``model``; without the token-embedding matrix unless ``embeddings=True``.

    Tied output heads share the embedding tensor, so they are excluded with it. A parameter partitioned by
    DeepSpeed ZeRO-3 counts with its full size (``ds_numel``), not the empty shard this process holds.
    """
    seen: set[int] = set()
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    emb_ids = {id(p) for p in emb.parameters()} if emb is not None and not embeddings else set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or id(p) in emb_ids:
            continue
        seen.add(id(p))
        total += int(getattr(p, "ds_numel", p.numel()))
    return total


def save_base(loaded: LoadedModel, out: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save a base model as a Hugging Face directory (safetensors) plus ``probe_meta.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = loaded.model
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)
    with _quiet_hf():
        model.save_pretrained(out, safe_serialization=True)
    if isinstance(loaded.tokenizer, HFTokenizer):
        loaded.tokenizer.tok.save_pretrained(out)
    meta = {
        **loaded.meta,
        "name": loaded.name,
        "n_params": count_params(model),
        "n_params_total": count_params(model, embeddings=True),
        **(extra or {}),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return out


@contextmanager
def _quiet_hf() -> Iterator[None]:
    """No per-file progress bars from transformers while loading or saving (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def load_base(path: str | Path, trust_remote_code: bool = False) -> LoadedModel:
    """Load a base model directory (from ``probe pretrain`` or any local Hugging Face causal LM).

    Parameters
    ----------
    path
        The directory (``config.json`` and weights; a tokenizer unless it is a byte-level probe model).
    trust_remote_code
        Allow the directory's own Python code to run (never the default).
    """
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if not p.is_dir():
        raise ModelError(
            f"model directory not found: {p} (or an unknown preset; presets: {', '.join(PRESETS)})"
        )
    if not (p / "config.json").is_file():
        raise ModelError(f"{p} is not a Hugging Face model directory (no config.json)")
    try:
        hf_cfg = json.loads((p / "config.json").read_text())
    except ValueError as exc:
        raise ModelError(f"{p}/config.json is not valid JSON ({exc})") from exc
    if hf_cfg.get("auto_map") and not trust_remote_code:
        raise ModelError(
            f"{p} ships its own model code (auto_map in config.json); it is not run unless you pass "
            "--trust-remote-code (trust_remote_code=True) and trust its author"
        )
    meta: dict[str, Any] = {}
    if (p / META_FILE).is_file():
        meta = json.loads((p / META_FILE).read_text())
    try:
        with _quiet_hf():
            model = AutoModelForCausalLM.from_pretrained(  # a local directory: never a download
                p, trust_remote_code=trust_remote_code, dtype=torch.float32, local_files_only=True
            )
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        if "trust_remote_code" in str(exc):
            raise ModelError(
                f"{p} needs its own Python code to load; pass --trust-remote-code only if you trust it "
                f"({msg})"
            ) from exc
        raise ModelError(f"cannot load the model in {p}: {msg}") from exc
    except OSError as exc:
        raise ModelError(f"cannot load the model in {p}: {str(exc).splitlines()[0]}") from exc
    if meta.get("tokenizer") == "bytes":
        tok: ByteTokenizer | HFTokenizer = ByteTokenizer()
    else:
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(p, trust_remote_code=trust_remote_code, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{p} has no usable tokenizer: {str(exc).splitlines()[0]}") from exc
        tok = HFTokenizer(hf, str(p))
        meta = {**meta, "tokenizer": str(p)}
    return LoadedModel(model, tok, meta.get("name", p.name), {**meta, "path": str(p.resolve())})


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain containers only, never arbitrary code."""
    import pickle

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling refused"
        raise CheckpointError(
            f"{p}: refused to load: not a plain weights file (weights_only=True rejected it: {first})"
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(
            f"{p}: corrupt or truncated checkpoint ({str(exc).strip().splitlines()[0]})"
        ) from exc
