"""The Classify tab through Textual's Pilot, on a tiny classifier trained once per module: texts of common
words told apart by one character ('z': the label "[b]pos[/b]", markup that must show as itself; 'x': "neg").
The Runs tab opens it in Classify, and the Inspect tab traces it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import wait_for
from textual.widgets import DataTable, TabbedContent

from rnnchat.classify.config import ClassifierConfig
from rnnchat.tui.panes.classify import ClassifyPane
from rnnchat.tui.panes.inspect.pane import InspectPane
from tui.conftest import Harness, RecordingApp, folders_of, trace_with, train

POS, NEG = "[b]pos[/b]", "neg"
MARKERS = {POS: "z", NEG: "x"}
WORDS = "the a of and to in is it that was he for on are as with his they at be this from".split()
FILLER = "the a of and to is it he was"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One run, "xz": a 1x32 GRU that has learnt which of 'z' and 'x' a text holds."""
    root = tmp_path_factory.mktemp("classify-runs")
    rng = random.Random(0)
    rows = ["text\tlabel"]
    for _ in range(240):
        label = rng.choice([POS, NEG])
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 10))]
        words.insert(rng.randrange(len(words) + 1), MARKERS[label])
        rows.append(f"{' '.join(words)}\t{label}")
    data = root / "two.tsv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with folders_of(root):
        train("xz", data, ClassifierConfig(layers=1, hidden=32, embed=16, dropout=0.0), task="classify",
              batch_size=16, lr=1e-2, warmup_steps=5, max_steps=50, eval_every=50, sample_length=1)
    return root


async def classify(pilot, pane: ClassifyPane, text: str) -> None:
    """Type ``text``, press ctrl+g and wait for the reading to end."""
    await wait_for(pilot, lambda: pane._selected_run() is not None, what="the run picker")
    pane.text_area.text = text
    pane.text_area.focus()
    count = pane._streams
    await pilot.press("ctrl+g")
    await wait_for(pilot, lambda: pane._streams > count and pane.state in ("done", "failed"), what="the reading")
    await pilot.pause()


async def test_bars_order_and_the_deciding_character(runs):
    async with Harness(ClassifyPane).run_test(size=(100, 30)) as pilot:
        pane = pilot.app.query_one(ClassifyPane)
        # The label the words alone lean to: the other label's character moves the decision the most.
        await classify(pilot, pane, FILLER)
        lean = pane.bars.order[0]
        other = NEG if lean == POS else POS
        text = f"the a of and {MARKERS[other]} to is it he was"
        await classify(pilot, pane, text)
        assert pane.state == "done" and pilot.app.notes == []
        assert pane.bars.order == [other, lean]
        assert pane.result.label == other and max(pane.result.probabilities) > 0.9
        at = text.index(MARKERS[other])
        assert pane.moved.top[0] == at
        assert max(range(len(text)), key=lambda t: pane.moved.strengths[t]) == at
        rendered = pane.moved.shown
        assert rendered.plain.startswith(text)
        marked = [s.style for s in rendered.spans if s.start <= at < s.end]
        assert marked and marked[0].bgcolor is not None and marked[0].bold
        # The plot: a line per label, the text under it; every label as itself, never markup.
        bars, plot = pane.bars.render(), pane.plot.render()
        assert POS in bars.plain and POS in plot.plain and POS in rendered.plain
        assert "\u25b6 " + other in bars.plain
        assert plot.plain.splitlines()[-1].replace(" ", "").startswith("the\u2423a\u2423of")
        assert other in pane.status_text


async def test_without_classifier_runs_it_says_how_to_train_one(isolated_paths):
    async with Harness(ClassifyPane).run_test(size=(100, 30)) as pilot:
        pane = pilot.app.query_one(ClassifyPane)
        await pilot.pause()
        assert pane.has_class("-empty")
        assert "rnnchat train FILE.tsv --task classify" in str(pane.query_one("#cls-empty").render())
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert pilot.app.notes[-1][1] == "error" and "no classifier runs" in pilot.app.notes[-1][0]


@pytest.mark.usefixtures("no_speed_probe")
async def test_runs_tab_opens_a_classifier_in_classify_and_inspect_traces_it(runs):
    app = RecordingApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        table = app.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the runs table")
        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query_one(TabbedContent).active == "classify", what="the Classify tab")
        pane = app.query_one(ClassifyPane)
        assert pane._selected_run() == "xz"
        await classify(pilot, pane, "he was z it")
        assert pane.bars.order[0] == POS
        await app.action_show_tab("inspect")             # keys would type into the text
        inspect = app.query_one(InspectPane)
        await wait_for(pilot, lambda: inspect._selected_run() == "xz", what="the classifier in Inspect")
        await trace_with(pilot, inspect, text="the a z of it")
        assert inspect.state == "done" and inspect.result.hidden == 32
        assert len(inspect.view.values) == len("the a z of it")
        inspect.action_gradients()                   # the predicted label's loss, back through the text
        await wait_for(pilot, lambda: inspect.gradient_view.state in ("done", "failed"), what="the gradients")
        assert inspect.gradients is not None and len(inspect.gradients.norms) == len("the a z of it")
        assert app.notes == []
