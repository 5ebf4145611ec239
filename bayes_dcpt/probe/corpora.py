"""Corpora for probes: read local text, JSONL or Parquet as a stream of documents, hold out validation.

A *corpus* is a file or a folder (searched recursively, files in sorted order) of

* plain text (``.txt``, ``.md``, ``.rst``, ``.py``, ``.h``, ``.c``, any other suffix read as UTF-8 text):
  one document per file;
* JSON Lines (``.jsonl``, ``.jsonl.gz`` not supported): one document per line, from its ``text`` field
  (``--text-field`` to change);
* Parquet (``.parquet``): one document per row of its ``text`` column, read batch by batch.

Documents are cut into *pieces* of at most ``piece_bytes`` at line boundaries. A piece goes to the
validation side when a hash of its bytes falls below ``val_fraction`` (so identical pieces always land on
the same side and duplicates cannot leak from training into validation); the validation slice is the first
``val_tokens`` tokens of those pieces. Training streams every other piece, packed into fixed-length
sequences, shuffled through a seeded buffer, epoch after epoch; its position is one integer, so a resumed
probe continues exactly where it stopped.

:func:`gather_stdlib` writes the offline corpora of the embedded example from what every CPython
installation ships: English prose (the reference topics of ``pydoc_data`` and docstrings) as the general
corpus; Python source, C headers and codec tables as domains.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayes_dcpt.errors import BayesDCPTError

__all__ = [
    "Corpus",
    "CorpusError",
    "TokenStream",
    "gather_stdlib",
    "iter_documents",
]

TEXT_SUFFIXES_SKIP = {
    ".pyc",
    ".so",
    ".o",
    ".a",
    ".whl",
    ".zip",
    ".gz",
    ".bz2",
    ".xz",
    ".png",
    ".jpg",
    ".pt",
    ".bin",
}


class CorpusError(BayesDCPTError):
    """A corpus is missing, empty, unreadable, or overlaps another one."""


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in TEXT_SUFFIXES_SKIP
        )
        return files
    raise CorpusError(f"corpus not found: {path}")


def iter_documents(path: str | Path, text_field: str = "text") -> Iterator[str]:
    """Yield the documents of a corpus file or folder, streaming (nothing is loaded whole but a text file)."""
    root = Path(path)
    for f in _files(root):
        suffix = f.suffix.lower()
        if suffix == ".jsonl":
            with f.open("r", encoding="utf-8") as fh:
                for i, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError as exc:
                        raise CorpusError(f"{f}: line {i} is not valid JSON ({exc.msg})") from exc
                    if not isinstance(rec, dict) or text_field not in rec:
                        raise CorpusError(f"{f}: line {i} has no {text_field!r} field")
                    text = rec[text_field]
                    if not isinstance(text, str):
                        raise CorpusError(f"{f}: line {i}: field {text_field!r} is not a string")
                    if text:
                        yield text
        elif suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                pf = pq.ParquetFile(f)
            except Exception as exc:
                raise CorpusError(f"{f}: unreadable Parquet file ({exc})") from exc
            if text_field not in pf.schema_arrow.names:
                raise CorpusError(
                    f"{f}: no {text_field!r} column (columns: {', '.join(pf.schema_arrow.names)})"
                )
            for batch in pf.iter_batches(columns=[text_field], batch_size=1024):
                for text in batch.column(0).to_pylist():
                    if text:
                        yield str(text)
        else:
            try:
                text = f.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                text = f.read_bytes().decode("utf-8", errors="replace")
            except OSError as exc:
                raise CorpusError(f"{f}: cannot read ({exc.strerror or exc})") from exc
            if text:
                yield text


def _pieces(doc: str, piece_bytes: int) -> Iterator[bytes]:
    raw = doc.encode("utf-8")
    if len(raw) <= piece_bytes:
        yield raw
        return
    start = 0
    while start < len(raw):
        end = min(start + piece_bytes, len(raw))
        if end < len(raw):
            nl = raw.rfind(b"\n", start, end)
            if nl > start:
                end = nl + 1
        yield raw[start:end]
        start = end


def _bucket(piece: bytes) -> float:
    h = hashlib.blake2b(piece, digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


Encoder = Callable[[bytes], np.ndarray]


def byte_encoder(piece: bytes) -> np.ndarray:
    """Byte-level tokens: the UTF-8 bytes themselves (vocabulary 256)."""
    return np.frombuffer(piece, dtype=np.uint8).astype(np.int64)


@dataclass
class Corpus:
    """A corpus with its held-out validation slice.

    Parameters
    ----------
    path
        File or folder.
    name
        Label used in messages (``general`` or the domain name).
    val_fraction
        Share of pieces held out (by content hash) from training.
    val_tokens
        Size of the validation slice in tokens (the first held-out pieces in stream order).
    val_path
        Optional separate validation corpus; then nothing is held out of ``path`` and ``val_path``
        must not overlap it (neither the same files nor the same content).
    piece_bytes
        Documents are cut into pieces of at most this many bytes at line boundaries.
    """

    path: Path
    name: str = "corpus"
    val_fraction: float = 0.05
    val_tokens: int = 32768
    val_path: Path | None = None
    piece_bytes: int = 4096
    text_field: str = "text"
    encoder: Encoder = field(default=byte_encoder, repr=False)
    eos: int = 0

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.val_path = Path(self.val_path) if self.val_path is not None else None
        if not (0.0 < self.val_fraction < 1.0) and self.val_path is None:
            raise CorpusError(f"{self.name}: val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.val_tokens < 2:
            raise CorpusError(f"{self.name}: val_tokens must be >= 2, got {self.val_tokens}")
        self._val: np.ndarray | None = None

    # ---------------------------------------------------------------------------------- pieces
    def _iter_pieces(self, path: Path) -> Iterator[bytes]:
        for doc in iter_documents(path, self.text_field):
            yield from _pieces(doc, self.piece_bytes)

    def train_pieces(self) -> Iterator[bytes]:
        """The training pieces, in stream order."""
        for p in self._iter_pieces(self.path):
            if self.val_path is not None or _bucket(p) >= self.val_fraction:
                yield p

    def check(self) -> dict[str, int]:
        """Read the corpus once: fail early on a missing/empty corpus or an overlapping validation set.

        Returns byte counts ``{"train_bytes", "val_bytes", "train_pieces", "val_pieces"}``.
        """
        if not self.path.exists():
            raise CorpusError(f"{self.name} corpus not found: {self.path}")
        files = _files(self.path)
        if not files:
            raise CorpusError(f"{self.name} corpus {self.path} has no files")
        stats = {"train_bytes": 0, "val_bytes": 0, "train_pieces": 0, "val_pieces": 0}
        train_hashes: set[bytes] = set()
        for p in self._iter_pieces(self.path):
            if self.val_path is None and _bucket(p) < self.val_fraction:
                stats["val_pieces"] += 1
                stats["val_bytes"] += len(p)
            else:
                stats["train_pieces"] += 1
                stats["train_bytes"] += len(p)
                if self.val_path is not None:
                    train_hashes.add(hashlib.blake2b(p, digest_size=16).digest())
        if stats["train_bytes"] == 0:
            raise CorpusError(f"{self.name} corpus {self.path} is empty (no training text)")
        if self.val_path is not None:
            if not self.val_path.exists():
                raise CorpusError(f"{self.name} validation corpus not found: {self.val_path}")
            tr = {f.resolve() for f in files}
            vf = {f.resolve() for f in _files(self.val_path)}
            if tr & vf:
                shared = sorted(tr & vf)[0]
                raise CorpusError(
                    f"{self.name}: the validation set overlaps training: {shared} is in both {self.path} and "
                    f"{self.val_path}"
                )
            for p in self._iter_pieces(self.val_path):
                if hashlib.blake2b(p, digest_size=16).digest() in train_hashes:
                    line = p.decode("utf-8", "replace").strip().splitlines()[0][:60] if p.strip() else ""
                    raise CorpusError(
                        f"{self.name}: the validation set overlaps training: a {len(p)}-byte piece of "
                        f"{self.val_path} (starting {line!r}) is also in {self.path}"
                    )
                stats["val_pieces"] += 1
                stats["val_bytes"] += len(p)
        if stats["val_bytes"] == 0:
            raise CorpusError(
                f"{self.name} corpus {self.path}: no validation text held out (the corpus is too small for "
                f"val_fraction={self.val_fraction}; raise it or give a separate validation corpus)"
            )
        return stats

    def validation(self) -> np.ndarray:
        """The validation slice as tokens (documents separated by ``eos``), at most ``val_tokens`` long."""
        if self._val is None:
            src = self.val_path if self.val_path is not None else self.path
            out: list[np.ndarray] = []
            n = 0
            for p in self._iter_pieces(src):
                if self.val_path is None and _bucket(p) >= self.val_fraction:
                    continue
                toks = self.encoder(p)
                out += [toks, np.array([self.eos], dtype=np.int64)]
                n += len(toks) + 1
                if n >= self.val_tokens:
                    break
            if n < 2:
                raise CorpusError(f"{self.name}: the validation slice is empty")
            self._val = np.concatenate(out)[: self.val_tokens]
        return self._val


class TokenStream:
    """Fixed-length training sequences from a corpus: packed, shuffled in a seeded buffer, endless.

    ``buffer`` sequences are shuffled together: a buffer at least as large as the corpus reads it in a fresh
    random order every epoch; a smaller one streams the corpus in its file order, mixed only locally (the probes
    set it from :attr:`~bayes_dcpt.probe.configs.TrainSettings.shuffle_tokens`). ``position`` counts the sequences
    drawn so far; ``TokenStream(..., position=k)`` resumes exactly.
    """

    def __init__(self, corpus: Corpus, seq_len: int, seed: int, buffer: int = 512, position: int = 0):
        self.corpus = corpus
        self.width = seq_len + 1
        self.seed = int(seed)
        self.buffer = int(buffer)
        self.position = 0
        self._it = self._generate()
        if position:
            self.skip(position)

    def _windows(self) -> Iterator[np.ndarray]:
        carry = np.empty(0, dtype=np.int64)
        w = self.width
        for p in self.corpus.train_pieces():
            toks = np.concatenate(
                [carry, self.corpus.encoder(p), np.array([self.corpus.eos], dtype=np.int64)]
            )
            n = len(toks) // w
            for i in range(n):
                yield toks[i * w : (i + 1) * w]
            carry = toks[n * w :]

    def _generate(self) -> Iterator[np.ndarray]:
        epoch = 0
        while True:
            rng = np.random.default_rng([self.seed, epoch, 0x5EED])
            buf: list[np.ndarray] = []
            produced = 0
            for win in self._windows():
                buf.append(win)
                if len(buf) >= self.buffer:
                    j = int(rng.integers(len(buf)))
                    buf[j], buf[-1] = buf[-1], buf[j]
                    yield buf.pop()
                    produced += 1
            order = rng.permutation(len(buf))
            for j in order:
                yield buf[j]
                produced += 1
            if produced == 0:
                raise CorpusError(
                    f"{self.corpus.name} corpus {self.corpus.path} is shorter than one training sequence "
                    f"({self.width} tokens)"
                )
            epoch += 1

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` sequences as an ``(n, seq_len + 1)`` array."""
        out = np.empty((n, self.width), dtype=np.int64)
        for i in range(n):
            out[i] = next(self._it)
        self.position += n
        return out

    def skip(self, n: int) -> None:
        """Advance by ``n`` sequences (used on resume)."""
        for _ in range(n):
            next(self._it)
        self.position += n


# ----------------------------------------------------------------------------------- stdlib corpora
def _stable_half(name: str) -> int:
    return hashlib.blake2b(name.encode(), digest_size=4).digest()[0] & 1


def _docstrings(path: Path) -> str:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    parts = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc and len(doc) >= 80 and sum(c.isalpha() for c in doc) > 0.6 * len(doc):
                parts.append(doc.strip())
    return "\n\n".join(parts)


def gather_stdlib(out: str | Path) -> dict[str, dict[str, int | str]]:
    """Write the example corpora from this Python installation as JSONL files into ``out``.

    * ``general.jsonl``: the language reference topics of ``pydoc_data.topics`` and the docstrings of
      the standard-library modules in one (hash-chosen) half of the modules;
    * ``python.jsonl``: the source of the modules in the other half (no test suites, no codecs);
    * ``c_headers.jsonl``: the C API headers (``sysconfig`` include directory);
    * ``codec_tables.jsonl``: the character-map codecs of ``encodings`` (decoding tables).

    Splitting the modules in two keeps the general corpus (docstrings) from sharing text with the
    Python domain. Returns ``{corpus: {"bytes", "documents", "sha256"}}``; raises :class:`CorpusError` if
    a source is missing from this installation.
    """
    import pydoc_data.topics

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = sysconfig.get_paths()
    std = Path(paths["stdlib"])
    inc = Path(paths["include"])
    skip = {
        "test",
        "tests",
        "idle_test",
        "site-packages",
        "encodings",
        "lib2to3",
        "__pycache__",
        "turtledemo",
    }
    modules = sorted(p for p in std.rglob("*.py") if not (skip & set(p.relative_to(std).parts)))
    if not modules:
        raise CorpusError(f"no standard-library sources under {std}")
    headers = sorted(inc.rglob("*.h"))
    if not headers:
        raise CorpusError(f"no C headers under {inc} (install the Python development headers)")
    codecs = sorted(p for p in (std / "encodings").glob("*.py") if "decoding_table" in p.read_text("utf-8"))
    general = [
        {"text": text, "source": f"pydoc_data.topics:{k}"}
        for k, text in sorted(pydoc_data.topics.topics.items())
    ]
    python = []
    for p in modules:
        rel = str(p.relative_to(std))
        if _stable_half(rel) == 0:
            doc = _docstrings(p)
            if doc:
                general.append({"text": doc, "source": f"docstrings:{rel}"})
        else:
            python.append({"text": p.read_text("utf-8"), "source": rel})
    corpora = {
        "general": general,
        "python": python,
        "c_headers": [{"text": p.read_text("utf-8"), "source": str(p.relative_to(inc))} for p in headers],
        "codec_tables": [{"text": p.read_text("utf-8"), "source": f"encodings/{p.name}"} for p in codecs],
    }
    info: dict[str, dict[str, int | str]] = {}
    for name, docs in corpora.items():
        body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
        (out / f"{name}.jsonl").write_bytes(body)
        info[name] = {
            "documents": len(docs),
            "bytes": sum(len(d["text"].encode("utf-8")) for d in docs),
            "sha256": hashlib.sha256(body).hexdigest()[:16],
        }
    return info
