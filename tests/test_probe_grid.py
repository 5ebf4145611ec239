"""Grids of probes (spec files, processes, Ray), data-parallel probes (DDP, gloo on CPU), the probe CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from bayes_dcpt.data.store import Store  # noqa: E402
from bayes_dcpt.probe.grid import GridError, load_spec, run_grid  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

SPEC = """
[corpora]
general = "{corp}/general.jsonl"
[domains]
codec = "{corp}/codec_tables.jsonl"
headers = "{corp}/c_headers.jsonl"
[pretrain]
tokens = 4096
lr = 1e-2
[probe]
sizes = ["micro"]
ratios = [0.0, 1.0]
tokens = 2048
eval_first = 512
probe_budget = 512
val_tokens = 2048
[train]
seq_len = 32
batch_size = 4
lr = 3e-3
warmup_steps = 2
"""


def _spec(tmp_path: Path, corp: Path, text: str = SPEC) -> Path:
    p = tmp_path / "grid.toml"
    p.write_text(text.format(corp=corp))
    return p


def test_grid_runs_pretrains_and_skips_done_runs(tmp_path, stdlib_corpora):
    spec = load_spec(_spec(tmp_path, stdlib_corpora), workdir=tmp_path)
    assert [j.label for j in spec.jobs()][:2] == ["micro/codec/r=0/seed=0", "micro/codec/r=1/seed=0"]
    db = tmp_path / "runs.sqlite"
    events = []
    res = run_grid(spec, db, workers=1, threads=1, on_event=events.append)
    kinds = [j["kind"] for j in res["jobs"]]
    assert kinds == ["pretrain"] + ["probe"] * 4
    assert (tmp_path / "bases" / "micro" / "probe_meta.json").is_file()
    assert any("done" in e for e in events)
    with Store(db) as st:
        df = st.to_frame()
    assert set(df["domain"]) == {"codec", "headers"}
    assert len(df) == 4 * 3 + 2  # 4 runs x (512, 1024, 2048) + one base row per domain
    again = run_grid(spec, db, workers=1, threads=1)
    assert [j["kind"] for j in again["jobs"]] == ["probe"] * 4 and all(j["skipped"] for j in again["jobs"])
    with Store(db) as st:
        assert len(st.to_frame()) == len(df)


@pytest.mark.parametrize(
    "edit, needle",
    [
        (('sizes = ["micro"]', 'sizes = ["colossal"]'), "unknown model preset"),
        (("ratios = [0.0, 1.0]", "ratios = [0.0, 1.5]"), "ratios must be in [0, 1]"),
        (("[train]", "[train]\nlearning_rate = 1"), "unknown [train] key"),
        (("[domains]", "[domainz]"), "missing section [domains]"),
        (("tokens = 2048", 'tokens = "lots"'), "tokens must be int"),
        (("codec_tables.jsonl", "nope.jsonl"), "codec corpus not found"),
        (("sizes", "sizes = = "), "not valid TOML"),
    ],
)
def test_bad_grid_specs(tmp_path, stdlib_corpora, edit, needle):
    text = SPEC.replace(*edit)
    with pytest.raises(GridError, match=__import__("re").escape(needle)):
        load_spec(_spec(tmp_path, stdlib_corpora, text), workdir=tmp_path)


def test_local_executor_two_worker_processes(tmp_path, stdlib_corpora):
    text = SPEC.replace("[pretrain]\ntokens = 4096\nlr = 1e-2\n", "").replace(
        "ratios = [0.0, 1.0]", "ratios = [0.5]"
    )
    spec = load_spec(_spec(tmp_path, stdlib_corpora, text), workdir=tmp_path)
    db = tmp_path / "runs.sqlite"
    events = []
    res = run_grid(spec, db, workers=2, threads=1, on_event=events.append)
    assert res["workers"] == 2 and len(res["jobs"]) == 2
    assert any("tokens" in e for e in events)  # progress streamed back from the worker processes
    with Store(db) as st:
        runs = st.runs()
        assert set(runs.loc[runs.r_domain.notna(), "status"]) == {"done"}
        assert len(st.to_frame()) == 2 * 3 + 2


@pytest.mark.slow
def test_ray_executor_with_a_local_ray_instance(tmp_path, stdlib_corpora):
    pytest.importorskip("ray")
    text = SPEC.replace("[pretrain]\ntokens = 4096\nlr = 1e-2\n", "").replace(
        "ratios = [0.0, 1.0]", "ratios = [0.25]"
    )
    spec = load_spec(_spec(tmp_path, stdlib_corpora, text), workdir=tmp_path)
    db = tmp_path / "runs.sqlite"
    res = run_grid(spec, db, executor="ray", workers=2, threads=1)
    assert res["executor"] == "ray" and sorted(j["label"] for j in res["jobs"]) == [
        "micro/codec/r=0.25/seed=0",
        "micro/headers/r=0.25/seed=0",
    ]
    with Store(db) as st:
        assert len(st.to_frame()) == 2 * 3 + 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: object) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 $(command -v bayes-dcpt) ...`` as the probe commands' --help shows it (gloo)."""
    exe = Path(sys.executable).with_name("bayes-dcpt")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), str(exe), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_ddp_two_processes_through_the_cli_match_one_process(tmp_path, stdlib_corpora):
    """Under torchrun (gloo): rank 0 alone saves, stores, exports and reports, and the losses match one process;
    every rank leaves the process group it joined, so the launch exits 0 (a rank left joined can abort at exit)."""
    from bayes_dcpt.probe import ProbeConfig, TrainSettings, run_probe

    general = stdlib_corpora / "general.jsonl"
    p = _torchrun("probe", "pretrain", "--preset", "micro", "--general", general, "--tokens", "1024", "--seq-len",
                  "32", "--batch-size", "4", "--warmup", "2", "--threads", "1", "--out", tmp_path / "base", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout)["out"] == str(tmp_path / "base")  # one JSON document: rank 0 reports, once
    args = ["--model", tmp_path / "base", "--general", general, "--domain", stdlib_corpora / "codec_tables.jsonl",
            "--domain-name", "codec", "--ratio", "0.5", "--tokens", "2048", "--eval-first", "512",
            "--val-tokens", "2048", "--seq-len", "32", "--batch-size", "4", "--lr", "3e-3", "--warmup", "2",
            "--threads", "1"]
    p = _torchrun("probe", "run", *args, "--db", tmp_path / "ddp.sqlite", "--csv", tmp_path / "ddp.csv", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)  # one JSON document: reported once, by rank 0
    assert out["skipped"] is False
    torch.set_num_threads(1)
    cfg = ProbeConfig(base=str(tmp_path / "base"), general=str(general),
                      domain=str(stdlib_corpora / "codec_tables.jsonl"), domain_name="codec", r_domain=0.5,
                      tokens=2048, eval_first=512, val_tokens=2048,
                      train=TrainSettings(seq_len=32, batch_size=4, lr=3e-3, warmup_steps=2))
    single = run_probe(cfg, db=tmp_path / "one.sqlite")
    assert single.main and not single.skipped
    with Store(tmp_path / "ddp.sqlite") as a, Store(tmp_path / "one.sqlite") as b:
        ea, eb = a.evaluations(), b.evaluations()
    assert len(ea) == len(eb) == len(single.evaluations) == out["evaluations"]  # rank 0 wrote every row once
    merged = ea.merge(eb, on=["run_id", "tokens", "eval_set"])
    assert len(merged) == len(ea)
    assert ((merged["loss_x"] - merged["loss_y"]).abs() / merged["loss_y"]).max() < 1e-3
    exported = pd.read_csv(tmp_path / "ddp.csv")
    assert sorted(exported["tokens"].unique()) == [0, 512, 1024, 2048]


# ----------------------------------------------------------------------------------------------- CLI
def test_cli_probe_run_and_grid(cli, tmp_path, stdlib_corpora):
    db = tmp_path / "runs.sqlite"
    args = [
        "probe",
        "run",
        "--model",
        "micro",
        "--general",
        stdlib_corpora / "general.jsonl",
        "--domain",
        stdlib_corpora / "c_headers.jsonl",
        "--domain-name",
        "headers",
        "--ratio",
        "0.5",
        "--tokens",
        "1024",
        "--seq-len",
        "32",
        "--batch-size",
        "4",
        "--eval-first",
        "256",
        "--val-tokens",
        "1024",
        "--db",
        db,
        "--csv",
        tmp_path / "run.csv",
        "--quiet",
        "--threads",
        "1",
    ]
    code, out, err = cli(*args)
    assert code == 0, err
    assert "measurements stored" in out and "tokens/s" in out
    from bayes_dcpt import data as _data

    df = _data.load(tmp_path / "run.csv")
    assert sorted(df["tokens"]) == [0, 256, 512, 1024]
    code, out, err = cli(*args, "--json")
    assert code == 0 and json.loads(out)["skipped"] is True
    code, out, err = cli(
        "probe",
        "grid",
        _spec(tmp_path, stdlib_corpora),
        "--workdir",
        tmp_path,
        "--db",
        tmp_path / "g.sqlite",
        "--quiet",
        "--csv",
        tmp_path / "g.csv",
        "--threads",
        "1",
    )
    assert code == 0, err
    assert "grid done: 4 probes run" in out
    assert len(_data.load(tmp_path / "g.csv")) == 14
    for sub in ("run", "grid", "pretrain", "corpora", "presets"):
        code, out, _ = cli("probe", sub, "--help")
        assert code == 0 and "Example" in out


@pytest.mark.parametrize(
    "change, needle",
    [
        (("--ratio", "1.5"), "r_domain must be in [0, 1]"),
        (("--model", "gigantic"), "unknown model preset"),
        (("--general", "/no/such/general.txt"), "not found"),
        (("--domain", "{empty}"), "empty"),
        (("--val-domain", "{domain}"), "overlaps training"),
        (("--db", "{notdb}"), "not a SQLite database"),
    ],
)
def test_cli_probe_errors_exit_2_with_one_line(cli, tmp_path, stdlib_corpora, change, needle):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "notes.sqlite").write_text("not a database")
    fmt = {
        "empty": tmp_path / "empty.txt",
        "domain": stdlib_corpora / "c_headers.jsonl",
        "notdb": tmp_path / "notes.sqlite",
    }
    opts = {
        "--model": "micro",
        "--general": str(stdlib_corpora / "general.jsonl"),
        "--domain": str(stdlib_corpora / "c_headers.jsonl"),
        "--domain-name": "headers",
        "--ratio": "0.5",
        "--tokens": "1024",
        "--seq-len": "32",
        "--batch-size": "4",
        "--db": str(tmp_path / "runs.sqlite"),
    }
    opts[change[0]] = str(change[1]).format(**fmt)
    args = ["probe", "run", "--quiet"] + [x for kv in opts.items() for x in kv]
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, err
    assert needle.lower() in lines[0].lower() and "Traceback" not in err


def test_cli_corpora_presets_pretrain(cli, tmp_path):
    code, out, err = cli("probe", "corpora", "--out", tmp_path / "corp", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert set(info) == {"general", "python", "c_headers", "codec_tables"} and info["general"]["bytes"] > 300_000
    code, out, err = cli("probe", "presets")
    assert code == 0 and "micro" in out and "13,408" in out
    code, out, err = cli("probe", "pretrain", "--preset", "micro", "--general", tmp_path / "corp" / "general.jsonl",
                         "--tokens", "4096", "--seq-len", "32", "--batch-size", "4", "--out", tmp_path / "base",
                         "--threads", "1", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["n_params"] == 13408 and res["tokens"] == 4096 and res["val_loss_general"] < 5.5
    assert (tmp_path / "base" / "probe_meta.json").is_file()
    code, out, err = cli("probe", "pretrain", "--preset", "colossal", "--general", tmp_path / "corp" / "general.jsonl",
                         "--tokens", "4096", "--out", tmp_path / "b2")
    assert code == 2 and "unknown model preset" in err and len(err.strip().splitlines()) == 1
