"""Generated text coloured by the model's probability of each token, with a cursor over tokens.

``ProbText`` is a Line API widget: it keeps the text as one string plus each token's start, probability
and alternatives, wraps it itself (incrementally: appending re-wraps only the last line) and renders only
the visible lines, so streaming costs time in proportion to the new text. All text goes through
``neutralise`` (one character for one, so display and token offsets agree) into ``Segment``s, never
markup. Colours blend the component classes ``probtext--low``/``--mid``/``--high`` in ``BUCKETS`` steps.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from typing import ClassVar, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.events import Click, Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from rnnchat.events import Token
from rnnchat.safetext import neutralise
from rnnchat.tui.widgets.cursor import TokenCursor
from rnnchat.tui.widgets.wrap import TAB_CELLS, cells, wrap_lines

__all__ = ["ProbText", "BUCKETS", "bucket"]

BUCKETS = 10            # colour steps over [0, 1]
_FALLBACK = {"probtext--low": "error", "probtext--mid": "warning", "probtext--high": "success"}


def bucket(prob: float) -> int:
    """The colour step (0 .. BUCKETS - 1) of a probability."""
    if not prob > 0:                      # also NaN
        return 0
    return min(BUCKETS - 1, int(prob * BUCKETS))


class ProbText(ScrollView, can_focus=True):
    """Streaming text (a dimmed prompt, then tokens) with optional probability colouring and a cursor.

    ``clear(prompt)`` starts a new text, ``append(tokens)`` adds ``Token`` events. With ``colour`` on,
    every token's characters take the colour of its probability and the cursor (left/right/home/end
    or a click) selects a token; ``CursorMoved`` is posted whenever it changes.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "probtext--prompt", "probtext--cursor", "probtext--low", "probtext--mid", "probtext--high",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "cursor('left')", "Previous token", show=False),
        Binding("right", "cursor('right')", "Next token", show=False),
        Binding("home", "cursor('home')", "First token", show=False),
        Binding("end", "cursor('end')", "Last token", show=False),
    ]

    colour: reactive[bool] = reactive(False)
    """Colour tokens by probability and show the cursor."""

    class CursorMoved(Message):
        """The cursor moved to token ``index`` (None: no token selected)."""

        def __init__(self, probtext: "ProbText", index: int | None) -> None:
            super().__init__()
            self.probtext = probtext
            self.index = index

        @property
        def control(self) -> "ProbText":
            return self.probtext

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._raw = ""                       # prompt + generated text, as produced (for saving)
        self._text = ""                      # the same, neutralised: what is drawn
        self._prompt_len = 0
        self._starts = array("q")            # offset in _text where each token starts
        self._probs = array("d")
        self._alts: list[tuple[tuple[str, float], ...]] = []
        self._lines: list[tuple[int, int]] = []
        self._line_starts = array("q")
        self._wrap_width = 0
        self._palette_key: tuple | None = None
        self._palette: list[Style] = []
        self._colours: list[Style] = []
        self.cursor: int | None = None
        self._tokens = TokenCursor(self.token_span, lambda: len(self._starts))
        self._copied: list[tuple[int, int]] = []   # spans of _text found verbatim in the training text

    # ------------------------------------------------------------------------------------ content

    def clear(self, prompt: str = "") -> None:
        """Start over with ``prompt`` (shown dimmed, not a token)."""
        self._raw = prompt
        self._text = neutralise(prompt)
        self._prompt_len = len(self._text)
        self._starts = array("q")
        self._probs = array("d")
        self._alts = []
        self._copied = []
        self._set_cursor(None)
        self._lines, self._line_starts = [], array("q")
        self._rewrap(0)
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def append(self, tokens: Sequence[Token]) -> None:
        """Add streamed tokens; follows the end when the view was already there."""
        if not tokens:
            return
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        raw = "".join(t.text for t in tokens)
        pos = len(self._text)
        starts = self._starts
        for t in tokens:
            starts.append(pos)
            pos += len(t.text)
        self._probs.extend(t.prob for t in tokens)
        self._alts.extend(t.alternatives for t in tokens)
        self._raw += raw
        first_new = len(self._text)
        self._text += neutralise(raw)          # one character for one: offsets stay valid
        # Re-wrap from the start of the line that held the old end of the text.
        line = max(0, bisect_right(self._line_starts, first_new) - 1) if self._lines else 0
        self._rewrap(line)
        if follow:
            self.scroll_end(animate=False, x_axis=False)
        self.refresh()

    def mark_copied(self, spans: Sequence[tuple[int, int]]) -> None:
        """Underline these (start, end) spans of the generated text (copied from the training text)."""
        self._copied = [(a + self._prompt_len, b + self._prompt_len) for a, b in spans]
        self.refresh()

    @property
    def copied_spans(self) -> list[tuple[int, int]]:
        return [(a - self._prompt_len, b - self._prompt_len) for a, b in self._copied]

    @property
    def text(self) -> str:
        """Everything shown (prompt then generated text), neutralised: exactly what is drawn."""
        return self._text

    @property
    def generated_text(self) -> str:
        """The generated part as shown (neutralised)."""
        return self._text[self._prompt_len:]

    @property
    def raw_text(self) -> str:
        """Prompt and generated text as the model produced them (not neutralised): for saving."""
        return self._raw

    @property
    def token_count(self) -> int:
        return len(self._starts)

    def token_span(self, index: int) -> tuple[int, int]:
        """(start, end) offsets of a token in ``text``."""
        end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self._text)
        return self._starts[index], end

    def token_info(self, index: int) -> tuple[str, float, tuple[tuple[str, float], ...]]:
        """(text as shown, probability, alternatives as produced) of a token."""
        s, e = self.token_span(index)
        return self._text[s:e], self._probs[index], self._alts[index]

    @property
    def lines(self) -> list[str]:
        """The wrapped lines as drawn (tabs expanded), for tests and debugging."""
        return [self._text[s:e].replace("\t", " " * TAB_CELLS) for s, e in self._lines]

    # ----------------------------------------------------------------------------------- wrapping

    def _rewrap(self, from_line: int) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:                 # not laid out (or hidden): wrapped on the next resize
            self._wrap_width = 0
            self._lines, self._line_starts = [], array("q")
            self.virtual_size = Size(0, 0)
            return
        if width != self._wrap_width:
            self._wrap_width = width
            from_line = 0
        start = self._lines[from_line][0] if from_line < len(self._lines) else 0
        del self._lines[from_line:]
        del self._line_starts[from_line:]
        new = wrap_lines(self._text, start, width)
        self._lines.extend(new)
        self._line_starts.extend(s for s, _ in new)
        self.virtual_size = Size(width, len(self._lines))

    def on_resize(self, event: Resize) -> None:
        if self.scrollable_content_region.width != self._wrap_width:
            follow = self.is_vertical_scroll_end
            self._rewrap(0)
            if follow:
                self.scroll_end(animate=False, x_axis=False)
            elif self.cursor is not None:
                self._scroll_to_cursor()
            self.refresh()

    def _line_of(self, offset: int) -> int:
        return max(0, bisect_right(self._line_starts, offset) - 1)

    # ------------------------------------------------------------------------------------- cursor

    def _set_cursor(self, index: int | None) -> None:
        if index == self.cursor:
            return
        self.cursor = index
        if self.is_attached:
            self.post_message(self.CursorMoved(self, index))
            self._scroll_to_cursor()
            self.refresh()

    def move_cursor(self, index: int | None) -> None:
        """Put the cursor on token ``index`` (or on the nearest visible token before it)."""
        self._set_cursor(None if index is None or not self._starts else self._tokens.nearest(index))

    def _scroll_to_cursor(self) -> None:
        if self.cursor is None or not self._lines:
            return
        line = self._line_of(self._starts[self.cursor])
        height = self.scrollable_content_region.height
        if line < self.scroll_y:
            self.scroll_to(y=line, animate=False)
        elif height > 0 and line >= self.scroll_y + height:
            self.scroll_to(y=line - height + 1, animate=False)

    def action_cursor(self, key: str) -> None:
        """left, right, home or end: the cursor moves while colouring is on, else the view scrolls."""
        if not self.colour:
            getattr(self, f"scroll_{key}")(animate=False)
            return
        index = self._tokens.moved(key, self.cursor)
        if index is not None:
            self._set_cursor(index)

    # ---------------------------------------------------------------------------------- rendering

    def _styles(self) -> list[Style]:
        """One rich Style per colour step, blended low -> mid -> high from the component classes."""
        colours = []
        for name in ("probtext--low", "probtext--mid", "probtext--high"):
            try:
                colours.append(self.get_component_styles(name).color)
            except KeyError:                                  # stylesheet not loaded: theme colours
                value = self.app.theme_variables.get(_FALLBACK[name], "#808080")
                colours.append(Color.parse(value))
        base = self.rich_style
        key = (tuple(colours), base)
        if key != self._palette_key:
            low, mid, high = colours
            self._colours = []
            for b in range(BUCKETS):
                x = (b + 0.5) / BUCKETS
                c = low.blend(mid, x * 2) if x < 0.5 else mid.blend(high, (x - 0.5) * 2)
                self._colours.append(Style(color=c.rich_color))
            self._palette = [base + c for c in self._colours]
            self._palette_key = key
        return self._palette

    def prob_style(self, prob: float) -> Style:
        """The colour (foreground only) of this probability, for legends and panels."""
        self._styles()
        return self._colours[bucket(prob)]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        index = scroll_y + y
        if index >= len(self._lines):
            return Strip.blank(width, base)
        s, e = self._lines[index]
        segments = self._segments(s, e, base)
        strip = Strip(segments)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _segments(self, s: int, e: int, base: Style) -> list[Segment]:
        text = self._text
        colour = self.colour
        prompt_style = self.get_component_rich_style("probtext--prompt", default=base + Style(dim=True))
        cursor_style = self.get_component_rich_style("probtext--cursor", default=Style(reverse=True))
        palette = self._styles() if colour else None
        # The cursor shows where it means something: in the focused column or the one being inspected.
        cursor = self.cursor if colour and (self.has_focus or self.has_class("-inspected")) else None
        pieces: list[tuple[str, Style]] = []
        pos = s
        if pos < self._prompt_len:
            end = min(e, self._prompt_len)
            pieces.append((text[pos:end], prompt_style))
            pos = end
        starts, probs = self._starts, self._probs
        n = len(starts)
        t = bisect_right(starts, pos) - 1 if pos < e else n
        while pos < e and t < n:
            t_end = starts[t + 1] if t + 1 < n else len(text)
            end = min(e, t_end)
            if end > pos:
                if palette is None:
                    style = base
                else:
                    style = palette[bucket(probs[t])]
                    if t == cursor:
                        style = style + cursor_style
                pieces.extend(self._underlined(pos, end, style))
            pos = end
            t += 1
        # A cursor on a token made of (or ending in) a newline: mark the end of the line.
        if cursor is not None and e < len(text) and text[e] == "\n" and n:
            t = bisect_right(starts, e) - 1
            if t == cursor and e >= self._prompt_len:
                pieces.append((" ", palette[bucket(probs[t])] + cursor_style))
        segments: list[Segment] = []
        last_style = None
        buf: list[str] = []
        for piece, style in pieces:
            if style != last_style and buf:
                segments.append(Segment("".join(buf).replace("\t", " " * TAB_CELLS), last_style))
                buf = []
            buf.append(piece)
            last_style = style
        if buf:
            segments.append(Segment("".join(buf).replace("\t", " " * TAB_CELLS), last_style))
        return segments

    def _underlined(self, pos: int, end: int, style: Style) -> list[tuple[str, Style]]:
        """text[pos:end] in ``style``, the parts inside copied spans underlined."""
        out, text = [], self._text
        for a, b in self._copied:
            if b <= pos or a >= end:
                continue
            if a > pos:
                out.append((text[pos:a], style))
            cut = min(b, end)
            out.append((text[max(a, pos):cut], style + Style(underline=True)))
            pos = cut
        if pos < end:
            out.append((text[pos:end], style))
        return out

    def watch_colour(self, colour: bool) -> None:
        if colour and self.cursor is None and self._starts:
            self._set_cursor(self._tokens.next(-1, +1))
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._palette_key = None
        self.refresh()

    def on_click(self, event: Click) -> None:
        self.focus()
        if not self.colour:
            return
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = self.scroll_offset.y + offset.y
        if not 0 <= index < len(self._lines):
            return
        s, e = self._lines[index]
        x = self.scroll_offset.x + offset.x
        col, pos = 0, s
        while pos < e:
            w = cells(self._text[pos])
            if col + w > x:
                break
            col += w
            pos += 1
        if pos == e and e < len(self._text) and self._text[e] == "\n":
            pos = e                                  # past the end of a line: its newline
        elif pos == e and pos > s:
            pos = e - 1
        if pos < self._prompt_len or not self._starts:
            return
        self.move_cursor(bisect_right(self._starts, pos) - 1)
