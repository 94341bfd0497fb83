"""The first screen builds the Corpus tab alone: every other tab's pane is made (and its module imported) the
first time the tab is shown, by its key, a click or an action that needs it, and then kept with its state."""

from __future__ import annotations

import subprocess
import sys

from conftest import wait_for
from textual.widgets import DataTable, Input, Select, TabbedContent

from rnnchat.tui.panes.corpus import CorpusPane
from rnnchat.tui.panes.generate.pane import GeneratePane
from rnnchat.tui.tabs import TABS
from tui.conftest import RecordingApp
from tui.test_tui_generate import start, wait_done

# What the first screen imports, drawn headless in a fresh interpreter: no other tab's module, no numpy.
FIRST_SCREEN = """
import asyncio, sys
from rnnchat.tui.app import RnnchatApp

class FirstScreen(RnnchatApp):
    def _load_engine(self):                     # called once the first screen is drawn; torch is not loaded
        print(sorted(m for m in sys.modules if m in ("numpy", "torch") or m.startswith("rnnchat.tui.panes.")))
        self.exit()

async def main():
    async with FirstScreen().run_test(size=(100, 30)) as pilot:
        await pilot.pause()

asyncio.run(main())
"""


def test_the_first_screen_imports_the_corpus_pane_alone_and_no_numpy(isolated_paths):
    out = subprocess.run([sys.executable, "-c", FIRST_SCREEN], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['rnnchat.tui.panes.corpus']", out.stdout


async def test_tabs_are_built_when_first_shown_and_keep_their_state(runs, no_speed_probe):
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.built("corpus") is app.query_one(CorpusPane)
        for tab in TABS[1:]:
            assert app.built(tab) is None and not app.query_one(f"#{tab}").children, tab
        assert not app.query(DataTable) and not app.query("#gen-prompt")

        # Its key builds Generate, which takes the app's current run (bound) and generates from it.
        await pilot.press("3")
        await wait_for(pilot, lambda: app.built("generate") is not None, what="the Generate pane")
        pane = app.query_one(GeneratePane)
        await wait_for(pilot, lambda: app.focused is pane.query_one("#gen-prompt", Input), what="the prompt focused")
        assert pane.run_select.selection == app.current_run == "hostile"     # the newest language model
        pane.query_one("#gen-length", Input).value = "30"
        await start(pilot, pane)
        await wait_done(pilot, pane)
        text = pane.outputs[0].generated_text
        assert pane.tokens_received > 0 and text
        assert [tab for tab in TABS if app.built(tab) is not None] == ["corpus", "generate"]

        # A click on its tab builds Runs; Enter there on a run opens it in Generate, the one pane made.
        await pilot.click("#--content-tab-runs")
        await wait_for(pilot, lambda: app.built("runs") is not None and app.query_one(DataTable).row_count == 2,
                       what="the runs table")
        assert app.query_one(TabbedContent).active == "runs"
        table = app.query_one(DataTable)
        table.focus()
        table.move_cursor(row=[str(table.get_row_at(i)[0]) for i in range(2)].index("tiny"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query_one(TabbedContent).active == "generate", what="back in Generate")
        assert app.query(GeneratePane).nodes == [pane] and pane.outputs[0].generated_text == text
        await wait_for(pilot, lambda: pane.run_select.selection == "tiny", what="tiny selected")

        # The command palette's "Go to" builds the tab it names; Inspect lists the runs, as the others do.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"go to inspect")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query_one(TabbedContent).active == "inspect", what="the Inspect tab")
        inspect = app.built("inspect")
        await wait_for(pilot, lambda: inspect.query_one("#insp-run", Select).selection is not None,
                       what="Inspect's run picker")
        assert app.built("chat") is None and app.built("classify") is None and app.built("train") is None
        assert not [note for note, severity in app.notes if severity == "error"], app.notes
