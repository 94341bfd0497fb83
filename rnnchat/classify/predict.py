"""What a trained classifier says about a text: each label's probability, and how the decision forms as it reads.

``probabilities`` is what ``rnnchat classify`` prints; ``reading`` is for views that show the decision
forming token by token: the probabilities after each token, and how far each token moved them (the total
variation distance between the distributions before and after it; the first token's is from uniform).
Texts are read in full, however long.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from rnnchat.classify.model import Classifier


@dataclass(frozen=True)
class Prediction:
    label: str                           # the likeliest label
    probabilities: dict[str, float]      # every label's, in the run's label order

    def to_dict(self) -> dict:
        return {"label": self.label, "probabilities": self.probabilities}


@dataclass(frozen=True)
class Step:
    token: str                           # the token's text as the tokenizer decodes it
    probabilities: tuple[float, ...]     # every label's, after reading up to and including this token
    moved: float                         # how much this token moved the decision, 0..1


def _ids(tokenizer, text: str) -> torch.Tensor:
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    if len(ids) == 0:
        raise ValueError("an empty text has no label")
    return torch.from_numpy(ids)


@contextmanager
def _threads_for(model: Classifier, rows: int):
    """One thread for one text on the CPU: its small per-token operations wait at a thread barrier for the
    other core, which measured 2-2.5x slower (17 against 38 ms a 162-character text) whenever that core
    was busy and no faster when it was idle (``benchmarks/journal/2026-12-04-classify.md``). Training and
    batches of texts keep every thread."""
    n = torch.get_num_threads()
    if rows != 1 or n == 1 or model.embed.weight.device.type != "cpu":
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@torch.no_grad()
def probabilities(model: Classifier, tokenizer, texts: list[str]) -> list[Prediction]:
    """Each text's label and every label's probability (texts read in full, one batch)."""
    labels = model.cfg.labels
    ids = [_ids(tokenizer, t) for t in texts]
    lengths = torch.tensor([len(x) for x in ids])
    batch = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)
    was = model.training
    model.eval()
    with _threads_for(model, len(texts)):
        probs = torch.softmax(model(batch.to(model.embed.weight.device), lengths).float(), -1).tolist()
    model.train(was)
    return [Prediction(labels[int(np.argmax(p))], {name: float(v) for name, v in zip(labels, p)}) for p in probs]


@torch.no_grad()
def reading(model: Classifier, tokenizer, text: str) -> list[Step]:
    """The probabilities after each token of ``text`` and how much each token moved them."""
    ids = _ids(tokenizer, text)
    was = model.training
    model.eval()
    with _threads_for(model, 1):
        probs = torch.softmax(model.read(ids).float(), -1)
    model.train(was)
    before = torch.cat([torch.full((1, probs.shape[1]), 1.0 / probs.shape[1]), probs[:-1]])
    moved = 0.5 * (probs - before).abs().sum(-1)
    return [Step(tokenizer.token_text(int(i)), tuple(p), float(m))
            for i, p, m in zip(ids.tolist(), probs.tolist(), moved.tolist())]
