"""The CPT measurement schema: load, normalise, validate and summarise a table of probe results.

One row per evaluated checkpoint of one probe run::

    domain        str    the domain corpus of the run (code, law, ...)
    n_params      float  model size N in raw parameters (> 0)
    tokens        float  CPT tokens D seen so far (>= 0); tokens == 0 is the base model before CPT
    r_domain      float  share of domain data in the CPT mixture, in [0, 1] (general share = 1 - r_domain);
                         may be empty on tokens == 0 rows (the base model has no mixture)
    loss_general  float  validation loss on the general held-out set (nats per token or per byte, > 0)
    loss_domain   float  validation loss on the domain held-out set (> 0); either loss may be empty, not both
    run_id        str    optional; derived from (domain, n_params, r_domain[, seed]) when absent; one run is one
                         mixture of one model (its CPT rows may not change domain, n_params or r_domain)
    seed, step, lr       optional; any other column is kept and ignored

Quickstart::

    >>> from bayes_dcpt import data
    >>> df = data.load("probes.csv")          # raises DataValidationError naming column and rows
    >>> data.summarize(df)["domains"]

Rows are numbered from 1 in error messages: row 1 is the first data row. For a CSV or TSV file whose rows are one
line each, the message also gives the line of the file (row 1 is line 2, after the header).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_dcpt.data.runs import duplicate_problems, run_problems
from bayes_dcpt.data.warmup import after_burn_in, in_warmup
from bayes_dcpt.errors import DataValidationError, Problem, format_rows, row_numbers

__all__ = [
    "ALIASES",
    "BASE_RUN_PREFIX",
    "INPUT_COLUMNS",
    "LOSS_COLUMNS",
    "REQUIRED_COLUMNS",
    "TARGETS",
    "after_burn_in",
    "base_losses",
    "base_run_id",
    "data_hash",
    "data_row",
    "fit_rows",
    "in_warmup",
    "load",
    "normalise_columns",
    "ragged_lines",
    "read_table",
    "summarize",
    "targets_of",
    "to_long",
    "validate",
]

REQUIRED_COLUMNS = ("domain", "n_params", "tokens", "r_domain")
INPUT_COLUMNS = REQUIRED_COLUMNS
LOSS_COLUMNS = ("loss_general", "loss_domain")
TARGETS = ("general", "domain")
OPTIONAL_COLUMNS = ("run_id", "seed", "step", "lr")

#: Alternative spellings accepted for each canonical column (matched case-insensitively). An alias is
#: only used when the canonical name is absent and exactly one alias is present.
ALIASES: dict[str, tuple[str, ...]] = {
    "domain": ("domain_name", "dataset", "corpus"),
    "n_params": ("n", "params", "num_params", "n_parameters", "parameters", "model_size", "n_params_nonembed"),
    "tokens": ("d", "cpt_tokens", "tokens_seen", "n_tokens", "num_tokens", "train_tokens"),
    "r_domain": ("r", "r_d", "domain_ratio", "ratio", "mix_ratio", "domain_share", "domain_prop"),
    "loss_general": ("general_loss", "loss_g", "l_g", "val_loss_general", "gen_loss"),
    "loss_domain": ("domain_loss", "loss_d", "l_d", "val_loss_domain", "dom_loss"),
    "run_id": ("run", "run_name", "run_key"),
}

_NUMERIC = ("n_params", "tokens", "r_domain", "loss_general", "loss_domain")
_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


# --------------------------------------------------------------------------------------------- reading
#: How a diverged evaluation logs its loss: text that reads as NaN. An empty cell means "not measured"; this text is an
#: error in the schema's numeric columns (pandas would otherwise read both as missing).
_NAN_TEXT = frozenset({"nan", "-nan", "+nan", "1.#qnan", "-1.#qnan", "1.#ind", "-1.#ind"})


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file into a raw DataFrame, turning every reader failure into our error."""
    return _read_table(path)[0]


def _read_table(path: str | Path) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """The raw frame and, per column position, the cells whose text is a literal NaN (CSV/TSV only)."""
    p = Path(path)
    src = str(path)
    if not p.exists():
        raise DataValidationError([Problem("file", f"no such file: {src}")], source=src)
    if p.is_dir():
        raise DataValidationError([Problem("file", f"{src} is a directory, not a data file")], source=src)
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        raise DataValidationError(
            [Problem("file", f"unsupported file type '{p.suffix}' (use .csv, .tsv or .parquet)")], source=src
        )
    try:
        raw = p.read_bytes()
    except OSError as exc:  # permission, I/O error
        raise DataValidationError([Problem("file", f"cannot read file: {exc.strerror or exc}")], source=src) from exc
    if not raw.strip():
        raise DataValidationError([Problem("file", "the file is empty")], source=src)
    if kind == "parquet":
        # A Parquet float column stores NaN and "missing" alike, so a literal NaN loss cannot be told from a loss
        # that was not measured: both are read as missing, as the schema allows for one of the two losses.
        try:
            return pd.read_parquet(io.BytesIO(raw)), {}
        except Exception as exc:  # pyarrow errors on corrupt or truncated files
            raise DataValidationError(
                [Problem("file", f"unreadable {kind} file: {_first_line(exc)}")], source=src
            ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            [Problem("file", f"not a UTF-8 text file (byte {exc.start}); is it corrupt or binary?")], source=src
        ) from exc
    sep = "\t" if kind == "tsv" else ","
    unterminated = not text.endswith(("\n", "\r"))
    ragged = ragged_lines(text, sep, unterminated)
    if ragged:
        raise DataValidationError(ragged, source=src)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True)
        nan_text = _nan_text_cells(text, sep, df)
    except Exception as exc:  # pandas parser errors on corrupt or truncated files
        hint = "; the file does not end with a newline: is it truncated?" if unterminated else ""
        raise DataValidationError(
            [Problem("file", f"unreadable {kind} file: {_first_line(exc)}{hint}")], source=src
        ) from exc
    if len(text.rstrip("\r\n").splitlines()) == len(df) + 1:  # one line per row: errors can name the line
        df.attrs["first_line"] = 2
    return df, nan_text


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def ragged_lines(text: str, sep: str, unterminated: bool) -> list[Problem]:
    """Data lines whose number of fields differs from the header's (a cut-off file, an unquoted separator).

    Fields are counted by the csv module, as the reader does (quoted separators and line breaks stay in their field);
    blank lines are skipped, as the reader skips them. Lines are those of the file, the header being line 1.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, skipinitialspace=True)
    header: int | None = None
    bad: list[tuple[int, int, int]] = []  # (file line where the record starts, data row, fields)
    last: tuple[int, int, int] | None = None
    row, line = 0, 0
    try:
        for rec in reader:
            start, line = line + 1, reader.line_num
            if len(rec) <= 1 and not "".join(rec).strip():
                continue  # blank line
            if header is None:
                header = len(rec)
                continue
            row += 1
            last = (start, row, len(rec))
            if len(rec) != header:
                bad.append(last)
    except csv.Error:  # e.g. a NUL byte or an overlong field: leave the verdict to the pandas reader
        return []
    if not bad:
        return []
    problems = []
    cut = bad[-1] if unterminated and bad[-1] == last else None
    if cut is not None:
        bad = bad[:-1]
        problems.append(
            Problem(
                "file",
                f"line {cut[0]} (data row {cut[1]}) has {cut[2]} field{'s' if cut[2] != 1 else ''} but the header "
                f"has {header}, and the file ends inside it without a newline: the file looks truncated",
            )
        )
    if bad:
        if len(bad) == 1:
            what = f"line {bad[0][0]} (data row {bad[0][1]}) has {bad[0][2]} fields but the header has {header}"
        else:
            lines = format_rows([b[0] for b in bad]).replace("row", "line", 1)
            counts = ", ".join(f"line {b[0]}: {b[2]}" for b in bad[:4]) + (", ..." if len(bad) > 4 else "")
            what = f"{lines} do not have the header's {header} fields ({counts})"
        problems.append(Problem("file", f"{what}; is the file cut short, or a value with a separator not quoted?"))
    return problems


def _nan_text_cells(text: str, sep: str, df: pd.DataFrame) -> dict[int, np.ndarray]:
    """Per column position, the rows whose cell is literal NaN text (read as missing, like an empty cell)."""
    if not df.isna().to_numpy().any():
        return {}
    cells = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, dtype=str, na_filter=False)
    out: dict[int, np.ndarray] = {}
    if cells.shape != df.shape:
        return out
    for i in range(cells.shape[1]):
        mask = cells.iloc[:, i].str.strip().str.lower().isin(_NAN_TEXT).to_numpy()
        if mask.any():
            out[i] = mask
    return out


def normalise_columns(df: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Column names mapped to the schema (aliases, case, blanks) and the problems found doing so."""
    problems: list[Problem] = []
    cols = [str(c) for c in df.columns]
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    for c in dupes:
        problems.append(Problem(c, "the column appears more than once in the header"))
    lower = {c.lower().strip(): c for c in cols}
    rename: dict[str, str] = {}
    for canon, aliases in ALIASES.items():
        if canon in lower:
            if lower[canon] != canon:
                rename[lower[canon]] = canon
            continue
        present = [lower[a] for a in aliases if a in lower]
        if len(present) == 1:
            rename[present[0]] = canon
        elif len(present) > 1:
            problems.append(
                Problem(canon, f"ambiguous: several columns could be '{canon}' ({', '.join(present)}); rename one")
            )
    out = df.reset_index(drop=True)
    out.columns = cols
    return out.rename(columns=rename), problems


def _as_float(col: pd.Series, name: str, problems: list[Problem], unreadable: pd.Series) -> pd.Series:
    """Coerce to float64; entries that are present but not numbers are reported and marked in ``unreadable``."""
    if pd.api.types.is_bool_dtype(col):
        problems.append(Problem(name, "must be numeric, got true/false values", row_numbers(np.ones(len(col)))))
        unreadable[:] = True
        return pd.Series(np.nan, index=col.index, dtype="float64")
    num = pd.to_numeric(col, errors="coerce")
    if not pd.api.types.is_numeric_dtype(col):
        text = col.astype(str).str.strip()
        bad = num.isna() & col.notna() & (text != "")
        nan_text = bad & text.str.lower().isin(_NAN_TEXT)
        if nan_text.any():
            what = "the loss" if name in LOSS_COLUMNS else "the value"
            problems.append(
                Problem(
                    name,
                    f"NaN is not a measurement (e.g. {text[nan_text].iloc[0][:30]!r}); leave the "
                    f"cell empty if {what} was not measured",
                    row_numbers(nan_text),
                )
            )
            unreadable[nan_text.to_numpy()] = True
            bad &= ~nan_text
        if bad.any():
            sample = col[bad].astype(str).iloc[0][:30]
            problems.append(Problem(name, f"not a number (e.g. {sample!r})", row_numbers(bad)))
            unreadable[bad.to_numpy()] = True
    return num.astype("float64")


def validate(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate and normalise a raw table; return the typed frame or raise :class:`DataValidationError`.

    Every problem found is reported at once (one :class:`~bayes_dcpt.errors.Problem` per column and
    kind), naming the column and the 1-based rows.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError([Problem("data", f"expected a table, got {type(frame).__name__}")], source)
    df, problems = normalise_columns(frame)
    if problems and any("more than once" in p.message for p in problems):
        raise DataValidationError(problems, source)
    if len(df) == 0:
        raise DataValidationError([*problems, Problem("data", "the table has no rows")], source)

    misspelt = _misspelt_columns(df, problems)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns and c not in misspelt]
    for c in missing:
        aka = ", ".join(ALIASES.get(c, ()))
        problems.append(Problem(c, f"required column is missing (accepted names: {c}, {aka})"))
    if not any(c in df.columns or c in misspelt for c in LOSS_COLUMNS):
        problems.append(Problem("loss_general/loss_domain", "at least one loss column is required"))
    if problems:
        raise DataValidationError(problems, source)

    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    # domain
    dom = df["domain"]
    dom_missing = dom.isna() | (dom.astype(str).str.strip() == "")
    if dom_missing.any():
        problems.append(Problem("domain", "missing domain name", row_numbers(dom_missing)))
    out["domain"] = dom.astype(str).str.strip().where(~dom_missing, "")
    unreadable = {c: pd.Series(False, index=out.index) for c in _NUMERIC}  # reported once, as not a number
    for c in _NUMERIC:
        if c in df.columns:
            out[c] = _as_float(df[c].reset_index(drop=True), c, problems, unreadable[c])
        else:
            out[c] = np.nan

    def check(name: str, bad: pd.Series, msg: str) -> None:
        bad = bad & ~unreadable[name] if name in unreadable else bad
        if bad.any():
            problems.append(Problem(name, msg, row_numbers(bad)))

    for c in _NUMERIC:
        check(
            c,
            np.isinf(out[c]),
            "infinite value" + ("; leave the cell empty if the loss was not measured" if c in LOSS_COLUMNS else ""),
        )
    check("n_params", out["n_params"].isna(), "missing value (NaN)")
    check("n_params", out["n_params"] <= 0, "model size must be > 0")
    check("tokens", out["tokens"].isna(), "missing value (NaN)")
    check("tokens", out["tokens"] < 0, "token count must be >= 0")
    base = out["tokens"] == 0
    check("r_domain", out["r_domain"].isna() & ~base, "missing value (NaN); only tokens == 0 rows may omit it")
    check("r_domain", (out["r_domain"] < 0) | (out["r_domain"] > 1), "must be in [0, 1]")
    for c in LOSS_COLUMNS:
        check(c, out[c] <= 0, "loss must be > 0")
    both_missing = out["loss_general"].isna() & out["loss_domain"].isna()
    check("loss_general/loss_domain", both_missing, "both losses are missing (NaN); at least one is needed")

    # run ids
    if "run_id" in df.columns:
        rid = df["run_id"].reset_index(drop=True)
        rid_missing = rid.isna() | (rid.astype(str).str.strip() == "")
        derived = _derive_run_ids(out, df)
        out["run_id"] = pd.Series(
            np.where(rid_missing.to_numpy(), derived.to_numpy(), rid.astype(str).str.strip().to_numpy()), dtype=object
        )
    else:
        out["run_id"] = _derive_run_ids(out, df)
    # base-model rows belong to the base model, not to a run of one ratio
    if base.any():
        out.loc[base, "run_id"] = [
            base_run_id(d, n) for d, n in zip(out.loc[base, "domain"], out.loc[base, "n_params"], strict=True)
        ]

    if not problems:
        problems += duplicate_problems(out, LOSS_COLUMNS) + run_problems(out)
    if problems:
        raise DataValidationError(problems, source)

    # keep everything else (seed, step, lr, user columns)
    used = set(out.columns)
    for c in df.columns:
        if c not in used:
            out[c] = df[c].reset_index(drop=True).to_numpy()
    repeat = out.duplicated(subset=["run_id", "tokens", "loss_general", "loss_domain"], keep="first").to_numpy()
    out = out[~repeat].reset_index(drop=True)
    out.attrs["duplicates_dropped"] = int(repeat.sum())  # exact repeats (the same run, tokens and losses)
    out.attrs["dropped_rows"] = row_numbers(repeat)  # so that a later error can name a row of the file (data_row)
    out.attrs["bayes_dcpt_validated"] = True
    out.attrs["absent_columns"] = [c for c in LOSS_COLUMNS if c not in df.columns]
    if source:
        out.attrs["source"] = source
    return out


def _misspelt_columns(df: pd.DataFrame, problems: list[Problem]) -> set[str]:
    """Schema columns that are absent while a column not in the schema is a near spelling of them (``loss_genral``).

    Each such column is a problem ("did you mean"); other columns outside the schema (``schedule``, ``lr``, a user's
    own) are kept. Returns the canonical names so suggested, whose "missing column" problem the suggestion replaces.
    """
    canon = (*REQUIRED_COLUMNS, *LOSS_COLUMNS, *OPTIONAL_COLUMNS)
    names = {name: c for c in canon for name in (c, *ALIASES.get(c, ()))}
    suggested: set[str] = set()
    for col in df.columns:
        key = str(col).lower().strip()
        if col in canon or key in names:
            continue
        hit = difflib.get_close_matches(key, list(names), n=1, cutoff=0.8)
        if hit and names[hit[0]] not in df.columns:
            problems.append(Problem(str(col), f"not in the schema; did you mean '{hit[0]}'?"))
            suggested.add(names[hit[0]])
    return suggested


def _g(x: float) -> str:
    return f"{x:.6g}" if isinstance(x, float) and math.isfinite(x) else str(x)


#: How the run id of base-model rows begins (:func:`base_run_id`): a base model's rows are not a CPT run.
BASE_RUN_PREFIX = "base|"


def base_run_id(domain: str, n_params: float) -> str:
    """The run id of the base-model rows (tokens == 0) of one (domain, N): ``base|<domain>|N=<n_params>``."""
    return f"{BASE_RUN_PREFIX}{domain}|N={_g(float(n_params))}"


def _derive_run_ids(out: pd.DataFrame, raw: pd.DataFrame) -> pd.Series:
    seeds = raw["seed"].reset_index(drop=True).astype(str).tolist() if "seed" in raw.columns else None
    ids = [
        f"{d}|N={_g(n)}|r={_g(r)}" + (f"|seed={seeds[i]}" if seeds is not None else "")
        for i, (d, n, r) in enumerate(zip(out["domain"], out["n_params"], out["r_domain"], strict=True))
    ]
    return pd.Series(ids, index=out.index, dtype=object)


def load(source: str | Path | pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """Load CPT measurements from a CSV/TSV/Parquet path, a DataFrame or a dict of columns, and validate.

    Parameters
    ----------
    source
        Path to a ``.csv``, ``.tsv`` or ``.parquet`` file, or an in-memory table.

    Returns
    -------
    pandas.DataFrame
        The typed, validated frame with the canonical columns first (see the module docstring).

    Raises
    ------
    DataValidationError
        For an unreadable file or any invalid value; the message names the column and the rows.
    """
    if isinstance(source, pd.DataFrame):
        if source.attrs.get("bayes_dcpt_validated"):
            return source
        return validate(source, source=None)
    if isinstance(source, Mapping):
        try:
            frame = pd.DataFrame(dict(source))
        except Exception as exc:
            raise DataValidationError([Problem("data", f"cannot make a table from the mapping: {exc}")]) from exc
        return validate(frame)
    if isinstance(source, (str, Path)):
        raw, nan_text = _read_table(source)
        raw = _keep_nan_text(raw, nan_text)
        try:
            out = validate(raw, source=str(source))
            out.attrs["first_line"] = raw.attrs.get("first_line")
            return out
        except DataValidationError as exc:
            if raw.attrs.get("first_line") is None:
                raise
            raise exc.at_first_line(raw.attrs["first_line"]) from None
    raise DataValidationError([Problem("data", f"cannot load data from a {type(source).__name__}")])


def data_row(df: pd.DataFrame, position: int) -> str:
    """Where the validated frame's row at 0-based ``position`` sits in its file: ``"row 7 (line 8 of the file)"``.

    Exact repeats dropped by :func:`validate` are counted back in, so the number is the file's, not the frame's.
    """
    dropped = np.asarray(df.attrs.get("dropped_rows", ()), dtype=int)
    row = position + 1
    for d in np.sort(dropped):  # every dropped row at or before this one shifts it down by one
        if d <= row:
            row += 1
    first = df.attrs.get("first_line")
    return f"row {row}" + (f" (line {row + first - 1} of the file)" if first else "")


def _keep_nan_text(raw: pd.DataFrame, nan_text: dict[int, np.ndarray]) -> pd.DataFrame:
    """Put literal NaN text back into the schema's numeric columns, where :func:`validate` reports it.

    The CSV reader reads ``NaN`` as missing, like an empty cell; but an empty loss cell means "not measured" while a
    ``NaN`` one is a diverged evaluation, which must not pass as a run that measured one loss only.
    """
    if not nan_text:
        return raw
    names = normalise_columns(raw)[0].columns  # same positions as raw, schema names
    out = raw.copy()
    for i, mask in nan_text.items():
        if names[i] in _NUMERIC:
            col = out.iloc[:, i].astype(object)
            col[mask] = "NaN"
            out.isetitem(i, col)
    return out


# ------------------------------------------------------------------------------------------ derived views
def fit_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that the laws are fitted on: CPT checkpoints with tokens > 0."""
    return df[df["tokens"] > 0].reset_index(drop=True)


def to_long(df: pd.DataFrame, target: str = "both") -> pd.DataFrame:
    """Stack the two losses into one observation per (row, target) with the law's own ratio ``r``.

    The general loss is modelled against the general share ``r = 1 - r_domain``, the domain loss against
    ``r = r_domain``, as in the D-CPT paper. Base rows (tokens == 0) and missing losses are dropped.
    """
    targets = targets_of(target)
    rows = fit_rows(df)
    parts = []
    for t in targets:
        col = f"loss_{t}"
        sub = rows[rows[col].notna()]
        r = sub["r_domain"] if t == "domain" else 1.0 - sub["r_domain"]
        parts.append(
            pd.DataFrame(
                {
                    "target": t,
                    "domain": sub["domain"].to_numpy(),
                    "run_id": sub["run_id"].to_numpy(),
                    "n_params": sub["n_params"].to_numpy(),
                    "tokens": sub["tokens"].to_numpy(),
                    "r_domain": sub["r_domain"].to_numpy(),
                    "r": r.to_numpy(),
                    "loss": sub[col].to_numpy(),
                    "row": sub.index.to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def targets_of(target: str) -> tuple[str, ...]:
    """The losses a ``target`` option names: ``"both"`` -> (general, domain), else the one named."""
    if target == "both":
        return TARGETS
    if target in TARGETS:
        return (target,)
    raise DataValidationError([Problem("target", f"unknown target {target!r}; use general, domain or both")])


def base_losses(df: pd.DataFrame) -> pd.DataFrame:
    """Reference losses L^0 of the base models (tokens == 0 rows), one row per (domain, n_params)."""
    base = df[df["tokens"] == 0]
    if base.empty:
        return pd.DataFrame(columns=["domain", "n_params", "loss_general", "loss_domain"])
    return base.groupby(["domain", "n_params"], as_index=False)[list(LOSS_COLUMNS)].mean()


def summarize(df: pd.DataFrame) -> dict[str, Any]:
    """A one-screen summary: domains, sizes, ratios, token range, runs and rows per run."""
    cpt = fit_rows(df)
    per_run = cpt.groupby("run_id").size()
    return {
        "rows": len(df),
        "base_rows": int((df["tokens"] == 0).sum()),
        "domains": sorted(df["domain"].unique().tolist()),
        "n_params": sorted(float(x) for x in df["n_params"].unique()),
        "r_domain": sorted(float(x) for x in cpt["r_domain"].dropna().unique()),
        "tokens_min": float(cpt["tokens"].min()) if len(cpt) else float("nan"),
        "tokens_max": float(cpt["tokens"].max()) if len(cpt) else float("nan"),
        "runs": int(per_run.size),
        "rows_per_run_min": int(per_run.min()) if per_run.size else 0,
        "rows_per_run_max": int(per_run.max()) if per_run.size else 0,
        "loss_general_rows": int(df["loss_general"].notna().sum()),
        "loss_domain_rows": int(df["loss_domain"].notna().sum()),
        # loss columns the file did not have at all (allowed: a run may measure one loss); not just empty cells
        "loss_columns_absent": list(df.attrs.get("absent_columns", [])),
    }


def data_hash(df: pd.DataFrame) -> str:
    """A stable hash of the canonical columns (recorded in every saved fit's model card)."""
    cols = [*REQUIRED_COLUMNS, *LOSS_COLUMNS, "run_id"]
    canon = df[cols].sort_values(["run_id", "tokens"]).reset_index(drop=True)
    h = hashlib.sha256(pd.util.hash_pandas_object(canon, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
