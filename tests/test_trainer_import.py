"""Bring your own runs: a real ``transformers.Trainer`` with :class:`BayesDCPTCallback`, and the importers.

A tiny random Llama is trained on CPU (seconds) with a general and a domain eval set, once straight through
and once killed after step 7 and resumed from its step-4 checkpoint. The callback's rows must land in the store,
validate and fit, and the killed-and-resumed store must equal the straight one (nothing duplicated, nothing
lost). The importers read the files those runs really wrote (``trainer_state.json``, TensorBoard event files
written by ``torch.utils.tensorboard`` through the Trainer's TensorBoard reporter) and a W&B-layout history
CSV of the same log, and must give the callback's rows; bad input is one line naming file, run and key, and
the store keeps what it had.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from trainer_helpers import Killed, train, wandb_history

from bayes_dcpt.data.importers import import_logs
from bayes_dcpt.data.logmap import LogImportError
from bayes_dcpt.data.store import Store
from bayes_dcpt.errors import BayesDCPTError

COLS = ["domain", "n_params", "tokens", "r_domain", "run_id", "step"]
MAPPING = """\
[defaults]
n_params = {n}
seed = 7
{extra}
[domains.python]

[runs.python-r25]
domain = "{domain}"
r_domain = 0.25
source = "*"
"""


def _tb() -> list[str]:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return []
    return ["tensorboard"]


@pytest.fixture(scope="module")
def hf(tmp_path_factory) -> dict:
    """One straight run and one killed-and-resumed run of the tiny model, each with the callback."""
    from bayes_dcpt.probe import BayesDCPTCallback

    root = tmp_path_factory.mktemp("hf")

    def cb(db: str) -> BayesDCPTCallback:
        return BayesDCPTCallback(root / db, domain="python", r_domain=0.25)

    train(root / "ref", [cb("ref.sqlite")], report_to=_tb())
    with pytest.raises(Killed):
        train(root / "run", [cb("runs.sqlite")], kill_after=7, report_to=_tb())
    with Store(root / "runs.sqlite") as st:
        killed = {"evaluations": st.evaluations(), "runs": st.runs()}
    with _no_conflict():
        train(root / "run", [cb("runs.sqlite")], resume=True, report_to=_tb())
    with Store(root / "ref.sqlite") as st:
        n = float(st.runs().set_index("run_id").loc[lambda d: d.index.str.startswith("base|"), "n_params"].iloc[0])
    return {"root": root, "ref": root / "ref.sqlite", "db": root / "runs.sqlite", "killed": killed, "n": n}


class _no_conflict:
    """Fail if the callback warned that a resumed evaluation differed from the stored one."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings(record=True)
        self.caught = self._w.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
        bad = [str(w.message) for w in self.caught if "BayesDCPTCallback" in str(w.message)]
        assert not bad, bad


def _frame(db: Path) -> pd.DataFrame:
    with Store(db) as st:
        return st.to_frame()


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    pd.testing.assert_frame_equal(a[COLS], b[COLS], check_dtype=False)
    for c in ("loss_general", "loss_domain"):
        np.testing.assert_allclose(a[c], b[c], rtol=1e-6)  # TensorBoard keeps float32
    np.testing.assert_allclose(a["lr"].astype(float), b["lr"].astype(float), rtol=1e-6, equal_nan=True)


# ------------------------------------------------------------------------------------------- the callback
def test_callback_rows_land_validate_and_fit(hf):
    import bayes_dcpt as bd

    df = _frame(hf["ref"])  # to_frame validates
    assert df["tokens"].tolist() == [0, 128, 256, 384, 512]  # num_input_tokens_seen: 4 x 16 tokens a step
    assert df["step"].tolist() == [0, 2, 4, 6, 8]
    base = df[df["tokens"] == 0].iloc[0]
    assert base["run_id"] == f"base|python|N={hf['n']:.6g}" and math.isnan(base["lr"])
    run = df[df["tokens"] > 0]
    assert set(run["run_id"]) == {f"python|N={hf['n']:.6g}|r=0.25|seed=7"} and (run["r_domain"] == 0.25).all()
    assert run[["loss_general", "loss_domain"]].notna().all().all()
    # the LR of every optimizer step (linear schedule, 2 warm-up steps); each row has its step's LR
    with Store(hf["ref"]) as st:
        trace = st.lr_trace(run["run_id"].iloc[0])
        status = st.run(run["run_id"].iloc[0])["status"]
    np.testing.assert_allclose(trace, [0, 1.5e-3, 3e-3, 2.5e-3, 2e-3, 1.5e-3, 1e-3, 5e-4])
    np.testing.assert_allclose(run["lr"], trace[run["step"].to_numpy() - 1])
    assert status == "done"
    # N: the non-embedding parameters of the model, the convention of the schema
    from trainer_helpers import tiny_model

    from bayes_dcpt.probe.networks import count_params

    assert hf["n"] == count_params(tiny_model()) < count_params(tiny_model(), embeddings=True)
    fit = bd.fit(df, law="cpt", sampler="laplace", discrepancy=False, seed=0)
    pred = fit.predict(run, ci=0.9)
    assert np.isfinite(pred["loss_domain_mean"]).all()


def test_killing_and_resuming_duplicates_nothing(hf):
    killed = hf["killed"]
    # the killed run had stored its evaluations up to step 6 (after its last checkpoint, at step 4)
    assert sorted(killed["evaluations"]["step"].unique().tolist()) == [0, 2, 4, 6]
    assert "running" in killed["runs"]["status"].tolist()
    _same_rows(_frame(hf["db"]), _frame(hf["ref"]))
    with Store(hf["db"]) as st, Store(hf["ref"]) as ref:
        assert len(st.evaluations()) == len(ref.evaluations()) == 10
        rid = st.to_frame()["run_id"].iloc[-1]
        np.testing.assert_array_equal(st.lr_trace(rid), ref.lr_trace(rid))
        assert st.run(rid)["status"] == "done"


def test_callback_counts_tokens_from_steps_and_insists_on_a_base_model(tmp_path):
    from bayes_dcpt.probe import BayesDCPTCallback

    cb = BayesDCPTCallback(tmp_path / "s.sqlite", domain="python", r_domain=0.25, seq_len=16)
    train(tmp_path / "a", [cb], max_steps=4, count_tokens=False)
    assert _frame(tmp_path / "s.sqlite")["tokens"].tolist() == [0, 128, 256]  # step x 4 x 16
    with pytest.raises(BayesDCPTError, match="cannot count tokens: pass seq_len"):
        train(tmp_path / "b", [BayesDCPTCallback(tmp_path / "t.sqlite", domain="python", r_domain=0.25)],
              max_steps=2, count_tokens=False)
    with pytest.raises(BayesDCPTError, match="no base-model evaluation of python"):
        train(tmp_path / "c", [BayesDCPTCallback(tmp_path / "u.sqlite", domain="python", r_domain=0.25)],
              max_steps=2, eval_on_start=False)
    with pytest.raises(BayesDCPTError, match="r_domain must be in"):
        BayesDCPTCallback(tmp_path / "v.sqlite", domain="python", r_domain=1.5)


# ------------------------------------------------------------------------------------------- the importers
def _mapping(path: Path, hf: dict, extra: str = "", domain: str = "python") -> Path:
    path.write_text(MAPPING.format(n=int(hf["n"]), extra=extra, domain=domain))
    return path


def _wandb(hf: dict, out: Path, drop: tuple[str, ...] = ()) -> Path:
    state = json.loads((hf["root"] / "run" / "checkpoint-8" / "trainer_state.json").read_text())
    wandb_history(state["log_history"]).drop(columns=list(drop)).to_csv(out, index=False)
    return out


def _source(fmt: str, hf: dict, tmp_path: Path) -> tuple[Path, str]:
    if fmt == "trainer-state":
        return hf["root"] / "run", ""  # the folder: its newest checkpoint's trainer_state.json is read
    if fmt == "tensorboard":
        if not _tb():
            pytest.skip("tensorboard is not installed: the Trainer wrote no event files")
        return hf["root"] / "run" / "runs", ""  # two event folders: before the kill and after the resume
    # the W&B history without a token column: tokens from tokens_per_step, as the mapping says
    return _wandb(hf, tmp_path / "history.csv", drop=("train/num_input_tokens_seen",)), "tokens_per_step = 64\n"


@pytest.mark.parametrize("fmt", ["trainer-state", "tensorboard", "wandb-csv"])
def test_importers_give_the_callbacks_rows(hf, tmp_path, fmt):
    src, extra = _source(fmt, hf, tmp_path)
    mapping = _mapping(tmp_path / "runs.toml", hf, extra)
    if fmt == "tensorboard":
        assert len(list(src.rglob("events.out.tfevents*"))) == 2
    res = import_logs(fmt, src, mapping, tmp_path / "new.sqlite")
    assert res["inserted"] == 10 and res["skipped"] == 0 and res["run_list"][0]["base"]
    _same_rows(_frame(tmp_path / "new.sqlite"), _frame(hf["ref"]))
    again = import_logs(fmt, src, mapping, tmp_path / "new.sqlite")  # re-import adds nothing
    assert (again["inserted"], again["skipped"]) == (0, 10)
    db = tmp_path / "callback.sqlite"  # and into the callback's own store: the same measurements
    shutil.copy(hf["db"], db)
    assert import_logs(fmt, src, mapping, db)["inserted"] == 0


def test_dry_run_shows_and_writes_nothing(hf, tmp_path, cli):
    mapping = _mapping(tmp_path / "runs.toml", hf)
    state = hf["root"] / "run" / "checkpoint-8" / "trainer_state.json"
    code, out, err = cli("data", "import", "--from", "trainer-state", state, "--map", mapping,
                         "--db", tmp_path / "x.sqlite", "--dry-run")
    assert code == 0, err
    assert "would add 10 losses" in out and "python|N=" in out
    assert not (tmp_path / "x.sqlite").exists()
    db = tmp_path / "y.sqlite"
    shutil.copy(hf["ref"], db)
    code, out, err = cli("data", "import", "--from", "trainer-state", state, "--map", mapping, "--db", db,
                         "--dry-run", "--json")
    assert code == 0 and json.loads(out)["skipped"] == 10 and json.loads(out)["inserted"] == 0


def _bad_case(case: str, hf: dict, tmp: Path) -> tuple[str, Path, Path, list[str]]:
    """A bad import: (format, path, mapping, what the one error line must name)."""
    state = json.loads((hf["root"] / "run" / "checkpoint-8" / "trainer_state.json").read_text())
    f = tmp / "trainer_state.json"
    if case == "missing-key":
        f.write_text(json.dumps(state))
        return "trainer-state", f, _mapping(tmp / "m.toml", hf, 'general_key = "eval_gen_loss"\n'), \
            [str(f), "python-r25", "eval_gen_loss"]
    if case == "non-monotone":
        hist = state["log_history"]
        i = next(k for k, e in enumerate(hist) if "eval_general_loss" in e and e["step"] == 6)
        hist[i]["step"] = 1
        f.write_text(json.dumps(state))
        return "trainer-state", f, _mapping(tmp / "m.toml", hf), [str(f), "eval_general_loss", "go back"]
    if case == "no-base":
        state["log_history"] = [e for e in state["log_history"] if e["step"] > 0]
        f.write_text(json.dumps(state))
        return "trainer-state", f, _mapping(tmp / "m.toml", hf), [str(f), "python-r25", "base-model evaluation"]
    if case == "unknown-domain":
        f.write_text(json.dumps(state))
        return "trainer-state", f, _mapping(tmp / "m.toml", hf, domain="pyhton"), \
            ["m.toml", "python-r25", "unknown domain 'pyhton'"]
    if case == "truncated":
        if not _tb():
            pytest.skip("tensorboard is not installed")
        good = sorted((hf["root"] / "run" / "runs").rglob("events.out.tfevents*"))[0]
        cut = tmp / "tb" / good.name
        cut.parent.mkdir()
        cut.write_bytes(good.read_bytes()[:-7])
        return "tensorboard", tmp / "tb", _mapping(tmp / "m.toml", hf), [str(cut), "python-r25", "truncated"]
    if case == "text-loss":  # a loss logged as text was dropped, and the import said "added" (a review's case)
        hist = state["log_history"]
        i = next(k for k, e in enumerate(hist) if "eval_general_loss" in e and e["step"] > 0)
        hist[i]["eval_general_loss"] = "x"
        f.write_text(json.dumps(state))
        return "trainer-state", f, _mapping(tmp / "m.toml", hf), [str(f), f"entry {i + 1}", "eval_general_loss",
                                                                   "not a number: 'x'"]
    if case in ("wandb-text", "wandb-cut"):
        csv = _wandb(hf, tmp / "h.csv")
        if case == "wandb-text":
            df = pd.read_csv(csv)
            row = int(df["eval/domain_loss"].notna().to_numpy().nonzero()[0][1])
            df["eval/domain_loss"] = df["eval/domain_loss"].astype(object)
            df.loc[row, "eval/domain_loss"] = "oops"
            df.to_csv(csv, index=False)
            return "wandb-csv", csv, _mapping(tmp / "m.toml", hf), [str(csv), "eval/domain_loss",
                                                                     f"row {row + 1}", "'oops'"]
        text = csv.read_text()
        csv.write_text(text[: text.rstrip("\n").rfind(",") - 2])  # cut inside the last row, no newline
        return "wandb-csv", csv, _mapping(tmp / "m.toml", hf), [str(csv), "truncated"]
    # conflict: the same run logged a different loss than the store holds
    csv = _wandb(hf, tmp / "h.csv")
    df = pd.read_csv(csv)
    df.loc[df["eval/domain_loss"].notna().to_numpy().nonzero()[0][-1], "eval/domain_loss"] = 9.0
    df.to_csv(csv, index=False)
    return "wandb-csv", csv, _mapping(tmp / "m.toml", hf), [str(csv), "already stored", "9"]


@pytest.mark.parametrize("case", ["missing-key", "non-monotone", "no-base", "unknown-domain", "truncated",
                                  "conflict", "text-loss", "wandb-text", "wandb-cut"])
def test_bad_input_is_one_line_and_loses_nothing(hf, tmp_path, cli, case):
    db = tmp_path / "runs.sqlite"
    shutil.copy(hf["db"], db)
    if case == "no-base":  # a store without the base model (its own measurements are kept all the same)
        with sqlite3.connect(db) as con:
            con.execute("DELETE FROM evaluations WHERE run_id LIKE 'base|%'")
    before = sqlite3.connect(db).execute("SELECT * FROM evaluations ORDER BY run_id, tokens, eval_set").fetchall()
    fmt, src, mapping, names = _bad_case(case, hf, tmp_path)
    code, out, err = cli("data", "import", "--from", fmt, src, "--map", mapping, "--db", db)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for name in names:
        assert name in lines[0], (name, lines[0])
    after = sqlite3.connect(db).execute("SELECT * FROM evaluations ORDER BY run_id, tokens, eval_set").fetchall()
    assert after == before
    with pytest.raises(LogImportError):
        import_logs(fmt, src, mapping, db)


def test_mapping_and_cli_options_are_checked(hf, tmp_path, cli):
    state = hf["root"] / "run" / "checkpoint-8" / "trainer_state.json"
    db = tmp_path / "z.sqlite"
    code, _, err = cli("data", "import", "--from", "trainer-state", state, "--db", db)
    assert code == 2 and "needs --map" in err
    code, _, err = cli("data", "import", "--from", "comet", state, "--map", "x.toml", "--db", db)
    assert code == 2 and "--from must be" in err
    bad = tmp_path / "bad.toml"
    bad.write_text(MAPPING.format(n=1000, extra="tokens_per_stp = 3\n", domain="python"))
    code, _, err = cli("data", "import", "--from", "trainer-state", state, "--map", bad, "--db", db)
    assert code == 2 and "unknown field 'tokens_per_stp'" in err and str(bad) in err
    assert not db.exists()


def test_the_readme_section_runs_as_written(tmp_path):
    """README "From your Trainer": its Python block, its mapping and every command on the Trainer example."""
    from test_docs import README, code_blocks, commands, run

    from bayes_dcpt.datasets import trainer_run_path

    text = README.read_text()
    section = text[text.index("## From your Trainer"):]
    section = section[: section.index("\n## ", 5)]
    assert code_blocks(section, "toml")[0] == (trainer_run_path() / "runs.toml").read_text()
    lines = [args for block in code_blocks(text, "bash") for args in commands(block)
             if "hf-run" in " ".join(args)]
    assert len(lines) >= 4 and lines[0][1:4] == ["data", "example", "--dataset"]
    for args in lines:
        out = run(args, tmp_path)
        assert out.returncode == 0 and "Traceback" not in out.stderr, (args, out.stdout, out.stderr)
    assert "would add 0 losses" in out.stdout or "0 losses added" in out.stdout
    script = tmp_path / "from_your_trainer.py"
    script.write_text(code_blocks(section, "python")[0])
    env = {**os.environ, "PYTHONPATH": str(README.parent)}
    q = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert q.returncode == 0, q.stderr[-3000:]
    assert "base|python|N=" in q.stdout and "512" in q.stdout
