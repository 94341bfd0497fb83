"""--init-from for a language model: a run fine-tuned on new text from a language-model run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import make_play_text

from rnnchat.chat.config import Seq2SeqConfig
from rnnchat.config import TrainConfig
from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.events import Done, Started, Warning
from rnnchat.lm.config import ModelConfig
from rnnchat.lm.model import RNNLM
from rnnchat.runs import warmstart
from rnnchat.runs.opened import open_language_model
from rnnchat.text.load import load_corpus
from rnnchat.train.loop import Trainer
from rnnchat.vocab import UNK

NEW = "Æsop’s café — naïve ½ ✓\n"       # characters the invented play never uses
TINY = ModelConfig(cell="gru", layers=1, hidden=32, embed=16)


def fast(**kw) -> TrainConfig:
    return TrainConfig(**{"max_steps": 20, "eval_every": 20, "seq_len": 32, "batch_size": 8, "lr": 1e-2,
                          "warmup_steps": 2, "eval_chars": 2000, "sample_length": 0, "precision": "fp32", **kw})


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def base_run(tmp_path, name: str = "own", **kw) -> str:
    list(Trainer(write(tmp_path, f"{name}.txt", make_play_text(150)), TINY, fast(**kw), name=name).run())
    return name


def loss(model, ids) -> float:
    x = torch.as_tensor(ids.astype("int64"))[None]
    with torch.no_grad():
        logits, _ = model(x[:, :-1])
    return F.cross_entropy(logits[0], x[0, 1:]).item()


def test_new_characters_join_the_vocabulary_and_the_base_is_unchanged(tmp_path):
    base = open_language_model(base_run(tmp_path))
    corpus = load_corpus(write(tmp_path, "new.txt", make_play_text(40, seed=3) + NEW))
    start = warmstart.for_corpus(warmstart.open_start("own"), ModelConfig(), corpus)
    old, grown = base.tokenizer, start.tokenizer
    assert grown.chars.startswith(old.chars) and grown.vocab_size == old.vocab_size + len(set(NEW) - set(old.chars))
    text = make_play_text(30, seed=9)
    assert (grown.encode(text) == old.encode(text)).all()          # every known character keeps its id
    assert UNK not in grown.encode(NEW).tolist()

    model_cfg, train_cfg = warmstart.fit_configs(start, ModelConfig(hidden=512, cell="lstm"), TrainConfig())
    assert (model_cfg.cell, model_cfg.layers, model_cfg.hidden, model_cfg.embed) == ("gru", 1, 32, 16)
    assert model_cfg.vocab_size == train_cfg.vocab_size == grown.vocab_size
    model = RNNLM(model_cfg).eval()
    warmstart.apply(start, model)
    ids = old.encode(text)
    x = torch.as_tensor(ids.astype("int64"))[None]
    with torch.no_grad():      # the known rows are the base's own: the same logits for every known token
        assert torch.equal(model(x)[0][..., :old.vocab_size], base.model(x)[0])
    assert loss(model, ids) == pytest.approx(loss(base.model, ids), abs=0.01)   # new rows take almost nothing
    head = dict(model.named_parameters())["head.bias"]
    assert head[old.vocab_size:].max() < head[2:old.vocab_size].min()          # new characters start rare


def test_fine_tuning_through_the_trainer_records_its_base(tmp_path):
    base_run(tmp_path)
    new = write(tmp_path, "new.txt", make_play_text(60, seed=5) + NEW * 3)
    events = list(Trainer(new, ModelConfig(), fast(max_steps=4, eval_every=4), name="tuned", init_from="own").run())
    assert isinstance(events[-1], Done) and events[-1].reason == "max_steps"
    started = next(e for e in events if isinstance(e, Started))
    assert started.started_from.startswith("own (best, step 20")
    assert not [e for e in events if isinstance(e, Warning) and "unknown" in e.message]
    meta = json.loads((tmp_path / "checkpoints" / "tuned" / "run.json").read_text())
    assert meta["init_from"] == {"run": "own", "checkpoint": "best", "step": 20}
    assert meta["model"]["hidden"] == 32 and meta["kind"] == "lm"
    tuned = open_language_model("tuned").tokenizer
    assert tuned.chars.startswith(open_language_model("own").tokenizer.chars) and set(NEW) <= set(tuned.chars)


def test_a_small_corpus_fine_tuned_takes_less_dropout_than_from_scratch(tmp_path):
    base_run(tmp_path)
    new = write(tmp_path, "small.txt", make_play_text(60, seed=5))
    given = {"max_steps", "eval_every", "eval_chars", "sample_length", "precision"}   # the rest left to the rules
    events = list(Trainer(new, ModelConfig(), fast(max_steps=2, eval_every=2), name="small", init_from="own",
                          given=given).run())
    started = next(e for e in events if isinstance(e, Started))
    meta = json.loads((tmp_path / "checkpoints" / "small" / "run.json").read_text())
    assert meta["model"]["dropout"] == warmstart.FINE_TUNE_DROPOUT      # not the small-corpus rule's 0.2
    assert "small corpus: dropout 0.2" in started.preset and "takes dropout 0.1 instead" in started.preset
    list(Trainer(new, ModelConfig(dropout=0.3), fast(max_steps=2, eval_every=2), name="given", init_from="own",
                 given=given | {"dropout"}).run())                        # a dropout given is kept
    assert json.loads((tmp_path / "checkpoints" / "given" / "run.json").read_text())["model"]["dropout"] == 0.3


def test_a_subword_base_keeps_its_tokenizer(tmp_path):
    base_run(tmp_path, "sub", level="bpe", vocab_size=300)
    corpus = load_corpus(write(tmp_path, "new.txt", make_play_text(40, seed=3) + NEW))
    start = warmstart.open_start("sub")
    assert warmstart.for_corpus(start, ModelConfig(), corpus) is start
    assert UNK not in start.tokenizer.encode(NEW).tolist()            # its byte pieces spell them


def test_what_cannot_be_fine_tuned_is_refused_in_one_line(tmp_path):
    base_run(tmp_path)
    new = write(tmp_path, "new.txt", make_play_text(40, seed=3))
    with pytest.raises(ConfigError, match="drop one of --init-from and --resume"):
        Trainer(new, resume="own", init_from="own")
    talk = write(tmp_path, "talk.tsv", "prompt\treply\n" + "hello there\tgood day to you\n" * 40)
    chat = Seq2SeqConfig(layers=1, hidden=16, embed=8, dropout=0.0, context_turns=0)
    list(Trainer(talk, chat, fast(task="chat", max_steps=2, eval_every=2), name="talk").run())
    with pytest.raises(CheckpointError, match="not a language model"):
        list(Trainer(new, ModelConfig(), fast(), init_from="talk").run())
    with pytest.raises(CheckpointError, match="not found"):
        list(Trainer(new, ModelConfig(), fast(), init_from="no-such-run").run())
    cli = [sys.executable, "-m", "rnnchat", "train", new, "--max-steps", "2"]
    for extra, says in [(["--init-from", "talk"], "not a language model"),
                        (["--init-from", "own", "--hidden", "64"], "drop --hidden")]:
        res = subprocess.run(cli + extra, capture_output=True, text=True)
        assert res.returncode == 2 and says in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
