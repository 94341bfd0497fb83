"""The Inspect pane on a bidirectional classifier (``rnnchat train DATA --task classify --bidirectional``),
through Textual's Pilot: both directions' units, gates, equations and gradients, each labelled and each the
numbers ``rnnchat.lm.inspect`` computes from the same run; a one-way run hides the direction again."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for, write_x_or_z
from textual.widgets import Select

from rnnchat.cli import main
from rnnchat.lm import inspect as ins
from rnnchat.runs.opened import open_run
from rnnchat.tui.panes.inspect.pane import InspectPane
from tui.conftest import Harness, equation_value, folders_of, trace_with

TEXT = "the a z of it was x he"
TINY = ["--task", "classify", "--cell", "lstm", "--layers", "2", "--hidden", "16", "--embed", "8",
        "--batch-size", "16", "--precision", "fp32", "--device", "cpu", "--sample-length", "1", "--json"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Two classifiers of texts told apart by an 'x' or a 'z': "bi" (a 2x16 bidirectional LSTM, 20 steps)
    and "oneway" (the same, reading left to right only, 5 steps)."""
    root = tmp_path_factory.mktemp("inspect-bidirectional")
    data = write_x_or_z(root / "two.tsv", 120)
    with folders_of(root), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(data), *TINY, "--bidirectional", "--max-steps", "20", "--name", "bi"]) == 0
        assert main(["train", str(data), *TINY, "--max-steps", "5", "--name", "oneway"]) == 0
    return root


def lines_of(pane: InspectPane, which: str) -> list[str]:
    return [line.strip() for line in pane.panel_text(which).splitlines()]


async def choose_direction(pilot, pane: InspectPane, direction: str) -> None:
    """With the keyboard: focus the direction picker, open it, move to ``direction``, take it."""
    select = pane.query_one("#insp-direction", Select)
    select.focus()
    await pilot.press("enter")
    await pilot.pause()
    await pilot.press("down" if direction == "backward" else "up", "enter")
    await wait_for(pilot, lambda: pane.direction == direction, what=f"the {direction} direction")
    await pilot.pause()


async def measure_gradients(pilot, pane: InspectPane) -> None:
    count = pane.gradient_view.count
    pane.view.focus()
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: pane.gradient_view.count > count and pane.gradient_view.state in ("done", "failed"),
                   what="the gradients")
    await pilot.pause()


async def test_both_directions_units_gates_and_gradients(runs):
    opened = open_run("bi", "best", "classify")
    ids = opened.tokenizer.encode(TEXT)
    tr = ins.trace(opened.model, ids)
    T = len(TEXT)
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        pane.open_run("bi")
        await pilot.pause()
        assert not pane.query_one("#insp-direction").display          # no direction to choose before a trace
        await trace_with(pilot, pane, layer="1", unit="3", show="forget", text=TEXT)
        assert pane.state == "done" and pane.result.run == "bi" and pane.result.layers == 2
        assert pane.has_class("-bidirectional") and pane.query_one("#insp-direction").display
        assert pane.query_one("#insp-direction-label").display and pane.direction == "forward"

        # Forward first: the left-to-right layer's forget gate, labelled as the forward direction.
        np.testing.assert_array_equal(pane.view.values, tr.series(1, "forget", 3, "forward"))
        equations = lines_of(pane, "equations")
        assert equations[:2] == ["the lstm cell \u00b7 layer 1 forward unit 3",
                                 "reads left to right: h_(t-1) is the state before"]
        assert "layer 1 forward forget unit 3" in pane.status_text
        units = lines_of(pane, "units")
        assert units[1] == "fwd reads left to right, bwd right to left"
        found = ins.interesting_units(tr, TEXT, 8)
        assert {m.direction for m in found} == {"forward", "backward"}      # a short text: both track something
        for m in found:
            short = "fwd" if m.direction == "forward" else "bwd"
            assert any(line.startswith(f"layer {m.layer} {short} {m.what:<6} unit {m.unit:>4}") for line in units)
        saturation = lines_of(pane, "saturation")
        for s in ins.gate_saturation(tr):                               # layers x directions x gates, each named
            short = "fwd" if s["direction"] == "forward" else "bwd"
            assert any(line.startswith(f"layer {s['layer']} {short} {s['gate']:<7}") for line in saturation), s
        assert sum(line.startswith("layer ") for line in saturation) == 2 * 2 * 3

        # The backward direction, chosen with the keyboard: its series, and equations that step from t+1.
        await choose_direction(pilot, pane, "backward")
        assert pane.choice == (1, "forget", 3)
        backward = tr.layer(1, "backward")
        np.testing.assert_array_equal(pane.view.values, backward.gates["forget"][:, 3])
        assert not np.array_equal(pane.view.values, tr.series(1, "forget", 3, "forward"))
        equations = lines_of(pane, "equations")
        assert equations[:2] == ["the lstm cell \u00b7 layer 1 backward unit 3",
                                 "reads right to left: h_(t+1) is the state before"]
        assert "c_t = f * c_(t+1) + i * g" in equations and "h_(t-1)" not in pane.panel_text("equations")
        assert "layer 1 backward forget unit 3" in pane.status_text
        for t in (T - 1, 5, 0):                    # the end is the backward direction's first step, from zero
            pane.view.action_move_to(t)
            await pilot.pause()
            f, i, g, c = (equation_value(pane, k) for k in ("f", "i", "g", "c_t"))
            previous = (0.0, 0.0) if t == T - 1 else (float(backward.cell[t + 1, 3]), float(backward.hidden[t + 1, 3]))
            assert (f, i, g, c) == pytest.approx((backward.gates["forget"][t, 3], backward.gates["input"][t, 3],
                                                  backward.gates["candidate"][t, 3], backward.cell[t, 3]), abs=6e-5)
            assert (equation_value(pane, "c_(t+1)"), equation_value(pane, "h_(t+1)")) == \
                pytest.approx(previous, abs=6e-5)
            assert c == pytest.approx(f * previous[0] + i * g, abs=3e-4)   # the equation, with its numbers

        # Gradients through time of the predicted label's loss: both directions measured at once.
        await measure_gradients(pilot, pane)
        want = ins.gradients_by_direction(opened.model, ids, int(tr.logits[-1].argmax()))
        assert pane.gradient_view.state == "done" and pane.gradients.tokens == T
        np.testing.assert_allclose(pane.plot.norms, want["backward"], rtol=1e-5)
        box = pane.query_one("#insp-grad")
        assert box.border_title == \
            f"gradients through time \u00b7 lstm \u00b7 backward direction \u00b7 {T} tokens of the text"
        assert "steps back from the start" in box.border_subtitle
        count = pane.gradient_view.count
        await choose_direction(pilot, pane, "forward")             # the other direction: shown, not measured again
        assert pane.gradient_view.count == count
        np.testing.assert_allclose(pane.plot.norms, want["forward"], rtol=1e-5)
        assert not np.allclose(want["forward"], want["backward"])
        assert "forward direction" in box.border_title and "from the start" not in box.border_subtitle
        np.testing.assert_array_equal(pane.view.values, tr.series(1, "forget", 3, "forward"))
        assert not [note for note, severity in pilot.app.notes if severity == "error"]


async def test_a_one_way_run_after_a_bidirectional_one_hides_the_direction(runs):
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.query_one(InspectPane)
        pane.open_run("bi")
        await trace_with(pilot, pane, text=TEXT)
        await choose_direction(pilot, pane, "backward")
        pane.open_run("oneway")
        await trace_with(pilot, pane, unit="2", show="output", text=TEXT)
        opened = open_run("oneway", "best", "classify")
        tr = ins.trace(opened.model, opened.tokenizer.encode(TEXT))
        assert pane.result.run == "oneway" and tr.directions == ("forward",)
        assert not pane.has_class("-bidirectional") and not pane.query_one("#insp-direction").display
        assert pane.direction == "forward" and pane.query_one("#insp-direction", Select).value == "forward"
        np.testing.assert_array_equal(pane.view.values, tr.series(0, "output", 2))
        assert lines_of(pane, "equations")[0] == "the lstm cell \u00b7 layer 0 unit 2"
        assert "fwd" not in pane.panel_text("units") and "bwd" not in pane.panel_text("saturation")
        assert not [note for note, severity in pilot.app.notes if severity == "error"]
