"""``bayes-dcpt fit-dynamics``, ``predict-curve`` and ``choose-schedule``: the CPT dynamics law (LR schedules)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bayes_dcpt.cli._app import app, console, emit_json, err_console, prepare_outputs
from bayes_dcpt.cli.fit_cmd import report_fit
from bayes_dcpt.cli.verdict import warn_if_bad
from bayes_dcpt.errors import BayesDCPTError


@app.command("fit-dynamics")
def fit_dynamics_cmd(
    data: Path = typer.Argument(..., metavar="DATA", help="Measurements with step, schedule and base_schedule "
                                                          "(CSV/Parquet or a probe store .sqlite)."),
    law: str = typer.Option("auto", help="auto, cpt-dynamics (Eq. 4), cpt-dynamics-n (Eq. 7), "
                                         "cpt-dynamics-replay (Eq. 8) or cpt-dynamics-full."),
    target: str = typer.Option("both", help="general, domain or both."),
    momentum: float = typer.Option(0.999, help="Annealing momentum lambda of S2."),
    out: Path = typer.Option(Path("dynamics.nc"), help="Where to write the fit (netCDF with a model card)."),
    draws: int = typer.Option(1000, min=1, help="Posterior draws per chain."),
    tune: int = typer.Option(1000, min=0, help="Tuning steps per chain."),
    chains: int = typer.Option(4, min=1),
    seed: int = typer.Option(0, help="Random seed (same seed, same posterior)."),
    sampler: str = typer.Option("nutpie", help="nutpie, pymc, numpyro, laplace or advi."),
    allow_bad_fit: bool = typer.Option(False, "--allow-bad-fit", help="Exit 0 even when the sampler checks "
                                                                      "fail."),
    json_out: bool = typer.Option(False, "--json", help="Print the verdict and the parameter table as JSON."),
) -> None:
    """Fit the CPT learning-dynamics law (Wang et al. 2025) to whole loss curves with their LR schedules.

    Exit codes as `bayes-dcpt fit`: 3 when the sampler checks fail (the fit is written anyway;
    --allow-bad-fit exits 0).

    Example: [bold]bayes-dcpt fit-dynamics schedules.csv --out dyn.nc --allow-bad-fit[/bold]
    """
    prepare_outputs(out)
    from bayes_dcpt.data.schema import TARGETS
    from bayes_dcpt.fitting import SAMPLERS
    from bayes_dcpt.fitting.dynamics import fit_dynamics
    from bayes_dcpt.laws.registry import get_law

    if target not in (*TARGETS, "both"):
        raise BayesDCPTError(f"--target must be general, domain or both, not {target!r}")
    if law != "auto" and get_law(law).family != "cpt-dynamics":
        raise BayesDCPTError(f"--law {law!r} is not a CPT dynamics law (cpt-dynamics, cpt-dynamics-n, "
                             "cpt-dynamics-replay, cpt-dynamics-full or auto); use `bayes-dcpt fit` for it")
    if sampler not in SAMPLERS:
        raise BayesDCPTError(f"--sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    f = fit_dynamics(str(data), law, target, momentum=momentum, draws=draws, tune=tune, chains=chains,
                     seed=seed, sampler=sampler, warn=False)
    f.save(out)
    report_fit(f, out, allow_bad_fit=allow_bad_fit, json_out=json_out, notes=list(f.notes))


@app.command("predict-curve")
def predict_curve_cmd(
    fit_path: Path = typer.Argument(..., metavar="FIT", help="A fit written by `bayes-dcpt fit-dynamics`."),
    rows: Path | None = typer.Argument(None, metavar="ROWS", help="CSV of points: domain, n_params, r_domain, "
                                                                  "schedule, step (or tokens); optional "
                                                                  "base_schedule."),
    schedule: str | None = typer.Option(None, help="Or one whole curve: its CPT schedule spec."),
    domain: str | None = typer.Option(None, help="Domain of the curve (default: the fit's only domain)."),
    n_params: float | None = typer.Option(None, "--n-params", help="Model size of the curve."),
    r_domain: float | None = typer.Option(None, "--r-domain", help="Domain share of the curve."),
    ci: float = typer.Option(0.9, min=0.5, max=0.99, help="Interval probability (a central band)."),
    kind: str = typer.Option("predictive", help="predictive (a new run's measurements) or mean (the law)."),
    out: Path | None = typer.Option(None, help="Write the predictions to this CSV (else print them)."),
    seed: int = typer.Option(0, help="Seed of the predictive noise draws."),
) -> None:
    r"""Predicted loss curves with bands for any LR schedule, e.g. one that was never trained.

    Example: [bold]bayes-dcpt predict-curve dyn.nc \
    --schedule "wsd(peak=1e-3, steps=256, warmup=10)" \
    --n-params 100672 --r-domain 0.5[/bold]
    """
    prepare_outputs(out)
    import pandas as pd

    from bayes_dcpt.data.schema import read_table
    from bayes_dcpt.fitting.dynamics import load_dynamics_fit

    if kind not in ("predictive", "mean"):
        raise BayesDCPTError(f"--kind must be predictive or mean, not {kind!r}")
    if (rows is None) == (schedule is None):
        raise BayesDCPTError("give either a ROWS file or --schedule (with --n-params and --r-domain)")
    f = load_dynamics_fit(fit_path)
    warn_if_bad(err_console, f, fit_path)  # a bad fit's curves are not to be trusted: said, as predict says it
    if rows is not None:
        pred = f.predict(read_table(rows), ci=ci, kind=kind, seed=seed)
    else:
        if n_params is None or r_domain is None:
            raise BayesDCPTError("--schedule needs --n-params and --r-domain")
        dom = domain or (f.domains[0] if len(f.domains) == 1 else None)
        if dom is None:
            raise BayesDCPTError(f"the fit has several domains {f.domains}; pass --domain")
        pred = f.curve(dom, n_params, r_domain, schedule, ci=ci, kind=kind, seed=seed)
    cols = [c for c in pred.columns if c not in ("schedule", "base_schedule", "run_id")]
    if out:
        pred.to_csv(out, index=False)
        console.print(f"{len(pred)} predictions written to {out}")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            console.print(pred[cols].to_string(index=False))


@app.command("choose-schedule")
def choose_schedule_cmd(
    fit_path: Path = typer.Argument(..., metavar="FIT",
                                    help="A fit written by `bayes-dcpt fit-dynamics` (both losses)."),
    schedule: list[str] = typer.Option(..., "--schedule", help="Candidate as name=spec (repeat the option)."),
    ratios: str = typer.Option(..., help="Candidate domain shares, comma-separated, e.g. 0.25,0.5,0.75."),
    n_params: float | None = typer.Option(None, "--n-params", help="Model size (default: the fit's only one)."),
    domain: str | None = typer.Option(None, help="Domain (default: the fit's only one)."),
    max_general_increase: float = typer.Option(0.03, help="T: allowed general-loss increase over the base model."),
    absolute: bool = typer.Option(False, "--absolute", help="T in nats instead of relative to the base loss."),
    over: str = typer.Option("end", help="end (the final loss) or run (the peak general loss along the run)."),
    prob: float = typer.Option(0.9, min=0.01, max=0.99, help="Level of the risk-aware answer."),
    json_out: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    r"""Which LR schedule and replay ratio keep the general loss within T while minimising the domain loss.

    Example: [bold]bayes-dcpt choose-schedule dyn.nc \
    --schedule "wsd=wsd(peak=1e-3, steps=256, warmup=10)" \
    --schedule "cos=cosine(peak=1e-3, steps=256, warmup=10)" \
    --ratios 0.25,0.5,0.75 --n-params 100672[/bold]
    """
    from bayes_dcpt.decide.lr_choice import candidate_grid, choose_schedule
    from bayes_dcpt.fitting.dynamics import load_dynamics_fit

    named = {}
    for item in schedule:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise BayesDCPTError(f"--schedule {item!r}: write name=spec, e.g. wsd=wsd(peak=1e-3, steps=256)")
        k, v = item.split("=", 1)
        named[k.strip()] = v.strip()
    try:
        rs = [float(x) for x in ratios.split(",") if x.strip()]
    except ValueError as exc:
        raise BayesDCPTError(f"--ratios must be comma-separated numbers, got {ratios!r}") from exc
    f = load_dynamics_fit(fit_path)
    v = warn_if_bad(err_console, f, fit_path)
    d = choose_schedule(f.posterior, candidate_grid(named, rs), domain=domain, n_params=n_params,
                        max_general_increase=max_general_increase, relative=not absolute, over=over, prob=prob)
    if json_out:
        emit_json({**d.to_json(), "diagnostics": v.as_json()})
        return
    tab = d.table()
    t = Table(title=f"schedule x replay ratio: general loss within {max_general_increase:g}"
                    + (" nats" if absolute else " (relative)") + f" ({over}), 90% intervals")
    for c in ("name", "r_domain", "P(best)", "P(feasible)", "domain loss", "general increase"):
        t.add_column(c, justify="left" if c == "name" else "right")
    for _, r in tab.iterrows():
        t.add_row(str(r["name"]), f"{r['r_domain']:g}", f"{r['P_best']:.3f}", f"{r['P_feasible']:.3f}",
                  f"{r['loss_domain_median']:.4f} [{r['loss_domain_lo']:.4f}, {r['loss_domain_hi']:.4f}]",
                  f"{r['general_increase_median']:.4f} [{r['general_increase_lo']:.4f}, "
                  f"{r['general_increase_hi']:.4f}]")
    console.print(t)
    ra = d.extras["risk_aware"]
    if ra.get("feasible"):
        console.print(f"risk-aware choice (P(feasible) >= {prob:g}): {ra['name']} at r_domain={ra['r_domain']:g} "
                      f"(P(feasible) {ra['P_feasible']:.3f}, mean domain loss {ra['loss_domain_mean']:.4f})")
    else:
        console.print(f"risk-aware choice: none ({ra['note']})")
