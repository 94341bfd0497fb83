"""The built-in 'dialogues': chatterbot-corpus conversations, by language, and rnnchat's own everyday small talk
(``smalltalk/LANGUAGE.yml``, written for rnnchat: greetings, thanks, farewells, feelings, what the bot is), which
chatterbot's topics hold few of."""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path
from typing import Sequence

from rnnchat.errors import CorpusError
from rnnchat.text.corpus import Document
from rnnchat.text.dialogue import Conversations, read_yaml

DEFAULT_LANGUAGE = "english"
SMALLTALK = Path(__file__).with_name("smalltalk")
SMALLTALK_DOCUMENT = "smalltalk"     # the small talk's document in the dialogues corpus


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


def language_files(language: str) -> list[Path]:
    if language not in dialogue_languages():
        _chatterbot_data()  # says to install the package when that is the problem
        raise CorpusError(f"no dialogues in language '{language}': choose one of "
                          f"{', '.join(dialogue_languages())} (as dialogues:LANGUAGE)")
    return sorted((_chatterbot_data() / language).glob("*.yml"))


def dialogue_files(language: str) -> list[Path]:
    """Every file of one language's built-in dialogues: chatterbot's topics, then rnnchat's small talk."""
    own = SMALLTALK / f"{language}.yml"
    return language_files(language) + ([own] if own.is_file() else [])


def _render(turns: Sequence[str]) -> str:
    """A conversation as alternating "A: ..." and "B: ..." lines."""
    # Blank lines inside a turn would read as a conversation break in the transcript layout.
    return "".join(f"{'AB'[i % 2]}: " + re.sub(r"\n{2,}", "\n", t) + "\n" for i, t in enumerate(turns) if t)


@functools.lru_cache(maxsize=None)
def chatterbot_conversations(language: str, own: bool = True) -> tuple[Conversations, tuple[Document, ...]]:
    """One language's conversations for pairs, and its files rendered as A:/B: transcripts for training
    (``own=False``: chatterbot's files alone, the dialogues as runs from before the small talk read them)."""
    parsed, docs = Conversations(), []
    for path in dialogue_files(language) if own else language_files(language):
        convs = read_yaml(parsed, path.name, path.read_text(encoding="utf-8", errors="replace"))
        texts = [_render(c) for c in convs]
        if any(texts):
            name = SMALLTALK_DOCUMENT if path.parent == SMALLTALK else path.stem
            docs.append(Document(name, "\n".join(t for t in texts if t)))
    return parsed, tuple(docs)


def dialogue_documents(language: str) -> tuple[Document, ...]:
    return chatterbot_conversations(language.lower())[1]


MIN_TOPIC_CONVERSATIONS = 4    # a topic file with fewer (english "health" has one) cannot be held out from


def conversations_by_topic(language: str = DEFAULT_LANGUAGE) -> tuple[tuple[str, str, str], ...]:
    """(conversation as an A:/B: transcript, topic file, conversation id) of one language's dialogues."""
    out = []
    for path in language_files(language):
        convs = read_yaml(Conversations(), path.name, path.read_text(encoding="utf-8", errors="replace"))
        texts = [t for t in (_render(c).strip() for c in convs) if t]
        if len(texts) >= MIN_TOPIC_CONVERSATIONS:
            out += [(text, path.stem, f"{path.stem}#{i}") for i, text in enumerate(texts)]
    return tuple(out)


def topic_documents(language: str = DEFAULT_LANGUAGE) -> tuple[Document, ...]:
    """One document per topic file, named TOPIC/TOPIC.yml, its conversations separated by blank lines."""
    topics: dict[str, list[str]] = {}
    for text, topic, _ in conversations_by_topic(language):
        topics.setdefault(topic, []).append(text)
    return tuple(Document(f"{t}/{t}.yml", "\n\n".join(texts) + "\n") for t, texts in sorted(topics.items()))
