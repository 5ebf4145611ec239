"""``bayes-dcpt candidates``: a table of candidate probe runs for ``suggest`` and ``loop`` (a menu, crossed).

From menus given as options (domains x model sizes x token budgets x ratios) or, with a fit, the menu the report
uses: the fitted domains x the probed sizes x ratios {0.1, the data's, 0.9} x {1, 2, 4} x the largest tokens.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bayes_dcpt.cli._app import app, console, prepare_outputs
from bayes_dcpt.errors import BayesDCPTError


def _numbers(option: str, text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise BayesDCPTError(f"{option} must be comma-separated numbers, got {text!r}") from exc
    if not values:
        raise BayesDCPTError(f"{option} is empty")
    return values


@app.command("candidates")
def candidates_cmd(
    fit_path: Path | None = typer.Argument(None, metavar="FIT", help="A fit: its default menu, as in the report "
                                                                     "(the options below replace its parts)."),
    out: Path = typer.Option(Path("cand.csv"), "--out", help="The candidates CSV to write."),
    domains: str | None = typer.Option(None, "--domains", help="Domains, comma-separated."),
    n_params: str | None = typer.Option(None, "--n-params", help="Base model sizes you have, comma-separated."),
    tokens: str | None = typer.Option(None, "--tokens", help="CPT token budgets, comma-separated."),
    ratios: str | None = typer.Option(None, "--ratios", help="Domain shares r_domain, comma-separated."),
) -> None:
    """Write candidate probe runs (domain, n_params, tokens, r_domain): every combination of the menus.

    Example: [bold]bayes-dcpt candidates fit.nc --out cand.csv[/bold]
    """
    prepare_outputs(out)
    from bayes_dcpt.plan.candidates import candidates_from_menus

    menus = {"domains": [d.strip() for d in domains.split(",") if d.strip()] if domains else None,
             "n_params": _numbers("--n-params", n_params), "tokens": _numbers("--tokens", tokens),
             "r_domain": _numbers("--ratios", ratios)}
    if fit_path is not None:
        from bayes_dcpt.fitting import load_fit
        from bayes_dcpt.report.build import default_candidates

        f = load_fit(fit_path)
        if not hasattr(f, "data"):
            raise BayesDCPTError(f"{fit_path} carries no data (a law=auto fit): give the menus as options")
        base = default_candidates(f)
        for k, col in (("domains", "domain"), ("n_params", "n_params"), ("tokens", "tokens"), ("r_domain",
                                                                                               "r_domain")):
            if menus[k] is None:
                menus[k] = sorted(base[col].unique().tolist())
    missing = [f"--{k.replace('_', '-').replace('r-domain', 'ratios')}" for k, v in menus.items() if v is None]
    if missing:
        raise BayesDCPTError(f"give a FIT or the menus {', '.join(missing)}")
    cands = candidates_from_menus(menus["domains"], menus["n_params"], menus["tokens"], menus["r_domain"])
    cands.to_csv(out, index=False)
    console.print(f"wrote {len(cands)} candidate probes to {out}: {len(menus['domains'])} domains x "
                  f"{len(menus['n_params'])} sizes x {len(menus['tokens'])} token budgets x "
                  f"{len(menus['r_domain'])} ratios", markup=False, highlight=False)
