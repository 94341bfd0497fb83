"""Sampling text from an RNNLM: the one sampler every front end uses, and the fast per-step engine.

``generate`` streams ``Token`` events and ends with one ``SampleDone``; ``sample_text`` is the
plain-string convenience the trainer calls at each evaluation; ``FastStepper`` is the per-token engine
(also meant for later decoders such as chat and beam search).

Why a separate engine: at batch 1 an RNN step is a few small matrix-vector products, so calling
``nn.LSTM`` per token spends most of its time in module and dispatcher overhead (0.8-1.1k chars/s
for a 2x256 char LSTM on the 2-core dev machine, Xeon with AVX-512, torch 2.13 CPU; ~6k for a GRU).
``FastStepper`` keeps a float32 snapshot of the weights rearranged for the per-token path. What was
measured there (2x256 LSTM, vocab 65; ``python benchmarks/sampling.py``):

* Layer 0's input projection is a lookup table: ``embed @ W_ih0.T + biases`` is one (vocab, gates)
  row per token id, so layer 0 needs no input matmul at all.
* Biases ride inside the matrices as an extra row, multiplied by a constant 1 kept at the end of
  every hidden vector, so no separate bias additions happen per step.
* One matrix product per layer per step. Layer k's new hidden state h_k is multiplied once by
  ``[W_hh_k.T | W_ih_{k+1}.T]`` (the top layer: ``[W_hh_top.T | head.T]``): the first half is the
  recurrent part of layer k for the *next* token, the second the input part of layer k+1 (or the
  logits) for this one. A product per weight matrix cost 45-70 us per step; these two, 32 us with
  ``torch.mm(x, W, out=...)`` on an (in, out) layout (numpy/OpenBLAS: 44-46 us; (out, in): slower).
* The step is memory-bound: 3 MB of float32 weights per token. One core's 2 MB L2 cannot hold them
  (one thread: ~100 us per step, L3 speed), two cores can if each always reads the same half. So
  every matrix is stored as column blocks, one per thread, and multiplied with ``torch.bmm`` against
  a stride-0 expanded copy of h: torch gives each thread its own block every time, and both products
  take 27 us instead of 32. Matrices under 256 KB are not split (threads cost more than they save).
* Sigmoid gates use sigmoid(x) = 0.5 * tanh(x / 2) + 0.5 with the 1/2 folded into the weights (an
  exact power-of-two scale), so all gates of a layer need one ``tanh`` call; the LSTM buffers are laid
  out as [c | g f i o] so f*c and i*g are one multiplication. The element-wise update runs in numpy
  on views of preallocated buffers with ``out=`` (0.3-0.6 us a call, a third of a torch call): 8 calls
  per LSTM layer, ~7 us per step for both layers. A fully unrolled step saved only 1 us; not kept.
* Sampling draws from a cumulative sum (``np.add.accumulate``, 0.4 us; ``np.cumsum`` is 1.5 us) with
  a uniform number from a per-generation numpy Generator drawn 256 at a time; no torch.multinomial.
  Sampling, decoding and the Token event add ~7 us per token.

Result: ~40 us per step, 17-20k chars/s through ``generate`` (GRU 22-24k), first char 0.3-0.8 ms.

The stepper always runs on the CPU in float32, whatever the model's device and dtype: batch-1
sampling is latency-bound, and on a GPU every token would cost a dozen kernel launches plus a
device-to-host copy to pick the next token, which is slower than the CPU for models of this size.
It reads the weights once (a copy, so training can carry on; the packed copy is cached per model
until a parameter changes) and never calls the model, so the model's train/eval mode and weights
are untouched; it always computes eval-mode outputs (no dropout). It uses torch's intra-op threads
as they are set (``torch.set_num_threads`` is never called).
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
from rnnchat.stream import LiveControls, _alternatives, _fallback, _sample_filtered
from rnnchat.text.tokenizers import EOD, UNK

__all__ = ["LiveControls", "FastStepper", "generate", "sample_text"]

_UNIFORM_BLOCK = 256            # uniform random numbers drawn per Generator call


# ----------------------------------------------------------------------------------------- weights


# ----------------------------------------------------------------------------------------- stepper


# ---------------------------------------------------------------------------------------- sampling


def generate(model: RNNLM, tokenizer, cfg: SampleConfig, prompt: str = "", *, alternatives: int = 0,
             controls: LiveControls | None = None) -> Iterator[Token | SampleDone]:
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
    vocab = model.head.out_features
    if tokenizer.vocab_size != vocab:
        raise ConfigError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model was built for {vocab}")
    ids = np.asarray(tokenizer.encode(prompt) if prompt else np.empty(0, np.int64), dtype=np.int64)
    if prompt and tokenizer.count_unknown(ids) == len(ids):
        raise ConfigError("the prompt has no characters the model knows; "
                          "use characters that appear in the training corpus")
    if controls is None:
        controls = LiveControls(cfg.temperature, cfg.top_k, cfg.top_p)
    stepper = FastStepper(model)
    return _stream(stepper, tokenizer, cfg, np.concatenate([[EOD], ids]), alternatives, controls)


def _stream(stepper: FastStepper, tokenizer, cfg: SampleConfig, ids: np.ndarray, n_alt: int,
            controls: LiveControls) -> Iterator[Token | SampleDone]:
    t0 = time.perf_counter()
    V = stepper.vocab_size
    length = cfg.length
    rng = np.random.default_rng(cfg.seed)
    feed = tokenizer.decoder().feed
    token_text = tokenizer.token_text
    stops = tuple(s for s in cfg.stop if s)
    keep_tail = max((len(s) for s in stops), default=1) - 1
    tail = ""

    d = np.empty(V, np.float32)        # logits - max, UNK at -inf
    e = np.empty(V, np.float32)        # exp(d): unnormalised probabilities at temperature 1
    w = np.empty(V, np.float32)        # unnormalised probabilities at the sampling temperature
    cdf = np.empty(V, np.float32)
    copyto, sub, mul, exp, acc = np.copyto, np.subtract, np.multiply, np.exp, np.add.accumulate
    vmax, vsum = np.maximum.reduce, np.add.reduce
    neg_inf = float("-inf")
    uniforms: list[float] = []
    ui = 0
    step = stepper.step

    n = chars = 0
    reason = "length"
    with torch.inference_mode():
        logits = stepper.prime(ids) if length > 0 else None
    while n < length:
        if controls.stop_requested:
            reason = "cancelled"
            break
        temp, top_k, top_p = controls.temperature, controls.top_k, controls.top_p
        if ui == len(uniforms):
            uniforms = rng.random(_UNIFORM_BLOCK).tolist()
            ui = 0
        u = uniforms[ui]                # one uniform per token, used or not: the stream stays aligned
        ui += 1

        copyto(d, logits)
        d[UNK] = neg_inf
        sub(d, vmax(d), out=d)
        exp(d, out=e)
        if temp <= 0:                                            # greedy
            idx = int(d.argmax())
            total = float(vsum(e))
            if idx == UNK or not total > 0:                      # only with non-finite logits
                idx = _fallback(logits)
        elif not (0 < top_k < V - 1) and not top_p < 1:           # plain sampling
            if temp == 1:
                acc(e, out=cdf)
                total = cdf.item(-1)
            else:
                mul(d, 1.0 / temp, out=w)
                exp(w, out=w)
                acc(w, out=cdf)
                total = float(vsum(e))
            idx = int(cdf.searchsorted(u * cdf.item(-1), "right"))
            if idx >= V:                                         # only with non-finite logits
                idx = _fallback(logits)
        else:
            total = float(vsum(e))
            idx = _sample_filtered(logits, d, e, w, temp, int(top_k), top_p, u, V)
        prob = e.item(idx) / total if total > 0 else 0.0
        alts = _alternatives(d, e, total, n_alt, token_text) if n_alt else ()

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
    yield SampleDone(n, chars, time.perf_counter() - t0, reason)


def sample_text(model: RNNLM, tokenizer, length: int, seed: int, prompt: str = "",
                temperature: float = 0.8) -> str:
    """``length`` tokens of text continuing ``prompt`` (the prompt is not included), the same text for
    the same seed and weights; used for the trainer's sample at each evaluation."""
    cfg = SampleConfig(length=length, temperature=temperature, seed=seed)
    return "".join(ev.text for ev in generate(model, tokenizer, cfg, prompt) if isinstance(ev, Token))
