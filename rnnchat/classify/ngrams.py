"""The character n-gram baseline's features and model, in numpy and torch without a Python loop per character.

Features are TF-IDF of a text's character 1- to 4-grams (lower-cased, whitespace runs as one space, a space
at each end), hashed into ``BUCKETS`` by CRC-32 of their UTF-8 bytes (``zlib.crc32``, computed here over
whole arrays). The model is logistic regression with balanced label weights and L2, by full-batch Adam.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rnnchat.errors import RnnchatError
from rnnchat.files import read_bounded, write_json_atomic
from rnnchat.paths import cache_dir, make_private_dir

BUCKETS = 1 << 18              # hashed n-gram features: collisions are rare at this size for a few MB of text
EPOCHS = 40
_CHUNK_CHARS = 1 << 20         # texts are hashed a few MB at a time, so memory stays bounded on a large corpus


def _crc_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(0xEDB88320), t >> 1).astype(np.uint32)
    return t


_TABLE = _crc_table()


def _utf8_bytes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bytes (chars, 4), byte count per char) of each code point's UTF-8 encoding (surrogates passed)."""
    present = np.flatnonzero(np.bincount(codes))
    table = np.zeros((int(present[-1]) + 1 if len(present) else 1, 4), np.uint32)
    sizes = np.zeros(len(table), np.int64)
    for c in present.tolist():                         # once per distinct character, not per character
        b = chr(c).encode("utf-8", "surrogatepass")
        table[c, :len(b)], sizes[c] = list(b), len(b)
    return table[codes], sizes[codes]


def _advance(crc: np.ndarray, raw: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The running CRC states ``crc`` after one more character each (its bytes ``raw``, ``sizes`` of them)."""
    crc = crc.copy()
    for k in range(4):
        at = np.flatnonzero(sizes > k) if k else slice(None)
        c = crc[at]
        crc[at] = _TABLE[(c ^ raw[at, k]) & 0xFF] ^ (c >> 8)
    return crc


def _chunk_counts(padded: list[str], first_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, buckets, counts) of the n-grams of some padded texts, sorted by row then bucket."""
    lengths = np.fromiter((len(p) for p in padded), np.int64, len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le", "surrogatepass"), np.uint32)
    doc = np.repeat(np.arange(first_row, first_row + len(padded), dtype=np.int64), lengths)
    raw, sizes = _utf8_bytes(codes)
    crc = np.full(len(codes), 0xFFFFFFFF, np.uint32)
    keys = []
    for n in (1, 2, 3, 4):
        m = len(codes) - n + 1
        if m <= 0:
            break
        crc = _advance(crc[:m], raw[n - 1:], sizes[n - 1:])    # the n-gram at j is the (n-1)-gram at j and one more
        inside = doc[:m] == doc[n - 1:n - 1 + m]               # n-grams never span two texts
        h = ((crc ^ np.uint32(0xFFFFFFFF)) % BUCKETS).astype(np.int64)
        keys.append(doc[:m][inside] * BUCKETS + h[inside])
    unique, counts = np.unique(np.concatenate(keys), return_counts=True)
    return unique // BUCKETS, unique % BUCKETS, counts


def ngram_counts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, buckets, counts) of every text's character 1-4-grams, sorted by row then bucket."""
    parts, chunk, size, first = [], [], 0, 0
    for text in texts:
        chunk.append(f" {' '.join(text.lower().split())} ")
        size += len(chunk[-1])
        if size >= _CHUNK_CHARS:
            parts.append(_chunk_counts(chunk, first))
            first, chunk, size = first + len(chunk), [], 0
    if chunk:
        parts.append(_chunk_counts(chunk, first))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return tuple(np.concatenate(p) for p in zip(*parts))


class _Rows:
    """A sparse matrix as its rows' (column, value) lists, for ``@`` a dense matrix by one embedding_bag
    (on 2 busy cores it measured 1.5-3x faster than torch's CSR product)."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, vals: torch.Tensor, n: int):
        self.offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))[:-1]]))
        self.cols, self.vals = torch.from_numpy(cols), vals

    def __matmul__(self, dense: torch.Tensor) -> torch.Tensor:
        return F.embedding_bag(self.cols, dense, self.offsets, per_sample_weights=self.vals, mode="sum")


def _by_column(c: np.ndarray) -> np.ndarray:
    """The stable order of entries by column: numpy radix-sorts 16-bit keys, so 16 bits a pass (a few times
    faster than a stable sort of int64)."""
    order = np.argsort((c & 0xFFFF).astype(np.uint16), kind="stable")
    if len(c) and c.max() > 0xFFFF:
        order = order[np.argsort((c[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def tfidf(counted, n: int, column: np.ndarray, width: int, idf: torch.Tensor | None = None):
    """(the n x width L2-normalised TF-IDF matrix, its transpose, the idf used) of ``ngram_counts``'s answer
    for n texts; ``column`` maps a bucket to its column (-1: dropped)."""
    r, c, counts = counted
    v = 1 + torch.from_numpy(np.log(counts)).float()               # sublinear term frequency
    if idf is None:
        df = torch.bincount(torch.from_numpy(c), minlength=BUCKETS).float()
        idf = torch.log((1 + n) / (1 + df)) + 1
    v = v * idf[torch.from_numpy(c)]
    norm = torch.zeros(n).index_add_(0, torch.from_numpy(r), v * v).sqrt().clamp(min=1e-12)
    v = v / norm[torch.from_numpy(r)]
    c = column[c]
    if len(c) and c.min() < 0:                                  # buckets no training text has (held-out texts)
        kept = c >= 0
        r, c, v = r[kept], c[kept], v[torch.from_numpy(kept)]
    order = _by_column(c)
    return _Rows(r, c, v, n), _Rows(c[order], r[order], v[torch.from_numpy(order)], width), idf


def logistic_regression(train_texts: Sequence[str], train_labels: Sequence[int], val_texts: Sequence[str],
                        k: int) -> list[int]:
    """The predicted label of each held-out text. Full-batch Adam with the gradient written out (autograd
    through sparse products is several times slower). Only buckets some training text has get a column: the
    others' weights would stay exactly zero, so the predictions are the same as over all buckets."""
    counted = ngram_counts(train_texts)
    used = np.flatnonzero(np.bincount(counted[1], minlength=BUCKETS))
    column = np.full(BUCKETS, -1, np.int64)
    column[used] = np.arange(len(used))
    x, xt, idf = tfidf(counted, len(train_texts), column, len(used))
    xv, _, _ = tfidf(ngram_counts(val_texts), len(val_texts), column, len(used), idf)
    y = torch.as_tensor(np.asarray(train_labels, np.int64))
    n = len(y)
    counts = torch.bincount(y, minlength=k).float().clamp(min=1)
    weight = (n / (k * counts))[y][:, None] / n
    w, b = torch.zeros(len(used), k), torch.zeros(k)
    m1, m2 = torch.zeros_like(w), torch.zeros_like(w)
    lr, beta1, beta2 = 0.05, 0.9, 0.999
    onehot = F.one_hot(y, k).float()
    for t in range(1, EPOCHS + 1):
        g = (torch.softmax(x @ w + b, -1) - onehot) * weight
        grad = xt @ g + 2e-5 * w
        b -= lr * g.sum(0)
        m1.mul_(beta1).add_(grad, alpha=1 - beta1)
        m2.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        w -= lr * (m1 / (1 - beta1 ** t)) / ((m2 / (1 - beta2 ** t)).sqrt() + 1e-8)
    return (xv @ w + b).argmax(-1).tolist()


# ------------------------------------------------------------------------------- the predictions, cached
# The baseline depends only on the split's texts and labels, so a resumed run, or another run on the same
# split, reads its predictions instead of training it again: one small file per split in the cache folder.

_FORMAT = 1


def split_key(train_texts: Sequence[str], train_labels: Sequence[int], val_texts: Sequence[str], k: int) -> str:
    h = hashlib.sha256(f"ngram-v{_FORMAT}|{BUCKETS}|{EPOCHS}|{k}|{len(train_texts)}|{len(val_texts)}".encode())
    for texts, labels in ((train_texts, train_labels), (val_texts, [0] * len(val_texts))):
        for text, label in zip(texts, labels):
            data = text.encode("utf-8", "surrogatepass")
            h.update(b"%d|%d|" % (int(label), len(data)))
            h.update(data)
    return h.hexdigest()[:32]


def _path(key: str) -> Path:
    return cache_dir() / "classify-ngram" / f"{key}.json"


def cached_predictions(key: str, n: int, k: int) -> list[int] | None:
    """The remembered predictions for ``key``, or None when there are none (or they are unusable)."""
    try:
        data = json.loads(read_bounded(_path(key), 64 + 8 * n))
    except (OSError, RnnchatError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    pred = data.get("predictions") if isinstance(data, dict) and data.get("format") == _FORMAT else None
    if not isinstance(pred, list) or len(pred) != n or not all(type(p) is int and 0 <= p < k for p in pred):
        return None
    return pred


def remember(key: str, predictions: list[int]) -> None:
    try:
        make_private_dir(_path(key).parent)
        write_json_atomic(_path(key), {"format": _FORMAT, "predictions": predictions})
    except (OSError, RnnchatError):
        pass                       # a read-only or full disk: computed again next time
