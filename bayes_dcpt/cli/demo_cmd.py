"""``bayes-dcpt demo``: the main job on the embedded example data, end to end.

Loads the fitted example model from ``models/`` when it is present and its data hash matches the
example (or fits afresh: ``--refit``, 2 chains x 500 draws by default), then writes the fit, the
credible-interval report and the next-experiment plan, and prints a short summary: r* per domain with its 90%
interval, the top suggested probe with its cost, the sampler checks and whether the law describes the data.

The demo's law is the base-anchored CPT law (``--law cpt``): on the example grid it passes the adequacy checks,
where the D-CPT law (``--law dcpt``, also committed) converges but misses the ``codec_tables`` curves.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from bayes_dcpt.cli._app import app, console
from bayes_dcpt.errors import BayesDCPTError

#: Sampler settings of a fresh demo fit (BENCHMARKS.md: sampling the example grid).
DEMO_DRAWS, DEMO_TUNE, DEMO_CHAINS, DEMO_SEED = 500, 500, 2, 1
#: The demo's law: the one that describes the example data (models/README.md).
DEMO_LAW = "cpt"


def model_path(folder: str | Path, law: str) -> Path:
    """Where the fitted example model of ``law`` lives: ``<folder>/example_<law>.nc``."""
    return Path(folder) / f"example_{law}.nc"


def default_models_dir() -> Path:
    """``models/`` of the source checkout this package runs from (absent in a wheel install)."""
    return Path(__file__).resolve().parents[2] / "models"


def _load_matching(path: Path, data_hash: str) -> tuple[object | None, str]:
    """The saved fit at ``path`` if its data hash is ``data_hash``; else None and why not."""
    from bayes_dcpt.data import schema as _data
    from bayes_dcpt.fitting import load_fit

    if not path.is_file():
        return None, f"{path} is not present"
    try:
        f = load_fit(path)
    except BayesDCPTError as exc:
        return None, f"{path} could not be read ({exc})"
    h = _data.data_hash(f.data)
    if h != data_hash:
        return None, f"{path} was fitted to other data (hash {h}, the example's is {data_hash})"
    return f, ""


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for the outputs."),
    refit: bool = typer.Option(False, "--refit", help="Fit afresh even when models/ holds a matching fit."),
    models: Path | None = typer.Option(
        None, "--models", help="Folder of fitted models (default: the checkout's models/)."
    ),
    draws: int = typer.Option(DEMO_DRAWS, "--draws", min=1, help="Posterior draws per chain of a fresh fit."),
    tune: int = typer.Option(DEMO_TUNE, "--tune", min=0, help="Tuning steps per chain of a fresh fit."),
    chains: int = typer.Option(DEMO_CHAINS, "--chains", min=1, help="Chains of a fresh fit."),
    seed: int = typer.Option(DEMO_SEED, "--seed", help="Seed of a fresh fit and of the planner."),
    law: str = typer.Option(DEMO_LAW, "--law", help="Law of the demo's fit: cpt (describes the example) or dcpt "
                            "(the D-CPT law; converges, but misses the example's codec_tables curves)."),
) -> None:
    """Fit (or load) the example, write the report, the plan and the fit to --out, and print the answers.

    Example: [bold]bayes-dcpt demo --out demo-out[/bold]  (what [bold]make demo[/bold] runs)
    """
    import time

    from bayes_dcpt.data import schema as _data
    from bayes_dcpt.report.build import build_report

    if out.exists() and not out.is_dir():
        raise BayesDCPTError(f"--out {out} exists and is not a folder")
    if models is not None and not models.is_dir():
        raise BayesDCPTError(f"--models {models} is not a folder")
    t0 = time.perf_counter()
    df, source = _example_data()
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "data.csv", index=False)
    console.print(f"data: {source}, {len(df)} rows -> {out / 'data.csv'}", soft_wrap=True)
    h = _data.data_hash(df)
    law = law.strip().lower()
    if law not in ("cpt", "dcpt"):
        raise BayesDCPTError(f"--law must be cpt or dcpt (the committed example models), got {law!r}")
    saved = model_path(models or default_models_dir(), law)
    fit_path = out / "fit.nc"
    f, source_fit = _load_or_fit(df, h, saved, fit_path, law=law, refit=refit, draws=draws, tune=tune,
                                 chains=chains, seed=seed)
    rep = build_report(f, out=out / "report.html", plan_csv=out / "plan.csv", seed=seed, source=source_fit)
    console.print("")
    _print_answers(rep)
    _print_verdict(f, out / "report.html")
    console.print(
        f"wrote {fit_path}, {rep.path}, {out / 'plan.csv'} ({time.perf_counter() - t0:.0f} s)", soft_wrap=True
    )


def _print_verdict(f: Any, report: Path) -> None:
    """The verdict: did the sampler converge, does the law describe the data, how well did it extrapolate.

    Where the law misses the data, where to read more and what to try; the last line, how far off its predictions
    were on the data its held-out refits held back.
    """
    from bayes_dcpt.cli.verdict import sampler_line, verdict
    from bayes_dcpt.report.wording import holdout_errors

    v = verdict(f)
    state = "OK" if v.sampler_ok else "PROBLEMS: " + "; ".join(v.problems)
    console.print(f"[{'green' if v.sampler_ok else 'bold red'}]sampler[/]: {state} ({sampler_line(v)})",
                  soft_wrap=True, highlight=False)
    if v.adequate is False:
        console.print(f"[bold red]fit[/]: MISFIT, the law does not describe the data ({v.failed_checks}): see "
                      f"{report} (Diagnostics) for where; its answers above are not to be trusted there",
                      soft_wrap=True, highlight=False)
        if v.remedies:
            console.print(f"try (bayes-dcpt fit {report.parent / 'data.csv'} ...): {v.remedies[0]}", markup=False,
                          highlight=False, soft_wrap=True)
    elif v.adequate:
        console.print(f"[green]fit[/]: OK, {v.adequacy_summary}", soft_wrap=True, highlight=False)
    if errors := holdout_errors(f):  # how the law extrapolated within the data, whatever the verdict
        console.print(f"extrapolation: held out within the data, the law's predictions were off by {errors}",
                      soft_wrap=True, highlight=False, markup=False)


def _example_data() -> tuple[Any, str]:
    """The embedded example grid and what it is (a simulated grid when the example is not installed)."""
    from bayes_dcpt.datasets import DatasetUnavailable, load_example

    try:
        return load_example(), "the embedded example grid (3 domains x 3 model sizes x 5 ratios x 7 checkpoints)"
    except DatasetUnavailable:
        from bayes_dcpt.plan.simulate import World, probe_grid

        df = World.default(domains=("code", "law")).simulate(probe_grid(domains=("code", "law")), seed=0)
        return df, "a simulated grid (the embedded example grid is not installed)"


def _load_or_fit(
    df: Any, h: str, saved: Path, fit_path: Path, *, law: str, refit: bool, draws: int, tune: int, chains: int,
    seed: int
) -> tuple[Any, str]:
    """The saved example fit when its data hash matches (copied to ``fit_path``), else a fresh fit saved there."""
    import warnings

    from bayes_dcpt.fitting import fit

    f, why = (None, "--refit was given") if refit else _load_matching(saved, h)
    if f is not None:
        sc = f.sampler_config
        console.print(
            f"fit: loaded {saved} (its data hash {h} matches the example; {sc.get('chains')} chains x "
            f"{sc.get('draws')} draws; --refit to sample afresh)",
            soft_wrap=True,
        )
        shutil.copyfile(saved, fit_path)
        return f, str(saved)
    console.print(
        f"fit: sampling the {'CPT' if law == 'cpt' else 'D-CPT'} law afresh ({why}): {chains} chains x {draws} "
        f"draws, tune {tune}, seed {seed}, then three held-out refits that calibrate the bands for extrapolation "
        f"(a few minutes on 2 cores) ...",
        soft_wrap=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = fit(df, law, "both", draws=draws, tune=tune, chains=chains, seed=seed, warn=False)
    f.save(fit_path)
    return f, str(fit_path)


def _print_answers(rep: Any) -> None:
    """r* per domain with its interval and risk-aware answer, and the top suggested probe."""
    from bayes_dcpt.decide.wording import risk_answers

    inp = rep.inputs
    console.print(
        f"critical ratio r* (largest domain share keeping the general loss within "
        f"{inp['max_general_increase']:.0%} of the base model) for N = {inp['n_params']:,.0f} parameters, "
        f"D = {inp['tokens']:,.0f} CPT tokens:",
        soft_wrap=True,
    )
    infeasible: dict[str, int] = {}
    for dom, dec in rep.decisions().items():
        s = dec.summary()
        infeasible[dom] = int(s.counts.get("infeasible", 0))
        ra = s.risk_aware or {}
        if "r_domain" in s.table.index:
            r = s.table.loc["r_domain"]
            answers = risk_answers(ra)
            risk = answers["law"].value() if answers else "none"
            one_run = f" (one run: {answers['one_run'].value()})" if "one_run" in answers else ""
            one = s.table.loc["one_run_crossing"] if "one_run_crossing" in s.table.index else None
            crosses = f" (one run crosses in [{one['lo']:.3f}, {one['hi']:.3f}])" if one is not None else ""
            console.print(
                f"  {dom}: r* = {r['median']:.3f}, 90% interval [{r['lo']:.3f}, {r['hi']:.3f}]{crosses}, "
                f"risk-aware r (P >= {ra.get('prob', 0.9):g}) = {risk}{one_run}; infeasible draws "
                f"{s.counts['infeasible']} of {s.counts['n_draws']}",
                soft_wrap=True,
            )
        else:
            console.print(f"  {dom}: no posterior draw meets the threshold", soft_wrap=True)
        if (line := disagreement_line(dec)) is not None:
            console.print(line, style="bold red", soft_wrap=True, markup=False, highlight=False)
    if rep.plan is not None and len(rep.plan.table):
        console.print(next_probe_line(rep.plan, str(rep.plan_domain), infeasible.get(str(rep.plan_domain), 0)),
                      soft_wrap=True)


def disagreement_line(dec: Any) -> str | None:
    """The demo's flag when r* disagrees with the crossing the runs measure (at the asked N and D, else nearest).

    A short form of the decision's ``DISAGREES`` note (the report has it in full); None when the check agrees or
    the runs measure no crossing.
    """
    asked = dec.measured_check()
    c = asked or dec.nearest_check()
    if c is None or c["agrees"]:
        return None
    where = "there" if asked else f"nearest (N = {c['n_params']:,.0f}, D = {c['tokens']:,.0f})"
    lo, hi = c["interval"]
    return (f"    FLAG: where the runs measure it {where} the law's r* [{lo:.3f}, {hi:.3f}] misses their crossing "
            f"{c['crossing']:.3f}, outside what the fit predicts them to show: read r* with care (the report has "
            "the details)")


def next_probe_line(plan: Any, domain: str, n_infeasible: int) -> str:
    """The demo's line on the top suggested probe; with infeasible draws, which draws its widths are over.

    The planner's width counts infeasible draws as r* = 0, so it differs from the r* interval printed above it
    (over the feasible draws): the line says so whenever ``domain`` has any.
    """
    top = plan.table.iloc[0]
    return (f"next probe (target: r* of {domain}): {top['domain']}, N = {top['n_params']:,.0f}, "
            f"D = {top['tokens']:,.0f} tokens, r_domain = {top['r_domain']:.3g}; cost "
            f"{top['gpu_hours']:.3g} GPU-hours; expected r* interval width {plan.current_width:.3f} "
            f"-> {top['width_after_batch']:.3f}"
            + (" (over all draws, the infeasible ones as r* = 0; the interval above is over the feasible draws)"
               if n_infeasible else ""))
