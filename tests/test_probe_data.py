"""Probe corpora and schedules: readers, validation hold-out, token streams, mixture, LR and eval points."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from bayes_dcpt.probe.corpora import Corpus, CorpusError, TokenStream, iter_documents
from bayes_dcpt.probe.loop import Mixture
from bayes_dcpt.probe.timeline import ScheduleError, eval_tokens, lr_at


def test_gather_stdlib_writes_four_disjoint_corpora(stdlib_corpora):
    names = {p.stem for p in stdlib_corpora.glob("*.jsonl")}
    assert names == {"general", "python", "c_headers", "codec_tables"}
    general = list(iter_documents(stdlib_corpora / "general.jsonl"))
    python = list(iter_documents(stdlib_corpora / "python.jsonl"))
    assert len(general) > 50 and len(python) > 50
    assert sum(map(len, general)) > 300_000
    # the general corpus is prose, the python domain is code
    assert np.mean([d.count("def ") for d in python]) > 5 * np.mean([d.count("def ") for d in general])
    srcs_g = {json.loads(x)["source"].split(":", 1)[-1] for x in (stdlib_corpora / "general.jsonl").open()}
    srcs_p = {json.loads(x)["source"] for x in (stdlib_corpora / "python.jsonl").open()}
    assert not (srcs_g & srcs_p)  # docstrings and source come from different modules


def test_readers_text_folder_jsonl_parquet(tmp_path):
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "b.txt").write_text("second file\n")
    (tmp_path / "txt" / "a.md").write_text("first file\n")
    assert list(iter_documents(tmp_path / "txt")) == ["first file\n", "second file\n"]
    j = tmp_path / "c.jsonl"
    j.write_text('{"text": "one"}\n\n{"text": "two", "x": 1}\n')
    assert list(iter_documents(j)) == ["one", "two"]
    pq = tmp_path / "d.parquet"
    pd.DataFrame({"content": ["alpha", "beta", None]}).to_parquet(pq)
    assert list(iter_documents(pq, text_field="content")) == ["alpha", "beta"]
    with pytest.raises(CorpusError, match="no 'text' column"):
        list(iter_documents(pq))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(CorpusError, match="line 2 is not valid JSON"):
        list(iter_documents(bad))
    with pytest.raises(CorpusError, match="corpus not found"):
        list(iter_documents(tmp_path / "missing"))


def test_validation_slice_never_seen_in_training(stdlib_corpora):
    c = Corpus(stdlib_corpora / "c_headers.jsonl", name="c", val_fraction=0.05, val_tokens=20000)
    stats = c.check()
    assert stats["val_bytes"] > 20000 and stats["train_bytes"] > 10 * stats["val_bytes"]
    val = bytes(c.validation().astype(np.uint8))
    assert len(val) == 20000
    train = b"\x00".join(c.train_pieces())
    # every 200-byte window of the validation slice is absent from the training text
    windows = [val[i : i + 200] for i in range(0, len(val) - 200, 997) if b"\x00" not in val[i : i + 200]]
    assert len(windows) > 10
    assert not any(w in train for w in windows)


def test_bad_corpora_are_clear_errors(tmp_path, stdlib_corpora):
    with pytest.raises(CorpusError, match="not found"):
        Corpus(tmp_path / "nope.txt", name="general").check()
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(CorpusError, match="empty"):
        Corpus(empty, name="general").check()
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("just one short line\n")
    with pytest.raises(CorpusError, match="no validation text"):
        Corpus(tiny, name="general").check()
    # a separate validation corpus that overlaps training: same file, then same content
    src = stdlib_corpora / "codec_tables.jsonl"
    with pytest.raises(CorpusError, match="overlaps training"):
        Corpus(src, name="d", val_path=src).check()
    lines = src.read_text().splitlines()
    copy = tmp_path / "val.jsonl"
    copy.write_text("\n".join(lines[3:5]) + "\n")
    with pytest.raises(CorpusError, match="overlaps training"):
        Corpus(src, name="d", val_path=copy).check()
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text(json.dumps({"text": "a codec table that is nowhere in training\n" * 50}) + "\n")
    assert Corpus(src, name="d", val_path=fresh).check()["val_bytes"] > 0


def test_token_stream_resumes_exactly_and_cycles(stdlib_corpora):
    c = Corpus(stdlib_corpora / "c_headers.jsonl", name="c")
    a = TokenStream(c, 64, seed=3, buffer=64)
    first = a.take(50)
    rest = a.take(30)
    b = TokenStream(c, 64, seed=3, buffer=64, position=50)
    np.testing.assert_array_equal(b.take(30), rest)
    assert b.position == 80
    other = TokenStream(c, 64, seed=4, buffer=64).take(50)
    assert not np.array_equal(other, first)
    small = c.path.parent / "small.txt"
    small.write_text("".join(f"line {i} of a small corpus\n" for i in range(400)))
    sc = Corpus(small, name="s", val_fraction=0.3, piece_bytes=100)
    n_train = sum(len(p) + 1 for p in sc.train_pieces()) // 33
    s = TokenStream(sc, 32, seed=0)
    one, two = s.take(n_train), s.take(n_train)  # two epochs: the stream cycles, reshuffled
    rows = lambda a: [bytes(r.astype(np.uint8)) for r in a]  # noqa: E731
    assert sorted(rows(one)) == sorted(rows(two))  # the same windows ...
    assert rows(one) != rows(two)  # ... in a new order


def test_a_probe_stream_reads_an_ordered_corpus_in_a_random_order(tmp_path, monkeypatch):
    """Corpora are written in an order (one topic, then another). The probes' streams shuffled 66,048 tokens at a
    time, so a probe trained on the first topic for hundreds of thousands of tokens, then on the second: the
    long-CPT grid's general loss dropped where its stream passed from the language reference to the docstrings
    (BENCHMARKS.md, "The probes' data order"). Today's default shuffles 2^23 tokens: a corpus up to that size is
    read in a fresh random order every epoch, so every stretch of the stream holds both topics. The example and
    LR-schedule grids pin the old order, so that their tables can be made again; the long-CPT grid was made again."""
    from bayes_dcpt.probe import loop
    from bayes_dcpt.probe.configs import LEGACY_SHUFFLE_TOKENS, SHUFFLE_TOKENS, ProbeConfigError, TrainSettings
    from bayes_dcpt.probe.grid_spec import load_spec, pretrain_config, probe_config

    path = tmp_path / "ordered.jsonl"
    docs = [("a" if i < 200 else "b") * 3000 for i in range(400)]  # 600 kB of 'a', then 600 kB of 'b'
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    corpus = Corpus(path, name="ordered", val_fraction=0.05)
    settings = {k: TrainSettings(shuffle_tokens=k) for k in (LEGACY_SHUFFLE_TOKENS, SHUFFLE_TOKENS)}
    share = {}
    for k, st in settings.items():
        x = TokenStream(corpus, st.seq_len, seed=0, buffer=st.shuffle_sequences()).take(8000)[:, :-1]
        share[k] = (x == ord("a")).reshape(8, -1).mean(axis=1)  # 8 stretches of 128,000 tokens
    assert share[LEGACY_SHUFFLE_TOKENS][0] > 0.99 and share[LEGACY_SHUFFLE_TOKENS][-1] < 0.01  # the file order
    assert np.all(np.abs(share[SHUFFLE_TOKENS] - 0.5) < 0.05), share[SHUFFLE_TOKENS]  # every stretch mixed
    assert TrainSettings().shuffle_tokens == SHUFFLE_TOKENS == 2**23
    assert settings[LEGACY_SHUFFLE_TOKENS].shuffle_sequences() == 512
    with pytest.raises(ProbeConfigError, match="shuffle_tokens must be >= 1"):
        TrainSettings(shuffle_tokens=0).check()
    # the probe loop builds its streams with the settings' buffer
    seen = []
    monkeypatch.setattr(loop, "TokenStream", lambda *a, buffer, **kw: seen.append(buffer))
    job = type("Job", (), {"mixture": {"general": corpus, "domain": corpus, "r": 0.5}, "seed": 0})()
    loop._mixture(job, settings[SHUFFLE_TOKENS], {"gen_pos": 0, "dom_pos": 0})
    assert seen == [SHUFFLE_TOKENS // 129] * 2
    # the committed grid made with the old order says so, for both phases; the long and example grids were made
    # again shuffled
    from pathlib import Path

    import bayes_dcpt

    for name in ("example_grid", "long_cpt_grid", "schedules_grid"):
        spec = load_spec(Path(bayes_dcpt.__file__).parent / "datasets" / f"{name}.toml", tmp_path)
        want = LEGACY_SHUFFLE_TOKENS if name == "schedules_grid" else SHUFFLE_TOKENS
        assert probe_config(spec, spec.jobs()[0]).train.shuffle_tokens == want, name
        if spec.pretrain:
            assert pretrain_config(spec, spec.sizes[0]).train.shuffle_tokens == want, name


def test_mixture_is_exact_in_expectation(stdlib_corpora):
    g = Corpus(stdlib_corpora / "general.jsonl", name="g")
    d = Corpus(stdlib_corpora / "codec_tables.jsonl", name="d")
    gs, ds = TokenStream(g, 16, seed=1, buffer=8), TokenStream(d, 16, seed=2, buffer=8)
    mix = Mixture(gs, ds, 0.3, 8, np.random.default_rng(0))
    for _ in range(400):
        mix.next()
    share = ds.position / (ds.position + gs.position)
    assert share == pytest.approx(0.3, abs=0.01)  # B r = 2.4: 2 or 3 per batch
    assert 2 * 400 <= ds.position <= 3 * 400
    for r, n in ((0.0, 0), (1.0, 8)):
        gs2, ds2 = TokenStream(g, 16, seed=1, buffer=8), TokenStream(d, 16, seed=2, buffer=8)
        m = Mixture(gs2, ds2, r, 8, np.random.default_rng(0))
        m.next()
        assert ds2.position == n and gs2.position == 8 - n


def test_lr_schedules():
    assert lr_at(0, 100, 1.0, "constant", warmup=10) == pytest.approx(0.1)
    assert lr_at(50, 100, 1.0, "constant", warmup=10) == 1.0
    cos = [lr_at(s, 100, 1.0, "cosine", warmup=10, min_ratio=0.1) for s in range(100)]
    assert cos[9] == pytest.approx(1.0) and cos[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b - 1e-12 for a, b in zip(cos[10:], cos[11:], strict=False))
    wsd = [lr_at(s, 100, 1.0, "wsd", warmup=5, min_ratio=0.0, decay_frac=0.2) for s in range(100)]
    assert wsd[50] == 1.0 and wsd[79] == 1.0 and wsd[99] == pytest.approx(0.0) and wsd[90] < 0.6
    lin = [lr_at(s, 100, 1.0, "linear", warmup=10, min_ratio=0.1) for s in range(100)]
    assert lin[9] == 1.0 and lin[-1] == pytest.approx(0.1) and lin[10] < 1.0
    with pytest.raises(ScheduleError, match="unknown schedule"):
        lr_at(0, 10, 1.0, "exponential")


def test_eval_points_dense_early_sparse_late():
    pts = eval_tokens(2**19, 2048, first=8192, extra=(32768, 65536))
    assert pts == [0, 8192, 16384, 32768, 65536, 131072, 262144, 524288]
    dense = eval_tokens(2**19, 2048, first=8192, per_octave=2)
    gaps = np.diff(dense[1:])
    assert len(dense) == 14 and (gaps[1:] >= gaps[:-1]).all()
    odd = eval_tokens(10_000, 1000, extra=(2500,))
    assert odd == [0, 1000, 2000, 4000, 8000, 10000]  # 2500 rounds to 2000 (whole steps)
    with pytest.raises(ScheduleError, match="at least one optimizer step"):
        eval_tokens(100, 2048)
    with pytest.raises(ScheduleError, match="outside"):
        eval_tokens(8192, 1024, extra=(10**6,))
    assert math.isclose(len(eval_tokens(2**20, 1024, first=1024)), 12)
    curve = eval_tokens(2**19, 2048, first=8192, every=32768)
    assert set(range(0, 2**19 + 1, 32768)) <= set(curve) and 8192 in curve and len(curve) == 19
    with pytest.raises(ScheduleError, match="eval_every"):
        eval_tokens(8192, 1024, every=100)
