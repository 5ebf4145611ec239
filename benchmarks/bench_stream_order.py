"""The probes' data order: what text a probe's general stream trains on, token by token, and where its loss drops.

The long-CPT grid's late checkpoints jump (BENCHMARKS.md: the token split's coverage is 0.54-0.73 and every law
misses them). Its general corpus is written in an order: the language reference (``pydoc_data.topics``) first,
then the standard library's docstrings. A probe's training stream (``bayes_dcpt.probe.corpora.TokenStream``)
reads the corpus in that order, shuffling within a buffer. This script measures, without training:

1. the share of language-reference text in each 131,072-token stretch of the general stream of a probe (its first
   2^21 tokens, the probes' seed), with the buffer the committed grids were made with (66,048 tokens) and with
   today's default (2^23 tokens);
2. from the file-ordered ``long_cpt.csv`` (as committed until ``_common.FILE_ORDERED_COMMITS``, read from git
   history; the packaged grid is made with shuffled streams since): where each probe run's general loss drops most
   between two checkpoints,
   in tokens of general text trained (``tokens x (1 - r)``).

If the drops sit where the stream passes from the reference to the docstrings, the jumps are the probes' data
order, not CPT: a law cannot be asked to foresee them, and probes made with a shuffled stream do not have them.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_stream_order.py`` (about a minute, no training;
``benchmarks/results/stream_order.csv``). The corpora are gathered from this Python installation, as the grid's were
(their text, and so the positions, depend on the Python version: the grid used 3.12.1).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import file_ordered_grid, machine, md_table

from bayes_dcpt.probe.configs import LEGACY_SHUFFLE_TOKENS, SHUFFLE_TOKENS
from bayes_dcpt.probe.corpora import Corpus, TokenStream, _pieces, byte_encoder, gather_stdlib
from bayes_dcpt.probe.loop import stream_seed

OUT = Path(__file__).parent / "results"
SEQ = 128
STRETCH = 131072
TOKENS = 2**21
PIECE_BYTES = 4096  # the Corpus default


def _reference_pieces(path: Path) -> set[bytes]:
    """Hashes of the pieces of the language-reference documents (``pydoc_data.topics:*``)."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        if doc["source"].startswith("pydoc_data"):
            out |= {hashlib.blake2b(p, digest_size=16).digest() for p in _pieces(doc["text"], PIECE_BYTES)}
    return out


def _tagged_corpus(corpus_dir: Path) -> Corpus:
    """The general corpus as the grid read it, its language-reference bytes tagged as tokens 256..511."""
    path = corpus_dir / "general.jsonl"
    ref = _reference_pieces(path)

    def tagged(piece: bytes) -> np.ndarray:
        toks = byte_encoder(piece)
        return toks + 256 if hashlib.blake2b(piece, digest_size=16).digest() in ref else toks

    return Corpus(str(path), "general", val_fraction=0.05, val_tokens=32768, encoder=tagged, eos=0)


def stream_shares(corpus_dir: Path, buffer_tokens: int, seed: int = 0) -> np.ndarray:
    """Share of language-reference tokens in each :data:`STRETCH` of the general stream's first :data:`TOKENS`."""
    corpus = _tagged_corpus(corpus_dir)
    stream = TokenStream(corpus, SEQ, stream_seed(seed, 1), buffer=max(1, buffer_tokens // (SEQ + 1)))
    n = TOKENS // SEQ
    windows = stream.take(n)[:, :-1].reshape(-1)
    return (windows >= 256).reshape(-1, STRETCH).mean(axis=1)


def drops() -> pd.DataFrame:
    """Per CPT run of the long grid with 0 < r < 1: the largest one-checkpoint fall of its general loss."""
    df = file_ordered_grid("long_cpt")  # the grid these streams made (the packaged one is shuffled since)
    rows = []
    for (dom, n, r), g in df[(df["tokens"] > 0) & (df["r_domain"] > 0) & (df["r_domain"] < 1)].groupby(
            ["domain", "n_params", "r_domain"]):
        g = g.sort_values("tokens")
        d = np.diff(g["loss_general"].to_numpy())
        k = int(np.argmin(d))
        rows.append({"domain": dom, "n_params": n, "r": r, "drop": -d[k],
                     "general tokens before": g["tokens"].iloc[k] * (1 - r),
                     "general tokens after": g["tokens"].iloc[k + 1] * (1 - r)})
    return pd.DataFrame(rows)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gather_stdlib(tmp)
        docs = [json.loads(x) for x in (Path(tmp) / "general.jsonl").read_text(encoding="utf-8").splitlines()]
        sizes = np.array([len(d["text"].encode()) for d in docs])
        ref_bytes = int(sizes[[d["source"].startswith("pydoc_data") for d in docs]].sum())
        shares = {f"buffer {b:,} tokens": stream_shares(Path(tmp), b) for b in (LEGACY_SHUFFLE_TOKENS, SHUFFLE_TOKENS)}
        val_ref = float((_tagged_corpus(Path(tmp)).validation() >= 256).mean())
    table = pd.DataFrame({"stream tokens from": np.arange(len(next(iter(shares.values())))) * STRETCH, **shares})
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / "stream_order.csv", index=False)
    dr = drops()
    dr.to_csv(OUT / "stream_order_drops.csv", index=False)
    print(machine())
    print(f"general corpus: {sizes.sum():,} bytes, the language reference its first {ref_bytes:,} "
          f"({ref_bytes / sizes.sum():.0%}); the validation slice (the loss measured) is {val_ref:.0%} reference")
    print(md_table(table, floatfmt=".2f"))
    inside = ((dr["general tokens before"] <= 700_000) & (dr["general tokens after"] >= 450_000)).mean()
    print(f"\nlargest general-loss drop of each run with 0 < r < 1 ({len(dr)} runs): median between "
          f"{dr['general tokens before'].median():,.0f} and {dr['general tokens after'].median():,.0f} general "
          f"tokens; in {inside:.0%} of them the two checkpoints' interval overlaps 450k-700k general tokens (where the "
          f"old stream passes from the reference to the docstrings); median drop {dr['drop'].median():.3f} nats")
    print(md_table(dr.groupby("r")[["general tokens before", "general tokens after", "drop"]].median().reset_index(),
                   floatfmt=".3g"))


if __name__ == "__main__":
    main()
