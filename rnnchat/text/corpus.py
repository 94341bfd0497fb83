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
import threading
from dataclasses import dataclass
from pathlib import Path

from rnnchat.errors import CorpusError

_SNIFF_BYTES = 8192           # how much of a file the binary check looks at
# A folder is walked within bounds, so a path that names a whole disk fails at once rather than reading it.
MAX_FOLDER_FILES = 100_000
MAX_FOLDER_DEPTH = 32
MAX_FOLDER_BYTES = 16 << 30
_BINARY_BAD_SHARE = 0.30      # more than this share of invalid bytes / control characters means binary


@dataclass(frozen=True)
class Document:
    name: str   # relative path for folder files, file name for a single file, play slug for built-ins
    text: str


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
        return sum(len(d.text) for d in self.documents)

    def content_hash(self) -> str:
        """SHA-256 over document names and texts; a stable cache key. Computed once per instance."""
        cached = self.__dict__.get("_content_hash")  # frozen blocks setattr, not the instance dict
        if cached is None:
            h = hashlib.sha256(b"rnnchat-corpus-v1\0")
            for doc in self.documents:
                name, text = doc.name.encode("utf-8"), doc.text.encode("utf-8", "surrogatepass")
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

_decode_state = threading.local()


def _count_replace(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    _decode_state.count = getattr(_decode_state, "count", 0) + (exc.end - exc.start)
    return "\ufffd", exc.end


codecs.register_error("rnnchat-count-replace", _count_replace)


def _decode(data: bytes, final: bool = True) -> tuple[str, int]:
    """UTF-8 decode like errors="replace"; returns the text and the number of bytes replaced."""
    _decode_state.count = 0
    text = codecs.getincrementaldecoder("utf-8")("rnnchat-count-replace").decode(data, final)
    return text, _decode_state.count


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _is_binary(head: bytes) -> bool:
    if b"\0" in head:
        return True
    if not head:
        return False
    text, bad = _decode(head, final=len(head) < _SNIFF_BYTES)  # a cut multi-byte character is not bad
    bad += len(_CONTROL_RE.findall(text))
    return bad > _BINARY_BAD_SHARE * len(head)


def _read_text(path: Path) -> tuple[str, int]:
    """Read one text file: (text, invalid bytes). Raises OSError, or ValueError for a binary file."""
    data = path.read_bytes()
    if _is_binary(data[:_SNIFF_BYTES]):
        raise ValueError("binary")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if b"\r" in data:
        # Line endings are normalised on the bytes, before decoding: the same result (a CR byte is never
        # part of a multi-byte character), but never two copies of the decoded text, which may take 2 or
        # 4 bytes per character.
        data = data.replace(b"\r\n", b"\n")            # one step at a time: at most two copies alive
        if b"\r" in data:
            data = data.replace(b"\r", b"\n")
    text, bad = _decode(data)
    return text, bad


def _load_file(path: Path) -> Corpus:
    try:
        text, bad = _read_text(path)
    except ValueError:
        raise CorpusError(f"{path} is a binary file, not text") from None
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror or e}") from None
    return Corpus(path.name, str(path.resolve()), (Document(path.name, text),), bad)


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
            text, bad = _read_text(path)
        except ValueError:
            skipped.append(f"{rel} (binary)")
            continue
        except OSError as e:
            skipped.append(f"{rel} (unreadable: {e.strerror or e})")
            continue
        if not text:
            skipped.append(f"{rel} (empty)")
            continue
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
        if digest in seen_texts:        # a copy: trained and held out at once, it would leak validation
            duplicates += 1
            continue
        seen_texts.add(digest)
        docs.append(Document(rel, text))
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
        lines += doc.text.count("\n") + (1 if doc.text and not doc.text.endswith("\n") else 0)
        prev_space = True
        for start in range(0, len(doc.text), 1 << 24):  # chunks bound the memory a huge document needs
            piece = doc.text[start:start + (1 << 24)].encode("utf-32-le", "surrogatepass")
            codes = np.frombuffer(piece, dtype=np.uint32)
            binc = np.bincount(codes)
            if len(binc) > len(counts):
                counts = np.pad(counts, (0, len(binc) - len(counts)))
            counts[: len(binc)] += binc
            space = space_table[codes]
            words += int(np.count_nonzero(~space[1:] & space[:-1])) + int(prev_space and not space[0])
            prev_space = bool(space[-1])
    present = np.flatnonzero(counts)
    order = present[np.argsort(-counts[present], kind="stable")][:top]
    return CorpusStats(
        chars=corpus.chars,
        documents=len(corpus.documents),
        distinct_chars=len(present),
        lines=lines,
        words=words,
        top_chars=tuple((chr(int(c)), int(counts[c])) for c in order),
        preview=corpus.documents[0].text[:preview_chars] if corpus.documents else "",
    )
