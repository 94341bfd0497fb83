"""Inside the language model: hidden units, LSTM cell states and gates per position, the units that track
simple properties of the text, gate saturation, and gradients through time.

Every number is computed from the model's own weights with the cell's textbook equations, one layer at a
time (all input projections at once, the recurrence step by step), in float32 on the CPU:

    vanilla  h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    LSTM     i, f, g, o = sigma, sigma, tanh, sigma of (W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
             c_t = f * c_{t-1} + i * g        h_t = o * tanh(c_t)
    GRU      r, z = sigma(W_i{r,z} x_t + b_i{r,z} + W_h{r,z} h_{t-1} + b_h{r,z})
             n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))      h_t = (1 - z) * n + z * h_{t-1}

A bidirectional model (a classifier's option) has a second set of layers reading right to left: the same
equations with h_(t+1) in place of h_(t-1), and each layer above the first reads both directions' states.
Its trace keeps them apart (``Trace.backward``), indexed by position like the forward ones.

tests/lm/test_inspect.py checks them against torch's nn.LSTM / nn.GRU / nn.RNN on the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:      # torch is imported by the gradients alone: the app draws its Inspect tab before it loads
    import torch

    from rnnchat.lm.model import RNNLM

GATES = {"lstm": ("input", "forget", "candidate", "output"), "gru": ("reset", "update", "new"), "rnn": ()}
EQUATIONS = {
    "rnn": ("h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)",),
    "lstm": ("i = sigma(W_ii x_t + W_hi h_(t-1) + b_i)      input gate",
             "f = sigma(W_if x_t + W_hf h_(t-1) + b_f)      forget gate",
             "g = tanh(W_ig x_t + W_hg h_(t-1) + b_g)       cell candidate",
             "o = sigma(W_io x_t + W_ho h_(t-1) + b_o)      output gate",
             "c_t = f * c_(t-1) + i * g",
             "h_t = o * tanh(c_t)"),
    "gru": ("r = sigma(W_ir x_t + W_hr h_(t-1) + b_r)      reset gate",
            "z = sigma(W_iz x_t + W_hz h_(t-1) + b_z)      update gate",
            "n = tanh(W_in x_t + b_in + r * (W_hn h_(t-1) + b_hn))",
            "h_t = (1 - z) * n + z * h_(t-1)"),
}


DIRECTIONS = ("forward", "backward")          # left to right, and a bidirectional model's right to left


def equations(cell: str, direction: str = "forward") -> tuple[str, ...]:
    """``EQUATIONS[cell]``; for the backward direction the step before is t+1, the position it read last."""
    return tuple(line.replace("(t-1)", "(t+1)") for line in EQUATIONS[cell]) if direction == "backward" \
        else EQUATIONS[cell]


@dataclass
class LayerTrace:
    hidden: np.ndarray                             # (T, H): h_t after each position
    cell: np.ndarray | None                        # (T, H): LSTM c_t, else None
    gates: dict[str, np.ndarray] = field(default_factory=dict)   # name -> (T, H) activations in [0, 1] or [-1, 1]


@dataclass
class Trace:
    cell: str                                      # "lstm", "gru" or "rnn"
    ids: np.ndarray                                # (T,) the token ids run through the model
    layers: list[LayerTrace]                       # left to right (a one-way model's only direction)
    logits: np.ndarray                             # (T, V) the head's logits after each position (see ``trace``)
    backward: list[LayerTrace] = field(default_factory=list)   # a bidirectional model's right-to-left layers

    @property
    def directions(self) -> tuple[str, ...]:
        return DIRECTIONS if self.backward else DIRECTIONS[:1]

    def layer(self, layer: int, direction: str = "forward") -> LayerTrace:
        if direction not in self.directions:
            raise ValueError(f"this model reads {' and '.join(self.directions)} only, not {direction}")
        return (self.backward if direction == "backward" else self.layers)[layer]

    def series(self, layer: int, what: str, unit: int, direction: str = "forward") -> np.ndarray:
        """One unit's values over the positions: ``what`` is "hidden", "cell" or a gate name."""
        lt = self.layer(layer, direction)
        values = lt.hidden if what == "hidden" else lt.cell if what == "cell" else lt.gates[what]
        if values is None:
            raise ValueError(f"a {self.cell} layer has no {what} state")
        return values[:, unit]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5          # the same function, without overflow warnings


def _layer_weights(rnn, k: int, direction: str) -> tuple[torch.Tensor, ...]:
    """W_ih, W_hh, b_ih, b_hh of layer ``k`` in one direction (torch names the backward ones ``_reverse``)."""
    suffix = "_reverse" if direction == "backward" else ""
    return tuple(getattr(rnn, f"{n}_l{k}{suffix}").detach().float().cpu()
                 for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _read(x: np.ndarray, weights: tuple[np.ndarray, ...], cell: str, H: int, backward: bool) -> LayerTrace:
    """One layer reading ``x`` (T, inputs) from a zero state, left to right or right to left."""
    w_ih, w_hh, b_ih, b_hh = weights
    T = len(x)
    inputs = x @ w_ih.T + b_ih                                           # every input projection at once
    w_hh_t = np.ascontiguousarray(w_hh.T)
    hidden = np.zeros((T, H), np.float32)
    cells = np.zeros((T, H), np.float32) if cell == "lstm" else None
    gates = {g: np.zeros((T, H), np.float32) for g in GATES[cell]}
    h = np.zeros(H, np.float32)
    c = np.zeros(H, np.float32)
    for t in (reversed(range(T)) if backward else range(T)):
        rec = h @ w_hh_t + b_hh
        if cell == "lstm":
            z = inputs[t] + rec
            i, f, g, o = _sigmoid(z[:H]), _sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sigmoid(z[3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            cells[t] = c
            for name, value in zip(GATES["lstm"], (i, f, g, o)):
                gates[name][t] = value
        elif cell == "gru":
            r = _sigmoid(inputs[t, :H] + rec[:H])
            u = _sigmoid(inputs[t, H:2 * H] + rec[H:2 * H])
            n = np.tanh(inputs[t, 2 * H:] + r * rec[2 * H:])
            h = (1 - u) * n + u * h
            gates["reset"][t], gates["update"][t], gates["new"][t] = r, u, n
        else:
            h = np.tanh(inputs[t] + rec)
        hidden[t] = h
    return LayerTrace(hidden, cells, gates)


def trace(model: RNNLM, ids: np.ndarray | list[int]) -> Trace:
    """Run ``ids`` through the model from a zero state and record every layer's states and gates
    (numpy, float32: a small matrix-vector product per step is cheaper there than a torch call).

    ``logits[t]`` is the head applied after position t: a language model's next-token logits, a classifier's
    label logits as if the text ended there (the last-state summary); a bidirectional model's backward part
    is then its state at position 0, where it has read the whole text (as ``Classifier.read`` does)."""
    rnn, cell, H = model.rnn, model.cfg.cell, model.cfg.hidden
    directions = DIRECTIONS if rnn.bidirectional else DIRECTIONS[:1]
    ids_np = np.asarray(ids, dtype=np.int64)
    x = model.embed.weight.detach().float().cpu().numpy()[ids_np]
    read: dict[str, list[LayerTrace]] = {d: [] for d in directions}
    for k in range(model.cfg.layers):
        for d in directions:
            weights = tuple(w.numpy() for w in _layer_weights(rnn, k, d))
            read[d].append(_read(x, weights, cell, H, backward=d == "backward"))
        x = np.concatenate([read[d][k].hidden for d in directions], axis=1)   # the next layer reads both
    top = read["forward"][-1].hidden
    if rnn.bidirectional:
        top = np.concatenate([top, np.broadcast_to(read["backward"][-1].hidden[0], top.shape)], axis=1)
    head_w = model.head.weight.detach().float().cpu().numpy()
    head_b = model.head.bias.detach().float().cpu().numpy()
    return Trace(cell, ids_np, read["forward"], top @ head_w.T + head_b, read.get("backward", []))


# ------------------------------------------------------------------------------------- properties

def text_properties(text: str) -> dict[str, np.ndarray]:
    """Per character, simple properties a unit may track (1.0 / 0.0, or a position in [0, 1])."""
    n = len(text)
    props = {name: np.zeros(n, np.float32) for name in
             ("inside quotes", "inside brackets", "position in line", "after a newline", "speaker name", "vowel")}
    quote = bracket = 0
    line_start = 0
    line_len = {}
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    for a, b in zip(starts, starts[1:] + [n + 1]):
        line_len[a] = max(1, b - a - 1)
    for i, ch in enumerate(text):
        if i in line_len:
            line_start = i
        props["inside quotes"][i] = quote
        props["inside brackets"][i] = 1.0 if bracket > 0 else 0.0
        props["position in line"][i] = (i - line_start) / line_len[line_start]
        props["after a newline"][i] = 1.0 if i > 0 and text[i - 1] == "\n" else 0.0
        props["vowel"][i] = 1.0 if ch.lower() in "aeiou" else 0.0
        if ch in "\"\u201c\u201d":
            quote = 1 - quote
        elif ch in "([{":
            bracket += 1
        elif ch in ")]}":
            bracket = max(0, bracket - 1)
    for a in starts:
        end = text.find("\n", a)
        line = text[a:end if end >= 0 else n]
        if line.endswith(":") and line[:-1].strip() and line[:-1].replace(" ", "").replace("'", "").isupper():
            props["speaker name"][a:a + len(line)] = 1.0
    return props


@dataclass(frozen=True)
class UnitMatch:
    layer: int
    what: str                  # "hidden" or "cell"
    unit: int
    property: str
    correlation: float         # Pearson r over the positions
    direction: str = "forward"


def interesting_units(tr: Trace, text: str, top: int = 5) -> list[UnitMatch]:
    """The units whose values correlate most (either sign) with a property of ``text`` (one char per
    position: for subword runs pass each token's text start; see ``char_positions``)."""
    props = text_properties(text)
    if len(text) != len(tr.ids):
        raise ValueError("the text must have one character per traced position")
    found: list[UnitMatch] = []
    for direction, k, lt in _each_layer(tr):
        for what, values in (("hidden", lt.hidden), ("cell", lt.cell)):
            if values is None or len(values) < 3:
                continue
            v = values - values.mean(0)
            vn = np.sqrt((v * v).sum(0)) + 1e-12
            for name, p in props.items():
                q = p - p.mean()
                qn = float(np.sqrt((q * q).sum()))
                if qn < 1e-9:
                    continue
                r = (q @ v) / (vn * qn)
                best = int(np.argmax(np.abs(r)))
                found.append(UnitMatch(k, what, best, name, float(r[best]), direction))
    found.sort(key=lambda m: -abs(m.correlation))
    return found[:top]


def _each_layer(tr: Trace):
    """(direction, layer index, LayerTrace) for every layer of every direction, forward first."""
    for direction in tr.directions:
        for k, lt in enumerate(tr.backward if direction == "backward" else tr.layers):
            yield direction, k, lt


def gate_saturation(tr: Trace, low: float = 0.1, high: float = 0.9) -> list[dict]:
    """Per layer and sigmoid gate: the share of (position, unit) values below ``low`` and above ``high``
    (and for a bidirectional model, which direction's layer: "direction")."""
    out = []
    for direction, k, lt in _each_layer(tr):
        for name, values in lt.gates.items():
            if name in ("candidate", "new"):       # tanh candidates, not gates in [0, 1]
                continue
            out.append({"layer": k, "gate": name, "below": float((values < low).mean()),
                        "above": float((values > high).mean()),
                        **({"direction": direction} if tr.backward else {})})
    return out


# ------------------------------------------------------------------------------ gradients in time

def gradients_through_time(model: RNNLM, ids: np.ndarray | list[int], target: int | None = None) -> np.ndarray:
    """For a window of ids: the norm of d(loss at the last position) / d(top-layer hidden state t steps
    earlier), for t = 0 .. len(ids) - 2 (index t is the lag). Runs the textbook recurrence step by step
    with autograd in float32 on the CPU, so every h_t is a tensor of its own. With ``target`` (a classifier
    whose head reads the last state: a label's index), the loss is that label's after reading every id,
    and the lags run to len(ids) - 1. A bidirectional classifier: the forward direction's (both directions:
    ``gradients_by_direction``)."""
    return gradients_by_direction(model, ids, target)["forward"]


def gradients_by_direction(model: RNNLM, ids: np.ndarray | list[int],
                           target: int | None = None) -> dict[str, np.ndarray]:
    """``gradients_through_time`` for each direction the model reads in: "forward", and for a bidirectional
    classifier "backward", whose steps back are counted from where it ends, the text's first position (its
    index t is position t)."""
    import torch

    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    if len(ids_t) < 2:
        raise ValueError("gradients through time need a window of at least 2 tokens")
    rnn, cell, H = model.rnn, model.cfg.cell, model.cfg.hidden
    directions = DIRECTIONS if rnn.bidirectional else DIRECTIONS[:1]
    if target is None and rnn.bidirectional:
        raise ValueError("a bidirectional model has no next-token loss: give the label's index as target")
    inputs_ids, wanted = (ids_t[:-1], ids_t[-1:]) if target is None else (ids_t, torch.tensor([target]))
    x = model.embed.weight.detach().float().cpu()[inputs_ids]
    T = len(inputs_ids)
    tops: dict[str, list[torch.Tensor]] = {}
    for k in range(model.cfg.layers):
        states = {}
        for d in directions:
            w_ih, w_hh, b_ih, b_hh = _layer_weights(rnn, k, d)
            inputs = x @ w_ih.T + b_ih
            h, c = torch.zeros(H, requires_grad=True), torch.zeros(H)   # a leaf, so every h_t joins the graph
            hs: list[torch.Tensor] = [h] * T
            for t in (reversed(range(T)) if d == "backward" else range(T)):
                rec = w_hh @ h + b_hh
                if cell == "lstm":
                    i, f, g, o = (inputs[t] + rec).chunk(4)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                elif cell == "gru":
                    xr, xz, xn = inputs[t].chunk(3)
                    hr, hz, hn = rec.chunk(3)
                    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                    h = (1 - z) * torch.tanh(xn + r * hn) + z * h
                else:
                    h = torch.tanh(inputs[t] + rec)
                if k == model.cfg.layers - 1:
                    h.retain_grad()
                hs[t] = h
            states[d] = hs
        x = torch.cat([torch.stack(states[d]) for d in directions], dim=1)   # the next layer reads both
        tops = states
    summary = torch.cat([tops["forward"][-1], *([tops["backward"][0]] if rnn.bidirectional else [])])
    head_w = model.head.weight.detach().float().cpu()
    head_b = model.head.bias.detach().float().cpu()
    logits = head_w @ summary + head_b
    loss = torch.nn.functional.cross_entropy(logits[None], wanted)
    loss.backward()
    norms = {d: np.array([float(h.grad.norm()) if h.grad is not None else 0.0 for h in tops[d]], dtype=np.float64)
             for d in directions}
    norms["forward"] = norms["forward"][::-1].copy()      # index = lag: 0 is the last position
    return norms


def char_positions(tokenizer, ids: np.ndarray) -> str:
    """One character per token (its text's first character, or a space), for property tests at subword level."""
    return "".join((tokenizer.token_text(int(i)) or " ")[0] for i in ids)
