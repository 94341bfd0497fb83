"""Corpora: read a text file, a folder of text files or a built-in into documents; stats; train/val split.

A corpus spec resolves in this order: an existing path, a built-in name, a name inside ``corpora_dir()``
(also tried with ``.txt`` appended). Text is decoded as UTF-8 with undecodable bytes replaced (and
counted), a leading BOM stripped and line endings normalised to ``\\n``.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rnnchat.errors import CorpusError
from rnnchat.text import utf8

_SNIFF_BYTES = 8192           # how much of a file the binary check looks at
# A folder is walked within bounds, so a path that names a whole disk fails at once rather than reading it.
MAX_FOLDER_FILES = 100_000
MAX_FOLDER_DEPTH = 32
MAX_FOLDER_BYTES = 16 << 30
_BINARY_BAD_SHARE = 0.30      # more than this share of invalid bytes / control characters means binary


class Document:
    """One text of a corpus: its name (the relative path for folder files, the file name for a single file,
    the play's slug for built-ins) and its text.

    A file's text is kept as its UTF-8 bytes (``Document.of_utf8``): a str would take 2 or 4 bytes a
    character beyond Latin-1, and the hash, the split, the tokenizers and the copy index read the bytes
    in pieces (``slice``, ``pieces``, ``utf8_span``). ``text`` decodes the whole text at each use."""

    __slots__ = ("name", "chars", "_text", "_utf8", "_offsets")

    def __init__(self, name: str, text: str):
        self._set(name, len(text), text, None, None)

    @classmethod
    def of_utf8(cls, name: str, data: bytes | bytearray) -> Document:
        """A document held as ``data``, which must be valid UTF-8 (``utf8.repair`` makes it so)."""
        doc = cls.__new__(cls)
        offsets = utf8.Offsets(data)
        doc._set(name, offsets.chars, None, data, offsets)
        return doc

    def _set(self, name, chars, text, data, offsets) -> None:
        for key, value in (("name", name), ("chars", chars), ("_text", text), ("_utf8", data),
                           ("_offsets", offsets)):
            object.__setattr__(self, key, value)

    def __setattr__(self, key, value):
        raise AttributeError("a Document cannot be changed")

    @property
    def text(self) -> str:
        return self._text if self._utf8 is None else self._utf8.decode("utf-8")

    @property
    def utf8(self) -> bytes | bytearray:
        """The text's UTF-8 bytes (lone surrogates, which only JSON or YAML escapes make, kept as such)."""
        return self._text.encode("utf-8", "surrogatepass") if self._utf8 is None else self._utf8

    def _byte(self, char: int) -> int:
        return self._offsets.byte(self._utf8, char)

    def slice(self, start: int, end: int) -> str:
        """``text[start:end]`` for 0 <= start <= end <= chars, without decoding the rest."""
        if self._utf8 is None:
            return self._text[start:end]
        return self._utf8[self._byte(start):self._byte(end)].decode("utf-8")

    def utf8_span(self, start: int, end: int) -> memoryview:
        """The UTF-8 bytes of ``text[start:end]`` (lone surrogates replaced with "?", as the copy index
        wants): a view of the held bytes, or the piece encoded for a document held as a str."""
        if self._utf8 is None:
            return memoryview(self._text[start:end].encode("utf-8", "replace"))
        return memoryview(self._utf8)[self._byte(start):self._byte(end)]

    def pieces(self, start: int = 0, end: int | None = None, size: int = 1 << 20):
        """``text[start:end]`` as consecutive strings of at most ``size`` characters (of about ``size``
        bytes for a document held as bytes): a pass over a huge text that never decodes all of it."""
        end = self.chars if end is None else end
        if self._utf8 is None:
            for a in range(start, end, size):
                yield self._text[a:min(end, a + size)]
            return
        data, a, stop = self._utf8, self._byte(start), self._byte(end)
        while a < stop:
            b = stop if stop - a <= size else utf8.char_start_before(data, a + size)
            yield data[a:b].decode("utf-8")
            a = b

    def blank(self) -> bool:
        """Empty, or only whitespace."""
        return all(p.isspace() for p in self.pieces()) if self.chars else True

    def __eq__(self, other) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return self.name == other.name and self.chars == other.chars and self.utf8 == other.utf8

    def __hash__(self) -> int:
        return hash((self.name, self.chars))

    def __repr__(self) -> str:
        shown = self.slice(0, min(self.chars, 40))
        return f"Document({self.name!r}, {shown!r}{'...' if self.chars > 40 else ''})"

    def __reduce__(self):                         # copies and pickles (setattr is refused)
        return (_document, (self.name, self._text, self._utf8))


def _document(name: str, text: str | None, data: bytes | None) -> Document:
    return Document(name, text) if data is None else Document.of_utf8(name, data)


@dataclass(frozen=True)
class Corpus:
    name: str                      # display name: built-in name, or file/folder name
    source: str                    # "builtin:<name>" or the absolute path
    documents: tuple[Document, ...]
    invalid_bytes: int = 0         # undecodable UTF-8 bytes replaced with U+FFFD
    skipped: tuple[str, ...] = ()  # folder files left out, with the reason, e.g. "img.png (binary)"
    duplicates: int = 0            # folder files left out because an identical one (or its link) was read

    @property
    def chars(self) -> int:
        return sum(d.chars for d in self.documents)

    def content_hash(self) -> str:
        """SHA-256 over document names and texts; a stable cache key. Computed once per instance."""
        cached = self.__dict__.get("_content_hash")  # frozen blocks setattr, not the instance dict
        if cached is None:
            h = hashlib.sha256(b"rnnchat-corpus-v1\0")
            for doc in self.documents:      # a file's document hashes its bytes as held: no copy
                name, text = doc.name.encode("utf-8"), doc.utf8
                h.update(f"{len(name)}:{len(text)}:".encode("ascii"))
                h.update(name)
                h.update(text)
            cached = self.__dict__["_content_hash"] = h.hexdigest()
        return cached

    def warnings(self) -> list[str]:
        out: list[str] = []
        if self.invalid_bytes:
            n = self.invalid_bytes
            out.append(f"{n} invalid UTF-8 byte{'s' if n != 1 else ''} replaced with U+FFFD.")
        if self.skipped:
            shown = ", ".join(self.skipped[:10])
            more = f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            n = len(self.skipped)
            out.append(f"Skipped {n} file{'s' if n != 1 else ''}: {shown}{more}.")
        if self.duplicates:
            n = self.duplicates
            out.append(f"Dropped {n} duplicate document{'s' if n != 1 else ''} (the same text as a file already "
                       "read, or a link to one), so no text is both trained on and held out.")
        return out


@dataclass(frozen=True)
class CorpusEntry:
    name: str          # what to pass to load_corpus
    kind: str          # "built-in" | "file" | "folder"
    size: int          # bytes
    path: str | None   # None for built-ins
    note: str = ""     # e.g. that a built-in's size is that of its source files


@dataclass(frozen=True)
class CorpusStats:
    chars: int
    documents: int
    distinct_chars: int
    lines: int
    words: int                               # whitespace-separated, as str.split() counts them
    top_chars: tuple[tuple[str, int], ...]   # the most frequent characters, most frequent first
    preview: str                             # the start of the first document


# ---------------------------------------------------------------------------------------------- reading

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _is_binary(head: bytes) -> bool:
    if b"\0" in head:
        return True
    if not head:
        return False
    text, bad = utf8.decode(head, final=len(head) < _SNIFF_BYTES)  # a cut multi-byte character is not bad
    bad += len(_CONTROL_RE.findall(text))
    return bad > _BINARY_BAD_SHARE * len(head)


def _read_text(path: Path) -> tuple[bytes | bytearray, int]:
    """Read one text file: (its text as valid UTF-8 bytes, invalid bytes replaced). Raises OSError, or
    ValueError for a binary file."""
    data = path.read_bytes()
    if _is_binary(data[:_SNIFF_BYTES]):
        raise ValueError("binary")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b"\r" in data:
        # Line endings are normalised on the bytes (a CR byte is never part of a multi-byte character),
        # one step at a time: at most two copies alive.
        data = data.replace(b"\r\n", b"\n")
        if b"\r" in data:
            data = data.replace(b"\r", b"\n")
    return utf8.repair(data)


def _load_file(path: Path) -> Corpus:
    try:
        data, bad = _read_text(path)
    except ValueError:
        raise CorpusError(f"{path} is a binary file, not text") from None
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror or e}") from None
    return Corpus(path.name, str(path.resolve()), (Document.of_utf8(path.name, data),), bad)


def folder_files(root: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of the non-hidden files under root, sorted by relative path; a folder
    past MAX_FOLDER_FILES files or MAX_FOLDER_DEPTH levels is refused (CorpusError)."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # hidden folders are not walked
        rel_dir = Path(dirpath).relative_to(root)
        if dirnames and len(rel_dir.parts) >= MAX_FOLDER_DEPTH:
            raise CorpusError(f"{root} has folders more than {MAX_FOLDER_DEPTH} levels deep; name the folder "
                              "that holds your texts")
        for name in filenames:
            if not name.startswith("."):
                p = Path(dirpath, name)
                found.append((p.relative_to(root).as_posix(), p))
        if len(found) > MAX_FOLDER_FILES:
            raise CorpusError(f"{root} holds more than {MAX_FOLDER_FILES:,} files; name the folder that holds "
                              "your texts")
    return sorted(found)


def _load_folder(root: Path) -> Corpus:
    docs: list[Document] = []
    skipped: list[str] = []
    bad_total = total_bytes = duplicates = 0
    seen_files: set[str] = set()
    seen_texts: set[bytes] = set()
    for rel, path in folder_files(root):
        if not path.is_file():
            skipped.append(f"{rel} (not a regular file)")
            continue
        real = os.path.realpath(path)
        if real in seen_files:          # a link to a file already read
            duplicates += 1
            continue
        seen_files.add(real)
        total_bytes += path.stat().st_size
        if total_bytes > MAX_FOLDER_BYTES:
            raise CorpusError(f"{root} holds more than {MAX_FOLDER_BYTES >> 30} GiB of files; name the folder "
                              "that holds your texts")
        try:
            data, bad = _read_text(path)
        except ValueError:
            skipped.append(f"{rel} (binary)")
            continue
        except OSError as e:
            skipped.append(f"{rel} (unreadable: {e.strerror or e})")
            continue
        if not data:
            skipped.append(f"{rel} (empty)")
            continue
        digest = hashlib.sha256(data).digest()
        if digest in seen_texts:        # a copy: trained and held out at once, it would leak validation
            duplicates += 1
            continue
        seen_texts.add(digest)
        docs.append(Document.of_utf8(rel, data))
        bad_total += bad
    return Corpus(root.name, str(root.resolve()), tuple(docs), bad_total, tuple(skipped), duplicates)


def load_path(path: Path) -> Corpus:
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        return _load_file(path)
    raise CorpusError(f"{path} is neither a regular file nor a folder")


# --------------------------------------------------------------------------------------------- built-ins


# ------------------------------------------------------------------------------------------ public API


def corpus_stats(corpus: Corpus, top: int = 10, preview_chars: int = 400) -> CorpusStats:
    """Counts over the whole corpus; vectorised with numpy, so 100 MB takes seconds."""
    import numpy as np

    space_table = np.zeros(0x110000, dtype=bool)
    space_table[[c for c in range(0x3001) if chr(c).isspace()]] = True  # no whitespace lies above U+3000
    counts = np.zeros(128, dtype=np.int64)
    lines = words = 0
    for doc in corpus.documents:
        prev_space = True
        for text in doc.pieces(size=1 << 22):  # pieces bound the memory a huge document needs
            lines += text.count("\n")
            codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            binc = np.bincount(codes)
            if len(binc) > len(counts):
                counts = np.pad(counts, (0, len(binc) - len(counts)))
            counts[: len(binc)] += binc
            space = space_table[codes]
            words += int(np.count_nonzero(~space[1:] & space[:-1])) + int(prev_space and not space[0])
            prev_space = bool(space[-1])
        lines += 1 if doc.chars and doc.slice(doc.chars - 1, doc.chars) != "\n" else 0
    present = np.flatnonzero(counts)
    order = present[np.argsort(-counts[present], kind="stable")][:top]
    return CorpusStats(
        chars=corpus.chars,
        documents=len(corpus.documents),
        distinct_chars=len(present),
        lines=lines,
        words=words,
        top_chars=tuple((chr(int(c)), int(counts[c])) for c in order),
        preview=corpus.documents[0].slice(0, min(preview_chars, corpus.documents[0].chars))
        if corpus.documents else "",
    )
