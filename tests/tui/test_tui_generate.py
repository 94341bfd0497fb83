"""The Generate pane through Textual's Pilot, on real (tiny) trained runs: "tiny" and "hostile", the
session's ``lm_runs`` (tests/tui/conftest.py)."""

from __future__ import annotations

import time

import pytest
from conftest import wait_for
from textual.app import App
from textual.widgets import Input, Static

import rnnchat.lm.generate as generate_module  # the pane imports its sampler when it runs one
import rnnchat.tui.widgets.status as status_module
from rnnchat.events import Token
from rnnchat.lm.config import SampleConfig
from rnnchat.lm.generate import generate
from rnnchat.runs.opened import open_language_model
from rnnchat.safetext import neutralise
from rnnchat.tui.panes.generate.pane import GeneratePane
from rnnchat.tui.widgets.alternatives import AlternativesPanel
from rnnchat.tui.widgets.probtext import ProbText
from tui.conftest import Harness, fill

HOSTILE_PROMPT = "[bold]x[/] [/x] [ \x1b[31m"


def reference(run: str, prompt: str, *, length: int, seed: int, temperature: float = 0.8) -> list[Token]:
    opened = open_language_model(run)
    cfg = SampleConfig(length=length, temperature=temperature, seed=seed)
    return [e for e in generate(opened.model, opened.tokenizer, cfg, prompt, alternatives=5) if isinstance(e, Token)]


async def start(pilot, pane: GeneratePane) -> None:
    """Press enter in the prompt, as a user would."""
    pane.query_one("#gen-prompt", Input).focus()
    await pilot.pause()
    await pilot.press("enter")


async def wait_done(pilot, pane: GeneratePane) -> None:
    await wait_for(pilot, lambda: "done" in pane.status_text and pane.state == "done", what="generation to end")
    await pilot.pause()


async def generated(pilot, run: str, **settings: str) -> GeneratePane:
    """Open ``run``, fill the toolbars with ``settings``, press enter in the prompt and wait for the end."""
    pane = pilot.app.query_one(GeneratePane)
    pane.open_run(run)
    fill(pane, **settings)
    await start(pilot, pane)
    await wait_done(pilot, pane)
    return pane


def drawn_lines(out: ProbText) -> list[str]:
    """What render_line draws for the visible rows (trailing padding removed)."""
    return ["".join(seg.text for seg in out.render_line(y)).rstrip() for y in range(out.size.height)]


# ------------------------------------------------------------------------------------------- tests


async def test_streams_the_same_text_as_generate_in_few_updates(runs):
    expected = reference("tiny", "ALDO:", length=200, seed=11)
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await generated(pilot, "tiny", prompt="ALDO:", seed="11", length="200", temperature="0.8")
        out = pane.outputs[0]
        text = "".join(t.text for t in expected)
        assert out.generated_text == neutralise(text)
        assert out.text == neutralise("ALDO:" + text)
        assert pane.tokens_received == 200
        assert 1 <= pane.batches_received <= 5          # a handful of UI updates, not one per token
        assert pane.reasons == ["length"] and "done: length" in pane.status_text
        assert f"{len(text):,} chars" in pane.status_text and "chars/s" in pane.status_text
        assert "T 0.80" in pane.status_text and "seed 11" in pane.status_text
        # The wrapped lines hold the text exactly, each within the width, and are what gets drawn.
        width = out.scrollable_content_region.width
        assert "".join(out.lines).replace("\n", "") == out.text.replace("\n", "")
        assert all(len(line) <= width for line in out.lines)
        top = int(out.scroll_y)
        assert drawn_lines(out) == [line.rstrip() for line in out.lines[top:top + out.size.height]] + \
            [""] * max(0, top + out.size.height - len(out.lines))
        assert app.focused is out                       # keys act on the output at once
        # What the sample copies from the training text, measured as rnnchat generate measures it.
        await wait_for(pilot, lambda: "copied: longest" in pane.status_text, what="the copy figures")
        from rnnchat.runs.opened import copy_index, open_language_model

        index, _ = copy_index(open_language_model("tiny").meta)
        want = index.measure(text)
        assert f"copied: longest {want.longest_copy} chars, {100 * want.copied_share:.0f}%" in pane.status_text
        await pilot.press("u")                          # underline the copied spans, and again to stop
        assert pane.underline_copies and out.copied_spans == [tuple(span) for span in want.spans]
        await pilot.press("u")
        assert not pane.underline_copies and out.copied_spans == []


async def test_plus_minus_change_live_temperature_and_escape_cancels(runs, monkeypatch):
    real_generate = generate_module.generate

    def paced_generate(*args, **kwargs):
        """The real sampler, slowed to ~1k tokens/s so the process looks idle to Pilot between keys."""
        events = real_generate(*args, **kwargs)

        def paced():
            for i, event in enumerate(events):
                if i % 10 == 0:
                    time.sleep(0.01)
                yield event
        return paced()

    monkeypatch.setattr(generate_module, "generate", paced_generate)
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(GeneratePane)
        pane.open_run("tiny")
        fill(pane, prompt="ALDO:", seed="3", length="5000000", temperature="0.8")
        await start(pilot, pane)
        await wait_for(pilot, lambda: pane.state == "streaming" and pane.tokens_received > 0, what="streaming")
        controls = pane.controls[0]
        await pilot.press("plus")
        assert controls.temperature == pytest.approx(0.9)
        assert pane.query_one("#gen-temperature", Input).value == "0.9"
        await pilot.press("minus", "minus", "minus")
        assert controls.temperature == pytest.approx(0.6)
        assert pane.query_one("#gen-temperature", Input).value == "0.6"
        assert pane.streaming and "T 0.60" in pane.status_text
        await pilot.press("escape")
        await wait_done(pilot, pane)
        assert controls.stop_requested and pane.reasons == ["cancelled"]
        assert "done: cancelled" in pane.status_text
        assert 0 < pane.tokens_received < 5_000_000
        # Clamped to [0, 5].
        pane.query_one("#gen-temperature", Input).value = "4.95"
        await pilot.press("plus", "plus")
        assert pane.query_one("#gen-temperature", Input).value == "5"


async def test_probability_colouring_cursor_and_alternatives(runs):
    expected = reference("tiny", "ALDO:", length=60, seed=5)
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await generated(pilot, "tiny", prompt="ALDO:", seed="5", length="60")
        panel = pane.query_one(AlternativesPanel)
        out = pane.outputs[0]
        assert not panel.display
        await pilot.press("p")
        await pilot.pause()
        assert pane.colour and out.colour and panel.display
        visible = [i for i, t in enumerate(expected) if t.text]
        assert out.cursor == visible[0]
        assert panel.entries == list(expected[visible[0]].alternatives)
        await pilot.press("right", "right")
        assert out.cursor == visible[2]
        token = expected[visible[2]]
        assert panel.token == (neutralise(token.text), token.prob)
        assert panel.entries == list(token.alternatives) and len(panel.entries) == 5
        shown = panel.render().plain
        assert f"{token.prob:.2%}" in shown
        assert all(f"{p:.2%}" in shown for _, p in token.alternatives)
        await pilot.press("end")
        assert out.cursor == visible[-1]
        await pilot.press("left")
        assert out.cursor == visible[-2]
        await pilot.press("home")
        assert out.cursor == visible[0]
        # The cursor (on the first token, so the view is at the top) is drawn reversed.
        await pilot.pause()
        assert out.scroll_y == 0
        assert any(seg.style and seg.style.reverse for seg in out.render_line(0))
        # A click on the 3rd generated character of the first line selects that token.
        assert await pilot.click(out, offset=(2 + len("ALDO:") + 2, 1))
        await pilot.pause()
        assert out.token_span(out.cursor)[0] == len("ALDO:") + 2
        await pilot.press("p")
        assert not pane.colour and not panel.display


async def test_side_by_side_three_temperatures_same_seed(runs):
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(GeneratePane)
        pane.open_run("tiny")
        fill(pane, prompt="BRINA:", seed="4", length="80", temperature="0.8")
        pane.outputs[0].focus()
        await pilot.press("t")
        assert pane.side_by_side and all(o.display for o in pane.outputs)
        await start(pilot, pane)
        await wait_done(pilot, pane)
        assert [c.temperature for c in pane.controls] == [0.5, 0.8, 1.1]
        for out, t in zip(pane.outputs, (0.5, 0.8, 1.1)):
            expected = "".join(tok.text for tok in reference("tiny", "BRINA:", length=80, seed=4, temperature=t))
            assert out.generated_text == neutralise(expected)
            assert out.border_title == f"T {t:.2f}"
        assert "T 0.50/0.80/1.10" in pane.status_text
        await pilot.press("t")
        assert not pane.side_by_side and not pane.outputs[1].display


async def test_save_writes_the_exact_text(runs, isolated_paths):
    expected = "".join(t.text for t in reference("tiny", "CORVIN:", length=150, seed=9))
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await generated(pilot, "tiny", prompt="CORVIN:", seed="9", length="150")
        await pilot.press("ctrl+s")
        path = pane.saved_path
        assert path is not None and path.parent == isolated_paths / "outputs" and path.name.startswith("tiny-")
        assert path.read_text(encoding="utf-8", errors="strict") == "CORVIN:" + expected
        assert any(str(path) in note and sev == "information" for note, sev in app.notes)
        await pilot.press("ctrl+s")                    # a second save in the same second: a new file
        assert pane.saved_path != path and pane.saved_path.read_text(encoding="utf-8") == "CORVIN:" + expected


async def test_markup_and_escapes_are_shown_literally(runs):
    opened = open_language_model("hostile")
    assert set("[]/\x1b") <= set(opened.tokenizer.chars)
    expected = "".join(t.text for t in reference("hostile", HOSTILE_PROMPT, length=300, seed=5))
    assert any(c in expected for c in "[]/\x1b")
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await generated(pilot, "hostile", prompt=HOSTILE_PROMPT, seed="5", length="300")
        out = pane.outputs[0]
        assert out.text == neutralise(HOSTILE_PROMPT + expected)
        assert out.text.startswith("[bold]x[/] [/x] [ \u241b[31m")
        assert out.raw_text == HOSTILE_PROMPT + expected
        await pilot.press("p")
        for index in range(out.token_count):            # every token through the alternatives panel
            out.move_cursor(index)
        await pilot.pause()
        out.scroll_home(animate=False)
        await pilot.pause()
        drawn = drawn_lines(out)
        assert drawn[0].startswith("[bold]x[/] [/x] [ \u241b[31m")
        everything = [out.render_line(y) for y in range(out.size.height)]
        everything += [pane.query_one(AlternativesPanel).render(), pane.query_one("#gen-status", Static).render()]
        everything.append(pane.query_one("#gen-prompt", Input).render_line(0))
        for thing in everything:
            text = "".join(s.text for s in thing) if not hasattr(thing, "plain") else thing.plain
            assert "\x1b" not in text
        prompt_drawn = "".join(s.text for s in pane.query_one("#gen-prompt", Input).render_line(0))
        assert "[bold]x[/] [/x] [ \u241b[31m" in prompt_drawn
        screen = app.export_screenshot()
        assert "\x1b" not in screen and "[bold]x[/]" in screen.replace("&#160;", " ")
        assert not [n for n in app.notes if n[1] == "error"]


async def test_empty_state_without_runs(isolated_paths):
    app = Harness(GeneratePane)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(GeneratePane)
        await pilot.pause()
        assert pane.has_class("-empty")
        empty = pane.query_one("#gen-empty", Static)
        assert empty.display and GeneratePane.EMPTY_MESSAGE in empty.render().plain
        assert not pane.query_one("#gen-body").display
        await start(pilot, pane)
        await pilot.pause()
        assert (GeneratePane.EMPTY_MESSAGE, "error") in app.notes and pane.state == "idle"


@pytest.mark.parametrize("field,value,message", [
    ("temperature", "abc", "temperature must be a number; got 'abc'"),
    ("temperature", "-1", "temperature must be a number from 0 to 100; got -1.0"),
    ("top_k", "2.5", "top-k must be a whole number; got '2.5'"),
    ("top_p", "0", "top-p must be in (0, 1]"),
    ("length", "", "length must be a whole number; got ''"),
    ("seed", "-3", "seed must be a whole number from 0"),
])
async def test_bad_numbers_are_notified(runs, field, value, message):
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(GeneratePane)
        pane.open_run("tiny")
        fill(pane, **{field: value})
        await start(pilot, pane)
        await pilot.pause()
        errors = [n for n, sev in app.notes if sev == "error"]
        assert errors and errors[-1].startswith(message), errors
        assert pane.state == "idle" and pane.controls == []


async def test_load_failure_and_unknown_prompt_are_notified(runs):
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(GeneratePane)
        pane.open_run("/nowhere/at-all")
        await wait_for(pilot, lambda: any(sev == "error" for _, sev in app.notes), what="load error")
        assert any("not found" in n for n, sev in app.notes if sev == "error")
        pane.open_run("tiny")
        fill(pane, prompt="\u20ac\u20ac\u20ac", seed="1", length="20")
        await start(pilot, pane)
        await wait_for(pilot, lambda: pane.state == "failed", what="failure")
        assert any("no characters the model knows" in n for n, sev in app.notes if sev == "error")
        assert "failed" in pane.status_text
        fill(pane, prompt="ALDO: \u20ac", seed="1", length="20")     # partly unknown: a warning, then text
        await start(pilot, pane)
        await wait_done(pilot, pane)
        assert any("unknown to the model" in n for n, sev in app.notes if sev == "warning")


async def test_regenerate_uses_a_new_seed_unless_fixed(runs):
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await generated(pilot, "tiny", prompt="ALDO:", seed="", length="40")
        first = pane._request.cfg.seed
        await pilot.press("r")
        await wait_done(pilot, pane)
        assert pane._request.cfg.seed != first and pane._request.prompt == "ALDO:"
        fill(pane, seed="77")
        await start(pilot, pane)
        await wait_done(pilot, pane)
        text = pane.outputs[0].text
        await pilot.press("r")
        await wait_done(pilot, pane)
        assert pane._request.cfg.seed == 77 and pane.outputs[0].text == text


class SnapshotHarness(Harness):
    """Harness under the name the stored picture's title bar shows."""


def test_snapshot_after_fixed_seed_generation(runs, snap_compare, monkeypatch):
    monkeypatch.setattr(status_module, "rate_text", lambda chars, seconds: "12,345 chars/s")

    async def run_before(pilot) -> None:
        pane = pilot.app.query_one(GeneratePane)
        await wait_for(pilot, lambda: sorted(pane._option_values) == ["hostile", "tiny"], what="run list")
        await generated(pilot, "tiny", prompt="ALDO:", seed="7", length="300", temperature="0.8")
        await wait_for(pilot, lambda: pane.outputs[0].is_vertical_scroll_end, what="scrolled to the end")
        await pilot.pause(0.1)

    assert snap_compare(SnapshotHarness(GeneratePane), terminal_size=(80, 24), run_before=run_before)


class OneProbText(App):
    def compose(self):
        yield ProbText(id="out")


async def test_copied_spans_are_underlined_and_nothing_else():
    app = OneProbText()
    async with app.run_test(size=(40, 5)) as pilot:
        out = app.query_one(ProbText)
        out.clear("P:")
        out.append([Token("abc", 2, 0.5), Token("def", 3, 0.5), Token("ghi", 4, 0.5)])
        out.mark_copied([(2, 7)])                       # "cdefg" of the generated "abcdefghi"
        await pilot.pause()
        line = out.render_line(0)
        underlined = "".join(seg.text for seg in line if seg.style is not None and seg.style.underline)
        assert underlined == "cdefg"
        out.mark_copied([])
        await pilot.pause()
        assert not any(seg.style is not None and seg.style.underline for seg in out.render_line(0))


def test_status_names_int8_weights_only_when_used():
    from rnnchat.events import SampleDone

    def parts(weights: str) -> list[str]:
        done = [SampleDone(40, 40, 0.01, "length", weights)]
        return status_module.generation_parts("done", done, [40], 0.01, [0.8], 1, "runs/wide")

    assert "int8 weights" in parts("int8")
    assert "int8 weights" not in parts("fp32") and parts("fp32")[0] == "\u25a0 done: length"


async def test_a_checkpoint_that_fails_its_check_is_said_in_the_app(runs, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "copied-checkpoints"
    shutil.copytree(runs / "checkpoints" / "tiny", copy / "tiny")
    weights = copy / "tiny" / "last" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])                  # truncated: the previous copy loads
    monkeypatch.setenv("RNNCHAT_CHECKPOINTS", str(copy))
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(GeneratePane).open_run("tiny", "last")
        await wait_for(pilot, lambda: any("truncated" in m and "previous copy" in m for m, _ in app.notes),
                       what="the fallback said")
        assert [s for m, s in app.notes if "truncated" in m] == ["warning"]
