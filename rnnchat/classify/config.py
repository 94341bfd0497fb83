"""Settings of the classifier and its training defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rnnchat.config import check_choice, check_int, check_recurrent
from rnnchat.errors import ConfigError

POOLINGS = ("last", "mean", "max")
MAX_LABELS = 200               # as text/labelled.py refuses more


@dataclass(frozen=True)
class ClassifierConfig:
    """An embedding, recurrent layers (the language model's cells), a pooled summary, a linear layer."""
    vocab_size: int = 0           # filled in from the tokenizer
    cell: str = "gru"             # the language model's default: it learns most per CPU minute
    layers: int = 2
    hidden: int = 256             # per direction, so a language model's layers fit it (--init-from)
    embed: int = 64
    dropout: float = 0.2          # on the embedding and the summary: labelled corpora are small
    bidirectional: bool = False   # a second layer of each width reading right to left
    pooling: str = "last"         # the summary: the final state, or the mean or max of the outputs over time
    max_tokens: int = 2000        # training texts longer than this are cut (with a notice); prediction reads all
    balance: bool = True          # weight the loss by inverse label frequency, so rare labels count as much
    labels: tuple[str, ...] = ()  # the label names, in the order of the output layer (filled in from the corpus)

    tie = False                   # weights.Weights asks; a classifier's head is never the embedding

    def __post_init__(self):
        if isinstance(self.labels, list):            # run.json holds a list
            object.__setattr__(self, "labels", tuple(self.labels))

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def validate(self) -> None:
        check_recurrent(self)
        check_choice("pooling", self.pooling, POOLINGS)
        check_int("max_tokens", self.max_tokens, 2, 10_000_000)
        if not isinstance(self.bidirectional, bool) or not isinstance(self.balance, bool):
            raise ConfigError("must be true or false", "bidirectional" if not isinstance(self.bidirectional, bool)
                              else "balance")
        labels = self.labels
        if not isinstance(labels, tuple) or not all(isinstance(x, str) and x for x in labels) \
                or len(set(labels)) != len(labels) or len(labels) > MAX_LABELS:
            raise ConfigError(f"must be up to {MAX_LABELS} distinct, non-empty names", "labels")


def settle(cfg: ClassifierConfig, task) -> tuple[ClassifierConfig, str]:
    """The labels wait for the corpus: the task read them, in the order of the output layer."""
    return dataclasses.replace(cfg, labels=task.data.labels), ""


def memorise_advice(cfg: ClassifierConfig) -> str:
    return "try a smaller preset or --dropout 0.5"


# Training defaults for --task classify where they differ from the language model's: a batch is whole
# texts, so fewer of them; a smaller rate and clip suit the one gradient per text; evaluations are cheap.
CLASSIFY_TRAIN_DEFAULTS = {"batch_size": 32, "lr": 3e-3, "clip": 1.0, "eval_every": 100}
