"""Regenerate the LR-schedule dataset: run the schedule grid and record how it was made.

Usage::

    python scripts/make_schedules_data.py [--workers 2] [--threads 1] [--workdir build/schedules]

Runs ``bayes-dcpt probe grid bayes_dcpt/datasets/schedules_grid.toml`` into a fresh store under
``--workdir``, exports ``bayes_dcpt/datasets/schedules_cpt.csv`` (the D-CPT schema plus ``step``,
``schedule`` and ``base_schedule``), checks that the per-step LR traces the runner recorded equal the
schedule specs exactly, and writes ``schedules_cpt.meta.json`` and ``SCHEDULES.md`` beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO / "bayes_dcpt" / "datasets"
NAME = "schedules_cpt"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default=str(REPO / "build" / "schedules"))
    ap.add_argument("--keep", action="store_true", help="Keep an existing store (resume) instead of starting over.")
    ap.add_argument("--render-only", action="store_true", help="Only rewrite SCHEDULES.md from the meta JSON.")
    ap.add_argument("--from-store", action="store_true",
                    help="Do not train: re-export and re-check a finished grid's store under --workdir (timings "
                         "reconstructed from the store's timestamps).")
    a = ap.parse_args()
    if a.render_only:
        render(json.loads((DATASETS / f"{NAME}.meta.json").read_text()))
        return 0
    wd = Path(a.workdir)
    db = wd / "runs.sqlite"
    spec = DATASETS / "schedules_grid.toml"
    csv = DATASETS / f"{NAME}.csv"
    cmd = ["bayes-dcpt", "probe", "grid", str(spec.relative_to(REPO)), "--workdir", str(wd), "--db", str(db),
           "--workers", str(a.workers), "--threads", str(a.threads), "--csv", str(csv.relative_to(REPO)), "--json"]
    if a.from_store:
        res, wall = _from_store(wd, db), None
    else:
        if wd.exists() and not a.keep:
            shutil.rmtree(wd)
        wd.mkdir(parents=True, exist_ok=True)
        from bayes_dcpt.cli import main as cli

        t0 = time.time()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = cli(cmd[1:])
        wall = time.time() - t0
        if code != 0:
            sys.stdout.write(buf.getvalue())
            return code
        res = json.loads(buf.getvalue())
    _exact_specs(wd, db)
    from bayes_dcpt.data.store import Store

    with Store(db) as st:
        st.export(csv)
    if wall is None:
        wall = res["wall_seconds"]

    import numpy as np
    import torch
    import transformers

    from bayes_dcpt import __version__
    from bayes_dcpt.data.dynamics import load_dynamics, schedule_of
    from bayes_dcpt.data.store import Store
    from bayes_dcpt.probe.corpora import iter_documents

    df = load_dynamics(csv)
    checked = 0
    with Store(db) as st:
        traces = st.lr_traces("cpt")
        base_traces = st.lr_traces("pretrain")
    for rid, g in df[df["tokens"] > 0].groupby("run_id"):
        tr = traces[rid]
        want = schedule_of(g["schedule"].iloc[0]).lrs()
        if tr.shape != want.shape or not np.array_equal(tr, want):
            raise SystemExit(f"run {rid}: the recorded LR trace differs from its schedule spec")
        checked += 1
    for rid, tr in base_traces.items():
        g = df[df["run_id"] == rid]
        if not np.array_equal(tr, schedule_of(g["base_schedule"].iloc[0]).lrs()):
            raise SystemExit(f"base {rid}: the recorded LR trace differs from its base schedule spec")
        checked += 1
    corpora = {}
    for name in ("general", "python"):
        docs = list(iter_documents(wd / "corpora" / f"{name}.jsonl"))
        corpora[name] = {"documents": len(docs), "bytes": sum(len(d.encode()) for d in docs)}
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    meta = {
        "command": " ".join(cmd),
        "wall_reconstructed": bool(a.from_store),
        "script": "python scripts/make_schedules_data.py --workers %d --threads %d" % (a.workers, a.threads),
        "seed": 0,
        "wall_seconds": round(wall, 1),
        "workers": a.workers,
        "threads_per_worker": a.threads,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "bayes_dcpt": __version__},
        "hardware": {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
                     "system": platform.system(), "cuda": torch.cuda.is_available()},
        "corpora": corpora,
        "jobs": [{k: j[k] for k in ("label", "kind", "n_params", "tokens_per_second", "wall_seconds")}
                 for j in res["jobs"]],
        "runs": int(df.loc[df["tokens"] > 0, "run_id"].nunique()),
        "rows": len(df),
        "lr_traces_checked": checked,
    }
    (DATASETS / f"{NAME}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    render(meta)
    print(f"wrote {csv} ({meta['rows']} rows, {meta['runs']} runs; {checked} LR traces equal their specs) "
          f"in {wall:.0f} s")
    return 0


def _exact_specs(wd: Path, db: Path) -> None:
    """Rewrite each run's schedule specs from its recorded training settings (exact float text).

    Stores written before specs carried exact float text (e.g. ``final=0.0003`` for 3e-3 * 0.1) are
    brought up to date; for a fresh store this changes nothing.
    """
    from bayes_dcpt.data.store import Store
    from bayes_dcpt.probe.train import TrainSettings

    bases = {}
    for meta_file in (wd / "bases").glob("*/probe_meta.json"):
        m = json.loads(meta_file.read_text())
        pre = m["pretrain"]
        tr = TrainSettings(**pre["train"])
        bases[int(m["n_params"])] = tr.lr_schedule(int(pre["tokens"]) // (tr.batch_size * tr.seq_len)).spec()
    with Store(db) as st:
        runs = st.runs()
        for _, r in runs.iterrows():
            cfg = json.loads(r["config"]) if isinstance(r["config"], str) else {}
            new = dict(cfg)
            if "train" in cfg and "probe" in cfg:
                tr = TrainSettings(**cfg["train"])
                new["schedule"] = tr.lr_schedule(int(cfg["probe"]["tokens"]) // (tr.batch_size * tr.seq_len)).spec()
            if int(r["n_params"]) in bases:
                new["base_schedule"] = bases[int(r["n_params"])]
            if new != cfg:
                st.upsert_run(r["run_id"], config=new)


def _from_store(wd: Path, db: Path) -> dict:
    """The grid's job summaries and wall time, reconstructed from the store and the base models' records."""
    from datetime import datetime

    from bayes_dcpt.data.store import Store

    jobs, pre_wall = [], 0.0
    for meta_file in sorted((wd / "bases").glob("*/probe_meta.json")):
        m = json.loads(meta_file.read_text())
        pre = m["pretrain"]
        jobs.append({"label": f"pretrain {meta_file.parent.name}", "kind": "pretrain", "n_params": m["n_params"],
                     "tokens_per_second": pre["tokens_per_second"], "wall_seconds": pre["wall_seconds"]})
        pre_wall = max(pre_wall, pre["wall_seconds"])
    with Store(db) as st:
        runs = st.runs()
    probes = runs[runs["r_domain"].notna()]
    for _, r in probes.iterrows():
        cfg = json.loads(r["config"])
        size = "tiny" if r["n_params"] > 50_000 else "micro"
        tag = cfg.get("schedule_tag") or ""
        jobs.append({"label": f"{size}/{r['domain']}/r={r['r_domain']:g}/seed={r['seed']}/{tag}", "kind": "probe",
                     "n_params": r["n_params"], "tokens_per_second": cfg["tokens_per_second"],
                     "wall_seconds": r["wall_seconds"]})
    t = lambda s: datetime.fromisoformat(s).timestamp()  # noqa: E731
    span = max(map(t, probes["finished_at"])) - min(map(t, probes["started_at"]))
    return {"jobs": jobs, "wall_seconds": round(span + pre_wall, 1)}


def render(meta: dict) -> None:
    """Write SCHEDULES.md (the human-readable record) from the meta JSON."""
    import pandas as pd

    from bayes_dcpt.data.dynamics import load_dynamics

    df = load_dynamics(DATASETS / f"{NAME}.csv")
    cpt = df[df["tokens"] > 0]
    v, h = meta["versions"], meta["hardware"]
    jobs = pd.DataFrame(meta["jobs"])
    probes = jobs[jobs.kind == "probe"].copy()
    probes["schedule"] = probes["label"].str.split("/").str[-1]
    by = probes.groupby(["n_params", "schedule"]).agg(runs=("label", "size"), tok_s=("tokens_per_second", "median"),
                                                      wall=("wall_seconds", "median"))
    rows = "\n".join(f"| {int(n):,} | {s} | {int(r.runs)} | {r.tok_s:,.0f} | {r.wall:.0f} |"
                     for (n, s), r in by.iterrows())
    sched = cpt.assign(tag=cpt["run_id"].str.split("sched=").str[-1]).groupby("tag")["schedule"].first()
    srows = "\n".join(f"| {k} | `{s}` |" for k, s in sched.items())
    base = df.groupby("n_params")["base_schedule"].first()
    brows = "\n".join(f"| {int(n):,} | `{s}` |" for n, s in base.items())
    corp = "\n".join(f"| {k} | {c['documents']} | {c['bytes']:,} |" for k, c in meta["corpora"].items())
    recon = ("\n  (reconstructed from the store's run timestamps and the base models' records: the first export's "
             "trace check failed on a spec-rounding bug, fixed, and the store was re-exported with "
             "`--from-store`, no retraining)") if meta.get("wall_reconstructed") else ""
    text = f"""# The LR-schedule dataset (`{NAME}.csv`)

Real continual-pre-training probes run by `bayes_dcpt.probe` on CPU: the same probe (base model, domain
mixture, seed, token budget) under four CPT learning-rate schedules, {meta['runs']} runs with whole loss
curves ({cpt.groupby('run_id').size().min()} checkpoints each), plus the base-model rows: {meta['rows']} rows.
Load it with `bayes_dcpt.datasets.load_schedules()`; the columns are the D-CPT schema plus `step` (CPT
optimizer steps done), `schedule` (the CPT LR schedule) and `base_schedule` (the base model's
pre-training schedule), which is what the CPT dynamics law reads (`bayes_dcpt.fitting.dynamics`).

## How it was made

    {meta['script']}

which runs

    {meta['command']}

- seed: {meta['seed']} (model initialisation, data order and mixture sampling all derive from it)
- wall time: {meta['wall_seconds']:.0f} s for the whole grid (pretraining included), {meta['workers']} worker
  processes x {meta['threads_per_worker']} thread, on a machine shared with other jobs (load average ~8-11){recon}
- versions: Python {v['python']}, torch {v['torch']}, transformers {v['transformers']}, bayes-dcpt {v['bayes_dcpt']}
- hardware: {h['cpu']}, {h['cores']} cores, {h['system']} {h['machine']}, CUDA: {h['cuda']}
- the runner recorded the LR of every optimizer step (store table `lr_traces`); all {meta['lr_traces_checked']}
  traces (CPT runs and base models) equal their schedule specs exactly (checked by the script)

## Schedules

CPT (256 optimizer steps of 16 x 128 bytes; the base models ended pre-training at LR 3e-4, so the first
three schedules re-warm the LR to 1e-3 and the last continues at 3e-4):

| name | spec |
|---|---|
{srows}

Pre-training of the base models (2^20 tokens of general text):

| N (non-embedding) | base schedule |
|---|---|
{brows}

## Runs

Byte-level Llama-style decoders (vocabulary 256; `n_params` is the non-embedding count), AdamW (0.9, 0.95,
weight decay 0.1), gradient clipping 1.0, fp32. Domain `python` (standard-library source) mixed with the
general corpus at r_domain = 0.25, 0.5, 0.75. Losses are nats per byte on held-out validation slices of
32,768 bytes per corpus. Checkpoints: the base model (step 0), steps 2, 4, 8 and every 8 steps to 256.

| N | schedule | runs | median tokens/s | median wall s per probe |
|---|---|---|---|---|
{rows}

## Corpora (written by `bayes-dcpt probe corpora` from this Python installation, offline)

| corpus | documents | bytes |
|---|---|---|
{corp}

The corpora depend on the Python version (here {v['python']}); another version gives slightly different text
and so slightly different losses.
"""
    (DATASETS / "SCHEDULES.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
