"""The copy index: how much of a sample is found verbatim in the training text."""

import random

import pytest
from conftest import make_play_text

from rnnchat.text.corpus import Corpus, Document
from rnnchat.text.novelty import WINDOW, NoveltyIndex, index_path, open_cached, training_index


@pytest.fixture(scope="module")
def corpus_text():
    return make_play_text(3000, seed=1)


@pytest.fixture
def index(corpus_text, tmp_path):
    return NoveltyIndex.build([(corpus_text, 0, len(corpus_text))], tmp_path / "idx")


def test_a_copied_sample_is_all_copied(index, corpus_text):
    sample = corpus_text[10_000:12_000]
    n = index.measure(sample)
    assert n.longest_copy == 2000 and n.copied_share == 1.0 and n.windows == 2000 - WINDOW + 1
    assert n.spans == ((0, 2000),)


def test_random_text_is_not_copied(index):
    rng = random.Random(0)
    sample = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ,.\n") for _ in range(2000))
    n = index.measure(sample)
    assert n.copied_share == 0.0 and n.longest_copy < 10


def test_a_planted_span_is_found_exactly(index, corpus_text):
    rng = random.Random(1)
    noise = "".join(rng.choice("qxzjvw") for _ in range(300))
    planted = corpus_text[5000:5137]
    n = index.measure(noise + planted + noise)
    assert n.longest_copy == 137
    assert n.spans == ((300, 437),)
    assert n.copied_share == pytest.approx((137 - WINDOW + 1) / (737 - WINDOW + 1))


def test_non_ascii_text_and_boundaries_between_documents(tmp_path):
    corpus = Corpus("c", "test", (Document("a", "Grüße aus Köln, schöne Grüße!"), Document("b", "naïve café")))
    idx = training_index(corpus, 0.1)
    assert open_cached(index_path(corpus.content_hash(), 0.1)) is not None      # built and cached
    assert idx.measure("aus Köln, schö").longest_copy == len("aus Köln, schö")
    joined = "Grüße!naïve"                              # across two documents: never one copied span
    assert idx.measure(joined).longest_copy < len(joined)
    assert training_index(corpus, 0.1).measure("Köln").longest_copy == 4      # opened from the cache


def test_the_longest_copy_is_found_where_two_copies_meet(tmp_path):
    """Copy A covers the sample's first 93 characters; copy B, elsewhere in the text, its characters 7 to 107.
    Following A's match one character on must not hide B: the longest copy is B's 100 characters."""
    rng = random.Random(4)
    letters = "abcdefghijklmnopqrstuvwxyz"
    sample = "".join(rng.choice(letters) for _ in range(107))
    noise = lambda n: "".join(rng.choice("0123456789") for _ in range(n))   # noqa: E731
    text = noise(50) + sample[:93] + noise(50) + sample[7:107] + noise(50)
    idx = NoveltyIndex.build([(text, 0, len(text))], tmp_path / "seam")
    assert idx.measure(sample).longest_copy == 100


def test_a_nul_in_the_text_never_joins_two_documents(tmp_path):
    corpus = Corpus("c", "test", (Document("a", "first ends here"), Document("b", "second starts")))
    idx = training_index(corpus, 0.01)
    assert idx.measure("here\0second").longest_copy < len("here\0second")


def test_a_failed_build_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import pydivsufsort

    def fail(data):
        raise MemoryError("no room for the suffix array")

    monkeypatch.setattr(pydivsufsort, "divsufsort", fail)
    with pytest.raises(MemoryError):
        NoveltyIndex.build([("some training text", 0, 18)], tmp_path / "idx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["remove the suffix array", "cut the text short", "break meta.json",
                                    "remove meta.json's parts", "an older format"])
def test_a_damaged_cached_index_is_built_again(tmp_path, damage):
    """A cache folder someone cleaned by hand (or a disk that filled up) is rebuilt, never an error."""
    import json

    text = make_play_text(200, seed=3)
    corpus = Corpus("c", "test", (Document("a", text),))
    path = index_path(corpus.content_hash(), 0.1)
    training_index(corpus, 0.1)
    meta = json.loads((path / "meta.json").read_text())
    if damage == "remove the suffix array":
        (path / "sa-0.bin").unlink()
    elif damage == "cut the text short":
        data = (path / "text.bin").read_bytes()
        (path / "text.bin").write_bytes(data[: len(data) // 2])
    elif damage == "break meta.json":
        (path / "meta.json").write_text("{not json")
    elif damage == "remove meta.json's parts":
        (path / "meta.json").write_text(json.dumps({"format": meta["format"]}))
    else:
        (path / "meta.json").write_text(json.dumps({**meta, "format": meta["format"] - 1}))
    with pytest.raises(ValueError, match="damaged"):
        NoveltyIndex.open(path)
    sample = text[100:400]
    assert training_index(corpus, 0.1).measure(sample).longest_copy == 300   # rebuilt, whole again
    assert NoveltyIndex.open(path).measure(sample).longest_copy == 300
