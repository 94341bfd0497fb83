"""The Chat pane's replies on the torch thread: the one ``ChatSession`` (opened for a run, reopened when its
checkpoints change, the conversation kept), retrieval opened for it or, unless chosen in the toolbar, given
up for the model's own replies, the characters the model does not know; and the messages that tell the pane.

The session is created, reset and replies only on the torch thread, whose jobs run in order: a reset queued
after a reply lands after the reply joined the history, and ``ReplyEnded`` comes after the history holds the
exchange, so an export after a reply includes it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterator

from textual.message import Message

from rnnchat import events as ev
from rnnchat.chat.config import DecodeConfig
from rnnchat.errors import RnnchatError
from rnnchat.tui.bridge import Tagged
from rnnchat.tui.torch_thread import RunCache

if TYPE_CHECKING:
    from rnnchat.chat.session import ChatSession
    from rnnchat.runs.opened import OpenedRun
    from rnnchat.sampling import LiveControls


class Unknown(Tagged):
    """Characters of the user's message that the model does not know (read as <unk>)."""

    def __init__(self, tag: str, chars: list[str]) -> None:
        super().__init__(tag)
        self.chars = chars


class ReplyEnded(Tagged):
    """The reply job returned: the exchange is in the session's history."""


class FellBack(Tagged):
    """Retrieval, the default, could not work (``reason``): this reply and the next are the model's own."""

    def __init__(self, tag: str, reason: str) -> None:
        super().__init__(tag)
        self.reason = reason


class Sessions:
    """The pane's session with its chat run. ``noted`` says when a checkpoint was replaced by its previous
    copy, ``post`` and ``phrase`` post a message to the pane and word an error."""

    def __init__(self, noted: Callable[[OpenedRun], OpenedRun], post: Callable[[Message], object],
                 phrase: Callable[[BaseException], str]) -> None:
        self._cache: RunCache[ChatSession] = RunCache()
        self._noted, self._post, self._phrase = noted, post, phrase

    @property
    def current(self) -> ChatSession | None:
        """The session last opened (export reads its history between replies)."""
        return self._cache.value

    def open(self, run: str) -> ChatSession:
        """The session for ``run`` (torch thread only): opened again when its checkpoints changed on disk,
        keeping the conversation; a new one, with no history, for another run."""
        from rnnchat.chat.session import ChatSession
        from rnnchat.runs.opened import open_chat_model

        session, replaced = self._cache.get(run, lambda: ChatSession(self._noted(open_chat_model(run))))
        if replaced is not None:
            session.history, session.retriever = replaced.history, replaced.retriever
        return session

    def reply(self, tag: str, run: str, text: str, cfg: DecodeConfig, controls: LiveControls,
              chosen: bool) -> Iterator[ev.Event]:
        """On the torch thread: open the session if needed, mark unknown characters, start the reply.
        Retrieval that cannot work is an error when ``chosen`` in the toolbar, else the model answers."""
        session = self.open(run)
        if cfg.candidates == "retrieval" and session.retriever is None:
            from rnnchat.runs.retrieval import open_retriever

            try:
                session.retriever = open_retriever(session.run.meta, session.run.name)
            except RnnchatError as exc:
                if chosen:
                    raise
                self._post(FellBack(tag, self._phrase(exc)))
                cfg = replace(cfg, candidates="model")
        unknown = session.unknown_chars(text)
        if unknown:
            self._post(Unknown(tag, unknown))
        return session.reply(text, cfg, controls)
