"""Probes end to end on CPU: schema-valid rows the fitter fits, bad inputs, kill and resume, safe loading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bayes_dcpt import data as _data  # noqa: E402
from bayes_dcpt.data.store import Store  # noqa: E402
from bayes_dcpt.probe import (  # noqa: E402
    CheckpointError,
    CorpusError,
    ModelError,
    PretrainConfig,
    ProbeConfig,
    ProbeConfigError,
    TrainSettings,
    load_base,
    pretrain,
    run_probe,
    safe_torch_load,
)

REPO = Path(__file__).resolve().parents[1]
FAST = dict(seq_len=32, batch_size=4, eval_batch_size=64, lr=3e-3, warmup_steps=2, threads=1)


def _cfg(corp: Path, **kw) -> ProbeConfig:
    base = dict(
        base="micro",
        general=str(corp / "general.jsonl"),
        domain=str(corp / "codec_tables.jsonl"),
        domain_name="codec",
        r_domain=0.5,
        tokens=4096,
        seed=0,
        eval_first=512,
        val_tokens=2048,
        train=TrainSettings(**FAST),
    )
    base.update(kw)
    return ProbeConfig(**base)


@pytest.fixture(scope="module")
def micro_base(stdlib_corpora, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bases") / "micro"
    res = pretrain(
        PretrainConfig(
            "micro",
            str(stdlib_corpora / "general.jsonl"),
            tokens=16384,
            out=str(out),
            val_tokens=2048,
            train=TrainSettings(**{**FAST, "lr": 1e-2, "schedule": "cosine"}),
        )
    )
    assert res.evaluations[-1]["loss_general"] < res.evaluations[0]["loss_general"] - 1.0
    return out


def test_pretrain_saves_a_loadable_base(micro_base):
    meta = json.loads((micro_base / "probe_meta.json").read_text())
    assert meta["tokenizer"] == "bytes" and meta["pretrain"]["tokens"] == 16384
    loaded = load_base(micro_base)
    assert loaded.n_params == meta["n_params"] and loaded.n_params < loaded.n_params_total
    assert (micro_base / "model.safetensors").is_file()


def test_tiny_grid_writes_valid_rows_that_the_fitter_fits(stdlib_corpora, micro_base, tmp_path):
    from bayes_dcpt.fitting.pointfit import fit_point

    db = tmp_path / "runs.sqlite"
    results = [
        run_probe(_cfg(stdlib_corpora, base=str(micro_base), r_domain=r, probe_budget=1024), db=db)
        for r in (0.0, 0.5, 1.0)
    ]
    assert all(not r.skipped and r.tokens_per_second > 0 for r in results)
    with Store(db) as st:
        df = st.to_frame()
        runs = st.runs()
    assert set(runs["status"]) == {"done"}
    expect_tokens = [0, 512, 1024, 2048, 4096]
    for r in results:
        sub = df[df.run_id == r.run_id]
        assert sorted(sub["tokens"]) == expect_tokens[1:]
        assert sub[["loss_general", "loss_domain"]].notna().all().all()
    base = df[df.tokens == 0]
    assert (
        len(base) == 1 and base["r_domain"].isna().all()
    )  # one base row per (domain, N), shared by the runs
    # the domain loss falls with tokens when the mixture holds domain data, and more so at r = 1
    full = df[df.run_id == results[2].run_id].sort_values("tokens")
    assert full["loss_domain"].iloc[-1] < base["loss_domain"].iloc[0] - 0.2
    half = df[df.run_id == results[1].run_id].sort_values("tokens")
    assert full["loss_domain"].iloc[-1] < half["loss_domain"].iloc[-1]
    # the rows are the package's schema; the paper's point fit runs on them
    again = _data.load(df.drop(columns=["run_id"]).assign(run_id=df["run_id"]))
    assert len(again) == len(df)
    fit = fit_point(df, "dcpt", "domain", n_grid=200, n_starts=2)
    assert fit.table()["mape"].iloc[0] < 10
    # re-running the same probe does not duplicate a row
    again = run_probe(_cfg(stdlib_corpora, base=str(micro_base), r_domain=0.5, probe_budget=1024), db=db)
    assert again.skipped
    with Store(db) as st:
        assert len(st.evaluations()) == 2 * len(df)
    with Store(db) as st:  # a run that stopped half-way needs resume (or force) to continue
        st.set_status(results[1].run_id, "failed")
    with pytest.raises(ProbeConfigError, match="already has 8 stored measurements"):
        run_probe(_cfg(stdlib_corpora, base=str(micro_base), r_domain=0.5, probe_budget=1024), db=db)
    forced = run_probe(
        _cfg(stdlib_corpora, base=str(micro_base), r_domain=0.5, probe_budget=1024), db=db, force=True
    )
    assert not forced.skipped and forced.evaluations[-1]["tokens"] == 4096


@pytest.mark.parametrize(
    "change, err, needle",
    [
        ({"general": "/no/such/corpus.txt"}, CorpusError, "not found"),
        ({"domain": "{empty}"}, CorpusError, "empty"),
        ({"r_domain": 1.5}, ProbeConfigError, "r_domain must be in [0, 1]"),
        ({"r_domain": -0.1}, ProbeConfigError, "r_domain"),
        ({"base": "gigantic"}, ModelError, "unknown model preset"),
        ({"val_domain": "{overlap}"}, CorpusError, "overlaps training"),
        ({"probe_budget": 4096}, ProbeConfigError, "probe_budget"),
        ({"tokens": 10}, Exception, "optimizer step"),
    ],
)
def test_bad_inputs_fail_before_training(stdlib_corpora, tmp_path, change, err, needle):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    fmt = {"empty": str(empty), "overlap": str(stdlib_corpora / "codec_tables.jsonl")}
    change = {k: (v.format(**fmt) if isinstance(v, str) else v) for k, v in change.items()}
    steps = []
    with pytest.raises(err, match=__import__("re").escape(needle)):
        run_probe(_cfg(stdlib_corpora, **change), db=tmp_path / "runs.sqlite", progress=steps.append)
    assert steps == []
    if (tmp_path / "runs.sqlite").exists():
        with Store(tmp_path / "runs.sqlite") as st:
            assert len(st.evaluations()) == 0


_VICTIM = textwrap.dedent(
    """
    import sys, json, time
    import torch
    torch.set_num_threads(1)
    from bayes_dcpt.probe import ProbeConfig, TrainSettings, run_probe
    cfg = ProbeConfig(**json.loads(sys.argv[1]))
    cfg.train = TrainSettings(**cfg.train)
    def slow(ev):
        print(ev["step"], flush=True)
        time.sleep(0.02)
    run_probe(cfg, db=sys.argv[2], resume=True, progress=slow)
    """
)


def test_sigkill_then_resume_loses_and_duplicates_nothing(stdlib_corpora, micro_base, tmp_path):
    cfg = _cfg(
        stdlib_corpora,
        base=str(micro_base),
        tokens=16384,
        eval_first=512,
        checkpoint_dir=str(tmp_path / "ck"),
        checkpoint_every=8,
    )
    total_steps = 16384 // (4 * 32)
    script = tmp_path / "victim.py"
    script.write_text(_VICTIM)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    db = tmp_path / "killed.sqlite"
    p = subprocess.Popen(
        [sys.executable, str(script), json.dumps(asdict(cfg)), str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    step = 0
    deadline = time.monotonic() + 120
    while step < 70 and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        step = int(line) if line.strip().isdigit() else step
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert 70 <= step < total_steps, p.stderr.read()
    with Store(db) as st:
        before = st.evaluations()
        assert st.run(before["run_id"].iloc[-1])["status"] in ("running", "done")
    assert set(before["tokens"]) >= {512, 1024, 2048, 4096, 8192}  # measured before the kill, all committed
    torch.set_num_threads(1)
    res = run_probe(cfg, db=db, resume=True)
    assert res.resumed_from_step >= 64  # continued from a checkpoint, not from scratch
    with Store(db) as st:
        after = st.evaluations()
    assert not after.duplicated(["run_id", "tokens", "eval_set"]).any()
    kept = after.merge(before, on=["run_id", "tokens", "eval_set"], suffixes=("", "_before"))
    assert len(kept) == len(before) and np.allclose(
        kept["loss"], kept["loss_before"]
    )  # nothing lost or changed
    run_rows = after[after.run_id == res.run_id]
    assert sorted(set(run_rows["tokens"])) == [512, 1024, 2048, 4096, 8192, 16384]
    assert (run_rows.groupby("tokens").size() == 2).all()
    # the same probe without interruption ends at the same losses
    clean = run_probe(
        _cfg(stdlib_corpora, base=str(micro_base), tokens=16384, eval_first=512), db=tmp_path / "clean.sqlite"
    )
    final_clean = {e["eval_set"]: e["loss"] for e in clean.evaluations if e["tokens"] == 16384}
    final_res = run_rows[run_rows.tokens == 16384].set_index("eval_set")["loss"]
    for s in ("general", "domain"):
        assert final_res[s] == pytest.approx(final_clean[s], rel=1e-3)


def test_malicious_checkpoint_is_refused(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pt"
    with bad.open("wb") as fh:
        pickle.dump({"model": Evil()}, fh, protocol=2)
    with pytest.raises(CheckpointError, match="refused to load"):
        safe_torch_load(bad)
    assert not marker.exists()
    torch.save({"model": {"w": torch.ones(2)}, "state": "{}"}, tmp_path / "ok.pt")
    assert torch.equal(safe_torch_load(tmp_path / "ok.pt")["model"]["w"], torch.ones(2))
    (tmp_path / "trunc.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:50])
    with pytest.raises(CheckpointError, match="corrupt"):
        safe_torch_load(tmp_path / "trunc.pt")


def test_resume_refuses_a_malicious_checkpoint(stdlib_corpora, tmp_path):
    import pickle

    cfg = _cfg(stdlib_corpora, checkpoint_dir=str(tmp_path / "ck"))
    from bayes_dcpt.probe import build_preset
    from bayes_dcpt.probe.checkpoint import safe_name
    from bayes_dcpt.probe.run import probe_run_id

    n = build_preset("micro").n_params
    ck = tmp_path / "ck" / (safe_name(probe_run_id("codec", n, 0.5, 0)) + ".pt")
    ck.parent.mkdir()

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    ck.write_bytes(pickle.dumps({"model": Evil()}, protocol=2))
    with pytest.raises(CheckpointError, match="refused"):
        run_probe(cfg, db=tmp_path / "r.sqlite", resume=True)
    assert not (tmp_path / "pwned").exists()


def test_hf_directory_with_tokenizer_and_remote_code_guard(stdlib_corpora, tmp_path):
    """A local Hugging Face checkpoint (GPT-2 architecture, a BPE tokenizer trained here) runs as a base model."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    texts = [
        t
        for t, _ in zip(
            __import__("bayes_dcpt.probe.corpora", fromlist=["x"]).iter_documents(
                stdlib_corpora / "general.jsonl"
            ),
            range(40),
            strict=False,
        )
    ]
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel()
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<eos>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", unk_token="<unk>")
    d = tmp_path / "hf"
    GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tok),
            n_embd=32,
            n_layer=1,
            n_head=2,
            n_positions=64,
            bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
        )
    ).save_pretrained(d)
    tok.save_pretrained(d)
    loaded = load_base(d)
    assert loaded.tokenizer.name == str(d) and loaded.tokenizer.vocab_size == len(tok)
    res = run_probe(
        _cfg(stdlib_corpora, base=str(d), tokens=1024, eval_first=256, domain_name="codec"),
        db=tmp_path / "hf.sqlite",
    )
    assert len(res.evaluations) == 2 * 3 + 2  # base + 256, 512, 1024 (x2 sets)
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil_model.EvilForCausalLM"}
    cfg["model_type"] = "evil-custom"
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "evil_model.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w').write('x')\n")
    with pytest.raises(ModelError, match="trust"):
        load_base(d)
    assert not (tmp_path / "pwned").exists()
