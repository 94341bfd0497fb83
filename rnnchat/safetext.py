"""Showing untrusted text (corpora, prompts, model output) literally in a terminal.

Control characters would let text move the cursor, change colours or ring bells; they are replaced by
visible stand-ins. Newlines and tabs are kept. Markup is never parsed: callers wrap the result in
``rich.text.Text`` (or Textual's ``Content``), never in a markup string.
"""

from __future__ import annotations

_TABLE = {c: chr(0x2400 + c) for c in range(32) if c not in (9, 10)}  # C0 controls -> Control Pictures
_TABLE[0x7F] = "\u2421"                                                  # DEL -> ␡
_TABLE.update({c: "\ufffd" for c in range(0x80, 0xA0)})                 # C1 controls (e.g. CSI 0x9b)
_TABLE.update({c: "\ufffd" for c in (0x2028, 0x2029, 0x202E, 0x202D, 0x2066, 0x2067, 0x2068, 0x2069)})


def neutralise(text: str) -> str:
    """The text with every control character replaced by a visible, harmless stand-in."""
    return text.translate(_TABLE)
