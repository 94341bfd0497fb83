"""What both samplers share: the one token filter, the live controls a UI changes while text streams,
and ``Stream``, the response object ``lm.generate.generate`` and ``chat.generate.decode_reply`` return.

The filter: UNK is never picked; temperature 0 is greedy; otherwise top-k, then top-p (nucleus) on the
temperature-scaled distribution; one uniform number per token from a private seeded Generator, so a
seed gives the same text. It also reports the model's own probability of the pick at temperature 1 (and,
on request, the most likely alternatives), which the app colours text by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from rnnchat.events import Event, SampleDone, Token
from rnnchat.vocab import EOD, UNK

_NUCLEUS_GUESS = 64             # top-p first tries the nucleus among this many most likely tokens
_UNIFORM_BLOCK = 256            # uniform random numbers drawn per Generator call


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

    @classmethod
    def of(cls, cfg, temperature: float | None = None) -> "LiveControls":
        """Controls starting from a sampling config (any object with temperature, top_k and top_p)."""
        return cls(cfg.temperature if temperature is None else temperature, cfg.top_k, cfg.top_p)


class TokenFilter:
    """Picks next tokens from logits over a vocabulary of ``vocab`` ids, with preallocated buffers.

    ``pick(logits, controls)`` returns the chosen id; afterwards ``prob`` is the model's probability of
    it at temperature 1 (over every id but UNK) and ``alternatives(n, token_text)`` the n most likely ids
    under that same distribution as (text, probability), most likely first.
    """

    def __init__(self, vocab: int, seed: int | None):
        self.vocab = vocab
        self.prob = 0.0
        self._rng = np.random.default_rng(seed)
        self._d = np.empty(vocab, np.float32)      # logits - max, UNK at -inf
        # Rows [d, d / temperature] -> their exp -> their running sums: one ufunc call each for both
        # distributions (each call costs ~1 us whatever its size at this vocabulary).
        self._dd = np.empty((2, vocab), np.float32)
        self._ew = np.empty((2, vocab), np.float32)
        self._cc = np.empty((2, vocab), np.float32)
        self._scale = np.ones((2, 1), np.float32)
        self._scaled_for = 1.0
        self._e = self._ew[0]                      # exp(d): unnormalised probabilities at temperature 1
        self._w = self._ew[1]                      # unnormalised probabilities at the sampling temperature
        self._cdf = self._cc[1]
        self._total = 0.0
        self._uniforms: list[float] = []
        self._ui = 0

    def _uniform(self) -> float:
        # One per token, used or not, so the stream of draws stays aligned whatever the settings.
        if self._ui == len(self._uniforms):
            self._uniforms = self._rng.random(_UNIFORM_BLOCK).tolist()
            self._ui = 0
        self._ui += 1
        return self._uniforms[self._ui - 1]

    def pick(self, logits: np.ndarray, controls: LiveControls) -> int:
        d, e, w, cdf, V = self._d, self._e, self._w, self._cdf, self.vocab
        temp, top_k, top_p = controls.temperature, controls.top_k, controls.top_p
        u = self._uniform()
        np.copyto(d, logits)
        d[UNK] = -np.inf
        np.subtract(d, np.maximum.reduce(d), out=d)
        plain = not (0 < top_k < V - 1) and not top_p < 1
        if temp > 0 and temp != 1 and plain:                      # the default: both rows at once
            if temp != self._scaled_for:
                self._scale[1, 0] = 1.0 / temp
                self._scaled_for = temp
            np.multiply(d, self._scale, out=self._dd)              # [d, d / temp]
            np.exp(self._dd, out=self._ew)                          # [e, w]
            np.add.accumulate(self._ew, axis=1, out=self._cc)
            total = self._cc.item(0, -1)
            idx = int(cdf.searchsorted(u * cdf.item(-1), "right"))
            if idx >= V:                                          # only with non-finite logits
                idx = _fallback(logits)
            self._total = total
            self.prob = e.item(idx) / total if total > 0 else 0.0
            return idx
        np.exp(d, out=e)
        if temp <= 0:                                            # greedy
            idx = int(d.argmax())
            total = float(np.add.reduce(e))
            if idx == UNK or not total > 0:                      # only with non-finite logits
                idx = _fallback(logits)
        elif plain:                                              # temperature 1
            np.add.accumulate(e, out=cdf)
            total = cdf.item(-1)
            idx = int(cdf.searchsorted(u * total, "right"))
            if idx >= V:                                         # only with non-finite logits
                idx = _fallback(logits)
        else:
            total = float(np.add.reduce(e))
            idx = _sample_filtered(logits, d, e, w, temp, int(top_k), top_p, u, V)
        self._total = total
        self.prob = e.item(idx) / total if total > 0 else 0.0
        return idx

    def alternatives(self, n: int, token_text: Callable[[int], str]) -> tuple[tuple[str, float], ...]:
        return _alternatives(self._d, self._e, self._total, n, token_text) if n else ()


class Stream:
    """A response you iterate: the sampler's events as they are produced (``Token``s, then one
    ``SampleDone``). ``text()`` runs it to the end and returns the text; ``stop()`` asks it to end after
    the token being produced; ``done`` is the ``SampleDone`` once it has come."""

    def __init__(self, events: Iterator[Event], controls: LiveControls):
        self._events = events
        self.controls = controls
        self.pieces: list[str] = []
        self.done: SampleDone | None = None

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Event:
        event = next(self._events)
        if isinstance(event, Token):
            self.pieces.append(event.text)
        elif isinstance(event, SampleDone):
            self.done = event
        return event

    def text(self) -> str:
        for _ in self:
            pass
        return "".join(self.pieces)

    def stop(self) -> None:
        self.controls.stop_requested = True

    def close(self) -> None:
        """End the stream now (after an interruption): what it holds to the end runs at once."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()


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
