"""Gradients through time for the Inspect pane: the window of text they are measured on (the inspected
text, or the run's validation text when none is typed), the norms, computed on the torch thread with
``rnnchat.lm.inspect.gradients_through_time`` as ``rnnchat inspect --gradients`` does, and the pane's part
(``GradientView``, mixed into ``InspectPane``: ctrl+r or the button shows and measures, or hides)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from textual.message import Message
from textual.widgets import Button, Input

from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.lm import inspect as ins
from rnnchat.runs.store import OpenedRun
from rnnchat.safetext import neutralise
from rnnchat.tui import torch_thread

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

    @property
    def title(self) -> str:
        return f"gradients through time \u00b7 {self.cell} \u00b7 {self.tokens} tokens of {self.source}"


@lru_cache(maxsize=8)
def _validation_start(source: str, fraction: float) -> str:
    from rnnchat.text.load import load_corpus
    from rnnchat.text.split import split_spans

    corpus = load_corpus(source)
    _, val = split_spans(corpus, fraction)
    if not val:
        raise ConfigError("the run's corpus has no validation text")
    doc, start, end = val[0]
    return corpus.documents[doc].text[start:min(end, start + _VAL_CHARS)]


def validation_text(meta: dict) -> str:
    """The start of the run's validation text (cached per corpus); RnnchatError when it cannot be read."""
    corpus = meta.get("corpus", {}) if isinstance(meta, dict) else {}
    fraction = float(meta.get("train", {}).get("val_fraction", 0.1)) if isinstance(meta, dict) else 0.1
    source = str(corpus.get("source", "")).removeprefix("builtin:")
    try:
        return _validation_start(source, fraction)
    except RnnchatError as exc:
        raise ConfigError(f"cannot read the run's validation text ({exc}); type a text to measure on instead") \
            from None


def measure(opened: OpenedRun, text: str) -> Gradients:
    """On the torch thread: the gradient norms over the first ``WINDOW`` tokens of ``text`` (empty: of the
    run's validation text); ConfigError when there are fewer than ``MIN_TOKENS``."""
    source = "the text" if text else "validation text"
    ids = np.asarray(opened.tokenizer.encode(text or validation_text(opened.meta)), dtype=np.int64)[:WINDOW]
    if len(ids) < MIN_TOKENS:
        raise ConfigError(f"{source} is too short for gradients through time: it needs at least {MIN_TOKENS} "
                          f"tokens, this has {len(ids)}" + ("; clear it to use the run's validation text"
                                                             if text else ""))
    norms = ins.gradients_through_time(opened.model, ids)
    return Gradients(opened.name, opened.model.cfg.cell, source, len(ids), norms)


class GradientsMeasured(Message):
    """Gradients through time, or None when they could not be measured (a Notice says why)."""

    def __init__(self, tag: str, result: Gradients | None) -> None:
        super().__init__()
        self.tag = tag
        self.result = result


class GradientView:
    """Mixed into InspectPane (its ``#insp-text`` input, ``#insp-grad`` box and ``plot``): the gradient
    view is shown while the pane has the ``-gradients`` class."""

    grad_state = "idle"
    """idle, measuring, done or failed."""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "insp-grad-button":
            event.stop()
            self.action_gradients()

    def action_gradients(self) -> None:
        """Show (and measure) or hide the gradients through time."""
        if self.has_class("-gradients"):
            self.remove_class("-gradients")
            self._grad_tag = ""                        # a measurement still running is not wanted now
        elif self._measure():
            self.add_class("-gradients")

    def _measure(self) -> bool:
        """Measure the gradients over the text (or the validation text) on the torch thread; False, after
        saying why, when there is nothing to measure."""
        run = self._selected_run()
        if run is None:
            self._notify("No trained runs yet \u2014 train one in the Train tab" if not self._option_values
                         else "choose a run first", "error")
            return False
        text = self.query_one("#insp-text", Input).value
        if 0 < len(text) < MIN_TOKENS:                 # fewer characters than that is fewer tokens too
            self._notify(f"the text is too short for gradients through time: type at least {MIN_TOKENS} "
                         "characters, or none to use the run's validation text", "error")
            return False
        if self.training:
            self._notify("Training is using the CPU: the gradients are measured when training stops.", "warning")
        self._grad_count += 1
        self._grad_tag = tag = f"{self._tag_prefix}g{self._grad_count}"
        self.grad_state = "measuring"
        self.plot.clear("measuring the gradients\u2026")
        self.run_worker(partial(self._measure_worker, tag, run, self._selected_which(), text),
                        thread=True, exclusive=True, group="inspect-gradients", exit_on_error=False)
        return True

    def _measure_worker(self, tag: str, run: str, which: str, text: str) -> None:
        """In a thread worker: the gradients on the torch thread; a failure is a notice."""
        try:
            result = torch_thread.run(lambda: measure(self._open(run, which), text))
        except Exception as exc:  # noqa: BLE001 - a broken run or a bug must not take the app down
            self.post_message(self.Notice(self._phrase(exc) if isinstance(exc, RnnchatError) else
                                          f"cannot measure gradients of {Path(run).name}: "
                                          f"{type(exc).__name__}: {exc}", "error"))
            result = None
        self.post_message(GradientsMeasured(tag, result))

    def on_gradients_measured(self, message: GradientsMeasured) -> None:
        message.stop()
        if message.tag != self._grad_tag:
            return                                     # an older measurement, or one hidden since
        self.gradients = result = message.result
        self.grad_state = "done" if result is not None else "failed"
        if result is None:
            self.remove_class("-gradients")
            self.plot.clear()
            return
        box = self.query_one("#insp-grad")
        box.border_title = neutralise(result.title)
        box.border_subtitle = "\u2016d loss / d h\u2016 by steps back, log scale \u00b7 ctrl+r hides"
        self.plot.show(result.norms)
