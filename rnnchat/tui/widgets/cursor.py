"""Where the token cursor of ``ProbText`` can go: onto a token that shows any text, never onto an empty one.
``ProbText`` owns a ``TokenCursor`` and keeps the cursor itself (the index, drawing it, announcing moves)."""

from __future__ import annotations

from typing import Callable


class TokenCursor:
    """Moves over the tokens of a growing text: ``span(i)`` is token i's (start, end) in it, ``count()`` how
    many tokens there are now."""

    def __init__(self, span: Callable[[int], tuple[int, int]], count: Callable[[], int]) -> None:
        self._span = span
        self._count = count

    def next(self, index: int, step: int) -> int | None:
        """The nearest token from ``index`` in direction ``step`` that shows any text."""
        n = self._count()
        i = index + step
        while 0 <= i < n:
            s, e = self._span(i)
            if e > s:
                return i
            i += step
        return None

    def nearest(self, index: int) -> int:
        """Token ``index`` (within the text), or when it shows nothing the nearest one before it that does,
        else after it."""
        index = max(0, min(index, self._count() - 1))
        s, e = self._span(index)
        if e == s:
            before, after = self.next(index, -1), self.next(index, +1)
            index = before if before is not None else (after if after is not None else index)
        return index

    def moved(self, key: str, cursor: int | None) -> int | None:
        """Where ``key`` (left, right, home or end) takes the cursor from ``cursor``; None: it stays."""
        n = self._count()
        if key == "left":
            return self.next(n if cursor is None else cursor, -1)
        if key == "right":
            return self.next(-1 if cursor is None else cursor, +1)
        return self.next(-1, +1) if key == "home" else self.next(n, -1)
