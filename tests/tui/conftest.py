"""What the app's tests share: tiny runs trained once, the apps that host a pane or the whole app and
remember their notifications, and helpers that drive the panes.

Runs: a module names the folder its runs were trained in with a ``trained`` fixture (by default
``lm_runs``: "tiny" and "hostile"), and ``runs`` points a test's RNNCHAT_CHECKPOINTS at it, after the
autouse ``isolated_paths`` has given the test its own corpora, cache and working folder.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from conftest import make_play_text, wait_for
from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import Footer, Input

import rnnchat.tui as tui
from rnnchat.config import TrainConfig
from rnnchat.lm.config import ModelConfig
from rnnchat.train.loop import Trainer
from rnnchat.tui.app import RnnchatApp

TCSS = Path(tui.__file__).parent / "rnnchat.tcss"
HOSTILE_LINES = ["[bold]x[/] [/x] [ \x1b[31mred\x1b[0m", "a/b [i]c[/i] \\ [/] ]", "[link=x]y[/link] [[ ]]"]

# ------------------------------------------------------------------------------------------- runs


def write_play(root: Path, lines: int) -> Path:
    """root/play.txt: a small invented play of ``lines`` speeches."""
    play = root / "play.txt"
    play.write_text(make_play_text(lines), encoding="utf-8")
    return play


@contextmanager
def folders_of(root: Path) -> Iterator[Path]:
    """Inside: runs are trained into root/checkpoints, with root's own cache and corpora folders."""
    with pytest.MonkeyPatch.context() as mp:
        for folder in ("checkpoints", "cache", "corpora"):
            mp.setenv(f"RNNCHAT_{folder.upper()}", str(root / folder))
        yield root


def train(name: str, corpus: Path, model, **settings) -> None:
    """Train run ``name`` on the CPU in fp32 to its end; the last one trained is the newest."""
    time.sleep(0.05)                # distinct modification times, so "newest first" is one order
    cfg = TrainConfig(precision="fp32", device="cpu", **settings)
    list(Trainer(str(corpus), model, cfg, name=name).run())


@pytest.fixture(scope="session")
def lm_runs(tmp_path_factory) -> Path:
    """Two tiny language models: "tiny" on a small invented play and "hostile" on text full of
    markup-like brackets, slashes and ESC sequences (the Generate tab's, picking's)."""
    root = tmp_path_factory.mktemp("lm-runs")
    hostile = root / "hostile.txt"
    hostile.write_text("\n".join(HOSTILE_LINES[i % 3] + " " + line
                                 for i, line in enumerate(make_play_text(120).splitlines())), encoding="utf-8")
    with folders_of(root):
        for name, corpus in (("tiny", write_play(root, 200)), ("hostile", hostile)):
            train(name, corpus, ModelConfig(layers=1, hidden=32, embed=16, dropout=0.0), seq_len=32,
                  batch_size=16, max_steps=40, eval_every=20, eval_chars=1000, sample_length=20)
    return root


@pytest.fixture(scope="session")
def trained(lm_runs) -> Path:
    """The folder of the runs a module's tests use (a module overrides it to train its own)."""
    return lm_runs


@pytest.fixture
def runs(isolated_paths, trained, monkeypatch) -> Path:
    """The test's checkpoints are the ``trained`` runs; the folder they were trained in."""
    monkeypatch.setenv("RNNCHAT_CHECKPOINTS", str(trained / "checkpoints"))
    return trained

# ------------------------------------------------------------------------------------------- apps


class StillApp(RnnchatApp):
    """The real app, its cursors not blinking (so a snapshot is one picture)."""

    CURSOR_BLINK = False


class RecordingApp(StillApp):
    """The real app, remembering its notifications (``notes``: text and severity) so tests can read them."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[tuple[str, str]] = []

    def notify(self, message, *, title="", severity="information", timeout=None, markup=True):
        self.notes.append((str(message), severity))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)   # the app's own way


class Harness(App):
    """One pane (``pane``, a class) and a footer, with the app's styles; remembers notifications."""

    CSS_PATH = str(TCSS)

    def __init__(self, pane: type[Widget]) -> None:
        super().__init__()
        self.pane = pane
        self.notes: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield self.pane()
        yield Footer()

    def on_mount(self) -> None:
        for inp in self.query(Input):
            inp.cursor_blink = False

    def notify(self, message, *, title="", severity="information", timeout=None, markup=True):
        self.notes.append((str(message), severity))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

# ---------------------------------------------------------------------------------------- helpers


def fill(pane, **values: str) -> None:
    """Type into a run pane's setting inputs: ``fill(pane, top_k="5")`` sets ``#<PREFIX>-top-k``."""
    for key, value in values.items():
        pane.query_one(f"#{pane.PREFIX}-{key.replace('_', '-')}", Input).value = value


INSPECT_TEXT = "ALDO: I see the moon, and Brina keeps the sea."


async def trace_with(pilot, pane, *, layer="0", unit="0", show="hidden", text=INSPECT_TEXT) -> None:
    """In the Inspect pane: fill the toolbar, press enter in the text and wait for the trace to end."""
    fill(pane, layer=layer, unit=unit, show=show, text=text)
    await wait_for(pilot, lambda: pane._selected_run() is not None, what="the run picker")
    count = pane._streams
    pane.query_one("#insp-text", Input).focus()
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(pilot, lambda: pane._streams > count and pane.state in ("done", "failed"), what="the trace")
    await pilot.pause()


def equation_value(pane, name: str) -> float:
    """The value the Inspect pane's equations panel gives ``name``: "name = value", or the last "= value"
    under its equation."""
    lines = [line.strip() for line in pane.panel_text("equations").splitlines()]
    for i, line in enumerate(lines):
        if line.startswith(f"{name} = "):
            rest = line.partition("= ")[2]
            if rest[:1] in "+-" and rest[1:].replace(".", "").isdigit():
                return float(rest)
            values = [ln[2:] for ln in lines[i + 1:i + 3] if ln.startswith("= ") and ln[2:3] in "+-"
                      and ln[3:].replace(".", "").isdigit()]
            if values:
                return float(values[-1])
    raise AssertionError(f"{name} not in the equations panel")
