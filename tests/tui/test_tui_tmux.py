"""The real ``rnnchat`` binary in a real terminal (tmux): open, train Shakespeare, stop, generate, quit; and
a tiny run looked inside (Inspect) and written token by token (Generate)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.conftest import train, write_play

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

RNNCHAT = str(Path(sys.executable).parent / "rnnchat")


class Terminal:
    def __init__(self, name: str, command: str, width: int = 100, height: int = 30):
        self.name = name
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), command],
                       check=True)

    def screen(self) -> str:
        proc = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return proc.stdout

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.screen())
            if match:
                return match
            time.sleep(0.2)
        raise AssertionError(f"never saw {pattern!r}; screen was:\n{self.screen()}")

    def quit(self, timeout: float) -> None:
        """ctrl+q, then up to ``timeout`` seconds for the app to exit."""
        self.keys("C-q")
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def open_app(folder: Path, name: str) -> Terminal:
    """The real app in a new terminal, working in ``folder`` with its corpora, checkpoints and cache there."""
    env = " ".join(f"{k}={v}" for k, v in {
        "RNNCHAT_CHECKPOINTS": folder / "checkpoints", "RNNCHAT_CACHE": folder / "cache",
        "RNNCHAT_CORPORA": folder / "corpora", "TERM": "xterm-256color"}.items())
    return Terminal(f"{name}-{os.getpid()}", f"cd {folder} && env {env} {RNNCHAT}")


def test_open_train_stop_generate_quit(isolated_paths):
    term = open_app(isolated_paths, "rnnchat")
    try:
        term.wait_for(r"Corpus", timeout=30)
        term.wait_for(r"4,781,134 characters", timeout=30)          # the built-in Shakespeare is chosen
        term.keys("2")
        term.wait_for(r"preset")
        term.keys("C-t")                                            # start training with the default preset
        first = term.wait_for(r"step ([\d,]+) · loss (\d+\.\d+)", timeout=90)
        # A step line comes every 5 steps: seconds apart on a busy 2-core machine, so wait for the next one.
        later = term.wait_for(rf"step (?!{first.group(1)} )([\d,]+) · loss (\d+\.\d+)", timeout=60)
        assert int(later.group(1).replace(",", "")) > int(first.group(1).replace(",", "")), "the loss updates live"
        term.wait_for(r"[\d,]+ chars/s · grad norm", timeout=10)   # the speed line (a capture may catch a repaint)
        term.keys("C-x")                                            # stop: saves a checkpoint
        term.wait_for(r"stopped and saved", timeout=60)
        runs = list((isolated_paths / "checkpoints").iterdir())
        assert len(runs) == 1 and (runs[0] / "last" / "model.safetensors").is_file()
        term.keys("3")
        term.wait_for(r"Generate")
        term.keys("C-g")                                            # generate from the run just trained
        term.wait_for(r"chars/s", timeout=30)
        term.quit(20)
        assert not term.alive(), "the app exited"
    finally:
        term.close()


def test_inspect_gradients_and_pick_a_token(isolated_paths):
    """A tiny trained run, looked inside (Inspect: trace, gradients) and written token by token (Generate)."""
    from rnnchat.lm.config import ModelConfig

    train("tiny", write_play(isolated_paths, 150), ModelConfig(cell="lstm", layers=1, hidden=24, embed=16, dropout=0.0),
          seq_len=32, batch_size=16, max_steps=20, eval_every=20, eval_chars=500, sample_length=10)
    term = open_app(isolated_paths, "rnnchat-pick")
    try:
        term.wait_for(r"Corpus", timeout=30)
        term.keys("6")
        term.wait_for(r"Text .*∇ gradients")
        term.keys("ALDO: I see the moon, and Brina keeps.", "Enter")
        # The side panel wraps this line where it is narrow (a scrollbar takes a column): either way.
        term.wait_for(r"the lstm cell · layer 0\s+unit 0", timeout=120)
        assert "\n ALDO: I see the moon, and Brina keeps." in term.screen()
        term.keys("Right", "Right", "C-r")
        term.wait_for(r"gradients through time · lstm · 38 tokens of the text", timeout=60)
        term.wait_for(r"36 steps back")
        term.wait_for(r"at position 2: D")
        term.keys("3")
        term.wait_for(r"Prompt")
        term.keys("BRINA:", "C-n")
        term.wait_for(r"next token", timeout=60)
        term.wait_for(r"picking  ·  0 tokens.*\n.*Take.*Model picks", timeout=60)
        # The options are in once the panel stops "thinking" (the first load of a shape times the sampler's
        # weights first): keys pressed before then have nothing to take.
        term.wait_for(r"↑↓ enter · tab: model", timeout=60)
        term.keys("Down", "Enter")
        term.wait_for(r"picking  ·  1 tokens", timeout=60)
        term.wait_for(r"↑↓ enter · tab: model", timeout=60)
        term.keys("Tab")
        term.wait_for(r"picking  ·  2 tokens", timeout=60)
        term.keys("Escape")
        term.wait_for(r"picked \(ctrl\+n picks again\)  ·  2 tokens")
        assert re.search(r"│ BRINA:\S", term.screen()), "the two tokens follow the prompt"
        term.quit(30)
        assert not term.alive(), "the app exited"
    finally:
        term.close()
