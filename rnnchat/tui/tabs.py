"""The app's tabs: their order, titles and panes. A tab's pane is made, and its module imported, the first
time the tab is wanted, so the first screen composes and styles one pane, not seven, and imports none of
the others' modules (the Inspect pane's bring numpy)."""

from __future__ import annotations

import importlib
from typing import Callable

from textual.app import ComposeResult
from textual.widget import AwaitMount, Widget
from textual.widgets import TabPane

TABS = ("corpus", "train", "generate", "runs", "chat", "inspect", "classify")
_PANES = {
    "corpus": ("rnnchat.tui.panes.corpus", "CorpusPane"),
    "train": ("rnnchat.tui.panes.train", "TrainPane"),
    "generate": ("rnnchat.tui.panes.generate.pane", "GeneratePane"),
    "runs": ("rnnchat.tui.panes.runs", "RunsPane"),
    "chat": ("rnnchat.tui.panes.chat.pane", "ChatPane"),
    "inspect": ("rnnchat.tui.panes.inspect.pane", "InspectPane"),
    "classify": ("rnnchat.tui.panes.classify", "ClassifyPane"),
}


def title(tab: str) -> str:
    """What the tab bar calls ``tab``: its key and its name ("3 Generate")."""
    return f"{TABS.index(tab) + 1} {tab.title()}"


def pane_class(tab: str) -> type[Widget]:
    """The class of ``tab``'s pane (its module imported now if it was not)."""
    module, name = _PANES[tab]
    return getattr(importlib.import_module(module), name)


class PaneTab(TabPane):
    """A tab whose pane ``make(tab, pane_class)`` makes: in compose when ``first`` (the tab the app opens
    on), else when ``build`` is first awaited."""

    def __init__(self, tab: str, make: Callable[[str, type[Widget]], Widget], first: bool = False) -> None:
        super().__init__(title(tab), id=tab)
        self._make = make
        self._mounting: AwaitMount | None = None
        self.pane: Widget | None = make(tab, pane_class(tab)) if first else None
        """The pane, once made (it may still be composing: ``build`` waits for that)."""

    def compose(self) -> ComposeResult:
        if self.pane is not None:
            yield self.pane

    async def build(self) -> Widget:
        """The tab's pane, made and mounted the first time (its widgets composed, its on_mount run)."""
        if self.pane is None:
            self.pane = self._make(self.id, pane_class(self.id))
            self._mounting = self.mount(self.pane)
        if self._mounting is not None:
            await self._mounting
        return self.pane
