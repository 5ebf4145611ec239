"""Regenerate the embedded example dataset: run the example grid and record how it was made.

Usage (what `make example-data` and `make long-data` run)::

    python scripts/make_example_data.py [--grid example|long] [--workers 2] [--workdir build/<grid>]

Runs ``bayes-dcpt probe grid bayes_dcpt/datasets/example_grid.toml`` into a fresh store under
``--workdir``, exports ``bayes_dcpt/datasets/example_cpt.csv`` and writes ``example_cpt.meta.json`` beside
it (command, seed, versions, hardware, wall time, corpora with their byte counts, per-run throughput).

``--grid long`` does the same for the long-CPT probe grid: ``long_cpt_grid.toml`` -> ``long_cpt.csv``,
``long_cpt.meta.json`` and ``LONG_CPT.md`` (work folder ``build/long``). The record's sentences about
token budgets, learning rates and checkpoints are derived from the grid spec and the CSV.
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

#: The grids this script can run: spec, outputs (beside the spec) and the record's wording.
GRIDS = {
    "example": {
        "spec": "example_grid.toml",
        "name": "example_cpt",
        "record": "EXAMPLE.md",
        "workdir": "example",
        "make": "make example-data",
        "title": "The embedded example dataset",
        "load": "Load it with `bayes_dcpt.datasets.load_example()`.",
    },
    "long": {
        "spec": "long_cpt_grid.toml",
        "name": "long_cpt",
        "record": "LONG_CPT.md",
        "workdir": "long",
        "make": "make long-data",
        "title": "The long-CPT probe grid",
        "load": "Load it with `bayes_dcpt.data.load(...)` on the CSV beside this file.",
    },
}


def _shown(path: Path) -> str:
    """A path as the record shows it: relative to the repository when inside it (the command runs from there)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _sharing(meta: dict) -> str:
    """Whether other jobs shared the machine, from the load average recorded at the end (older records: unknown)."""
    load, workers = meta.get("load_average"), int(meta.get("workers", 1))
    if load is None:
        return ""
    return (f", on a machine shared with other jobs (load average {load:g} at the end)" if load > workers + 0.5
            else f", alone on the machine (load average {load:g} at the end)")


#: The grids first made with file-ordered streams: their last commit then, and how BENCHMARKS.md names them.
FIRST_VERSIONS = {"long_cpt": ("ebb5832", "long-CPT grid"), "example_cpt": ("c2bec45", "example grid")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", choices=sorted(GRIDS), default="example", help="Which grid (default: example).")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default=None, help="Work folder (default: build/example or build/long).")
    ap.add_argument(
        "--keep", action="store_true", help="Keep an existing store (resume) instead of starting over."
    )
    ap.add_argument(
        "--render-only", action="store_true", help="Only rewrite the record (EXAMPLE.md etc.) from the meta."
    )
    a = ap.parse_args()
    g = GRIDS[a.grid]
    if a.render_only:
        render(json.loads((DATASETS / f"{g['name']}.meta.json").read_text()), a.grid)
        return 0
    wd = Path(a.workdir) if a.workdir is not None else REPO / "build" / g["workdir"]
    if wd.exists() and not a.keep:
        shutil.rmtree(wd)
    wd.mkdir(parents=True, exist_ok=True)
    db = wd / "runs.sqlite"
    spec = DATASETS / g["spec"]
    csv = DATASETS / f"{g['name']}.csv"
    cmd = [
        "bayes-dcpt",
        "probe",
        "grid",
        str(spec.relative_to(REPO)),
        "--workdir",
        _shown(wd),
        "--db",
        _shown(db),
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
    from bayes_dcpt.probe.grid import load_spec

    with Store(db) as st:
        runs = st.runs()
    grid = load_spec(spec, workdir=wd)
    corpora = {}
    for name, p in [("general", grid.general), *grid.domains.items()]:
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
        "make": g["make"],
        "seed": 0,
        "wall_seconds": round(wall, 1),
        "load_average": round(os.getloadavg()[0], 1),  # 1-minute, at the end: were other jobs running beside it?
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
    (DATASETS / f"{g['name']}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    render(meta, a.grid)
    print(f"wrote {csv} ({meta['rows']} rows) and {g['name']}.meta.json in {wall:.0f} s")
    return 0


def _tokens(n: int) -> str:
    """A token count as a power of two when it is one (2^20), else with thousands separators."""
    n = int(n)
    return f"2^{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else f"{n:,}"


def _lr(x: float) -> str:
    """A learning rate in short scientific notation: 3e-3, 2.5e-4."""
    mant, exp = f"{float(x):.6e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"


def _lr_phrase(t) -> str:
    """``cosine LR 3e-3 -> 3e-4`` or ``constant LR 5e-4`` from TrainSettings."""
    if t.schedule == "constant":
        return f"constant LR {_lr(t.lr)}"
    return f"{t.schedule} LR {_lr(t.lr)} -> {_lr(t.lr * t.min_lr_ratio)}"


def _grid_text(grid: dict, df) -> dict[str, str]:
    """The record's sentences that depend on the grid spec (token budgets, schedules, checkpoints)."""
    from bayes_dcpt import data as _data
    from bayes_dcpt.probe.configs import LEGACY_SHUFFLE_TOKENS
    from bayes_dcpt.probe.grid import load_spec, pretrain_config, probe_config

    spec = load_spec(DATASETS / grid["spec"], workdir=REPO / "build" / grid["workdir"])
    job = spec.jobs()[0]
    pre = pretrain_config(spec, job.size).train
    tr = probe_config(spec, job).train
    pts = sorted(int(t) for t in _data.fit_rows(df)["tokens"].unique())
    head = [t for t in pts if t <= 2 * pts[0]]
    per = spec.eval_per_octave
    if per == 1:
        spacing = "one per doubling"
    else:
        words = {2: "two", 3: "three", 4: "four"}
        spacing = (
            f"{words.get(per, f'{per:g}')} per doubling, {len(pts)} in all: "
            f"{pts[0]:,} x 2^(k/{per:g}) rounded to\nwhole optimizer steps of "
            f"{tr.batch_size * tr.seq_len:,} tokens"
        )
    pre_tokens = _tokens(pretrain_config(spec, job.size).tokens)
    # the r = 0 bump: general loss above the base model's at some checkpoint, in most (domain, size) cells
    base = _data.base_losses(df).set_index(["domain", "n_params"])["loss_general"]
    cpt = _data.fit_rows(df)
    peak = cpt[cpt.r_domain == 0.0].groupby(["domain", "n_params"])["loss_general"].max()
    rises = len(peak) > 0 and 2 * int((peak > base.loc[peak.index]).sum()) > len(peak)
    bump = (
        " Probes at r = 0 first rise a little in\ngeneral loss (the learning rate steps up from the end of "
        "the pretraining cosine) before they fall."
        if rises
        else ""
    )
    order = (
        "\n\n**Data order.** These probes read each corpus in its file order, shuffled only 66,048 tokens at a "
        "time (the\ngrid pins `shuffle_tokens = 66048`; the probe runner's default is now 2^23 tokens, a fresh "
        "random order every\nepoch). The general corpus holds the language reference first (39% of its bytes), "
        "then docstrings, and the\nvalidation slice is 77% docstrings. So a probe's general stream is the "
        "reference alone for its first ~400k general\ntokens, then docstrings alone until about 1.18M, then the "
        f"reference again. The base models ended their {pre_tokens}\npretraining tokens on docstrings. The r = 0 "
        "rise above is therefore mostly the stream going back to the\nreference (five-fold smaller in probes made "
        "again with a shuffled stream), and the later falls in general\nloss at 450k-700k general tokens are the "
        "stream reaching the docstrings (BENCHMARKS.md, \"The probes' data\norder\"; "
        "`benchmarks/bench_stream_order.py`). A law of CPT cannot foresee these."
        if tr.shuffle_tokens == LEGACY_SHUFFLE_TOKENS and bump
        else f"\n\n**Data order.** Every training stream shuffles {tr.shuffle_tokens:,} tokens at a time (the probe "
        "runner's default), more\nthan a corpus holds: each stretch of a stream holds its corpus's mix of texts."
        + (" The first version of this grid read each\ncorpus in its file order and its late checkpoints jumped "
           f"where the text changed (BENCHMARKS.md, \"The\n{FIRST_VERSIONS[grid['name']][1]} made again with "
           f"shuffled streams\"; `git show {FIRST_VERSIONS[grid['name']][0]}:bayes_dcpt/datasets/{grid['name']}.csv`)."
           if grid["name"] in FIRST_VERSIONS else "")
    )
    return {
        "order": order,
        "pre": (f"{pre_tokens} tokens, {_lr_phrase(pre)}, {pre.warmup_steps} warmup steps, "
                f"batch {pre.batch_size} x {pre.seq_len}"),
        "pre_tokens": pre_tokens,
        "cpt": (
            f"{_tokens(spec.tokens)} tokens at a {_lr_phrase(tr)} ({tr.warmup_steps} warmup\nsteps), AdamW "
            f"({float(tr.beta1)}, {float(tr.beta2)}, weight decay {float(tr.weight_decay)}), "
            f"gradient clipping {float(tr.grad_clip)}, batch {tr.batch_size} x {tr.seq_len} bytes"
        ),
        "val": (
            f"{spec.val_tokens:,} bytes per corpus, taken\n"
            f"by content hash ({spec.val_fraction:.0%} of 4 KB pieces)"
        ),
        "checkpoints": f"{', '.join(f'{t:,}' for t in head)}, ..., {pts[-1]:,} ({spacing})",
        "budget": f"{spec.probe_budget:,}" if spec.probe_budget else "",
        "bump": bump,
    }


_CORPUS_NOTES = {
    "general": "- `general`: English prose: the language-reference topics of `pydoc_data.topics` and the "
    "docstrings of\n  the standard-library modules in one half of the modules "
    "(chosen by a hash of the module path);",
    "python": "- `python`: the source of the standard-library modules in the other half "
    "(no test suites, no codecs);",
    "c_headers": '- `c_headers`: the CPython C API headers (`sysconfig.get_paths()["include"]`);',
    "codec_tables": "- `codec_tables`: the character-map codecs of `encodings` (decoding tables).",
}


def render(meta: dict, grid_name: str = "example") -> None:
    """Write the human-readable record (EXAMPLE.md / LONG_CPT.md) from the meta JSON, the spec and the CSV."""
    import pandas as pd

    from bayes_dcpt import data as _data

    g = GRIDS[grid_name]
    df = _data.load(DATASETS / f"{g['name']}.csv")
    s = _data.summarize(df)
    gt = _grid_text(g, df)
    v, h = meta["versions"], meta["hardware"]
    jobs = pd.DataFrame(meta["jobs"])
    pre = jobs[jobs.kind == "pretrain"]
    probes = jobs[jobs.kind == "probe"]
    by_n = probes.groupby("n_params").agg(runs=("label", "size"), median_tok_s=("tokens_per_second", "median"),
                                          median_wall_s=("wall_seconds", "median"))
    corp = "\n".join(f"| {k} | {c['documents']} | {c['bytes']:,} |" for k, c in meta["corpora"].items())
    notes = [_CORPUS_NOTES[k] for k in meta["corpora"] if k in _CORPUS_NOTES]
    notes[-1] = notes[-1][:-1] + "." if notes and notes[-1].endswith(";") else notes[-1]
    notes_text = "\n".join(notes)
    sizes = "\n".join(f"| {int(n):,} | {int(r.runs)} | {r.median_tok_s:,.0f} | {r.median_wall_s:.0f} |"
                      for n, r in by_n.iterrows())
    pre_rows = "\n".join(f"| {r.label} | {int(r.n_params):,} | {r.tokens_per_second:,.0f} | {r.wall_seconds:.0f} |"
                         for r in pre.itertuples())
    text = f"""# {g['title']} (`{g['name']}.csv`)

Real continual-pre-training probes run by `bayes_dcpt.probe` on CPU: {len(s['n_params'])} model sizes x
{len(s['domains'])} domains x {len(s['r_domain'])} ratios, {s['runs']} runs with {s['rows_per_run_min']}
checkpoints each, plus the base-model rows (tokens == 0) of every (domain, size): {s['rows']} rows.
{g['load']}

## How it was made

Command (what `{g['make']}` runs; the grid spec is `{g['spec']}` beside this file):

    {meta['command']}

- seed: {meta['seed']} (model initialisation, data order and mixture sampling all derive from it)
- wall time: {meta['wall_seconds']:.0f} s for the whole grid (pretraining included), {meta['workers']} worker
  processes x {meta['threads_per_worker']} thread{_sharing(meta)}
- versions: Python {v['python']}, torch {v['torch']}, transformers {v['transformers']}, bayes-dcpt {v['bayes_dcpt']}
- hardware: {h['cpu']}, {h['cores']} cores, {h['system']} {h['machine']}, CUDA: {h['cuda']}

## Models

Byte-level Llama-style decoders (vocabulary 256: the UTF-8 bytes; RMSNorm, rotary positions, SwiGLU, tied
embeddings) built from presets; `n_params` is the **non-embedding** parameter count (every weight except
the 256 x d token-embedding matrix, which the output head shares). Each size was first pretrained from
scratch on the general corpus ({gt['pre']});
each probe continues that base model on the mixture for {gt['cpt']}, fp32.

| pretraining | N | tokens/s | wall s |
|---|---|---|---|
{pre_rows}

| N (non-embedding) | probe runs | median tokens/s | median wall s per probe |
|---|---|---|---|
{sizes}

Losses are nats per byte (= per token) on held-out validation slices of {gt['val']} \
so that training never sees them. Checkpoints: tokens 0 (base),
{gt['checkpoints']}; the DLC probe budget is b = {gt['budget']} tokens (b and 2b are
checkpoints). Every size was pretrained on the same {gt['pre_tokens']} tokens, \
far fewer than compute-optimal for the
larger ones; the base models' losses are the tokens == 0 rows.{gt['bump']}{gt['order']}

## Corpora (written by `bayes-dcpt probe corpora` from this Python installation, offline)

| corpus | documents | bytes |
|---|---|---|
{corp}

{notes_text}

The corpora depend on the Python version (here {v['python']}); another version gives slightly different
text and so slightly different losses.
"""
    (DATASETS / g["record"]).write_text(text)


if __name__ == "__main__":
    sys.exit(main())
