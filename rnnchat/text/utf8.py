"""Text kept as UTF-8 bytes: checking a file's bytes, counting characters and finding where one starts.

A Python str takes 2 or 4 bytes a character once one character lies beyond Latin-1 (an em dash, a curly
quote), so a corpus read from files is kept as its UTF-8 bytes, and everything here works on them in
bounded pieces: nothing decodes a whole text at once.
"""

from __future__ import annotations

import codecs
import threading

PIECE_BYTES = 1 << 20         # bytes decoded or scanned at a time
_BLOCK = 1 << 16              # one entry of the character-offset table per this many bytes

_decode_state = threading.local()


def _count_replace(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    _decode_state.count = getattr(_decode_state, "count", 0) + (exc.end - exc.start)
    return "\ufffd", exc.end


codecs.register_error("rnnchat-count-replace", _count_replace)


def decode(data: bytes, final: bool = True) -> tuple[str, int]:
    """UTF-8 decode like errors="replace"; returns the text and the number of bytes replaced."""
    _decode_state.count = 0
    text = codecs.getincrementaldecoder("utf-8")("rnnchat-count-replace").decode(data, final)
    return text, _decode_state.count


def _decoded_pieces(data: bytes):
    """``data`` decoded PIECE_BYTES at a time (a character cut by a piece's end waits for the next)."""
    decoder = codecs.getincrementaldecoder("utf-8")("rnnchat-count-replace")
    view = memoryview(data)
    for start in range(0, len(data), PIECE_BYTES):
        yield decoder.decode(view[start:start + PIECE_BYTES], start + PIECE_BYTES >= len(data))


def repair(data: bytes) -> tuple[bytes | bytearray, int]:
    """``data`` as valid UTF-8, each undecodable byte replaced with U+FFFD exactly as errors="replace"
    decodes it, and how many bytes were replaced. Valid data is returned itself; the rare invalid file
    is rebuilt into one bytearray (the input and the result alive, never a third copy)."""
    if data.isascii():
        return data, 0
    _decode_state.count = 0
    for _ in _decoded_pieces(data):
        pass
    bad = _decode_state.count
    if not bad:
        return data, 0
    out = bytearray()
    for text in _decoded_pieces(data):
        out += text.encode("utf-8")
    return out, bad


class Offsets:
    """Where each character of valid UTF-8 ``data`` starts: the number of characters before every
    64 KiB block (a small table: 16k entries a GB), so a character's byte is found by scanning one block."""

    __slots__ = ("chars", "_before", "_ascii")

    def __init__(self, data: bytes | bytearray):
        import numpy as np

        self._ascii = data.isascii()
        if self._ascii:
            self.chars, self._before = len(data), None
            return
        counts = []
        view = memoryview(data)
        for start in range(0, len(data), PIECE_BYTES):       # PIECE_BYTES is a multiple of _BLOCK
            starts = _starts(np.frombuffer(view[start:start + PIECE_BYTES], np.uint8))
            whole = len(starts) // _BLOCK * _BLOCK
            counts.append(np.count_nonzero(starts[:whole].reshape(-1, _BLOCK), axis=1))
            if whole < len(starts):                           # the last, short block
                counts.append(np.array([np.count_nonzero(starts[whole:])]))
        per_block = np.concatenate(counts).astype(np.int64) if counts else np.zeros(0, np.int64)
        self._before = np.concatenate([[0], np.cumsum(per_block)]).astype(np.int64)
        self.chars = int(self._before[-1])

    def byte(self, data: bytes | bytearray, char: int) -> int:
        """The byte offset of character ``char`` (len(data) for ``char`` == the number of characters)."""
        import numpy as np

        if not 0 <= char <= self.chars:
            raise IndexError(char)
        if self._ascii:
            return char
        if char == self.chars:
            return len(data)
        block = int(np.searchsorted(self._before, char, side="right")) - 1
        base = block * _BLOCK
        starts = np.flatnonzero(_starts(np.frombuffer(memoryview(data)[base:base + _BLOCK], np.uint8)))
        return base + int(starts[char - int(self._before[block])])


def _starts(arr):
    """True where a byte starts a character (is not a continuation byte 10xxxxxx)."""
    return (arr & 0xC0) != 0x80


def char_start_before(data: bytes | bytearray, pos: int) -> int:
    """The largest character start <= ``pos`` (``pos`` itself at either end of ``data``)."""
    if pos >= len(data):
        return len(data)
    while pos > 0 and data[pos] & 0xC0 == 0x80:
        pos -= 1
    return pos
