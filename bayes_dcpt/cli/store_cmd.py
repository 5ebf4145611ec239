"""``bayes-dcpt data import|export|show``: move measurement tables into and out of the experiment store."""

from __future__ import annotations

from pathlib import Path

import typer

from bayes_dcpt.cli._app import console, data_app, duplicates_note, emit_json, err_console, prepare_outputs
from bayes_dcpt.cli.data_cmd import counts_line, n_of, print_summary
from bayes_dcpt.data import schema as _data
from bayes_dcpt.data.store_frames import summary_counts

DB_HELP = "The experiment store (SQLite file; created when absent)."


#: ``data import --from``: the schema's table, or a training log with a mapping file.
FROM_HELP = ("table (CSV, TSV or Parquet in the schema of data validate), trainer-state (a Hugging Face "
             "trainer_state.json, or folders of them), tensorboard (event files) or wandb-csv (W&B run-history "
             "CSV exports); the log formats need --map.")


@data_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., metavar="PATH", help="The table, or the log file or folder of runs."),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    from_: str = typer.Option("table", "--from", help=FROM_HELP),
    mapping: Path | None = typer.Option(
        None, "--map", help="TOML file saying which logged run is which probe (domain, ratio, N, keys)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check everything and show what would be written."),
    replace: bool = typer.Option(
        False, "--replace", help="Overwrite stored losses that differ (default: error)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    r"""Validate measurements and add them to the store; re-importing the same rows adds nothing.

    A table in the schema, or runs that already exist in a training log: a Trainer's trainer_state.json,
    TensorBoard event files or a W&B history CSV, with a mapping file that names each run's domain, ratio
    and N (README "From your Trainer"). Everything is checked before anything is written.

    Example: [bold]bayes-dcpt data import probes.csv --db runs.sqlite[/bold]

    Example: [bold]bayes-dcpt data import --from trainer-state \
    hf-run/trainer_state.json --map hf-run/runs.toml --db hf.sqlite --dry-run[/bold]
    """
    from bayes_dcpt.data.logmap import FORMATS
    from bayes_dcpt.errors import InputError

    if from_ != "table" and from_ not in FORMATS:
        raise InputError(f"--from must be table, {', '.join(FORMATS)}; not {from_!r}")
    if from_ == "table" and mapping is not None:
        raise InputError("--map names the runs of a training log: give --from trainer-state, tensorboard or "
                         "wandb-csv with it")
    if from_ != "table" and mapping is None:
        raise InputError(f"--from {from_} needs --map runs.toml: which logged run is which probe")
    if from_ == "table":
        res = _import_table(file, db, replace, dry_run)
        run_list: list = []
    else:
        from bayes_dcpt.data.importers import import_logs

        res = import_logs(from_, file, mapping, db, dry_run=dry_run, replace=replace)
        run_list = res.pop("run_list")
    if json_out:
        emit_json({"file": str(file), "db": str(db), "from": from_, **res, **({"run_list": run_list}
                                                                             if run_list else {})})
        return
    _print_import(file, db, res, run_list, dry_run)


def _import_table(file: Path, db: Path, replace: bool, dry_run: bool) -> dict:
    """A schema table into the store (or a dry run of it, against a copy of nothing when the store is new)."""
    import tempfile

    from bayes_dcpt.data.store import Store

    df = _data.load(file)  # validate before the store is even opened
    if dups := int(df.attrs.get("duplicates_dropped", 0)):
        err_console.print(duplicates_note(dups, file), markup=False, highlight=False, soft_wrap=True)
    if dry_run and not db.exists():
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "dry.sqlite") as st:
            return st.import_frame(df, replace=replace, dry_run=True)
    with Store(db) as st:
        return st.import_frame(df, replace=replace, dry_run=dry_run)


def _print_import(file: Path, db: Path, res: dict, run_list: list, dry_run: bool) -> None:
    for r in run_list:
        base = "with its base evaluation" if r["base"] else "base model already stored"
        console.print(f"run {r['run_id']} <- {', '.join(r['files'])}: N={r['n_params']:,.0f}, r={r['r_domain']:g}, "
                      f"{r['checkpoints']} checkpoints to {r['tokens_max']:,.0f} tokens, {base}",
                      soft_wrap=True, markup=False)
    for label in res.get("missing", []):
        console.print(f"note: run {label!r} of the mapping has no log under {file}", soft_wrap=True,
                      markup=False)
    # what the file holds, in the words of data validate; then what of it the store did not have yet
    console.print(counts_line(res), soft_wrap=True, markup=False, highlight=False)
    added = n_of(res["inserted"], "loss", "losses")
    done = f"dry run, nothing written: would add {added} to {db}" if dry_run else \
        f"imported {file} into {db}: {added} added"
    console.print(f"{done}, {res['skipped']:,} already stored", soft_wrap=True, markup=False, highlight=False)


@data_app.command("export")
def export_cmd(
    db: Path = typer.Option(..., "--db", help="The experiment store (SQLite file)."),
    out: Path = typer.Option(..., "--out", help="Output file: .csv or .parquet."),
) -> None:
    """Write every stored measurement as one table in the schema of [bold]data validate[/bold].

    Example: [bold]bayes-dcpt data export --db runs.sqlite --out exported.csv[/bold]
    """
    prepare_outputs(out)
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
    # the CPT runs by status (a base model's row, stored under a run id base|..., is not a run: see counts_line)
    status = runs_df.loc[~runs_df["run_id"].str.startswith(_data.BASE_RUN_PREFIX), "status"].value_counts().to_dict()
    if json_out:
        payload = {**s, **summary_counts(s), "status": status}
        if runs:
            payload["run_list"] = runs_df[
                ["run_id", "status", "domain", "n_params", "r_domain", "n_evaluations", "wall_seconds"]
            ].to_dict(orient="records")
        emit_json(payload)
        return
    console.print(counts_line(summary_counts(s)), soft_wrap=True, markup=False, highlight=False)
    print_summary(s, f"store {db}")
    console.print("CPT runs by status: " + (", ".join(f"{k} {v}" for k, v in sorted(status.items())) or "none"))
    if runs:
        t = Table(title="runs", title_justify="left")
        for c in ("run_id", "status", "losses", "wall s"):  # n_evaluations: one per stored loss
            t.add_column(c)
        for r in runs_df.itertuples():
            ws = "" if r.wall_seconds is None or r.wall_seconds != r.wall_seconds else f"{r.wall_seconds:.1f}"
            t.add_row(r.run_id, r.status, str(r.n_evaluations), ws)
        console.print(t)
