"""The Inspect pane on each kind of run, through Textual's Pilot: a GRU, a vanilla RNN and a subword (bpe)
LSTM, each trained briefly once per module. What the pane shows (the gates of the cell, their values at
the cursor, the gradients through time) is what ``rnnchat.lm.inspect`` computes from the same run; and a
snapshot of the whole Inspect tab."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import wait_for
from textual.widgets import Input

from rnnchat.lm import inspect as ins
from rnnchat.lm.config import ModelConfig
from rnnchat.runs.inspection import WINDOW
from rnnchat.runs.opened import open_language_model
from rnnchat.safetext import neutralise
from rnnchat.text.load import load_corpus
from rnnchat.text.split import split_documents
from rnnchat.tui.panes.inspect.pane import InspectPane
from rnnchat.tui.widgets.alternatives import visible_token
from tui.conftest import INSPECT_TEXT, Harness, StillApp, equation_value, folders_of, trace_with, train, write_play

RUNS = {"gru": ("gru", "char"), "rnn": ("rnn", "char"), "bpe": ("lstm", "bpe")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Three runs: "gru", "rnn" (character level) and "bpe" (an LSTM on subword tokens)."""
    root = tmp_path_factory.mktemp("inspect-cells")
    play = write_play(root, 150)
    with folders_of(root):
        for name, (cell, level) in RUNS.items():
            train(name, play, ModelConfig(cell=cell, layers=1, hidden=24, embed=16, dropout=0.0), seq_len=32,
                  batch_size=16, max_steps=20, eval_every=20, eval_chars=500, sample_length=10, level=level,
                  vocab_size=400, seed=7)
    return root


@pytest.fixture
def runs(runs, monkeypatch) -> Path:
    """The shared ``runs``, and the cache the runs were trained with."""
    monkeypatch.setenv("RNNCHAT_CACHE", str(runs / "cache"))
    return runs


def reference(run: str, text: str = INSPECT_TEXT):
    opened = open_language_model(run)
    ids = opened.tokenizer.encode(text)
    return opened, ids, ins.trace(opened.model, ids)


async def open_and_trace(pilot, run: str, **fields) -> InspectPane:
    pane = pilot.app.query_one(InspectPane)
    pane.open_run(run)
    await trace_with(pilot, pane, **fields)
    assert pane.state == "done" and pane.result.run == run
    return pane


async def show_gradients(pilot, pane: InspectPane, click: bool = False) -> None:
    count = pane.gradient_view.count
    if click:
        assert await pilot.click("#insp-grad-button")
    else:
        await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: pane.gradient_view.count > count and pane.gradient_view.state in ("done", "failed"),
                   what="the gradients")
    await pilot.pause()


def lines_of(pane: InspectPane, which: str) -> list[str]:
    return [line.strip() for line in pane.panel_text(which).splitlines()]


async def test_gru_run_shows_reset_update_and_new(runs):
    _, ids, tr = reference("gru")
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = await open_and_trace(pilot, "gru", unit="7", show="update")
        np.testing.assert_array_equal(pane.view.values, tr.series(0, "update", 7))
        equations = lines_of(pane, "equations")
        assert equations[0] == "the gru cell \u00b7 layer 0 unit 7"
        for label in ("reset gate", "update gate", "candidate state", "hidden state"):
            assert label in equations
        assert not any(word in pane.panel_text("equations") for word in ("forget", "output gate", "c_t"))
        lt = tr.layers[0]
        for t in (0, 5, 12):                               # the cursor's values are the trace's, in their ranges
            pane.view.action_move_to(t)
            await pilot.pause()
            r, z, n, h = (equation_value(pane, k) for k in ("r", "z", "n", "h_t"))
            assert 0 <= r <= 1 and 0 <= z <= 1 and -1 <= n <= 1 and -1 <= h <= 1
            assert (r, z, n, h) == pytest.approx((lt.gates["reset"][t, 7], lt.gates["update"][t, 7],
                                                  lt.gates["new"][t, 7], lt.hidden[t, 7]), abs=6e-5)
            previous = float(lt.hidden[t - 1, 7]) if t else 0.0
            assert h == pytest.approx((1 - z) * n + z * previous, abs=3e-4)   # the equation, with its numbers
            assert f"= (1 - {z:.4f}) * " in pane.panel_text("equations")
        saturation = pane.panel_text("saturation")
        assert "layer 0 reset" in saturation and "layer 0 update" in saturation and "new" not in saturation
        await show_gradients(pilot, pane)
        assert pane.has_class("-gradients") and pane.query_one("#insp-grad").display
        want = ins.gradients_through_time(open_language_model("gru").model, ids)
        assert len(pane.plot.norms) == len(ids) - 1 == len(INSPECT_TEXT) - 1
        np.testing.assert_allclose(pane.plot.norms, want, rtol=1e-5)
        assert all(np.isfinite(pane.plot.norms)) and min(pane.plot.norms) > 0
        assert pane.query_one("#insp-grad").border_title == \
            f"gradients through time \u00b7 gru \u00b7 {len(ids)} tokens of the text"
        drawn = pane.plot.render().plain
        assert f"{len(ids) - 2} steps back" in drawn and "of t=0 left at t=1" in drawn
        assert any(0x2800 < ord(c) <= 0x28FF for c in drawn)          # the braille line itself
        await pilot.press("ctrl+r")                                   # and hidden again
        await pilot.pause()
        assert not pane.query_one("#insp-grad").display
        assert not [n for n, sev in pilot.app.notes if sev == "error"]


async def test_vanilla_rnn_run_has_no_gates_and_measures_validation_text(runs):
    opened, _, tr = reference("rnn")
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = await open_and_trace(pilot, "rnn", unit="3", show="hidden")
        np.testing.assert_array_equal(pane.view.values, tr.series(0, "hidden", 3))
        assert "h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)" in lines_of(pane, "equations")
        assert "gate" not in pane.panel_text("equations") and "c_(t-1)" not in pane.panel_text("equations")
        assert "this cell has no gates" in pane.panel_text("saturation")
        await pilot.press("right", "right")
        await pilot.pause()
        h = equation_value(pane, "h_t")
        assert -1 <= h <= 1 and h == pytest.approx(float(tr.layers[0].hidden[2, 3]), abs=6e-5)
        assert equation_value(pane, "h_(t-1)") == pytest.approx(float(tr.layers[0].hidden[1, 3]), abs=6e-5)
        await trace_with(pilot, pane, show="forget")                  # an LSTM gate: said, not shown
        assert any(sev == "error" and "show must be one of hidden for a rnn model" in note
                   for note, sev in pilot.app.notes)
        # No text: the gradients of the run's own validation text, a window of 102 characters (lags 0 to 100).
        pane.query_one("#insp-text", Input).value = ""
        await show_gradients(pilot, pane, click=True)                 # the button does what ctrl+r does
        val = split_documents(load_corpus(str(runs / "play.txt")))[1][0]
        want = ins.gradients_through_time(opened.model, opened.tokenizer.encode(val[:WINDOW]))
        assert pane.gradients.source == "validation text" and pane.gradients.tokens == WINDOW
        np.testing.assert_allclose(pane.plot.norms, want, rtol=1e-5)
        assert f"{WINDOW} tokens of validation text" in pane.query_one("#insp-grad").border_title
        assert len(pane.plot.norms) == 101 and "t=100:" in pane.plot.render().plain
        await pilot.press("ctrl+r")


@pytest.mark.parametrize("text", ["A", "AB"])
async def test_too_short_for_gradients_is_a_notification(runs, text):
    async with Harness(InspectPane).run_test(size=(100, 30)) as pilot:
        pane = await open_and_trace(pilot, "rnn")
        pilot.app.notes.clear()
        pane.query_one("#insp-text", Input).value = text
        pane.view.focus()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any(sev == "error" for _, sev in pilot.app.notes), what="the notice")
        await pilot.pause(0.1)
        assert any("too short for gradients through time" in note for note, sev in pilot.app.notes
                   if sev == "error"), pilot.app.notes
        assert not pane.has_class("-gradients") and pane.gradients is None
        assert not any("Traceback" in note or "Error:" in note for note, _ in pilot.app.notes)


async def test_subword_run_shows_tokens_and_lstm_gates(runs):
    opened, ids, tr = reference("bpe")
    tok = opened.tokenizer
    assert tok.kind == "bpe" and 1 < len(ids) < len(INSPECT_TEXT)             # tokens of several characters
    async with Harness(InspectPane).run_test(size=(120, 40)) as pilot:
        pane = await open_and_trace(pilot, "bpe", unit="2", show="forget")
        pieces = [tok.token_text(int(i)) for i in ids]
        assert pane.result.pieces == pieces and "".join(pieces) == INSPECT_TEXT
        assert pane.view.render().plain == "".join(neutralise(p) or " " for p in pieces)
        np.testing.assert_array_equal(pane.view.values, tr.series(0, "forget", 2))
        assert pane.result.units == ins.interesting_units(tr, ins.char_positions(tok, ids), 8)
        for label in ("input gate", "forget gate", "cell candidate", "output gate", "cell state"):
            assert label in lines_of(pane, "equations")
        await pilot.press("right")
        await pilot.pause()
        assert f"at position 1: {visible_token(pieces[1])}" in lines_of(pane, "equations")
        lt = tr.layers[0]
        i, f, g, o = (equation_value(pane, k) for k in "ifgo")
        assert all(0 <= v <= 1 for v in (i, f, o)) and -1 <= g <= 1
        gates = ("input", "forget", "candidate", "output")
        assert (i, f, g, o) == pytest.approx([float(lt.gates[k][1, 2]) for k in gates], abs=6e-5)
        assert equation_value(pane, "c_t") == pytest.approx(f * float(lt.cell[0, 2]) + i * g, abs=3e-4)
        await show_gradients(pilot, pane)
        assert pane.gradients.tokens == len(ids) and len(pane.plot.norms) == len(ids) - 1
        np.testing.assert_allclose(pane.plot.norms, ins.gradients_through_time(opened.model, ids), rtol=1e-5)


async def test_panels_wrap_at_narrow_widths(runs):
    async with Harness(InspectPane).run_test(size=(60, 30)) as pilot:
        pane = await open_and_trace(pilot, "bpe", show="input")
        for which in ("equations", "units", "saturation"):
            panel = pane.query_one(f"#insp-{which}")
            width = panel.size.width
            assert 0 < width < 30
            rows = [row for row, _ in panel.rows(width)]
            assert all(len(row) <= width for row in rows)                   # nothing cut at the edge
            assert panel.size.height == len(rows)                           # the panel is as tall as its rows
            words = " ".join(pane.panel_text(which).split()).split(" ")
            assert " ".join(" ".join(rows).split()).split(" ") == words    # every word kept, in order
        drawn = [row for row, _ in pane.query_one("#insp-equations").rows(pane.query_one("#insp-equations").size.width)]
        at = next(i for i, row in enumerate(drawn) if row.strip().startswith("i = sigma("))
        assert drawn[at + 1].startswith("      ")                           # the rest of it under itself


def test_snapshot_of_the_inspect_tab(runs, snap_compare, monkeypatch):
    monkeypatch.setattr("rnnchat.train.speed.estimate_tokens_per_s", lambda model, train: 50000.0)
    monkeypatch.setattr("rnnchat.device.describe", lambda device: device.type)   # the header: "cpu" on any CPU

    async def run_before(pilot) -> None:
        await pilot.press("6")
        pane = pilot.app.query_one(InspectPane)
        await wait_for(pilot, lambda: "gru" in pane._option_values, what="the run list")
        pane.open_run("gru")
        pane.query_one("#insp-text", Input).cursor_blink = False
        await trace_with(pilot, pane, unit="4", show="update")
        await pilot.press("right", "right", "right", "right", "right")
        await show_gradients(pilot, pane)
        await wait_for(pilot, lambda: "step 20" in pane.status_text, what="the run described")
        await pilot.pause(0.2)

    assert snap_compare(StillApp(), terminal_size=(100, 30), run_before=run_before)
