"""The inside view computes the model's own numbers: checked against torch's nn.LSTM / nn.GRU / nn.RNN."""

import numpy as np
import pytest
import torch
from conftest import make_play_text

from rnnchat.config import TrainConfig
from rnnchat.lm.config import ModelConfig
from rnnchat.lm.inspect import gate_saturation, gradients_through_time, interesting_units, text_properties, trace
from rnnchat.lm.model import RNNLM
from rnnchat.runs.opened import open_language_model
from rnnchat.train.loop import Trainer


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_trace_matches_torch_on_the_same_weights(cell):
    torch.manual_seed(0)
    model = RNNLM(ModelConfig(cell=cell, layers=2, hidden=24, embed=8, vocab_size=30)).eval()
    ids = torch.randint(2, 30, (1, 50))
    with torch.no_grad():
        logits, _ = model(ids)
        per_layer, x = [], model.embed(ids)
        for k in range(2):       # each layer alone, with the stacked module's own weights
            one = type(model.rnn)(8 if k == 0 else 24, 24, batch_first=True)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(one, f"{name}_l0").copy_(getattr(model.rnn, f"{name}_l{k}"))
            x, _ = one(x)
            per_layer.append(x[0].numpy())
    tr = trace(model, ids[0].numpy())
    for k in range(2):
        np.testing.assert_allclose(tr.layers[k].hidden, per_layer[k], atol=1e-5)
    np.testing.assert_allclose(tr.logits, logits[0].numpy(), atol=1e-4)
    for name, values in tr.layers[0].gates.items():
        low = -1.0 if name in ("candidate", "new") else 0.0
        assert values.shape == (50, 24) and values.min() >= low and values.max() <= 1.0
    if cell == "lstm":
        assert tr.layers[1].cell is not None and tr.layers[1].cell.shape == (50, 24)
        # The cell candidate g is a series of its own, apart from the cell state c it feeds.
        candidate, state = tr.series(0, "candidate", 3), tr.series(0, "cell", 3)
        assert np.allclose(candidate, tr.layers[0].gates["candidate"][:, 3])
        assert not np.allclose(candidate, state)


def test_text_properties():
    props = text_properties('ALDO:\nI say "go (now)".\n')
    assert props["speaker name"][:5].tolist() == [1, 1, 1, 1, 1] and props["speaker name"][7] == 0
    quoted = 'ALDO:\nI say "'.__len__()
    assert props["inside quotes"][quoted] == 1 and props["inside quotes"][quoted - 2] == 0
    assert props["inside brackets"]['ALDO:\nI say "go ('.__len__()] == 1
    assert props["after a newline"][6] == 1 and props["vowel"][0] == 1


def test_vanishing_gradient_rnn_against_lstm(tmp_path):
    """A vanilla RNN trained briefly forgets within tens of steps; an LSTM on the same text keeps a signal."""
    play = tmp_path / "play.txt"
    play.write_text(make_play_text(1500), encoding="utf-8")
    ratio = {}
    for cell in ("rnn", "lstm"):
        cfg = TrainConfig(max_steps=150, eval_every=150, seq_len=64, batch_size=32, lr=3e-3, sample_length=0,
                          precision="fp32", eval_chars=2000)
        list(Trainer(str(play), ModelConfig(cell=cell, layers=1, hidden=64, embed=16), cfg, name=cell).run())
        run = open_language_model(cell)
        ids = run.tokenizer.encode(make_play_text(20, seed=9)[:81])
        g = gradients_through_time(run.model, ids)
        assert len(g) == 80 and g[0] > 0
        ratio[cell] = g[40] / g[0]
        tr = trace(run.model, ids)
        text = run.tokenizer.decode(ids)
        found = interesting_units(tr, text, top=3)
        assert found and all(abs(m.correlation) <= 1 for m in found)
        if cell == "lstm":
            assert {s["gate"] for s in gate_saturation(tr)} == {"input", "forget", "output"}
    assert ratio["rnn"] < ratio["lstm"] / 10
