"""Numbers as people read them: sizes and durations, shared by the CLI and the app."""

from __future__ import annotations

import math


def human_size(n: float) -> str:
    """Bytes in B, KB, MB or GB (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


def clock(seconds: float | None) -> str:
    """mm:ss, or h:mm:ss past an hour; "--:--" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
