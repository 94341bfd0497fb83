"""The built-in base model (rnnchat/base/): shipped whole and checked like any run, and a start for language
models, chat models and classifiers (`--init-from base`, the Train form's "start from")."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import FAST, json_events, make_play_text, wait_for

from rnnchat.chat.config import Seq2SeqConfig
from rnnchat.config import TrainConfig
from rnnchat.errors import ConfigError
from rnnchat.events import Started
from rnnchat.lm.config import ModelConfig
from rnnchat.paths import builtin_base_dir
from rnnchat.runs import warmstart
from rnnchat.runs.checkpoints import load_checkpoint
from rnnchat.runs.opened import open_language_model
from rnnchat.runs.rundir import resolve_run
from rnnchat.train.loop import Trainer

BASE = builtin_base_dir()
DIALOGUE = "".join(f"A: how is the {w} today?\nB: the {w} is fine today.\n\n" for w in
                   ("sea", "moon", "door", "crown", "road", "tree", "bell", "lamp") * 12)


def fast(**kw) -> TrainConfig:
    return TrainConfig(**{"max_steps": 2, "eval_every": 2, "seq_len": 32, "batch_size": 4, "eval_chars": 500,
                          "sample_length": 0, "precision": "fp32", **kw})


def test_every_shipped_file_is_in_the_manifest_and_verifies():
    shipped = {p.relative_to(BASE).as_posix() for p in BASE.rglob("*") if p.is_file()}
    manifest = json.loads((BASE / "best" / "manifest.json").read_text())
    listed = {f"best/{n}" for n in manifest["files"]} | set(manifest["run_files"]) | {"best/manifest.json"}
    # Besides the checkpoint: its description (run.json), its card and the sizes of the text it read.
    assert shipped - listed == {"run.json", "CARD.md", "sources.json"}
    assert listed <= shipped
    loaded = load_checkpoint(BASE, "best")                     # sizes and sha256 of every listed file checked
    assert loaded.note == "" and "embed.weight" in loaded.model
    assert not any(p.suffix in (".pt", ".pth", ".pkl", ".bin") for p in BASE.rglob("*"))   # no pickles


def test_base_opens_as_a_language_model_chat_runs_can_start_from():
    opened = open_language_model("base")
    assert opened.path.resolve() == BASE.resolve()
    assert opened.model.cfg.cell == "lstm"                     # a chat model's decoder is an LSTM
    assert opened.meta.summary.best_bits_per_char < 2.5       # it has learned English, not noise
    card = (BASE / "CARD.md").read_text().lower()
    assert "held-out" in card and "licen" in card


def test_rnnchat_generate_samples_from_the_base():
    proc = subprocess.run([sys.executable, "-m", "rnnchat", "generate", "base", "--length", "200", "--seed", "1",
                           "--prompt", "The "], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    assert len(words) > 20 and sum(w.strip(".,;:!?'\"").isalpha() for w in words) > len(words) // 2


def test_fine_tuning_from_base_takes_the_fine_tuning_schedule(tmp_path):
    text = tmp_path / "new.txt"
    text.write_text(make_play_text(200) + "Æsop’s café\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "rnnchat", "train", str(text), "--init-from", "base", "--max-steps",
                           "2", "--eval-every", "2", "--eval-chars", "500", "--sample-length", "0",
                           "--batch-size", "4", "--name", "mine", "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    started = next(e for e in json_events(proc.stdout) if e["event"] == "started")
    assert "fine-tuning from 'base'" in started["preset"]
    meta = json.loads((resolve_run("mine") / "run.json").read_text())
    assert meta["init_from"]["run"] == "base"
    assert all(meta["train"][k] == warmstart.FINE_TUNE[k] for k in ("lr", "seq_len", "carry_state"))
    assert meta["model"]["cell"] == "lstm" and meta["model"]["hidden"] == open_language_model("base").model.cfg.hidden
    assert "æ" in open_language_model("mine").tokenizer.chars.lower()      # grown, not unknown


def test_a_given_rate_stays(tmp_path):
    text = tmp_path / "new.txt"
    text.write_text(make_play_text(150), encoding="utf-8")
    events = list(Trainer(str(text), ModelConfig(), fast(lr=3e-4), init_from="base", name="kept",
                          given={"lr", "max_steps"}).run())
    started = next(e for e in events if isinstance(e, Started))
    assert "lr" not in started.preset.split("fine-tuning from 'base'")[-1]
    assert json.loads((resolve_run("kept") / "run.json").read_text())["train"]["lr"] == 3e-4


def test_chat_and_classifier_runs_start_from_the_base(tmp_path):
    dialogue = tmp_path / "talk.txt"
    dialogue.write_text(DIALOGUE, encoding="utf-8")
    list(Trainer(str(dialogue), Seq2SeqConfig(), fast(task="chat", level="char"), init_from="base",
                 name="talk").run())
    assert json.loads((resolve_run("talk") / "run.json").read_text())["init_from"]["run"] == "base"
    labelled = tmp_path / "labelled.tsv"
    labelled.write_text("".join(f"{'x' * 5} {i} story\tx\n{'y' * 5} {i} story\ty\n" for i in range(20)))
    from rnnchat.classify.config import ClassifierConfig
    list(Trainer(str(labelled), ClassifierConfig(), fast(task="classify"), init_from="base", name="sort").run())
    assert json.loads((resolve_run("sort") / "run.json").read_text())["init_from"]["run"] == "base"


def test_the_name_base_is_kept_for_the_builtin_but_an_older_own_run_comes_first(tmp_path, play_file):
    with pytest.raises(ConfigError, match="built-in base"):
        list(Trainer(str(play_file), ModelConfig(layers=1, hidden=16, embed=8), fast(), name="base").run())
    list(Trainer(str(play_file), ModelConfig(layers=1, hidden=16, embed=8), fast(), name="older").run())
    shutil.copytree(resolve_run("older"), tmp_path / "checkpoints" / "base")
    assert resolve_run("base") == tmp_path / "checkpoints" / "base"


def test_init_from_base_refuses_shape_options_in_one_line(play_file):
    proc = subprocess.run([sys.executable, "-m", "rnnchat", "train", str(play_file), "--init-from", "base",
                           "--hidden", "64", *FAST[4:6]], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "drop --hidden" in proc.stderr and "Traceback" not in proc.stderr


async def test_train_form_starts_from_the_builtin_base(isolated_paths, play_file, no_speed_probe):
    from textual.widgets import Input, Select
    from tui.conftest import RecordingApp

    from rnnchat.chat.config import CHAT_TRAIN_DEFAULTS
    from rnnchat.tui.panes.train import TrainPane
    from rnnchat.tui.widgets.train_form import BASE as BASE_OPTION

    app = RecordingApp()
    async with app.run_test(size=(110, 40)) as pilot:
        app.current_corpus = str(play_file)
        await pilot.press("2")
        pane = app.query_one(TrainPane)
        select = pane.query_one("#start-from", Select)
        assert any(v == BASE_OPTION for _, v in select._options)
        scratch_shape = (pane.query_one("#f-cell", Select).value, pane.query_one("#f-hidden", Input).value)
        base = open_language_model("base").model.cfg
        select.value = BASE_OPTION
        await pilot.pause()
        assert pane.query_one("#f-hidden", Input).disabled and pane.query_one("#f-cell", Select).disabled
        # The disabled fields show the shape the run will have: the base's, not the preset's.
        assert (pane.query_one("#f-cell", Select).value, pane.query_one("#f-hidden", Input).value) == \
            (base.cell, str(base.hidden))
        select.value = select._options[0][1]          # scratch again: the preset's shape comes back
        await pilot.pause()
        assert (pane.query_one("#f-cell", Select).value, pane.query_one("#f-hidden", Input).value) == scratch_shape
        select.value = BASE_OPTION
        await pilot.pause()
        # A task chosen meanwhile puts its defaults under the start's shape: scratch then shows the chat's subwords.
        task = pane.query_one("#f-task", Select)
        task.value = "chat"
        await pilot.pause()
        assert pane.query_one("#f-level", Select).value == "char"            # the base's, while it is chosen
        select.value = select._options[0][1]
        await pilot.pause()
        assert pane.query_one("#f-level", Select).value == CHAT_TRAIN_DEFAULTS["level"]
        task.value = "lm"
        select.value = BASE_OPTION
        await pilot.pause()
        for key, value in dict(minutes="", max_steps="2", batch_size="4", seq_len="32").items():
            pane.query_one(f"#f-{key}", Input).value = value
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: pane.trainer is None and pane.run_name, timeout=120, what="training to end")
        meta = json.loads((resolve_run(pane.run_name) / "run.json").read_text())
        assert meta["init_from"]["run"] == "base" and meta["model"]["cell"] == "lstm"
