"""Labelled texts as token arrays, split and batched for the classifier.

Texts are stored as one flat id array with offsets (no Python list per text). A training text longer than
``max_tokens`` is cut to its first ``max_tokens`` tokens (the task says how many were). Each step's batch
depends only on (seed, step), so a resumed run reads what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from rnnchat.classify.config import ClassifierConfig
from rnnchat.config import TrainConfig
from rnnchat.errors import CorpusError
from rnnchat.safetext import neutralise
from rnnchat.text.corpus import Corpus
from rnnchat.text.labelled import Labelled, LabelledSet, check, split_labelled
from rnnchat.text.load import corpus_labelled
from rnnchat.text.tokenizers import Tokenizer, train_tokenizer
from rnnchat.vocab import UNK

PAD = UNK                 # padding id; packed sequences never read it
_BUCKET = 8               # a step draws this many batches' worth of texts and trains on one length-sorted slice


class TextArrays:
    """Token ids and label ids of many texts, flat with offsets."""

    def __init__(self, tokenizer: Tokenizer, texts: Sequence[str], labels: Sequence[int], max_tokens: int = 0):
        ids = [np.asarray(tokenizer.encode(t), dtype=np.int64) for t in texts]
        self.cut = sum(1 for x in ids if max_tokens and len(x) > max_tokens)
        if max_tokens:
            ids = [x[:max_tokens] for x in ids]
        ids = [x if len(x) else np.array([PAD], np.int64) for x in ids]   # an empty text reads as one pad
        self.lengths = np.array([len(x) for x in ids], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.chars = np.array([len(t) for t in texts], dtype=np.int64)
        self.unknown = int(np.count_nonzero(self.ids == UNK))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids, lengths, labels): a padded int64 batch of the given texts."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full((len(rows), int(self.lengths[rows].max())), PAD, np.int64)
        for b, r in enumerate(rows.tolist()):
            out[b, :self.lengths[r]] = self.ids[self.offsets[r]:self.offsets[r + 1]]
        return (torch.from_numpy(out), torch.from_numpy(self.lengths[rows].copy()),
                torch.from_numpy(self.labels[rows].copy()))


def batch_rows(n: int, batch_size: int, seed: int, step: int, lengths: np.ndarray) -> np.ndarray:
    """The texts of one step: every text equally likely, but of similar length (less padding to run)."""
    rng = np.random.default_rng([seed, step, 13])
    b = min(batch_size, n)
    pool = rng.choice(n, size=min(n, b * _BUCKET), replace=False)
    pool = pool[np.argsort(lengths[pool], kind="stable")]
    k = int(rng.integers(0, max(1, len(pool) // b)))
    return pool[k * b:(k + 1) * b]


@dataclass
class ClassifyData:
    tokenizer: Tokenizer
    labels: tuple[str, ...]
    train: TextArrays
    val: TextArrays
    val_texts: list[Labelled]
    train_texts: list[Labelled]
    read: LabelledSet

    @property
    def chars_per_token(self) -> float:
        return int(self.val.chars.sum()) / max(1, self.val.tokens)

    @property
    def train_chars_per_token(self) -> float:
        return int(self.train.chars.sum()) / max(1, self.train.tokens)


def read_checked(corpus: Corpus) -> LabelledSet:
    """The corpus's labelled texts, refused with one CorpusError when unusable."""
    data = corpus_labelled(corpus)
    check(data, corpus.name)
    return data


def prepare(corpus: Corpus, cfg: TrainConfig, model_cfg: ClassifierConfig,
            tokenizer: Tokenizer | None = None) -> ClassifyData:
    """The corpus's labelled texts, split by label and document, tokenised (training a tokenizer if none)."""
    read = read_checked(corpus)
    train_i, val_i = split_labelled(read.texts, cfg.val_fraction, cfg.seed)
    found = tuple(read.labels())
    labels = model_cfg.labels or found            # a resumed run keeps its own labels and their order
    unknown = sorted(set(found) - set(labels))
    if unknown:
        raise CorpusError(f"corpus '{neutralise(corpus.name)}' has labels the run was not trained with: "
                          + ", ".join(f"'{neutralise(x)}'" for x in unknown[:5]))
    index = {name: i for i, name in enumerate(labels)}
    train = [read.texts[i] for i in train_i]
    val = [read.texts[i] for i in val_i]
    if tokenizer is None:
        # Characters come from every text, so held-out texts have no unknown characters; subwords are
        # learned from the training texts only, as for the language model.
        source = read.texts if cfg.level == "char" else train
        tokenizer = train_tokenizer(cfg.level, [t.text for t in source], cfg.vocab_size)

    def arrays(texts: list[Labelled], cut: int) -> TextArrays:
        return TextArrays(tokenizer, [t.text for t in texts], [index[t.label] for t in texts], cut)

    return ClassifyData(tokenizer, labels, arrays(train, model_cfg.max_tokens), arrays(val, 0), val, train, read)
