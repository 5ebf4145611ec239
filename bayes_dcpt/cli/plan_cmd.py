"""``bayes-dcpt optimize | suggest | loop``: decisions under uncertainty and the next-experiment planner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bayes_dcpt.cli._app import app, console, emit_json, err_console, prepare_outputs
from bayes_dcpt.errors import BayesDCPTError

_USAGES = ("tradeoff", "limited-data", "compute", "critical-curve")


def _usage_inputs(usage: str, **opts: Any) -> dict[str, Any]:
    """The options that ``usage`` accepts, without the unset ones (``decisions.usage_inputs`` decides)."""
    from bayes_dcpt import decide as decisions

    conveniences = {"compute": {"n_params", "tokens"}, "limited-data": {"tokens"}}  # see decisions.optimize
    accepted = set(decisions.usage_inputs(usage)) | conveniences.get(usage, set())
    return {k: v for k, v in opts.items() if v is not None and k in accepted}


@app.command("optimize")
def optimize_cmd(
    fit_path: Path = typer.Argument(..., metavar="FIT", help="A fit written by `bayes-dcpt fit`."),
    usage: str = typer.Option("tradeoff", help="tradeoff, limited-data, compute or critical-curve."),
    n_params: float | None = typer.Option(None, "--n-params", help="Model size N of the planned run."),
    tokens: float | None = typer.Option(None, "--tokens", help="CPT tokens D (limited-data: domain tokens)."),
    max_general_increase: float | None = typer.Option(
        None, "--max-general-increase", min=0.0, help="Threshold T on the general-loss increase (0.03 = 3%)."),
    absolute: bool = typer.Option(False, "--absolute", help="Threshold in nats instead of relative (CMR style)."),
    prob: float | None = typer.Option(None, "--prob", min=0.5, max=0.999,
                                      help="Risk-aware answers: P(increase <= T) at least this, for the law "
                                           "and for one run (its noise included)."),
    base_loss: float | None = typer.Option(None, "--base-loss", min=0.0,
                                           help="General loss L0 of the base model at --n-params (default: from "
                                                "the fit: its measured base row, or its base-loss law)."),
    flops: float | None = typer.Option(None, "--flops", min=0.0, help="Compute budget in FLOPs (usage compute)."),
    r_domain: float | None = typer.Option(None, "--r-domain", min=0.0, max=1.0, help="Fixed ratio (usage compute)."),
    domain: str | None = typer.Option(None, "--domain", help="One domain (default: every fitted domain)."),
    ci: float = typer.Option(0.9, min=0.5, max=0.99, help="Interval probability."),
    json_out: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Save the decision plot (PNG) here."),
    measured: Path | None = typer.Option(
        None, "--measured", help="Runs (a CSV of the data schema) to check r* against: the crossing they measure "
                                 "at --n-params and --tokens, e.g. runs trained after the fit (default: the fit's "
                                 "own data). tradeoff and critical-curve."),
) -> None:
    r"""Solve a usage of the D-CPT paper for every posterior draw: r* with its credible interval.

    Example: [bold]bayes-dcpt optimize fit.nc --usage tradeoff --n-params 443232 \
    --tokens 2097152 --max-general-increase 0.03[/bold]
    """
    prepare_outputs(plot)
    from bayes_dcpt import decide as decisions
    from bayes_dcpt.cli.asking import print_decisions, require_run
    from bayes_dcpt.cli.verdict import warn_if_bad
    from bayes_dcpt.fitting import load_fit

    if usage not in _USAGES:
        raise BayesDCPTError(f"--usage must be one of {', '.join(_USAGES)}, not {usage!r}")
    f = load_fit(fit_path)
    require_run("optimize --usage", usage, f, n_params=n_params, tokens=tokens, flops=flops)
    v = warn_if_bad(err_console, f, fit_path)
    inputs = _usage_inputs(usage, n_params=n_params, tokens=tokens, max_general_increase=max_general_increase,
                           prob=prob, base_loss=base_loss, flops=flops, r_domain=r_domain, domain=domain)
    if absolute:
        inputs["relative"] = False
    if usage == "critical-curve" and tokens is not None:
        import numpy as np

        inputs.pop("tokens", None)
        inputs["tokens_grid"] = np.geomspace(tokens / 30, tokens, 12)
    if measured is not None:
        checked = [u for u in _USAGES if "data" in decisions.usage_inputs(u)]  # the usages a measurement checks
        if usage not in checked:
            raise BayesDCPTError(f"--measured checks the answers of --usage {' and '.join(checked)}, not {usage}")
        from bayes_dcpt.data.schema import load

        inputs["data"] = load(measured)
    dec = decisions.optimize(f, usage, **inputs)  # the fit, so its data check the answer where they measure it
    items = list(dec.values()) if isinstance(dec, decisions.DecisionSet) else [dec]
    if measured is not None:  # asked for a check: say where the runs given could not make one
        for d in items:
            if not d.measured_check(ci):
                err_console.print(f"note: {measured} measures no crossing for {d.domain} here (it needs the general "
                                  "loss of runs at this size and these tokens, at two ratios or more, and the base "
                                  "model's: its tokens == 0 row or --base-loss): r* is not checked",
                                  markup=False, soft_wrap=True)
    if plot is not None:
        fig = items[0].plot()
        fig.savefig(plot, dpi=120, bbox_inches="tight")
    if json_out:  # one layout whether one domain is asked (--domain, a one-domain fit) or all: domains -> answer
        js = dec.to_json()
        if isinstance(js, dict) and not isinstance(dec, decisions.DecisionSet):
            js = {"usage": js.get("usage", usage), "domains": {str(getattr(dec, "domain", js.get("domain"))): js}}
        emit_json({**js, "diagnostics": v.as_json()} if isinstance(js, dict) else {"decisions": js,
                                                                                   "diagnostics": v.as_json()})
        return
    print_decisions(console, dec, ci)
    if plot is not None:
        console.print(f"plot written to {plot}")


def _cost_model(gpu_flops: float, mfu: float, overhead: float):
    from bayes_dcpt.plan.cost import CostModel

    return CostModel(gpu_flops=gpu_flops, mfu=mfu, overhead_hours=overhead)


def _target(target: str, *, n_params: float | None, tokens: float | None, max_general_increase: float | None,
            domain: str | None, base_loss: float | None = None):
    """The planner's target from the CLI options: r* of the trade-off, of limited data, or of the compute allocation.

    The compute target spends the FLOPs of the planned run (``6 N D``); ``--max-general-increase`` and
    ``--base-loss`` belong to the trade-off only.
    """
    from bayes_dcpt.plan.planner import make_target

    name = target.strip().lower().replace("_", "-")
    opts: dict[str, Any] = {"domain": domain}
    if name == "tradeoff":
        opts.update(n_params=n_params, tokens=tokens, max_general_increase=max_general_increase, base_loss=base_loss)
    elif name == "limited-data":
        opts.update(n_params=n_params, tokens=tokens)
    elif name == "compute" and n_params is not None and tokens is not None:
        opts["flops"] = 6.0 * float(n_params) * float(tokens)
    if base_loss is not None and name != "tradeoff":
        raise BayesDCPTError(f"--base-loss applies to --target tradeoff, not {target}")
    tgt, rest = make_target(target, **{k: v for k, v in opts.items() if v is not None})
    if rest:
        raise BayesDCPTError(f"{', '.join('--' + k.replace('_', '-') for k in sorted(rest))} do not apply to "
                             f"--target {target}")
    return tgt


def _candidates(f: Any, candidates: Path | None, fit_path: Path) -> Any:
    """The candidates file, or the report's default menu of the fit (said on stderr)."""
    from bayes_dcpt.plan import planner

    if candidates is not None:
        return planner.read_candidates(candidates)
    if not hasattr(f, "data"):
        raise BayesDCPTError(f"{fit_path} carries no data (a law=auto fit): give --candidates CAND.csv")
    from bayes_dcpt.report.build import default_candidates

    cands = default_candidates(f)
    err_console.print(f"note: {len(cands)} candidates from the default menu (`bayes-dcpt candidates {fit_path}` "
                      "writes it; --candidates for your own)", markup=False, highlight=False, soft_wrap=True)
    return cands


def _drop_measured(cands, db: Path):
    """Candidates not yet run in the store ``db`` (a run covers a candidate of <= its tokens)."""
    import numpy as np

    from bayes_dcpt.data.store import read_measurements

    have = read_measurements(db)
    cpt = have[have["tokens"] > 0]
    done = cpt.groupby(["domain", "n_params", "r_domain"])["tokens"].max()
    keep = []
    for _, c in cands.iterrows():
        covered = any(d == c["domain"] and np.isclose(n, c["n_params"]) and np.isclose(r, c["r_domain"])
                      and t >= c["tokens"] * (1 - 1e-9) for (d, n, r), t in done.items())
        keep.append(not covered)
    out = cands[np.array(keep, bool)].reset_index(drop=True)
    if out.empty:
        raise BayesDCPTError(f"every candidate has already been measured in {db}")
    return out


@app.command("suggest")
def suggest_cmd(
    fit_path: Path = typer.Argument(..., metavar="FIT", help="A fit written by `bayes-dcpt fit`."),
    candidates: Path | None = typer.Option(None, "--candidates", help="CSV of candidate probes (domain, n_params, "
                                                                     "tokens, r_domain; `bayes-dcpt candidates` "
                                                                     "writes one). Default: the report's menu."),
    target: str = typer.Option("tradeoff", help="What to learn about: tradeoff, limited-data or compute (r*)."),
    n_params: float | None = typer.Option(None, "--n-params", help="Model size of the planned (target) run."),
    tokens: float | None = typer.Option(None, "--tokens", help="CPT tokens of the planned run."),
    max_general_increase: float | None = typer.Option(0.03, "--max-general-increase", min=0.0,
                                                      help="Threshold T of the trade-off target."),
    domain: str | None = typer.Option(None, "--domain", help="Domain of the planned run."),
    base_loss: float | None = typer.Option(None, "--base-loss", min=0.0,
                                           help="General loss L0 of the base model at --n-params (default: from "
                                                "the fit: its measured base row, or its base-loss law)."),
    k: int = typer.Option(3, "-k", "--k", min=1, help="Probes in the batch (one per GPU)."),
    budget_gpu_hours: float | None = typer.Option(None, "--budget-gpu-hours", min=0.0,
                                                  help="Total GPU-hours the batch may cost."),
    gpu_flops: float = typer.Option(312e12, "--gpu-flops", min=1.0, help="Peak FLOP/s of one GPU."),
    mfu: float = typer.Option(0.4, "--mfu", min=0.001, max=1.0, help="Model FLOP utilisation."),
    overhead: float = typer.Option(0.25, "--overhead-hours", min=0.0, help="Fixed GPU-hours per run."),
    seed: int = typer.Option(0, help="Seed (same seed, same plan)."),
    db: Path | None = typer.Option(None, "--db", help="Experiment store: candidates already measured there (same "
                                                      "domain, size and ratio, at least as many tokens) are "
                                                      "dropped."),
    out: Path | None = typer.Option(None, help="Write the plan table to this CSV."),
    plot: Path | None = typer.Option(None, "--plot", help="Save the plan plot (PNG) here."),
    json_out: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    r"""Rank candidate probes by expected information about r* per GPU-hour and choose a batch of k.

    Example: [bold]bayes-dcpt suggest fit.nc --candidates cand.csv --target tradeoff \
    --domain python --n-params 443232 --tokens 2097152 \
    --max-general-increase 0.03 -k 3 --budget-gpu-hours 10 --out plan.csv[/bold]
    """
    prepare_outputs(out, plot)
    from bayes_dcpt.cli.asking import print_plan, require_domain, require_run
    from bayes_dcpt.cli.verdict import warn_if_bad
    from bayes_dcpt.fitting import load_fit
    from bayes_dcpt.plan import planner as planner

    f = load_fit(fit_path)
    require_run("suggest --target", target, f, n_params=n_params, tokens=tokens)
    require_domain("suggest", f, domain)
    cands = _candidates(f, candidates, fit_path)
    if db is not None:
        cands = _drop_measured(cands, db)
    v = warn_if_bad(err_console, f, fit_path)
    tgt = _target(target, n_params=n_params, tokens=tokens, max_general_increase=max_general_increase,
                  domain=domain, base_loss=base_loss)
    plan = planner.suggest(f.posterior, cands, tgt, k=k, budget_gpu_hours=budget_gpu_hours,
                           cost_model=_cost_model(gpu_flops, mfu, overhead), seed=seed)
    if out is not None:
        plan.to_csv(out)
    if plot is not None:
        plan.plot().savefig(plot, dpi=120, bbox_inches="tight")
    if json_out:
        emit_json({"summary": plan.summary(), "plan": plan.table.to_dict(orient="records"), **plan.to_json(),
                   "diagnostics": v.as_json()})
        return
    print_plan(console, plan, target=target, n_params=n_params, tokens=tokens, domain=domain,
               max_general_increase=max_general_increase)
    if out is not None:
        console.print(f"plan written to {out}", markup=False, soft_wrap=True)


@app.command("loop")
def loop_cmd(
    data: Path | None = typer.Argument(None, metavar="DATA", help="Measurements so far (CSV/Parquet), or use --db."),
    db: Path | None = typer.Option(None, "--db", help="Experiment store: read from it and store every result in it."),
    candidates: Path | None = typer.Option(None, "--candidates", help="Candidate probes CSV (not needed with "
                                                                       "--executor table)."),
    executor: str = typer.Option("simulate", help="simulate (a known law: the D-CPT law point-fitted to DATA), "
                                                  "table (a measured grid) or probe (train the probes with the "
                                                  "probe runner)."),
    table: Path | None = typer.Option(None, "--table", help="Measured grid for --executor table."),
    spec: Path | None = typer.Option(None, "--spec", help="Probe grid spec (TOML) for --executor probe."),
    target: str = typer.Option("tradeoff", help="tradeoff, limited-data or compute."),
    n_params: float | None = typer.Option(None, "--n-params", help="Model size of the planned run."),
    tokens: float | None = typer.Option(None, "--tokens", help="CPT tokens of the planned run."),
    max_general_increase: float | None = typer.Option(0.03, "--max-general-increase", min=0.0,
                                                      help="Threshold T on the general-loss increase (0.03 = 3%)."),
    domain: str | None = typer.Option(None, "--domain", help="Domain of the planned run."),
    law: str | None = typer.Option(None, help="Law of the refits. Default: with --refit nuts, the law `fit` "
                                              "chooses (cpt where every (domain, size) has base-model rows, else "
                                              "dcpt); with --refit smc, dcpt (the SMC stand-in fits laws of N, D, "
                                              "r)."),
    refit: str = typer.Option("nuts", help="nuts (the Bayesian fit) or smc (a fast numpy stand-in)."),
    draws: int = typer.Option(500, min=50, help="Draws per chain of each NUTS refit."),
    k: int = typer.Option(2, "-k", "--k", min=1, help="Probes per round."),
    rounds: int = typer.Option(5, "--rounds", min=1, help="Maximum rounds."),
    budget_gpu_hours: float | None = typer.Option(None, "--budget-gpu-hours", min=0.0),
    stop_width: float | None = typer.Option(None, "--stop-width", min=0.0, help="Stop when the 90% interval of "
                                                                                  "the target is this narrow."),
    gpu_flops: float = typer.Option(312e12, "--gpu-flops", min=1.0, help="Peak FLOP/s of one GPU."),
    mfu: float = typer.Option(0.4, "--mfu", min=0.001, max=1.0, help="Model FLOP utilisation."),
    overhead: float = typer.Option(0.25, "--overhead-hours", min=0.0, help="Fixed GPU-hours per run."),
    state_dir: Path = typer.Option(Path("loop-state"), "--state-dir", help="Where every round is stored."),
    resume: bool = typer.Option(False, "--resume", help="Continue the loop stored in --state-dir."),
    seed: int = typer.Option(0, help="Seed of the planner, the simulated outcomes and the refits."),
) -> None:
    r"""Alternate suggest -> run -> refit until the target's interval is narrow or the budget is spent.

    Example: [bold]bayes-dcpt loop probes.csv --candidates cand.csv \
    --executor simulate --refit smc --domain python --n-params 443232 \
    --tokens 2097152 --rounds 1 --state-dir loop[/bold]
    """
    from bayes_dcpt.cli.fit_cmd import _load_input
    from bayes_dcpt.plan.loop import PlannerLoop

    if executor not in ("simulate", "table", "probe"):
        raise BayesDCPTError(f"--executor must be simulate, table or probe, not {executor!r}")
    if refit not in ("nuts", "smc"):
        raise BayesDCPTError(f"--refit must be nuts or smc, not {refit!r}")
    df = _load_input(data, db)
    tgt = _target(target, n_params=n_params, tokens=tokens, max_general_increase=max_general_increase,
                  domain=domain)
    ex, cands = _loop_executor(executor, df, candidates=candidates, table=table, spec=spec, db=db, seed=seed)
    if law is None:
        from bayes_dcpt.fitting.api import default_law

        law = default_law(df) if refit == "nuts" else "dcpt"
    refit_fn = _refit_fn(refit, law, draws, seed)
    settings = dict(k=k, budget_gpu_hours=budget_gpu_hours, stop_width=stop_width, max_rounds=rounds,
                    cost_model=_cost_model(gpu_flops, mfu, overhead), seed=seed)
    if resume:
        loop = PlannerLoop.resume(state_dir, candidates=cands, target=tgt, executor=ex, refit=refit_fn,
                                  max_rounds=rounds)
    else:
        if (state_dir / "config.json").exists():
            raise BayesDCPTError(f"{state_dir} already holds a loop; pass --resume to continue it")
        loop = PlannerLoop(candidates=cands, target=tgt, executor=ex, refit=refit_fn, data=df,
                           state_dir=state_dir, **settings)
    _run_rounds(loop, db if executor != "probe" else None)  # the probe executor writes to the store itself
    result = loop.result()
    _print_history(result.history, executor, refit)
    _print_new_runs(result)
    console.print(f"stopped: {loop.stopped or 'max rounds'}; every round is stored in {state_dir}")


def _loop_executor(
    executor: str, df: Any, *, candidates: Path | None, table: Path | None, spec: Path | None, db: Path | None,
    seed: int,
) -> tuple[Any, Any]:
    """The loop's executor (simulate, table or probe) and its candidate probes."""
    from bayes_dcpt.cli.fit_cmd import _load_input
    from bayes_dcpt.plan import planner as planner
    from bayes_dcpt.plan.loop import SimulatorExecutor, TableExecutor

    if executor == "table":
        if table is None:
            raise BayesDCPTError("--executor table needs --table MEASURED.csv")
        ex: Any = TableExecutor(_load_input(table, None))
        return ex, ex.candidates()
    if candidates is None:
        raise BayesDCPTError(f"--executor {executor} needs --candidates CAND.csv")
    cands = planner.read_candidates(candidates)
    if executor == "simulate":
        return SimulatorExecutor(_world_from_data(df, seed), seed=seed), cands
    if spec is None or db is None:
        raise BayesDCPTError("--executor probe needs --spec GRID.toml and --db runs.sqlite")
    from bayes_dcpt.probe.executor import ProbeExecutor

    return ProbeExecutor(spec, db, seed=seed), cands


def _world_from_data(df: Any, seed: int) -> Any:
    """The known world ``--executor simulate`` answers probes from: the D-CPT law point-fitted to DATA.

    A dry run of the loop must simulate losses on the user's own scale: the package's default synthetic world
    (losses of 5-7 nats) beside measured ones of 1.6-2.0 at the same size made every refit's r* collapse to 0.
    Each (target, domain) gets the paper's point fit of the D-CPT law (a law of N, D, r that a simulator can
    evaluate anywhere); the noise is the fits' residual scatter (the median over fits of 1.4826 x the MAD of the
    log residuals), as checkpoint noise without run offsets.
    """
    import numpy as np

    from bayes_dcpt.fitting.pointfit import fit_point
    from bayes_dcpt.plan.simulate import World

    pf = fit_point(df, "dcpt", "both", seed=seed)
    scatter = []
    for f in pf.fits.values():
        rows = df[(df["domain"].astype(str) == f.domain) & (df["tokens"] > 0)]
        y = rows[f"loss_{f.target}"].to_numpy(float)
        ok = np.isfinite(y) & (rows["r_domain"].to_numpy(float) > 0 if f.target == "domain" else
                               rows["r_domain"].to_numpy(float) < 1)
        e = np.log(y[ok]) - np.log(f.predict(rows[ok]))
        if e.size:
            scatter.append(1.4826 * float(np.median(np.abs(e - np.median(e)))))
    sigma = float(np.median(scatter)) if scatter else 0.004
    return World(pf.law, {key: dict(f.params) for key, f in pf.fits.items()}, sigma=sigma, tau=0.0)


def _refit_fn(refit: str, law: str, draws: int, seed: int) -> Any:
    """How the loop refits after each round: NUTS (the Bayesian fit) or the fast SMC stand-in."""
    if refit == "nuts":
        from bayes_dcpt.fitting import bayesian_refit

        return bayesian_refit(law, draws=draws, tune=draws)
    from bayes_dcpt.fitting.smc import SMCRefit

    return SMCRefit(law, seed=seed)


def _run_rounds(loop: Any, db: Path | None) -> None:
    """Step the loop to its end with a spinner; each round's new rows go into the store ``db`` (if given)."""
    import sys

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("round 0: fitting", total=None)
        while True:
            rec = loop.step()
            if rec is None:
                break
            progress.update(task, description=f"round {rec['round']}: {rec['cum_gpu_hours']:.2f} GPU-h so far, "
                                              f"target interval width {rec['width_after']:.3g}")
            if db is not None:
                from bayes_dcpt.data.store import Store

                new = loop.data[loop.data["loop_round"] == rec["round"]]
                with Store(db) as st:
                    st.import_frame(new.drop(columns=["loop_round"]))


def _print_new_runs(result: Any) -> None:
    """How the loop's new runs sat in the bands predicted for them before they ran (FLAG: a miss established)."""
    from bayes_dcpt.cli.verdict import print_wrapped

    check = result.new_runs_check()
    if not check:
        return
    cells = "; ".join(f"{t} loss {c['inside']:.2f} inside from {c['runs']} runs ({c['plausible_lo']:.2f}-"
                      f"{c['plausible_hi']:.2f} plausible)" for t, c in check.items())
    bad = [t for t, c in check.items() if c["established"]]
    head = (f"FLAG: the posterior's {result.ci:.0%} bands missed the runs it chose ({', '.join(bad)} loss): the "
            "law it plans with does not describe them; check the fit (bayes-dcpt fit, predict) before acting: "
            if bad else f"new runs against the {result.ci:.0%} bands predicted before they ran: ")
    print_wrapped(console, head + cells, first="", rest="  ", style="bold" if bad else None)


def _print_history(hist: Any, executor: str, refit: str) -> None:
    """The rounds as a table (nothing when no round ran)."""
    if not len(hist):
        return
    from bayes_dcpt.cli.tables import num, print_table

    cols = {"round": "round", "n_probes": "probes", "gpu_hours": "GPU-h", "cum_gpu_hours": "total GPU-h",
            "width_before": "width before", "width_after": "width after", "median_after": "median after",
            "reweighted": "reweighted"}
    cols |= {f"inside_{t}": f"new runs in band: {t}" for t in ("general", "domain") if f"inside_{t}" in hist}
    rows = [[num(row[c], ".4g") if isinstance(row[c], float) else str(row[c]) for c in cols]
            for _, row in hist.iterrows()]
    print_table(console, f"loop ({executor} executor, {refit} refits; widths: the target's interval)",
                list(cols.values()), rows)
