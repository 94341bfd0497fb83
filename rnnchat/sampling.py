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
import weakref
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from .config import SampleConfig
from .errors import ConfigError
from .events import SampleDone, Token
from .models import RNNLM
from .tokenizers import EOD, UNK

__all__ = ["LiveControls", "FastStepper", "generate", "sample_text"]

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
_UNIFORM_BLOCK = 256            # uniform random numbers drawn per Generator call
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


# ----------------------------------------------------------------------------------------- weights


class _Packed:
    """The model's weights rearranged for one-token steps: float32, CPU, contiguous, read-only."""

    def __init__(self, model: RNNLM):
        rnn = model.rnn
        if isinstance(rnn, torch.nn.LSTM):
            cell = "lstm"
        elif isinstance(rnn, torch.nn.GRU):
            cell = "gru"
        elif isinstance(rnn, torch.nn.RNN):
            cell = "rnn"
            if rnn.nonlinearity != "tanh":
                raise ValueError("FastStepper supports nn.RNN with tanh only")
        else:
            raise TypeError(f"unsupported recurrent module {type(rnn).__name__}")
        if rnn.bidirectional or getattr(rnn, "proj_size", 0):
            raise ValueError("FastStepper supports unidirectional layers without projections")
        if not rnn.batch_first:
            raise ValueError("FastStepper expects a batch_first recurrent module")
        H, L, G = rnn.hidden_size, rnn.num_layers, _GATES[cell]
        GH = G * H
        self.cell, self.hidden, self.layers, self.gates = cell, H, L, G
        self.vocab = model.head.out_features
        self.in_vocab = model.embed.num_embeddings

        def get(name: str, shape) -> torch.Tensor:
            p = getattr(rnn, name, None)
            if p is None:
                return torch.zeros(shape, dtype=torch.float64)
            return p.detach().to("cpu", torch.float64)

        # Row order and scale of the gates: LSTM (i, f, g, o) -> (g, f, i, o) so the three sigmoid gates
        # are contiguous and (f, i) lines up with (c, g), see FastStepper; sigmoid gates get a factor 1/2
        # for the tanh form of the sigmoid.
        if cell == "lstm":
            perm = torch.cat([torch.arange(2 * H, 3 * H), torch.arange(H, 2 * H), torch.arange(0, H),
                              torch.arange(3 * H, 4 * H)])
            scale = torch.cat([torch.ones(H), torch.full((3 * H,), 0.5)]).double()
        elif cell == "gru":
            perm = torch.arange(GH)
            scale = torch.cat([torch.full((2 * H,), 0.5), torch.ones(H)]).double()
        else:
            perm = torch.arange(GH)
            scale = torch.ones(GH, dtype=torch.float64)

        in_w, in_b, rec_w, rec_b = [], [], [], []
        for k in range(L):
            w_ih = get(f"weight_ih_l{k}", None)[perm] * scale[:, None]
            w_hh = get(f"weight_hh_l{k}", None)[perm] * scale[:, None]
            b_ih = get(f"bias_ih_l{k}", (GH,))[perm] * scale
            b_hh = get(f"bias_hh_l{k}", (GH,))[perm] * scale
            if cell == "gru":
                # r and z take both biases on the input side; n's hidden bias sits inside r * (...).
                bi = torch.cat([b_ih[:2 * H] + b_hh[:2 * H], b_ih[2 * H:]])
                bh = torch.cat([torch.zeros(2 * H, dtype=torch.float64), b_hh[2 * H:]])
            else:
                bi, bh = b_ih + b_hh, torch.zeros(GH, dtype=torch.float64)
            in_w.append(w_ih); in_b.append(bi); rec_w.append(w_hh); rec_b.append(bh)

        emb = model.embed.weight.detach().to("cpu", torch.float64)
        self.table = (emb @ in_w[0].T + in_b[0]).float().numpy()           # (in_vocab, GH)
        self.table.setflags(write=False)
        head_w = model.head.weight.detach().to("cpu", torch.float64)
        head_b = model.head.bias
        head_b = (head_b.detach().to("cpu", torch.float64) if head_b is not None
                  else torch.zeros(self.vocab, dtype=torch.float64))

        # mats[k]: (H + 1, N_k), the last row holding the biases (the hidden vector ends in a constant 1),
        # split by columns into equal zero-padded blocks, (splits, H + 1, N_k / splits), one per thread:
        # torch.bmm hands each thread its own block, so each core keeps the same weights in its L2
        # between steps (2x256 LSTM: 27 us per step for both products vs 32 us with torch.mm). Below
        # ~256 KB a matrix is not worth splitting (hidden 64: 12.9 us per step unsplit, 14.0 split).
        threads = max(1, min(8, torch.get_num_threads()))
        self.mats: list[torch.Tensor] = []
        for k in range(L):
            if k < L - 1:
                w = torch.cat([rec_w[k], in_w[k + 1]], 0)                   # (2GH, H)
                b = torch.cat([rec_b[k], in_b[k + 1]])
            else:
                w = torch.cat([rec_w[k], head_w], 0)                        # (GH + V, H)
                b = torch.cat([rec_b[k], head_b])
            m = torch.cat([w.T, b[None, :]], 0).float()
            splits = threads if m.numel() * 4 >= 256 * 1024 else 1
            cols = -(-m.shape[1] // splits)
            m = torch.nn.functional.pad(m, (0, cols * splits - m.shape[1]))
            self.mats.append(m.reshape(H + 1, splits, cols).transpose(0, 1).contiguous())
        # The products for a zero state are the bias rows: what reset() restores without a matmul.
        self.zero_products = [m[:, H, :].reshape(-1).numpy().copy() for m in self.mats]


_PACK_CACHE: "weakref.WeakKeyDictionary[RNNLM, tuple[tuple, _Packed]]" = weakref.WeakKeyDictionary()


def _weights_signature(model: RNNLM) -> tuple | None:
    # A tensor's _version counts its in-place changes (optimizer steps, load_state_dict copies), so an
    # unchanged signature means unchanged weights and the packed copy can be reused.
    sig = [torch.get_num_threads()]
    for p in model.parameters():
        version = getattr(p, "_version", None)
        if version is None:
            return None
        sig.append((p.data_ptr(), version, p.dtype, str(p.device), tuple(p.shape)))
    return tuple(sig)


def _packed(model: RNNLM) -> _Packed:
    """The packed weights of a model, reused while its parameters are unchanged."""
    sig = _weights_signature(model)
    hit = _PACK_CACHE.get(model)
    if sig is not None and hit is not None and hit[0] == sig:
        return hit[1]
    with torch.inference_mode():
        packed = _Packed(model)
    _PACK_CACHE[model] = (sig, packed)
    return packed


# ----------------------------------------------------------------------------------------- stepper


class FastStepper:
    """Advances an RNNLM one token at a time without nn.Module overhead (batch 1, CPU, float32).

    ``prime(ids)`` resets the state, runs the ids and returns the logits after the last one;
    ``step(token_id)`` runs one more token and returns the next-token logits. Returned logits are a
    read-only view of an internal buffer, valid until the next call: copy them to keep them.
    ``get_state()`` / ``set_state()`` copy the recurrent state out and in (for beam search, rewinds).
    The weights are a snapshot taken when the stepper is built; later changes to the model are not
    seen (build a new stepper; unchanged weights are packed only once per model).
    """

    def __init__(self, model: RNNLM):
        p = _packed(model)
        self._p = p
        self.cell, self.layers, self.hidden = p.cell, p.layers, p.hidden
        self.vocab_size = p.vocab
        H, GH = p.hidden, p.gates * p.hidden
        self._table = p.table
        self._mats = p.mats
        with torch.no_grad():
            self._hx = [torch.zeros(1, H + 1) for _ in range(p.layers)]       # hidden state, then a 1
            self._y = [torch.empty(m.shape[0], 1, m.shape[2]) for m in p.mats]   # products, see _Packed
            # The same hidden vector for every column block, without a copy (stride 0).
            self._xin = [hx[None].expand(m.shape[0], 1, H + 1) for hx, m in zip(self._hx, p.mats)]
        hxn = [t.numpy()[0] for t in self._hx]
        for v in hxn:
            v[H] = 1.0
        self._yn = yn = [t.numpy().reshape(-1) for t in self._y]
        self._h = [v[:H] for v in hxn]
        if p.cell == "lstm":
            # Per layer one buffer [c | g f i o]: the gates follow the cell state, so (f, i) and (c, g)
            # are both contiguous and f*c and i*g are one multiplication.
            self._gbuf = [np.zeros(5 * H, np.float32) for _ in range(p.layers)]
            self._c = [b[:H] for b in self._gbuf]
        else:
            self._gbuf = [np.zeros(GH, np.float32) for _ in range(p.layers)]
            self._c = None
        self._tmp = np.empty(2 * H, np.float32)
        self._rec = [v[:GH] for v in yn]
        self._inp = [None] + [yn[k - 1][GH:2 * GH] for k in range(1, p.layers)]
        self._logits = yn[-1][GH:GH + p.vocab]
        self._logits_ro = self._logits.view()
        self._logits_ro.setflags(write=False)
        self._plan = self._build_plan()
        self.reset()

    # -- state

    def reset(self) -> None:
        """Zero state, as at the start of ``model.forward(idx, None)``; logits become the bias-only ones."""
        for h in self._h:
            h.fill(0.0)
        if self._c is not None:
            for c in self._c:
                c.fill(0.0)
        for y, z in zip(self._yn, self._p.zero_products):
            np.copyto(y, z)

    def _refresh(self) -> None:
        bmm = torch.bmm
        for x, m, y in zip(self._xin, self._mats, self._y):
            bmm(x, m, out=y)

    def get_state(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(h, c) as new (layers, hidden) float32 arrays; c is None for GRU and plain RNN cells."""
        h = np.stack(self._h)
        c = np.stack(self._c) if self._c is not None else None
        return h, c

    def set_state(self, state) -> None:
        """Restore a state from ``get_state()``, or take the model's own state format
        (a (layers, 1, hidden) tensor, or a (h, c) pair of them for LSTM); None is the zero state."""
        if state is None:
            self.reset()
            return
        if isinstance(state, torch.Tensor):
            h, c = state, None
        else:
            h, c = state
        h = _as_layers(h, self.layers, self.hidden)
        for k in range(self.layers):
            self._h[k][:] = h[k]
        if self._c is not None:
            if c is None:
                raise ValueError("an LSTM state needs both h and c")
            c = _as_layers(c, self.layers, self.hidden)
            for k in range(self.layers):
                self._c[k][:] = c[k]
        self._refresh()

    def model_state(self):
        """The current state in ``model.forward``'s format (CPU float32 tensors, batch 1)."""
        h, c = self.get_state()
        ht = torch.from_numpy(h)[:, None, :]
        return (ht, torch.from_numpy(c)[:, None, :]) if c is not None else ht

    @property
    def logits(self) -> np.ndarray:
        """Next-token logits for the current state (read-only view, valid until the next step)."""
        return self._logits_ro

    # -- running

    def prime(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """Reset the state, run ``ids`` through the model and return the logits after the last one."""
        self.reset()
        step = self.step
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            step(i)
        return self._logits_ro

    def feed(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """Like ``prime`` but continues from the current state."""
        step = self.step
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            step(i)
        return self._logits_ro

    def step(self, token_id: int) -> np.ndarray:
        """Run one token; return the next-token logits (vocab,)."""
        self._plan(token_id)
        return self._logits_ro

    def _build_plan(self):
        """A closure specialised for the cell type, with every buffer bound to a local name."""
        H, L = self.hidden, self.layers
        table, mats, xs, ys = self._table, self._mats, self._xin, self._y
        hs, recs, inps, gbufs, tmp = self._h, self._rec, self._inp, self._gbuf, self._tmp
        bmm = torch.bmm
        add, mul, sub, tanh = np.add, np.multiply, np.subtract, np.tanh
        n_in = table.shape[0]

        def check(tok: int) -> None:
            if not 0 <= tok < n_in:
                raise IndexError(f"token id {tok} outside the vocabulary (0..{n_in - 1})")

        if self.cell == "lstm":
            layers = []
            for k in range(L):
                b = gbufs[k]
                layers.append((inps[k], recs[k], b[H:], b[2 * H:], b[2 * H:4 * H], b[:2 * H], b[:H], b[4 * H:],
                               hs[k], xs[k], mats[k], ys[k]))
            t1, t2 = tmp[:H], tmp[H:]

            def run(tok: int) -> None:
                if not 0 <= tok < n_in:
                    check(tok)
                first = True
                for inp, rec, gates, sig, fi, cg, c, o, h, x, m, y in layers:
                    add(table[tok] if first else inp, rec, out=gates)
                    first = False
                    tanh(gates, out=gates)          # g, and tanh(x/2) for f, i, o
                    mul(sig, 0.5, out=sig)          # sigmoid(x) = 0.5 * tanh(x/2) + 0.5
                    add(sig, 0.5, out=sig)
                    mul(fi, cg, out=tmp)            # [f*c, i*g]
                    add(t1, t2, out=c)
                    tanh(c, out=h)
                    mul(h, o, out=h)
                    bmm(x, m, out=y)                # next step's recurrent part, next layer's input part

        elif self.cell == "gru":
            table_rz = np.ascontiguousarray(table[:, :2 * H])
            table_n = np.ascontiguousarray(table[:, 2 * H:])
            layers = []
            for k in range(L):
                g, inp, rec = gbufs[k], inps[k], recs[k]
                layers.append((None if inp is None else inp[:2 * H], None if inp is None else inp[2 * H:],
                               rec[:2 * H], rec[2 * H:], g[:2 * H], g[:H], g[H:2 * H], g[2 * H:],
                               hs[k], xs[k], mats[k], ys[k]))

            def run(tok: int) -> None:
                if not 0 <= tok < n_in:
                    check(tok)
                first = True
                for in_rz, in_n, rec_rz, rec_n, rz, r, z, n, h, x, m, y in layers:
                    if first:
                        in_rz, in_n, first = table_rz[tok], table_n[tok], False
                    add(in_rz, rec_rz, out=rz)
                    tanh(rz, out=rz)
                    mul(rz, 0.5, out=rz)            # r, z = sigmoid
                    add(rz, 0.5, out=rz)
                    mul(r, rec_n, out=n)            # n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
                    add(n, in_n, out=n)
                    tanh(n, out=n)
                    sub(h, n, out=h)                # h' = (1 - z) * n + z * h = n + z * (h - n)
                    mul(h, z, out=h)
                    add(h, n, out=h)
                    bmm(x, m, out=y)

        else:
            layers = [(inps[k], recs[k], hs[k], xs[k], mats[k], ys[k]) for k in range(L)]

            def run(tok: int) -> None:
                if not 0 <= tok < n_in:
                    check(tok)
                first = True
                for inp, rec, h, x, m, y in layers:
                    add(table[tok] if first else inp, rec, out=h)
                    first = False
                    tanh(h, out=h)
                    bmm(x, m, out=y)

        return run


def _as_layers(x, layers: int, hidden: int) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        if x.shape[1] != 1:
            raise ValueError("FastStepper holds one sequence; the state has batch size %d" % x.shape[1])
        x = x[:, 0, :]
    if x.shape != (layers, hidden):
        raise ValueError(f"state shape {x.shape} does not match ({layers}, {hidden})")
    return x


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


def sample_text(model: RNNLM, tokenizer, length: int, seed: int, prompt: str = "",
                temperature: float = 0.8) -> str:
    """``length`` tokens of text continuing ``prompt`` (the prompt is not included), the same text for
    the same seed and weights; used for the trainer's sample at each evaluation."""
    cfg = SampleConfig(length=length, temperature=temperature, seed=seed)
    return "".join(ev.text for ev in generate(model, tokenizer, cfg, prompt) if isinstance(ev, Token))
