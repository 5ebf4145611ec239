"""The probe runner records the LR of every step and runs the same probe under several schedules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bayes_dcpt.data.dynamics import load_dynamics, schedule_of  # noqa: E402
from bayes_dcpt.data.store import Store  # noqa: E402
from bayes_dcpt.probe.grid import GridError, load_spec, run_grid  # noqa: E402

pytestmark = pytest.mark.slow

SPEC = """
[corpora]
general = "{corp}/general.jsonl"
[domains]
codec = "{corp}/codec_tables.jsonl"
[pretrain]
tokens = 4096
lr = 1e-2
schedule = "cosine"
warmup_steps = 4
[probe]
sizes = ["micro"]
ratios = [0.5]
tokens = 2048
eval_first = 512
eval_every = 512
val_tokens = 2048
schedules = [
  {{ name = "const", schedule = "constant", lr = 3e-3, warmup_steps = 2 }},
  {{ name = "wsd", schedule = "wsd", lr = 3e-3, warmup_steps = 2, decay_frac = 0.5, min_lr_ratio = 0.0 }},
]
[train]
seq_len = 32
batch_size = 4
"""


def test_grid_of_schedules_records_every_lr(tmp_path, stdlib_corpora):
    p = tmp_path / "grid.toml"
    p.write_text(SPEC.format(corp=stdlib_corpora))
    spec = load_spec(p, workdir=tmp_path)
    assert [j.label for j in spec.jobs()] == ["micro/codec/r=0.5/seed=0/const", "micro/codec/r=0.5/seed=0/wsd"]
    db = tmp_path / "runs.sqlite"
    run_grid(spec, db, workers=1, threads=1)
    base_dir = Path(spec.base_dir("micro"))
    pt_trace = np.load(base_dir / "lr_trace.npy")
    with Store(db) as st:
        df = st.to_frame()
        traces = st.lr_traces("cpt")
        base_traces = st.lr_traces("pretrain")
    dyn = load_dynamics(df)
    cpt = dyn[dyn["tokens"] > 0]
    assert set(cpt["run_id"].str.extract(r"sched=(\w+)$")[0]) == {"const", "wsd"}
    # 2048 tokens / (4 x 32) = 16 steps; evaluations every 512 tokens = every 4 steps (plus 0)
    assert sorted(cpt["step"].unique()) == [4, 8, 12, 16]
    for rid, g in cpt.groupby("run_id"):
        sched = schedule_of(g["schedule"].iloc[0])
        assert sched.steps == 16 and np.array_equal(traces[rid], sched.lrs())  # every step, bit for bit
        assert np.allclose(g["lr"], sched.lrs()[g["step"].to_numpy() - 1])    # evaluations agree
    wsd = schedule_of(cpt.loc[cpt["run_id"].str.endswith("wsd"), "schedule"].iloc[0])
    assert wsd.kind == "wsd" and wsd.lrs()[-1] == 0.0 and wsd.lrs()[7] == 3e-3
    (bid, btr), = base_traces.items()
    assert np.array_equal(btr, pt_trace) and np.array_equal(btr, schedule_of(dyn["base_schedule"].iloc[0]).lrs())
    assert len(pt_trace) == 4096 // 128


def test_grid_schedule_errors(tmp_path, stdlib_corpora):
    text = SPEC.format(corp=stdlib_corpora)
    for edit, needle in (
        (text.replace('name = "wsd"', 'name = "const"'), "appears twice"),
        (text.replace('decay_frac = 0.5', 'decay_frac = 5'), "decay_frac"),
        (text.replace('min_lr_ratio = 0.0', 'colour = 1'), "unknown key"),
        (text.replace('{ name = "const", ', '{ '), "needs a name"),
    ):
        p = tmp_path / "g.toml"
        p.write_text(edit)
        with pytest.raises(GridError, match=needle):
            load_spec(p, workdir=tmp_path)
