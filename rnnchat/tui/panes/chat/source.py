"""Where the Chat pane's replies come from, as its toolbar's ``#chat-candidates`` says: retrieval by default;
the model's own when retrieval cannot work for the run (until another run is chosen); whatever the user
chose there, which then never falls back."""

from __future__ import annotations

from typing import Callable

from textual.widgets import Select

from rnnchat.config import CANDIDATES


class ReplySource:
    """The toolbar's choice of source, and whether the user (not the pane) made it. ``select`` gives the
    toolbar's Select."""

    def __init__(self, select: Callable[[], Select], default: str) -> None:
        self._select = select
        self._default = default
        self._put = default                # the source the pane last put in the toolbar
        self.chosen = False
        """The user picked the source: no fallback then."""

    def changed(self, value: str) -> None:
        """The toolbar's Select says it changed: the user's choice, unless it is what the pane put there (the
        Select also says so when it is first set up)."""
        if value != self._put:
            self.chosen = True

    def put(self, value: str) -> None:
        """Set the toolbar's source as the pane, not the user, chose it."""
        self._put = value
        select = self._select()
        if select.value != value:
            with select.prevent(Select.Changed):
                select.value = value

    def new_run(self) -> None:
        """Another run: a fallback was for the run before, so the default is tried again."""
        if not self.chosen:
            self.put(self._default)

    def switch(self) -> str:
        """The other source, as the user's choice (ctrl+r); its name."""
        select = self._select()
        select.value = CANDIDATES[(CANDIDATES.index(str(select.value)) + 1) % len(CANDIDATES)]
        return str(select.value)
