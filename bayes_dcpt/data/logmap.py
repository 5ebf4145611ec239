"""The mapping file of an import: which logged run is which probe, and which logged keys hold its losses.

A training log knows steps and metric names, not the (domain, N, r) of a CPT probe; a small TOML file says
it once per run. Layout (every field of ``[defaults]`` and of a domain table may also be set per run; the
most specific value wins: run, then its domain, then ``[defaults]``, then the log format's default)::

    [defaults]
    n_params = 101_952          # N: non-embedding parameters of the model (the N of the laws)
    tokens_per_step = 2048      # global batch x sequence length; used when the log has no token count
    seed = 42

    [domains.python]            # every domain the runs may name: a misspelt domain is an error
    domain_key = "eval_domain_loss"

    [runs.python-r25]           # one table per run
    domain = "python"
    r_domain = 0.25
    source = "python-r25"       # where under the imported PATH its log is (a glob); default: the table name

Keys of the log (defaults per format in :data:`FORMAT_KEYS`): ``general_key`` and ``domain_key`` (the two
validation losses), ``step_key`` (the optimizer step; TensorBoard's own step when absent), ``tokens_key``
(a logged token count, e.g. the Trainer's ``num_input_tokens_seen``) and ``lr_key`` (the learning rate).
``run_id`` defaults to ``<domain>|N=<n>|r=<r>|seed=<seed>``, the id the probe runner and the Trainer
callback give the same run. Every problem is one :class:`LogImportError` line naming the file, the run and
the field.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayes_dcpt.data.schema import BASE_RUN_PREFIX
from bayes_dcpt.errors import BayesDCPTError

__all__ = ["FORMATS", "FORMAT_KEYS", "LogImportError", "RunMap", "RunSpec", "load_mapping", "run_label_id"]

#: The log formats ``data import --from`` reads (the ``table`` form is the schema's CSV/TSV/Parquet).
FORMATS = ("trainer-state", "tensorboard", "wandb-csv")

#: The keys a Hugging Face Trainer logs, as each format spells them (``eval_dataset={"general": ...,
#: "domain": ...}``; TensorBoard and W&B rewrite ``eval_x`` to ``eval/x`` and other keys to ``train/x``).
FORMAT_KEYS: dict[str, dict[str, str | None]] = {
    "trainer-state": {"general_key": "eval_general_loss", "domain_key": "eval_domain_loss", "step_key": "step",
                      "tokens_key": "num_input_tokens_seen", "lr_key": "learning_rate"},
    "tensorboard": {"general_key": "eval/general_loss", "domain_key": "eval/domain_loss", "step_key": None,
                    "tokens_key": "train/num_input_tokens_seen", "lr_key": "train/learning_rate"},
    "wandb-csv": {"general_key": "eval/general_loss", "domain_key": "eval/domain_loss",
                  "step_key": "train/global_step", "tokens_key": "train/num_input_tokens_seen",
                  "lr_key": "train/learning_rate"},
}
KEY_FIELDS = ("general_key", "domain_key", "step_key", "tokens_key", "lr_key")
VALUE_FIELDS = ("n_params", "tokens_per_step", "seed", "r_domain")
RUN_ONLY = ("domain", "source", "run_id")
RUN_FIELDS = (*RUN_ONLY, *VALUE_FIELDS, *KEY_FIELDS)
SHARED_FIELDS = (*VALUE_FIELDS, *KEY_FIELDS)


class LogImportError(BayesDCPTError, ValueError):
    """A mapping file or a training log that cannot be imported; one line per problem (file, run, key)."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))

    def lines(self) -> list[str]:  # noqa: D102
        return list(self.problems)


@dataclass(frozen=True)
class RunSpec:
    """One run of the mapping with every field resolved (run, domain, defaults, format defaults)."""

    label: str
    run_id: str
    domain: str
    r_domain: float
    n_params: float
    source: str
    seed: Any = None
    tokens_per_step: float | None = None
    general_key: str = ""
    domain_key: str = ""
    step_key: str | None = None
    tokens_key: str | None = None
    lr_key: str | None = None
    explicit: frozenset[str] = frozenset()

    def where(self, path: str | Path) -> str:
        """The start of a message about this run in ``path``."""
        return f"{path}: run {self.label!r}"


@dataclass(frozen=True)
class RunMap:
    """The parsed mapping: its path, the format it was resolved for, its domains and runs (in file order)."""

    path: Path
    fmt: str
    domains: tuple[str, ...]
    runs: tuple[RunSpec, ...]


def _g(x: float) -> str:
    return f"{float(x):.6g}"


def run_label_id(domain: str, n_params: float, r_domain: float, seed: Any = None) -> str:
    """The run id of a mapped run: the probe runner's ``<domain>|N=<n>|r=<r>|seed=<seed>`` (no seed without one)."""
    rid = f"{domain}|N={_g(n_params)}|r={_g(r_domain)}"
    return rid if seed is None else f"{rid}|seed={seed}"


def _number(src: str, field: str, v: Any, *, low: float, high: float = math.inf, strict_low: bool) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    ok = ok and (float(v) > low if strict_low else float(v) >= low) and float(v) <= high
    if not ok:
        rng = f"> {low:g}" if strict_low else f"in [{low:g}, {high:g}]"
        raise LogImportError(f"{src}: field '{field}' must be a number {rng}, got {v!r}")
    return float(v)


def _table(src: str, where: str, v: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise LogImportError(f"{src}: {where} must be a table, got {type(v).__name__}")
    unknown = sorted(set(v) - set(allowed))
    if unknown:
        raise LogImportError(f"{src}: {where}: unknown field '{unknown[0]}' (known: {', '.join(allowed)})")
    return v


def _resolve(path: Path, fmt: str, label: str, run: dict[str, Any], domains: dict[str, dict[str, Any]],
             defaults: dict[str, Any]) -> RunSpec:
    src = f"{path}: run {label!r}"
    dom = run.get("domain")
    if not isinstance(dom, str) or not dom.strip():
        raise LogImportError(f"{src}: field 'domain' is missing (the domain corpus of this run)")
    if dom not in domains:
        known = ", ".join(domains) or "none"
        raise LogImportError(f"{src}: unknown domain {dom!r} (domains in [domains]: {known})")
    merged: dict[str, Any] = {**FORMAT_KEYS[fmt], **defaults, **domains[dom], **run}
    explicit = frozenset(k for k in KEY_FIELDS if k in defaults or k in domains[dom] or k in run)
    for need in ("r_domain", "n_params"):
        if need not in merged:
            raise LogImportError(f"{src}: field '{need}' is missing (set it in the run, its domain or [defaults])")
    r = _number(src, "r_domain", merged["r_domain"], low=0.0, high=1.0, strict_low=False)
    n = _number(src, "n_params", merged["n_params"], low=0.0, strict_low=True)
    tps = merged.get("tokens_per_step")
    if tps is not None:
        tps = _number(src, "tokens_per_step", tps, low=0.0, strict_low=True)
    for k in KEY_FIELDS:
        v = merged.get(k)
        if v is not None and (not isinstance(v, str) or (not v.strip() and k in ("general_key", "domain_key"))):
            raise LogImportError(f"{src}: field '{k}' must be a logged key (a non-empty string), got {v!r}")
    seed = merged.get("seed")
    rid = run.get("run_id") or run_label_id(dom, n, r, seed)
    if not isinstance(rid, str) or rid.startswith(BASE_RUN_PREFIX):
        raise LogImportError(f"{src}: field 'run_id' must be a string not starting with {BASE_RUN_PREFIX!r}, "
                             f"got {rid!r}")
    source = run.get("source", label)
    if not isinstance(source, str) or not source:
        raise LogImportError(f"{src}: field 'source' must be a path or glob under the imported PATH")
    return RunSpec(label, rid, dom, r, n, source, seed, tps, merged["general_key"], merged["domain_key"],
                   merged.get("step_key") or None, merged.get("tokens_key") or None, merged.get("lr_key") or None,
                   explicit)


def load_mapping(path: str | Path, fmt: str) -> RunMap:
    """Read and check a mapping file for the log format ``fmt`` (one of :data:`FORMATS`).

    Raises
    ------
    LogImportError
        For a missing or unreadable file, unknown fields, a run without domain, ratio or N, a domain not in
        ``[domains]``, or two runs with one run id; the message names the file, the run and the field.
    """
    p = Path(path)
    if fmt not in FORMATS:
        raise LogImportError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not p.is_file():
        raise LogImportError(f"{p}: no such mapping file")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LogImportError(f"{p}: not a valid TOML file ({exc})") from exc
    _table(str(p), "the file", doc, ("defaults", "domains", "runs"))
    defaults = _table(str(p), "[defaults]", doc.get("defaults", {}), SHARED_FIELDS)
    domains_raw = _table(str(p), "[domains]", doc.get("domains", {}), tuple(doc.get("domains", {})))
    if not domains_raw:
        raise LogImportError(f"{p}: no [domains.<name>] table; name every domain the runs may have")
    domains = {d: _table(str(p), f"[domains.{d}]", v, SHARED_FIELDS) for d, v in domains_raw.items()}
    runs_raw = _table(str(p), "[runs]", doc.get("runs", {}), tuple(doc.get("runs", {})))
    if not runs_raw:
        raise LogImportError(f"{p}: no [runs.<name>] table; give one per run to import")
    runs = [_resolve(p, fmt, label, _table(str(p), f"[runs.{label}]", v, RUN_FIELDS), domains, defaults)
            for label, v in runs_raw.items()]
    seen: dict[str, str] = {}
    for r in runs:
        if r.run_id in seen:
            raise LogImportError(f"{p}: runs {seen[r.run_id]!r} and {r.label!r} have the same run id {r.run_id!r}; "
                                 "give them different seeds or run_id fields")
        seen[r.run_id] = r.label
    return RunMap(p, fmt, tuple(domains), tuple(runs))
