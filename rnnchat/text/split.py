"""Train/validation splits of a corpus, as spans into its documents (no copies of the text)."""

from __future__ import annotations

import math

from rnnchat.text.corpus import Corpus, Document

_WHOLE_DOC_MIN_DOCS = 20      # split by whole documents only with at least this many documents ...


_WHOLE_DOC_MAX_SHARE = 0.05   # ... each at most this share of all characters


_LINE_SNAP_CHARS = 200        # how far a per-document cut may move to land on a line start


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
    return [docs[i].slice(a, b) for i, a, b in train], [docs[i].slice(a, b) for i, a, b in val]


Span = tuple[int, int, int]   # (document index, start, end)


def split_spans(corpus: Corpus, val_fraction: float = 0.1) -> tuple[list[Span], list[Span]]:
    """The split of ``split_documents`` as (document index, start, end) spans into ``corpus.documents``,
    so a large corpus can be split without copying its text."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    docs = [(i, d.chars) for i, d in enumerate(corpus.documents) if d.chars]
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
        cut = _snap_to_line_start(corpus.documents[i], cut, window)
        train.append((i, 0, cut))
        val.append((i, cut, n))
    if not val and total >= 2:  # only 1-character documents: the last one becomes validation
        val.append(train.pop())
    return train, val


def _snap_to_line_start(doc: Document, cut: int, window: int) -> int:
    """The line start nearest to cut within window, keeping both sides non-empty; else cut. Reads only the
    characters around cut."""
    n = doc.chars
    lo, hi = max(0, cut - window - 1), max(cut, min(n - 1, cut + window))
    near = doc.slice(lo, hi)
    before = near.rfind("\n", 0, cut - lo)                  # newline at p -> line starts at p + 1
    after = near.find("\n", cut - lo, hi - lo)
    options = [p + lo + 1 for p in (before, after)
               if p >= 0 and 1 <= p + lo + 1 <= n - 1 and abs(p + lo + 1 - cut) <= window]
    return min(options, key=lambda c: (abs(c - cut), c)) if options else cut
