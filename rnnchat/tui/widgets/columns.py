"""The Generate pane's output: one ``ProbText``, or three side by side, the alternatives panel for the
token under the cursor of the column being inspected (the focused one, else the last one used), and the
panel of tokens to pick from (shown while picking)."""

from __future__ import annotations

from typing import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import DescendantFocus

from rnnchat.events import Token
from rnnchat.tui.widgets.alternatives import AlternativesPanel
from rnnchat.tui.widgets.picker import PickPanel
from rnnchat.tui.widgets.probtext import ProbText

COLUMNS = 3


class SampleColumns(Horizontal):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.colour = False
        self._source: ProbText | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="gen-columns"):
            for i in range(COLUMNS):
                yield ProbText(id=f"gen-out-{i}", classes="gen-out -extra" if i else "gen-out")
        yield AlternativesPanel(id="gen-alts")
        yield PickPanel(id="gen-pick")

    @property
    def outputs(self) -> list[ProbText]:
        return list(self.query(ProbText).results(ProbText))

    def on_mount(self) -> None:
        outs = self.outputs
        outs[0].border_title = "Output"
        outs[0].border_subtitle = "/ edit prompt"
        for out in outs:
            out.clear("")
        self._source = outs[0]
        self.query_one(AlternativesPanel).border_title = "Token"
        self.query_one(PickPanel).border_title = "Pick"

    def start(self, prompt: str, columns: int) -> None:
        """A new text in the first ``columns`` outputs, each beginning with ``prompt``; the rest empty."""
        for i, out in enumerate(self.outputs):
            out.clear(prompt if i < columns else "")
        self.show_alternatives()

    def append(self, per_column: Sequence[Sequence[Token]]) -> None:
        outs = self.outputs
        for out, tokens in zip(outs, per_column):
            if tokens:
                out.append(tokens)
        if self._source is not None and self._source.cursor is not None:
            self.show_alternatives()

    def mark_copied(self, copied: dict, underline: bool) -> None:
        """Underline each column's spans copied from the training text (``copied``: column -> Copied)."""
        for column, out in enumerate(self.outputs):
            event = copied.get(column)
            out.mark_copied(event.spans if event is not None and underline else [])

    def set_colour(self, colour: bool) -> None:
        self.colour = colour
        for out in self.outputs:
            out.colour = colour
        self.show_alternatives()

    def set_titles(self, temperatures: Sequence[float], side_by_side: bool) -> None:
        outs = self.outputs
        if side_by_side or len(temperatures) > 1:
            for i, out in enumerate(outs):
                out.border_title = f"T {temperatures[i]:.2f}" if i < len(temperatures) else "\u2014"
        else:
            outs[0].border_title = f"T {temperatures[0]:.2f}" if temperatures else "Output"

    def saved_text(self, temperatures: Sequence[float]) -> str:
        """The text of the columns in use, as produced: one, or each under its temperature."""
        outs = self.outputs[:len(temperatures)]
        if len(outs) == 1:
            return outs[0].raw_text
        return "\n\n".join(f"--- temperature {t:g} ---\n{o.raw_text}" for t, o in zip(temperatures, outs))

    def show_alternatives(self) -> None:
        if not self.colour:
            return
        source = self._source or self.outputs[0]
        for out in self.outputs:
            out.set_class(out is source, "-inspected")
        self.query_one(AlternativesPanel).show_token(source, source.cursor)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, ProbText) and event.widget is not self._source:
            self._source = event.widget
            self.show_alternatives()

    def on_prob_text_cursor_moved(self, message: ProbText.CursorMoved) -> None:
        message.stop()
        if message.probtext.has_focus or self._source is None:
            self._source = message.probtext
        if message.probtext is self._source:
            self.show_alternatives()
