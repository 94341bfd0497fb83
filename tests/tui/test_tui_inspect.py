"""The Inspect pane through Textual's Pilot, on a tiny LSTM trained once per module: what it shows is what
``rnnchat.lm.inspect`` computes from the same run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input

from rnnchat.lm import inspect as ins
from rnnchat.lm.config import ModelConfig
from rnnchat.runs.opened import open_language_model
from rnnchat.safetext import neutralise
from rnnchat.tui.panes.inspect.pane import InspectPane
from rnnchat.tui.widgets.unitview import colour_of
from tui.conftest import INSPECT_TEXT, Harness, equation_value, folders_of, trace_with, train, write_play

HIDDEN = 24


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One run, "tiny": a two-layer LSTM."""
    root = tmp_path_factory.mktemp("inspect-runs")
    with folders_of(root):
        train("tiny", write_play(root, 150), ModelConfig(cell="lstm", layers=2, hidden=HIDDEN, embed=16, dropout=0.0),
              seq_len=32, batch_size=16, max_steps=20, eval_every=20, eval_chars=500, sample_length=10)
    return root


def reference(text: str = INSPECT_TEXT) -> tuple[ins.Trace, str]:
    opened = open_language_model("tiny")
    ids = opened.tokenizer.encode(text)
    return ins.trace(opened.model, ids), opened.tokenizer.decode(ids)


async def test_shown_values_are_the_trace(runs):
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        await trace_with(pilot, pane, layer="1", unit="5", show="forget")
        tr, _ = reference()
        expected = tr.series(1, "forget", 5)
        assert pane.state == "done" and pane.choice == (1, "forget", 5)
        np.testing.assert_array_equal(pane.view.values, expected)
        rendered = pane.view.render()
        assert rendered.plain == INSPECT_TEXT
        for t in (0, 7, len(INSPECT_TEXT) - 1):                    # each character on its value's colour
            styles = [str(s.style) for s in rendered.spans if s.start <= t < s.end]
            assert any(colour_of(expected[t]).replace(" ", "") in s.replace(" ", "") for s in styles), styles
        assert pilot.app.notes == []


async def test_arrows_move_the_cursor_and_the_equations_follow(runs):
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        await trace_with(pilot, pane, layer="0", unit="3", show="cell")
        tr, _ = reference()
        lt = tr.layers[0]
        assert pane.view.cursor == 0 and pilot.app.focused is pane.view
        assert "c_t = f * c_(t-1) + i * g" in pane.panel_text("equations")
        for _ in range(4):
            await pilot.press("right")
        await pilot.press("left")
        await pilot.pause()
        t = 3
        assert pane.view.cursor == t
        assert f"at position {t}" in pane.panel_text("equations")
        for name, values in (("i", lt.gates["input"]), ("f", lt.gates["forget"]), ("g", lt.gates["candidate"]),
                             ("o", lt.gates["output"]), ("c_t", lt.cell), ("h_t", lt.hidden)):
            assert equation_value(pane, name) == pytest.approx(float(values[t, 3]), abs=6e-5), name
        assert equation_value(pane, "c_(t-1)") == pytest.approx(float(lt.cell[t - 1, 3]), abs=6e-5)
        for _ in range(len(INSPECT_TEXT) + 3):                     # the cursor stops at the end
            await pilot.press("right")
        await pilot.pause()
        assert pane.view.cursor == len(INSPECT_TEXT) - 1


async def test_up_and_down_change_the_unit(runs):
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        await trace_with(pilot, pane, layer="1", unit="2", show="hidden")
        tr, _ = reference()
        await pilot.press("up", "up")
        await pilot.pause()
        assert pane.choice == (1, "hidden", 4)
        assert pane.query_one("#insp-unit", Input).value == "4"
        np.testing.assert_array_equal(pane.view.values, tr.series(1, "hidden", 4))
        await pilot.press("down")
        await pilot.pause()
        assert pane.choice == (1, "hidden", 3)
        np.testing.assert_array_equal(pane.view.values, tr.series(1, "hidden", 3))
        assert "layer 1 unit 3" in pane.panel_text("equations")
        pane.query_one("#insp-unit", Input).value = str(HIDDEN - 1)
        pane._show_choice()
        await pilot.press("up")                            # past the last unit: a warning, no change
        await pilot.pause()
        assert pane.choice == (1, "hidden", HIDDEN - 1)
        assert any(sev == "warning" and "unit" in note for note, sev in pilot.app.notes)


async def test_bad_values_are_notifications(runs):
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        await trace_with(pilot, pane, unit=str(HIDDEN))
        assert pane.choice is None
        assert any(sev == "error" and f"unit must be from 0 to {HIDDEN - 1}" in note for note, sev in pilot.app.notes)
        pilot.app.notes.clear()
        await trace_with(pilot, pane, show="reset")       # a GRU gate, not an LSTM's
        assert any(sev == "error" and "show must be one of" in note for note, sev in pilot.app.notes)
        pilot.app.notes.clear()
        await trace_with(pilot, pane, layer="2")
        assert any(sev == "error" and "layer must be from 0 to 1" in note for note, sev in pilot.app.notes)
        pilot.app.notes.clear()
        pane.query_one("#insp-unit", Input).value = "x"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any(sev == "error" and "unit must be a whole number" in note for note, sev in pilot.app.notes)
        await trace_with(pilot, pane, layer="0", unit="1", show="output")   # and it still works
        assert pane.choice == (0, "output", 1)


async def test_no_run_is_a_notification(isolated_paths):
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        await pilot.pause()
        pane.query_one("#insp-text", Input).value = INSPECT_TEXT
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert pane.result is None
        assert any(sev == "error" and "No trained runs" in note for note, sev in pilot.app.notes)
        assert "No trained runs" in pane.status_text


async def test_interesting_units_and_saturation(runs):
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        await trace_with(pilot, pane)
        tr, positions = reference()
        expected = ins.interesting_units(tr, positions, 8)
        assert expected and pane.result.units == expected
        lines = [line for line in pane.panel_text("units").splitlines() if line.startswith("  layer")]
        assert len(lines) == len(expected)
        for line, m in zip(lines, expected):
            assert line.split()[:5] == ["layer", str(m.layer), m.what, "unit", str(m.unit)]
            assert m.property in line and f"{m.correlation:+.2f}" in line
        saturation = pane.panel_text("saturation")
        for s in ins.gate_saturation(tr):
            assert f"layer {s['layer']} {s['gate']:<7} {100 * s['below']:5.1f}%" in saturation


async def test_markup_in_the_text_is_shown_literally(runs):
    text = "[bold]x[/] [red]y \x1b[31m"
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        await trace_with(pilot, pane, text=text)
        assert pane.state == "done"
        shown = pane.view.render().plain
        pieces = [neutralise(p) for p in pane.result.pieces]
        assert shown == "".join(p or " " for p in pieces)      # every piece literally, brackets and all
        assert "old" in shown and "red" in shown           # no markup was applied (brackets are <unk> here)
