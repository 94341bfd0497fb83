"""Gradients through time for the Inspect pane: the window of text they are measured on (the inspected
text, or the run's validation text when none is typed), the norms, computed on the torch thread with
``rnnchat.lm.inspect.gradients_through_time`` as ``rnnchat inspect --gradients`` does, and
``GradientView``, the helper the pane owns that measures and shows them (ctrl+r or the button shows and
measures, or hides). A bidirectional classifier's are measured for both directions at once; the view shows
the direction the pane has chosen."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable

import numpy as np
from textual.widget import Widget

from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.lm import inspect as ins
from rnnchat.runs.meta import CorpusInfo, RunMeta
from rnnchat.runs.opened import OpenedRun, training_corpus
from rnnchat.safetext import neutralise
from rnnchat.tui.bridge import Tagged
from rnnchat.tui.panes.base import torch_job
from rnnchat.tui.widgets.plot import GradientPlot

WINDOW = 102                   # tokens: lags 0..100, as benchmarks/gradients.py measures
MIN_TOKENS = 3                 # two lags at least, or there is no line to draw
_VAL_CHARS = WINDOW * 16       # enough characters for a window of subword tokens too


@dataclass(frozen=True)
class Gradients:
    run: str
    cell: str
    source: str                # what the window is: "the text" or "validation text"
    tokens: int
    norms: np.ndarray          # by lag: 0 is the last position
    backward: np.ndarray | None = None   # a bidirectional model's right-to-left direction, by lag from the start

    def of(self, direction: str) -> np.ndarray:
        """The norms of one direction (a one-way model's only one, whichever is asked)."""
        return self.backward if direction == "backward" and self.backward is not None else self.norms

    def title(self, direction: str = "forward") -> str:
        which = f" \u00b7 {direction} direction" if self.backward is not None else ""
        return f"gradients through time \u00b7 {self.cell}{which} \u00b7 {self.tokens} tokens of {self.source}"


@lru_cache(maxsize=8)
def _validation_start(info: CorpusInfo, fraction: float) -> str:
    from rnnchat.text.split import split_spans

    corpus = training_corpus(info)           # the run's own text only, never whatever its run.json names
    _, val = split_spans(corpus, fraction)
    if not val:
        raise ConfigError("the run's corpus has no validation text")
    doc, start, end = val[0]
    return corpus.documents[doc].text[start:min(end, start + _VAL_CHARS)]


def validation_text(meta: RunMeta) -> str:
    """The start of the run's validation text (cached per run description); ConfigError when it cannot be read."""
    try:
        return _validation_start(meta.corpus, meta.train.val_fraction)
    except RnnchatError as exc:
        raise ConfigError(f"cannot read the run's validation text ({exc}); type a text to measure on instead") \
            from None


def measure(opened: OpenedRun, text: str) -> Gradients:
    """On the torch thread: the gradient norms over the first ``WINDOW`` tokens of ``text`` (empty: of the
    run's validation text); ConfigError when there are fewer than ``MIN_TOKENS``."""
    source = "the text" if text else "validation text"
    classifier = opened.meta.kind.name == "classify"
    if classifier and not text:               # a labelled corpus has no running text to take a window of
        raise ConfigError("type a text: a classifier's gradients through time are measured on the text")
    if classifier and opened.model.cfg.pooling != "last":   # its loss would depend on every state, not the last
        raise ConfigError(f"this classifier pools the {opened.model.cfg.pooling} of its states; gradients "
                          "through time follow a classifier that reads its last state")
    ids = np.asarray(opened.tokenizer.encode(text or validation_text(opened.meta)), dtype=np.int64)[:WINDOW]
    if len(ids) < MIN_TOKENS:
        raise ConfigError(f"{source} is too short for gradients through time: it needs at least {MIN_TOKENS} "
                          f"tokens, this has {len(ids)}" + ("; clear it to use the run's validation text"
                                                             if text else ""))
    # A classifier's loss is its predicted label's after the whole window (a language model's: the next token's).
    target = int(ins.trace(opened.model, ids).logits[-1].argmax()) if classifier else None
    norms = ins.gradients_by_direction(opened.model, ids, target)
    return Gradients(opened.name, opened.model.cfg.cell, source, len(ids), norms["forward"], norms.get("backward"))


class GradientsMeasured(Tagged):
    """Gradients through time, or None when they could not be measured (a Notice says why)."""

    def __init__(self, tag: str, result: Gradients | None) -> None:
        super().__init__(tag)
        self.result = result


class GradientView:
    """The gradients through time in ``pane``, shown while the pane has the ``-gradients`` class: its
    ``#insp-grad`` box holds the plot. Measurements run in the pane's workers and come back to it as
    ``GradientsMeasured`` messages; ``open_run(run, which)`` opens a run on the torch thread, ``phrase``
    words an error and ``notify(text, severity)`` tells the user."""

    def __init__(self, pane: Widget, open_run: Callable[[str, str], OpenedRun],
                 phrase: Callable[[BaseException], str], notify: Callable[[str, str], None], tag_prefix: str) -> None:
        self._pane = pane
        self._open_run = open_run
        self._phrase = phrase
        self._notify = notify
        self._tag_prefix = tag_prefix
        self._tag = ""                                 # the measurement wanted now; older ones are dropped
        self.count = 0
        """Measurements started."""
        self.state = "idle"
        """idle, measuring, done or failed."""
        self.result: Gradients | None = None
        """The gradients shown (or last shown)."""
        self.direction = "forward"
        """The direction shown where the model reads both ways."""

    @property
    def plot(self) -> GradientPlot:
        return self._pane.query_one(GradientPlot)

    @property
    def shown(self) -> bool:
        return self._pane.has_class("-gradients")

    def hide(self) -> None:
        self._pane.remove_class("-gradients")
        self._tag = ""                                 # a measurement still running is not wanted now

    def measure(self, run: str, which: str, text: str, training: bool) -> None:
        """Show the view and measure the gradients of ``run`` over ``text`` (empty: the validation text) on
        the torch thread, or say why not when the text is too short. ``training``: the torch thread waits."""
        if 0 < len(text) < MIN_TOKENS:                 # fewer characters than that is fewer tokens too
            self._notify(f"the text is too short for gradients through time: type at least {MIN_TOKENS} "
                         "characters, or none to use the run's validation text", "error")
            return
        if training:
            self._notify("Training is using the CPU: the gradients are measured when training stops.", "warning")
        self.count += 1
        self._tag = tag = f"{self._tag_prefix}{self.count}"
        self.state = "measuring"
        self.plot.clear("measuring the gradients\u2026")
        self._pane.run_worker(partial(self._worker, tag, run, which, text), thread=True, exclusive=True,
                              group="inspect-gradients", exit_on_error=False)
        self._pane.add_class("-gradients")

    def _worker(self, tag: str, run: str, which: str, text: str) -> None:
        """In a thread worker: the gradients on the torch thread; a failure is a notice."""
        result = torch_job(self._pane.post_message, self._phrase, lambda: measure(self._open_run(run, which), text),
                           f"measure gradients of {Path(run).name}")
        self._pane.post_message(GradientsMeasured(tag, result))

    def measured(self, message: GradientsMeasured) -> None:
        """Show a measurement that ended, if it is the one wanted (a failure hides the view)."""
        if message.tag != self._tag:
            return                                     # an older measurement, or one hidden since
        self.result = result = message.result
        self.state = "done" if result is not None else "failed"
        if result is None:
            self._pane.remove_class("-gradients")
            self.plot.clear()
            return
        self._draw()

    def show_direction(self, direction: str) -> None:
        """Show one direction's gradients (of a bidirectional model; measured already, with the other)."""
        self.direction = direction
        if self.result is not None and self.state == "done":
            self._draw()

    def _draw(self) -> None:
        result = self.result
        backward = self.direction == "backward" and result.backward is not None
        box = self._pane.query_one("#insp-grad")
        box.border_title = neutralise(result.title(self.direction))
        # The backward direction ends at the text's first position: its steps back run toward the end.
        box.border_subtitle = ("\u2016d loss / d h\u2016 by steps back" + (" from the start" if backward else "") +
                               ", log scale \u00b7 ctrl+r hides")
        self.plot.show(result.of(self.direction))
