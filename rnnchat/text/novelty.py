"""What share of a sample is copied from the training text: a suffix array over the text's UTF-8 bytes.

``NoveltyIndex.build`` writes the training text as bytes and its suffix array (libdivsufsort through
pydivsufsort: seconds for 100 MB, 4 bytes per byte of text) into a folder of the cache; ``open`` maps both
read-only. ``measure(sample)`` reports the longest span of the sample found verbatim in the text and the
share of its 20-character windows that occur there, by a binary search of the suffix array at every
position of the sample (a UTF-8 match of a valid string is a character match: no match can start inside
a character).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnchat.errors import CorpusError
from rnnchat.paths import cache_dir, make_private_dir
from rnnchat.text.corpus import Corpus
from rnnchat.text.split import split_spans

WINDOW = 20                    # characters: a window that occurs in the text counts as copied
_BLOCK = 64                    # bytes compared at a time while narrowing the search
_FORMAT = 2                    # 2: spans joined by 0xFF, not NUL
_SEPARATOR = b"\xff"           # never in UTF-8, so no match crosses from one span into the next


@dataclass(frozen=True)
class Novelty:
    longest_copy: int          # characters of the longest span of the sample found verbatim in the text
    copied_share: float        # share of the sample's 20-character windows that occur in the text (0..1)
    windows: int               # how many windows the sample has (0 when shorter than 20 characters)
    spans: tuple[tuple[int, int], ...] = ()   # (start, end) character spans of the copied windows, merged

    def to_dict(self) -> dict:
        return {"longest_copy": self.longest_copy, "copied_share": self.copied_share}


class NoveltyIndex:
    def __init__(self, path: Path, text: np.memmap, sa: np.memmap):
        self.path, self._text, self._sa = path, text, sa
        self._bytes = memoryview(text)

    @classmethod
    def build(cls, spans, path: Path) -> "NoveltyIndex":
        """Index the (text, start, end) ``spans`` joined by a byte that UTF-8 never holds (so no match crosses
        from one span into the next, whatever the text holds), written piece by piece: no copy of the text
        is made. A build that fails leaves no temporary folder behind."""
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        make_private_dir(tmp)
        try:
            cls._write(spans, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.rename(tmp, path)
        except OSError:                  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
        return cls.open(path)

    @staticmethod
    def _write(spans, tmp: Path) -> None:
        import pydivsufsort

        with open(tmp / "text.bin", "wb") as f:
            for text, a, b in spans:
                for start in range(a, b, 1 << 22):
                    f.write(text[start:min(b, start + (1 << 22))].encode("utf-8", "replace"))
                f.write(_SEPARATOR)
        data = np.fromfile(tmp / "text.bin", dtype=np.uint8)
        if len(data) >= 2**31 - 1:
            raise CorpusError("the corpus is too large for the copy index (over 2 GB of text)")
        sa = pydivsufsort.divsufsort(data)
        del data
        np.asarray(sa, dtype=np.int32).tofile(tmp / "sa.bin")
        del sa
        (tmp / "meta.json").write_text(json.dumps({"format": _FORMAT}), encoding="utf-8")

    @classmethod
    def open(cls, path: Path) -> "NoveltyIndex":
        size = (path / "text.bin").stat().st_size
        text = np.memmap(path / "text.bin", dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
        sa = np.memmap(path / "sa.bin", dtype=np.int32, mode="r") if size else np.zeros(0, np.int32)
        return cls(path, text, sa)

    @staticmethod
    def exists(path: Path) -> bool:
        return (path / "meta.json").is_file()

    # ---- queries ------------------------------------------------------------------------------

    def _block(self, row: int, depth: int, width: int) -> bytes:
        p = int(self._sa[row]) + depth
        return bytes(self._bytes[p:p + width])

    def _match(self, q: bytes, i: int, hint: int) -> tuple[int, int]:
        """(length, text position) of a longest match of q[i:] in the text; ``hint`` is a text position
        whose continuation is tried first (the previous position's match, one character on)."""
        best, where = 0, -1
        if hint >= 0:
            best, where = self._extend(q, i, hint, 0), hint
            if best == len(q) - i:                       # the copy runs to the end: nothing can be longer
                return best, where
            if best >= _BLOCK and not self._occurs(q[i:i + best + 1]):   # one search: is any copy longer?
                return best, where                       # (at a seam of two copies one is: search it out)
        lo, hi, depth = 0, len(self._sa), 0
        while lo < hi and depth < len(q) - i:
            key = q[i + depth:i + depth + _BLOCK]
            width = len(key)
            a, b = lo, hi                          # the first suffix whose block is >= key
            while a < b:
                mid = (a + b) // 2
                if self._block(mid, depth, width) < key:
                    a = mid + 1
                else:
                    b = mid
            start = a
            if start < hi and self._block(start, depth, width) == key:
                b = hi                             # the first suffix whose block is > key
                while a < b:
                    mid = (a + b) // 2
                    if self._block(mid, depth, width) <= key:
                        a = mid + 1
                    else:
                        b = mid
                lo, hi, depth = start, a, depth + width     # these suffixes all share the block
                if depth > best:
                    best, where = depth, int(self._sa[lo])
                continue
            for row in (start - 1, start):         # none shares it: a neighbour shares the most of it
                if lo <= row < hi:
                    length = self._extend(q, i, int(self._sa[row]), depth)
                    if length > best:
                        best, where = length, int(self._sa[row])
            break
        return best, where

    def _occurs(self, key: bytes) -> bool:
        """Whether ``key`` occurs in the text (a binary search of the suffix array)."""
        a, b, width = 0, len(self._sa), len(key)
        while a < b:
            mid = (a + b) // 2
            if self._block(mid, 0, width) < key:
                a = mid + 1
            else:
                b = mid
        return a < len(self._sa) and self._block(a, 0, width) == key

    def _extend(self, q: bytes, i: int, p: int, k: int) -> int:
        """How many bytes of q[i:] match the text at p, counting from k."""
        text = self._bytes
        limit = min(len(q) - i, len(text) - p)
        while k + _BLOCK <= limit and bytes(text[p + k:p + k + _BLOCK]) == q[i + k:i + k + _BLOCK]:
            k += _BLOCK
        while k < limit and text[p + k] == q[i + k]:
            k += 1
        return k

    def measure(self, sample: str) -> Novelty:
        q = sample.encode("utf-8", "replace")
        starts = []                                # byte offset of every character of the sample
        pos = 0
        for ch in sample:
            starts.append(pos)
            pos += len(ch.encode("utf-8", "replace"))
        starts.append(pos)
        matched = np.zeros(len(sample), np.int64)   # bytes matched from each character on
        hint = -1
        prev = 0
        for j, b in enumerate(starts[:-1]):
            if len(self._sa) == 0:
                break
            length, where = self._match(q, b, hint if prev > 0 else -1)
            matched[j] = length
            step = starts[j + 1] - b
            hint, prev = (where + step if length > step else -1), length
        ends = np.asarray(starts[1:])               # byte offset after each character
        longest, copied, spans = 0, 0, []
        for j in range(len(sample)):
            reach = int(np.searchsorted(ends, starts[j] + matched[j], "right"))   # chars fully matched
            longest = max(longest, reach - j)
        windows = max(0, len(sample) - WINDOW + 1)
        for j in range(windows):
            if matched[j] >= starts[j + WINDOW] - starts[j]:
                copied += 1
                if spans and spans[-1][1] >= j:
                    spans[-1] = (spans[-1][0], j + WINDOW)
                else:
                    spans.append((j, j + WINDOW))
        return Novelty(longest, copied / windows if windows else 0.0, windows, tuple(spans))


def index_path(corpus_hash: str, val_fraction: float) -> Path:
    """Where the index of a corpus's training split lives in the cache (beside its token arrays)."""
    key = hashlib.sha256(f"novelty-v{_FORMAT}|{corpus_hash}|{val_fraction:.6f}".encode()).hexdigest()[:24]
    return cache_dir() / f"novelty-{key}"


def training_index(corpus: Corpus, val_fraction: float) -> NoveltyIndex:
    """The index of the corpus's training split: from the cache, or built (and cached) now."""
    path = index_path(corpus.content_hash(), val_fraction)
    if NoveltyIndex.exists(path):
        return NoveltyIndex.open(path)
    train, _ = split_spans(corpus, val_fraction)
    return NoveltyIndex.build([(corpus.documents[i].text, a, b) for i, a, b in train], path)
