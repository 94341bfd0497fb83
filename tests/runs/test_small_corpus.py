"""A language model on a corpus it would memorise takes dropout and stops once held-out loss stalls."""

from __future__ import annotations

import json

from conftest import make_play_text

from rnnchat.config import TrainConfig
from rnnchat.events import Started
from rnnchat.lm.config import SMALL_CORPUS_DROPOUT, SMALL_CORPUS_MIN_EVAL_EVERY, SMALL_CORPUS_PATIENCE, ModelConfig
from rnnchat.train.loop import Trainer

TINY = ModelConfig(cell="gru", layers=1, hidden=32, embed=16)


def train(tmp_path, lines: int, name: str, defaults: dict | None = None, text: str = "", **kw):
    path = tmp_path / f"{name}.txt"
    path.write_text(text or make_play_text(lines), encoding="utf-8")
    cfg = TrainConfig(**{"max_steps": 2, "eval_every": 2, "seq_len": 32, "batch_size": 8, "warmup_steps": 1,
                         "eval_chars": 1000, "sample_length": 0, "precision": "fp32", **(defaults or {}), **kw})
    # The settings this test names are the user's; the rest are left to the rule, as plan()'s are.
    events = list(Trainer(str(path), TINY, cfg, name=name, given=set(kw)).run())
    meta = json.loads((tmp_path / "checkpoints" / name / "run.json").read_text())
    return next(e for e in events if isinstance(e, Started)), meta


def test_a_corpus_it_would_memorise_gets_dropout_and_patience(tmp_path):
    started, meta = train(tmp_path, 40, "small")
    note = started.preset
    assert note.startswith(f"small corpus: dropout {SMALL_CORPUS_DROPOUT:g}, an evaluation every ")
    assert f"a stop after {SMALL_CORPUS_PATIENCE} evaluations without a better held-out loss" in note
    assert meta["model"]["dropout"] == SMALL_CORPUS_DROPOUT and meta["train"]["patience"] == SMALL_CORPUS_PATIENCE
    _, given = train(tmp_path, 40, "given", patience=7)          # a patience given is kept
    assert given["train"]["patience"] == 7


def test_a_small_corpus_the_base_can_spell_is_pointed_at_it(tmp_path):
    started, _ = train(tmp_path, 40, "english")
    assert started.preset.endswith("--init-from base (the built-in English model) usually does better on a "
                                   "corpus this small")
    greek = "\n".join(" ".join("αβγδεζηθικλμνξοπρστυφχψω"[i % 7:i % 7 + 5] for i in range(j, j + 9))
                      for j in range(60))
    started, _ = train(tmp_path, 0, "greek", text=greek)       # a script the base never read: no pointer
    assert started.preset.startswith("small corpus:") and "--init-from base" not in started.preset


def test_a_corpus_it_would_memorise_is_evaluated_about_once_a_pass(tmp_path):
    started, meta = train(tmp_path, 250, "pass", defaults={"eval_every": 200})
    every = meta["train"]["eval_every"]
    per_pass = started.train_tokens / (8 * 32)                          # windows of 32, 8 a step
    assert every == max(SMALL_CORPUS_MIN_EVAL_EVERY, round(per_pass)) < 200
    assert f"an evaluation every {every:,} steps (1 pass over the text)" in started.preset
    started, given = train(tmp_path, 250, "given-every", eval_every=150)  # a cadence given is kept, and said
    assert given["train"]["eval_every"] == 150 and "(but eval_every 150 as given)" in started.preset


def test_enough_text_changes_nothing(tmp_path):
    started, meta = train(tmp_path, 1500, "large")
    assert started.preset == "" and meta["model"]["dropout"] == 0.0 and meta["train"]["patience"] == 0


def test_settings_given_on_the_command_line_are_kept(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "tiny.txt"
    path.write_text(make_play_text(40), encoding="utf-8")
    args = [sys.executable, "-m", "rnnchat", "train", str(path), "--preset", "tiny", "--dropout", "0",
            "--max-steps", "2", "--eval-every", "2", "--seq-len", "32", "--batch-size", "8", "--precision", "fp32",
            "--name", "mine", "--json"]
    proc = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    started = next(e for e in map(json.loads, proc.stdout.splitlines()) if e["event"] == "started")
    meta = json.loads((tmp_path / "checkpoints" / "mine" / "run.json").read_text())
    assert meta["model"]["dropout"] == 0.0 and meta["train"]["patience"] == SMALL_CORPUS_PATIENCE
    assert "(but dropout 0.0 as given)" in started["preset"]


def test_configs_built_by_the_caller_are_kept_whole(tmp_path):
    path = tmp_path / "api.txt"
    path.write_text(make_play_text(40), encoding="utf-8")
    cfg = TrainConfig(max_steps=2, eval_every=2, seq_len=32, batch_size=8, eval_chars=1000, sample_length=0,
                      precision="fp32")
    list(Trainer(str(path), TINY, cfg, name="api").run())
    meta = json.loads((tmp_path / "checkpoints" / "api" / "run.json").read_text())
    assert meta["model"]["dropout"] == 0.0 and meta["train"]["patience"] == 0
