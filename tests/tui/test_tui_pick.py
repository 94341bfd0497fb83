"""Pick the next token in the Generate pane, through Textual's Pilot, on the session's tiny run (``lm_runs``
in tests/tui/conftest.py): what is offered, taken and sampled is what ``rnnchat.lm.generate.Picker`` gives
for the same run and seed."""

from __future__ import annotations

from conftest import wait_for
from textual.app import App, ComposeResult
from textual.widgets import Input

from rnnchat.lm.config import SampleConfig
from rnnchat.lm.generate import Picker
from rnnchat.runs.opened import open_language_model
from rnnchat.tui.panes.generate.pane import GeneratePane
from rnnchat.tui.panes.generate.pick import CHOICES
from rnnchat.tui.widgets.picker import PickPanel
from tui.conftest import Harness, fill


async def enter_mode(pilot, pane: GeneratePane, prompt: str = "ALDO:", seed: str = "5") -> PickPanel:
    pane.open_run("tiny")
    fill(pane, prompt=prompt, seed=seed, temperature="0.8")
    pane.query_one("#gen-prompt", Input).focus()
    await pilot.pause()
    await pilot.press("ctrl+n")                      # from the prompt, as a user would
    panel = pane.pick_panel
    await wait_for(pilot, lambda: not panel.waiting or pane.state == "failed", what="the first options")
    await pilot.pause()
    return panel


async def step(pilot, pane: GeneratePane, key: str) -> None:
    count = pane.tokens_received
    await pilot.press(key)
    await wait_for(pilot, lambda: pane.tokens_received > count and not pane.pick_panel.waiting, what="a step")
    await pilot.pause()


def same_options(shown, expected) -> bool:
    return [(i, t) for i, t, _ in shown] == [(i, t) for i, t, _ in expected] and \
        all(abs(a[2] - b[2]) < 1e-6 for a, b in zip(shown, expected))


async def test_arrows_enter_tab_and_escape(runs):
    opened = open_language_model("tiny")
    ref = Picker(opened.model, opened.tokenizer, SampleConfig(temperature=0.8, seed=5), "ALDO:")
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(GeneratePane)
        panel = await enter_mode(pilot, pane)
        out = pane.outputs[0]
        assert pane.picking and panel.display and app.focused is panel
        first = ref.options(CHOICES)
        assert len(panel.options) == CHOICES and same_options(panel.options, first)
        assert "picking" in pane.status_text and out.text == "ALDO:" and out.generated_text == ""
        bindings = {b.binding.key: b.binding.description for b in app.screen.active_bindings.values()}
        assert bindings.get("enter") == "Take" and bindings.get("tab") == "Model picks"
        assert bindings.get("escape") == "Leave" and bindings.get("ctrl+n") == "Pick"
        await pilot.press("down", "down", "down", "up")  # the highlight moves; nothing is taken yet
        assert panel.highlight == 2 and pane.tokens_received == 0
        chosen = panel.options[2]
        await step(pilot, pane, "enter")                 # takes the highlighted token, and only it
        assert out.generated_text == chosen[1] and pane.tokens_received == 1
        ref.take(chosen[0])
        assert same_options(panel.options, ref.options(CHOICES)) and panel.highlight == 0
        before = out.generated_text
        await step(pilot, pane, "tab")                   # the model picks, with the toolbar's seed
        ref.auto()
        assert out.generated_text == ref.text and len(out.generated_text) == len(before) + 1
        assert same_options(panel.options, ref.options(CHOICES))
        await step(pilot, pane, "enter")                 # the most likely one
        top = ref.options(CHOICES)[0]
        ref.take(top[0])
        assert out.generated_text == ref.text and out.generated_text.endswith(top[1])
        await pilot.press("escape")                      # leave: the text stays
        await pilot.pause()
        assert not pane.picking and not panel.display and app.focused is out
        assert out.generated_text == ref.text and out.text == "ALDO:" + ref.text
        assert "picked" in pane.status_text and f"{pane.tokens_received} tokens" in pane.status_text
        await pilot.press("ctrl+s")                      # and is saved like any output
        assert pane.saved_path.read_text(encoding="utf-8") == "ALDO:" + ref.text
        assert not [n for n, sev in app.notes if sev == "error"]


async def test_a_new_generation_or_a_second_ctrl_n_starts_over(runs):
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(GeneratePane)
        panel = await enter_mode(pilot, pane)
        await step(pilot, pane, "tab")
        pane.action_generate()                           # ctrl+g streams from the prompt again
        await pilot.pause()
        assert not pane.picking and not panel.display
        await wait_for(pilot, lambda: pane.state == "done", what="the generation")
        panel = await enter_mode(pilot, pane)
        assert pane.picking and pane.outputs[0].generated_text == "" and pane.tokens_received == 0


async def test_bad_settings_and_unknown_prompts_are_notifications(runs):
    app = Harness(GeneratePane)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(GeneratePane)
        pane.open_run("tiny")
        fill(pane, temperature="abc")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not pane.picking and any(sev == "error" and "temperature must be a number" in n for n, sev in app.notes)
        fill(pane, temperature="0.8")
        await enter_mode(pilot, pane, prompt="\u20ac\u20ac\u20ac")
        await wait_for(pilot, lambda: pane.state == "failed", what="the failure")
        assert not pane.picking and not pane.pick_panel.display
        assert any(sev == "error" and "no characters the model knows" in n for n, sev in app.notes)
        assert not any("Traceback" in n or "Error:" in n for n, _ in app.notes)
        panel = await enter_mode(pilot, pane, prompt="ALDO: \u20ac")      # partly unknown: a warning, then on
        assert pane.picking and not panel.waiting
        assert any(sev == "warning" and "unknown to the model" in n for n, sev in app.notes)


class OnePanel(App):
    def compose(self) -> ComposeResult:
        yield PickPanel()


async def test_tokens_are_shown_literally_with_visible_spaces():
    async with OnePanel().run_test(size=(40, 12)) as pilot:
        panel = pilot.app.query_one(PickPanel)
        panel.show_options([(5, " ", 0.5), (6, "\n", 0.25), (7, "\t[b]x[/b]\x1b[31m", 0.125), (8, "\ufffd", 0.0625)])
        await pilot.pause()
        lines = panel.render().plain.splitlines()[2:6]
        assert lines == [" 50.0% \u2423", " 25.0% \u23ce", " 12.5% \u21e5[b]x[/b]\u241b[31m", "  6.2% \ufffd #8"]
        assert "\x1b" not in panel.render().plain
        panel.focus()
        await pilot.press("up")                          # the highlight wraps round
        assert panel.chosen == (8, "\ufffd", 0.0625)
        panel.wait()
        assert panel.chosen is None                      # nothing is taken while the model thinks
