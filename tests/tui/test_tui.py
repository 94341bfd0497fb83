"""The app through Textual's Pilot: real corpora, real (tiny) training runs, real checkpoints."""

from __future__ import annotations

import asyncio
import threading
import time

from conftest import wait_for
from textual.widgets import DataTable, Input, Static

from rnnchat.tui.panes.corpus import CorpusPane
from rnnchat.tui.panes.train import TrainPane
from rnnchat.tui.widgets.confirm import ConfirmScreen
from rnnchat.tui.widgets.plot import LossPlot
from rnnchat.tui.widgets.train_form import TrainForm
from tui.conftest import RecordingApp

HOSTILE = "[bold]loud[/] a lone [ bracket [/x] \x1b[31mred\x1b[0m end"
TINY_FORM = dict(layers="1", hidden="32", embed="16", dropout="0.0", seq_len="32", batch_size="16", lr="0.01",
                 minutes="", max_steps="60")


def shown(widget: Static) -> str:
    visual = widget.render()
    return visual.plain if hasattr(visual, "plain") else str(visual)


def fill_form(pane: TrainPane, **values) -> None:
    for key, value in values.items():
        pane.query_one(f"#f-{key}", Input).value = value


async def start_training(app, pilot, corpus, **form) -> TrainPane:
    """Choose ``corpus``, open the Train tab, fill the form (TINY_FORM plus ``form``) and press ctrl+t."""
    app.current_corpus = str(corpus)
    await pilot.press("2")
    pane = app.query_one(TrainPane)
    fill_form(pane, **{**TINY_FORM, **form})
    await pilot.press("ctrl+t")
    return pane


async def test_corpus_tab_shows_builtin_stats_and_literal_preview(isolated_paths, no_speed_probe):
    corpora = isolated_paths / "corpora"
    corpora.mkdir()
    (corpora / "hostile.txt").write_text((HOSTILE + "\n") * 3)
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(CorpusPane)
        stats = pane.query_one("#corpus-stats", Static)
        await wait_for(pilot, lambda: "characters" in shown(stats), what="shakespeare stats")
        assert "38 documents" in shown(stats) and "shakespeare" in shown(stats)
        pane.select(str(corpora / "hostile.txt"))
        await wait_for(pilot, lambda: "hostile.txt" in shown(stats) and "characters" in shown(stats),
                       what="hostile corpus stats")
        preview = shown(pane.query_one("#corpus-preview", Static))
        assert "[bold]loud[/] a lone [ bracket [/x]" in preview
        assert "\x1b" not in preview and "\u241b[31m" in preview
        assert app.current_corpus.endswith("hostile.txt")


async def test_square_brackets_in_names_and_errors_are_shown_literally(isolated_paths, play_file, no_speed_probe):
    """A path, a run name or an error with square brackets is shown as itself: every notification of the app
    goes out with markup off (with it on, '[draft]' vanished from messages and '[/b]' is a MarkupError)."""
    from rnnchat.config import TrainConfig
    from rnnchat.lm.config import ModelConfig
    from rnnchat.train.loop import Trainer
    from rnnchat.tui.panes.runs import RunsPane

    list(Trainer(str(play_file), ModelConfig(layers=1, hidden=24, embed=8, dropout=0.0),
                 TrainConfig(seq_len=16, batch_size=8, max_steps=4, eval_every=4, eval_chars=500, sample_length=0,
                             precision="fp32"), name="[bold]x[red]").run())
    hostile = isolated_paths / "notes [draft] [/b]"
    hostile.mkdir(parents=True)            # a folder "notes [draft] [" holding "b]": the path reads "[/b]"
    (hostile / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(CorpusPane)
        pane.select(str(hostile / "blob.bin"))                          # the corpus tab's error path
        await wait_for(pilot, lambda: any("binary" in m for m, _ in app.notes), what="binary refusal")
        assert any("[/b]" in m and "binary" in m for m, _ in app.notes)
        path_input = pane.query_one("#corpus-path", Input)
        path_input.focus()
        path_input.value = str(hostile / "missing [/i].txt")          # no such file
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("[/i]" in m for m, _ in app.notes), what="missing-path notice")
        await app.action_show_tab("runs")          # a run named with markup, deleted ("4" would type into the path)
        table = app.query_one(RunsPane).query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the run listed")
        table.focus()
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: any(m == "Deleted [bold]x[red]." for m, _ in app.notes), what="deleted")
        assert app.is_running
        # Every notification went out as plain text: '[draft]' or '[/b]' in one is never read as markup.
        shown_notes = list(app._notifications)
        assert shown_notes and all(not n.markup for n in shown_notes)
        assert any("[/b]" in n.message for n in shown_notes)
    assert not app.return_code


async def test_corpus_tab_refuses_binary_and_adds_by_path(isolated_paths, no_speed_probe):
    blob = isolated_paths / "blob.bin"
    blob.write_bytes(b"\x00\x01\x02" * 100)
    poems = isolated_paths / "poems"
    poems.mkdir()
    (poems / "one.txt").write_text("roses are red\n")
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(CorpusPane)
        stats = pane.query_one("#corpus-stats", Static)
        await wait_for(pilot, lambda: "characters" in shown(stats))
        pane.select(str(blob))
        await wait_for(pilot, lambda: any("binary" in m for m, _ in app.notes), what="binary refusal")
        assert ("error" in [s for m, s in app.notes if "binary" in m])
        path_input = pane.query_one("#corpus-path", Input)
        path_input.focus()
        path_input.value = str(poems)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "poems" in shown(stats) and "characters" in shown(stats),
                       what="folder stats")
        warnings = shown(pane.query_one("#corpus-warnings", Static))
        assert "small for the default model" in warnings


async def test_training_through_the_ui_fills_the_panels(isolated_paths, play_file, no_speed_probe):
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await start_training(app, pilot, play_file)
        await wait_for(pilot, lambda: pane.started is not None, what="start")
        await wait_for(pilot, lambda: not pane.training, what="training to finish")
        plot = pane.query_one(LossPlot)
        train_points, val_points = plot.series["train"], plot.series["val"]
        assert len(train_points) == 60 // 5 and train_points[-1][0] == 60
        assert train_points[-1][1] < train_points[0][1]
        assert val_points and val_points[-1][0] == 60
        status = shown(pane.query_one("#train-status", Static))
        assert "step 60" in status and "bits/char" in status and "chars/s" in status
        assert shown(pane.query_one("#train-sample", Static)).strip()
        assert "% of 20-char windows in the training text" in str(pane.query_one("#train-sample").border_subtitle)
        assert pane.last_done.reason == "max_steps"
        assert pane.updates < 60, "updates are batched, not one per step"
        assert (isolated_paths / "checkpoints" / pane.run_name / "best" / "model.safetensors").is_file()
        assert app.current_run == pane.run_name


async def test_stop_saves_and_resume_continues(isolated_paths, play_file, no_speed_probe):
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await start_training(app, pilot, play_file, max_steps="100000")
        await wait_for(pilot, lambda: pane.steps_seen >= 3, what="some steps")
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: not pane.training, what="stop")
        assert pane.last_done.reason == "interrupted"
        stopped_at = pane.last_done.step
        run_dir = isolated_paths / "checkpoints" / pane.run_name
        assert (run_dir / "last" / "manifest.json").is_file()
        fill_form(pane, max_steps=str(stopped_at + 20))
        pane.query_one("#resume").press()
        await wait_for(pilot, lambda: pane.started is not None and pane.started.resumed, what="resume")
        await wait_for(pilot, lambda: not pane.training, what="resumed run to finish")
        assert pane.last_done.step == stopped_at + 20 and pane.last_done.reason == "max_steps"


async def test_resume_keeps_the_runs_own_limits_unless_the_form_changes_them(isolated_paths, play_file,
                                                                             no_speed_probe):
    import json

    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await start_training(app, pilot, play_file, max_steps="400")
        await wait_for(pilot, lambda: pane.steps_seen >= 3, what="some steps")
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: not pane.training, what="stop")
        form = pane.query_one(TrainForm)
        fill_form(pane, **form._initial_limits)          # the limit fields as a fresh form shows them
        pane.query_one("#resume").press()
        await wait_for(pilot, lambda: pane.started is not None and pane.started.resumed, what="resume")
        assert pane.started.max_steps == 400 and pane.started.minutes == 0     # no 10-minute cap added
        run_json = json.loads((isolated_paths / "checkpoints" / pane.run_name / "run.json").read_text())
        assert run_json["train"]["max_steps"] == 400 and run_json["train"]["minutes"] == 0
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: not pane.training, what="stop again")


async def test_bad_form_values_are_notified_not_crashed(isolated_paths, play_file, no_speed_probe):
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        app.current_corpus = str(play_file)
        await pilot.press("2")
        pane = app.query_one(TrainPane)
        for field, value, fragment in (("hidden", "0", "hidden must be"), ("dropout", "3", "dropout must be"),
                                       ("lr", "", "lr: a value is needed")):
            fill_form(pane, **{**TINY_FORM, field: value})
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert any(fragment in m and s == "error" for m, s in app.notes), (fragment, app.notes)
            assert not pane.training
        app.current_corpus = str(isolated_paths / "missing.txt")
        fill_form(pane, **TINY_FORM)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: any("not found" in m for m, _ in app.notes), what="missing corpus")
        await wait_for(pilot, lambda: not pane.training)


async def test_hostile_text_from_a_model_is_shown_literally(isolated_paths, no_speed_probe):
    # A NUL after the first 8 KiB passes the binary sniff, so the model's vocabulary holds NUL too.
    text = ("x" * 9000) + "\n" + (HOSTILE + "\x00\n") * 200
    corpus = isolated_paths / "hostile.txt"
    corpus.write_text(text)
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await start_training(app, pilot, corpus, max_steps="40", hidden="48")
        await wait_for(pilot, lambda: not pane.training and pane.started is not None, what="training")
        sample = shown(pane.query_one("#train-sample", Static))
        assert sample and "\x1b" not in sample and "\x00" not in sample
        screen_text = app.export_screenshot()
        assert "\x1b[31m" not in screen_text


async def test_quit_while_training_asks_saves_and_leaves_no_thread(isolated_paths, play_file, no_speed_probe):
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await start_training(app, pilot, play_file, max_steps="100000")
        await wait_for(pilot, lambda: pane.steps_seen >= 2, what="steps")
        run_dir = isolated_paths / "checkpoints" / pane.run_name
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert pane.training, "answering no keeps training"
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        deadline = time.monotonic() + 30
        while app.is_running and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    assert (run_dir / "last" / "manifest.json").is_file()
    leftover = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()
                and "train" in t.name.lower()]
    assert not leftover, leftover


async def test_runs_tab_lists_opens_and_deletes(isolated_paths, play_file, no_speed_probe):
    from rnnchat.config import TrainConfig
    from rnnchat.lm.config import ModelConfig
    from rnnchat.train.loop import Trainer

    trainer = Trainer(str(play_file), ModelConfig(layers=1, hidden=24, embed=8, dropout=0.0),
                      TrainConfig(seq_len=16, batch_size=8, max_steps=10, eval_every=10, eval_chars=500,
                                  sample_length=10, precision="fp32"), name="listed")
    list(trainer.run())
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one(DataTable)
        assert table.row_count == 1
        row = table.get_row_at(0)
        assert str(row[0]) == "listed" and row[4] == "10"
        table.focus()
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert table.row_count == 0 and not (isolated_paths / "checkpoints" / "listed").exists()


async def test_command_palette_offers_main_actions(isolated_paths, no_speed_probe):
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"start train")
        await pilot.pause(0.5)
        from textual.command import CommandPalette

        palette = app.screen
        assert isinstance(palette, CommandPalette)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("TabbedContent").active == "train"
        pane = app.query_one(TrainPane)
        assert pane.training, "the palette started training"
    # Leaving the app stops the trainer, which saves and ends its thread.
    deadline = time.monotonic() + 60
    while pane.worker.is_running and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not pane.worker.is_running


async def test_chat_task_on_the_form_takes_the_chat_defaults(isolated_paths, no_speed_probe):
    from textual.widgets import Select

    from rnnchat.chat.config import CHAT_TRAIN_DEFAULTS
    from rnnchat.config import TrainConfig

    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        assert not app.query(TrainPane)              # no pane, so no speed probe, until the tab shows
        await pilot.press("2")
        pane = app.query_one(TrainPane)
        await wait_for(pilot, lambda: "12,345 chars/s here" in str(pane.query_one("#preset-info").render()),
                       what="the speed estimate")
        pane.query_one("#f-task", Select).value = "chat"
        await pilot.pause()
        assert pane.query_one("#f-lr", Input).value == str(CHAT_TRAIN_DEFAULTS["lr"])
        _, train = pane.read_form()
        assert train.clip == CHAT_TRAIN_DEFAULTS["clip"] != TrainConfig().clip   # no field: from the defaults
        assert (train.level, train.lr, train.batch_size) == ("bpe", CHAT_TRAIN_DEFAULTS["lr"], 32)
        assert train.patience == CHAT_TRAIN_DEFAULTS["patience"]
        model = pane.read_form()[0]
        assert model.dropout is None                   # not the size preset's 0: by corpus size at start
        dropout = pane.query_one("#f-dropout", Input)
        assert dropout.value == "" and dropout.placeholder == "auto"
        pane.query_one("#preset", Select).value = "medium"
        await pilot.pause()
        assert pane.read_form()[0].dropout is None and pane.read_form()[0].hidden == 512
        fill_form(pane, dropout="0.4")
        assert pane.read_form()[0].dropout == 0.4
        fill_form(pane, dropout="")
        pane.query_one("#preset", Select).value = "small"
        await pilot.pause()
        fill_form(pane, lr="0.002")                                              # the form wins over them
        assert pane.read_form()[1].lr == 0.002
        pane.query_one("#f-task", Select).value = "lm"
        await pilot.pause()
        model, train = pane.read_form()
        assert (train.clip, train.lr, train.level) == (TrainConfig().clip, TrainConfig().lr, "char")
        assert model.dropout == 0.0 and train.patience == 0


async def test_auto_preset_fills_the_row_for_the_device_and_budget_and_keeps_hand_edits(isolated_paths,
                                                                                         no_speed_probe):
    from textual.widgets import Select

    from rnnchat.runs import auto

    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TrainPane)
        pane.query_one("#f-precision", Select).value = "fp32"
        await pilot.pause()
        row = auto.choose("cpu-fp32", 10).row
        info = pane.query_one("#preset-info", Static)
        await wait_for(pilot, lambda: "auto: cpu-fp32, 10-min row" in shown(info), what="the auto row's line")
        assert pane.query_one("#f-cell", Select).value == row.settings["cell"]
        model, train = pane.read_form()
        assert (model.layers, model.hidden, train.lr, train.batch_size, train.seq_len) == tuple(
            row.settings[k] for k in ("layers", "hidden", "lr", "batch_size", "seq_len"))
        assert row.source in str(info.tooltip)
        # A hand-edited field stays when the budget moves the row; the others follow the new row.
        fill_form(pane, hidden="200")
        await pilot.pause()
        fill_form(pane, minutes="5")
        await pilot.pause()
        await wait_for(pilot, lambda: "5-min row" in shown(info), what="the 5-minute row")
        five = auto.choose("cpu-fp32", 5).row
        model, train = pane.read_form()
        assert model.hidden == 200 and train.lr == five.settings["lr"] and model.layers == five.settings["layers"]
        # A cell chosen by hand takes that cell's row for the fields not edited by hand.
        lstm = auto.choose("cpu-fp32", 5, "lstm").row
        pane.query_one("#f-cell", Select).value = "lstm"
        await pilot.pause()
        await wait_for(pilot, lambda: pane.read_form()[1].lr == lstm.settings["lr"], what="the LSTM row's rate")
        model, train, note = pane.query_one(TrainForm).read_plan()
        assert model.cell == "lstm" and model.hidden == 200 and train.seq_len == lstm.settings["seq_len"]
        assert lstm.summary() in note and "set by hand: hidden 200" in note
        by_hand = pane.query_one(TrainForm).set_by_hand()          # what the small-corpus rule must keep
        assert "hidden" in by_hand and "cell" in by_hand and not {"lr", "layers", "dropout"} & by_hand
        # A size preset replaces every shape field and says nothing about rows.
        pane.query_one("#preset", Select).value = "tiny"
        await pilot.pause()
        model, _ = pane.read_form()
        assert (model.layers, model.hidden) == (1, 128) and "auto" not in shown(info)
