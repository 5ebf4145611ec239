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
import subprocess
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
    ap.add_argument("--keep", action="store_true", help="Keep an existing store (resume) instead of starting over.")
    a = ap.parse_args()
    wd = Path(a.workdir)
    if wd.exists() and not a.keep:
        shutil.rmtree(wd)
    wd.mkdir(parents=True, exist_ok=True)
    db = wd / "runs.sqlite"
    spec = DATASETS / "example_grid.toml"
    csv = DATASETS / "example_cpt.csv"
    cmd = ["bayes-dcpt", "probe", "grid", str(spec.relative_to(REPO)), "--workdir", str(wd), "--db", str(db),
           "--workers", str(a.workers), "--threads", str(a.threads), "--csv", str(csv.relative_to(REPO)), "--json"]
    t0 = time.time()
    from bayes_dcpt.cli import main as cli

    import contextlib
    import io

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
    from bayes_dcpt.probe.corpora import iter_documents
    from bayes_dcpt.store import Store

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
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "bayes_dcpt": __version__},
        "hardware": {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "system": platform.system(),
                     "cuda": torch.cuda.is_available()},
        "corpora": corpora,
        "jobs": [{k: j[k] for k in ("label", "kind", "n_params", "tokens_per_second", "wall_seconds")}
                 for j in res["jobs"]],
        "runs": int((runs["r_domain"].notna()).sum()),
        "rows": int(sum(1 for _ in open(csv)) - 1),
    }
    (DATASETS / "example_cpt.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {csv} ({meta['rows']} rows) and example_cpt.meta.json in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
