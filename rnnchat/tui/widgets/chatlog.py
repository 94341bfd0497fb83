"""The Chat tab's message list: one bubble per message, yours on the right, the model's on the left.

Every message is untrusted text (yours may hold pasted escape sequences; the model's is whatever it
learnt). It is shown through ``neutralise`` as a ``rich.text.Text``, never parsed as markup, so
``[bold]``, ``[/]``, ESC and NUL appear literally or as visible stand-ins. ``neutralise`` maps one
character to one character, so positions in the original text (the characters the model does not
know, to mark) are positions in the shown text.

A bot message grows while its reply streams (``append``, once per batch of tokens); the log is
anchored to the bottom so it follows the reply until the user scrolls up. When the reply has ended, one
dim word on its bubble's lower edge says where it came from: "retrieved" (a reply of the run's dialogue) or "model"
(the model wrote it); it is not part of the reply's text.
"""

from __future__ import annotations

from typing import ClassVar, Iterable

from rich.text import Text
from textual.containers import Container, VerticalScroll
from textual.widgets import Static

from rnnchat.safetext import neutralise

__all__ = ["ChatLog", "ChatMessage"]

STOPPED = "[stopped]"
TRUNCATED = "[max length]"
PENDING = "\u2026"


class ChatMessage(Static):
    """One message: who wrote it ("you" or "bot"), its raw text and how it ended."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"chatmessage--unknown", "chatmessage--note", "chatmessage--source"}

    def __init__(self, who: str, text: str = "", *, title: str = "", unknown: Iterable[str] = (),
                 pending: bool = False) -> None:
        super().__init__(Text(neutralise(text)), markup=False, classes=f"chat-msg -{who}")
        self._ready = False
        self.who = who
        self.text = text
        """The message as written (not neutralised)."""
        self.unknown: set[str] = set(unknown)
        self.pending = pending
        """A bot message waiting for its first token."""
        self.ending = ""
        """How a bot reply ended: "", "stop", "length", "cancelled" or "failed"."""
        self.source = ""
        """Where a bot reply came from: "retrieved", "model", or "" until it has said."""
        self.border_title = Text(neutralise(title)) if title else None

    def on_mount(self) -> None:
        self._ready = True         # component styles (the marks) can be read from now on
        self._show()

    @property
    def shown(self) -> str:
        """What the message displays, as plain text."""
        return self.build().plain

    def build(self) -> Text:
        text = Text(neutralise(self.text))
        if self.unknown:
            style = self.get_component_rich_style("chatmessage--unknown", partial=True)
            for i, ch in enumerate(self.text):
                if ch in self.unknown:
                    text.stylize(style, i, i + 1)
        note = ""
        if self.ending == "cancelled":
            note = STOPPED
        elif self.ending == "length":
            note = TRUNCATED
        elif self.ending == "failed":
            note = "[failed]"
        elif self.pending and not self.text:
            note = PENDING
        if note:
            style = self.get_component_rich_style("chatmessage--note", partial=True)
            text.append((" " if self.text else "") + note, style=style)
        return text

    def _show(self) -> None:
        if self._ready:
            self.update(self.build())
            if self.source:
                style = self.get_component_rich_style("chatmessage--source", partial=True)
                self.border_subtitle = Text(neutralise(self.source), style=style)

    def append(self, text: str) -> None:
        if text:
            self.text += text
            self._show()

    def mark_unknown(self, chars: Iterable[str]) -> None:
        self.unknown |= set(chars)
        self._show()

    def finish(self, ending: str) -> None:
        self.pending = False
        self.ending = ending
        self._show()

    def mark_source(self, source: str) -> None:
        """Say where the reply came from (``SampleDone.source``)."""
        self.source = source
        self._show()


class ChatLog(VerticalScroll):
    """The conversation, oldest first, following the newest message; ``user`` and ``bot`` are the two
    messages of the latest exchange."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.user: ChatMessage | None = None
        self.bot: ChatMessage | None = None

    def on_mount(self) -> None:
        self.anchor()

    @property
    def messages(self) -> list[ChatMessage]:
        return list(self.query(ChatMessage).results(ChatMessage))

    def add(self, who: str, text: str = "", *, title: str = "", unknown: Iterable[str] = (),
            pending: bool = False) -> ChatMessage:
        message = ChatMessage(who, text, title=title, unknown=unknown, pending=pending)
        self.mount(Container(message, classes=f"chat-row -{who}"))
        self.anchor()          # a new message of yours or a new reply brings the log to the bottom
        return message

    def clear_messages(self) -> None:
        self.user = self.bot = None
        self.remove_children()

    def start_exchange(self, text: str, bot_title: str) -> None:
        """Your message, and the model's reply to it, pending."""
        self.user = self.add("you", text, title="you")
        self.bot = self.add("bot", "", title=bot_title, pending=True)

    def grow_reply(self, text: str, ending: str | None = None, source: str = "") -> None:
        """More of the reply; ``ending`` (and ``source``, where it came from) when it ended with this."""
        if self.bot is not None:
            self.bot.pending = False
            self.bot.append(text)
            if source:
                self.bot.mark_source(source)
            if ending is not None:
                self.bot.finish(ending)

    def end_reply(self, ending: str, *, unless_ended: bool = False) -> None:
        if self.bot is not None and not (unless_ended and self.bot.ending):
            self.bot.finish(ending)

    def mark_unknown(self, chars: Iterable[str]) -> None:
        """Mark characters of your latest message that the model does not know."""
        if self.user is not None:
            self.user.mark_unknown(chars)

    @property
    def reply_chars(self) -> int:
        return len(self.bot.text) if self.bot is not None else 0
