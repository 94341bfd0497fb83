"""The classifier's figures on held-out texts, and the two baselines it is measured against.

``figures`` gives accuracy, macro-F1 (the mean of every label's F1, so a rare label counts as much as a
common one), each label's precision and recall, and the confusion matrix (rows: true label, columns:
predicted). The baselines are computed once per split: the majority label, and logistic regression on
TF-IDF of character 1- to 4-grams (hashed), trained here with torch, so no other library is needed.
"""

from __future__ import annotations

import math
import warnings
import zlib
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rnnchat.classify.data import TextArrays
from rnnchat.device import autocast

_BATCH = 64
_NGRAM_BUCKETS = 1 << 18       # hashed n-gram features: collisions are rare at this size for a few MB of text
_NGRAM_EPOCHS = 40


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


def _ngram_rows(texts: Sequence[str]) -> tuple[list[int], list[int], list[float]]:
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        counts: dict[int, int] = {}
        padded = f" {' '.join(text.lower().split())} "
        for n in (1, 2, 3, 4):
            for j in range(len(padded) - n + 1):
                h = zlib.crc32(padded[j:j + n].encode("utf-8", "surrogatepass")) % _NGRAM_BUCKETS
                counts[h] = counts.get(h, 0) + 1
        for h, c in counts.items():
            rows.append(i)
            cols.append(h)
            vals.append(1.0 + math.log(c))                     # sublinear term frequency
    return rows, cols, vals


def _tfidf(texts: Sequence[str], idf: torch.Tensor | None = None):
    """(rows x buckets CSR matrix of L2-normalised TF-IDF, its transpose, the idf used)."""
    rows, cols, vals = _ngram_rows(texts)
    r, c, v = torch.tensor(rows), torch.tensor(cols), torch.tensor(vals)
    if idf is None:
        df = torch.bincount(c, minlength=_NGRAM_BUCKETS).float()
        idf = torch.log((1 + len(texts)) / (1 + df)) + 1
    v = v * idf[c]
    norm = torch.zeros(len(texts)).index_add_(0, r, v * v).sqrt().clamp(min=1e-12)
    with warnings.catch_warnings():       # torch calls its sparse CSR support beta; these two products are plain
        warnings.simplefilter("ignore")
        m = torch.sparse_coo_tensor(torch.stack([r, c]), v / norm[r], (len(texts), _NGRAM_BUCKETS)).coalesce()
        return m.to_sparse_csr(), m.t().coalesce().to_sparse_csr(), idf


def ngram_baseline(train_texts: Sequence[str], train_labels: Sequence[int], val_texts: Sequence[str],
                   val_labels: Sequence[int], labels: Sequence[str], seed: int = 0) -> dict:
    """Logistic regression (balanced class weights, L2) on TF-IDF of character 1-4-grams, by full-batch Adam
    with the gradient written out (autograd through sparse products is several times slower)."""
    x, xt, idf = _tfidf(train_texts)
    xv, _, _ = _tfidf(val_texts, idf)
    y = torch.tensor(list(train_labels))
    n, k = len(y), len(labels)
    counts = torch.bincount(y, minlength=k).float().clamp(min=1)
    weight = (n / (k * counts))[y][:, None] / n
    w, b = torch.zeros(_NGRAM_BUCKETS, k), torch.zeros(k)
    m1, m2 = torch.zeros_like(w), torch.zeros_like(w)
    lr, beta1, beta2 = 0.05, 0.9, 0.999
    for t in range(1, _NGRAM_EPOCHS + 1):
        g = torch.softmax(x @ w + b, -1)
        g[torch.arange(n), y] -= 1
        g *= weight
        grad = xt @ g + 2e-5 * w
        b -= lr * g.sum(0)
        m1.mul_(beta1).add_(grad, alpha=1 - beta1)
        m2.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        w -= lr * (m1 / (1 - beta1 ** t)) / ((m2 / (1 - beta2 ** t)).sqrt() + 1e-8)
    pred = (xv @ w + b).argmax(-1).tolist()
    return figures(val_labels, pred, labels)
