"""``bayes-dcpt laws`` and ``bayes-dcpt fit-point``: the law registry and the paper's point fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bayes_dcpt.cli._app import app, console, emit_json, prepare_outputs
from bayes_dcpt.errors import BayesDCPTError

#: Law families that ``bayes-dcpt fit --law`` accepts (the laws of (N, D, r)).
FIT_FAMILIES = ("dcpt", "cpt", "cross-domain", "chinchilla")


@app.command("laws")
def laws_cmd(
    family: str | None = typer.Option(None, help="Only laws of this family (dcpt, cpt, cross-domain, chinchilla, "
                                                 "cpt-dynamics, ...)."),
) -> None:
    """List the registered laws with their formulas and parameters, and which ones `bayes-dcpt fit` takes.

    Example: [bold]bayes-dcpt laws --family dcpt[/bold]
    """
    from bayes_dcpt.cli.tables import print_table
    from bayes_dcpt.errors import UnknownLawError
    from bayes_dcpt.laws.registry import LAWS

    families = sorted({law.family for law in LAWS.values()})
    if family is not None and family not in families:
        raise UnknownLawError(f"unknown law family {family!r}; families: {', '.join(families)}")
    from bayes_dcpt.fitting.pointfit import point_fittable

    def fitted_by(name: str, law: Any) -> str:
        if law.family == "cpt-dynamics":
            return "fit-dynamics"
        if law.family not in FIT_FAMILIES:
            return "formula only"
        return f"fit --law {name}" + (", fit-point" if point_fittable(law) else "")

    rows = [[name, law.family, law.title, ", ".join(law.param_names), fitted_by(name, law)]
            for name, law in LAWS.items() if not family or law.family == family]
    print_table(console, "laws", ["name", "family", "formula", "parameters", "fitted by"], rows,
                right=[False] * 5, labels=2)
    if not family or family in FIT_FAMILIES:
        console.print("bayes-dcpt fit --law also takes dcpt (= L3), cross-domain (= cross-domain-K3) and auto "
                      "(several laws weighed by how they predict held-out data).", markup=False, highlight=False)


@app.command("fit-point")
def fit_point_cmd(
    data: Path = typer.Argument(..., metavar="DATA", help="CSV/Parquet file of CPT measurements."),
    law: str = typer.Option("dcpt", help="Law name (dcpt = L3, L1..L7, cross-domain, ...)."),
    target: str = typer.Option("both", help="general, domain or both."),
    domain: str | None = typer.Option(None, help="Fit one domain only."),
    n_grid: int = typer.Option(4000, min=1, help="Grid starts evaluated (fixed-seed subsample of the paper's grid)."),
    n_starts: int = typer.Option(8, min=1, help="L-BFGS-B runs from the best grid starts."),
    seed: int = typer.Option(0, help="Seed of the grid subsample."),
    json_out: bool = typer.Option(False, "--json",
                                  help="Print the law and each fit's parameters, metrics and notes as JSON."),
    out: Path | None = typer.Option(None, help="Also write the table to this CSV file."),
) -> None:
    """Fit a law the way the D-CPT paper does (Huber on log loss, L-BFGS-B) and print a table.

    Example: [bold]bayes-dcpt fit-point probes.csv --law dcpt --target both[/bold]
    """
    prepare_outputs(out)
    from bayes_dcpt.cli.tables import print_table
    from bayes_dcpt.data.schema import TARGETS
    from bayes_dcpt.fitting.pointfit import fit_point
    from bayes_dcpt.laws.registry import get_law

    if target not in (*TARGETS, "both"):
        raise BayesDCPTError(f"--target must be general, domain or both, not {target!r}")
    law_ = get_law(law)
    res = fit_point(data, law_, target, domain=domain, n_grid=n_grid, n_starts=n_starts, seed=seed)
    table = res.table()
    if out:
        table.to_csv(out, index=False)
    if json_out:
        emit_json(res.to_dict())
        return
    keys = list(res.fits)
    rows = [[name, *[f"{res.fits[k].params[name]:.4g}" for k in keys]] for name in law_.param_names]
    for m, fmt in (("mape", "{:.3f}%"), ("r2", "{:.4f}"), ("huber_sum", "{:.3g}"), ("n", "{:d}")):
        rows.append([m, *[fmt.format(res.fits[k].metrics[m]) for k in keys]])
    rows.append(["seconds", *[f"{res.fits[k].seconds:.2f}" for k in keys]])
    print_table(console, f"point fit of {law_.name}: {law_.title}", ["quantity", *[f"{t} / {d}" for t, d in keys]],
                rows)
    for k in keys:
        for note in res.fits[k].notes:
            console.print(f"note ({k[0]}/{k[1]}): {note}", markup=False, highlight=False, soft_wrap=True)
