"""Decision at scale through the command line: r* at the largest size from fits of the two smaller sizes.

For the packaged example and long-CPT grids: the training rows are every run of the two smaller sizes plus every
base row (``bench_cli_defaults.splits``, the size split); ``bayes-dcpt fit train.csv [--law auto] --out f.nc``
with every other option at its default, then for each domain and threshold T (2%, 3%) ``bayes-dcpt optimize f.nc
--domain D --n-params N_max --tokens D_max --max-general-increase T --json --measured full.csv``: r* at the largest
size and its largest token count, checked against the crossing the full grid's runs at that size measure (the
posterior predictive check of ``decide.measured``: ``agrees`` when the measured crossing lies inside the 90% interval
of what the fit predicts those runs to show; ``contains`` when r*'s own 90% interval holds it).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_rstar_scale_cli.py [--work DIR]`` (about 12 minutes; the fits
are kept in DIR and reused); rows in ``benchmarks/results/rstar_scale_cli.csv``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli_defaults import CLI, splits

OUT = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=None, help="where the fits are written (and reused); default: a temp dir")
    a = ap.parse_args()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp())
    rows = []
    for name in ("example", "long"):
        _, train, test = splits(name)[1]
        full = pd.concat([train, test])
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        train.to_csv(d / "train.csv", index=False)
        full.to_csv(d / "full.csv", index=False)
        n_max = float(full["n_params"].max())
        d_max = float(full.loc[full["n_params"] == n_max, "tokens"].max())
        for law in ("default", "auto"):
            fit_nc = d / f"{law}.nc"
            if not fit_nc.exists():
                p = subprocess.run([*CLI, "fit", d / "train.csv", "--out", fit_nc,
                                    *([] if law == "default" else ["--law", law]), "--allow-bad-fit"],
                                   capture_output=True, text=True)
                print(f"{name} {law}: fit exit {p.returncode}", flush=True)
            for dom in sorted(full["domain"].unique()):
                for T in (0.02, 0.03):
                    p = subprocess.run([*CLI, "optimize", fit_nc, "--domain", dom, "--n-params", str(n_max),
                                        "--tokens", str(d_max), "--max-general-increase", str(T), "--json",
                                        "--measured", d / "full.csv"], capture_output=True, text=True)
                    js = json.loads(p.stdout)
                    r, m = js["r_domain"], js.get("measured_check") or {}
                    rows.append({"grid": name, "law": law, "domain": dom, "T": T, "r* median": r["median"],
                                 "r* lo": r["lo"], "r* hi": r["hi"], "measured crossing": m.get("crossing"),
                                 "predicted lo": (m.get("predicted_interval") or [None, None])[0],
                                 "predicted hi": (m.get("predicted_interval") or [None, None])[1],
                                 "pit": m.get("pit"), "agrees": m.get("agrees"), "contains": m.get("contains"),
                                 "infeasible": js["counts"].get("infeasible"), "n_draws": js["counts"]["n_draws"],
                                 "flags": len(js.get("flags", []))})
                    print(rows[-1], flush=True)
    OUT.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT / "rstar_scale_cli.csv", index=False)


if __name__ == "__main__":
    main()
