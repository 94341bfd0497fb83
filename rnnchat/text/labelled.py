"""Labelled texts for a classifier, from any labelled corpus, and their split.

Sources: a folder of folders (each top-level subfolder a label, each file under it one text), ``.tsv`` and
``.csv`` files (a text and a label column, with a header naming them or without one), ``.jsonl`` files
(``{"text": ..., "label": ...}`` per line), and the built-ins registered in ``text/load.py``. Every text
belongs to a group (its document: a play, a conversation, a file, a row); the split keeps a group, and any
texts identical to its own, on one side, and holds out about the same share of every label.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rnnchat.errors import CorpusError

MAX_LABELS = 200               # more are not classes but ids; a 200-way head is already a large output layer
MIN_PER_LABEL = 2              # one text on each side of the split, at the least
FORMATS = ("a folder of folders (each subfolder a label, each file a text), a .tsv or .csv file with a text "
           "and a label column, or a .jsonl file with \"text\" and \"label\" per line")
_TEXT_NAMES = ("text", "sentence", "review", "content", "document", "body", "message", "comment", "tweet")
_LABEL_NAMES = ("label", "class", "category", "sentiment", "topic", "target", "tag", "kind", "y")
_MAX_SHOWN = 5


@dataclass(frozen=True)
class Labelled:
    text: str
    label: str
    group: str                 # the document it comes from: texts of one group never straddle the split
    where: str = ""            # "file line 7", for messages


@dataclass
class LabelledSet:
    texts: list[Labelled] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # what was read differently from how it was written
    problems: list[str] = field(default_factory=list)   # refusals: each one line

    def labels(self) -> list[str]:
        return sorted({t.label for t in self.texts})

    def counts(self) -> Counter:
        return Counter(t.label for t in self.texts)


def decode_mixed(data: bytes) -> tuple[str, int]:
    """Bytes as text, line by line: UTF-8, or Windows-1252 for a line that is not UTF-8 (nothing replaced);
    returns the text and the number of such lines."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8").replace("\r\n", "\n"), 0
    except UnicodeDecodeError:
        pass
    lines, fallback = [], 0
    for line in data.split(b"\n"):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("cp1252", errors="replace") if _cp1252_ok(line) else line.decode("latin-1"))
            fallback += 1
    return "\n".join(lines).replace("\r", ""), fallback


def _cp1252_ok(line: bytes) -> bool:
    return not any(b in line for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D))    # the five bytes cp1252 leaves undefined


# ------------------------------------------------------------------------------------------ readers


def read_delimited(out: LabelledSet, name: str, text: str) -> None:
    """A .tsv or .csv file: a header naming the text and label columns, or two columns without one."""
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        out.problems.append(f"{name} has no rows")
        return
    head = [c.strip().lower() for c in rows[0]]
    text_col = next((head.index(n) for n in _TEXT_NAMES if n in head), None)
    label_col = next((head.index(n) for n in _LABEL_NAMES if n in head), None)
    first = 1
    if text_col is None or label_col is None:
        if text_col is not None or label_col is not None or len(rows[0]) != 2:
            missing = "text" if text_col is None else "label"
            out.problems.append(f"{name} has no {missing} column: name it in a header row ({missing} column "
                                f"names: {', '.join(_TEXT_NAMES if missing == 'text' else _LABEL_NAMES)}), or give "
                                f"two columns, a text and a label, without a header")
            return
        # Two unnamed columns: the label is the one with fewer distinct values, the text the other.
        first = 0
        distinct = [len({r[i] for r in rows if len(r) == 2}) for i in (0, 1)]
        label_col = 0 if distinct[0] < distinct[1] else 1
        text_col = 1 - label_col
    width = max(text_col, label_col) + 1
    for i, row in enumerate(rows[first:], start=first + 1):
        if len(row) < width:
            out.problems.append(f"{name} row {i} has {len(row)} column(s); the text and label need {width}")
            continue
        _add(out, row[text_col], row[label_col], f"{name}#{i}", f"{name} row {i}")


def read_jsonl(out: LabelledSet, name: str, text: str) -> None:
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            out.problems.append(f"{name} line {i} is not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict) or "text" not in obj or "label" not in obj:
            out.problems.append(f"{name} line {i} needs an object with \"text\" and \"label\"")
            continue
        label = obj["label"]
        if isinstance(label, bool) or not isinstance(label, (str, int)) or not isinstance(obj["text"], str):
            out.problems.append(f"{name} line {i}: \"text\" must be a string and \"label\" a string or a whole number")
            continue
        _add(out, obj["text"], str(label), f"{name}#{i}", f"{name} line {i}")


READERS = {".tsv": read_delimited, ".csv": read_delimited, ".jsonl": read_jsonl}


def read_labelled_file(out: LabelledSet, name: str, text: str) -> bool:
    """Read ``text`` by its file name's extension; False when it is not a labelled-file format."""
    reader = READERS.get(PurePosixPath(name).suffix.lower())
    if reader is None:
        return False
    reader(out, name, text)
    return True


def read_folder_file(out: LabelledSet, rel: str, text: str) -> None:
    """A file of a folder of folders: its label is its top-level subfolder."""
    parts = PurePosixPath(rel).parts
    if len(parts) < 2:
        out.notes.append(f"{rel} left out: a file beside the label folders has no label")
        return
    _add(out, text, parts[0], rel, rel)


def _add(out: LabelledSet, text: str, label: str, group: str, where: str) -> None:
    label = " ".join(label.split())
    if not label:
        out.problems.append(f"{where} has no label")
        return
    out.texts.append(Labelled(text.strip(), label, group, where))


# ------------------------------------------------------------------------------------------- checks


def check(data: LabelledSet, name: str) -> None:
    """One CorpusError listing what makes ``data`` unusable for training: no texts, empty texts, a label
    with too few texts, too many labels, unreadable rows."""
    from rnnchat.safetext import neutralise

    problems = list(data.problems)
    empty = [t.where for t in data.texts if not t.text]
    if empty:
        problems.append(f"{len(empty)} empty text(s) ({', '.join(empty[:_MAX_SHOWN])}); give them text or "
                        "remove them")
    counts = data.counts()
    if not data.texts and not problems:
        problems.append(f"no labelled texts: give {FORMATS}")
    if len(counts) > MAX_LABELS:
        problems.append(f"{len(counts)} labels, more than {MAX_LABELS}: is the label column the right one?")
    elif counts and len(counts) < 2:
        problems.append(f"only one label ({neutralise(next(iter(counts)))}): a classifier needs two or more")
    few = sorted((n, label) for label, n in counts.items() if n < MIN_PER_LABEL)
    if few:
        shown = ", ".join(f"'{neutralise(label)}' ({n})" for n, label in few[:_MAX_SHOWN])
        problems.append(f"{len(few)} label(s) with fewer than {MIN_PER_LABEL} texts: {shown}; a label needs a "
                        "text to train on and one to hold out")
    if problems:
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        raise CorpusError(f"corpus '{neutralise(name)}': " + "; ".join(neutralise(p) for p in problems[:3]) + more)


# -------------------------------------------------------------------------------------------- split


def split_labelled(texts: list[Labelled], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices): whole groups on one side (texts identical to each other in
    one group too), about ``fraction`` of every label's texts held out, at least one held out and one left
    to train on for every label with two groups or more. A label with one group is refused by name."""
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, t in enumerate(texts):             # union by group name and by identical text
        for key in (("g", t.group), ("t", " ".join(t.text.split()).lower())):
            j = first.setdefault(key, i)
            if j != i:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(find(i), []).append(i)
    by_label: dict[str, list[list[int]]] = {}
    for members in groups.values():
        label = Counter(texts[i].label for i in members).most_common(1)[0][0]
        by_label.setdefault(label, []).append(members)
    import numpy as np  # the split alone needs it: listing corpora (the app's first screen) does not

    rng = np.random.default_rng([seed, 11])
    train, val = [], []
    for label in sorted(by_label):
        gs = sorted(by_label[label])
        if len(gs) < 2:
            from rnnchat.safetext import neutralise
            raise CorpusError(f"every text labelled '{neutralise(label)}' comes from one document (or repeats "
                              "one text), so none can be held out without sharing it with training; give the "
                              "label texts from a second document")
        order = rng.permutation(len(gs))
        total = sum(len(g) for g in gs)
        held = 0
        for k, gi in enumerate(order):
            g = gs[gi]
            if k == 0 or (held + len(g) / 2 <= fraction * total and k < len(gs) - 1):
                val.extend(g)
                held += len(g)
            else:
                train.extend(g)
    return sorted(train), sorted(val)


def read_bytes_mixed(path: Path) -> tuple[str, int]:
    """A file's text with per-line encoding fallback (``decode_mixed``); CorpusError when unreadable."""
    try:
        return decode_mixed(path.read_bytes())
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
