"""Showing untrusted text (corpora, prompts, run names, model output) literally in a terminal.

The one sanitiser every string shown passes through. Control characters would let text move the cursor,
change colours or ring bells; bidirectional controls would reorder what is shown (the "Trojan Source"
trick); zero-width characters would hide text or make two names look alike. All are replaced by visible
stand-ins. Newlines and tabs are kept. Markup is never parsed: callers wrap the result in
``rich.text.Text`` (or Textual's ``Content``), never in a markup string.
"""

from __future__ import annotations

_TABLE = {c: chr(0x2400 + c) for c in range(32) if c not in (9, 10)}  # C0 controls -> Control Pictures
_TABLE[0x7F] = "\u2421"                                                  # DEL -> ␡
_TABLE.update({c: "\ufffd" for c in range(0x80, 0xA0)})                 # C1 controls (e.g. CSI 0x9b)
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))  # marks, embeddings, isolates
_INVISIBLE = (0x2028, 0x2029, *range(0x200B, 0x200E), 0x2060, 0xFEFF)   # separators, zero-width characters
_TABLE.update({c: "\ufffd" for c in (*_BIDI, *_INVISIBLE)})


def neutralise(text: str) -> str:
    """The text with every control, bidi and zero-width character replaced by a visible, harmless stand-in."""
    return text.translate(_TABLE)


NEWLINE_MARK = "\u23ce"                                                   # ⏎, wherever a line break is shown


def visible_token(text: str) -> str:
    """A token's text on one line: neutralised, with spaces, line breaks and tabs as marks (∅ for none)."""
    if not text:
        return "\u2205"                   # an incomplete multi-byte character: nothing shown yet
    return neutralise(text).replace(" ", "\u2423").replace("\n", NEWLINE_MARK).replace("\t", "\u21e5")
