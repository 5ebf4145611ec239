"""A ``transformers.Trainer`` callback that writes every evaluation into the experiment store as it happens.

Teams run their CPT probes with their own stack, most often the Hugging Face ``Trainer`` (or TRL or
Accelerate on top of it). Add :class:`BayesDCPTCallback` to such a Trainer with two evaluation sets, the
``eval_dataset={"general": ..., "domain": ...}`` dict the Trainer already supports, and each evaluation
becomes measurements of the schema in :mod:`bayes_dcpt.data.store`, written (and committed) the moment the
Trainer logs it::

    from transformers import Trainer, TrainingArguments
    from bayes_dcpt.probe import BayesDCPTCallback

    args = TrainingArguments("out", eval_strategy="steps", eval_steps=50, eval_on_start=True, ...)
    cb = BayesDCPTCallback("runs.sqlite", domain="python", r_domain=0.25, seq_len=1024)
    Trainer(model, args, train_dataset=mix, eval_dataset={"general": gen_val, "domain": py_val},
            callbacks=[cb]).train()

What each measurement holds:

* ``tokens``: the Trainer's own count (``state.num_input_tokens_seen``) when it keeps one
  (``include_num_input_tokens_seen``), else ``global_step x global batch x seq_len`` (the global batch is
  ``per_device_train_batch_size x gradient_accumulation_steps x world_size``; or give ``tokens_per_step``).
* ``n_params``: counted from the model, non-embedding parameters (:func:`~bayes_dcpt.probe.networks.count_params`,
  the convention of the schema), unless given.
* the base model: the evaluation at step 0 (``TrainingArguments(eval_on_start=True)``, or ``trainer.evaluate()``
  before ``trainer.train()``) is stored as ``tokens == 0`` under the base run ``base|<domain>|N=<n>``. Training
  does not start without one (stored now or before), so every run can be fitted with the base-anchored law.
* ``run_id`` (``<domain>|N=<n>|r=<r>|seed=<args.seed>`` unless given), ``step``, and ``lr``: the learning rate
  the Trainer logs at that step (the one its last optimizer step used); the LR of every optimizer step is kept
  as the run's LR trace.

Resuming from a Trainer checkpoint duplicates nothing: a measurement is keyed by (run, tokens, eval set), an
evaluation already stored is not written again (a re-measurement that differs is kept out, with a warning), and
the LR trace continues from the checkpoint's step. Only the main process writes.
"""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from bayes_dcpt.data.store import Store, StoreConflictError, base_run_id, host_name
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.probe.networks import count_params
from bayes_dcpt.probe.run import probe_run_id
from bayes_dcpt.probe.runtime import unwrap

__all__ = ["BayesDCPTCallback", "trainer_counts_tokens"]


def trainer_counts_tokens(args: Any) -> bool:
    """Whether the Trainer keeps ``state.num_input_tokens_seen`` (``include_num_input_tokens_seen``)."""
    flag = getattr(args, "include_num_input_tokens_seen", False)
    return flag not in (False, None, "no")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BayesDCPTCallback(TrainerCallback):
    """Write each evaluation of a ``transformers.Trainer`` into a bayes-dcpt experiment store.

    Parameters
    ----------
    store
        The experiment store (SQLite file; created when absent).
    domain
        The domain corpus of the run (the ``domain`` of the schema; no ``|``).
    r_domain
        The domain share of the run's training mixture, in [0, 1].
    n_params
        N; default: the model's non-embedding parameters (give it under DeepSpeed ZeRO-3 or FSDP when the
        parameters are sharded and cannot be counted from one process).
    run_id, seed
        The run's id (default ``<domain>|N=<n>|r=<r>|seed=<seed>``) and seed (default ``args.seed``).
    general_eval, domain_eval
        The names of the general and domain sets in ``eval_dataset`` (metric keys ``eval_<name>_loss``).
    seq_len, tokens_per_step
        Tokens per sequence, or per optimizer step over all processes; one is needed unless the Trainer counts
        tokens itself (``include_num_input_tokens_seen``), whose count is then used.
    require_base
        Refuse to start training without the base model's losses (default True).
    """

    def __init__(
        self,
        store: str | Path = "runs.sqlite",
        domain: str = "",
        r_domain: float = float("nan"),
        n_params: float | None = None,
        *,
        run_id: str | None = None,
        seed: int | None = None,
        general_eval: str = "general",
        domain_eval: str = "domain",
        seq_len: int | None = None,
        tokens_per_step: int | None = None,
        require_base: bool = True,
    ):
        if not isinstance(domain, str) or not domain.strip() or "|" in domain:
            raise BayesDCPTError(f"BayesDCPTCallback: domain must be a non-empty name without '|', got {domain!r}")
        if not isinstance(r_domain, (int, float)) or not 0.0 <= float(r_domain) <= 1.0:
            raise BayesDCPTError(f"BayesDCPTCallback: r_domain must be in [0, 1], got {r_domain!r}")
        for name, v in (("n_params", n_params), ("seq_len", seq_len), ("tokens_per_step", tokens_per_step)):
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise BayesDCPTError(f"BayesDCPTCallback: {name} must be > 0, got {v!r}")
        self.store = Path(store)
        self.domain, self.r_domain, self.n_params = domain, float(r_domain), n_params
        self.run_id, self.seed = run_id, seed
        self.sets = {f"eval_{general_eval}_loss": "general", f"eval_{domain_eval}_loss": "domain"}
        self.seq_len, self.tokens_per_step, self.require_base = seq_len, tokens_per_step, require_base
        self.trace: list[float] = []
        self._ready = False
        self._t0 = time.perf_counter()
        self.written = 0

    # ------------------------------------------------------------------------------------------ set-up
    def _main(self, args: Any) -> bool:
        return int(getattr(args, "process_index", 0)) == 0

    def _per_step(self, args: Any) -> int | None:
        """Tokens per optimizer step over every process (None when the Trainer counts tokens itself)."""
        if trainer_counts_tokens(args):
            return None
        if self.tokens_per_step:
            return int(self.tokens_per_step)
        if not self.seq_len:
            raise BayesDCPTError(
                "BayesDCPTCallback: cannot count tokens: pass seq_len= (or tokens_per_step=), or let the Trainer "
                "count them with TrainingArguments(include_num_input_tokens_seen=True)"
            )
        return int(self.seq_len * args.per_device_train_batch_size * args.gradient_accumulation_steps
                   * max(1, int(args.world_size)))

    def _setup(self, args: Any, model: Any) -> None:
        """Resolve N, the run id and the token rule; record the base run and the run (once per process)."""
        if self._ready:
            return
        if self.n_params is None:
            if model is None:
                raise BayesDCPTError("BayesDCPTCallback: no model to count N from; pass n_params=")
            self.n_params = count_params(unwrap(model))
        self.seed = self.seed if self.seed is not None else int(args.seed)
        self.run_id = self.run_id or probe_run_id(self.domain, self.n_params, self.r_domain, self.seed)
        self.base_id = base_run_id(self.domain, self.n_params)
        self.per_step = self._per_step(args)
        cfg = getattr(unwrap(model), "config", None) if model is not None else None
        name = (getattr(cfg, "_name_or_path", "") or type(unwrap(model)).__name__) if model is not None else ""
        common = {"model": name, "n_params": float(self.n_params), "domain": self.domain, "host": host_name()}
        with Store(self.store) as st:
            st.upsert_run(self.base_id, **common, status="done")
            old = st.run(self.run_id)
            fields = {**common, "r_domain": self.r_domain, "seed": self.seed, "config": self._config(args, model)}
            if old is None or old["status"] != "running":
                fields.update(status="running", started_at=_now())
            st.upsert_run(self.run_id, **fields)
        self._ready = True

    def _config(self, args: Any, model: Any) -> dict[str, Any]:
        """What the store keeps with the run: where its numbers come from and how tokens are counted."""
        import torch
        import transformers

        return {
            "source": "transformers.Trainer",
            "output_dir": str(args.output_dir),
            "tokens": "num_input_tokens_seen" if self.per_step is None else f"step x {self.per_step}",
            "tokens_per_step": self.per_step,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "world_size": args.world_size,
            "learning_rate": args.learning_rate,
            "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
            "warmup_steps": args.warmup_steps,
            "max_steps": args.max_steps,
            "n_params_total": count_params(unwrap(model), embeddings=True) if model is not None else None,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }

    # ------------------------------------------------------------------------------------------ events
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        """Record the run, restore the LR trace up to a resumed checkpoint, and insist on a base evaluation."""
        if not self._main(args):
            return
        self._setup(args, model)
        with Store(self.store) as st:
            stored = st.lr_trace(self.run_id, "cpt")
            has_base = len(st.evaluations(self.base_id)) > 0
        step = int(state.global_step)
        self.trace = [float(v) for v in (stored[:step] if stored is not None else [])]
        if step > 0 and len(self.trace) < step:
            warnings.warn(f"BayesDCPTCallback: the stored LR trace of {self.run_id!r} has {len(self.trace)} of the "
                          f"{step} steps before this checkpoint; the trace is kept as far as it is known",
                          stacklevel=2)
        if step == 0 and self.require_base and not has_base and not getattr(args, "eval_on_start", False):
            raise BayesDCPTError(
                f"BayesDCPTCallback: no base-model evaluation of {self.domain} at N={self.n_params:g} in "
                f"{self.store}: set TrainingArguments(eval_on_start=True) or call trainer.evaluate() before "
                "trainer.train() (or pass require_base=False)"
            )

    def on_optimizer_step(self, args, state, control, lr_scheduler=None, optimizer=None, **kwargs):
        """Keep the learning rate this optimizer step used (the scheduler steps after this event)."""
        if lr_scheduler is not None:
            self.trace.append(float(lr_scheduler.get_last_lr()[0]))
        elif optimizer is not None:
            self.trace.append(float(optimizer.param_groups[0]["lr"]))

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        """Store this evaluation's loss (one eval set per call when ``eval_dataset`` is a dict)."""
        if not self._main(args) or not metrics:
            return
        found = {s: float(v) for k, v in metrics.items() if (s := self.sets.get(k)) is not None}
        if not found:
            if "eval_loss" in metrics:
                raise BayesDCPTError(
                    "BayesDCPTCallback: the Trainer evaluated one set (eval_loss); pass eval_dataset as a dict "
                    f"with the sets {', '.join(k[5:-5] for k in self.sets)}"
                )
            return  # another eval set of the user's (e.g. a third domain): not ours
        self._setup(args, model)
        step = int(state.global_step)
        if step == 0:
            rid, tokens, lr = self.base_id, 0.0, None
        else:
            rid = self.run_id
            tokens = float(state.num_input_tokens_seen) if self.per_step is None else float(step * self.per_step)
            lr = self.trace[step - 1] if len(self.trace) >= step else None
        with Store(self.store) as st:
            for eval_set, loss in found.items():
                row = {"run_id": rid, "tokens": tokens, "eval_set": eval_set, "loss": loss, "step": step, "lr": lr}
                try:
                    self.written += st.add_evaluations([row])[0]
                except StoreConflictError as exc:  # a resumed run re-measured a step: keep the first
                    warnings.warn(f"BayesDCPTCallback: kept the stored measurement: {exc}", stacklevel=2)
            if step > 0 and self.trace:
                st.set_lr_trace(self.run_id, "cpt", self.trace[:step])

    def on_save(self, args, state, control, **kwargs):
        """Store the LR trace up to the checkpoint, so that a resume from it continues the trace."""
        if self._main(args) and self._ready and self.trace:
            with Store(self.store) as st:
                st.set_lr_trace(self.run_id, "cpt", self.trace[: int(state.global_step)])

    def on_train_end(self, args, state, control, **kwargs):
        """Mark the run done with its wall time and full LR trace."""
        if not self._main(args) or not self._ready:
            return
        with Store(self.store) as st:
            if self.trace:
                st.set_lr_trace(self.run_id, "cpt", self.trace[: int(state.global_step)])
            st.set_status(self.run_id, "done", finished_at=_now(), wall_seconds=time.perf_counter() - self._t0)
