"""What share of a sample is copied from the training text: suffix arrays over the text's UTF-8 bytes.

``NoveltyIndex.build`` writes the training text as bytes and suffix arrays over it (libdivsufsort through
pydivsufsort: seconds for 100 MB, 4 bytes per byte of text) into a folder of the cache; ``open`` opens
them for reading (``suffixes.py`` searches them). A text over 16 MB is indexed as 4 overlapping parts,
one suffix array each, so that building needs 5 bytes per byte of a quarter of the text rather than of
all of it (for 100 MB: 120 MB rather than 450 MB); queries search every part. ``measure(sample)``
reports the longest span of the sample found verbatim in the text and the share of its 20-character
windows that occur there, by a binary search of the suffix arrays at every position of the sample (a
UTF-8 match of a valid string is a character match: no match can start inside a character). Parts
overlap by 1 MB, so every copy up to 1 MB long lies whole in one part: figures are exact for such
copies, and a longer one counts for at least 1 MB.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnchat.paths import cache_dir, make_private_dir
from rnnchat.text.corpus import Corpus, Document
from rnnchat.text.split import split_spans
from rnnchat.text.suffixes import FINE, STRIDE, Part, Reader, extend, write_keys

WINDOW = 20                    # characters: a window that occurs in the text counts as copied
_FORMAT = 3                    # 2: spans joined by 0xFF, not NUL; 3: the suffix array in parts
_PART_MIN = 16 << 20           # bytes of text indexed as one part
_PARTS = 4                     # a larger text is cut into this many parts ...
_PART_MAX = 1 << 30            # ... of at most this many bytes (more parts past 4 GB)
_OVERLAP = 1 << 20             # bytes each part shares with the next
_MAP_MAX = 64 << 20            # an index this small is memory-mapped (faster); a larger one is read with pread
_SEPARATOR = b"\xff"           # never in UTF-8, so no match crosses from one span into the next


@dataclass(frozen=True)
class Novelty:
    longest_copy: int          # characters of the longest span of the sample found verbatim in the text
    copied_share: float        # share of the sample's 20-character windows that occur in the text (0..1)
    windows: int               # how many windows the sample has (0 when shorter than 20 characters)
    spans: tuple[tuple[int, int], ...] = ()   # (start, end) character spans of the copied windows, merged

    def to_dict(self) -> dict:
        return {"longest_copy": self.longest_copy, "copied_share": self.copied_share}


def _parts(n: int) -> list[tuple[int, int]]:
    """(start, end) byte ranges of the parts of an ``n``-byte text: each shares _OVERLAP bytes with the next."""
    size = min(_PART_MAX, max(_PART_MIN, math.ceil(n / _PARTS)))
    return [(a, min(n, a + size + _OVERLAP)) for a in range(0, n, size)] if n > size else ([(0, n)] if n else [])


class NoveltyIndex:
    def __init__(self, path: Path, text: Reader, parts: list[Part]):
        self.path, self._text, self._parts = path, text, parts

    @classmethod
    def build(cls, spans, path: Path) -> "NoveltyIndex":
        """Index the (text, start, end) ``spans`` (``text`` a Document or a str; start and end in characters)
        joined by a byte that UTF-8 never holds (so no match crosses from one span into the next, whatever
        the text holds), written piece by piece: no copy of the text is made. A build that fails leaves no
        temporary folder behind."""
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
                doc = text if isinstance(text, Document) else Document("", text)
                for start in range(a, b, 1 << 22):
                    f.write(doc.utf8_span(start, min(b, start + (1 << 22))))
                f.write(_SEPARATOR)
        parts = _parts((tmp / "text.bin").stat().st_size)
        with open(tmp / "text.bin", "rb") as f:
            for k, (a, b) in enumerate(parts):
                f.seek(a)
                data = f.read(b - a)             # one part in memory at a time, with its suffix array
                sa = np.asarray(pydivsufsort.divsufsort(data), dtype=np.int32)
                write_keys(data, sa, STRIDE, tmp / f"coarse-{k}.bin")
                write_keys(data, sa, FINE, tmp / f"fine-{k}.bin")
                del data
                sa.tofile(tmp / f"sa-{k}.bin")
                del sa
        (tmp / "meta.json").write_text(json.dumps({"format": _FORMAT, "parts": parts}), encoding="utf-8")

    @classmethod
    def open(cls, path: Path) -> "NoveltyIndex":
        """Open a built index; ``DamagedIndex`` when its files are not the ones ``build`` writes."""
        meta = _checked_meta(path)
        files = [path / "text.bin"] + [path / f"sa-{k}.bin" for k in range(len(meta["parts"]))]
        mapped = sum(f.stat().st_size for f in files) <= _MAP_MAX
        text = Reader(path / "text.bin", mapped)
        parts = [Part(text, a, b, Reader(path / f"sa-{k}.bin", mapped),
                      np.fromfile(path / f"coarse-{k}.bin", np.uint64), Reader(path / f"fine-{k}.bin", mapped))
                 for k, (a, b) in enumerate(meta["parts"])]
        return cls(path, text, parts)

    # ---- queries ------------------------------------------------------------------------------

    def _matched(self, q: bytes, starts: list[int]) -> np.ndarray:
        """Bytes of q matched in the text from each character on: the longest match over the parts (one
        that reaches a part's end carried on in the whole text). Each part first follows its match for the
        previous character; the longest so far spares the other parts a search when none is longer there."""
        matched = np.zeros(len(starts) - 1, np.int64)
        hints = [-1] * len(self._parts)
        for j, i in enumerate(starts[:-1]):
            step, longest = starts[j + 1] - i, 0
            for k in sorted(range(len(hints)), key=lambda k: hints[k] < 0):      # the parts with a hint first
                part = self._parts[k]
                length, where = part.match(q, i, hints[k], longest)
                if where >= 0 and where + length == part.size:    # the copy may go on in the next part
                    length = extend(self._text.read, self._text.size, q, i, part.start + where, length)
                longest = max(longest, length)
                hints[k] = where + step if length > step and where + step < part.size else -1
            matched[j] = longest
        return matched

    def measure(self, sample: str) -> Novelty:
        q = sample.encode("utf-8", "replace")
        starts = []                                # byte offset of every character of the sample
        pos = 0
        for ch in sample:
            starts.append(pos)
            pos += len(ch.encode("utf-8", "replace"))
        starts.append(pos)
        matched = self._matched(q, starts)          # bytes matched from each character on
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


class DamagedIndex(ValueError):
    """A cached index whose files are missing, cut short or not of this format."""


def _checked_meta(path: Path) -> dict:
    """The index's meta.json, once every file it implies is there at the size ``build`` writes."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        parts = meta["parts"]
        size = (path / "text.bin").stat().st_size
        ok = meta.get("format") == _FORMAT and isinstance(parts, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, int) for x in p) and 0 <= p[0] < p[1] <= size
            for p in parts)
        for k, (a, b) in enumerate(parts if ok else []):
            n = b - a
            ok = ok and (path / f"sa-{k}.bin").stat().st_size == 4 * n \
                and (path / f"coarse-{k}.bin").stat().st_size == 8 * -(-n // STRIDE) \
                and (path / f"fine-{k}.bin").stat().st_size == 8 * -(-n // FINE)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedIndex(f"the copy index at {path} is damaged ({exc})") from None
    if not ok:
        raise DamagedIndex(f"the copy index at {path} is damaged (its files are not the sizes it lists)")
    return meta


def open_cached(path: Path) -> NoveltyIndex | None:
    """The cached index at ``path``, or None when there is none; a damaged one is removed, to be built again."""
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        return NoveltyIndex.open(path)
    except DamagedIndex:
        shutil.rmtree(path, ignore_errors=True)
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        return None


def index_path(corpus_hash: str, val_fraction: float) -> Path:
    """Where the index of a corpus's training split lives in the cache (beside its token arrays)."""
    key = hashlib.sha256(f"novelty-v{_FORMAT}|{corpus_hash}|{val_fraction:.6f}".encode()).hexdigest()[:24]
    return cache_dir() / f"novelty-{key}"


def training_index(corpus: Corpus, val_fraction: float) -> NoveltyIndex:
    """The index of the corpus's training split: from the cache, or built (and cached) now."""
    path = index_path(corpus.content_hash(), val_fraction)
    cached = open_cached(path)
    if cached is not None:
        return cached
    train, _ = split_spans(corpus, val_fraction)
    return NoveltyIndex.build([(corpus.documents[i], a, b) for i, a, b in train], path)
