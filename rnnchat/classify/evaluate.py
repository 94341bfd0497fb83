"""The classifier's figures on held-out texts, and the two baselines it is measured against.

``figures`` gives accuracy, macro-F1 (the mean of every label's F1, so a rare label counts as much as a
common one), each label's precision and recall, and the confusion matrix (rows: true label, columns:
predicted). The baselines are computed once per split: the majority label, and logistic regression on
TF-IDF of character 1- to 4-grams (hashed; ``ngrams.py``), trained here with torch, so no other library is
needed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rnnchat.classify import ngrams
from rnnchat.classify.data import TextArrays
from rnnchat.device import autocast

_BATCH = 64


def confusion(true: Sequence[int], pred: Sequence[int], n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(true, np.int64), np.asarray(pred, np.int64)), 1)
    return m


def figures(true: Sequence[int], pred: Sequence[int], labels: Sequence[str]) -> dict:
    """accuracy, macro_f1, precision and recall by label, and the confusion matrix (as lists)."""
    m = confusion(true, pred, len(labels))
    tp = np.diag(m).astype(float)
    predicted, actual = m.sum(0), m.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    present = actual > 0                      # a label with no held-out text has no recall to average
    return {"accuracy": float(tp.sum() / max(1, m.sum())),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "precision": {name: float(p) for name, p in zip(labels, precision)},
            "recall": {name: float(r) for name, r in zip(labels, recall)},
            "confusion": m.tolist()}


@torch.no_grad()
def score(model, arrays: TextArrays, device: torch.device, precision: str = "fp32",
          rows: Sequence[int] | None = None) -> tuple[np.ndarray, float]:
    """(probabilities (texts, labels), summed cross-entropy in nats) of the given texts (all by default)."""
    was_training = model.training
    model.eval()
    rows = np.arange(len(arrays)) if rows is None else np.asarray(rows, np.int64)
    order = rows[np.argsort(arrays.lengths[rows], kind="stable")]     # similar lengths pad less
    probs = np.zeros((len(arrays), len(model.cfg.labels)), dtype=np.float32)
    total = 0.0
    for start in range(0, len(order), _BATCH):
        chunk = order[start:start + _BATCH]
        ids, lengths, y = arrays.batch(chunk)
        with autocast(device, precision):
            logits = model(ids.to(device), lengths).float()
        total += float(F.cross_entropy(logits, y.to(device), reduction="sum"))
        probs[chunk] = torch.softmax(logits, -1).cpu().numpy()
    model.train(was_training)
    return probs[rows], total


def majority_baseline(train_labels: Sequence[int], val_labels: Sequence[int], labels: Sequence[str]) -> dict:
    common = int(np.bincount(np.asarray(train_labels), minlength=len(labels)).argmax())
    return figures(val_labels, [common] * len(val_labels), labels)


def ngram_baseline(train_texts: Sequence[str], train_labels: Sequence[int], val_texts: Sequence[str],
                   val_labels: Sequence[int], labels: Sequence[str], seed: int = 0) -> dict:
    """Logistic regression (balanced label weights, L2) on TF-IDF of character 1-4-grams (``ngrams.py``);
    its predictions are kept per split in the cache folder, so a resumed run does not train it again."""
    key = ngrams.split_key(train_texts, train_labels, val_texts, len(labels))
    pred = ngrams.cached_predictions(key, len(val_texts), len(labels))
    if pred is None:
        pred = ngrams.logistic_regression(train_texts, train_labels, val_texts, len(labels))
        ngrams.remember(key, pred)
    return figures(val_labels, pred, labels)
