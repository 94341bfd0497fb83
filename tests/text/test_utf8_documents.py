"""Documents read from files are held as UTF-8 bytes and read in pieces: the same text, hash, split, token ids
and copy figures as the whole text held as a str, with the pieces made tiny so every seam is crossed."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import make_play_text

import rnnchat.lm.data as data
import rnnchat.text.novelty as novelty
from rnnchat.text import utf8
from rnnchat.text.corpus import Corpus, Document, corpus_stats
from rnnchat.text.load import load_corpus
from rnnchat.text.split import split_documents, split_spans
from rnnchat.text.tokenizers import train_tokenizer
from rnnchat.vocab import EOD

WIDE = ["a", "é", "—", "日", "😀", " ", "\n", "\u3000"]   # 1-, 2-, 3- and 4-byte characters, and spaces


def mixed_text(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    play = make_play_text(200, seed=seed)
    out, size = [], 0
    while size < n:
        piece = play[rng.randrange(len(play) - 80):][:rng.randrange(5, 80)] + rng.choice(WIDE)
        out.append(piece)
        size += len(piece)
    return "".join(out)[:n]


@pytest.fixture
def tiny_pieces(monkeypatch):
    """Pieces of a few hundred bytes and offset blocks of 256, so a small text crosses many seams."""
    monkeypatch.setattr(utf8, "PIECE_BYTES", 1024)
    monkeypatch.setattr(utf8, "_BLOCK", 256)
    monkeypatch.setattr(data, "_PIECE_CHARS", 700)


def as_str_corpus(corpus: Corpus) -> Corpus:
    return Corpus(corpus.name, corpus.source, tuple(Document(d.name, d.text) for d in corpus.documents),
                  corpus.invalid_bytes, corpus.skipped, corpus.duplicates)


def test_a_bytes_document_reads_as_its_text(tiny_pieces):
    text = mixed_text(20_000)
    doc = Document.of_utf8("d", text.encode())
    assert doc.chars == len(text) and doc.text == text and doc == Document("d", text)
    rng = random.Random(3)
    for _ in range(300):
        a = rng.randrange(len(text) + 1)
        b = rng.randrange(a, len(text) + 1)
        assert doc.slice(a, b) == text[a:b]
        assert bytes(doc.utf8_span(a, b)) == text[a:b].encode()
    pieces = list(doc.pieces(123, 17_000, size=500))
    assert "".join(pieces) == text[123:17_000] and len(pieces) > 30
    assert max(len(p.encode()) for p in pieces) <= 500
    assert Document.of_utf8("w", " \u3000\n\t".encode() * 400).blank() and not doc.blank()
    assert pickle.loads(pickle.dumps(doc)) == doc and pickle.loads(pickle.dumps(doc))._utf8 is not None


def test_a_file_bigger_than_a_piece_loads_as_before(tmp_path, tiny_pieces):
    """Invalid bytes (one cut by a piece's end), a BOM and Windows line endings: the same text, the same count
    of replaced bytes and the same content hash as decoding the whole file at once."""
    raw = mixed_text(9_000, seed=1).replace("\n", "\r\n").encode()
    raw = b"\xef\xbb\xbf" + raw[:1023] + b"\xe2\x82" + raw[1023:5000] + b"\xff\xfe" + raw[5000:] + b"\xf0\x9f"
    path = tmp_path / "big.txt"
    path.write_bytes(raw)
    corpus = load_corpus(str(path))
    want = raw[3:].replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode("utf-8", "replace")
    assert corpus.documents[0].text == want and corpus.chars == len(want)
    assert corpus.invalid_bytes == 2 + 2 + 2
    assert corpus.content_hash() == as_str_corpus(corpus).content_hash()
    assert corpus_stats(corpus) == corpus_stats(as_str_corpus(corpus))


def test_the_content_hash_is_the_one_runs_recorded(tmp_path):
    """The value rnnchat has always computed for this corpus (runs compare it to their run.json)."""
    write = lambda rel, text: (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True) or \
        (tmp_path / rel).write_text(text, encoding="utf-8")                  # noqa: E731
    write("c/notes.txt", "hello\nworld\n")
    write("c/sub/é.txt", "Grüße — naïve 😀\n")
    want = "b4a7e1b7608e9f842f069d630c2cd84bf85922a0c73766da4e713844ccf6d209"
    assert load_corpus(str(tmp_path / "c")).content_hash() == want
    held_as_str = Corpus("x", "y", (Document("notes.txt", "hello\nworld\n"),
                                    Document("sub/é.txt", "Grüße — naïve 😀\n")))
    assert held_as_str.content_hash() == want


@pytest.mark.parametrize("level", ["char", "bpe"])
def test_tokens_and_split_match_the_whole_text(tmp_path, tiny_pieces, monkeypatch, level):
    monkeypatch.setenv("RNNCHAT_CACHE", str(tmp_path / "cache"))
    for i, n in enumerate([30_000, 12_000]):
        (tmp_path / "c").mkdir(exist_ok=True)
        (tmp_path / "c" / f"{i}.txt").write_text(mixed_text(n, seed=i), encoding="utf-8")
    corpus = load_corpus(str(tmp_path / "c"))
    whole = as_str_corpus(corpus)
    assert split_spans(corpus, 0.1) == split_spans(whole, 0.1)
    assert split_documents(corpus, 0.1) == split_documents(whole, 0.1)
    ds = data.prepare(corpus, level, 400)
    tok = train_tokenizer(level, [t for t in split_documents(whole, 0.1)[0]] +
                          (split_documents(whole, 0.1)[1] if level == "char" else []), 400)
    for split, texts in zip((ds.train, ds.val), split_documents(whole, 0.1)):
        want = np.concatenate([np.concatenate([[EOD], tok.encode(t)]) for t in texts])
        assert np.array_equal(np.asarray(split), want)
    ids, chars = data.eval_span(corpus, 0.1, 3000, ds.tokenizer)
    assert np.array_equal(ids, data.eval_span(whole, 0.1, 3000, ds.tokenizer)[0]) and chars == 3000


def brute_force(text: str, sample: str) -> tuple[int, int]:
    """(longest copy, copied windows) of ``sample`` in ``text``, by plain substring search."""
    longest = 0
    for j in range(len(sample)):
        while j + longest < len(sample) and sample[j:j + longest + 1] in text:
            longest += 1
    windows = sum(sample[j:j + novelty.WINDOW] in text for j in range(len(sample) - novelty.WINDOW + 1))
    return longest, windows


@pytest.mark.parametrize("mapped", [True, False])
def test_an_index_in_parts_measures_as_one(tmp_path, monkeypatch, mapped):
    """A text cut into 4 overlapping parts, memory-mapped or read with pread, gives the figures of one
    suffix array and of a plain substring search; a copy longer than the overlap, across the seam of two
    parts, is still found whole."""
    text = mixed_text(60_000, seed=2)
    one = novelty.NoveltyIndex.build([(text, 0, len(text))], tmp_path / "one")
    monkeypatch.setattr(novelty, "_PART_MIN", 1000)
    monkeypatch.setattr(novelty, "_OVERLAP", 500)
    monkeypatch.setattr(novelty, "_MAP_MAX", 1 << 30 if mapped else 0)
    doc = Document.of_utf8("d", text.encode())
    parts = novelty.NoveltyIndex.build([(doc, 0, doc.chars)], tmp_path / "parts")
    assert len(parts._parts) == 4
    rng = random.Random(5)
    for _ in range(12):
        a = rng.randrange(len(text) - 400)
        sample = text[a:a + rng.randrange(20, 120)] + "qqzx" + text[rng.randrange(len(text) - 200):][:150]
        n = parts.measure(sample)
        assert n == one.measure(sample)
        assert (n.longest_copy, round(n.copied_share * n.windows)) == brute_force(text, sample)
    seam = parts._parts[1].start                     # a 3,000-character copy across the seam of parts 0 and 1
    start = len(text.encode()[:seam].decode("utf-8", "ignore")) - 1500
    sample = "qqzx" + text[start:start + 3000] + "zxqq"
    assert parts.measure(sample).longest_copy == one.measure(sample).longest_copy == 3000


def test_a_blank_corpus_is_still_refused(tmp_path: Path):
    from rnnchat.errors import CorpusError

    (tmp_path / "blank.txt").write_text("\u3000 \n\t" * 1000, encoding="utf-8")
    with pytest.raises(CorpusError, match="is empty"):
        load_corpus(str(tmp_path / "blank.txt"))
