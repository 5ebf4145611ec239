"""``bayes-dcpt data import|export|show``: move measurement tables into and out of the experiment store."""

from __future__ import annotations

from pathlib import Path

import typer

from bayes_dcpt.cli._app import console, data_app, emit_json
from bayes_dcpt.cli.data_cmd import print_summary
from bayes_dcpt.data import schema as _data

DB_HELP = "The experiment store (SQLite file; created when absent)."


@data_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., metavar="FILE", help="CSV, TSV or Parquet file of CPT measurements."),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    replace: bool = typer.Option(
        False, "--replace", help="Overwrite stored losses that differ (default: error)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Validate a table and add it to the store; re-importing the same rows adds nothing.

    Example: [bold]bayes-dcpt data import probes.csv --db runs.sqlite[/bold]
    """
    from bayes_dcpt.data.store import Store

    df = _data.load(file)  # validate before the store is even opened
    with Store(db) as st:
        res = st.import_frame(df, replace=replace)
    if json_out:
        emit_json({"file": str(file), "db": str(db), **res})
    else:
        console.print(
            f"imported {file} into {db}: {res['inserted']} measurements added, "
            f"{res['skipped']} already stored, "
            f"{res['runs']} runs",
            soft_wrap=True,
        )


@data_app.command("export")
def export_cmd(
    db: Path = typer.Option(..., "--db", help="The experiment store (SQLite file)."),
    out: Path = typer.Option(..., "--out", help="Output file: .csv or .parquet."),
) -> None:
    """Write every stored measurement as one table in the schema of [bold]data validate[/bold].

    Example: [bold]bayes-dcpt data export --db runs.sqlite --out exported.csv[/bold]
    """
    from bayes_dcpt.data.store import Store, StoreError

    if not db.exists():
        raise StoreError(f"no such store: {db}")
    with Store(db) as st:
        p = st.export(out)
        n = len(st.to_frame())
    console.print(f"wrote {n} rows to {p}", soft_wrap=True)


@data_app.command("show")
def show_cmd(
    db: Path = typer.Option(..., "--db", help="The experiment store (SQLite file)."),
    runs: bool = typer.Option(False, "--runs", help="Also list the runs with their status."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary (and runs) as JSON."),
) -> None:
    """Summarise the store: domains, sizes, ratios, tokens, runs by status.

    Example: [bold]bayes-dcpt data show --db runs.sqlite --runs[/bold]
    """
    from rich.table import Table

    from bayes_dcpt.data.store import Store, StoreError

    if not db.exists():
        raise StoreError(f"no such store: {db}")
    with Store(db) as st:
        runs_df = st.runs()
        df = st.to_frame()
    s = _data.summarize(df)
    status = runs_df["status"].value_counts().to_dict()
    if json_out:
        payload = {**s, "status": status}
        if runs:
            payload["run_list"] = runs_df[
                ["run_id", "status", "domain", "n_params", "r_domain", "n_evaluations", "wall_seconds"]
            ].to_dict(orient="records")
        emit_json(payload)
        return
    print_summary(s, f"store {db}")
    console.print("runs by status: " + ", ".join(f"{k} {v}" for k, v in sorted(status.items())))
    if runs:
        t = Table(title="runs", title_justify="left")
        for c in ("run_id", "status", "evaluations", "wall s"):
            t.add_column(c)
        for r in runs_df.itertuples():
            ws = "" if r.wall_seconds is None or r.wall_seconds != r.wall_seconds else f"{r.wall_seconds:.1f}"
            t.add_row(r.run_id, r.status, str(r.n_evaluations), ws)
        console.print(t)
