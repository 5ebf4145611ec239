"""``bayes-dcpt probe ...``: pretrain base models, run probes and grids of probes (needs the ``probe`` extra).

torch is imported only when a command runs, so the rest of the CLI works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bayes_dcpt.cli._app import app, console, emit_json, prepare_outputs
from bayes_dcpt.errors import BayesDCPTError
from bayes_dcpt.probe import require_extra

probe_app = typer.Typer(
    help="Probe runs: pretrain a size ladder, run CPT probes, run grids.\n\n"
         "Example: [bold]bayes-dcpt probe corpora --out corpora[/bold]", no_args_is_help=True
)
app.add_typer(probe_app, name="probe")


#: ``--shuffle-tokens`` of ``probe pretrain`` and ``probe run`` (TrainSettings.shuffle_tokens).
_SHUFFLE = typer.Option(None, "--shuffle-tokens", min=1, help="Tokens of each training stream shuffled together "
                        "(default 2^23: a corpus up to that size is read in a fresh random order every epoch; a "
                        "small buffer follows the corpus's file order).")


def _settings(**kw: Any):
    from bayes_dcpt.probe.configs import TrainSettings

    return TrainSettings(**{k: v for k, v in kw.items() if v is not None})


class _Bar:
    """A rich progress bar fed by the training loop's progress events (tokens, loss, ETA)."""

    def __init__(self, quiet: bool):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.quiet = quiet
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tokens"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or not console.is_terminal,  # a log gets the summary line, not cut bars
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, ev: dict[str, Any], label: str = "train") -> None:
        label = ev.get("label", label)
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=ev["total_tokens"], loss="-", speed="")
        self.progress.update(
            self.tasks[label],
            completed=ev["tokens"],
            loss=f"{ev['loss']:.3f}",
            speed=f"{ev['tokens_per_second']:,.0f} tok/s",
        )


@probe_app.command("presets")
def presets_cmd() -> None:
    """List the byte-level model presets with their parameter counts.

    Example: [bold]bayes-dcpt probe presets[/bold]
    """
    require_extra()
    from rich.table import Table

    from bayes_dcpt.probe.networks import PRESETS, build_preset

    t = Table(title="byte-level Llama-style presets (vocabulary 256)")
    for c in ("preset", "hidden", "layers", "heads", "mlp", "N (non-embedding)", "N (total)"):
        t.add_column(c)
    for name, (d, layers, heads, ffn) in PRESETS.items():
        m = build_preset(name)
        t.add_row(name, str(d), str(layers), str(heads), str(ffn), f"{m.n_params:,}", f"{m.n_params_total:,}")
    console.print(t)


@probe_app.command("corpora")
def corpora_cmd(
    out: Path = typer.Option(Path("corpora"), "--out", help="Folder for the JSONL corpora."),
    json_out: bool = typer.Option(False, "--json", help="Print the byte counts as JSON."),
) -> None:
    """Write the offline example corpora from this Python installation (general prose + 3 domains).

    Example: [bold]bayes-dcpt probe corpora --out corpora[/bold]
    """
    from bayes_dcpt.probe.corpora import gather_stdlib

    if out.exists() and not out.is_dir():
        raise BayesDCPTError(f"--out {out} exists and is not a folder (the corpora go into a folder)")
    info = gather_stdlib(out)
    if json_out:
        emit_json(info)
        return
    for name, d in info.items():
        console.print(
            f"{out / (name + '.jsonl')}: {d['documents']} documents, {d['bytes']:,} bytes", soft_wrap=True
        )


@probe_app.command("pretrain")
def pretrain_cmd(
    preset: str = typer.Option(..., "--preset", help="Model preset (see `probe presets`)."),
    general: Path = typer.Option(
        ..., "--general", help="General corpus: file or folder (txt, JSONL, Parquet)."
    ),
    tokens: int = typer.Option(..., "--tokens", min=1, help="Training tokens."),
    out: Path = typer.Option(..., "--out", help="Output directory of the base model."),
    seed: int = typer.Option(0, "--seed"),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate."),
    schedule: str = typer.Option("cosine", "--schedule", help="constant, cosine or wsd."),
    warmup: int = typer.Option(50, "--warmup", min=0, help="Warmup steps."),
    seq_len: int = typer.Option(128, "--seq-len", min=1),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    shuffle_tokens: int | None = _SHUFFLE,
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:i]."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Torch CPU threads."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    r"""Pretrain a preset from scratch on the general corpus and save it (a rung of the size ladder).

    Example: [bold]bayes-dcpt probe pretrain --preset tiny \
    --general corpora/general.jsonl --tokens 2097152 --out bases/tiny[/bold]
    """
    require_extra()
    from bayes_dcpt.probe.configs import PretrainConfig
    from bayes_dcpt.probe.pretraining import pretrain

    cfg = PretrainConfig(
        preset=preset,
        general=str(general),
        tokens=tokens,
        out=str(out),
        seed=seed,
        train=_settings(
            lr=lr,
            schedule=schedule,
            warmup_steps=warmup,
            seq_len=seq_len,
            batch_size=batch_size,
            shuffle_tokens=shuffle_tokens,
            device=device,
            threads=threads,
        ),
    )
    with _Bar(quiet or json_out) as bar:
        res = pretrain(cfg, progress=lambda ev: bar.update(ev, f"pretrain {preset}"))
    if not res.main:  # under torchrun rank 0 saved the model and reports it; the other ranks measured nothing
        return
    summary = {
        "out": res.out,
        "n_params": res.n_params,
        "tokens": res.tokens_trained,
        "tokens_per_second": res.tokens_per_second,
        "wall_seconds": res.wall_seconds,
        "val_loss_general": res.evaluations[-1]["loss_general"],
        "mfu": res.mfu,
    }
    if json_out:
        emit_json(summary)
    else:
        console.print(
            f"saved {out} (N={res.n_params:,} non-embedding): general val loss "
            f"{summary['val_loss_general']:.4f} after {res.tokens_trained:,} tokens, "
            f"{res.tokens_per_second:,.0f} tokens/s, {res.wall_seconds:.1f} s",
            soft_wrap=True,
        )


@probe_app.command("run")
def run_cmd(
    model: str = typer.Option(
        ..., "--model", help="Base model directory (probe pretrain or Hugging Face) or a preset."
    ),
    general: Path = typer.Option(..., "--general", help="General corpus: file or folder."),
    domain: Path = typer.Option(..., "--domain", help="Domain corpus: file or folder."),
    domain_name: str = typer.Option(..., "--domain-name", help="Name of the domain in the results."),
    ratio: float = typer.Option(..., "--ratio", help="Domain share r of the mixture, in [0, 1]."),
    tokens: int = typer.Option(..., "--tokens", min=1, help="CPT token budget."),
    db: Path = typer.Option(Path("runs.sqlite"), "--db", help="The experiment store (SQLite)."),
    csv: Path | None = typer.Option(
        None, "--csv", help="Also write this run's rows (and base rows) to a CSV."
    ),
    seed: int = typer.Option(0, "--seed"),
    run_id: str | None = typer.Option(None, "--run-id", help="Default: <domain>|N=<n>|r=<r>|seed=<seed>."),
    lr: float = typer.Option(5e-4, "--lr"),
    schedule: str = typer.Option("constant", "--schedule", help="constant, cosine or wsd."),
    warmup: int = typer.Option(10, "--warmup", min=0),
    seq_len: int = typer.Option(128, "--seq-len", min=1),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    shuffle_tokens: int | None = _SHUFFLE,
    eval_first: int | None = typer.Option(None, "--eval-first", help="First evaluation point in tokens."),
    eval_per_octave: float = typer.Option(
        1.0, "--eval-per-octave", help="Evaluations per doubling of tokens."
    ),
    probe_budget: int | None = typer.Option(None, "--probe-budget", help="Also evaluate at b and 2b (DLC)."),
    val_tokens: int = typer.Option(32768, "--val-tokens", min=2),
    val_general: Path | None = typer.Option(
        None, "--val-general", help="Separate general validation corpus."
    ),
    val_domain: Path | None = typer.Option(None, "--val-domain", help="Separate domain validation corpus."),
    checkpoint_dir: Path | None = typer.Option(
        None, "--checkpoint-dir", help="Resume checkpoints (default: <db>.ckpt/)."
    ),
    checkpoint_every: int = typer.Option(
        0, "--checkpoint-every", min=0, help="Also checkpoint every k steps."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its checkpoint."),
    force: bool = typer.Option(False, "--force", help="Start a stored run over, replacing its rows."),
    device: str = typer.Option("auto", "--device"),
    threads: int | None = typer.Option(None, "--threads", min=1),
    trust_remote_code: bool = typer.Option(
        False, "--trust-remote-code", help="Allow the model's own code to run."
    ),
    quiet: bool = typer.Option(False, "--quiet"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    r"""Run one probe: continue the base model on the mixture and store the losses as they are measured.

    Example: [bold]bayes-dcpt probe run --model bases/tiny \
    --general corpora/general.jsonl --domain corpora/python.jsonl \
    --domain-name python --ratio 0.25 --tokens 524288 --db runs.sqlite[/bold]

    On 2 GPUs: [bold]torchrun --nproc-per-node 2 $(command -v bayes-dcpt) probe run ...[/bold]
    """
    prepare_outputs(csv)
    require_extra()
    from bayes_dcpt.probe.configs import ProbeConfig
    from bayes_dcpt.probe.run import run_probe

    ckdir = checkpoint_dir or Path(str(db) + ".ckpt")
    cfg = ProbeConfig(
        base=model,
        general=str(general),
        domain=str(domain),
        domain_name=domain_name,
        r_domain=ratio,
        tokens=tokens,
        seed=seed,
        run_id=run_id,
        eval_first=eval_first,
        eval_per_octave=eval_per_octave,
        probe_budget=probe_budget,
        val_tokens=val_tokens,
        val_general=str(val_general) if val_general else None,
        val_domain=str(val_domain) if val_domain else None,
        checkpoint_dir=str(ckdir),
        checkpoint_every=checkpoint_every,
        trust_remote_code=trust_remote_code,
        train=_settings(
            lr=lr,
            schedule=schedule,
            warmup_steps=warmup,
            seq_len=seq_len,
            batch_size=batch_size,
            shuffle_tokens=shuffle_tokens,
            device=device,
            threads=threads,
        ),
    )
    with _Bar(quiet or json_out) as bar:
        res = run_probe(cfg, db=db, resume=resume, force=force, progress=bar.update)
    if not res.main:  # under torchrun rank 0 stored the measurements and reports them, once
        return
    if csv is not None:
        _export_run(db, csv, res.run_id, domain_name, res.n_params)
    _print_run(res, db, json_out)


def _export_run(db: Path, csv: Path, run_id: str, domain_name: str, n_params: float) -> None:
    """Write the run's rows and its base model's rows from the store to ``csv``."""
    from bayes_dcpt.data.store import Store, base_run_id

    with Store(db) as st:
        df = st.to_frame()
    keep = {run_id, base_run_id(domain_name, n_params)}
    df[df["run_id"].isin(keep)].to_csv(csv, index=False)


def _print_run(res: Any, db: Path, json_out: bool) -> None:
    """What the probe did: JSON, or one line (already done, or measurements stored and throughput)."""
    summary = {
        "run_id": res.run_id,
        "n_params": res.n_params,
        "skipped": res.skipped,
        "evaluations": len(res.evaluations),
        "tokens_per_second": res.tokens_per_second,
        "mfu": res.mfu,
        "wall_seconds": res.wall_seconds,
        "resumed_from_step": res.resumed_from_step,
        "db": str(db),
    }
    if json_out:
        emit_json(summary)
    elif res.skipped:
        console.print(f"{res.run_id}: already done in {db} (use --force to run it again)", soft_wrap=True)
    else:
        mfu = f", MFU {res.mfu:.1%}" if res.mfu is not None else ""
        console.print(
            f"{res.run_id}: {len(res.evaluations)} measurements stored in {db}; "
            f"{res.tokens_per_second:,.0f} tokens/s{mfu}, {res.wall_seconds:.1f} s",
            soft_wrap=True,
        )


@probe_app.command("grid")
def grid_cmd(
    spec: Path = typer.Argument(..., metavar="SPEC", help="Grid spec (TOML or JSON)."),
    db: Path = typer.Option(Path("runs.sqlite"), "--db", help="The experiment store (SQLite)."),
    csv: Path | None = typer.Option(None, "--csv", help="Export the whole store to this CSV afterwards."),
    workdir: Path = typer.Option(
        Path("."), "--workdir", help="Folder that relative paths in the spec refer to."
    ),
    executor: str = typer.Option("local", "--executor", help="local (processes) or ray."),
    workers: int = typer.Option(1, "--workers", min=1, help="Probes at once (one per GPU on a GPU machine)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Torch threads per probe."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (default: local Ray)."),
    quiet: bool = typer.Option(False, "--quiet"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    r"""Run a grid of (size, domain, ratio, seed) probes from a spec file; done runs are skipped.

    Example: [bold]bayes-dcpt probe grid bayes_dcpt/datasets/example_grid.toml \
    --db runs.sqlite --workers 2[/bold]
    """
    require_extra()
    from bayes_dcpt.data.store import Store
    from bayes_dcpt.probe.grid import load_spec, run_grid

    grid = load_spec(spec, workdir=workdir)
    n_jobs = len(grid.jobs())
    with _Bar(quiet or json_out) as bar:
        overall = (
            bar.progress.add_task("probes done", total=n_jobs, loss="", speed="")
            if not (quiet or json_out)
            else None
        )

        def on_event(ev: dict[str, Any]) -> None:
            if "done" in ev:
                d = ev["done"]
                if overall is not None and d["kind"] == "probe":
                    bar.progress.advance(overall)
                label = d["label"]
                if label in bar.tasks:
                    bar.progress.remove_task(bar.tasks.pop(label))
                if not (quiet or json_out):
                    state = (
                        "skipped (done)"
                        if d["skipped"]
                        else f"{d['tokens_per_second']:,.0f} tok/s, {d['wall_seconds']:.1f} s"
                    )
                    bar.progress.console.print(f"{label}: {state}")
            else:
                bar.update(ev)

        res = run_grid(
            grid, db, executor=executor, workers=workers, threads=threads, address=address, on_event=on_event
        )
    if csv is not None:
        with Store(db) as st:
            st.export(csv)
    if json_out:
        emit_json(res)
    else:
        ran = [j for j in res["jobs"] if j["kind"] == "probe" and not j["skipped"]]
        console.print(
            f"grid done: {len(ran)} probes run, {n_jobs - len(ran)} already stored; "
            f"{res['wall_seconds']:.1f} s wall; results in {db}" + (f" and {csv}" if csv else ""),
            soft_wrap=True,
        )
