"""Regenerate the embedded Trainer example (bayes_dcpt/datasets/trainer_run/): real logs of a real Trainer run.

A tiny randomly initialised Llama (tests/trainer_helpers.py) is trained with ``transformers.Trainer`` on CPU for 8
steps with a general and a domain evaluation set, TensorBoard reporting and ``eval_on_start``; kept are its final
``trainer_state.json``, its TensorBoard event file (written by ``torch.utils.tensorboard``) and its log history in
the W&B run-history CSV layout (the keys W&B's Trainer integration logs, ``rewrite_logs``, one row per log call
with ``_step``, ``_runtime``, ``_timestamp`` and ``train/global_step``; written here from the history, since W&B
itself is not installed), with the mapping file ``runs.toml``. Needs torch, transformers, accelerate, tensorboard.

    python scripts/make_trainer_example.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "bayes_dcpt" / "datasets" / "trainer_run"

MAPPING = """\
# Which logged run is which probe (bayes-dcpt data import --from trainer-state|tensorboard|wandb-csv).
[defaults]
n_params = {n}          # N: the model's non-embedding parameters
seed = 7

[domains.python]        # every domain the runs may name

[runs.python-r25]       # one table per run; with one run and one log, they match
domain = "python"
r_domain = 0.25
"""


def main() -> None:
    from trainer_helpers import tiny_model, train, wandb_history

    from bayes_dcpt.probe.networks import count_params

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        train(run, [], report_to=["tensorboard"])
        state = run / "checkpoint-8" / "trainer_state.json"
        if OUT.exists():
            shutil.rmtree(OUT)
        (OUT / "tb").mkdir(parents=True)
        shutil.copy(state, OUT / "trainer_state.json")
        for f in run.glob("runs/*/events.out.tfevents*"):
            shutil.copy(f, OUT / "tb" / f.name)
        hist = json.loads(state.read_text())["log_history"]
        wandb_history(hist).to_csv(OUT / "wandb-history.csv", index=False)
    (OUT / "runs.toml").write_text(MAPPING.format(n=count_params(tiny_model())))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
