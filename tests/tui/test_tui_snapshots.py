"""Snapshots of the main screens at 80x24 (pytest-textual-snapshot); update with --snapshot-update."""

from __future__ import annotations

import time

import pytest

from rnnchat.tui.panes.corpus import CorpusPane
from tui.conftest import StillApp


@pytest.fixture
def steady(monkeypatch):
    # The preset line shows a speed measured on the machine running the test; pin it for the picture.
    monkeypatch.setattr("rnnchat.train.speed.estimate_tokens_per_s", lambda model, train: 50000.0)
    # The auto preset's row depends on the CPU's bf16 support; the picture shows the fp32 one everywhere.
    monkeypatch.setattr("rnnchat.device.cpu_has_native_bf16", lambda: False)
    # The header names the device once torch has loaded: "cpu" here, whatever the thread count.
    monkeypatch.setattr("rnnchat.device.describe", lambda device: device.type)


async def _corpus_loaded(pilot) -> None:
    stats = pilot.app.query_one(CorpusPane).query_one("#corpus-stats")
    deadline = time.monotonic() + 30
    while ("characters" not in str(stats.render()) or "loading" in pilot.app.sub_title) and \
            time.monotonic() < deadline:
        await pilot.pause(0.1)
    await pilot.pause(0.3)


def test_corpus_screen(snap_compare, steady):
    assert snap_compare(StillApp(), terminal_size=(80, 24), run_before=_corpus_loaded)


def test_train_screen(snap_compare, steady):
    async def before(pilot):
        await _corpus_loaded(pilot)
        await pilot.press("2")
        await pilot.pause(0.5)

    assert snap_compare(StillApp(), terminal_size=(80, 24), run_before=before)


def test_runs_screen_empty(snap_compare, steady):
    async def before(pilot):
        await _corpus_loaded(pilot)
        await pilot.press("4")
        await pilot.pause(0.3)

    assert snap_compare(StillApp(), terminal_size=(80, 24), run_before=before)
