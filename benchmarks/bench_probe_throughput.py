"""Probe runner throughput against a bare PyTorch loop on the same model and batch.

The bare loop is the least a training step can do: a fresh preset model, AdamW with the same settings,
batches prepared in advance, forward, cross-entropy, backward, optimizer step. The runner is
:func:`bayes_dcpt.probe.run_probe` on the same preset, batch and token count, with its data stream,
mixture sampling, LR schedule and gradient clipping; its throughput counts whole steps (data included),
and a second ratio includes its evaluations (base and final) and store writes.
Runs are interleaved (bare then runner, runner then bare, ...) after one warm-up, and the medians compared.

Usage::

    python benchmarks/bench_probe_throughput.py [--presets tiny small] [--steps 64] [--reps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bayes_dcpt.probe import ProbeConfig, TrainSettings, build_preset, gather_stdlib, run_probe
from bayes_dcpt.probe.corpora import Corpus, TokenStream
from benchmarks._common import machine, md_table


def bare_loop(preset: str, batches: np.ndarray, st: TrainSettings) -> float:
    """Tokens per second of the minimal loop over the prepared batches."""
    model = build_preset(preset, seed=0).model
    model.train()
    opt = torch.optim.AdamW(
        model.parameters(), lr=st.lr, betas=(st.beta1, st.beta2), weight_decay=st.weight_decay
    )
    t0 = time.perf_counter()
    for b in batches:
        x = torch.from_numpy(b)
        logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    dt = time.perf_counter() - t0
    return batches.shape[0] * st.batch_size * st.seq_len / dt


def runner(preset: str, corp: Path, steps: int, st: TrainSettings, db: Path) -> tuple[float, float]:
    """(step throughput, end-to-end throughput including evaluations and store writes) of run_probe."""
    tokens = steps * st.batch_size * st.seq_len
    cfg = ProbeConfig(
        base=preset,
        general=str(corp / "general.jsonl"),
        domain=str(corp / "python.jsonl"),
        domain_name="python",
        r_domain=0.5,
        tokens=tokens,
        eval_first=tokens,
        val_tokens=4096,
        train=st,
    )
    t0 = time.perf_counter()
    res = run_probe(cfg, db=db, force=True)
    wall = time.perf_counter() - t0
    return res.tokens_per_second, res.tokens_trained / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small"])
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    st = TrainSettings(seq_len=128, batch_size=16, lr=5e-4, warmup_steps=10, threads=a.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corp = Path(tmp) / "corpora"
        gather_stdlib(corp)
        stream = TokenStream(Corpus(corp / "general.jsonl", name="general"), st.seq_len, seed=0)
        batches = stream.take(a.steps * st.batch_size).reshape(a.steps, st.batch_size, st.seq_len + 1)
        for preset in a.presets:
            bare, run, e2e = [], [], []
            bare_loop(preset, batches[:2], st)  # warm up kernels and allocator outside the timings
            for rep in range(a.reps):
                # alternate which goes first, so a burst of load from other jobs hits both sides alike
                if rep % 2 == 0:
                    bare.append(bare_loop(preset, batches, st))
                r, e = runner(preset, corp, a.steps, st, Path(tmp) / f"{preset}-{rep}.sqlite")
                run.append(r)
                e2e.append(e)
                if rep % 2 == 1:
                    bare.append(bare_loop(preset, batches, st))
            b, r, e = statistics.median(bare), statistics.median(run), statistics.median(e2e)
            n = build_preset(preset).n_params
            rows.append(
                {
                    "preset": preset,
                    "N": n,
                    "bare tok/s": round(b),
                    "runner tok/s": round(r),
                    "ratio (steps)": round(r / b, 3),
                    "runner incl. eval tok/s": round(e),
                    "ratio (incl. eval)": round(e / b, 3),
                }
            )
            print(rows[-1], flush=True)
    print()
    print(
        f"Machine: {machine()}, torch {torch.__version__}, {a.threads} thread(s), batch {st.batch_size}x"
        f"{st.seq_len}, {a.steps} steps, median of {a.reps} interleaved repetitions"
    )
    print()
    print(md_table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
