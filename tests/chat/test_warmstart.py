"""--init-from: a chat model starts from a language-model run's tokenizer, shape and weights."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import make_play_text

from rnnchat.chat.config import Seq2SeqConfig
from rnnchat.chat.model import Seq2Seq
from rnnchat.config import TrainConfig
from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.events import Done, Eval, Started
from rnnchat.lm.config import ModelConfig
from rnnchat.runs import warmstart
from rnnchat.train.loop import Trainer


def dialogue_file(tmp_path):
    """Prompt/reply pairs cut from the invented play: the language model learns the same words first."""
    lines = [ln for ln in make_play_text(600, seed=4).splitlines() if ln and not ln.endswith(":")]
    path = tmp_path / "talk.tsv"
    path.write_text("prompt\treply\n" + "".join(f"{a}\t{b}\n" for a, b in zip(lines[::2], lines[1::2])),
                    encoding="utf-8")
    return path, "\n".join(lines)


def train_lm(tmp_path, text: str, cell: str = "lstm", name: str = "lm", **shape) -> str:
    corpus = tmp_path / f"{name}.txt"
    corpus.write_text(text, encoding="utf-8")
    model = ModelConfig(cell=cell, layers=1, **{"hidden": 64, "embed": 24, **shape})
    cfg = TrainConfig(max_steps=150, eval_every=150, seq_len=48, batch_size=16, lr=1e-2, warmup_steps=5,
                      eval_chars=3000, sample_length=0, precision="fp32")
    list(Trainer(str(corpus), model, cfg, name=name).run())
    return name


CHAT = TrainConfig(task="chat", max_steps=20, eval_every=20, batch_size=16, lr=5e-3,
                   warmup_steps=5, sample_length=0, precision="fp32", eval_chars=4000)


def test_chat_model_starts_with_the_language_models_weights(tmp_path):
    _, text = dialogue_file(tmp_path)
    start = warmstart.open_start(train_lm(tmp_path, text))
    model_cfg, train_cfg = warmstart.fit_configs(start, Seq2SeqConfig(hidden=256, embed=64, dropout=0.3), CHAT)
    assert (model_cfg.layers, model_cfg.hidden, model_cfg.embed) == (1, 64, 24)
    assert train_cfg.level == "char" and model_cfg.vocab_size == start.tokenizer.vocab_size
    model = Seq2Seq(model_cfg)
    copied = warmstart.apply(start, model)
    own = dict(model.named_parameters())
    for lm_name, chat_name in [("embed.weight", "embed.weight"), ("rnn.weight_hh_l0", "decoder.weight_hh_l0"),
                               ("rnn.bias_ih_l0", "decoder.bias_ih_l0"), ("head.weight", "head.weight")]:
        assert chat_name in copied
        assert torch.equal(own[chat_name], start.weights[lm_name])
    # The attention mix passes the decoder output through whatever the context: tanh(W_c [ctx; h]) == tanh(h).
    h = torch.randn(3, 64) * 0.3
    mixed = torch.tanh(model.combine(torch.cat([torch.randn(3, 64), h], dim=-1)))
    assert torch.allclose(mixed, torch.tanh(h), atol=1e-6)


def test_a_tied_language_model_gives_the_chat_model_its_head_and_first_prediction(tmp_path):
    from rnnchat.chat.data import encode_source
    from rnnchat.runs.opened import open_language_model
    from rnnchat.vocab import EOD

    _, text = dialogue_file(tmp_path)
    start = warmstart.open_start(train_lm(tmp_path, text, name="tied", hidden=32, embed=32, tie=True))
    assert start.tie and "head.weight" not in start.weights
    model_cfg, _ = warmstart.fit_configs(start, Seq2SeqConfig(dropout=0.0), CHAT)
    model = Seq2Seq(model_cfg).eval()
    warmstart.apply(start, model)
    assert torch.equal(model.head.weight, start.weights["embed.weight"])      # not left random
    # Its first reply token is predicted as the language model predicts after EOD, through the mix's tanh.
    lm = open_language_model("tied").model
    with torch.no_grad():
        src = torch.as_tensor(encode_source(start.tokenizer, (), "hello there"))[None]
        enc, state = model.encode(src, torch.tensor([src.shape[1]]))
        logits, _, _ = model.decode(torch.tensor([[EOD]]), enc, state)
        out, _ = lm.rnn(lm.embed(torch.tensor([[EOD]])))
        want = lm.head(torch.tanh(out))
    assert lm.cfg.tie and torch.allclose(logits[0, 0], want[0, 0], atol=1e-5)


def test_starting_from_the_language_model_learns_faster(tmp_path):
    corpus, text = dialogue_file(tmp_path)
    lm = train_lm(tmp_path, text)
    shape = Seq2SeqConfig(layers=1, hidden=64, embed=24, dropout=0.0, context_turns=0)

    def first_eval(**kw):
        events = list(Trainer(str(corpus), shape, CHAT, **kw).run())
        return events, next(e for e in events if isinstance(e, Eval)).val_loss

    warm_events, warm = first_eval(name="warm", init_from=lm)
    _, cold = first_eval(name="cold")
    assert isinstance(warm_events[-1], Done) and warm_events[-1].reason == "max_steps"
    started = next(e for e in warm_events if isinstance(e, Started))
    assert started.started_from.startswith("lm (best, step 150")
    meta = json.loads((tmp_path / "checkpoints" / "warm" / "run.json").read_text())
    assert meta["init_from"] == {"run": "lm", "checkpoint": "best", "step": 150}
    assert (tmp_path / "checkpoints" / "warm" / "tokenizer.json").read_bytes() == \
        (tmp_path / "checkpoints" / "lm" / "tokenizer.json").read_bytes()
    assert warm < cold - 0.2, (warm, cold)


def test_what_cannot_be_a_starting_point_is_refused(tmp_path):
    corpus, text = dialogue_file(tmp_path)
    gru = train_lm(tmp_path, text[:4000], cell="gru", name="gru")
    with pytest.raises(ConfigError, match="GRU cells"):      # a classifier may start from it; a chat model not
        warmstart.fit_configs(warmstart.open_start(gru), Seq2SeqConfig(), CHAT)
    with pytest.raises(CheckpointError, match="not found"):
        warmstart.open_start("no-such-run")
    cli = [sys.executable, "-m", "rnnchat", "train", str(corpus), "--task", "chat", "--max-steps", "2"]
    for extra, says in [(["--init-from", gru, "--hidden", "32"], "drop --hidden"),
                        (["--init-from", gru], "GRU cells"),
                        (["--init-from", "missing"], "not found")]:
        res = subprocess.run(cli + extra, capture_output=True, text=True)
        assert res.returncode == 2, res.stderr
        assert says in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_chat_defaults_regularise_and_presets_leave_chat_dropout_alone():
    from rnnchat.runs.kinds import assemble

    for preset in (None, "tiny", "small", "medium"):
        model, train = assemble("chat", preset)
        assert model.dropout is None and train.patience > 0                  # settled by corpus size
    assert assemble("chat", "small", {"dropout": 0.0})[0].dropout == 0.0      # an explicit value wins
    assert assemble("lm", "medium")[0].dropout == 0.2 and assemble("lm")[1].patience == 0
