"""``bayes-dcpt data ...``: validate and summarise measurement tables."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bayes_dcpt.cli._app import console, data_app, emit_json
from bayes_dcpt.data import schema as _data


def _fmt_counts(values: list[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def print_summary(s: dict, title: str) -> None:
    """Render :func:`bayes_dcpt.data.schema.summarize` output as a rich table."""
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("rows", f"{s['rows']} ({s['base_rows']} base-model rows with tokens == 0)")
    t.add_row("domains", ", ".join(s["domains"]))
    t.add_row("model sizes N", _fmt_counts(s["n_params"]))
    t.add_row("ratios r_domain", _fmt_counts(s["r_domain"]))
    t.add_row("CPT tokens", f"{s['tokens_min']:.3g} .. {s['tokens_max']:.3g}")
    t.add_row("runs", f"{s['runs']} ({s['rows_per_run_min']}..{s['rows_per_run_max']} checkpoints per run)")
    t.add_row("losses", f"general {s['loss_general_rows']} rows, domain {s['loss_domain_rows']} rows")
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
    if json_out:
        emit_json({"valid": True, **s})
    else:
        console.print(f"[green]valid[/green]: {file}")
        print_summary(s, "summary")
