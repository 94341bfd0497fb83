"""The Inspect pane: look inside a language model as ``rnnchat inspect`` does, in the app; a classifier run
too (its embedding and recurrent layers are the language model's). A bidirectional classifier reads the
text both ways: the trace holds both directions, and the toolbar's direction choice ("Dir", shown only
then) picks the one whose units, gates, equations and gradients are shown.

Layout (the inspect section of ``rnnchat.tcss``): a toolbar (run, checkpoint, layer, unit, what to show),
the text to look inside, then the text coloured by the chosen unit's value (``UnitView``) beside the cell's
equations with that unit's live values at the cursor, the units that track the text and gate saturation
(``WrappedPanel``s), the gradients through time when shown (``GradientPlot``), and a status line.

Enter or ctrl+g traces the text (``rnnchat.lm.inspect.trace``) on the app's torch thread, from a thread
worker, with the interesting units and the saturation; the result comes back as one ``Traced`` message.
Changing the layer, unit, direction or what is shown only picks another series of that result (no new trace):
left/right move the cursor along the text, up/down the unit. ctrl+r (or the button) shows or hides how the
gradient of the last position's loss fades back in time, measured on the torch thread in the same way
over the text, or the run's validation text when no text is typed (``gradients.py``: a ``GradientView``
the pane owns).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select

from rnnchat.config import CHECKPOINTS
from rnnchat.errors import ConfigError
from rnnchat.lm import inspect as ins
from rnnchat.runs.inspection import KINDS, Gradients, Inside, inspectable, look_inside
from rnnchat.runs.opened import OpenedRun, open_run
from rnnchat.runs.rundir import RunSummary
from rnnchat.tui.bridge import Tagged
from rnnchat.tui.panes.base import LMRunPane, torch_job, unknown_notice
from rnnchat.tui.panes.inspect.gradients import GradientsMeasured, GradientView
from rnnchat.tui.torch_thread import RunCache
from rnnchat.tui.widgets.panel import WrappedPanel
from rnnchat.tui.widgets.plot import GradientPlot
from rnnchat.tui.widgets.status import NeutralHighlighter, StatusLine, describe_lm
from rnnchat.tui.widgets.unitview import UnitView, equation_lines, saturation_lines, unit_lines

__all__ = ["InspectPane", "Inspected", "MAX_CHARS"]

MAX_CHARS = 2_000                  # a trace of 10,000 characters takes about a second (RESULTS.md)
TOP_UNITS = 8


@dataclass
class Inspected(Inside):
    """One trace and what was computed from it (on the torch thread), with the run it came from."""

    run: str = ""
    description: str = ""
    layers: int = 0
    hidden: int = 0


class InspectPane(LMRunPane):
    """Look inside a language model (see the module docstring)."""

    KIND = "lm"
    NOUN = "run"
    PREFIX = "insp"
    FIELD_LABELS = {"show": "show"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+g", "trace", "Trace"),
        Binding("ctrl+r", "gradients", "Gradients"),
        Binding("slash", "focus_text", "Text", show=False),
    ]

    class Traced(Tagged):
        def __init__(self, tag: str, result: Inspected) -> None:
            super().__init__(tag)
            self.result = result

    class TraceEnded(Tagged):
        """The trace failed (a notice says why)."""

    def __init__(self, *, name: str | None = None, id: str | None = "inspect-pane",
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._opened: RunCache[OpenedRun] = RunCache()
        self.result: Inspected | None = None
        self.state = "idle"
        """idle, tracing, done or failed."""
        self.choice: tuple[int, str, int] | None = None
        """(layer, what, unit) now shown."""
        self.direction = "forward"
        """The direction now shown: "forward", or "backward" for a bidirectional model."""
        self.gradient_view = GradientView(self, self._open, self._phrase, self._notify, f"{self._tag_prefix}g")

    # ------------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        label = lambda text: Label(text, classes="insp-label")
        with Horizontal(classes="insp-bar", id="insp-bar-run"):
            yield label("Run")
            yield Select([], prompt="choose a run", id="insp-run", compact=True)
            yield Select([(c, c) for c in CHECKPOINTS], value=CHECKPOINTS[0], allow_blank=False, id="insp-which",
                         compact=True)
            yield label("Layer")
            yield Input("0", id="insp-layer", compact=True, type="integer")
            yield label("Unit")
            yield Input("0", id="insp-unit", compact=True, type="integer")
            yield label("Show")
            yield Input("hidden", id="insp-show", compact=True,
                        tooltip="hidden, cell (LSTM) or a gate: input forget cell output / reset update new")
            # Shown for a bidirectional model only (the -bidirectional class): which direction's units.
            yield Label("Dir", classes="insp-label", id="insp-direction-label")
            yield Select([(d, d) for d in ins.DIRECTIONS], value=ins.DIRECTIONS[0], allow_blank=False,
                         id="insp-direction", compact=True, tooltip="a bidirectional model's direction: "
                         "forward reads left to right, backward right to left")
        with Horizontal(classes="insp-bar", id="insp-bar-text"):
            yield label("Text")
            yield Input("", placeholder="text to look inside, enter to trace", id="insp-text", compact=True,
                        highlighter=NeutralHighlighter())
            yield Button("\u2207 gradients", id="insp-grad-button", compact=True,
                         tooltip="ctrl+r: how the last position's loss depends on the steps before it")
        with Horizontal(id="insp-body"):
            with VerticalScroll(id="insp-text-box"):
                yield UnitView(id="insp-view")
            with VerticalScroll(id="insp-side"):
                yield WrappedPanel(id="insp-equations")
                yield WrappedPanel(id="insp-units")
                yield WrappedPanel(id="insp-saturation")
        with Vertical(id="insp-grad"):
            yield GradientPlot(id="insp-grad-plot")
        yield self._empty_state()
        yield StatusLine(id="insp-status")

    @property
    def view(self) -> UnitView:
        return self.query_one(UnitView)

    @property
    def plot(self) -> GradientPlot:
        return self.gradient_view.plot

    @property
    def gradients(self) -> Gradients | None:
        """The gradients through time shown (or last shown)."""
        return self.gradient_view.result

    def panel_text(self, which: str) -> str:
        """What a side panel shows ("equations", "units" or "saturation"), as plain text, unwrapped."""
        return self.query_one(f"#insp-{which}", WrappedPanel).plain

    def action_focus_text(self) -> None:
        self.query_one("#insp-text", Input).focus()

    # -------------------------------------------------------------------------------------- runs

    def _offers(self, run: RunSummary) -> bool:
        return run.kind in KINDS

    def _label_parts(self, run: RunSummary) -> list[str]:
        return super()._label_parts(run) + (["classifier"] if run.kind == "classify" else [])

    def _open(self, run: str, which: str) -> OpenedRun:
        """On the torch thread: the opened language model or classifier (loaded again when it changed)."""
        return self._opened.get(run, lambda: self.noted(inspectable(open_run(run, which))), which)[0]

    # ------------------------------------------------------------------------------------ tracing

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id in ("insp-layer", "insp-unit", "insp-show") and self.result is not None:
            self._show_choice()              # a new series of the same trace
        else:
            self.action_trace()

    def action_trace(self) -> None:
        run = self._chosen_run()
        if run is None:
            return
        text = self.query_one("#insp-text", Input).value
        if len(text) < 2:
            self._notify("type a text of at least two characters to look inside", "error")
            return
        if self._checked(self._read_choice) is None:
            return
        if len(text) > MAX_CHARS:
            self._notify(f"only the first {MAX_CHARS:,} characters are traced", "warning")
            text = text[:MAX_CHARS]
        if self.training:
            self._notify("Training is using the CPU: the trace runs when training stops.", "warning")
        tag = self._new_tag()
        self.state = "tracing"
        self._update_status()
        self.run_worker(partial(self._trace_worker, tag, run, self._selected_which(), text), thread=True,
                        exclusive=True, group="inspect", exit_on_error=False)

    def _trace_worker(self, tag: str, run: str, which: str, text: str) -> None:
        """In a thread worker: the trace on the torch thread; a failure is a notice."""
        result = torch_job(self.post_message, self._phrase, partial(self._trace_job, run, which, text),
                           f"inspect {Path(run).name}")
        self.post_message(self.Traced(tag, result) if result is not None else self.TraceEnded(tag))

    def _trace_job(self, run: str, which: str, text: str) -> Inspected:
        """On the torch thread: open the run, trace the text, find the units that track it."""
        opened = self._open(run, which)
        tok, cfg = opened.tokenizer, opened.model.cfg
        ids = tok.encode(text)
        unknown = tok.count_unknown(ids)
        if unknown:
            self.post_message(unknown_notice(unknown, "the text"))
        if len(ids) < 2:
            raise ConfigError("the text is too short to inspect: give at least two tokens")
        inside = look_inside(opened, ids, TOP_UNITS)
        return Inspected(inside.trace, inside.pieces, inside.units, inside.saturation, opened.name,
                         describe_lm(opened.name, opened.which, opened.meta), cfg.layers, cfg.hidden)

    @on(Traced)
    def _traced(self, message: Traced) -> None:
        if not self._claim(message.tag, message):
            return
        self.result = message.result
        self.state = "done"
        both = len(message.result.trace.directions) > 1
        self.set_class(both, "-bidirectional")
        if not both:
            self._set_direction("forward")
        self.query_one("#insp-units", WrappedPanel).show(unit_lines(message.result.units, both))
        self.query_one("#insp-saturation", WrappedPanel).show(saturation_lines(message.result.saturation))
        self._show_choice(keep_cursor=False)
        self.view.focus()                # so the arrows work at once
        if self.gradient_view.shown:
            self._measure()              # the plot follows the text just traced

    @on(TraceEnded)
    def _trace_ended(self, message: TraceEnded) -> None:
        if self._claim(message.tag, message):
            self.state = "failed"
            self._update_status()

    # ----------------------------------------------------------------------------- the unit shown

    def _read_choice(self, result: Inspected | None = None) -> tuple[int, str, int]:
        """(layer, what, unit) from the inputs; ConfigError when one is no number or, given a result,
        out of its model's range."""
        layer, unit = self._field("layer", int), self._field("unit", int)
        what = self.query_one("#insp-show", Input).value.strip().lower()
        if layer < 0 or unit < 0:
            raise ConfigError(f"must not be negative; got {min(layer, unit)}", "layer" if layer < 0 else "unit")
        if result is not None:
            if layer >= result.layers:
                raise ConfigError(f"must be from 0 to {result.layers - 1} for this {result.layers}-layer "
                                  f"model; got {layer}", "layer")
            if unit >= result.hidden:
                raise ConfigError(f"must be from 0 to {result.hidden - 1} for this model of {result.hidden} "
                                  f"units; got {unit}", "unit")
            if what not in result.kinds:
                raise ConfigError(f"must be one of {', '.join(result.kinds)} for a {result.trace.cell} model; "
                                  f"got {what!r}", "show")
        return layer, what, unit

    def _show_choice(self, keep_cursor: bool = True) -> None:
        """Show the series the inputs name, or say why not (the view keeps what it showed)."""
        result = self.result
        if result is None:
            return
        choice = self._checked(partial(self._read_choice, result))
        if choice is None:
            self._update_status()
            return
        self.choice = choice
        layer, what, unit = choice
        self.view.show_values(result.pieces, result.trace.series(layer, what, unit, self.direction), keep_cursor)
        self._show_equations()
        self._update_status()

    def _show_equations(self) -> None:
        result, view = self.result, self.view
        if result is None or self.choice is None or not view.pieces:
            return
        layer, _, unit = self.choice
        t = view.cursor
        self.query_one("#insp-equations", WrappedPanel).show(equation_lines(result.trace, layer, unit, t,
                                                                            result.pieces[t], self.direction))

    @on(Select.Changed, "#insp-direction")
    def _direction_selected(self, event: Select.Changed) -> None:
        event.stop()
        self._set_direction(str(event.value))
        self._show_choice()                  # the same trace, the other direction's series

    def _set_direction(self, direction: str) -> None:
        """Show ``direction`` from now on: the picker, the series and the gradients follow."""
        self.direction = direction
        select = self.query_one("#insp-direction", Select)
        if select.value != direction:
            with select.prevent(Select.Changed):
                select.value = direction
        self.gradient_view.show_direction(direction)

    @on(UnitView.CursorMoved)
    def _cursor_moved(self, message: UnitView.CursorMoved) -> None:
        message.stop()
        self._show_equations()
        self._update_status()

    @on(UnitView.UnitStep)
    def _unit_step(self, message: UnitView.UnitStep) -> None:
        message.stop()
        if self.result is None or self.choice is None:
            return
        unit = self.choice[2] + message.step
        if not 0 <= unit < self.result.hidden:
            self._notify(f"unit must be from 0 to {self.result.hidden - 1}; this is the last one", "warning")
            return
        self.query_one("#insp-unit", Input).value = str(unit)
        self._show_choice()

    # ------------------------------------------------------------------------- gradients through time

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "insp-grad-button":
            event.stop()
            self.action_gradients()

    def action_gradients(self) -> None:
        """Show (and measure) or hide the gradients through time."""
        if self.gradient_view.shown:
            self.gradient_view.hide()
        else:
            self._measure()

    def _measure(self) -> None:
        """Show the gradients over the text (or the validation text), or say why there are none to show."""
        run = self._chosen_run()
        if run is not None:
            self.gradient_view.measure(run, self._selected_which(), self.query_one("#insp-text", Input).value,
                                       self.training)

    def on_gradients_measured(self, message: GradientsMeasured) -> None:
        message.stop()
        self.gradient_view.measured(message)

    # ------------------------------------------------------------------------------------ status

    @property
    def busy(self) -> bool:
        return self.state == "tracing"

    def stop_all(self) -> None:
        """A trace is one short job on the torch thread: nothing to stop."""

    def _update_status(self, stopping: bool = False) -> None:
        run = self._selected_run()
        if run is None:
            parts = [self._run_status(run)]
        elif self.state == "tracing":
            parts = [f"{Path(run).name} \u00b7 tracing\u2026"]
        else:
            parts = [self._run_status(run)]
            if self.result is not None and self.choice is not None and self.view.pieces:
                layer, what, unit = self.choice
                t = self.view.cursor
                where = f"layer {layer}" + (f" {self.direction}" if self.has_class("-bidirectional") else "")
                parts.append(f"{where} {what} unit {unit}: {float(self.view.values[t]):+.3f} at {t}")
                parts.append("\u2190\u2192 position, \u2191\u2193 unit")
            else:
                parts.append("ctrl+g or enter to trace")
        self.query_one(StatusLine).show(parts, streaming=self.state == "tracing", failed=self.state == "failed")
