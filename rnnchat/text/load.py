"""The one module that knows every corpus source: paths, built-ins, corpora/ names, dialogue."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rnnchat.errors import CorpusError
from rnnchat.paths import corpora_dir
from rnnchat.text import labelled
from rnnchat.text.chatterbot import (
    DEFAULT_LANGUAGE,
    SMALLTALK_DOCUMENT,
    chatterbot_conversations,
    conversations_by_topic,
    dialogue_documents,
    dialogue_files,
    language_files,
    topic_documents,
)
from rnnchat.text.corpus import Corpus, CorpusEntry, Document, folder_files, load_path
from rnnchat.text.dialogue import READERS, Conversations, extension, read_transcript
from rnnchat.text.shakespeare import (
    plays_by_kind_documents,
    shakespeare_conversations,
    shakespeare_documents,
    shakespeare_source_size,
    speeches_by_kind,
)


@dataclass(frozen=True)
class Builtin:
    load: Callable[[], tuple[Document, ...]]   # builds the documents (cached by its module; called once)
    source_size: Callable[[], int]            # bytes of the source files, cheap: used for listing


_BUILTINS: dict[str, Builtin] = {
    "dialogues": Builtin(lambda: dialogue_documents(DEFAULT_LANGUAGE),
                         lambda: sum(p.stat().st_size for p in dialogue_files(DEFAULT_LANGUAGE))),
    "shakespeare": Builtin(shakespeare_documents, shakespeare_source_size),
    # Labelled built-ins for classifiers (text/labelled.py): the plays' speeches by the Folio's kind of play,
    # and the dialogues by their topic file.
    "plays-by-kind": Builtin(plays_by_kind_documents, shakespeare_source_size),
    "dialogues-by-topic": Builtin(lambda: topic_documents(DEFAULT_LANGUAGE),
                                  lambda: sum(p.stat().st_size for p in language_files(DEFAULT_LANGUAGE))),
}
# Labelled built-ins: (text, label, group) rows; a group (a play, a conversation) never straddles the split.
_LABELLED: dict[str, Callable[[], tuple[tuple[str, str, str], ...]]] = {
    "plays-by-kind": speeches_by_kind, "dialogues-by-topic": lambda: conversations_by_topic(DEFAULT_LANGUAGE)}
# "PREFIX:PARAM" built-ins, e.g. "dialogues:spanish"; the loader raises CorpusError for a bad PARAM.
_FAMILIES: dict[str, Callable[[str], tuple[Document, ...]]] = {"dialogues": dialogue_documents}


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



def load_corpus(spec: str) -> Corpus:
    """A corpus from a path, a built-in name or a name in corpora_dir(); raises CorpusError."""
    if not spec or not spec.strip():
        raise CorpusError(f"no corpus given: name a file, a folder or a built-in ({', '.join(builtin_names())})")
    if "\0" in spec:
        raise CorpusError("a corpus name or path cannot contain a NUL character")
    path = Path(spec).expanduser()
    if path.exists():
        corpus = load_path(path)
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
        corpus = load_path(found)
    if all(d.blank() for d in corpus.documents):
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
            size = sum(_file_size(p) for _, p in folder_files(child))
            entries.append(CorpusEntry(child.name, "folder", size, str(child.resolve())))
        elif child.is_file():
            entries.append(CorpusEntry(child.name, "file", _file_size(child), str(child.resolve())))
    return entries


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # vanished, or a dangling link
        return 0


def _dialogue_language(corpus: Corpus) -> str | None:
    """The language of a ``dialogues[:LANGUAGE]`` built-in (lower case); None for any other corpus."""
    if corpus.source == "builtin:dialogues" or corpus.source.startswith("builtin:dialogues:"):
        return (corpus.source.partition("builtin:dialogues")[2].lstrip(":") or DEFAULT_LANGUAGE).lower()
    return None


def looks_like_dialogue(corpus: Corpus) -> bool:
    """Whether the corpus is dialogue data (dialogues built-ins, .tsv/.jsonl/.yml files), not prose."""
    return _dialogue_language(corpus) is not None or any(extension(d.name) in READERS for d in corpus.documents)


def editions(corpus: Corpus) -> tuple[Corpus, ...]:
    """The corpus, then the same built-in as an earlier rnnchat read it: the English dialogues before rnnchat's
    own small talk joined them (2026-12-04), so a run trained then still finds its own text."""
    kept = tuple(d for d in corpus.documents if d.name != SMALLTALK_DOCUMENT)
    if _dialogue_language(corpus) is None or len(kept) == len(corpus.documents):
        return (corpus,)
    return corpus, dataclasses.replace(corpus, documents=kept)


def corpus_conversations(corpus: Corpus) -> Conversations:
    """The conversations of any corpus: the plays by scene, chatterbot data, or files by their format."""
    if corpus.source == "builtin:shakespeare":
        return shakespeare_conversations()
    language = _dialogue_language(corpus)
    if language is not None:
        own = any(d.name == SMALLTALK_DOCUMENT for d in corpus.documents)
        return chatterbot_conversations(language, own)[0]
    parsed = Conversations()
    for doc in corpus.documents:
        READERS.get(extension(doc.name), read_transcript)(parsed, doc.name, doc.text)
    return parsed


def corpus_labelled(corpus: Corpus) -> labelled.LabelledSet:
    """The labelled texts of any corpus: a labelled built-in, .tsv/.csv/.jsonl files by their format, and the
    other files of a folder labelled by their top-level subfolder. Not checked (``labelled.check`` does)."""
    out = labelled.LabelledSet()
    builtin = corpus.source.removeprefix("builtin:") if corpus.source.startswith("builtin:") else None
    if builtin is not None:
        rows = _LABELLED.get(builtin)
        if rows is None:
            raise CorpusError(f"the built-in corpus '{builtin}' has no labels: choose "
                                       f"{' or '.join(sorted(_LABELLED))}, or give {labelled.FORMATS}")
        out.texts = [labelled.Labelled(t, label, group, group) for t, label, group in rows()]
        return out
    root = Path(corpus.source)
    single = len(corpus.documents) == 1 and root.is_file()
    fallback = 0
    for doc in corpus.documents:
        text = doc.text
        if corpus.invalid_bytes and "\ufffd" in text:     # read again, so that no character is lost
            text, lines = labelled.read_bytes_mixed(root if single else root / doc.name)
            fallback += lines
        if single or f".{extension(doc.name)}" in labelled.READERS:
            if not labelled.read_labelled_file(out, doc.name, text):
                out.problems.append(f"{doc.name} is not labelled data: give {labelled.FORMATS}")
        else:
            labelled.read_folder_file(out, doc.name, text)
    if fallback:
        out.notes.append(f"{fallback} line(s) were not UTF-8 and were read as Windows-1252 (nothing replaced)")
    return out
