"""A tiny randomly initialised Llama trained with the real ``transformers.Trainer`` on CPU in seconds.

Used by the Trainer-callback and importer tests and by ``scripts/make_trainer_example.py`` (the embedded
example logs): one general and one domain token stream, a mixture at ratio r, two evaluation sets, a
checkpoint every ``save_steps`` and, when asked, a crash after a given step (an exception out of a callback,
as a killed process leaves its checkpoints and store behind).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

VOCAB, SEQ, BATCH = 64, 16, 4


class Killed(RuntimeError):
    """The simulated kill of a training process."""


def token_set(seed: int, n: int, low: int, high: int):
    """``n`` fixed-length sequences of token ids in ``[low, high)`` as a torch Dataset of input_ids/labels."""
    import torch

    rng = np.random.default_rng(seed)
    ids = torch.from_numpy(rng.integers(low, high, size=(n, SEQ), dtype=np.int64))

    class _Set(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": ids[i], "labels": ids[i]}

    return _Set()


def tiny_model(seed: int = 0):
    """A 2-layer Llama (hidden 32, vocabulary 64) built from its config: no download."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, pad_token_id=0)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def datasets(r_domain: float = 0.25):
    """The training mixture (domain share r) and the two evaluation sets: general ids 1-47, domain ids 32-63."""
    import torch

    n_dom = round(64 * r_domain)
    train = torch.utils.data.ConcatDataset([token_set(1, 64 - n_dom, 1, 48), token_set(2, n_dom, 32, 64)])
    return train, {"general": token_set(3, 8, 1, 48), "domain": token_set(4, 8, 32, 64)}


def wandb_history(log_history: list[dict]):
    """A Trainer's log history in the layout of a W&B run-history CSV export: one row per log call.

    The keys are those W&B's Trainer integration logs (``rewrite_logs``: ``eval_x`` -> ``eval/x``, others ->
    ``train/x``, plus ``train/global_step``), with W&B's ``_step``, ``_runtime`` and ``_timestamp`` columns.
    """
    import pandas as pd
    from transformers.integrations.integration_utils import rewrite_logs

    rows = []
    for i, entry in enumerate(log_history):
        entry = dict(entry)
        step = entry.pop("step")
        rows.append({"_step": i, "_runtime": float(i), "_timestamp": 1.7e9 + i, **rewrite_logs(entry),
                     "train/global_step": step})
    return pd.DataFrame(rows)


def train(out: Path, callbacks: list, *, max_steps: int = 8, kill_after: int | None = None,
          resume: bool = False, report_to: list[str] | None = None, count_tokens: bool = True,
          eval_on_start: bool = True) -> Any:
    """Train the tiny model with ``callbacks`` into ``out`` (evaluate every 2 steps, save every 4); the Trainer."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class _Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if kill_after is not None and state.global_step == kill_after:
                raise Killed(f"killed after step {kill_after}")

    args = TrainingArguments(
        output_dir=str(out), max_steps=max_steps, per_device_train_batch_size=BATCH, per_device_eval_batch_size=8,
        learning_rate=3e-3, lr_scheduler_type="linear", warmup_steps=2, eval_strategy="steps", eval_steps=2,
        eval_on_start=eval_on_start, save_strategy="steps", save_steps=4, logging_steps=1, report_to=report_to or [],
        use_cpu=True, seed=7, data_seed=7, include_num_input_tokens_seen=count_tokens, disable_tqdm=True,
        dataloader_num_workers=0,
    )
    train_set, evals = datasets()
    trainer = Trainer(model=tiny_model(), args=args, train_dataset=train_set, eval_dataset=evals,
                      callbacks=[*callbacks, _Kill()])
    last = None
    if resume:
        ckpts = sorted(Path(out).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        last = str(ckpts[-1])
    trainer.train(resume_from_checkpoint=last)
    return trainer
