"""FastStepper: an RNNLM advanced one token at a time on packed weights (batch 1, CPU).

The weights are float32, or int8 (``lm/int8.py``) where int8 steps measured faster on this machine
(``lm/weights_choice.py``); ``weights="fp32"`` keeps them exact. Float32 products run in numpy's BLAS on one
(H + 1, N) matrix per layer, or split over torch's threads, whichever stepped faster here.
"""

from __future__ import annotations

import functools
import weakref
from typing import Sequence

import numpy as np
import torch

from rnnchat.lm import int8, weights_choice
from rnnchat.lm.model import RNNLM

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
WEIGHTS = ("auto", "fp32", "int8")
# How a step's matrix products run: "fp32-blas" numpy's BLAS (sgemv, the least overhead per call);
# "fp32-split" torch's bmm over one column block per thread; "int8" fbgemm on int8 weights.
KINDS = ("fp32-blas", "fp32-split", "int8")


def _weights_kind(asked: str, model: RNNLM) -> str:
    """The kind of products a stepper runs: "auto" the one measured fastest here (timed once per shape),
    "fp32" numpy's BLAS (exact, never timed), "int8" int8; a kind's own name is taken as it is."""
    if asked not in WEIGHTS + KINDS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}; got {asked!r}")
    if asked == "int8" and not int8.available():
        raise ValueError("int8 sampling weights need PyTorch's x86 (fbgemm) quantized engine")
    if asked in KINDS:
        return asked
    if asked == "fp32":
        return "fp32-blas"
    names = ["fp32-blas"] + (["fp32-split"] if torch.get_num_threads() > 1 else [])
    if int8.available():
        names.append("int8")
    rnn = model.rnn
    key = weights_choice.shape_key(type(rnn).__name__.lower(), rnn.num_layers, rnn.hidden_size,
                                   model.head.out_features)

    def measure() -> dict[str, float]:
        steppers = {w: FastStepper(model, w) for w in names}
        ids = np.random.default_rng(0).integers(0, model.embed.num_embeddings, 512).tolist()
        return weights_choice.time_steps({w: s.step for w, s in steppers.items()}, ids)

    return weights_choice.choose(key, names, measure)


class _Packed:
    """The model's weights rearranged for one-token steps (CPU): float32 blocks, or int8 matrices."""

    def __init__(self, model: RNNLM, weights: str):
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

        def get(name: str, shape) -> np.ndarray:
            p = getattr(rnn, name, None)
            return np.zeros(shape) if p is None else _float64(p)

        # Row order and scale of the gates: LSTM (i, f, g, o) -> (g, f, i, o) so the three sigmoid gates
        # are contiguous and (f, i) lines up with (c, g), see FastStepper; sigmoid gates get a factor 1/2
        # for the tanh form of the sigmoid. Packing runs in numpy: one thread, so a busy core elsewhere
        # does not hold up every small operation at a thread barrier.
        if cell == "lstm":
            perm = np.concatenate([np.arange(2 * H, 3 * H), np.arange(H, 2 * H), np.arange(0, H),
                                   np.arange(3 * H, 4 * H)])
            scale = np.concatenate([np.ones(H), np.full(3 * H, 0.5)])
        elif cell == "gru":
            perm = np.arange(GH)
            scale = np.concatenate([np.full(2 * H, 0.5), np.ones(H)])
        else:
            perm = np.arange(GH)
            scale = np.ones(GH)

        in_w, in_b, rec_w, rec_b = [], [], [], []
        for k in range(L):
            w_ih = get(f"weight_ih_l{k}", None)[perm] * scale[:, None]
            w_hh = get(f"weight_hh_l{k}", None)[perm] * scale[:, None]
            b_ih = get(f"bias_ih_l{k}", GH)[perm] * scale
            b_hh = get(f"bias_hh_l{k}", GH)[perm] * scale
            if cell == "gru":
                # r and z take both biases on the input side; n's hidden bias sits inside r * (...).
                bi = np.concatenate([b_ih[:2 * H] + b_hh[:2 * H], b_ih[2 * H:]])
                bh = np.concatenate([np.zeros(2 * H), b_hh[2 * H:]])
            else:
                bi, bh = b_ih + b_hh, np.zeros(GH)
            in_w.append(w_ih)
            in_b.append(bi)
            rec_w.append(w_hh)
            rec_b.append(bh)

        emb = _float64(model.embed.weight)
        self.table = (emb @ in_w[0].T + in_b[0]).astype(np.float32)         # (in_vocab, GH)
        self.table.setflags(write=False)
        head_w = _float64(model.head.weight)
        head_b = _float64(model.head.bias) if model.head.bias is not None else np.zeros(self.vocab)

        # Layer k's product: its recurrent part for the next token and the next layer's input part (the
        # top layer: the logits) for this one, from one (N_k, H) matrix and its biases.
        products = []
        for k in range(L):
            if k < L - 1:
                w = np.concatenate([rec_w[k], in_w[k + 1]], 0)              # (2GH, H)
                b = np.concatenate([rec_b[k], in_b[k + 1]])
            else:
                w = np.concatenate([rec_w[k], head_w], 0)                   # (GH + V, H)
                b = np.concatenate([rec_b[k], head_b])
            products.append((w.astype(np.float32), b.astype(np.float32)))
        threads = max(1, min(8, torch.get_num_threads())) if weights == "fp32-split" else 1
        self.weights = weights
        # The products for a zero state are the biases: what reset() restores without a matmul.
        self.zero_products = [b.copy() for _, b in products]
        self.int8 = self.mats = self.full = None
        if self.weights == "int8":
            self.int8 = [int8.Int8Matrix(torch.from_numpy(w), torch.from_numpy(b)) for w, b in products]
            return
        # full[k]: (H + 1, N_k), the last row holding the biases (the hidden vector ends in a constant 1).
        self.full = [np.ascontiguousarray(np.concatenate([w.T, b[None, :]], 0)) for w, b in products]
        if self.weights == "fp32-blas":
            return
        # fp32-split: mats[k] is full[k] split by columns into one zero-padded block per thread, so each
        # core keeps the same weights in its L2 between steps; small matrices are not split (docs/sampling.md).
        self.mats: list[torch.Tensor] = []
        for k, m in enumerate(self.full):
            splits = threads if m.size * 4 >= 256 * 1024 else 1
            cols = -(-m.shape[1] // splits)
            m = np.pad(m, ((0, 0), (0, cols * splits - m.shape[1])))
            self.mats.append(torch.from_numpy(np.ascontiguousarray(m.reshape(H + 1, splits, cols).transpose(1, 0, 2))))
            self.zero_products[k] = m[H].copy()
        self.full = None


def _float64(p: torch.Tensor) -> np.ndarray:
    """A parameter's values as a new float64 array, whatever its device and dtype."""
    t = p.detach().cpu()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t.numpy().astype(np.float64)


_PACK_CACHE: "weakref.WeakKeyDictionary[RNNLM, tuple[tuple, dict[str, _Packed]]]" = weakref.WeakKeyDictionary()


def _weights_signature(model: RNNLM) -> tuple | None:
    # A tensor's _version counts its in-place changes (optimizer steps, load_state_dict copies), so an
    # unchanged signature means unchanged weights and the packed copies can be reused.
    sig = [torch.get_num_threads()]
    for p in model.parameters():
        version = getattr(p, "_version", None)
        if version is None:
            return None
        sig.append((p.data_ptr(), version, p.dtype, str(p.device), tuple(p.shape)))
    return tuple(sig)


def _packed(model: RNNLM, weights: str) -> _Packed:
    """The packed weights of a model (one of KINDS), reused while its parameters are unchanged."""
    sig = _weights_signature(model)
    hit = _PACK_CACHE.get(model)
    copies = hit[1] if sig is not None and hit is not None and hit[0] == sig else {}
    if weights not in copies:
        with torch.inference_mode():
            copies[weights] = _Packed(model, weights)
        _PACK_CACHE[model] = (sig, copies)
    return copies[weights]


class FastStepper:
    """Advances an RNNLM one token at a time without nn.Module overhead (batch 1, CPU, float32).

    ``prime(ids)`` resets the state, runs the ids and returns the logits after the last one;
    ``step(token_id)`` runs one more token and returns the next-token logits. Returned logits are a
    read-only view of an internal buffer, valid until the next call: copy them to keep them.
    The weights are a snapshot taken when the stepper is built; later changes to the model are not
    seen (build a new stepper; unchanged weights are packed only once per model). ``weights`` is "auto"
    (the kind of products that stepped fastest when this shape was first timed on this machine,
    ``lm/weights_choice.py``), "fp32" (exact: numpy's BLAS, never timed) or "int8"; ``self.weights`` says
    which weights were taken ("fp32" or "int8") and ``self.kind`` how the products run (``KINDS``).
    """

    def __init__(self, model: RNNLM, weights: str = "auto"):
        p = _packed(model, _weights_kind(weights, model))
        self._p = p
        self.cell, self.layers, self.hidden = p.cell, p.layers, p.hidden
        self.vocab_size = p.vocab
        self.kind = p.weights                   # one of KINDS: how the products run
        self.weights = "int8" if p.weights == "int8" else "fp32"
        H, GH = p.hidden, p.gates * p.hidden
        self._table = p.table
        with torch.no_grad():
            self._hx = [torch.zeros(1, H + 1) for _ in range(p.layers)]       # hidden state, then a 1
            hxn = [t.numpy()[0] for t in self._hx]
            if p.int8 is not None:
                self._y = [torch.empty(1, 1, q.shape[0]) for q in p.int8]
                self._prods = [q.into(hx[:, :H], y[0]) for q, hx, y in zip(p.int8, self._hx, self._y)]
            elif p.full is not None:
                self._y = [torch.empty(1, 1, m.shape[1]) for m in p.full]
                self._prods = [functools.partial(np.matmul, x, m, y.numpy().reshape(-1))    # (h, W, out)
                               for x, m, y in zip(hxn, p.full, self._y)]
            else:
                self._y = [torch.empty(m.shape[0], 1, m.shape[2]) for m in p.mats]   # products, see _Packed
                # The same hidden vector for every column block, without a copy (stride 0).
                xin = [hx[None].expand(m.shape[0], 1, H + 1) for hx, m in zip(self._hx, p.mats)]
                self._prods = [functools.partial(torch.bmm, x, m, out=y) for x, m, y in zip(xin, p.mats, self._y)]
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
        for prod in self._prods:
            prod()

    # -- running

    def prime(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """Reset the state, run ``ids`` through the model and return the logits after the last one."""
        self.reset()
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
        table, prods = self._table, self._prods
        hs, recs, inps, gbufs, tmp = self._h, self._rec, self._inp, self._gbuf, self._tmp
        add, mul, sub, tanh = np.add, np.multiply, np.subtract, np.tanh   # out positional: 0.1 us less a call
        n_in = table.shape[0]
        # 0.5 as an array: a ufunc with a Python float converts it at every call (~1 us each here).
        half = np.full(3 * H, 0.5, np.float32)

        def check(tok: int) -> None:
            if not 0 <= tok < n_in:
                raise IndexError(f"token id {tok} outside the vocabulary (0..{n_in - 1})")

        if self.cell == "lstm":
            layers = []
            for k in range(L):
                b = gbufs[k]
                layers.append((inps[k], recs[k], b[H:], b[2 * H:], b[2 * H:4 * H], b[:2 * H], b[:H], b[4 * H:],
                               hs[k], prods[k]))
            t1, t2 = tmp[:H], tmp[H:]

            def run(tok: int) -> None:
                if not 0 <= tok < n_in:
                    check(tok)
                first = True
                for inp, rec, gates, sig, fi, cg, c, o, h, prod in layers:
                    add(table[tok] if first else inp, rec, gates)
                    first = False
                    tanh(gates, gates)          # g, and tanh(x/2) for f, i, o
                    mul(sig, half, sig)         # sigmoid(x) = 0.5 * tanh(x/2) + 0.5
                    add(sig, half, sig)
                    mul(fi, cg, tmp)            # [f*c, i*g]
                    add(t1, t2, c)
                    tanh(c, h)
                    mul(h, o, h)
                    prod()                          # next step's recurrent part, next layer's input part

        elif self.cell == "gru":
            table_rz = np.ascontiguousarray(table[:, :2 * H])
            table_n = np.ascontiguousarray(table[:, 2 * H:])
            half2 = half[:2 * H]
            layers = []
            for k in range(L):
                g, inp, rec = gbufs[k], inps[k], recs[k]
                layers.append((None if inp is None else inp[:2 * H], None if inp is None else inp[2 * H:],
                               rec[:2 * H], rec[2 * H:], g[:2 * H], g[:H], g[H:2 * H], g[2 * H:],
                               hs[k], prods[k]))

            def run(tok: int) -> None:
                if not 0 <= tok < n_in:
                    check(tok)
                first = True
                for in_rz, in_n, rec_rz, rec_n, rz, r, z, n, h, prod in layers:
                    if first:
                        in_rz, in_n, first = table_rz[tok], table_n[tok], False
                    add(in_rz, rec_rz, rz)
                    tanh(rz, rz)
                    mul(rz, half2, rz)          # r, z = sigmoid
                    add(rz, half2, rz)
                    mul(r, rec_n, n)            # n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
                    add(n, in_n, n)
                    tanh(n, n)
                    sub(h, n, h)                # h' = (1 - z) * n + z * h = n + z * (h - n)
                    mul(h, z, h)
                    add(h, n, h)
                    prod()

        else:
            layers = [(inps[k], recs[k], hs[k], prods[k]) for k in range(L)]

            def run(tok: int) -> None:
                if not 0 <= tok < n_in:
                    check(tok)
                first = True
                for inp, rec, h, prod in layers:
                    add(table[tok] if first else inp, rec, h)
                    first = False
                    tanh(h, h)
                    prod()

        return run
