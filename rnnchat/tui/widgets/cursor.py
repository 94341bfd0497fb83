"""The token cursor of ``ProbText``: which token is under it, and the keys that move it."""

from __future__ import annotations


class TokenCursor:
    """Mixed into ProbText: a cursor over its tokens (``_starts``, ``token_span``), moved by the arrow keys
    when colouring is on (else they scroll) and announced with ``CursorMoved``."""

    def _next_token(self, index: int, step: int) -> int | None:
        """The nearest token from ``index`` in direction ``step`` that shows any text."""
        n = len(self._starts)
        i = index + step
        while 0 <= i < n:
            s, e = self.token_span(i)
            if e > s:
                return i
            i += step
        return None

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
        if index is None or not self._starts:
            self._set_cursor(None)
            return
        index = max(0, min(index, len(self._starts) - 1))
        s, e = self.token_span(index)
        if e == s:
            before, after = self._next_token(index, -1), self._next_token(index, +1)
            index = before if before is not None else (after if after is not None else index)
        self._set_cursor(index)

    def _scroll_to_cursor(self) -> None:
        if self.cursor is None or not self._lines:
            return
        line = self._line_of(self._starts[self.cursor])
        height = self.scrollable_content_region.height
        if line < self.scroll_y:
            self.scroll_to(y=line, animate=False)
        elif height > 0 and line >= self.scroll_y + height:
            self.scroll_to(y=line - height + 1, animate=False)

    def action_cursor_left(self) -> None:
        if not self.colour:
            self.scroll_left(animate=False)
            return
        if self.cursor is None:
            self._set_cursor(self._next_token(len(self._starts), -1))
        else:
            nxt = self._next_token(self.cursor, -1)
            if nxt is not None:
                self._set_cursor(nxt)

    def action_cursor_right(self) -> None:
        if not self.colour:
            self.scroll_right(animate=False)
            return
        nxt = self._next_token(-1 if self.cursor is None else self.cursor, +1)
        if nxt is not None:
            self._set_cursor(nxt)

    def action_cursor_home(self) -> None:
        if not self.colour:
            self.scroll_home(animate=False)
            return
        first = self._next_token(-1, +1)
        if first is not None:
            self._set_cursor(first)

    def action_cursor_end(self) -> None:
        if not self.colour:
            self.scroll_end(animate=False)
            return
        last = self._next_token(len(self._starts), -1)
        if last is not None:
            self._set_cursor(last)
