"""The honest-fit target through the command line with its defaults, as a user (or our held-out grid) runs it.

For every split: the training rows go to a CSV, ``bayes-dcpt fit train.csv [--law L] --out fit.nc`` runs with
every other option at its default (4 chains x 1000 draws after 1000 tuning steps, the held-out calibration of the
bands, all domains of the file in one fit), then ``bayes-dcpt predict fit.nc test.csv --out pred.csv`` (90%
posterior predictive bands). The held-out rows are scored as in ``bench_honest_fit.py`` (MAPE of the band's centre,
share inside the 90% band) beside the careful per-domain point fits of L3 and L1 (``fit_point`` on each domain's
rows). "meets target": MAPE no worse than the better point fit, coverage in [0.80, 0.95]. With each cell, what its
held-out runs can establish (``predict``'s own check, ``posterior.heldout``): the runs, the 90% range of the
coverage they allow, and whether a miss is established (the range excludes 0.90). Held-out rows are scored after
each run's LR warm-up, where the law is fitted (``check_predictions(warmup=True)``, as ``predict`` scores them), and
the point fits are fitted to the training rows after it; the CLI's scores of every held-out row are kept beside
(``MAPE % all rows``, ``coverage 90% all rows``: the protocol before the thirtieth session).

Laws: the default (no ``--law``: ``cpt`` when every (domain, size) has base rows, else ``dcpt``), ``--law dcpt``
and ``--law auto``. Splits (all domains of a grid in one fit, as a user fits a file):

* ``long`` (packaged long-CPT grid, 2 domains): tokens (fit D <= 2^19, predict 2^19 < D <= 2^21); size (fit the two
  smaller sizes + every base row, predict 443k).
* ``example`` (packaged example grid, 3 domains): the same two kinds (last third of tokens: D >= 262k held out;
  largest size 443k), and held-out ratios (the runs at r = 0.25 and 0.75 of every size).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_cli_defaults.py [--datasets long,example] [--laws
default,dcpt,auto] [--suffix S]``; raw rows in ``benchmarks/results/cli_defaults<S>.csv``
(written after every split). Exit codes and wall times of the
commands are recorded with the scores (the fit exits 3 or 4 when its checks fail; the bands are scored anyway).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, md_table
from _evaluate import _score

from bayes_dcpt import data as _data
from bayes_dcpt import datasets
from bayes_dcpt.fitting.pointfit import fit_point
from bayes_dcpt.posterior.heldout import check_predictions

OUT = Path(__file__).parent / "results"
CLI = [str(Path(sys.executable).parent / "bayes-dcpt")]
KEYS = ["domain", "n_params", "tokens", "r_domain", "run_id"]


def splits(name: str, long_csv: Path | None = None) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """``(split name, train rows, held-out CPT rows)`` of a packaged grid, every domain in one frame.

    ``long_csv``: another long-CPT grid in its place (the same grid made again with shuffled streams).
    """
    if name == "long":
        df = _data.load(long_csv) if long_csv else datasets.load_long_cpt()
    else:
        df = datasets.load_example()
    base = df["tokens"] == 0
    big = np.isclose(df["n_params"], df["n_params"].max())
    late = df["tokens"] > 2**19 if name == "long" else df["tokens"] >= 262144
    tok = "fit D <= 2^19, predict 2^19 < D <= 2^21" if name == "long" else "last third of tokens (262k, 524k)"
    out = [(f"{name}: {tok}", df[~late], df[late]),
           (f"{name}: fit the two smaller sizes (+ base rows), predict 443k", df[~big | base], df[big & ~base])]
    if name == "example":  # the held-out ratios: the runs at r = 0.25 and 0.75, every size
        held = df["r_domain"].isin([0.25, 0.75]) & ~base
        out.append((f"{name}: ratios 0.25, 0.75 held out", df[~held], df[held]))
    return out


def _run(args: list[str]) -> tuple[int, float, str, str]:
    t0 = time.perf_counter()
    p = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)
    return p.returncode, time.perf_counter() - t0, p.stdout, p.stderr


def _point_rows(split: str, train: pd.DataFrame, test: pd.DataFrame, targets: list[str]) -> list[dict]:
    rows = []
    for law in ("L3", "L1"):
        preds, secs = [], 0.0
        for dom in sorted(test["domain"].astype(str).unique()):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pf = fit_point(train[train["domain"] == dom], law, "both")
            secs += time.perf_counter() - t0
            td = test[test["domain"] == dom]
            pm = pf.predict(td[KEYS])
            preds.append(pd.DataFrame({f"loss_{t}_mean": pm[f"loss_{t}_pred"].to_numpy() for t in targets},
                                      index=td.index))
        pred = pd.concat(preds).loc[test.index].reset_index(drop=True)
        for t in targets:
            rows.append(_score(f"point {law}, per domain", "none", split, t, test.reset_index(drop=True), pred,
                               secs))
    return rows


def run(split: str, train: pd.DataFrame, test: pd.DataFrame, laws: list[str], work: Path,
        extra_args: list[str]) -> list[dict]:
    test = _data.fit_rows(_data.load(test)).reset_index(drop=True)
    targets = [t for t in ("general", "domain") if test[f"loss_{t}"].notna().any()]
    # the law is fitted after each run's LR warm-up, so it is judged there; the point fits too (a careful fit
    # leaves the warm-up's transient out); the CLI's scores of every held-out row are kept beside (`all rows`)
    warm = _data.in_warmup(test)
    rows = _point_rows(split, _data.after_burn_in(_data.load(train)), test[~warm].reset_index(drop=True), targets)
    train_csv, test_csv = work / "train.csv", work / "test.csv"
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    for law in laws:
        fit_nc, pred_csv = work / f"{law}.nc", work / f"{law}.csv"
        fit_nc.unlink(missing_ok=True)
        pred_csv.unlink(missing_ok=True)
        code, secs, out, err = _run(["fit", train_csv, *([] if law == "default" else ["--law", law]), "--out", fit_nc,
                                "--json", *extra_args])
        verdict = json.loads(out) if out.strip().startswith("{") else {}
        diag = verdict.get("diagnostics", {})
        extra = {"fit exit code": code, "fit s": secs, "law fitted": verdict.get("law", law),
                 "R-hat max": diag.get("rhat_max"), "ESS bulk min": diag.get("ess_bulk_min"),
                 "divergences": diag.get("divergences"), "adequate": diag.get("adequate"),
                 # --law auto: each law's final weight (held-out elpd; screened) and what the fit noted on the way
                 "laws": "; ".join(f"{r['law']} {r['weight']:.2f} (elpd {r.get('elpd_holdout')}, screened "
                                   f"{r.get('screened')})" for r in verdict.get("laws") or []),
                 "notes": " | ".join(verdict.get("notes") or [])}
        if not fit_nc.exists():
            print(f"  {split}: {law}: fit failed (exit {code}): {err.strip()[-400:]}")
            rows += [{"split": split, "target": t, "method": f"cli {law}", "error": err.strip()[-400:], **extra}
                     for t in targets]
            continue
        pcode, psecs, _, perr = _run(["predict", fit_nc, test_csv, "--out", pred_csv])
        if not pred_csv.exists():
            print(f"  {split}: {law}: predict failed (exit {pcode}): {perr.strip()[-400:]}")
            rows += [{"split": split, "target": t, "method": f"cli {law}", "error": perr.strip()[-400:], **extra}
                     for t in targets]
            continue
        pred = pd.read_csv(pred_csv)
        assert len(pred) == len(test) and np.allclose(pred["tokens"], test["tokens"]), "rows out of order"
        check = check_predictions(pred, 0.9, fitted=train, warmup=True)
        pooled = check.table.drop_duplicates("target", keep="last")
        after = ~warm
        for t in targets:
            c = pooled.set_index("target").loc[t]  # every domain together, with what its runs can establish
            every = _score("", "", split, t, test, pred, secs)
            rows.append(_score(f"cli {law}", "posterior predictive", split, t, test[after].reset_index(drop=True),
                               pred[after].reset_index(drop=True), secs,
                               {**extra, "predict exit code": pcode, "predict s": psecs, "runs": c["runs"],
                                "plausible lo": c["plausible_lo"], "plausible hi": c["plausible_hi"],
                                "established miss": bool(c["clear"]), "warm-up rows": int(check.warmup_rows),
                                "MAPE % all rows": every["MAPE %"],
                                "coverage 90% all rows": every["coverage 90%"]}))
        print(f"  {split}: {law}: exit {code}, {secs:.0f} s, R-hat {extra['R-hat max']}, "
              f"adequate {extra['adequate']}")
    return rows


def target_check(table: pd.DataFrame) -> pd.DataFrame:
    best = (table[table["method"].str.startswith("point")].groupby(["split", "target"])["MAPE %"].min()
            .rename("best point MAPE %"))
    table = table.join(best, on=["split", "target"])
    cov = table["coverage 90%"]
    cli = table["method"].str.startswith("cli")
    ok = (table["MAPE %"] <= table["best point MAPE %"]) & (cov >= 0.80) & (cov <= 0.95)
    table["meets target"] = np.where(cli, np.where(ok, "yes", "no"), "")
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="long,example")
    ap.add_argument("--laws", default="default,dcpt,auto")
    ap.add_argument("--fit-args", default="", help="appended to every fit (a smoke test: '--sampler laplace')")
    ap.add_argument("--suffix", default="", help="appended to the CSV name")
    ap.add_argument("--long-csv", type=Path, default=None,
                    help="another long-CPT grid in place of the packaged one (benchmarks/long_shuffled_grid.toml)")
    a = ap.parse_args()
    print(machine())
    rows: list[dict] = []
    path = OUT / f"cli_defaults{a.suffix}.csv"
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.datasets.split(","):
            for i, (split, train, test) in enumerate(splits(name, a.long_csv)):
                print(f"{split}: {int((train['tokens'] > 0).sum())} train rows, {len(test)} held out")
                work = Path(tmp) / f"{name}{i}"
                work.mkdir()
                rows += run(split, train, test, a.laws.split(","), work, a.fit_args.split())
                table = target_check(pd.DataFrame(rows))
                if not a.fit_args or a.suffix:  # a smoke test with other settings (no suffix) writes nothing
                    OUT.mkdir(exist_ok=True)
                    table.to_csv(path, index=False)  # after every split: a late failure loses nothing
    cols = ["split", "target", "method", "law fitted", "MAPE %", "coverage 90%", "MAPE % all rows",
            "coverage 90% all rows", "runs", "plausible lo",
            "plausible hi", "established miss", "meets target", "fit exit code", "fit s", "R-hat max", "adequate"]
    print(md_table(table[[c for c in cols if c in table]]))


if __name__ == "__main__":
    main()
