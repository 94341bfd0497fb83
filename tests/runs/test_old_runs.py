"""Runs saved before the restructure still load, resume, generate and chat.

The on-disk differences are the chat kind: older versions wrote ``"kind": "seq2seq"`` in run.json
(today "chat"), and kept the chat's context_turns, max_turn_chars and teacher_forcing under "train"
(today they are the chat model's settings, under "model"). The test writes such runs itself: it trains
tiny runs and puts back the old layout.
"""

import json
import os
import subprocess
import sys

import pytest

from rnnchat import events as ev
from rnnchat.chat.config import DecodeConfig, Seq2SeqConfig
from rnnchat.chat.session import ChatSession
from rnnchat.config import TrainConfig
from rnnchat.lm.config import ModelConfig, SampleConfig
from rnnchat.lm.generate import generate
from rnnchat.runs.opened import open_chat_model, open_language_model
from rnnchat.runs.rundir import list_runs
from rnnchat.train.loop import Trainer


def run_cli(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "rnnchat", *args], input=stdin, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)


@pytest.fixture
def old_chat_run(tmp_path):
    pairs = "".join(f"{w}\t{w[::-1]}\n" for w in ("abc", "bcd", "cde", "def", "efg", "fgh", "ghi", "hij") * 8)
    corpus = tmp_path / "old.tsv"
    corpus.write_text(pairs, encoding="utf-8")
    cfg = TrainConfig(task="chat", level="char", max_steps=20, eval_every=10, batch_size=8,
                      sample_length=10, precision="fp32")
    events = list(Trainer(str(corpus), Seq2SeqConfig(layers=1, hidden=32, embed=16, dropout=0.0, context_turns=0), cfg,
                          name="oldchat").run())
    assert events[-1].reason == "max_steps"
    run_dir = tmp_path / "checkpoints" / "oldchat"
    meta = json.loads((run_dir / "run.json").read_text())
    meta["kind"] = "seq2seq"                      # what rnnchat wrote for chat runs before the restructure
    for name in ("context_turns", "max_turn_chars", "teacher_forcing"):   # kept under "train" then
        meta["train"][name] = meta["model"].pop(name)
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


def test_old_chat_settings_under_train_are_read_as_the_models(old_chat_run):
    run = open_chat_model("oldchat")
    assert run.meta.model.context_turns == 0 and run.meta.model.max_turn_chars == 300
    assert ChatSession(run).context_turns == 0


def test_old_chat_run_loads_replies_resumes_and_evaluates(old_chat_run):
    assert [r.kind for r in list_runs()] == ["chat"]
    run = open_chat_model("oldchat")
    reply = ChatSession(run).reply("abc", DecodeConfig(temperature=0, max_length=8, candidates="model")).text()
    assert isinstance(reply, str)

    events = list(Trainer(resume="oldchat", overrides={"max_steps": 30}).run())
    done = events[-1]
    assert isinstance(done, ev.Done) and done.reason == "max_steps" and done.step == 30
    started = next(e for e in events if isinstance(e, ev.Started))
    assert started.resumed and started.step == 20

    piped = run_cli("chat", "oldchat", "--temperature", "0", stdin="abc\n")
    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.splitlines()) == 1
    scored = run_cli("eval", "oldchat", "--prompts", "4", "--json")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["pairs"] > 0


def test_old_chat_run_is_refused_by_generate_with_one_line(old_chat_run):
    res = run_cli("generate", "oldchat", "--length", "5")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "a chat model" in res.stderr and "rnnchat chat" in res.stderr


def test_language_model_run_resumes_and_generates(play_file):
    cfg = TrainConfig(max_steps=20, eval_every=10, batch_size=8, seq_len=32, sample_length=10, precision="fp32")
    list(Trainer(str(play_file), ModelConfig(cell="lstm", layers=1, hidden=32, embed=16), cfg, name="oldlm").run())
    text = generate(open_language_model("oldlm").model, open_language_model("oldlm").tokenizer,
                    SampleConfig(length=30, seed=1)).text()
    assert len(text) >= 20
    done = list(Trainer(resume="oldlm", overrides={"max_steps": 30}).run())[-1]
    assert done.reason == "max_steps" and done.step == 30
