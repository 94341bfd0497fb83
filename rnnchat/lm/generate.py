"""Sampling text from an RNNLM: ``generate``, the one sampler every front end uses.

It steps the model with ``FastStepper`` (packed float32 weights on the CPU, no module calls: 15-25x the
speed of calling the module per token; how and why in docs/sampling.md) and picks tokens with the
shared filter in ``rnnchat.sampling``.
"""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import torch

from rnnchat.errors import ConfigError
from rnnchat.events import SampleDone, Token
from rnnchat.lm.config import SampleConfig
from rnnchat.lm.model import RNNLM
from rnnchat.lm.stepper import FastStepper
from rnnchat.sampling import LiveControls, Stream, TokenFilter
from rnnchat.vocab import EOD, UNK


def generate(model: RNNLM, tokenizer, cfg: SampleConfig, prompt: str = "", *, alternatives: int = 0,
             controls: LiveControls | None = None) -> Stream:
    """Stream a continuation of ``prompt``: one ``Token`` per sampled token, then one ``SampleDone``.

    * The model is primed with the document boundary (EOD) followed by the prompt's ids, i.e. the
      prompt is read as the start of a new document; an empty prompt starts a document from nothing.
      The prompt itself is not yielded. A prompt whose every id is unknown (UNK) is refused with a
      ConfigError, raised by this call before any event; partly unknown prompts are run as they are
      (callers warn with ``tokenizer.count_unknown``).
    * ``Token.text`` is what the tokenizer's streaming decoder emits for the token: "" while a
      character's UTF-8 bytes are incomplete. ``Token.prob`` is the model's own probability of the
      token at temperature 1, before temperature, top-k and top-p (renormalised over the tokens that
      can be sampled, i.e. without UNK): the model's confidence, for colouring text by probability.
      ``alternatives=N`` adds the N most likely tokens under that same distribution as (text, prob)
      pairs, most likely first; with 0 nothing is computed.
    * Temperature 0 is greedy (argmax). Top-k then top-p (nucleus) filtering apply to the
      temperature-scaled distribution. ``cfg.seed`` makes the output reproducible (a private numpy
      Generator, independent of global RNG state); None draws fresh entropy.
    * UNK is never sampled. EOD may be: it decodes to "\\n\\n" and generation carries on, the model
      starting a new document, as it saw EOD between documents in training.
    * ``cfg.stop``: generation ends as soon as the text contains one of the strings; the last
      token's text is cut just after the stop string, so the streamed text ends with it (reason
      "stop"; empty stop strings are ignored). ``cfg.length`` counts tokens (reason "length").
      ``controls.stop_requested`` ends it with reason "cancelled". ``controls`` (default: built from
      ``cfg``) overrides cfg's temperature, top_k and top_p and is read at every token.
    * ``SampleDone.chars`` is the length of the streamed text; ``seconds`` runs from the first request
      for an event (priming included) to the end.

    Raises ConfigError at the call (not at the first event) for an invalid ``cfg``, an all-unknown
    prompt, or a tokenizer whose vocabulary size differs from the model's. The weights are read when
    this is called; the model is never called and its mode is left alone. Not holding
    ``torch.inference_mode`` across ``yield`` is deliberate: that mode is thread-local and would leak
    into the consumer's code between events (the stepper's tensors never need autograd anyway).
    """
    cfg.validate()
    if isinstance(alternatives, bool) or not isinstance(alternatives, int) or alternatives < 0:
        raise ConfigError(f"alternatives must be a whole number >= 0; got {alternatives!r}")
    ids = _priming_ids(model, tokenizer, prompt)
    if controls is None:
        controls = LiveControls.of(cfg)
    stepper = FastStepper(model, cfg.weights)
    return Stream(_stream(stepper, tokenizer, cfg, ids, alternatives, controls), controls)


def _priming_ids(model: RNNLM, tokenizer, prompt: str) -> np.ndarray:
    """The ids a sampler primes ``model`` with: EOD, then ``prompt``'s ids (a new document that starts with
    the prompt). Raises ConfigError for a tokenizer whose vocabulary size differs from the model's, or a
    prompt whose every id is unknown (UNK); a partly unknown prompt is read as it is."""
    vocab = model.head.out_features
    if tokenizer.vocab_size != vocab:
        raise ConfigError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model was built for {vocab}")
    ids = np.asarray(tokenizer.encode(prompt) if prompt else np.empty(0, np.int64), dtype=np.int64)
    if prompt and tokenizer.count_unknown(ids) == len(ids):
        raise ConfigError("the prompt has no characters the model knows; "
                          "use characters that appear in the training corpus")
    return np.concatenate([[EOD], ids])


def _stream(stepper: FastStepper, tokenizer, cfg: SampleConfig, ids: np.ndarray, n_alt: int,
            controls: LiveControls) -> Iterator[Token | SampleDone]:
    t0 = time.perf_counter()
    length = cfg.length
    pick = TokenFilter(stepper.vocab_size, cfg.seed)
    feed = tokenizer.decoder().feed
    token_text = tokenizer.token_text
    stops = tuple(s for s in cfg.stop if s)
    keep_tail = max((len(s) for s in stops), default=1) - 1
    tail = ""
    step = stepper.step

    n = chars = 0
    reason = "length"
    with torch.inference_mode():
        logits = stepper.prime(ids) if length > 0 else None
    while n < length:
        if controls.stop_requested:
            reason = "cancelled"
            break
        idx = pick.pick(logits, controls)
        prob = pick.prob
        alts = pick.alternatives(n_alt, token_text)

        text = feed(idx)
        stopped = False
        if stops and text:
            window = tail + text
            end = min((j + len(s) for s in stops if (j := window.find(s)) >= 0), default=-1)
            if end >= 0:
                text = text[:end - len(tail)]
                stopped = True
            elif keep_tail:
                tail = window[-keep_tail:]
        n += 1
        chars += len(text)
        yield Token(text, idx, prob, alts)
        if stopped:
            reason = "stop"
            break
        if n < length:
            logits = step(idx)
    yield SampleDone(n, chars, time.perf_counter() - t0, reason, stepper.weights)


def sample_text(model: RNNLM, tokenizer, length: int, seed: int, prompt: str = "",
                temperature: float = 0.8) -> str:
    """``length`` tokens of text continuing ``prompt`` (the prompt is not included), the same text for
    the same seed and weights; used for the trainer's sample at each evaluation."""
    return generate(model, tokenizer, SampleConfig(length=length, temperature=temperature, seed=seed), prompt).text()


class Picker:
    """Generation where a person picks the next token: ``options(k)`` are the k most likely next tokens
    as (id, text, probability) under the model's own distribution (UNK never); ``take(id)`` appends one
    and carries the state on from it; ``auto()`` lets the model sample it (with ``cfg``'s settings).
    The prompt primes the model as in ``generate``, and is refused for the same reasons."""

    def __init__(self, model: RNNLM, tokenizer, cfg: SampleConfig, prompt: str = ""):
        cfg.validate()
        ids = _priming_ids(model, tokenizer, prompt)   # the same checks and ids as generate()
        self.tokenizer = tokenizer
        self._stepper = FastStepper(model, cfg.weights)
        self._filter = TokenFilter(self._stepper.vocab_size, cfg.seed)
        self._controls = LiveControls.of(cfg)
        self._feed = tokenizer.decoder().feed
        self.pieces: list[str] = []
        with torch.inference_mode():
            self._logits = self._stepper.prime(ids)

    def options(self, k: int) -> list[tuple[int, str, float]]:
        logits = np.asarray(self._logits, dtype=np.float64).copy()
        logits[UNK] = -np.inf
        p = np.exp(logits - logits.max())
        p /= p.sum()
        top = np.argsort(-p, kind="stable")[:max(1, min(k, len(p) - 1))]
        return [(int(i), self.tokenizer.token_text(int(i)), float(p[i])) for i in top]

    def take(self, token_id: int) -> str:
        if not 0 <= token_id < self._stepper.vocab_size or token_id == UNK:
            raise ConfigError(f"token {token_id} is not one the model can write")
        text = self._feed(token_id)
        self.pieces.append(text)
        self._logits = self._stepper.step(token_id)
        return text

    def auto(self) -> int:
        token_id = self._filter.pick(self._logits, self._controls)
        self.take(token_id)
        return token_id

    @property
    def text(self) -> str:
        return "".join(self.pieces)
