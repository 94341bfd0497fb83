"""A side panel of short lines that wraps each one to the panel's width with a hanging indent, so an
equation or a label that does not fit goes on under itself instead of being cut or starting at column 0.

Lines are given as ``PanelLine``s (text, style, indent, continuation indent); ``NBSP`` joins words that
must stay on one row. The text is neutralised here and drawn as ``Text``, never markup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from rnnchat.safetext import neutralise
from rnnchat.tui.widgets.wrap import cells

NBSP = "\u00a0"


@dataclass(frozen=True)
class PanelLine:
    text: str
    style: str = ""
    indent: int = 0
    hang: int | None = None           # where wrapped parts start (default: indent + 2)


def hanging_wrap(text: str, width: int, indent: int = 0, hang: int | None = None) -> list[str]:
    """``text`` in rows of at most ``width`` cells: the first after ``indent`` spaces, the rest after ``hang``;
    breaks at spaces (at an ``NBSP`` only when its group is wider than a row), inside a word only when the
    word alone is wider than a row."""
    width = max(1, width)
    hang = indent + 2 if hang is None else hang
    if hang > width // 2:             # a narrow row keeps most of its width for the text
        hang = min(indent + 2, width // 4)
    indent = min(indent, width // 2)
    rows: list[str] = []
    row, col = " " * indent, indent
    words = []
    for word in text.split(" "):              # a group wider than a row breaks at its own spaces after all
        parts = word.split(NBSP) if sum(cells(c) for c in word) > width - hang else [word]
        words.extend(parts)
    for word in words:
        w = sum(cells(c) for c in word)
        start = col == (indent if not rows else hang)
        if not start and col + 1 + w > width:
            rows.append(row)
            row, col, start = " " * hang, hang, True
        if not start:
            row, col = row + " ", col + 1
        for ch in word:               # a word wider than the row is cut where the row ends
            cw = cells(ch)
            if col + cw > width and col > (hang if rows else indent):
                rows.append(row)
                row, col = " " * hang, hang
            row, col = row + ch, col + cw
    rows.append(row)
    return [r.rstrip().replace(NBSP, " ") for r in rows]


class WrappedPanel(Widget):
    """``PanelLine``s, each wrapped to the width the panel has (its height follows)."""

    DEFAULT_CSS = "WrappedPanel { height: auto; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: list[PanelLine] = []

    def show(self, lines: Sequence[PanelLine]) -> None:
        self.lines = [PanelLine(neutralise(ln.text), ln.style, ln.indent, ln.hang) for ln in lines]
        self.refresh(layout=True)

    @property
    def plain(self) -> str:
        """The lines as given (not wrapped), each after its indent."""
        return "\n".join(" " * ln.indent + ln.text.replace(NBSP, " ") for ln in self.lines)

    def rows(self, width: int) -> list[tuple[str, str]]:
        """(row, style) as drawn at ``width`` cells."""
        return [(row, ln.style) for ln in self.lines for row in hanging_wrap(ln.text, width, ln.indent, ln.hang)]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.rows(width)))

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        for i, (row, style) in enumerate(self.rows(self.size.width)):
            if i:
                out.append("\n")
            out.append(row, style=style)
        return out
