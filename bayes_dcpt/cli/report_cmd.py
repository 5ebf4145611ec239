"""``bayes-dcpt report``: the credible-interval report of a saved fit (self-contained HTML or Markdown)."""

from __future__ import annotations

from pathlib import Path

import typer

from bayes_dcpt.cli._app import app, console, emit_json, err_console
from bayes_dcpt.errors import BayesDCPTError


# long: a typer command declares each of its options as a parameter; the body is short
@app.command("report")
def report_cmd(
    fit_path: Path = typer.Argument(..., metavar="FIT", help="A fit written by `bayes-dcpt fit` (netCDF)."),
    out: Path = typer.Option(
        Path("report.html"), "--out", help="The report file (.html, or .md for Markdown)."
    ),
    fmt: str | None = typer.Option(None, "--format", help="html or md (default: from the suffix of --out)."),
    n_params: float | None = typer.Option(
        None, "--n-params", help="Model size N of the planned run (default: largest measured)."
    ),
    tokens: float | None = typer.Option(
        None, "--tokens", help="CPT tokens D of the planned run (default: 4 x the largest measured)."
    ),
    max_general_increase: float = typer.Option(
        0.03,
        "--max-general-increase",
        min=0.0,
        help="Trade-off threshold on the general-loss increase (0.03 = 3%).",
    ),
    absolute: bool = typer.Option(
        False, "--absolute", help="Threshold in nats instead of relative to the base loss."
    ),
    base_loss: float | None = typer.Option(
        None, "--base-loss", min=0.0, help="General loss L0 of the base model at --n-params (default: from the "
        "fit: its measured base row, or its base-loss law)."
    ),
    prob: float = typer.Option(
        0.9, "--prob", min=0.5, max=0.999, help="Probability of the risk-aware answers (the law's and one run's)."
    ),
    domain: str | None = typer.Option(
        None, "--domain", help="Domain whose r* the planner targets (default: the widest interval)."
    ),
    candidates: Path | None = typer.Option(
        None, "--candidates", help="Candidate probes CSV (default: a menu built from the data)."
    ),
    k: int = typer.Option(3, "-k", "--k", min=1, help="Probes in the suggested batch."),
    budget: float | None = typer.Option(
        None, "--budget-gpu-hours", min=0.0, help="GPU-hours the batch may cost."
    ),
    no_plan: bool = typer.Option(False, "--no-plan", help="Skip the planner section."),
    plan_csv: Path | None = typer.Option(
        None, "--plan-csv", help="Also write the suggested batch to this CSV."
    ),
    ci: float = typer.Option(0.9, "--ci", min=0.5, max=0.99, help="Probability of every interval."),
    seed: int = typer.Option(0, "--seed", help="Planner seed (same seed, same plan)."),
    dpi: int = typer.Option(100, "--dpi", min=30, max=600, help="Resolution of the figures."),
    json_out: bool = typer.Option(False, "--json", help="Print what was written, the questions asked and the "
                                                        "fit's diagnostics as JSON."),
    measured: Path | None = typer.Option(
        None, "--measured", help="Runs trained since the fit (a CSV of the data schema): a section checks the "
        "predicted bands against their losses and draws them over the bands; r* is checked against the crossing "
        "they measure at --n-params and --tokens."
    ),
    baseline: bool = typer.Option(False, "--baseline", help="With --measured: the paper's point fits (L3, L1) "
                                                            "scored on those runs beside the fit."),
) -> None:
    r"""Write the report of a fit: data, law and priors, parameters, diagnostics, fitted curves, r*, compute
    allocation and the next suggested probes.

    Example: [bold]bayes-dcpt report fit.nc --out report.html \
    --max-general-increase 0.03[/bold]
    """  # noqa: D205  (typer shows the first paragraph, as wrapped here, in the command list)
    from bayes_dcpt.cli.verdict import warn_if_bad
    from bayes_dcpt.fitting import load_fit
    from bayes_dcpt.report.build import FORMATS, build_report

    if fmt is not None and fmt.lower() not in (*FORMATS, "markdown"):
        raise BayesDCPTError(f"--format must be html or md, not {fmt!r}")
    if budget is not None and budget <= 0:
        raise BayesDCPTError(f"--budget-gpu-hours must be > 0, got {budget:g}")
    if candidates is not None and not candidates.is_file():
        raise BayesDCPTError(f"no such candidates file: {candidates}")
    if baseline and measured is None:
        raise BayesDCPTError("--baseline scores the point fits on the runs of --measured: give --measured")
    f = load_fit(fit_path)
    if not hasattr(f, "data"):
        raise BayesDCPTError(f"{fit_path} is a law=auto fit: report one of its laws, e.g. `bayes-dcpt report "
                             f"{fit_path.with_name(fit_path.stem + '-' + f.best.law.name + '.nc')}` (its heaviest)")
    v = warn_if_bad(err_console, f, fit_path)
    rep = build_report(
        f,
        out=out,
        format=fmt,
        n_params=n_params,
        tokens=tokens,
        max_general_increase=max_general_increase,
        relative=not absolute,
        base_loss=base_loss,
        prob=prob,
        domain=domain,
        candidates=candidates,
        k=k,
        budget=budget,
        plan=not no_plan,
        plan_csv=plan_csv,
        ci=ci,
        seed=seed,
        source=str(fit_path),
        dpi=dpi,
        measured=measured,
        baseline=baseline,
    )
    if json_out:
        emit_json({"report": str(rep.path), "format": rep.format, "figures": len(rep.images),
                   "plan_csv": str(plan_csv) if plan_csv is not None and rep.plan is not None else None,
                   "inputs": rep.inputs, "notes": rep.notes, "diagnostics": v.as_json(),
                   **({"check": rep.check.to_dict()} if rep.check is not None else {})})
        return
    extra = (
        f" and {len(rep.images)} figures in {out.parent / (out.stem + '_files')}"
        if rep.format == "md"
        else ""
    )
    console.print(f"report written to {rep.path}{extra}", soft_wrap=True, markup=False)
    if rep.check is not None:
        bad = rep.check.ok is False
        console.print(("FLAG: " if bad else "") + "runs measured since the fit: " + rep.check.summary(),
                      soft_wrap=True, markup=False, style="bold" if bad else None)
    if plan_csv is not None and rep.plan is not None:
        console.print(f"plan written to {plan_csv}", soft_wrap=True, markup=False)
