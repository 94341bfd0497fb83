"""Gradients through time for the Inspect pane, measured on the torch thread by ``rnnchat.runs.inspection``
(as ``rnnchat inspect --gradients`` does) over the inspected text, or the run's validation text when none is
typed: ``GradientView``, the helper the pane owns that measures and shows them (ctrl+r or the button shows and
measures, or hides). A bidirectional classifier's are measured for both directions at once; the view shows
the direction the pane has chosen."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

from textual.widget import Widget

from rnnchat.runs.inspection import MIN_TOKENS, Gradients, measure
from rnnchat.runs.opened import OpenedRun
from rnnchat.safetext import neutralise
from rnnchat.tui.bridge import Tagged
from rnnchat.tui.panes.base import torch_job
from rnnchat.tui.widgets.plot import GradientPlot

_CLEAR = "; clear it to use the run's validation text"


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
        result = torch_job(self._pane.post_message, self._phrase,
                           lambda: measure(self._open_run(run, which), text, too_short=_CLEAR if text else ""),
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
