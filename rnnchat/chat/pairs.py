"""Dialogue pairs (context -> prompt -> reply) from conversations, their split and report."""

from __future__ import annotations

import collections
import random
import re
from dataclasses import dataclass
from typing import Sequence

from rnnchat.errors import CorpusError
from rnnchat.text.corpus import Corpus
from rnnchat.text.dialogue import FORMATS
from rnnchat.text.load import corpus_conversations

_WHOLE_CONV_MIN = 20           # split_pairs moves whole conversations to validation from this many on


@dataclass(frozen=True)
class Pair:
    context: tuple[str, ...]   # earlier turns of the same conversation, oldest first, may be ()
    prompt: str                # the turn being answered
    reply: str                 # the answer (the next turn, by a different speaker)
    conversation: int          # index of the conversation it came from (used for splits)
    turn: int = -1             # position of the prompt among the conversation's turns (-1: not known)

    def turns(self) -> set:
        """The turns this pair reads or writes: positions when known, else the texts themselves."""
        if self.turn < 0:
            return {*self.context, self.prompt, self.reply}
        return set(range(self.turn - len(self.context), self.turn + 2))


@dataclass(frozen=True)
class LengthStats:             # over characters
    count: int
    min: int
    mean: float
    median: float
    p95: float
    max: int

    def describe(self) -> str:
        return (f"min {self.min:,}, mean {self.mean:,.1f}, median {self.median:,.1f}, "
                f"p95 {self.p95:,.1f}, max {self.max:,}")


@dataclass(frozen=True)
class PairReport:
    pairs: tuple[Pair, ...]    # kept pairs, in source order
    found: int                 # candidate pairs before filtering
    dropped_empty: int         # prompt or reply empty after cleaning
    dropped_long: int          # prompt or reply longer than max_turn_chars
    malformed: int             # lines/records that could not be read
    problems: tuple[str, ...]  # the first few malformed ones, e.g. "pairs.tsv:7: no tab between ..."
    conversations: int         # distinct conversations among the kept pairs
    prompt_chars: LengthStats
    reply_chars: LengthStats
    max_turn_chars: int = 300  # the limit behind dropped_long, for the summary

    def summary_lines(self) -> list[str]:
        """Human-readable lines for `rnnchat corpus show`."""
        lines = [f"pairs: {self.found:,} found, {len(self.pairs):,} kept",
                 f"dropped: {self.dropped_long:,} too long (a turn over {self.max_turn_chars:,} chars), "
                 f"{self.dropped_empty:,} empty",
                 f"malformed: {self.malformed:,}"]
        lines += [f"  {p}" for p in self.problems]
        lines.append(f"conversations: {self.conversations:,}")
        if self.pairs:
            lines.append(f"prompt chars: {self.prompt_chars.describe()}")
            lines.append(f"reply chars: {self.reply_chars.describe()}")
        return lines


def _tail(text: str, limit: int) -> str:
    """The last `limit` characters, starting at a word if a space lies within the first few of them."""
    tail = text[-limit:]
    if len(text) > limit and not text[-limit - 1].isspace():
        cut = re.search(r"\s", tail[: min(30, limit // 3) + 1])
        if cut:
            tail = tail[cut.end():]
    return tail.strip()


def build_context(earlier: Sequence[str], turns: int, max_chars: int) -> tuple[str, ...]:
    """The last `turns` non-empty earlier turns whose "\\n"-joined length fits max_chars (newest kept)."""
    kept: list[str] = []
    total = -1                                  # the first turn adds no separator
    for turn in reversed([t for t in earlier[-turns:] if t] if turns > 0 and max_chars > 0 else []):
        if not kept and len(turn) > max_chars:
            kept.append(_tail(turn, max_chars))
            break
        if total + 1 + len(turn) > max_chars:
            break
        kept.append(turn)
        total += 1 + len(turn)
    return tuple(reversed(kept))


def _length_stats(lengths: list[int]) -> LengthStats:
    if not lengths:
        return LengthStats(0, 0, 0.0, 0.0, 0.0, 0)
    s = sorted(lengths)

    def quantile(q: float) -> float:            # linear interpolation, as numpy's default
        pos = q * (len(s) - 1)
        lo = int(pos)
        return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (pos - lo)

    return LengthStats(len(s), s[0], sum(s) / len(s), quantile(0.5), quantile(0.95), s[-1])


def extract_pairs(corpus: Corpus, *, context_turns: int = 0, max_turn_chars: int = 300,
                  max_context_chars: int = 300) -> PairReport:
    """Dialogue pairs of a corpus; raises CorpusError when none is kept."""
    if context_turns < 0 or max_turn_chars < 1 or max_context_chars < 0:
        raise ValueError("context_turns and max_context_chars must be >= 0, max_turn_chars >= 1")
    parsed = corpus_conversations(corpus)
    pairs: list[Pair] = []
    found = empty = long = 0
    for index, (turns, start) in enumerate(parsed.conversations):
        for i in range(start, len(turns) - 1):
            prompt, reply = turns[i], turns[i + 1]
            found += 1
            if not prompt or not reply:
                empty += 1
            elif len(prompt) > max_turn_chars or len(reply) > max_turn_chars:
                long += 1
            else:
                pairs.append(Pair(build_context(turns[:i], context_turns, max_context_chars), prompt, reply, index, i))
    if not pairs:
        if found:
            detail = (f"all {found:,} found were dropped ({long:,} with a turn over {max_turn_chars:,} "
                      f"characters, {empty:,} with an empty turn)")
        else:
            detail = "found no two consecutive turns by different speakers"
        if parsed.malformed:
            detail += f", and {parsed.malformed:,} malformed (first: {parsed.problems[0]})"
        raise CorpusError(f"no dialogue pairs in corpus '{corpus.name}': {detail}; dialogue data is {FORMATS}")
    return PairReport(
        pairs=tuple(pairs), found=found, dropped_empty=empty, dropped_long=long, malformed=parsed.malformed,
        problems=tuple(parsed.problems), conversations=len({p.conversation for p in pairs}),
        prompt_chars=_length_stats([len(p.prompt) for p in pairs]),
        reply_chars=_length_stats([len(p.reply) for p in pairs]), max_turn_chars=max_turn_chars)


def split_pairs(pairs: Sequence[Pair], val_fraction: float = 0.1, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Deterministic (train, validation) split, both in source order; no turn is on both sides.

    With at least 20 conversations, whole conversations go to validation (in a seeded order, skipping ones
    that would overshoot the target share by far), so no scene is seen in both halves. Otherwise (one
    transcript, a few files) the last ``val_fraction`` of each conversation's pairs is validation, one
    contiguous block each, and the training pairs next to a block that share a turn with it (a reply that
    is the block's first prompt, a context turn) are left out: the gap. Validation is never empty with 2
    or more pairs; train may be, for a conversation too short to split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n = len(pairs)
    if n < 2:
        return list(pairs), []
    target = max(1, round(val_fraction * n))
    sizes = collections.Counter(p.conversation for p in pairs)
    if len(sizes) >= _WHOLE_CONV_MIN:
        order = sorted(sizes)
        random.Random(seed).shuffle(order)
        chosen, count = set(), 0
        for conv in order:
            if count >= target:
                break
            if count + sizes[conv] <= 2 * target and count + sizes[conv] < n:
                chosen.add(conv)
                count += sizes[conv]
        if chosen:
            val = [p for p in pairs if p.conversation in chosen]
            return [p for p in pairs if p.conversation not in chosen], val
    return _split_blocks(pairs, val_fraction)


def _split_blocks(pairs: Sequence[Pair], val_fraction: float) -> tuple[list[Pair], list[Pair]]:
    by_conv: dict[int, list[int]] = {}
    for i, p in enumerate(pairs):
        by_conv.setdefault(p.conversation, []).append(i)
    val_rows: set[int] = set()
    for rows in by_conv.values():
        k = min(len(rows) - 1, round(val_fraction * len(rows)))
        val_rows.update(rows[len(rows) - k:] if k > 0 else [])
    if not val_rows:   # every conversation too short for a share of its own: the tail of the largest
        rows = max(by_conv.values(), key=len)
        val_rows.update(rows[len(rows) - max(1, round(val_fraction * len(rows))):])
    val = [p for i, p in enumerate(pairs) if i in val_rows]
    used: dict[int, set] = {}
    for p in val:
        used.setdefault(p.conversation, set()).update(p.turns())
    train = [p for i, p in enumerate(pairs) if i not in val_rows and not used.get(p.conversation, set()) & p.turns()]
    return train, val
