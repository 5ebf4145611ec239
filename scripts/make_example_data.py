"""Regenerate the embedded example dataset: run the example grid and record how it was made.

Usage (what `make example-data` runs)::

    python scripts/make_example_data.py [--workers 2] [--workdir build/example]

Runs ``bayes-dcpt probe grid bayes_dcpt/datasets/example_grid.toml`` into a fresh store under
``--workdir``, exports ``bayes_dcpt/datasets/example_cpt.csv`` and writes ``example_cpt.meta.json`` beside
it (command, seed, versions, hardware, wall time, corpora with their byte counts, per-run throughput).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO / "bayes_dcpt" / "datasets"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default=str(REPO / "build" / "example"))
    ap.add_argument(
        "--keep", action="store_true", help="Keep an existing store (resume) instead of starting over."
    )
    ap.add_argument("--render-only", action="store_true", help="Only rewrite EXAMPLE.md from the meta JSON.")
    a = ap.parse_args()
    if a.render_only:
        render(json.loads((DATASETS / "example_cpt.meta.json").read_text()))
        return 0
    wd = Path(a.workdir)
    if wd.exists() and not a.keep:
        shutil.rmtree(wd)
    wd.mkdir(parents=True, exist_ok=True)
    db = wd / "runs.sqlite"
    spec = DATASETS / "example_grid.toml"
    csv = DATASETS / "example_cpt.csv"
    cmd = [
        "bayes-dcpt",
        "probe",
        "grid",
        str(spec.relative_to(REPO)),
        "--workdir",
        str(wd),
        "--db",
        str(db),
        "--workers",
        str(a.workers),
        "--threads",
        str(a.threads),
        "--csv",
        str(csv.relative_to(REPO)),
        "--json",
    ]
    t0 = time.time()
    import contextlib
    import io

    from bayes_dcpt.cli import main as cli

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli(cmd[1:])
    wall = time.time() - t0
    if code != 0:
        sys.stdout.write(buf.getvalue())
        return code
    res = json.loads(buf.getvalue())
    import torch
    import transformers

    from bayes_dcpt import __version__
    from bayes_dcpt.data.store import Store
    from bayes_dcpt.probe.corpora import iter_documents

    with Store(db) as st:
        runs = st.runs()
    corpora = {}
    for name in ("general", "python", "c_headers", "codec_tables"):
        p = wd / "corpora" / f"{name}.jsonl"
        docs = list(iter_documents(p))
        corpora[name] = {"documents": len(docs), "bytes": sum(len(d.encode()) for d in docs)}
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    meta = {
        "command": " ".join(cmd),
        "make": "make example-data",
        "seed": 0,
        "wall_seconds": round(wall, 1),
        "workers": a.workers,
        "threads_per_worker": a.threads,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "bayes_dcpt": __version__,
        },
        "hardware": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "system": platform.system(),
            "cuda": torch.cuda.is_available(),
        },
        "corpora": corpora,
        "jobs": [
            {k: j[k] for k in ("label", "kind", "n_params", "tokens_per_second", "wall_seconds")}
            for j in res["jobs"]
        ],
        "runs": int((runs["r_domain"].notna()).sum()),
        "rows": int(sum(1 for _ in open(csv)) - 1),
    }
    (DATASETS / "example_cpt.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    render(meta)
    print(f"wrote {csv} ({meta['rows']} rows) and example_cpt.meta.json in {wall:.0f} s")
    return 0


def render(meta: dict) -> None:
    """Write EXAMPLE.md (the human-readable record) from the meta JSON."""
    import pandas as pd

    from bayes_dcpt import data as _data

    df = _data.load(DATASETS / "example_cpt.csv")
    s = _data.summarize(df)
    v, h = meta["versions"], meta["hardware"]
    jobs = pd.DataFrame(meta["jobs"])
    pre = jobs[jobs.kind == "pretrain"]
    probes = jobs[jobs.kind == "probe"]
    by_n = probes.groupby("n_params").agg(runs=("label", "size"), median_tok_s=("tokens_per_second", "median"),
                                          median_wall_s=("wall_seconds", "median"))
    corp = "\n".join(f"| {k} | {c['documents']} | {c['bytes']:,} |" for k, c in meta["corpora"].items())
    sizes = "\n".join(f"| {int(n):,} | {int(r.runs)} | {r.median_tok_s:,.0f} | {r.median_wall_s:.0f} |"
                      for n, r in by_n.iterrows())
    pre_rows = "\n".join(f"| {r.label} | {int(r.n_params):,} | {r.tokens_per_second:,.0f} | {r.wall_seconds:.0f} |"
                         for r in pre.itertuples())
    text = f"""# The embedded example dataset (`example_cpt.csv`)

Real continual-pre-training probes run by `bayes_dcpt.probe` on CPU: {len(s['n_params'])} model sizes x
{len(s['domains'])} domains x {len(s['r_domain'])} ratios, {s['runs']} runs with {s['rows_per_run_min']}
checkpoints each, plus the base-model rows (tokens == 0) of every (domain, size): {s['rows']} rows.
Load it with `bayes_dcpt.datasets.load_example()`.

## How it was made

Command (what `make example-data` runs; the grid spec is `example_grid.toml` beside this file):

    {meta['command']}

- seed: {meta['seed']} (model initialisation, data order and mixture sampling all derive from it)
- wall time: {meta['wall_seconds']:.0f} s for the whole grid (pretraining included), {meta['workers']} worker
  processes x {meta['threads_per_worker']} thread, on a machine shared with other jobs
- versions: Python {v['python']}, torch {v['torch']}, transformers {v['transformers']}, bayes-dcpt {v['bayes_dcpt']}
- hardware: {h['cpu']}, {h['cores']} cores, {h['system']} {h['machine']}, CUDA: {h['cuda']}

## Models

Byte-level Llama-style decoders (vocabulary 256: the UTF-8 bytes; RMSNorm, rotary positions, SwiGLU, tied
embeddings) built from presets; `n_params` is the **non-embedding** parameter count (every weight except
the 256 x d token-embedding matrix, which the output head shares). Each size was first pretrained from
scratch on the general corpus (2^20 tokens, cosine LR 3e-3 -> 3e-4, 50 warmup steps, batch 16 x 128);
each probe continues that base model on the mixture for 2^19 tokens at a constant LR 5e-4 (10 warmup
steps), AdamW (0.9, 0.95, weight decay 0.1), gradient clipping 1.0, batch 16 x 128 bytes, fp32.

| pretraining | N | tokens/s | wall s |
|---|---|---|---|
{pre_rows}

| N (non-embedding) | probe runs | median tokens/s | median wall s per probe |
|---|---|---|---|
{sizes}

Losses are nats per byte (= per token) on held-out validation slices of 32,768 bytes per corpus, taken
by content hash (5% of 4 KB pieces) so that training never sees them. Checkpoints: tokens 0 (base),
8,192, 16,384, ..., 524,288 (one per doubling); the DLC probe budget is b = 32,768 tokens (b and 2b are
checkpoints). Every size was pretrained on the same 2^20 tokens, far fewer than compute-optimal for the
larger ones; the base models' losses are the tokens == 0 rows. Probes at r = 0 first rise a little in
general loss (the learning rate steps up from the end of the pretraining cosine) before they fall.

## Corpora (written by `bayes-dcpt probe corpora` from this Python installation, offline)

| corpus | documents | bytes |
|---|---|---|
{corp}

- `general`: English prose: the language-reference topics of `pydoc_data.topics` and the docstrings of
  the standard-library modules in one half of the modules (chosen by a hash of the module path);
- `python`: the source of the standard-library modules in the other half (no test suites, no codecs);
- `c_headers`: the CPython C API headers (`sysconfig.get_paths()["include"]`);
- `codec_tables`: the character-map codecs of `encodings` (decoding tables).

The corpora depend on the Python version (here {v['python']}); another version gives slightly different
text and so slightly different losses.
"""
    (DATASETS / "EXAMPLE.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
