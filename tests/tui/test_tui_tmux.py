"""The real ``rnnchat`` binary in a real terminal (tmux): open, train Shakespeare, stop, generate, quit; a
tiny run looked inside (Inspect) and written token by token (Generate); and a tiny classifier, one of its
labels full of control and bidi characters, reading typed texts (Classify)."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.conftest import folders_of, train, write_play

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
    # COLUMNS and LINES go: the pane's shell can set them to the size it started at (80x24, seen under
    # pytest), and the app would believe them over the terminal it is in.
    return Terminal(f"{name}-{os.getpid()}", f"cd {folder} && env -u COLUMNS -u LINES {env} {RNNCHAT}")


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


HOSTILE = "ex\x1b[2J\u202eevil\x07"          # clears the screen, reverses what follows and rings, if let through
SHOWN = "ex\u241b[2J\ufffdevil\u2407"        # ...as the sanitiser shows it: ␛[2J�evil␇
TEXT_FOCUSED = r"\n \^g Classify  \^q Quit  \^t Train +▏"   # the footer while the Classify tab's text has the keys


def write_marked(root: Path) -> Path:
    """root/marked.tsv: texts of common words, labelled "zed" when they hold a 'z' and HOSTILE for an 'x'."""
    words = "the a of and to in is it that was he for on are as with his they at be this from".split()
    rng = random.Random(0)
    rows = ["text\tlabel"]
    for _ in range(240):
        label = rng.choice(["zed", HOSTILE])
        text = [rng.choice(words) for _ in range(rng.randint(4, 10))]
        text.insert(rng.randrange(len(text) + 1), "z" if label == "zed" else "x")
        rows.append(f"{' '.join(text)}\t{label}")
    path = root / "marked.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_classify_tab_reads_a_text_and_shows_a_hostile_label_literally(isolated_paths):
    """Tab 7 with two classifiers: pick the older, type a text, see the bars, the reading and the moves."""
    from rnnchat.classify.config import ClassifierConfig

    data = write_marked(isolated_paths)
    with folders_of(isolated_paths):
        train("marks", data, ClassifierConfig(layers=1, hidden=32, embed=16, dropout=0.0),
              task="classify", batch_size=16, lr=1e-2, warmup_steps=5, max_steps=50, eval_every=50, sample_length=1)
        train("decoy", data, ClassifierConfig(layers=1, hidden=8, embed=8, dropout=0.0),
              task="classify", batch_size=16, max_steps=2, eval_every=2, sample_length=1)   # newest: shown first
    term = open_app(isolated_paths, "rnnchat-classify")
    try:
        term.wait_for(r"Corpus", timeout=30)
        term.keys("7")
        term.wait_for(r"decoy · best · step 2 · 2 labels · 1x8 gru  ·  ctrl\+g classifies the text", timeout=60)
        # Keys go where the focus is: wait for the footer of the focused text (no tab keys there: they type).
        term.wait_for(TEXT_FOCUSED)
        term.keys("BTab", "BTab")                            # from the text to the checkpoint, then the run picker
        term.wait_for(r"\n \^g Classify  \^q Quit  \^t Train  \^x Stop training")  # (Enter in the same burst was lost)
        term.keys("Enter")
        term.wait_for(r"\n +marks · marked\.tsv · step 50")
        term.keys("Down", "Enter")
        term.wait_for(r"marks · best · step 50 · 2 labels · 1x32 gru  ·  ctrl\+g classifies the text", timeout=60)
        text = "the a of x and to is it"
        term.keys("Tab", "Tab")                              # the checkpoint, then the text
        term.wait_for(TEXT_FOCUSED)
        term.keys("-l", text)
        term.wait_for(rf"\n  {text}")
        term.keys("C-g")
        bars = term.wait_for(r"▶ (\S+) +█+░* +(\d+\.\d)%\n +(\S+) +█*░+ +(\d+\.\d)%", timeout=60)
        assert bars.group(1) == SHOWN and float(bars.group(2)) > 90 and bars.group(3) == "zed"
        screen = term.wait_for(rf"marks: {re.escape(SHOWN)} \d+\.\d% over {len(text)} tokens").string
        # The reading, likeliest label first: two rows of ▁..█ a label, over the text (a few columns a character).
        # The hostile label's lower row fills (past one half) at the 'x' and stays full; before it, it does not.
        rows = re.search(r"As it reads.*\n (\S+) .*\n( +.*)\n zed .*\n +.*\n( +t +h +e +␣ +a +.*)\n", screen)
        assert rows and rows.group(1) == SHOWN, screen
        columns = [m.start() for m in re.finditer(r"\S", rows.group(3))]
        assert len(columns) == len(text)
        lower = rows.group(2).ljust(columns[-1] + 1)
        x = columns[text.index("x")]
        assert set(lower[x:columns[-1] + 1]) == {"█"}, rows.group(0)
        assert set(lower[columns[0]:x]) != {"█"}, rows.group(0)
        assert re.search(rf"moved it most: x at {text.index('x')} \(0\.\d+ toward {re.escape(SHOWN)}\)", screen)
        assert "\x1b" not in screen and "\u202e" not in screen and "\x07" not in screen
        term.keys("C-u")                                     # a text with a 'z': the other label on top
        term.wait_for(r"\n  type or paste a text")
        term.keys("-l", "he was z it")
        term.wait_for(r"\n  he was z it")
        term.keys("C-g")
        bars = term.wait_for(r"▶ zed +█+░* +(\d+\.\d)%\n +(\S+) +█*░+ +(\d+\.\d)%", timeout=60)
        assert float(bars.group(1)) > 90 and bars.group(2) == SHOWN
        term.wait_for(r"marks: zed \d+\.\d% over 11 tokens")
        term.quit(30)
        assert not term.alive(), "the app exited"
    finally:
        term.close()
