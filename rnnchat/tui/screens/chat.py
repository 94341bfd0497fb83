"""The Chat tab's place: chat models (seq2seq with attention) arrive with the chat feature."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static


class ChatPane(Container):
    def compose(self) -> ComposeResult:
        yield Static(Text("Chat with a model trained on a genre's dialogue is not built yet.\n"
                          "It will live here: train with `--task chat`, then talk to it.", justify="center"),
                     classes="empty-state")
