"""``bayes-dcpt fit`` and ``bayes-dcpt predict``: the hierarchical Bayesian fit and its predictive bands.

``fit`` prints the parameter table, the sampler checks and the adequacy verdict (does the law describe the data,
and where not), writes the fit, and exits 3 when the sampler checks fail or 4 when the law does not describe the
data (``--allow-bad-fit``: 0); see :mod:`~bayes_dcpt.cli.verdict`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from bayes_dcpt.cli._app import EXIT_MISFIT, EXIT_SAMPLER, app, console, emit_json, err_console, prepare_outputs
from bayes_dcpt.cli.tables import num, print_params, print_table
from bayes_dcpt.cli.verdict import Verdict, print_verdict, print_wrapped, verdict, warn_if_bad
from bayes_dcpt.errors import BayesDCPTError, DataValidationError, UnknownDomainError
from bayes_dcpt.fitting.diagnostics import unconverged_refits
from bayes_dcpt.fitting.discrepancy import fit_thin_domains
from bayes_dcpt.report.wording import extrapolation_line, reach_rows_line, thin_domains_line

#: What ``fit --help`` says about its exit codes (the README's "Exit codes" says the same).
EXIT_HELP = (
    f"Exit code 0: the fit is good; 2: a user error (nothing fitted); {EXIT_SAMPLER}: the sampler checks fail "
    f"(R-hat, ESS, divergences, BFMI; an approximation has none); {EXIT_MISFIT}: the law does not describe the data "
    f"(posterior predictive checks). {EXIT_SAMPLER} wins when both fail. The fit is written in every case; "
    "--allow-bad-fit exits 0 instead of 3 or 4."
)


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


def only_domains(df: Any, domains: str | None) -> Any:
    """The rows of the domains named in ``domains`` (comma-separated; None: all), base rows included.

    One fit per domain when the law misses some domain: fitted together, the domains share the law's shape
    parameters (each has its own noise scales), so one domain's misfit can still pull the others' fits
    (BENCHMARKS.md, honest fit).
    """
    if domains is None:
        return df
    names = [x.strip() for x in domains.split(",") if x.strip()]
    have = sorted(df["domain"].astype(str).unique())
    if not names:
        raise BayesDCPTError(f"--domains needs at least one domain name, comma-separated (the data have {have})")
    unknown = [x for x in names if x not in have]
    if unknown:
        raise UnknownDomainError(f"--domains: unknown domain {unknown[0]!r} (the data have {', '.join(have)})")
    return df[df["domain"].astype(str).isin(names)].reset_index(drop=True)


def _check_fit_options(law: str, target: str, sampler: str, run_offsets: str, domain_levels: str,
                       auto_laws: str | None, burn_in: str = "warmup") -> list[str] | None:
    """Every option checked before the data is read; the candidate laws of ``--law auto`` (None: the default)."""
    from bayes_dcpt.cli.point_cmd import FIT_FAMILIES
    from bayes_dcpt.data.schema import TARGETS
    from bayes_dcpt.fitting import SAMPLERS
    from bayes_dcpt.laws.registry import get_law

    if target not in (*TARGETS, "both"):
        raise BayesDCPTError(f"--target must be general, domain or both, not {target!r}")
    if sampler not in SAMPLERS:
        raise BayesDCPTError(f"--sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    if run_offsets not in ("marginal", "latent"):
        raise BayesDCPTError(f"--run-offsets must be marginal or latent, not {run_offsets!r}")
    if domain_levels not in ("separate", "pooled"):
        raise BayesDCPTError(f"--domain-levels must be separate or pooled, not {domain_levels!r}")
    if burn_in not in ("warmup", "none"):
        raise BayesDCPTError(f"--burn-in must be warmup or none, not {burn_in!r}")
    names = [law] if law.strip().lower() != "auto" else [x.strip() for x in (auto_laws or "").split(",") if x.strip()]
    if auto_laws is not None and law.strip().lower() != "auto":
        raise BayesDCPTError("--auto-laws goes with --law auto")
    for name in names:
        fam = get_law(name).family
        if fam not in FIT_FAMILIES:
            hint = "; use `bayes-dcpt fit-dynamics`" if fam == "cpt-dynamics" else " (see `bayes-dcpt laws`)"
            raise BayesDCPTError(f"--law {name}: a {fam} law is not fitted by `bayes-dcpt fit`{hint}")
    if law.strip().lower() == "auto" and auto_laws is not None and len(names) < 2:
        raise BayesDCPTError(f"--auto-laws needs at least two laws, comma-separated, got {auto_laws!r}")
    return names if law.strip().lower() == "auto" and auto_laws is not None else None


@app.command("fit", epilog=EXIT_HELP)
def fit_cmd(
    data: Path | None = typer.Argument(None, metavar="DATA", help="CSV/Parquet file of CPT measurements "
                                                                  "(or use --db)."),
    db: Path | None = typer.Option(None, "--db", help="Experiment store (SQLite) to read the measurements from."),
    law: str | None = typer.Option(None, help="cpt (anchored at the base model), dcpt (the D-CPT law L3), auto "
                                              "(several laws weighed by how they extrapolate), L1..L7, "
                                              "cross-domain, chinchilla: `bayes-dcpt laws`. Default: cpt when "
                                              "every (domain, size) has base-model rows (tokens = 0), else dcpt.",
                                   show_default=False),
    auto_laws: str | None = typer.Option(None, "--auto-laws", help="Candidates of --law auto, comma-separated "
                                                                   "(default: the package's choice)."),
    no_screen: bool = typer.Option(False, "--no-screen", help="With --law auto: refit every law on every split and "
                                   "retry every unconverged refit (by default a law a split's scores rule out is "
                                   "not refitted on the next, nor its refit retried)."),
    rewarm: bool = typer.Option(False, "--rewarm", help="CPT law (or the cpt candidate of --law auto): also fit "
                                "the general loss's re-warming rise, at every mixture, r = 0 included. Off by "
                                "default: it calibrates held-out ratios but extrapolates worse in tokens and size "
                                "(BENCHMARKS.md)."),
    share_power: bool = typer.Option(False, "--share-power", help="CPT law (or the cpt candidate of --law auto): "
                                     "the general loss's forgetting grows with each domain's own power of the "
                                     "domain share, for a general loss that rises early in r. Off by default: r* "
                                     "meets measured crossings more often, extrapolation is no better "
                                     "(BENCHMARKS.md)."),
    transfer: bool = typer.Option(False, "--transfer", help="CPT law (or the cpt candidate of --law auto): the "
                                  "general loss learns from the domain tokens too, each domain its own share. Off by "
                                  "default: r* at a larger size moves towards the measured crossing, but the "
                                  "example's general loss extrapolates worse in size (BENCHMARKS.md)."),
    no_replay_size: bool = typer.Option(False, "--no-replay-size", help="CPT law (or the cpt candidate of --law "
                                        "auto): one replay balance at every size, as before 2026-12-07. By default "
                                        "it grows with the model's capability (pure-domain CPT forgets more at a "
                                        "larger size, mixed runs do not), which r* at a larger size reads."),
    target: str = typer.Option("both", help="general, domain or both."),
    domains: str | None = typer.Option(None, "--domains", help="Fit only these domains (comma-separated; "
                                       "default: all, fitted together)."),
    out: Path = typer.Option(Path("fit.nc"), help="Where to write the fit (netCDF with a model card)."),
    draws: int | None = typer.Option(None, min=1, help="Posterior draws per chain (default 1000; 1500 for "
                                     "the D-CPT hierarchy of dense logs, whose tail ESS needs them; with --law "
                                     "auto and no --draws, a weighted law whose fit fails the sampler checks is "
                                     "sampled again at 4 x 3000)."),
    tune: int = typer.Option(1000, min=0, help="Tuning steps per chain."),
    chains: int = typer.Option(4, min=1, help="Chains."),
    seed: int = typer.Option(0, help="Random seed (same seed, same posterior)."),
    sampler: str = typer.Option("nutpie", help="nutpie, pymc, numpyro, or the approximations laplace, advi."),
    target_accept: float | None = typer.Option(None, "--target-accept", min=0.5, max=0.999,
                                               help="NUTS target acceptance rate (default 0.9; 0.95 for the D-CPT "
                                                    "hierarchy of dense logs); higher removes divergences at the "
                                                    "cost of smaller steps."),
    no_run_effect: bool = typer.Option(False, "--no-run-effect", help="Drop the per-run random offsets."),
    run_offsets: str = typer.Option("marginal", help="marginal (integrated out, default) or latent (sampled)."),
    domain_levels: str = typer.Option("separate", "--domain-levels", help="separate (each domain's own "
                                                                           "domain-loss level) or pooled."),
    normal: bool = typer.Option(False, "--normal", help="Normal instead of Student-t likelihood."),
    allow_bad_fit: bool = typer.Option(False, "--allow-bad-fit", help="Exit 0 even when the sampler checks fail "
                                                                      "or the law does not describe the data."),
    burn_in: str = typer.Option("warmup", "--burn-in", help="warmup (leave out the checkpoints inside their "
                                "run's LR warm-up, told by the step and schedule columns, else by lr; default) "
                                "or none (fit them all)."),
    no_calibration: bool = typer.Option(False, "--no-calibration", help="Skip the held-out refits (later "
                                        "tokens from two origins, largest size) that widen the bands beyond the "
                                        "data: faster, but the bands then only cover interpolation."),
    json_out: bool = typer.Option(False, "--json", help="Print the verdict and the parameter table as JSON."),
) -> None:
    r"""Fit a law as a hierarchical Bayesian model: parameters, sampler checks, and whether the law fits the data.

    Exit codes: 0 good fit, 3 sampler checks fail, 4 the law does not describe the data (the fit is written
    anyway; --allow-bad-fit exits 0).

    Example: [bold]bayes-dcpt fit probes.csv --law cpt --out fit.nc \
    --draws 1000 --chains 4[/bold]
    """
    prepare_outputs(out)
    from bayes_dcpt.fitting import fit

    candidates = _check_fit_options(law or "dcpt", target, sampler, run_offsets, domain_levels, auto_laws, burn_in)
    if no_screen and (law or "").strip().lower() != "auto":
        raise BayesDCPTError("--no-screen goes with --law auto")
    df = only_domains(_load_input(data, db), domains)
    if law is None:
        from bayes_dcpt.fitting.api import default_law

        law = default_law(df)
        (err_console if json_out else console).print(
            f"law: {law} (the default for data {'with' if law == 'cpt' else 'without'} base-model rows at every "
            "size; --law to choose)", markup=False, highlight=False, soft_wrap=True)
    kw: dict[str, Any] = dict(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                              run_effect=not no_run_effect, run_offsets=run_offsets, domain_levels=domain_levels,
                              robust=not normal, burn_in=burn_in, discrepancy=not no_calibration, warn=False)
    if target_accept is not None and sampler not in ("laplace", "advi"):
        kw["sampler_kwargs"] = {"target_accept": target_accept}
    kw.update({k: True for k, on in (("rewarm", rewarm), ("share_power", share_power), ("transfer", transfer))
               if on} | ({"replay_size": False} if no_replay_size else {}))
    if candidates is not None:
        kw["candidates"] = candidates
    if no_screen:
        kw["screen"] = False
    with _spinner(f"sampling {law} ({chains} chains x {draws or 'the default'} draws, {sampler})", law):
        f = fit(df, law, target, **kw)
    f.save(out)
    # law='auto' says what it screened out, left out, and whether the held-out runs settle the weights
    report_fit(f, out, allow_bad_fit=allow_bad_fit, json_out=json_out, notes=list(getattr(f, "notes", [])))


@contextmanager
def _spinner(text: str, label: str) -> Iterator[None]:
    """A transient spinner on stderr with the fit's stage and its chains' progress.

    Nothing is shown when stderr is not a terminal. A fit of tens of thousands of checkpoints, or ``--law auto``
    with its refits, runs for minutes: the line (``label``, then the stage and the chains' progress) says which
    stage it is in and how far.
    """
    import sys

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bayes_dcpt.fitting.progress import reporting

    tty = sys.stderr.isatty()
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                        transient=True, disable=not tty)
    task = progress.add_task(text, total=None)

    def show(line: str) -> None:  # a stage named after the fit's own law is not prefixed with it twice
        progress.update(task, description=line if line.startswith(f"{label}: ") else f"{label}: {line}")

    with progress, reporting(show if tty else None):
        yield


def report_fit(f: Any, out: Path, *, allow_bad_fit: bool, json_out: bool, notes: list[str] | None = None) -> None:
    """Print what a new fit is (table, per-law weights, verdict, file) and exit 3 or 4 when it is bad.

    Shared by ``fit`` and ``fit-dynamics``.
    """
    v = verdict(f)
    code = 0 if allow_bad_fit else v.exit_code()
    if json_out:
        emit_json(fit_json(f, v, out, code, notes or []))
    else:
        _print_parameters(f)
        for n in notes or []:
            console.print(f"note: {n}", markup=False, highlight=False, soft_wrap=True)
        print_verdict(console, v)
        if (line := extrapolation_line(f)) is not None:
            print_wrapped(console, line, first="", rest="  ")
        if (line := thin_domains_line(fit_thin_domains(f))) is not None:
            print_wrapped(console, line, first="", rest="  ")
        console.print(f"fit written to {out}", markup=False, highlight=False, soft_wrap=True)
    if not v.ok:
        what = {EXIT_SAMPLER: "the sampler checks fail", EXIT_MISFIT: "the law does not describe the data"}
        head = what.get(v.exit_code(), "the fit is bad")
        if allow_bad_fit:
            err_console.print(f"warning: {head}; accepted with --allow-bad-fit (exit 0). Do not trust its "
                              f"intervals and decisions before fixing this.", markup=False, soft_wrap=True,
                              style="yellow")
        else:
            err_console.print(f"error: {head} (exit code {code}); the fit is written to {out}. Do not trust its "
                              "intervals and decisions before fixing this (see `what to try`); --allow-bad-fit "
                              "accepts it.", markup=False, soft_wrap=True, style="red")
    if code:
        raise typer.Exit(code)


def fit_json(f: Any, v: Verdict, out: Path, code: int, notes: list[str]) -> dict[str, Any]:
    """``--json`` of a new fit: file, law, exit code, verdict, failed adequacy checks, parameters (per law)."""
    adequacy = f.adequacy() if callable(getattr(f, "adequacy", None)) and getattr(f, "data", None) is not None \
        else None
    payload: dict[str, Any] = {"out": str(out), "law": f.law.name, "exit_code": code, "diagnostics": v.as_json(),
                               "adequacy": adequacy.as_dict() if adequacy is not None else None}
    if hasattr(f, "table") and hasattr(f, "weights"):
        payload["laws"] = law_table(f).to_dict(orient="records")
    if notes:
        payload["notes"] = notes
    if getattr(f, "extrapolation", None):
        ex = f.extrapolation
        payload["extrapolation"] = {"discrepancy": ex.get("discrepancy"), "splits": ex.get("splits"),
                                    "streams": ex.get("streams") or {}, "unconverged_refits": unconverged_refits(f),
                                    "holdout": ex.get("holdout") or []}  # each refit's error, split x target
    if thin := fit_thin_domains(f):
        payload["thin_domains"] = {"domains": thin, "note": thin_domains_line(thin)}
    summ = f.summary()
    names = ["law", "parameter"] if summ.index.nlevels == 2 else "parameter"
    payload["summary"] = summ.reset_index(names=names).to_dict(orient="records")
    return payload


def law_table(f: Any) -> Any:
    """Per candidate of a ``law="auto"`` fit: its weight, held-out scores (whatever the fit reports), verdict."""
    import pandas as pd

    t = f.table().drop(columns=["diagnostics"], errors="ignore")
    fits = getattr(f, "fits", {})
    rows = []
    for name in t["law"]:
        one = verdict(fits[name]) if name in fits else None
        rows.append({"sampler": "n/a" if one is None else ("ok" if one.sampler_ok else "BAD"),
                     "adequacy": "n/a" if one is None or one.adequate is None else ("ok" if one.adequate else
                                                                                      "MISFIT")})
    return pd.concat([t.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def _print_parameters(f: Any) -> None:
    """The per-law table of a ``law="auto"`` fit and the parameter table (of its heaviest law)."""
    shown, title = f, f"{f.law.name}: {f.law.title} (90% HDI)"
    if hasattr(f, "table") and hasattr(f, "weights"):
        t = law_table(f)
        rows = [[str(r["law"]), *[num(v, ".3g") if isinstance(v, float) else "-" if v is None else str(v)
                                   for v in r.iloc[1:]]]
                for _, r in t.iterrows()]
        print_table(console, "law=auto: candidate laws, weighed", list(t.columns), rows)
        shown = f.best
        title = (f"parameters of {shown.law.name}, the heaviest law: {shown.law.title} (90% HDI; the others: "
                 "--json)")
    print_params(console, title, shown.summary())


@app.command("predict")
def predict_cmd(
    fit_path: Path = typer.Argument(..., metavar="FIT", help="A fit written by `bayes-dcpt fit`."),
    grid: Path = typer.Argument(..., metavar="GRID", help="CSV with columns domain, n_params, tokens, r_domain "
                                                          "(a data file will do)."),
    ci: float = typer.Option(0.9, min=0.5, max=0.99, help="Interval probability (a central band)."),
    kind: str = typer.Option("predictive", help="predictive (a new run's measurement) or mean (the law)."),
    out: Path | None = typer.Option(None, help="Write the predictions to this CSV (else print them)."),
    seed: int = typer.Option(0, help="Seed of the predictive noise draws."),
    json_out: bool = typer.Option(False, "--json", help="Print the fit's diagnostics and the predictions as JSON."),
    baseline: bool = typer.Option(False, "--baseline", help="With measured losses in GRID: also fit the paper's "
                                  "point fits (L3, L1; each domain alone: seconds, minutes at ~10^4 rows) to the "
                                  "fit's data and show their error beside the fit's."),
) -> None:
    """Posterior predictive bands for a grid of (domain, n_params, tokens, r_domain).

    When GRID has measured losses (runs trained after the fit, say), it also checks the bands against them: error,
    share inside, which side misses; rows the fit had are not judged.

    Example: [bold]bayes-dcpt predict fit.nc probes.csv --ci 0.9 --out pred.csv[/bold]
    """
    prepare_outputs(out)
    from bayes_dcpt.data.schema import read_table
    from bayes_dcpt.fitting import load_fit

    if kind not in ("predictive", "mean"):
        raise BayesDCPTError(f"--kind must be predictive or mean, not {kind!r}")
    f = load_fit(fit_path)
    table = read_table(grid)
    g, kept = _cpt_rows(table, grid)
    v = warn_if_bad(err_console, f, fit_path)
    try:
        pred = f.predict(g, ci=ci, kind=kind, seed=seed)
    except DataValidationError as exc:  # name the rows of GRID as the file numbers them, base rows included
        raise DataValidationError([replace(p, rows=tuple(int(kept[r - 1]) + 1 for r in p.rows),
                                           first_line=table.attrs.get("first_line")) for p in exc.problems],
                                  source=str(grid)) from None
    if len(kept) < len(table):
        n = len(table) - len(kept)
        err_console.print(f"note: {n} base-model row{'s' if n > 1 else ''} of {grid} (tokens == 0) skipped: the law "
                          "predicts CPT checkpoints", markup=False, highlight=False, soft_wrap=True)
    thin = {d: a for d, a in fit_thin_domains(f).items() if d in set(g["domain"].astype(str))}
    if thin and not json_out:  # rows of a thinly probed domain: their bands are not calibrated, said once
        print_wrapped(err_console, thin_domains_line(thin), first="", rest="  ", style="yellow")
    far = _beyond_reach_rows(f.posterior.frame_beyond_reach(g), kept, table.attrs.get("first_line"))
    if far and not json_out:
        print_wrapped(err_console, reach_rows_line(far, len(g), kind), first="", rest="  ", style="yellow")
    check = _measured_check(f, pred, ci, kind, baseline)
    if out:
        pred.to_csv(out, index=False)
    if json_out:
        emit_json({"diagnostics": v.as_json(), **({"out": str(out)} if out else {}),
                   **({"thin_domains": thin} if thin else {}), **({"beyond_reach": far} if far else {}),
                   **({"check": check.to_dict()} if check is not None else {}),
                   "predictions": pred.to_dict(orient="records")})
        return
    if out:
        console.print(f"{len(pred)} predictions written to {out}", markup=False, soft_wrap=True)
    else:
        _print_predictions(pred)
    if check is not None:
        _print_check(check)


def _measured_check(f: Any, pred: Any, ci: float, kind: str, baseline: bool) -> Any:
    """The grid's measured losses against the predictive bands (None: no measured loss, or ``--kind mean``)."""
    import numpy as np

    measured = [c for c in ("loss_general", "loss_domain") if c in pred and np.isfinite(
        np.asarray(pred[c], float)).any()]
    if not measured or kind != "predictive":  # the law's own band is not meant to hold single runs
        if baseline:
            raise BayesDCPTError("--baseline compares predictions of measured losses: GRID has none" if not measured
                                 else "--baseline needs --kind predictive (the bands a run's measurement falls in)")
        if measured:
            err_console.print("note: GRID has measured losses; checking them needs the default --kind predictive "
                              "(a run's measurement falls in the predictive band, not in the law's)", markup=False,
                              highlight=False, soft_wrap=True)
        return None
    return f.check_predicted(pred, ci, baseline=baseline)


def _print_check(check: Any) -> None:
    """The measured losses against the bands, per (target, domain): held-out groups judged, in-sample shown."""
    from bayes_dcpt.posterior.heldout import DISPLAY_LEGEND

    shown = check.display()
    print_table(console, f"measured losses against the {check.ci:.0%} predictive bands", list(shown.columns),
                shown.to_numpy().tolist(), labels=3, legend=DISPLAY_LEGEND)
    bad = check.ok is False
    print_wrapped(console, check.summary(), first="FLAG: " if bad else "", rest="  ", style="bold" if bad else None)
    for p in check.problems:
        print_wrapped(console, p, first="  - ", rest="    ")
    for p in check.outside:
        print_wrapped(console, p, first="  - not established: ", rest="    ")
    for p in check.worse_than_baselines:
        print_wrapped(console, p, first="  - ", rest="    ")


def _beyond_reach_rows(far: list[dict[str, Any]], kept: Any, first_line: int | None) -> list[dict[str, Any]]:
    """The grid's rows beyond the fit's reach, numbered as GRID numbers them (its base rows included)."""
    return [{"row": int(kept[i]) + 1, **({"line": int(kept[i]) + first_line} if first_line else {}), "axes": a}
            for i, a in enumerate(far) if a]


def _cpt_rows(g: Any, source: Path) -> tuple[Any, Any]:
    """The grid without base-model rows (tokens == 0: the law predicts CPT checkpoints) and the kept positions."""
    import numpy as np
    import pandas as pd

    if g.empty:  # a header alone: "0 predictions written" with exit 0 read as success (data validate refuses it)
        raise BayesDCPTError(f"{source}: the grid has no rows")
    if "tokens" not in g:
        return g, np.arange(len(g))
    base = pd.to_numeric(g["tokens"], errors="coerce").eq(0).to_numpy()
    if base.any() and base.all():
        raise BayesDCPTError(f"{source}: every row is a base-model row (tokens == 0); the law predicts CPT "
                             "checkpoints (tokens > 0)")
    return g[~base].reset_index(drop=True), np.flatnonzero(~base)


def _print_predictions(pred: Any) -> None:
    """One row per grid point: the point, then each loss as ``mean [lo, hi]``."""
    losses = [t for t in ("general", "domain") if f"loss_{t}_mean" in pred]
    headers = ["domain", "N", "D", "r_domain", *[f"{t} loss [band]" for t in losses]]
    rows = []
    for _, r in pred.iterrows():
        cells = [str(r["domain"]), f"{r['n_params']:,.0f}", f"{r['tokens']:,.0f}", num(r["r_domain"], ".3g")]
        cells += [f"{num(r[f'loss_{t}_mean'])} [{num(r[f'loss_{t}_lo'])}, {num(r[f'loss_{t}_hi'])}]"
                  for t in losses]
        rows.append(cells)
    print_table(console, "", headers, rows)
