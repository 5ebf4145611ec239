"""Probe runs: small continual-pre-training runs whose losses feed the D-CPT fit (needs the ``probe`` extra).

A probe takes a base causal LM, trains it on a mixture of general and domain text with domain share r,
and appends the general and domain validation losses at a schedule of token counts to the experiment
store (:mod:`bayes_dcpt.store`).

Quickstart (Python)::

    >>> from bayes_dcpt.probe import PretrainConfig, ProbeConfig, pretrain, run_probe, gather_stdlib
    >>> gather_stdlib("corpora")                                   # offline example corpora
    >>> pretrain(PretrainConfig("tiny", "corpora/general.jsonl", tokens=2**21, out="bases/tiny"))
    >>> run_probe(ProbeConfig(base="bases/tiny", general="corpora/general.jsonl",
    ...                       domain="corpora/python.jsonl", domain_name="python",
    ...                       r_domain=0.25, tokens=2**19), db="runs.sqlite")

Command line::

    bayes-dcpt probe pretrain --preset tiny --general corpora/general.jsonl --tokens 2097152 --out bases/tiny
    bayes-dcpt probe run --model bases/tiny --general corpora/general.jsonl --domain corpora/python.jsonl \\
        --domain-name python --ratio 0.25 --tokens 524288 --db runs.sqlite
    bayes-dcpt probe grid bayes_dcpt/datasets/example_grid.toml --db runs.sqlite --workers 2

Modules: :mod:`~bayes_dcpt.probe.corpora` (documents, validation hold-out, token streams),
:mod:`~bayes_dcpt.probe.models` (presets, loading, safe checkpoints), :mod:`~bayes_dcpt.probe.schedule`
(LR and evaluation schedules), :mod:`~bayes_dcpt.probe.train` (the loop), :mod:`~bayes_dcpt.probe.grid`
(grids of probes over processes or Ray).
"""

from bayes_dcpt.probe.corpora import Corpus, CorpusError, TokenStream, gather_stdlib, iter_documents
from bayes_dcpt.probe.models import (
    PRESETS,
    CheckpointError,
    ModelError,
    build_preset,
    count_params,
    load_base,
    safe_torch_load,
)
from bayes_dcpt.probe.schedule import eval_tokens, lr_at
from bayes_dcpt.probe.train import (
    PretrainConfig,
    ProbeConfig,
    ProbeConfigError,
    ProbeResult,
    TrainSettings,
    evaluate,
    pretrain,
    probe_run_id,
    run_probe,
)

__all__ = [
    "PRESETS",
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
    "run_probe",
    "safe_torch_load",
]
