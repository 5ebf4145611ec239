r"""Probe runs: small continual-pre-training runs whose losses feed the D-CPT fit (needs the ``probe`` extra).

A probe takes a base causal LM, trains it on a mixture of general and domain text with domain share r,
and appends the general and domain validation losses at a schedule of token counts to the experiment
store (:mod:`bayes_dcpt.data.store`).

Quickstart (Python)::

    >>> from bayes_dcpt.probe import PretrainConfig, ProbeConfig, pretrain, run_probe, gather_stdlib
    >>> gather_stdlib("corpora")                                   # offline example corpora
    >>> pretrain(PretrainConfig("tiny", "corpora/general.jsonl", tokens=2**21, out="bases/tiny"))
    >>> run_probe(ProbeConfig(base="bases/tiny", general="corpora/general.jsonl",
    ...                       domain="corpora/python.jsonl", domain_name="python",
    ...                       r_domain=0.25, tokens=2**19), db="runs.sqlite")

Command line::

    bayes-dcpt probe pretrain --preset tiny --general corpora/general.jsonl --tokens 2097152 --out bases/tiny
    bayes-dcpt probe run --model bases/tiny --general corpora/general.jsonl --domain corpora/python.jsonl \
        --domain-name python --ratio 0.25 --tokens 524288 --db runs.sqlite
    bayes-dcpt probe grid bayes_dcpt/datasets/example_grid.toml --db runs.sqlite --workers 2

Modules: :mod:`~bayes_dcpt.probe.corpora` (documents, validation hold-out, token streams),
:mod:`~bayes_dcpt.probe.networks` (presets, loading, safe checkpoints), :mod:`~bayes_dcpt.probe.timeline`
(LR and evaluation schedules), :mod:`~bayes_dcpt.probe.configs` (settings and results),
:mod:`~bayes_dcpt.probe.runtime` (device, DDP, throughput), :mod:`~bayes_dcpt.probe.loop` (the training loop),
:mod:`~bayes_dcpt.probe.evaluation`, :mod:`~bayes_dcpt.probe.checkpoint` (resume), :mod:`~bayes_dcpt.probe.run`
(one probe into the store), :mod:`~bayes_dcpt.probe.pretraining` (base models), :mod:`~bayes_dcpt.probe.train`
(all of these in one import), :mod:`~bayes_dcpt.probe.grid` (grids of probes over processes or Ray),
:mod:`~bayes_dcpt.probe.trainer_callback` (:class:`BayesDCPTCallback`: your own ``transformers.Trainer`` runs
write into the store as they evaluate).
"""

from __future__ import annotations

import importlib
from typing import Any

from bayes_dcpt.errors import BayesDCPTError

# Names re-exported lazily (PEP 562): ``import bayes_dcpt.probe`` stays cheap and works without torch, so that
# a missing ``probe`` extra is one clear error from :func:`require_extra`, not an ImportError at import time.
_LAZY = {
    "corpora": ("Corpus", "CorpusError", "TokenStream", "gather_stdlib", "iter_documents"),
    "networks": ("PRESETS", "CheckpointError", "ModelError", "build_preset", "count_params", "load_base",
                 "safe_torch_load"),
    "timeline": ("eval_tokens", "lr_at"),
    "configs": ("PretrainConfig", "ProbeConfig", "ProbeConfigError", "ProbeResult", "TrainSettings"),
    "evaluation": ("evaluate",),
    "pretraining": ("pretrain",),
    "run": ("probe_run_id", "run_probe"),
    "trainer_callback": ("BayesDCPTCallback",),
}
_WHERE = {name: mod for mod, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"bayes_dcpt.probe.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'bayes_dcpt.probe' has no attribute {name!r}")


def require_extra() -> None:
    """Check that torch and transformers (the ``probe`` extra) are installed; quiet Hugging Face's logging."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise BayesDCPTError(f"probe runs need the probe extra: pip install 'bayes-dcpt[probe]' ({exc})") from exc
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


__all__ = [
    "PRESETS",
    "BayesDCPTCallback",
    "CheckpointError",
    "Corpus",
    "CorpusError",
    "ModelError",
    "PretrainConfig",
    "ProbeConfig",
    "ProbeConfigError",
    "ProbeResult",
    "TokenStream",
    "TrainSettings",
    "build_preset",
    "count_params",
    "eval_tokens",
    "evaluate",
    "gather_stdlib",
    "iter_documents",
    "load_base",
    "lr_at",
    "pretrain",
    "probe_run_id",
    "require_extra",
    "run_probe",
    "safe_torch_load",
]
