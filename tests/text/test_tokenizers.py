import numpy as np
import pytest
from conftest import make_play_text

from rnnchat.errors import CheckpointError
from rnnchat.text.tokenizers import CharTokenizer, SentencePieceTokenizer, dtype_for, load_tokenizer
from rnnchat.vocab import EOD, UNK

UNICODE = "Grüße, 世界! naïve café — emoji 😀 and tabs\tand\nnewlines\n\n  spaced  "


def test_char_round_trip_unicode():
    tok = CharTokenizer.train([UNICODE])
    ids = tok.encode(UNICODE)
    assert ids.dtype == np.uint8 and len(ids) == len(UNICODE)
    assert tok.decode(ids) == UNICODE
    assert tok.count_unknown(ids) == 0
    assert UNK not in ids and EOD not in ids


def test_char_unknown_characters_are_counted_not_fatal():
    tok = CharTokenizer.train(["abc"])
    ids = tok.encode("abzzc\U0010ffff")
    assert tok.count_unknown(ids) == 3
    assert tok.decode(ids) == "ab\ufffd\ufffdc\ufffd"


def test_char_large_vocab_uses_wider_dtype():
    text = "".join(chr(0x4E00 + i) for i in range(300))
    tok = CharTokenizer.train([text])
    assert tok.encode(text).dtype == np.uint16
    assert dtype_for(70000) == np.uint32


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_sentencepiece_round_trip_and_streaming(kind, tmp_path):
    tok = SentencePieceTokenizer.train([make_play_text(300)], kind, 400)
    for text in (UNICODE, make_play_text(5, seed=3), "  leading and trailing  \n"):
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        stream = tok.decoder()
        assert "".join(stream.feed(int(i)) for i in ids) == text
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again.kind == kind and list(again.encode(UNICODE)) == list(tok.encode(UNICODE))


def test_sentencepiece_compresses_text():
    text = make_play_text(300)
    tok = SentencePieceTokenizer.train([text], "bpe", 400)
    assert len(tok.encode(text)) < 0.6 * len(text)


def test_char_save_load(tmp_path):
    tok = CharTokenizer.train([UNICODE])
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).decode(tok.encode(UNICODE)) == UNICODE


def test_malformed_tokenizer_file_is_refused(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"kind": "char", "chars": "aab"}')
    with pytest.raises(CheckpointError):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("not json")
    with pytest.raises(CheckpointError):
        load_tokenizer(tmp_path)


@pytest.fixture(scope="module")
def bpe():
    return SentencePieceTokenizer.train([make_play_text(800)], "bpe", 400)


def test_a_huge_line_is_encoded_in_bounded_pieces(bpe, monkeypatch):
    """Before: a text without newlines went to sentencepiece in one piece (a Python list of every id)."""
    words = make_play_text(3000).replace("\n", " ")
    text = (words * (1 + 3_000_000 // len(words)))[:3_000_000]
    sizes = []
    real = bpe.sp.encode

    def spy(pieces, **kw):
        sizes.extend(len(p) for p in pieces)
        return real(pieces, **kw)

    monkeypatch.setattr(bpe.sp, "encode", spy)
    ids = bpe.encode(text)
    assert max(sizes) <= 2 * (1 << 16) and len(sizes) > 20
    assert bpe.decode(ids) == text
    monkeypatch.undo()
    head = text[:200_000]
    assert list(bpe.encode(head)) == [int(i) for i in bpe.sp.encode(head)]     # cuts fall where pieces end


def test_lone_surrogates_from_json_escapes_encode_as_replacement(bpe):
    """Before: 'internal error: TypeError: List elements must be str or bytes'."""
    ids = bpe.encode("ALDO:\nI see \ud800 the moon\udfff")
    assert bpe.decode(ids) == "ALDO:\nI see \ufffd the moon\ufffd"


def test_sentencepiece_sample_is_bounded_over_many_small_files(monkeypatch):
    """Before: block 0 of every document was always taken, so many small files meant all of them."""
    import rnnchat.text.tokenizers as tokenizers

    docs = [f"doc {i}: " + make_play_text(40, seed=i) for i in range(300)]      # ~3 KB each, ~1 MB in all
    budget = 100_000
    lines = list(tokenizers._sample_lines(docs, budget))
    given = sum(map(len, lines))
    assert budget // 2 <= given < budget + (1 << 16)
    assert len({line.split(":")[0] for line in lines if line.startswith("doc ")}) > 10   # spread over files
