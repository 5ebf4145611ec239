"""``bayes-dcpt demo``: the main job on the embedded example data."""

from __future__ import annotations

from pathlib import Path

import typer

from bayes_dcpt.cli._app import app, console


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo-out"), help="Folder for the outputs."),
) -> None:
    """Fit the example dataset and write the results to --out.

    Example: [bold]bayes-dcpt demo --out demo-out[/bold]
    """
    from bayes_dcpt.datasets import DatasetUnavailable, load_example
    from bayes_dcpt.pointfit import fit_point

    out.mkdir(parents=True, exist_ok=True)
    try:
        df = load_example()
        source = "embedded example grid"
    except DatasetUnavailable:
        from bayes_dcpt.simulate import World, probe_grid

        df = World.default(domains=("code", "law")).simulate(probe_grid(domains=("code", "law")), seed=0)
        source = "simulated grid (the embedded example grid is not installed)"
    df.to_csv(out / "data.csv", index=False)
    res = fit_point(df, "dcpt", "both")
    table = res.table()
    table.to_csv(out / "point_fit.csv", index=False)
    console.print(f"data: {source}, {len(df)} rows -> {out / 'data.csv'}")
    console.print(table[["target", "domain", "alpha", "beta", "eta", "mape", "r2"]].to_string(index=False))
    console.print(f"point fit written to {out / 'point_fit.csv'}")
