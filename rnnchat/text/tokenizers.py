"""Tokenizers behind one small interface: characters, or sentencepiece BPE / unigram subwords.

Every tokenizer reserves two ids: ``UNK`` for text it has never seen and ``EOD``, the document
boundary marker placed between documents so no training window joins two of them unmarked.
Encoding works on numpy arrays in chunks, so a 100 MB corpus never becomes a Python list of ints.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from pathlib import Path
from typing import Iterable, Iterator, Protocol

import numpy as np

from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.files import read_bounded
from rnnchat.vocab import EOD, UNK

_CHUNK_CHARS = 1 << 20
_SP_MAX_TRAIN_CHARS = 20_000_000  # sentencepiece trains on a spread sample of at most this much text
_SP_CHUNK_CHARS = 1 << 16         # characters per piece handed to sentencepiece
_SP_BATCH = 64                    # pieces encoded per call
_SURROGATE_RE = re.compile("[\ud800-\udfff]")   # lone surrogates (from JSON or YAML escapes) cannot be encoded


class StreamDecoder(Protocol):
    def feed(self, token_id: int) -> str: ...


class Tokenizer(Protocol):
    kind: str
    vocab_size: int

    def encode(self, text: str) -> np.ndarray: ...
    def count_unknown(self, ids: np.ndarray) -> int: ...
    def decode(self, ids: Iterable[int]) -> str: ...
    def decoder(self) -> StreamDecoder: ...
    def token_text(self, token_id: int) -> str: ...
    def save(self, directory: Path) -> None: ...


def dtype_for(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every id."""
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def cut_point(text: str, start: int, stop: int, size: int) -> int:
    """Where a piece of ``text[start:stop]`` of about ``size`` characters should end, so that subword
    tokenizers encode the pieces exactly (or, with neither a newline nor a space anywhere near, almost
    exactly) as the whole: just after the first newline past ``size``, else just before a space (their
    pieces never span a newline and start at a space), else at ``2 * size``."""
    target = start + size
    if target >= stop:
        return stop
    limit = min(stop, target + size)
    newline = text.find("\n", target - 1, limit)
    if newline >= 0:
        return newline + 1
    space = text.find(" ", target, limit)
    return space if space > start else limit


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _chunks(text: str, size: int = _CHUNK_CHARS) -> Iterator[str]:
    if hasattr(text, "pieces"):      # a view of a document held as bytes: decoded a piece at a time
        yield from text.pieces(size)
        return
    for start in range(0, len(text), size):
        yield text[start:start + size]


class CharTokenizer:
    """One id per distinct character of the corpus, after the two reserved ids."""

    kind = "char"

    def __init__(self, chars: str):
        self.chars = chars
        self.vocab_size = len(chars) + 2
        cps = _codepoints(chars).astype(np.int64)
        # Code point -> id, in the ids' own dtype; the last entry (past every known code point) is UNK,
        # and so is every code point the corpus lacks.
        self._lut = np.zeros(int(cps.max(initial=0)) + 2, dtype=dtype_for(self.vocab_size))
        self._lut[cps] = np.arange(2, self.vocab_size)
        self._table = ["", ""] + list(chars)

    @classmethod
    def train(cls, texts: Iterable[str]) -> "CharTokenizer":
        """The distinct characters of ``texts`` (strings, or views that support len() and slicing)."""
        seen = np.zeros(0x110000, dtype=bool)   # one flag per code point (lone surrogates included)
        for text in texts:
            for chunk in _chunks(text):
                seen[_codepoints(chunk)] = True
        found = np.flatnonzero(seen)
        if not len(found):
            raise ConfigError("cannot build a character vocabulary from empty text")
        return cls("".join(map(chr, found.tolist())))

    def grown(self, texts: Iterable[str]) -> "CharTokenizer":
        """This vocabulary with the characters of ``texts`` it lacks appended (in code-point order): every
        character it knows keeps its id, so a model fine-tuned with it keeps the rows it learnt."""
        known = set(self.chars)
        new = "".join(c for c in CharTokenizer.train(texts).chars if c not in known)
        return CharTokenizer(self.chars + new) if new else self

    def encode(self, text: str) -> np.ndarray:
        out = np.empty(len(text), dtype=self._lut.dtype)
        last = len(self._lut) - 1
        pos = 0
        for chunk in _chunks(text):
            cps = _codepoints(chunk)
            np.take(self._lut, np.minimum(cps, last), out=out[pos:pos + len(chunk)], mode="clip")
            pos += len(chunk)
        return out

    def count_unknown(self, ids: np.ndarray) -> int:
        return int(np.count_nonzero(ids == UNK))

    def token_text(self, token_id: int) -> str:
        if 0 <= token_id < self.vocab_size:
            return self._table[token_id] if token_id > EOD else ("\n\n" if token_id == EOD else "\ufffd")
        return "\ufffd"

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.token_text(int(i)) for i in ids)

    def decoder(self) -> StreamDecoder:
        return _CharStream(self)

    def save(self, directory: Path) -> None:
        _write_json(directory / "tokenizer.json", {"kind": "char", "chars": self.chars})


class _CharStream:
    def __init__(self, tok: CharTokenizer):
        self.tok = tok

    def feed(self, token_id: int) -> str:
        return self.tok.token_text(token_id)


class SentencePieceTokenizer:
    """BPE or unigram subwords trained with sentencepiece on the corpus itself.

    Trained with identity normalisation, newline as a piece of its own and byte fallback, so
    decode(encode(text)) == text for any text, and nothing is ever unknown.
    """

    def __init__(self, kind: str, model_proto: bytes):
        import sentencepiece as spm

        self.kind = kind
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self.sp.vocab_size()
        self._pieces = [self._piece_bytes(i) for i in range(self.vocab_size)]

    @classmethod
    def train(cls, texts: list[str], kind: str, vocab_size: int) -> "SentencePieceTokenizer":
        """Train on ``texts`` (strings, or views that support len() and slicing), sampled down to
        _SP_MAX_TRAIN_CHARS characters when larger."""
        import sentencepiece as spm

        lines = list(_sample_lines(texts, _SP_MAX_TRAIN_CHARS))
        seen: set[str] = set()
        for line in lines:
            seen.update(line)
        distinct = len(seen)
        needed = 256 + 3 + distinct  # byte pieces, <unk>, boundary and newline, then every character
        if vocab_size < needed:
            raise ConfigError(f"{vocab_size} is too small for {kind} on this corpus: it needs at least {needed} "
                              f"(256 byte pieces + {distinct} distinct characters + 3 reserved)", "vocab_size")
        writer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=writer, model_type=kind,
                vocab_size=vocab_size, character_coverage=1.0, byte_fallback=True,
                normalization_rule_name="identity", remove_extra_whitespaces=False,
                add_dummy_prefix=False, user_defined_symbols=["\n"], split_digits=True,
                unk_id=UNK, eos_id=EOD, bos_id=-1, pad_id=-1, max_sentence_length=1 << 16,
                hard_vocab_limit=False, minloglevel=2, num_threads=2,
            )
        except RuntimeError as exc:
            raise ConfigError(
                f"sentencepiece could not build a {kind} vocabulary of {vocab_size} from this corpus "
                f"({distinct} distinct characters): {str(exc).strip().splitlines()[0][:200]}"
            ) from None
        return cls(kind, writer.getvalue())

    def _piece_bytes(self, i: int) -> bytes:
        if self.sp.is_byte(i):
            return bytes([int(self.sp.id_to_piece(i)[3:5], 16)])
        if self.sp.is_control(i) or self.sp.is_unknown(i):
            return b"\n\n" if i == EOD else "\ufffd".encode()
        return self.sp.id_to_piece(i).replace("\u2581", " ").encode("utf-8")

    def encode(self, text: str) -> np.ndarray:
        # Bounded chunks (cut where sentencepiece's own pieces end), encoded a batch at a time on two
        # threads: memory stays flat even for a huge text on one line.
        dtype = dtype_for(self.vocab_size)
        parts, batch, start = [], [], 0
        while start < len(text):
            end = cut_point(text, start, len(text), _SP_CHUNK_CHARS)
            piece = text[start:end]
            batch.append(_SURROGATE_RE.sub("\ufffd", piece) if _SURROGATE_RE.search(piece) else piece)
            start = end
            if len(batch) == _SP_BATCH or start >= len(text):
                parts += [np.asarray(e, dtype=dtype) for e in self.sp.encode(batch, num_threads=2)]
                batch = []
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    def count_unknown(self, ids: np.ndarray) -> int:
        return int(np.count_nonzero(ids == UNK))

    def token_text(self, token_id: int) -> str:
        if 0 <= token_id < self.vocab_size:
            return self._pieces[token_id].decode("utf-8", "replace")
        return "\ufffd"

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self._pieces[int(i)] if 0 <= int(i) < self.vocab_size else b"?" for i in ids).decode(
            "utf-8", "replace")

    def decoder(self) -> StreamDecoder:
        return _ByteStream(self._pieces)

    def save(self, directory: Path) -> None:
        (directory / "tokenizer.model").write_bytes(self.model_proto)
        _write_json(directory / "tokenizer.json", {"kind": self.kind, "model_file": "tokenizer.model"})


class _ByteStream:
    """Turns pieces into text as soon as their bytes form complete characters."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = pieces
        self.utf8 = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, token_id: int) -> str:
        data = self.pieces[token_id] if 0 <= token_id < len(self.pieces) else "\ufffd".encode()
        return self.utf8.decode(data)


def _sample_lines(texts: list[str], budget: int) -> Iterator[str]:
    """All lines when the text fits the budget; otherwise blocks of lines spread evenly over all texts
    (every stride-th block counted across texts, so many small files are sampled like one long one),
    stopping once ``budget`` characters are given."""
    total = sum(len(t) for t in texts)
    stride = max(1, -(-total // budget))
    block = 1 << 16
    given = 0
    k = -1
    for text in texts:
        for start in range(0, len(text), block):
            k += 1
            if k % stride:
                continue
            for line in text[start:start + block].split("\n"):
                if line:
                    yield line
                    given += len(line)
            if given >= budget:
                return


def train_tokenizer(level: str, texts: list[str], vocab_size: int) -> Tokenizer:
    if level == "char":
        return CharTokenizer.train(texts)
    if level in ("bpe", "unigram"):
        return SentencePieceTokenizer.train(texts, level, vocab_size)
    raise ConfigError(f"unknown tokenizer level {level!r}; use char, bpe or unigram")


_MAX_TOKENIZER_BYTES = 256 << 20   # far above any real vocabulary file


def load_tokenizer(directory: Path) -> Tokenizer:
    """Read a tokenizer saved by ``save``; refuses anything malformed with a CheckpointError."""
    path = Path(directory) / "tokenizer.json"
    try:
        meta = json.loads(read_bounded(path, _MAX_TOKENIZER_BYTES).decode("utf-8"))
        kind = meta["kind"]
        if kind == "char":
            chars = meta["chars"]
            if not isinstance(chars, str) or not chars or len(set(chars)) != len(chars):
                raise ValueError("bad character table")
            return CharTokenizer(chars)
        if kind in ("bpe", "unigram"):
            return SentencePieceTokenizer(kind, read_bounded(Path(directory) / "tokenizer.model", _MAX_TOKENIZER_BYTES))
        raise ValueError(f"unknown kind {kind!r}")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read tokenizer in {directory}: {exc}") from None


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
