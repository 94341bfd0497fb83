"""Tokenised corpora on disk and the batches the trainer reads from them.

``prepare`` splits a corpus, trains (or reuses) a tokenizer and writes the token ids of each split as a
flat binary file of the smallest unsigned dtype, with the document-boundary id before every document.
The files live in the cache under a hash of the corpus and the tokenizer settings, so a second run on
the same corpus starts at once. Training reads them as numpy memmaps: memory stays flat in corpus size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnnchat.errors import CorpusError
from rnnchat.paths import cache_dir, make_private_dir
from rnnchat.text.corpus import Corpus, Document
from rnnchat.text.split import split_spans
from rnnchat.text.tokenizers import Tokenizer, cut_point, dtype_for, load_tokenizer, train_tokenizer
from rnnchat.vocab import EOD

_CACHE_FORMAT = 1
_PIECE_CHARS = 1 << 20        # characters encoded at a time when building the cache


@dataclass
class Dataset:
    tokenizer: Tokenizer
    train: np.ndarray
    val: np.ndarray
    train_chars: int
    val_chars: int
    unknown: int              # ids that are UNK across both splits (characters the vocabulary lacks)
    path: Path
    cached: bool              # True when the arrays came from the cache

    @property
    def chars_per_token(self) -> float:
        """Characters per token on the validation split (1.0 for char level, bigger for subwords)."""
        return self.val_chars / max(1, len(self.val))

    @property
    def train_chars_per_token(self) -> float:
        return self.train_chars / max(1, len(self.train))


def _tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    h = hashlib.sha256(tokenizer.kind.encode())
    tmp = {"chars": getattr(tokenizer, "chars", None)}
    h.update(json.dumps(tmp).encode())
    h.update(getattr(tokenizer, "model_proto", b""))
    return h.hexdigest()


def cache_key(corpus: Corpus, level: str, vocab_size: int, val_fraction: float,
              tokenizer: Tokenizer | None = None) -> str:
    parts = [f"v{_CACHE_FORMAT}", corpus.content_hash(), f"{val_fraction:.6f}"]
    if tokenizer:
        parts.append(f"tok:{_tokenizer_fingerprint(tokenizer)}")
    else:
        parts += [level, str(vocab_size if level != "char" else 0)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def prepare(corpus: Corpus, level: str = "char", vocab_size: int = 2000, val_fraction: float = 0.1,
            tokenizer: Tokenizer | None = None) -> Dataset:
    """Tokenise ``corpus`` (or load it from the cache). Pass ``tokenizer`` to reuse a run's own."""
    key = cache_key(corpus, level, vocab_size, val_fraction, tokenizer)
    path = cache_dir() / key
    if not (path / "meta.json").is_file():
        _build(corpus, level, vocab_size, val_fraction, tokenizer, path)
        cached = False
    else:
        cached = True
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    tok = tokenizer or load_tokenizer(path)
    dtype = np.dtype(meta["dtype"])
    return Dataset(
        tokenizer=tok,
        train=_memmap(path / "train.bin", dtype), val=_memmap(path / "val.bin", dtype),
        train_chars=meta["train_chars"], val_chars=meta["val_chars"], unknown=meta["unknown"],
        path=path, cached=cached)


def _memmap(path: Path, dtype: np.dtype) -> np.ndarray:
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


class TextView:
    """A read-only window ``text[start:end]`` of a document that supports ``len()`` and slicing, so the
    splits of a large corpus are handed to tokenizer training and encoded piece by piece without copying
    them whole (nor, for a file's document, decoding them whole)."""

    __slots__ = ("doc", "start", "end")

    def __init__(self, doc: Document, start: int, end: int):
        self.doc, self.start, self.end = doc, start, end

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, key: slice) -> str:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("TextView supports only contiguous slices")
        a, b, _ = key.indices(len(self))
        return self.doc.slice(self.start + a, self.start + max(a, b))

    def pieces(self, size: int):
        return self.doc.pieces(self.start, self.end, size)

    def __str__(self) -> str:
        return self.doc.slice(self.start, self.end)


def _pieces(view: TextView, subword: bool):
    """The view as consecutive strings of about _PIECE_CHARS characters (at most twice that). For subword
    tokenizers the cuts fall where their pieces end (``tokenizers.cut_point``, over the next two pieces'
    worth of text: the same cuts as over the whole text), so the pieces encode as the whole would."""
    if not subword:
        yield from view.pieces(_PIECE_CHARS)
        return
    buf, stream, more = "", view.pieces(_PIECE_CHARS), True
    while True:
        while more and len(buf) < 2 * _PIECE_CHARS:
            piece = next(stream, None)
            more = piece is not None
            buf += piece or ""
        if not buf:
            return
        end = cut_point(buf, 0, len(buf), _PIECE_CHARS)
        yield buf[:end]
        buf = buf[end:]


def _build(corpus: Corpus, level: str, vocab_size: int, val_fraction: float,
           tokenizer: Tokenizer | None, path: Path) -> None:
    # The splits stay views of the corpus text and are encoded piece by piece straight into the files:
    # memory beyond the corpus itself is a few pieces, whatever the corpus size.
    train_spans, val_spans = split_spans(corpus, val_fraction)
    docs = corpus.documents
    train_views = [TextView(docs[i], a, b) for i, a, b in train_spans]
    val_views = [TextView(docs[i], a, b) for i, a, b in val_spans]
    if tokenizer is None:
        # A character vocabulary covers the whole corpus, so validation has no unknown characters;
        # subword vocabularies are learned from the training split only.
        source = train_views + val_views if level == "char" else train_views
        tokenizer = train_tokenizer(level, source, vocab_size)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    make_private_dir(tmp)
    dtype = dtype_for(tokenizer.vocab_size)
    subword = tokenizer.kind != "char"
    unknown = 0
    chars = {}
    for split, views in (("train", train_views), ("val", val_views)):
        with open(tmp / f"{split}.bin", "wb") as f:
            boundary = np.array([EOD], dtype=dtype).tobytes()
            for view in views:
                f.write(boundary)
                for piece in _pieces(view, subword):
                    ids = tokenizer.encode(piece)
                    unknown += tokenizer.count_unknown(ids)
                    f.write(np.ascontiguousarray(ids, dtype=dtype).data)
        chars[split] = sum(len(v) for v in views)
    tokenizer.save(tmp)
    meta = {"format": _CACHE_FORMAT, "corpus": corpus.name, "level": tokenizer.kind,
            "vocab_size": tokenizer.vocab_size, "dtype": dtype.name, "unknown": unknown,
            "train_chars": chars["train"], "val_chars": chars["val"]}
    (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    try:
        os.rename(tmp, path)
    except OSError:  # another process built the same cache entry first; theirs is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)


def eval_span(corpus: Corpus, val_fraction: float, max_chars: int, tokenizer: Tokenizer) -> tuple[np.ndarray, int]:
    """The ids of the first ``max_chars`` characters of the validation split, a boundary before each
    document as in training, and how many characters they hold: the text every evaluation scores, the
    same at every tokenizer level."""
    _, val_spans = split_spans(corpus, val_fraction)
    dtype = dtype_for(tokenizer.vocab_size)
    parts, chars = [], 0
    for i, a, b in val_spans:
        if chars >= max_chars:
            break
        b = min(b, a + max_chars - chars)
        parts += [np.array([EOD], dtype=dtype), np.asarray(tokenizer.encode(corpus.documents[i].slice(a, b)), dtype)]
        chars += b - a
    return (np.concatenate(parts) if parts else np.zeros(0, dtype)), chars


def check_fits(data: Dataset, seq_len: int) -> None:
    if len(data.train) < seq_len + 2:
        raise CorpusError(
            f"the corpus is too short to train on: {len(data.train)} training tokens, but one window "
            f"needs {seq_len + 1}; add text or use a smaller --seq-len")
    if len(data.val) < 2:
        raise CorpusError("the corpus is too short to keep any text for validation; add text")


def _step_generator(seed: int, step: int) -> np.random.Generator:
    # Each step's batch depends only on (seed, step): resuming at step k reads exactly what an
    # uninterrupted run would have read, with no data-loader state to save.
    return np.random.default_rng([seed, step])


def random_batch(tokens: np.ndarray, batch_size: int, seq_len: int, seed: int,
                 step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows at random offsets: inputs (B, T) and next-token targets (B, T) as int64."""
    rng = _step_generator(seed, step)
    starts = rng.integers(0, len(tokens) - seq_len - 1, size=batch_size, endpoint=True)
    idx = starts[:, None] + np.arange(seq_len + 1)
    block = torch.from_numpy(tokens[idx].astype(np.int64))
    return block[:, :-1], block[:, 1:]


def lane_batch(tokens: np.ndarray, batch_size: int, seq_len: int, step: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Consecutive windows for stateful training: the stream is cut into ``batch_size`` lanes and
    step k reads window k of every lane. Returns (inputs, targets, fresh) where ``fresh`` says the
    lanes wrapped around to their start, so carried state must be reset."""
    lane_len = len(tokens) // batch_size
    windows = max(1, (lane_len - 1) // seq_len)
    if lane_len < seq_len + 1:
        return (*random_batch(tokens, batch_size, seq_len, 0, step), True)
    w = step % windows
    starts = np.arange(batch_size) * lane_len + w * seq_len
    idx = starts[:, None] + np.arange(seq_len + 1)
    block = torch.from_numpy(tokens[idx].astype(np.int64))
    return block[:, :-1], block[:, 1:], w == 0


def eval_windows(tokens: np.ndarray, max_tokens: int, batch_size: int, seq_len: int):
    """The first ``max_tokens`` tokens cut into ``batch_size`` contiguous lanes, yielded window by window
    as (inputs, targets, tail) so state can be carried along each lane: every token is scored with all
    the context before it. The few tokens past the last whole lane come last, as one row with ``tail``
    True: they continue the last lane, whose state they take."""
    n = min(len(tokens) - 1, max_tokens)
    lanes = max(1, min(batch_size, n // max(1, seq_len)))
    lane_len = n // lanes
    for start in range(0, lane_len, seq_len):
        t = min(seq_len, lane_len - start)
        idx = (np.arange(lanes) * lane_len + start)[:, None] + np.arange(t + 1)
        block = torch.from_numpy(tokens[idx].astype(np.int64))
        yield block[:, :-1], block[:, 1:], False
    for start in range(lanes * lane_len, n, seq_len):
        block = torch.from_numpy(tokens[start:min(n, start + seq_len) + 1].astype(np.int64))[None]
        yield block[:, :-1], block[:, 1:], True
