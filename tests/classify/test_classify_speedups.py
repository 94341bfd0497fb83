"""The classifier's fast paths give what the slow ones did: n-gram hashing against zlib, the baseline's
cached predictions, the chunked reading against torch's packed RNN, and one thread for one text."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnchat.classify import ngrams
from rnnchat.classify.config import ClassifierConfig
from rnnchat.classify.evaluate import ngram_baseline
from rnnchat.classify.model import Classifier
from rnnchat.classify.predict import probabilities, reading
from rnnchat.text.tokenizers import train_tokenizer

TEXTS = ["To be, or not to be", "a", "", "  Ünïcödé — ☃ and 𝄞  ", "the\tcat\n\nsat", "ab" * 50]


def reference_counts(texts):
    """The n-gram counts as the baseline first computed them, a Python loop over zlib.crc32."""
    out = {}
    for i, text in enumerate(texts):
        padded = f" {' '.join(text.lower().split())} "
        for n in (1, 2, 3, 4):
            for j in range(len(padded) - n + 1):
                h = zlib.crc32(padded[j:j + n].encode("utf-8", "surrogatepass")) % ngrams.BUCKETS
                out[(i, h)] = out.get((i, h), 0) + 1
    return sorted((i, h, c) for (i, h), c in out.items())


def test_ngram_counts_match_zlib(monkeypatch):
    monkeypatch.setattr(ngrams, "_CHUNK_CHARS", 40)          # several chunks, so rows carry across them
    rows, cols, counts = ngrams.ngram_counts(TEXTS)
    assert list(zip(rows.tolist(), cols.tolist(), counts.tolist())) == reference_counts(TEXTS)
    assert [len(a) for a in ngrams.ngram_counts([])] == [0, 0, 0]


def labelled(n, seed=0):
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 3))
        texts.append(" ".join(rng.choice(words, 6)) + " " + ["xx", "yy", "zz"][label])
        labels.append(label)
    return texts, labels


def test_baseline_learns_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCHAT_CACHE", str(tmp_path / "cache"))
    tr, ytr = labelled(120)
    va, yva = labelled(30, seed=1)
    first = ngram_baseline(tr, ytr, va, yva, ["a", "b", "c"])
    assert first["accuracy"] > 0.9
    files = list((tmp_path / "cache" / "classify-ngram").iterdir())
    assert len(files) == 1 and (tmp_path / "cache").stat().st_mode & 0o077 == 0
    monkeypatch.setattr(ngrams, "logistic_regression", lambda *a: pytest.fail("trained again"))
    assert ngram_baseline(tr, ytr, va, yva, ["a", "b", "c"]) == first
    files[0].write_text("{not json")                          # a damaged entry is computed again, never trusted
    monkeypatch.undo()
    monkeypatch.setenv("RNNCHAT_CACHE", str(tmp_path / "cache"))
    assert ngram_baseline(tr, ytr, va, yva, ["a", "b", "c"]) == first
    assert ngrams.split_key(tr, ytr, va, 3) != ngrams.split_key(tr, ytr[::-1], va, 3)


def packed_reference(m, ids, lengths):
    """The classifier's summary and logits through torch's packed RNN (how it read every batch before)."""
    x = m.drop(m.embed(ids))
    out, state = m.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    if m.cfg.pooling == "last":
        summary = (state[0] if isinstance(state, tuple) else state)[-1]
    else:
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
        summary = ((out * mask).sum(1) / mask.sum(1) if m.cfg.pooling == "mean"
                   else out.masked_fill(~mask, -math.inf).max(1).values)
    return m.head(m.drop(summary))


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_chunked_reading_matches_packed(cell, pooling):
    torch.manual_seed(0)
    m = Classifier(ClassifierConfig(vocab_size=20, cell=cell, layers=2, hidden=12, embed=6, pooling=pooling,
                                    dropout=0.0, labels=("a", "b", "c")))
    for size in (1, 2, 7, 33):
        lengths = torch.randint(1, 30, (size,))
        ids = torch.randint(0, 20, (size, int(lengths.max())))
        m.zero_grad()
        m(ids, lengths).square().sum().backward()
        grads = [p.grad.clone() for p in m.parameters()]
        m.zero_grad()
        packed_reference(m, ids, lengths).square().sum().backward()
        for g, p in zip(grads, m.parameters()):
            assert torch.allclose(g, p.grad, atol=1e-5)
        with torch.no_grad():
            assert torch.allclose(m(ids, lengths), packed_reference(m, ids, lengths), atol=1e-6)


def test_one_text_runs_on_one_thread_and_restores():
    tok = train_tokenizer("char", ["abc de"], 0)
    m = Classifier(ClassifierConfig(vocab_size=tok.vocab_size, layers=1, hidden=8, embed=4, labels=("x", "y")))
    seen = []
    m.rnn.register_forward_hook(lambda *a: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    probabilities(m, tok, ["abc"])
    reading(m, tok, "abc")
    probabilities(m, tok, ["abc", "de"])
    assert seen[:2] == [1, 1] and set(seen[2:]) == {before} and torch.get_num_threads() == before
