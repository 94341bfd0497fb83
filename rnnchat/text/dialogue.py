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

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Sequence

_MAX_PROBLEMS = 5              # malformed records quoted in a report
FORMATS = ("a .tsv file (prompt<TAB>reply per line), a .jsonl file ({\"prompt\": ..., \"reply\": ...} per "
           "line), a chatterbot .yml file, a transcript ('Name: text' per turn) or a built-in "
           "(shakespeare, dialogues, dialogues:LANGUAGE)")


# ------------------------------------------------------------------------------------------ cleaning

_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")   # C0 controls and DEL except "\n" (tabs replaced first)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")            # lone surrogates, from JSON or YAML escapes
_SPACES_RE = re.compile(r" {2,}")
_SPACE_NEWLINE_RE = re.compile(r" *\n *")


def clean_turn(text: str) -> str:
    """Strip, tabs to spaces, control characters dropped, lone surrogates replaced (U+FFFD), space runs
    collapsed; newlines and case kept."""
    text = _CONTROL_RE.sub("", text.replace("\t", " "))
    if _SURROGATE_RE.search(text):
        text = _SURROGATE_RE.sub("\ufffd", text)
    if "  " in text:
        text = _SPACES_RE.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = _SPACE_NEWLINE_RE.sub("\n", text)
    return text.strip()


@dataclass
class Conversations:
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


def merge_speakers(turns: Sequence[tuple[str, str]]) -> list[str]:
    """Texts of (speaker, text) turns, consecutive turns by the same speaker joined into one."""
    return ["\n".join(t for _, t in run if t) for _, run in itertools.groupby(turns, key=lambda t: t[0])]


# ------------------------------------------------------------------------------------- TSV and JSONL

_HEADER_WORDS = {"prompt", "reply", "input", "output", "question", "answer", "query", "response", "context",
                 "source", "target", "q", "a", "user", "bot", "assistant", "human", "message"}
_ESCAPE_RE = re.compile(r"\\([\\tn])")
_ESCAPES = {"\\": "\\", "t": "\t", "n": "\n"}


def _read_tsv(out: Conversations, name: str, text: str) -> None:
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


def _read_jsonl(out: Conversations, name: str, text: str) -> None:
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


def read_transcript(out: Conversations, name: str, text: str) -> None:
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
        out.add(merge_speakers([(who, "\n".join(said)) for who, said in turns]))
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

def read_yaml(out: Conversations, name: str, text: str) -> list[tuple[str, ...]]:
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


# -------------------------------------------------------------------------------------- shakespeare


# ------------------------------------------------------------------------------------------- pairs

READERS = {"tsv": _read_tsv, "jsonl": _read_jsonl, "yml": read_yaml, "yaml": read_yaml}


def extension(name: str) -> str:
    return PurePosixPath(name).suffix[1:].lower()


