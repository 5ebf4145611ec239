"""``bayes-dcpt fit-point`` and ``bayes-dcpt laws``: the paper's point fit and the law registry."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bayes_dcpt.cli._app import app, console, emit_json
from bayes_dcpt.errors import BayesDCPTError


@app.command("laws")
def laws_cmd(
    family: str | None = typer.Option(None, help="Only laws of this family (dcpt, cross-domain, chinchilla, ...)."),
) -> None:
    """List the registered laws with their formulas and parameters.

    Example: [bold]bayes-dcpt laws --family dcpt[/bold]
    """
    from bayes_dcpt.laws import LAWS

    t = Table(title="laws")
    for col in ("name", "family", "formula", "parameters"):
        t.add_column(col)
    for name, law in LAWS.items():
        if family and law.family != family:
            continue
        t.add_row(name, law.family, law.title, ", ".join(law.param_names))
    console.print(t)


@app.command("fit-point")
def fit_point_cmd(
    data: Path = typer.Argument(..., help="CSV/Parquet file of CPT measurements."),
    law: str = typer.Option("dcpt", help="Law name (dcpt = L3, L1..L7, cross-domain, ...)."),
    target: str = typer.Option("both", help="general, domain or both."),
    domain: str | None = typer.Option(None, help="Fit one domain only."),
    n_grid: int = typer.Option(4000, min=1, help="Grid starts evaluated (fixed-seed subsample of the paper's grid)."),
    n_starts: int = typer.Option(8, min=1, help="L-BFGS-B runs from the best grid starts."),
    seed: int = typer.Option(0, help="Seed of the grid subsample."),
    json_out: bool = typer.Option(False, "--json", help="Print parameters and metrics as JSON."),
    out: Path | None = typer.Option(None, help="Also write the table to this CSV file."),
) -> None:
    """Fit a law the way the D-CPT paper does (Huber on log loss, L-BFGS-B) and print a table.

    Example: [bold]bayes-dcpt fit-point probes.csv --law dcpt --target both[/bold]
    """
    from bayes_dcpt.data import TARGETS
    from bayes_dcpt.laws import get_law
    from bayes_dcpt.pointfit import fit_point

    if target not in (*TARGETS, "both"):
        raise BayesDCPTError(f"--target must be general, domain or both, not {target!r}")
    law_ = get_law(law)
    res = fit_point(data, law_, target, domain=domain, n_grid=n_grid, n_starts=n_starts, seed=seed)
    table = res.table()
    if out:
        table.to_csv(out, index=False)
    if json_out:
        emit_json(table.to_dict(orient="records"))
        return
    t = Table(title=f"point fit of {law_.name}: {law_.title}")
    t.add_column("quantity", style="bold")
    keys = list(res.fits)
    for tgt, dom in keys:
        t.add_column(f"{tgt} / {dom}", justify="right")
    for name in law_.param_names:
        t.add_row(name, *[f"{res.fits[k].params[name]:.4g}" for k in keys])
    for m, fmt in (("mape", "{:.3f}%"), ("r2", "{:.4f}"), ("huber_sum", "{:.3g}"), ("n", "{:d}")):
        t.add_row(m, *[fmt.format(res.fits[k].metrics[m]) for k in keys])
    t.add_row("seconds", *[f"{res.fits[k].seconds:.2f}" for k in keys])
    console.print(t)
    for k in keys:
        for note in res.fits[k].notes:
            console.print(f"[yellow]note[/yellow] ({k[0]}/{k[1]}): {note}")
