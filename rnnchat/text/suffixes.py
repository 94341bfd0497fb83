"""Searching one suffix array kept on disk: the longest match of a query's suffix, and whether a key occurs.

A part is a suffix array over a byte range of a text file. Every 256th suffix's first 8 bytes are held in
memory and every 16th's are on disk beside the array (as big-endian integers, so their order is the
suffixes' order), so a search reads two small runs of the files and a few rows instead of ~25 rows down
the whole depth of the array. Large files are read with pread: nothing a search touches stays in the
process's memory (a memory map would keep every page it ever touched, hundreds of MB for 100 MB of text);
small ones are mapped, which is faster.
"""

from __future__ import annotations

import mmap
import os
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path

import numpy as np

BLOCK = 64                    # bytes compared at a time while narrowing the search
STRIDE = 256                  # every this-many-th suffix's first 8 bytes are held in memory (3% of the text)
FINE = 16                     # every this-many-th suffix's first 8 bytes are on disk beside the array
_EXTEND = 256                 # bytes read at a time while following a match
_FEW = 64                     # a window of at most this many rows is read in one go


class Reader:
    """A file's bytes: mapped, or read with pread (safe from any thread either way)."""

    def __init__(self, path: Path, mapped: bool):
        self._file = open(path, "rb", buffering=0)     # noqa: SIM115  (open while the index is)
        self.size = os.fstat(self._file.fileno()).st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if mapped and self.size else None

    def read(self, at: int, n: int) -> bytes:
        if self._map is not None:
            return self._map[at:at + n]
        return os.pread(self._file.fileno(), max(0, min(n, self.size - at)), at)


def write_keys(data: bytes, sa: np.ndarray, stride: int, path: Path) -> None:
    """The first 8 bytes of every ``stride``-th suffix as a big-endian integer (zeros past the end),
    written 256k rows at a time."""
    text = np.frombuffer(data, np.uint8)
    n = len(text)
    windows = np.lib.stride_tricks.as_strided(text, (max(0, n - 7), 8), (1, 1))   # the 8 bytes at each start
    with open(path, "wb") as f:
        for a in range(0, len(sa), stride << 18):
            rows = sa[a:a + (stride << 18):stride]
            key = np.zeros((len(rows), 8), np.uint8)
            inside = rows <= n - 8
            key[inside] = windows[rows[inside]]
            for r in np.flatnonzero(~inside):                # the last 7 suffixes: shorter than 8 bytes
                tail = text[rows[r]:]
                key[r, :len(tail)] = tail
            f.write(key.view(">u8").ravel().astype(np.uint64).tobytes())


def extend(read, size: int, q: bytes, i: int, p: int, k: int) -> int:
    """How many bytes of q[i:] match the text (``read(at, n)``, ``size`` bytes) at p, counting from k."""
    limit = min(len(q) - i, size - p)
    while k < limit:
        n = min(_EXTEND, limit - k)
        got, want = read(p + k, n), q[i + k:i + k + n]
        if got == want:
            k += n
            continue
        j = 0
        while got[j] == want[j]:
            j += 1
        return k + j
    return k


class Part:
    """The suffix array of text[start:end] (``sa``: int32 rows; ``coarse``: every STRIDE-th row's key, in
    memory; ``fine``: every FINE-th row's key, on disk)."""

    def __init__(self, text: Reader, start: int, end: int, sa: Reader, coarse: np.ndarray, fine: Reader):
        self.start, self.size, self._text, self._sa = start, end - start, text, sa
        self._coarse, self._fine = array("Q", coarse.astype(np.uint64).tobytes()), fine   # bisect reads it in C
        self.rows = sa.size // 4
        self._cache: tuple[int, list[int] | None] = (0, None)   # the last window's rows, for the neighbours

    def _row(self, row: int) -> int:
        base, rows = self._cache
        if rows is not None and base <= row < base + len(rows):
            return rows[row - base]
        return int.from_bytes(self._sa.read(4 * row, 4), "little")

    def _at(self, p: int, n: int) -> bytes:
        """n bytes of the part's text from p (fewer at its end)."""
        return self._text.read(self.start + p, min(n, self.size - p))

    def _window(self, key: bytes) -> tuple[int, int]:
        """Rows [a, b) where the first suffix >= ``key`` and the first > ``key`` lie (``key`` of 8 bytes or
        more, compared from depth 0); their text positions are read at once when they are few."""
        a, b = 0, self.rows
        if len(key) >= 8 and len(self._coarse):
            k = int.from_bytes(key[:8], "big")
            a1, b1 = bisect_left(self._coarse, k), bisect_right(self._coarse, k)
            a, b = max(a, (a1 - 1) * STRIDE + 1 if a1 else 0), min(b, b1 * STRIDE)
            per = STRIDE // FINE
            if b1 - a1 <= 4:                 # the fine keys between the two coarse ones: one short read
                e0, e1 = max(0, a1 - 1) * per, min(self._fine.size // 8, b1 * per + 1)
                fine = array("Q", self._fine.read(8 * e0, 8 * (e1 - e0)))
                a2, b2 = e0 + bisect_left(fine, k), e0 + bisect_right(fine, k)
                a, b = max(a, (a2 - 1) * FINE + 1 if a2 else 0), min(b, b2 * FINE)
        lo, hi = max(0, a - 1), min(self.rows, b + 1)            # and the neighbours on either side
        if hi - lo <= _FEW:
            self._cache = (lo, array("i", self._sa.read(4 * lo, 4 * (hi - lo))).tolist())
        return a, b

    def _bound(self, key: bytes, depth: int, a: int, b: int, strict: bool) -> int:
        """The first row in [a, b) whose block at ``depth`` is >= key (> key when ``strict``)."""
        width = len(key)
        while a < b:
            mid = (a + b) // 2
            block = self._at(self._row(mid) + depth, width)
            if block < key or (strict and block == key):
                a = mid + 1
            else:
                b = mid
        return a

    def match(self, q: bytes, i: int, hint: int, floor: int = 0) -> tuple[int, int]:
        """(length, position in the part) of a longest match of q[i:] in the part; ``hint`` is a position
        whose continuation is tried first (the previous position's match, one character on). With
        ``floor``, a match found elsewhere: when none here is longer, what is returned may fall short of
        this part's longest (which is then at most ``floor``)."""
        best, where = 0, -1
        if hint >= 0:
            best, where = self.extend(q, i, hint, 0), hint
        top = max(best, floor)
        if top == len(q) - i:                            # the copy runs to the end: nothing can be longer
            return best, where
        if top >= BLOCK and not self.occurs(q[i:i + top + 1]):   # one search: is any copy longer?
            return best, where                           # (at a seam of two copies one is: search it out)
        lo, hi, depth = 0, self.rows, 0
        while lo < hi and depth < len(q) - i:
            key = q[i + depth:i + depth + BLOCK]
            wlo, whi = self._window(key) if depth == 0 else (lo, hi)
            start = self._bound(key, depth, wlo, whi, False)
            if start < hi and self._at(self._row(start) + depth, len(key)) == key:
                end = self._bound(key, depth, start, whi, True)
                lo, hi, depth = start, end, depth + len(key)    # these suffixes all share the block
                if depth > best:
                    best, where = depth, self._row(lo)
                continue
            for row in (start - 1, start):         # none shares it: a neighbour shares the most of it
                if lo <= row < hi:
                    pos = self._row(row)
                    length = self.extend(q, i, pos, depth)
                    if length > best:
                        best, where = length, pos
            break
        return best, where

    def occurs(self, key: bytes) -> bool:
        """Whether ``key`` occurs in the part."""
        a = self._bound(key, 0, *self._window(key), False)
        return a < self.rows and self._at(self._row(a), len(key)) == key

    def extend(self, q: bytes, i: int, p: int, k: int) -> int:
        """How many bytes of q[i:] match the part's text at p, counting from k."""
        return extend(self._at, self.size, q, i, p, k)
