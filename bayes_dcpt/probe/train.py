"""The probe training API in one import: configure, pretrain, run and evaluate probes.

The stable import path for scripts and notebooks (``from bayes_dcpt.probe.train import ProbeConfig,
run_probe``); the code lives in small modules: :mod:`~bayes_dcpt.probe.configs` (settings and results),
:mod:`~bayes_dcpt.probe.runtime` (device, DDP, throughput), :mod:`~bayes_dcpt.probe.loop` (the training
loop), :mod:`~bayes_dcpt.probe.evaluation`, :mod:`~bayes_dcpt.probe.checkpoint` (resume),
:mod:`~bayes_dcpt.probe.run` (one probe into the store) and :mod:`~bayes_dcpt.probe.pretraining`.

Quickstart::

    >>> from bayes_dcpt.probe import ProbeConfig, run_probe
    >>> cfg = ProbeConfig(base="bases/tiny", general="corpora/general.jsonl", domain="corpora/python.jsonl",
    ...                   domain_name="python", r_domain=0.5, tokens=2**19, seed=0)
    >>> res = run_probe(cfg, db="runs.sqlite")       # every evaluation is committed as it is measured
    >>> res.tokens_per_second, res.run_id
"""

from __future__ import annotations

from bayes_dcpt.probe.configs import PretrainConfig, ProbeConfig, ProbeConfigError, ProbeResult, TrainSettings
from bayes_dcpt.probe.evaluation import evaluate
from bayes_dcpt.probe.pretraining import LR_TRACE_FILE, base_schedule, pretrain
from bayes_dcpt.probe.run import probe_run_id, run_probe
from bayes_dcpt.probe.runtime import PEAK_FLOPS

__all__ = [
    "LR_TRACE_FILE",
    "PEAK_FLOPS",
    "PretrainConfig",
    "ProbeConfig",
    "ProbeConfigError",
    "ProbeResult",
    "TrainSettings",
    "base_schedule",
    "evaluate",
    "pretrain",
    "probe_run_id",
    "run_probe",
]
