"""Decision at scale through the command line: r* at the largest size from fits of the two smaller sizes.

For the packaged example and long-CPT grids: the training rows are every run of the two smaller sizes plus every
base row (``bench_cli_defaults.splits``, the size split); ``bayes-dcpt fit train.csv [--law auto] --out f.nc``
with every other option at its default, then for each domain and threshold T (2%, 3%) ``bayes-dcpt optimize f.nc
--domain D --n-params N_max --tokens D_max --max-general-increase T --json --measured full.csv``: r* at the largest
size and its largest token count, checked against the crossing the full grid's runs at that size measure (the
posterior predictive check of ``decide.measured``: ``agrees`` when the measured crossing lies inside the 90% interval
of what the fit predicts those runs to show; ``contains`` when r*'s own 90% interval holds it; ``one-run contains``
when the 90% interval of the ratio where one run crosses the threshold holds it, the interval ``optimize`` prints
for every question, measured there or not).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_rstar_scale_cli.py [--work DIR] [--laws default,auto]
[--fit-args=--transfer] [--suffix S]`` (about 12 minutes; the fits are kept in DIR, named with the suffix, and
reused); rows in ``benchmarks/results/rstar_scale_cli.csv``. With ``--checkpoints`` the same
question is asked at every token count the largest size measures at two or more ratios, not only the last (is a
miss the law's, or one checkpoint's data-order jump?): ``benchmarks/results/rstar_scale_cli_checkpoints.csv``.
Every cell is also asked without ``--measured`` (``nearest ...`` columns): the check ``optimize`` then makes of the
law's r* at the nearest size and tokens the training runs measure, i.e. whether a user could have seen the miss
coming before training the larger model.
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
    ap.add_argument("--checkpoints", action="store_true",
                    help="ask at every token count the largest size measures, not only the last")
    ap.add_argument("--datasets", default="example,long")
    ap.add_argument("--long-csv", type=Path, default=None,
                    help="another long-CPT grid in place of the packaged one (benchmarks/long_shuffled_grid.toml)")
    ap.add_argument("--suffix", default="", help="appended to the CSV name")
    ap.add_argument("--laws", default="default,auto", help="which fits: default (no --law) and/or auto")
    ap.add_argument("--fit-args", default="", help="extra arguments of every fit, e.g. --fit-args=--transfer")
    a = ap.parse_args()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp())
    rows = []
    for name in a.datasets.split(","):
        _, train, test = splits(name, a.long_csv)[1]
        full = pd.concat([train, test])
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        train.to_csv(d / "train.csv", index=False)
        full.to_csv(d / "full.csv", index=False)
        n_max = float(full["n_params"].max())
        at = full[(full["n_params"] == n_max) & (full["tokens"] > 0)]
        ratios = at.groupby("tokens")["r_domain"].nunique()
        tokens = sorted(ratios.index[ratios >= 2]) if a.checkpoints else [float(at["tokens"].max())]
        for law in a.laws.split(","):
            fit_nc = d / f"{law}{a.suffix}.nc"
            if not fit_nc.exists():
                p = subprocess.run([*CLI, "fit", d / "train.csv", "--out", fit_nc,
                                    *([] if law == "default" else ["--law", law]), "--allow-bad-fit",
                                    *a.fit_args.split()], capture_output=True, text=True)
                print(f"{name} {law}: fit exit {p.returncode}", flush=True)
            for dom in sorted(full["domain"].unique()):
                for tok in tokens:
                    for T in (0.02, 0.03):
                        rows.append({"grid": name, "law": law, "domain": dom, "tokens": tok, "T": T,
                                     **_ask(fit_nc, dom, n_max, tok, T, d / "full.csv")})
                        print(rows[-1], flush=True)
    OUT.mkdir(exist_ok=True)
    name = f"rstar_scale_cli{'_checkpoints' if a.checkpoints else ''}{a.suffix}.csv"
    pd.DataFrame(rows).to_csv(OUT / name, index=False)


def _ask(fit_nc: Path, dom: str, n_params: float, tokens: float, T: float, measured: Path) -> dict:
    """``bayes-dcpt optimize --json --measured``'s r*, its check against the measured crossing, and its flags."""
    js = _optimize(fit_nc, dom, n_params, tokens, T, "--measured", measured)
    r, m = js["r_domain"], js.get("measured_check") or {}
    pred = m.get("predicted_interval") or [None, None]
    return {"r* median": r["median"], "r* lo": r["lo"], "r* hi": r["hi"], "measured crossing": m.get("crossing"),
            "predicted lo": pred[0], "predicted hi": pred[1], "pit": m.get("pit"), "agrees": m.get("agrees"),
            "contains": m.get("contains"), "one-run lo": js["one_run_crossing"]["lo"],
            "one-run hi": js["one_run_crossing"]["hi"], "one-run contains": m.get("one_run_contains"),
            "infeasible": js["counts"].get("infeasible"),
            "n_draws": js["counts"]["n_draws"], "flags": len(js.get("flags", [])),
            **_nearest(_optimize(fit_nc, dom, n_params, tokens, T))}


def _optimize(fit_nc: Path, dom: str, n_params: float, tokens: float, T: float, *extra: object) -> dict:
    """``bayes-dcpt optimize --json``'s answer for ``dom`` at (N, D) under threshold T (``extra``: more options)."""
    p = subprocess.run([*CLI, "optimize", fit_nc, "--domain", dom, "--n-params", str(n_params),
                        "--tokens", str(tokens), "--max-general-increase", str(T), "--json", *extra],
                       capture_output=True, text=True)
    if not p.stdout.strip():
        raise RuntimeError(f"optimize {fit_nc} {dom} D={tokens} T={T}: exit {p.returncode}\n{p.stderr[-3000:]}")
    return json.loads(p.stdout)["domains"][dom]


def _nearest(js: dict) -> dict:
    """The check of an answer asked without ``--measured``, as a user asks before training at that size.

    The fit's own runs measure nothing there, so ``optimize`` checks the law's r* at the nearest size and tokens
    they do measure. Does that check (made before the run) foresee the miss at the larger size?
    """
    m = js.get("nearest_measured_check") or {}
    lo, hi = m.get("interval") or [None, None]
    return {"nearest N": m.get("n_params"), "nearest D": m.get("tokens"), "nearest crossing": m.get("crossing"),
            "nearest r* lo": lo, "nearest r* hi": hi, "nearest pit": m.get("pit"),
            "nearest agrees": m.get("agrees"), "nearest contains": m.get("contains")}


if __name__ == "__main__":
    main()
