"""The app draws before torch loads: importing it imports no torch, and what is asked for while torch is
still loading (Start, the corpus's size warning, the auto row for the device) happens once it has."""

from __future__ import annotations

import subprocess
import sys
import threading

from conftest import wait_for
from textual.widgets import Static

from rnnchat.tui import torch_thread
from rnnchat.tui.panes.corpus import CorpusPane
from rnnchat.tui.panes.generate.pane import GeneratePane
from tui.conftest import RecordingApp
from tui.test_tui import shown, start_training
from tui.test_tui_generate import start, wait_done

PROBE = """
import sys
import rnnchat.tui.app
print(sorted(m for m in ("torch", "safetensors", "rnnchat.lm.model", "rnnchat.runs.checkpoints")
             if m in sys.modules))
"""


def test_importing_the_app_imports_no_torch():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


async def test_start_pressed_while_torch_loads_trains_once_it_has_then_generates(isolated_paths, play_file,
                                                                                 no_speed_probe, monkeypatch):
    # This process imported torch long ago: the app's load is held back by a job ahead of it on the torch
    # thread, as a slow import would hold it, until the test lets it go.
    monkeypatch.setattr(torch_thread, "_loaded", threading.Event())
    gate = threading.Event()
    holding = torch_thread.submit(gate.wait, 120)
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        try:
            stats = app.query_one(CorpusPane).query_one("#corpus-stats", Static)
            await wait_for(pilot, lambda: "characters" in shown(stats), what="the corpus's figures")
            assert not torch_thread.loaded() and "loading PyTorch" in app.sub_title
            pane = await start_training(app, pilot, play_file)
            await wait_for(pilot, lambda: any("Loading PyTorch" in m for m, _ in app.notes), what="the wait said")
            assert not pane.training
        finally:
            gate.set()            # whatever failed, the app's load must not wait on the gate at exit
        holding.result(timeout=120)
        await wait_for(pilot, torch_thread.loaded, what="torch loaded")
        await wait_for(pilot, lambda: "loading" not in app.sub_title, what="the device shown")
        assert "cpu" in app.sub_title or "cuda" in app.sub_title
        await wait_for(pilot, lambda: pane.started is not None, what="the waiting Start to train")
        await wait_for(pilot, lambda: not pane.training, what="training to finish")
        assert pane.last_done.reason == "max_steps" and app.current_run == pane.run_name
        await pilot.press("3")
        generate = app.query_one(GeneratePane)
        await start(pilot, generate)
        await wait_done(pilot, generate)
        assert generate.tokens_received > 0 and generate.outputs[0].generated_text
