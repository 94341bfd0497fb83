"""The token filter shared by both samplers, and the live controls a UI changes while text streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnchat.text.tokenizers import EOD, UNK

_NUCLEUS_GUESS = 64             # top-p first tries the nucleus among this many most likely tokens


@dataclass
class LiveControls:
    """Sampling settings read afresh at every token, so a UI can change them while text streams.

    ``temperature`` <= 0 is greedy; ``top_k`` <= 0 (or >= the vocabulary) is off; ``top_p`` >= 1 is off
    (<= 0 keeps only the most likely token). Setting ``stop_requested`` ends the generation after the
    token being produced, with reason "cancelled".
    """

    temperature: float
    top_k: int = 0
    top_p: float = 1.0
    stop_requested: bool = False


def _fallback(logits: np.ndarray) -> int:
    """A token when sampling fails on non-finite logits (a diverged model): the largest finite logit,
    never UNK; EOD when nothing is finite."""
    safe = np.where(np.isfinite(logits), logits, -np.inf)
    safe[UNK] = -np.inf
    idx = int(safe.argmax())
    return idx if idx != UNK else EOD


def _greedy(logits, d) -> int:
    idx = int(d.argmax())
    return idx if idx != UNK else _fallback(logits)


def _sample_filtered(logits, d, e, w, temp, top_k, top_p, u, V) -> int:
    """Sample with top-k and/or top-p filtering (the slower path); ``w`` is scratch space."""
    if top_k == 1:
        return _greedy(logits, d)
    if temp == 1:
        np.copyto(w, e)
    else:
        np.multiply(d, 1.0 / temp, out=w)
        np.exp(w, out=w)
    cand = None
    if 0 < top_k < V - 1:
        cand = np.argpartition(d, V - top_k)[V - top_k:]   # the k largest logits (UNK is -inf)
    if top_p < 1:
        if top_p <= 0:
            return _greedy(logits, d)
        mass = None                                         # of the pool top-p works on
        if cand is None:
            cand = np.arange(V)
            if V > 4 * _NUCLEUS_GUESS:
                # The nucleus is usually small: sort only the largest few when they hold enough mass.
                top = np.argpartition(d, V - _NUCLEUS_GUESS)[V - _NUCLEUS_GUESS:]
                mass = float(w.sum())
                if float(w[top].sum()) >= top_p * mass:
                    cand = top
        cand = cand[np.argsort(-d[cand], kind="stable")]    # most likely first
        cum = np.add.accumulate(w[cand])
        keep = int(np.searchsorted(cum, top_p * (cum.item(-1) if mass is None else mass), "left")) + 1
        cand = cand[:keep]                                  # the smallest set holding top_p of the mass
    elif cand is None:
        cand = np.arange(V)
    cum = np.add.accumulate(w[cand])
    i = int(cum.searchsorted(u * cum.item(-1), "right"))
    return int(cand[i]) if i < len(cand) else _fallback(logits)


def _alternatives(d: np.ndarray, e: np.ndarray, total: float, n: int, token_text) -> tuple[tuple[str, float], ...]:
    """The n most likely tokens (ranked by logit, UNK last at -inf and never listed) with probabilities."""
    V = len(d)
    n = min(n, V - 1)
    top = np.argpartition(d, V - n)[V - n:]
    top = top[np.argsort(-d[top], kind="stable")]
    scale = 1.0 / total if total > 0 else 0.0
    return tuple((token_text(i), e.item(i) * scale) for i in top.tolist())
