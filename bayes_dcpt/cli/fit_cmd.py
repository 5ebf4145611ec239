"""``bayes-dcpt fit-point`` and ``bayes-dcpt laws``: the paper's point fit and the law registry."""

from __future__ import annotations

from collections.abc import Sequence
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
    from bayes_dcpt.errors import UnknownLawError
    from bayes_dcpt.laws.registry import LAWS

    families = sorted({law.family for law in LAWS.values()})
    if family is not None and family not in families:
        raise UnknownLawError(f"unknown law family {family!r}; families: {', '.join(families)}")
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


def _load_input(data: Path | None, db: Path | None):
    """Validated data from a file or an experiment store (``--db``)."""
    if (data is None) == (db is None):
        raise BayesDCPTError("give either a DATA file or --db (not both)")
    if db is not None:
        try:
            from bayes_dcpt.data.store import read_measurements
        except ImportError as exc:  # pragma: no cover - store not installed
            raise BayesDCPTError("--db needs the experiment store module") from exc
        return read_measurements(db)
    from bayes_dcpt.data.schema import load

    return load(data)


@app.command("fit")
def fit_cmd(
    data: Path | None = typer.Argument(None, help="CSV/Parquet file of CPT measurements (or use --db)."),
    db: Path | None = typer.Option(None, "--db", help="Experiment store (SQLite) to read the measurements from."),
    law: str = typer.Option("dcpt", help="Law: dcpt (L3), L1..L7, cross-domain, cross-domain-K1..K4, chinchilla."),
    target: str = typer.Option("both", help="general, domain or both."),
    out: Path = typer.Option(Path("fit.nc"), help="Where to write the fit (netCDF with a model card)."),
    draws: int = typer.Option(1000, min=1, help="Posterior draws per chain."),
    tune: int = typer.Option(1000, min=0, help="Tuning steps per chain."),
    chains: int = typer.Option(4, min=1, help="Chains."),
    seed: int = typer.Option(0, help="Random seed (same seed, same posterior)."),
    sampler: str = typer.Option("nutpie", help="nutpie, pymc, numpyro, or the approximations laplace, advi."),
    no_run_effect: bool = typer.Option(False, "--no-run-effect", help="Drop the per-run random offsets."),
    run_offsets: str = typer.Option("marginal", help="marginal (integrated out, default) or latent (sampled)."),
    normal: bool = typer.Option(False, "--normal", help="Normal instead of Student-t likelihood."),
    json_out: bool = typer.Option(False, "--json", help="Print diagnostics and the parameter table as JSON."),
) -> None:
    """Fit a law as a hierarchical Bayesian model; print diagnostics and the parameter table.

    Example: [bold]bayes-dcpt fit probes.csv --law dcpt --out fit.nc --draws 1000 --chains 4[/bold]
    """
    import sys
    import warnings

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bayes_dcpt.data.schema import TARGETS
    from bayes_dcpt.errors import ConvergenceWarning
    from bayes_dcpt.fitting import SAMPLERS, fit

    if target not in (*TARGETS, "both"):
        raise BayesDCPTError(f"--target must be general, domain or both, not {target!r}")
    if sampler not in SAMPLERS:
        raise BayesDCPTError(f"--sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    if run_offsets not in ("marginal", "latent"):
        raise BayesDCPTError(f"--run-offsets must be marginal or latent, not {run_offsets!r}")
    from bayes_dcpt.laws.registry import get_law

    get_law(law)
    df = _load_input(data, db)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=not sys.stderr.isatty()) as progress:
        progress.add_task(f"sampling {law} ({chains} chains x {draws} draws, {sampler})", total=None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            f = fit(df, law, target, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                    run_effect=not no_run_effect, run_offsets=run_offsets, robust=not normal, warn=True)
    f.save(out)
    d = f.diagnostics(warn=False)
    summ = f.summary()
    if json_out:
        emit_json({"out": str(out), "diagnostics": d.as_dict(),
                   "summary": summ.reset_index(names="parameter").to_dict(orient="records")})
        return
    print_fit(f, d, summ, caught, out)


def print_fit(f, d, summ, caught, out: Path, notes: Sequence[str] = ()) -> None:
    """Diagnostics (red when bad), the convergence warnings caught, notes, the parameter table, the file."""
    from bayes_dcpt.errors import ConvergenceWarning

    style = "green" if d.ok else "bold red"
    console.print(f"[{style}]diagnostics[/{style}]: {d}")
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            console.print(f"[bold red]WARNING[/bold red]: {w.message}")
    for n in notes:
        console.print(f"note: {n}")
    t = Table(title=f"{f.law.name}: {f.law.title}  (90% HDI)")
    t.add_column("parameter", style="bold")
    for c in summ.columns:
        t.add_column(str(c), justify="right")
    for name, row in summ.iterrows():
        t.add_row(str(name), *[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)
    console.print(f"fit written to {out}")


@app.command("predict")
def predict_cmd(
    fit_path: Path = typer.Argument(..., help="A fit written by `bayes-dcpt fit`."),
    grid: Path = typer.Argument(..., help="CSV with columns domain, n_params, tokens, r_domain."),
    ci: float = typer.Option(0.9, min=0.01, max=0.99, help="Interval probability."),
    kind: str = typer.Option("predictive", help="predictive (a new run's measurement) or mean (the law)."),
    out: Path | None = typer.Option(None, help="Write the predictions to this CSV (else print them)."),
    seed: int = typer.Option(0, help="Seed of the predictive noise draws."),
) -> None:
    """Posterior predictive bands for a grid of (domain, n_params, tokens, r_domain).

    Example: [bold]bayes-dcpt predict fit.nc grid.csv --ci 0.9 --out pred.csv[/bold]
    """
    import pandas as pd

    from bayes_dcpt.data.schema import read_table
    from bayes_dcpt.fitting import load_fit

    if kind not in ("predictive", "mean"):
        raise BayesDCPTError(f"--kind must be predictive or mean, not {kind!r}")
    f = load_fit(fit_path)
    g = read_table(grid)
    pred = f.predict(g, ci=ci, kind=kind, seed=seed)
    if out:
        pred.to_csv(out, index=False)
        console.print(f"{len(pred)} predictions written to {out}")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            console.print(pred.to_string(index=False))
