"""Dialogue pairs as token arrays, and the padded batches the chat trainer reads.

The encoder input of a pair is its context turns and then the prompt, each turn followed by the
tokenizer's EOD id, so the model can tell turns apart; the decoder reads EOD + reply and learns to
write reply + EOD. Pairs are stored as two flat id arrays with offsets (no Python list per pair).
Each step's batch depends only on (seed, step), so a resumed run reads what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from rnnchat.chat.config import Seq2SeqConfig
from rnnchat.chat.pairs import Pair, PairReport, extract_pairs, split_pairs
from rnnchat.config import TrainConfig
from rnnchat.errors import CorpusError
from rnnchat.text.corpus import Corpus
from rnnchat.text.tokenizers import Tokenizer, train_tokenizer
from rnnchat.vocab import EOD, UNK

PAD = UNK                 # padding id in inputs; masked out of attention and the loss
IGNORE = -100             # padding in targets, skipped by cross_entropy
_BUCKET = 8               # a step draws this many batches' worth of pairs and trains on one length-sorted slice


def encode_source(tokenizer: Tokenizer, context: Sequence[str], prompt: str) -> np.ndarray:
    """The encoder input: each context turn and then the prompt, each followed by EOD."""
    parts = []
    for turn in (*context, prompt):
        parts.append(np.asarray(tokenizer.encode(turn), dtype=np.int64))
        parts.append(np.array([EOD], dtype=np.int64))
    return np.concatenate(parts)


class PairArrays:
    """Token ids of many pairs: sources and replies (reply + EOD), flat with offsets."""

    def __init__(self, tokenizer: Tokenizer, pairs: Sequence[Pair]):
        src = [encode_source(tokenizer, p.context, p.prompt) for p in pairs]
        tgt = [np.append(np.asarray(tokenizer.encode(p.reply), dtype=np.int64), EOD) for p in pairs]
        self.src_len = np.array([len(s) for s in src], dtype=np.int64)
        self.tgt_len = np.array([len(t) for t in tgt], dtype=np.int64)
        self.src_off = np.concatenate([[0], np.cumsum(self.src_len)])
        self.tgt_off = np.concatenate([[0], np.cumsum(self.tgt_len)])
        self.src = np.concatenate(src) if src else np.zeros(0, np.int64)
        self.tgt = np.concatenate(tgt) if tgt else np.zeros(0, np.int64)
        self.unknown = int(np.count_nonzero(self.src == UNK) + np.count_nonzero(self.tgt == UNK))

    def __len__(self) -> int:
        return len(self.src_len)

    @property
    def tokens(self) -> int:
        return int(self.src_len.sum() + self.tgt_len.sum())

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(src, lengths, tgt_in, tgt_out): padded int64 tensors for the given pairs."""
        rows = np.asarray(rows, dtype=np.int64)
        B = len(rows)
        S, T = int(self.src_len[rows].max()), int(self.tgt_len[rows].max())
        src = np.full((B, S), PAD, np.int64)
        tgt_in = np.full((B, T), PAD, np.int64)
        tgt_out = np.full((B, T), IGNORE, np.int64)
        for b, r in enumerate(rows.tolist()):
            s = self.src[self.src_off[r]:self.src_off[r + 1]]
            t = self.tgt[self.tgt_off[r]:self.tgt_off[r + 1]]
            src[b, :len(s)] = s
            tgt_in[b, 0] = EOD
            tgt_in[b, 1:len(t)] = t[:-1]
            tgt_out[b, :len(t)] = t
        return (torch.from_numpy(src), torch.from_numpy(self.src_len[rows].copy()),
                torch.from_numpy(tgt_in), torch.from_numpy(tgt_out))


def batch_rows(n_pairs: int, batch_size: int, seed: int, step: int, lengths: np.ndarray) -> np.ndarray:
    """The pairs of one training step: uniform over all pairs, but of similar length.

    ``_BUCKET`` batches' worth of pairs are drawn at random, sorted by length and one slice of them is
    taken; every pair is still equally likely to be picked, and padding shrinks several-fold.
    """
    rng = np.random.default_rng([seed, step, 7])
    b = min(batch_size, n_pairs)
    pool = rng.choice(n_pairs, size=min(n_pairs, b * _BUCKET), replace=False)
    pool = pool[np.argsort(lengths[pool], kind="stable")]
    k = int(rng.integers(0, max(1, len(pool) // b)))
    return pool[k * b:(k + 1) * b]


@dataclass
class ChatData:
    tokenizer: Tokenizer
    train: PairArrays
    val: PairArrays
    val_pairs: list[Pair]
    report: PairReport
    val_reply_chars: int       # characters of the validation replies (for bits per character)

    @property
    def chars_per_token(self) -> float:
        """Characters per reply token on validation (the EOD ending each reply counts as a token)."""
        return self.val_reply_chars / max(1, int(self.val.tgt_len.sum()))

    @property
    def unknown(self) -> int:
        return self.train.unknown + self.val.unknown


def pairs_of(corpus: Corpus, model_cfg: Seq2SeqConfig) -> PairReport:
    """The dialogue pairs a chat model of ``model_cfg`` reads from ``corpus`` (its context and length bounds)."""
    return extract_pairs(corpus, context_turns=model_cfg.context_turns, max_turn_chars=model_cfg.max_turn_chars,
                         max_context_chars=model_cfg.max_turn_chars)


def split_of(corpus: Corpus, model_cfg: Seq2SeqConfig, cfg: TrainConfig) -> tuple[PairReport, list[Pair], list[Pair]]:
    """(the pairs, the training pairs, the held-out pairs) of a chat run: the same split every time."""
    report = pairs_of(corpus, model_cfg)
    return (report, *split_pairs(report.pairs, cfg.val_fraction, cfg.seed))


def prepare_chat(corpus: Corpus, cfg: TrainConfig, model_cfg: Seq2SeqConfig,
                 tokenizer: Tokenizer | None = None) -> ChatData:
    """Pairs from ``corpus``, split into train and validation, tokenised (training a tokenizer if none)."""
    report, train_pairs, val_pairs = split_of(corpus, model_cfg, cfg)
    if not train_pairs or not val_pairs:
        raise CorpusError(f"corpus '{corpus.name}' has {len(report.pairs)} usable dialogue pair(s), too few to "
                          f"keep validation pairs apart from training ones ({len(train_pairs)} left to train "
                          f"on, {len(val_pairs)} held out); add dialogue")
    if tokenizer is None:
        # Characters come from every pair, so validation has no unknown characters; subwords are
        # learned from the training pairs only, as for the language model.
        texts = [t for p in (report.pairs if cfg.level == "char" else train_pairs) for t in (p.prompt, p.reply)]
        tokenizer = train_tokenizer(cfg.level, texts, cfg.vocab_size)
    return ChatData(tokenizer, PairArrays(tokenizer, train_pairs), PairArrays(tokenizer, val_pairs),
                    list(val_pairs), report, sum(len(p.reply) + 1 for p in val_pairs))
