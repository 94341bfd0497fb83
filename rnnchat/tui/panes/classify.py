"""The Classify tab: a classifier run (``--task classify``) reads a text; the pane shows what it decided and
how the decision built up as it read.

Layout (the classify section of ``rnnchat.tcss``): a toolbar (run, checkpoint), the text, then each label's
probability as a bar (``LabelBars``), each likely label's probability against the position in the text
(``ReadingPlot``), the text with the tokens that moved the decision most highlighted (``MovedText``), and a
status line. ctrl+g classifies on the app's torch thread, from a thread worker
(``rnnchat.classify.predict``: ``probabilities`` for the bars, ``reading`` for the rest); the result comes
back as one ``Classified`` message. Only classifier runs are offered; with none the pane says how to train one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, Select, Static, TextArea

from rnnchat.config import CHECKPOINTS
from rnnchat.errors import ConfigError
from rnnchat.runs.rundir import RunSummary
from rnnchat.tui.bridge import Tagged
from rnnchat.tui.panes.base import LMRunPane, torch_job, unknown_notice
from rnnchat.tui.torch_thread import RunCache
from rnnchat.tui.widgets.decision import LabelBars, MovedText, ReadingPlot, ranked
from rnnchat.tui.widgets.status import StatusLine

if TYPE_CHECKING:
    from rnnchat.classify.predict import Step
    from rnnchat.runs.opened import OpenedRun

__all__ = ["ClassifyPane", "Classified", "MAX_CHARS"]

TRAIN_COMMAND = "rnnchat train FILE.tsv --task classify"
MAX_CHARS = 20_000             # one pass of the network per text: longer pastes are cut, with a notice


@dataclass(frozen=True)
class Classified:
    """One text read by a classifier (on the torch thread)."""

    run: str
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]     # every label's for the whole text, in the run's label order
    steps: list[Step]                    # per token: the probabilities after it, and how far it moved them

    @property
    def label(self) -> str:
        return self.labels[ranked(self.labels, self.probabilities)[0]]


def describe_classifier(opened: OpenedRun) -> str:
    """One line about an opened classifier: name, checkpoint, step, how many labels, its cell."""
    cfg = opened.model.cfg
    parts = [opened.name, opened.which, f"step {opened.meta.summary.step:,}", f"{len(cfg.labels)} labels",
             f"{cfg.layers}x{cfg.hidden} {cfg.cell}" + (" bidirectional" if cfg.bidirectional else "")]
    return " \u00b7 ".join(parts)


class ClassifyPane(LMRunPane):
    """Classify a text and watch the decision form (see the module docstring). The best/last picker and the
    loading come from ``LMRunPane``; the runs opened are classifiers."""

    KIND = "classify"
    NOUN = "classifier run"
    PREFIX = "cls"
    EMPTY_MESSAGE = ("No classifier runs yet.\n\n"
                     "A classifier learns labels from labelled texts (a .tsv or .csv with a text and a label\n"
                     "column, a .jsonl, or a folder of folders). Train one with\n\n"
                     f"{TRAIN_COMMAND}\n\n"
                     "and it appears here (F5 looks again).")
    NO_RUNS = f"no classifier runs yet: train one with  {TRAIN_COMMAND}"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+g", "classify", "Classify"),
        Binding("slash", "focus_text", "Text", show=False),
    ]

    class Done(Tagged):
        def __init__(self, tag: str, result: Classified | None) -> None:
            super().__init__(tag)
            self.result = result                   # None: it failed (a notice said why)

    def __init__(self, *, name: str | None = None, id: str | None = "classify-pane",
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._opened: RunCache[OpenedRun] = RunCache()
        self.result: Classified | None = None
        self.state = "idle"
        """idle, reading, done or failed."""

    # ------------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(classes="cls-bar"):
            yield Label("Run", classes="cls-label")
            yield Select([], prompt=f"choose a {self.NOUN}", id="cls-run", compact=True)
            yield Select([(c, c) for c in CHECKPOINTS], value=CHECKPOINTS[0], allow_blank=False, id="cls-which",
                         compact=True)
        yield TextArea("", id="cls-text", compact=True, soft_wrap=True, tab_behavior="focus",
                       placeholder="type or paste a text \u00b7 ctrl+g classifies it")
        with VerticalScroll(id="cls-body"):
            yield Static("Labels", classes="cls-title")
            yield LabelBars(id="cls-bars")
            yield Static("As it reads \u00b7 each label's probability after every position", classes="cls-title")
            yield ReadingPlot(id="cls-plot")
            yield Static("What moved the decision", classes="cls-title")
            yield MovedText(id="cls-moved")
        empty = Text(self.EMPTY_MESSAGE)
        empty.highlight_words([TRAIN_COMMAND], style="bold")
        yield Static(empty, id="cls-empty", classes="empty-state", markup=False)
        yield StatusLine(id="cls-status")

    @property
    def bars(self) -> LabelBars:
        return self.query_one(LabelBars)

    @property
    def plot(self) -> ReadingPlot:
        return self.query_one(ReadingPlot)

    @property
    def moved(self) -> MovedText:
        return self.query_one(MovedText)

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#cls-text", TextArea)

    def action_focus_text(self) -> None:
        """Focus the text (the run picker while there is no classifier run)."""
        (self.run_select if self.has_class("-empty") else self.text_area).focus()

    # -------------------------------------------------------------------------------------- runs

    def _label_parts(self, run: RunSummary) -> list[str]:
        return [run.name, run.corpus, f"step {run.step:,}"]

    def _selection_changed(self) -> None:
        """Another run: what the last one said about a text is no longer shown."""
        if self.result is not None and self.result.run != self._selected_run():
            self.result = None
            self.bars.clear("ctrl+g classifies the text with this run")
            self.plot.clear()
            self.moved.clear()
        super()._selection_changed()

    def _load_job(self, run: str, which: str) -> str:
        return describe_classifier(self._open(run, which))

    def _open(self, run: str, which: str) -> OpenedRun:
        """On the torch thread: the opened classifier, loaded again only when its checkpoints changed."""
        from rnnchat.runs.opened import open_run

        return self._opened.get(run, lambda: self.noted(open_run(run, which, "classify")), which)[0]

    # -------------------------------------------------------------------------------- classifying

    def action_classify(self) -> None:
        run = self._chosen_run()
        if run is None:
            return
        text = self.text_area.text
        if not text.strip():
            self._notify("type a text to classify", "error")
            return
        if len(text) > MAX_CHARS:
            self._notify(f"only the first {MAX_CHARS:,} characters are read", "warning")
            text = text[:MAX_CHARS]
        if self.training:
            self._notify("Training is using the CPU: the text is read when training stops.", "warning")
        tag = self._new_tag()
        self.state = "reading"
        self._update_status()
        self.run_worker(partial(self._classify_worker, tag, run, self._selected_which(), text), thread=True,
                        exclusive=True, group="classify", exit_on_error=False)

    def _classify_worker(self, tag: str, run: str, which: str, text: str) -> None:
        """In a thread worker: the reading on the torch thread; a failure is a notice."""
        result = torch_job(self.post_message, self._phrase, partial(self._classify_job, run, which, text),
                           f"classify with {Path(run).name}")
        self.post_message(self.Done(tag, result))

    def _classify_job(self, run: str, which: str, text: str) -> Classified:
        """On the torch thread: open the run, read the text once for the bars and once token by token."""
        from rnnchat.classify.predict import probabilities, reading

        opened = self._open(run, which)
        model, tok = opened.model, opened.tokenizer
        ids = tok.encode(text)
        if len(ids) == 0:
            raise ConfigError("the text has no tokens to read")
        unknown = tok.count_unknown(ids)
        if unknown:
            self.post_message(unknown_notice(unknown, "the text"))
        labels = tuple(model.cfg.labels)
        final = probabilities(model, tok, [text])[0].probabilities
        return Classified(opened.name, labels, tuple(final[x] for x in labels), reading(model, tok, text))

    @on(Done)
    def _done(self, message: Done) -> None:
        if not self._claim(message.tag, message):
            return
        result = message.result
        if result is None:
            self.state = "failed"
            self._update_status()
            return
        self.result, self.state = result, "done"
        tokens = [s.token for s in result.steps]
        series = [s.probabilities for s in result.steps]
        self.bars.show(result.labels, result.probabilities)
        self.plot.show(result.labels, tokens, series)
        self.moved.show(tokens, [s.moved for s in result.steps], result.labels, series)
        self._update_status()

    # ------------------------------------------------------------------------------------ status

    @property
    def busy(self) -> bool:
        return self.state == "reading"

    def stop_all(self) -> None:
        """A reading is one short job on the torch thread: nothing to stop."""

    def _update_status(self, stopping: bool = False) -> None:
        run = self._selected_run()
        if run is not None and self.state == "reading":
            parts = [f"{Path(run).name} \u00b7 reading\u2026"]
        else:
            parts = [self._run_status(run)]
            result = self.result
            if run is not None and result is not None:
                p = max(result.probabilities)
                parts.append(f"{Path(result.run).name}: {result.label} {100 * p:.1f}% "
                             f"over {len(result.steps):,} tokens")
            elif run is not None:
                parts.append("ctrl+g classifies the text")
        self.query_one(StatusLine).show(parts, streaming=self.state == "reading", failed=self.state == "failed")
