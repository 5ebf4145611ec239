"""``bayes-dcpt data ...``: validate and summarise measurement tables."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bayes_dcpt.cli._app import console, data_app, duplicates_note, emit_json, err_console, prepare_outputs
from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.store_frames import summary_counts
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.report.fit_sections import checkpoints_per_run


def _fmt_counts(values: list[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def n_of(k: int, word: str, plural: str = "") -> str:
    """``1 row``, ``2 rows``, ``1,000 losses``."""
    return f"{k:,} {word if k == 1 else plural or word + 's'}"


def counts_line(c: dict) -> str:
    """``324 rows (315 checkpoints of 45 CPT runs + 9 base-model rows), 648 losses``: what a table holds.

    ``c`` is :func:`~bayes_dcpt.data.store_frames.summary_counts` (or a ``data import`` result, which has its keys):
    ``data validate``, ``data import`` and ``data show`` print this same line for the same rows. A run is a CPT
    run (its checkpoints have tokens > 0); a base-model row (tokens == 0) is not a run; a loss is one value of
    loss_general or loss_domain (the store keeps one record per loss).
    """
    cpt, base = n_of(c["rows"] - c["base_rows"], "checkpoint"), n_of(c["base_rows"], "base-model row")
    losses = n_of(c["losses"], "loss", "losses")
    return f"{n_of(c['rows'], 'row')} ({cpt} of {n_of(c['runs'], 'CPT run')} + {base}), {losses}"


def print_summary(s: dict, title: str) -> None:
    """Render :func:`bayes_dcpt.data.schema.summarize` output as a rich table."""
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("rows", f"{s['rows']} ({n_of(s['base_rows'], 'base-model row')} with tokens == 0)")
    t.add_row("domains", ", ".join(s["domains"]))
    t.add_row("model sizes N", ", ".join(f"{n:,.0f}" for n in s["n_params"]))
    t.add_row("ratios r_domain", _fmt_counts(s["r_domain"]))
    t.add_row("CPT tokens", f"{s['tokens_min']:,.0f} to {s['tokens_max']:,.0f}")
    t.add_row("runs", f"{s['runs']} ({checkpoints_per_run(s)} per run)")
    absent = s.get("loss_columns_absent") or []
    t.add_row("losses", f"general {s['loss_general_rows']} rows, domain {s['loss_domain_rows']} rows"
              + (f" (no column {', '.join(absent)} in the file: only the other loss can be fitted)" if absent else ""))
    console.print(t)


@data_app.command("validate")
def validate_cmd(
    file: Path = typer.Argument(..., metavar="FILE", help="CSV, TSV or Parquet file of CPT measurements."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Validate a measurement table and print a one-screen summary (exit 2 with one line per problem).

    Example: [bold]bayes-dcpt data validate probes.csv[/bold]
    """
    df = _data.load(file)
    s = _data.summarize(df)
    dups = int(df.attrs.get("duplicates_dropped", 0))
    if json_out:
        emit_json({"valid": True, **s, **summary_counts(s), "duplicates_dropped": dups})
    else:
        console.print(f"[green]valid[/green]: {file}")
        if dups:  # exact repeats are kept once: said, so that a row count one short is not a mystery
            err_console.print(duplicates_note(dups, file), markup=False, highlight=False, soft_wrap=True)
        console.print(counts_line(summary_counts(s)), soft_wrap=True, markup=False, highlight=False)
        print_summary(s, "summary")


#: The embedded datasets ``data example`` writes: loader name and what it is.
EXAMPLES = {
    "example": ("load_example", "the example grid: 3 domains x 3 model sizes x 5 ratios x 7 checkpoints, real CPU "
                                "probes (bayes_dcpt/datasets/EXAMPLE.md)"),
    "long": ("load_long_cpt", "the long-CPT grid: 2 domains x 3 sizes x 7 ratios to 2^21 CPT tokens, 17 checkpoints "
                              "(LONG_CPT.md)"),
    "schedules": ("load_schedules", "the LR-schedule grid for fit-dynamics: constant, cosine, WSD and no re-warmup "
                                    "(SCHEDULES.md)"),
    "trainer": ("trainer_run_path", "the logs of a real transformers.Trainer run (a tiny model, 8 steps, general and "
                                    "domain eval sets): trainer_state.json, TensorBoard events in tb/, a W&B-layout "
                                    "history CSV and the mapping runs.toml, for data import --from"),
}


@data_app.command("example")
def example_cmd(
    out: Path = typer.Option(..., "--out", help="Output file: .csv or .parquet (a folder for trainer)."),
    dataset: str = typer.Option("example", "--dataset", help="example, long, schedules or trainer."),
) -> None:
    """Write an embedded dataset (real probe runs) to a file, to try every command on.

    Example: [bold]bayes-dcpt data example --out probes.csv[/bold]
    """
    import shutil

    from bayes_dcpt import datasets

    if dataset not in EXAMPLES:
        raise BayesDCPTError(f"--dataset must be one of {', '.join(EXAMPLES)}, not {dataset!r}")
    if dataset == "trainer":
        if out.exists() and not out.is_dir():
            raise BayesDCPTError(f"--out {out}: the trainer example is a folder; give a folder name")
        shutil.copytree(datasets.trainer_run_path(), out, dirs_exist_ok=True)
        console.print(f"wrote {out}/: {EXAMPLES[dataset][1]}", markup=False, highlight=False, soft_wrap=True)
        return
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise BayesDCPTError(f"--out {out}: write a .csv or .parquet file")
    loader, what = EXAMPLES[dataset]
    df = getattr(datasets, loader)()
    prepare_outputs(out)
    if out.suffix.lower() == ".csv":
        df.to_csv(out, index=False)
    else:
        df.to_parquet(out, index=False)
    console.print(f"wrote {len(df)} rows to {out}: {what}", markup=False, highlight=False)
