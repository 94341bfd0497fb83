"""The Generate pane's pick-a-token panel: the most likely next tokens with the model's probabilities, one
highlighted. Up/down move the highlight, enter takes it, tab lets the model pick, escape leaves; each is a
message to the pane, which steps the model. Tokens are shown on one line each with ``visible_token``
(spaces, line breaks and tabs as marks, everything neutralised), as ``Text``, never markup."""

from __future__ import annotations

from typing import ClassVar, Sequence

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Click
from textual.message import Message
from textual.widget import Widget

from rnnchat.tui.widgets.alternatives import visible_token

__all__ = ["PickPanel"]

Option = tuple[int, str, float]        # (token id, text, probability), as lm.generate.Picker.options gives


class PickPanel(Widget, can_focus=True):
    """The offered tokens; ``waiting`` while the model computes the next ones (keys are ignored then)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Choose", key_display="\u2191\u2193"),
        Binding("down", "move(1)", "Choose", show=False),
        Binding("enter", "take", "Take"),
        Binding("tab", "auto", "Model picks"),
        Binding("escape", "leave", "Leave"),
    ]

    class Take(Message):
        def __init__(self, token_id: int) -> None:
            super().__init__()
            self.token_id = token_id

    class Auto(Message):
        pass

    class Leave(Message):
        pass

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.options: list[Option] = []
        self.highlight = 0
        self.waiting = True

    def show_options(self, options: Sequence[Option]) -> None:
        self.options, self.highlight, self.waiting = list(options), 0, False
        self.refresh()

    def wait(self) -> None:
        self.waiting = True
        self.refresh()

    @property
    def chosen(self) -> Option | None:
        return self.options[self.highlight] if self.options and not self.waiting else None

    def action_move(self, step: int) -> None:
        if self.options:
            self.highlight = (self.highlight + step) % len(self.options)
            self.refresh()

    def action_take(self) -> None:
        if self.chosen is not None:
            self.post_message(self.Take(self.chosen[0]))

    def action_auto(self) -> None:
        if not self.waiting:
            self.post_message(self.Auto())

    def action_leave(self) -> None:
        self.post_message(self.Leave())

    def on_click(self, event: Click) -> None:
        """A click highlights the option on that row (the first two rows are the heading)."""
        self.focus()
        offset = event.get_content_offset(self)
        if offset is not None and 0 <= offset.y - 2 < len(self.options):
            self.highlight = offset.y - 2
            self.refresh()

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("next token\n", style="bold")
        out.append("\u2026 thinking\n" if self.waiting else "\u2191\u2193 enter \u00b7 tab: model\n", style="dim")
        for i, (token_id, text, prob) in enumerate(self.options):
            style = "reverse bold" if i == self.highlight and not self.waiting else ("dim" if self.waiting else "")
            out.append(f"{prob:6.1%} ", style=style)
            out.append(visible_token(text), style=style)
            if "\ufffd" in text:                    # part of a character's bytes: the id tells them apart
                out.append(f" #{token_id}", style="dim")
            out.append("\n")
        out.append("\nesc leaves", style="dim")
        return out
