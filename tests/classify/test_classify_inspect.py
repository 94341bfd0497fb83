"""Inspect's core (``rnnchat.lm.inspect``) on classifiers, bidirectional ones included: each direction's
states and gates are torch's own numbers, kept apart; the logits are the classifier's; the gradients
through time of each direction match their first two steps worked by hand; the units and the gate
saturation say which direction they are in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnchat.classify.config import ClassifierConfig
from rnnchat.classify.model import Classifier
from rnnchat.lm import inspect as ins

H = 12


def classifier(cell: str, layers: int = 2, bidirectional: bool = True) -> Classifier:
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=20, cell=cell, layers=layers, hidden=H, embed=6, dropout=0.0,
                           bidirectional=bidirectional, labels=("a", "b", "c"))
    return Classifier(cfg).eval()


def ids_of(n: int = 30) -> torch.Tensor:
    return torch.randint(2, 20, (n,), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_bidirectional_trace_is_torch_s_own_numbers_each_direction_apart(cell):
    model, ids = classifier(cell), ids_of()
    tr = ins.trace(model, ids.numpy())
    assert tr.directions == ("forward", "backward") and len(tr.layers) == len(tr.backward) == 2
    with torch.no_grad():
        x = model.embed(ids[None])
        for k in range(2):          # each layer alone, both directions, with the stacked module's own weights
            one = type(model.rnn)(x.shape[-1], H, batch_first=True, bidirectional=True)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                for suffix in ("", "_reverse"):
                    getattr(one, f"{name}_l0{suffix}").copy_(getattr(model.rnn, f"{name}_l{k}{suffix}"))
            x, _ = one(x)
            np.testing.assert_allclose(tr.layer(k, "forward").hidden, x[0, :, :H].numpy(), atol=1e-5)
            np.testing.assert_allclose(tr.layer(k, "backward").hidden, x[0, :, H:].numpy(), atol=1e-5)
        # The head after each position is the classifier's reading of the text (its backward part: the whole
        # text's), and after the last it is the classifier's own answer.
        np.testing.assert_allclose(tr.logits, model.read(ids).numpy(), atol=1e-5)
        np.testing.assert_allclose(tr.logits[-1], model(ids[None], torch.tensor([len(ids)]))[0].numpy(), atol=1e-5)
    for direction in tr.directions:
        for name in ins.GATES[cell]:
            values = tr.series(1, name, 3, direction)
            low = -1.0 if name in ("candidate", "new") else 0.0
            assert values.shape == (len(ids),) and values.min() >= low and values.max() <= 1.0
    # The backward direction starts at the end: its last position is its first step, from a zero state.
    last = tr.backward[0]
    if cell == "rnn":
        w_ih, b_ih, b_hh = (getattr(model.rnn, f"{n}_l0_reverse").detach().numpy() for n in ("weight_ih", "bias_ih",
                                                                                               "bias_hh"))
        x_last = model.embed.weight.detach().numpy()[int(ids[-1])]
        np.testing.assert_allclose(last.hidden[-1], np.tanh(w_ih @ x_last + b_ih + b_hh), atol=1e-5)
    assert not np.allclose(tr.layers[0].hidden, last.hidden)
    with pytest.raises(ValueError, match="forward only"):
        ins.trace(classifier(cell, bidirectional=False), ids.numpy()).series(0, "hidden", 0, "backward")


def test_gradients_of_each_direction_match_their_first_steps_by_hand():
    """A vanilla RNN's: lag 0 is the head's gradient on the direction's half of the summary (its state at
    the last position, or for the backward direction at the first), lag 1 that through one step of tanh."""
    model, ids = classifier("rnn"), ids_of()
    tr = ins.trace(model, ids.numpy())
    target = 2
    norms = ins.gradients_by_direction(model, ids.numpy(), target)
    assert set(norms) == {"forward", "backward"}
    assert len(norms["forward"]) == len(norms["backward"]) == len(ids)
    logits = torch.as_tensor(tr.logits[-1])
    g = (torch.softmax(logits, 0) - torch.nn.functional.one_hot(torch.tensor(target), 3)).numpy()
    head = model.head.weight.detach().numpy()
    by_hand = {"forward": (head[:, :H].T @ g, tr.layers[1].hidden[-1], "weight_hh_l1"),
               "backward": (head[:, H:].T @ g, tr.backward[1].hidden[0], "weight_hh_l1_reverse")}
    for direction, (grad, h, w_hh) in by_hand.items():
        w = getattr(model.rnn, w_hh).detach().numpy()
        assert norms[direction][0] == pytest.approx(np.linalg.norm(grad), rel=1e-4)
        assert norms[direction][1] == pytest.approx(np.linalg.norm(w.T @ ((1 - h * h) * grad)), rel=1e-4)
        assert np.all(np.isfinite(norms[direction])) and norms[direction].min() > 0
    np.testing.assert_array_equal(ins.gradients_through_time(model, ids.numpy(), target), norms["forward"])
    with pytest.raises(ValueError, match="no next-token loss"):
        ins.gradients_by_direction(model, ids.numpy())


def test_one_way_classifier_has_one_direction_and_unchanged_shapes():
    model, ids = classifier("gru", layers=1, bidirectional=False), ids_of(20)
    tr = ins.trace(model, ids.numpy())
    assert tr.directions == ("forward",) and tr.backward == []
    np.testing.assert_allclose(tr.logits, model.read(ids).numpy(), atol=1e-5)
    assert all("direction" not in s for s in ins.gate_saturation(tr))
    norms = ins.gradients_by_direction(model, ids.numpy(), 0)
    assert list(norms) == ["forward"] and len(norms["forward"]) == len(ids)


def test_units_and_saturation_name_the_direction():
    model = classifier("lstm")
    text = 'ab "cd" ef (gh) ij\nkl "mn" op\n'
    ids = np.array([2 + ord(c) % 18 for c in text])
    tr = ins.trace(model, ids)
    saturation = ins.gate_saturation(tr)
    assert len(saturation) == 2 * 2 * 3                     # layers x directions x sigmoid gates
    assert {(s["direction"], s["layer"]) for s in saturation} == {(d, k) for d in ins.DIRECTIONS for k in (0, 1)}
    backward = next(s for s in saturation if s["direction"] == "backward" and s["layer"] == 1 and s["gate"] == "forget")
    values = tr.series(1, "forget", 0, "backward")
    assert backward["below"] == pytest.approx(float((tr.backward[1].gates["forget"] < 0.1).mean()))
    assert values.shape == (len(text),)
    units = ins.interesting_units(tr, text, top=200)
    assert {m.direction for m in units} == {"forward", "backward"}
    for m in units:                                          # each names a series of its own direction
        series = tr.series(m.layer, m.what, m.unit, m.direction)
        assert series.shape == (len(text),) and abs(m.correlation) <= 1
