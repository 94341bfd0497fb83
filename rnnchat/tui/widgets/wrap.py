"""Greedy word wrap by terminal cells, prefix-stable so that appending text re-wraps only the last line."""

from __future__ import annotations

from rich.cells import get_character_cell_size

TAB_CELLS = 4           # a tab is drawn as this many spaces


def cells(ch: str) -> int:
    if ch == "\t":
        return TAB_CELLS
    if " " <= ch <= "~":
        return 1
    return get_character_cell_size(ch)


def wrap_lines(text: str, start: int, width: int) -> list[tuple[int, int]]:
    """Greedy word wrap of ``text[start:]`` into (start, end) ranges of at most ``width`` cells.

    A range ending before a "\\n" is a hard break (the newline belongs to no line); otherwise the next
    range starts where this one ends. Breaks go after the last space when there is one on the line,
    else inside the word. Prefix-stable: re-wrapping from any line start gives the same later lines,
    which is what makes appending cheap.
    """
    width = max(1, width)
    out: list[tuple[int, int]] = []
    n = len(text)
    s = start
    while True:
        nl = text.find("\n", s)
        end = n if nl < 0 else nl
        line_start, col, brk = s, 0, -1
        i = s
        while i < end:
            ch = text[i]
            w = cells(ch)
            if col + w > width and i > line_start:
                if brk > line_start:
                    out.append((line_start, brk))
                    line_start = brk
                    col = sum(cells(c) for c in text[brk:i])
                else:
                    out.append((line_start, i))
                    line_start, col = i, 0
                brk = -1
                continue
            col += w
            if ch == " " or ch == "\t":
                brk = i + 1
            i += 1
        out.append((line_start, end))
        if nl < 0:
            return out
        s = nl + 1
