"""The Generate pane: pick a run, type a prompt, stream text from the model and play with it.

Layout (sizes in the generate section of ``rnnchat.tcss``): two one-row toolbars (run, checkpoint,
length, seed / prompt, temperature, top-k, top-p), the output (``SampleColumns``) and a status line.

Streaming: a thread worker hands the job to the app's torch thread (``rnnchat.tui.torch_thread``), where
``generate`` runs and ``pump`` posts ``EventBatch`` messages about 4 times a second; each batch is
appended in one go (one refresh per batch, not per token). The sampler reads a ``LiveControls`` per
column at every token, so ``+``/``-`` change the temperature of the running generation and ``escape``
stops it. Side by side, three samples with the same seed at T-0.3 / T / T+0.3 are interleaved token by
token in one job, so the columns grow together (three threads would only fight over the cores).
Alternatives are recorded as it streams, within limits (see ``generation.py``). ctrl+n picks the text token
by token instead (``pick.py``: a ``PickMode`` the pane owns).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import Input

from rnnchat import events as ev
from rnnchat.lm.config import SampleConfig
from rnnchat.tui.bridge import EventBatch, StreamFailed
from rnnchat.tui.panes.base import LMRunPane
from rnnchat.tui.panes.generate.generation import (
    Request,
    by_column,
    column_temperatures,
    copies_of,
    sample_columns,
    stepped_temperature,
)
from rnnchat.tui.panes.generate.pick import PickFailed, PickMode, TokenPicked
from rnnchat.tui.panes.saving import file_stem
from rnnchat.tui.torch_thread import RunCache
from rnnchat.tui.widgets.columns import COLUMNS, SampleColumns
from rnnchat.tui.widgets.picker import PickPanel
from rnnchat.tui.widgets.probtext import ProbText
from rnnchat.tui.widgets.status import StatusLine, copied_text, generation_parts, pick_parts
from rnnchat.tui.widgets.toolbars import fmt_temperature, generate_settings, generate_toolbars

if TYPE_CHECKING:
    from rnnchat.runs.opened import OpenedRun
    from rnnchat.sampling import LiveControls

__all__ = ["GeneratePane"]

_DEFAULTS = SampleConfig()


class GeneratePane(LMRunPane):
    """Stream text from a trained run (see the module docstring)."""

    KIND = "lm"
    NOUN = "run"
    PREFIX = "gen"
    FIELD_LABELS = {"top_k": "top-k", "top_p": "top-p"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+g", "generate", "Generate"),
        Binding("escape", "stop", "Stop"),
        Binding("r", "regenerate", "Again"),
        Binding("ctrl+n", "pick", "Pick"),
        Binding("plus,equals_sign", "temperature(1)", "Temp", key_display="+",
                group=Binding.Group("Temp", compact=True)),
        Binding("minus", "temperature(-1)", "Temp", key_display="-",
                group=Binding.Group("Temp", compact=True)),
        Binding("ctrl+s", "save", "Save"),
        Binding("p", "toggle_colour", "Colour"),
        Binding("t", "toggle_side_by_side", "3 temps"),
        Binding("u", "toggle_copies", "Copies", show=False),
        Binding("slash", "focus_prompt", "Prompt", show=False),
    ]

    current_run: reactive[str | None] = reactive(None)
    """Bound to the app's current run: opened when it changes."""

    def __init__(self, *, name: str | None = None, id: str | None = "generate-pane",
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._request: Request | None = None
        self._controls: list[LiveControls] = []
        self._done: list[ev.SampleDone | None] = []
        self._copied: dict[int, ev.Copied] = {}
        self.underline_copies = False
        self._chars: list[int] = []
        self._started = 0.0
        self._error = ""
        self._opened: RunCache[OpenedRun] = RunCache()
        self._pick = PickMode(self, self._open, self._phrase)
        self.state = "idle"
        """idle, loading, streaming, done or failed; picking, picked (or failed) in and after pick mode."""
        self.batches_received = 0
        """EventBatch messages handled for the current generation (UI updates)."""
        self.tokens_received = 0
        self.side_by_side = False
        self.saved_path: Path | None = None
        """Where ctrl+s last wrote the output."""

    # ------------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield from generate_toolbars(_DEFAULTS)
        yield SampleColumns(id="gen-body")
        yield self._empty_state()
        yield StatusLine(id="gen-status")

    @property
    def columns(self) -> SampleColumns:
        return self.query_one(SampleColumns)

    @property
    def outputs(self) -> list[ProbText]:
        """The three output columns (only the first is shown unless side by side)."""
        return self.columns.outputs

    @property
    def colour(self) -> bool:
        return self.columns.colour

    @property
    def pick_panel(self) -> PickPanel:
        return self._pick.panel

    @property
    def picking(self) -> bool:
        """In pick mode (``pick.py``)."""
        return self._pick.active

    def watch_current_run(self, name: str | None) -> None:
        if name:
            self.open_run(str(name))

    # -------------------------------------------------------------------------------- generation

    def _read_request(self, side_by_side: bool, waits: str) -> Request | None:
        """The request the toolbars make now (``side_by_side``: three temperatures); None, after saying why,
        when there is no run or a setting is bad. ``waits``: the warning while training holds the torch thread."""
        run = self._chosen_run()
        if run is None:
            return None
        settings = self._checked(partial(generate_settings, self._field, self.query_one("#gen-seed", Input).value))
        if settings is None:
            return None
        cfg, seed_fixed = settings
        if self.training:
            self._notify(waits, "warning")
        return Request(run, self._selected_which(), self.query_one("#gen-prompt", Input).value, cfg, seed_fixed,
                       column_temperatures(cfg.temperature, COLUMNS if side_by_side else 1))

    def action_generate(self) -> None:
        """Generate from what the inputs say now."""
        req = self._read_request(self.side_by_side, "Training is using the CPU: this generation starts when "
                                                    "training stops (ctrl+x stops it and saves).")
        if req is not None:
            self._start(req)

    def action_regenerate(self) -> None:
        """The last request again (run, prompt, settings) with a new seed unless the seed was fixed;
        the temperature is the one in the input (which + and - change)."""
        if self._request is None:
            self.action_generate()
            return
        typed = self.query_one("#gen-temperature", Input).value
        self._start(self._request.again(typed, COLUMNS if self.side_by_side else 1))

    def _begin(self, req: Request, state: str) -> str:
        """A new output for ``req`` (what streamed before is stopped), counted from zero; its tag."""
        self.stop_all()
        tag = self._new_tag()
        self._request = req
        n = len(req.temperatures)
        from rnnchat.sampling import LiveControls  # numpy's: loaded with torch, after the first screen

        self._controls = [LiveControls.of(req.cfg, t) for t in req.temperatures]
        self._done, self._copied, self._chars = [None] * n, {}, [0] * n
        self.batches_received = self.tokens_received = 0
        self._error = ""
        self._started = time.monotonic()
        self.state = state
        self.columns.start(req.prompt, n)
        self._set_titles()
        return tag

    def _start(self, req: Request) -> None:
        self.leave_pick()
        tag = self._begin(req, "loading")
        self._update_status()
        self.refresh_bindings()
        if self.app.focused not in self.outputs[:len(req.temperatures)]:
            self.outputs[0].focus()         # so + - escape r p t work at once
        job = partial(sample_columns, self._open, req, self._controls, self.post_message)
        self.run_worker(partial(self._stream_worker, tag, job), thread=True, exclusive=True, group="generate",
                        name="generate", exit_on_error=False)

    def stop_all(self) -> None:
        for c in self._controls:
            c.stop_requested = True

    @property
    def busy(self) -> bool:
        return self.streaming or self.picking

    @property
    def streaming(self) -> bool:
        return self.state in ("loading", "streaming")

    @property
    def controls(self) -> list[LiveControls]:
        """The LiveControls of the current (or last) generation, one per column."""
        return self._controls

    @property
    def reasons(self) -> list[str | None]:
        return [d.reason if d is not None else None for d in self._done]

    def on_event_batch(self, message: EventBatch) -> None:
        if not self._claim(message.tag, message):
            return                                   # another pane's, or a stopped generation finishing
        self.batches_received += 1
        if self.state == "loading":
            self.state = "streaming"
        per, done = by_column(message.events, len(self._controls))
        for column, event in done.items():
            self._done[column] = event
        for column, event in copies_of(message.events).items():
            self._copied[column] = event
        self.columns.mark_copied(self._copied, self.underline_copies)
        self._append(per)
        if all(d is not None for d in self._done):
            self.state = "done"
            self.refresh_bindings()
        self._update_status()

    def _append(self, per: list[list[ev.Token]]) -> None:
        """Tokens for each column, shown and counted."""
        self.columns.append(per)
        for i, tokens in enumerate(per):
            self.tokens_received += len(tokens)
            self._chars[i] += sum(len(t.text) for t in tokens)

    def on_stream_failed(self, message: StreamFailed) -> None:
        if not self._claim(message.tag, message):
            return
        self.state = "failed"
        self._error = message.text
        self._notify(message.text, "error")
        self.refresh_bindings()
        self._update_status()

    # --------------------------------------------------------------------------------- pick mode

    def action_pick(self) -> None:
        """Pick the text token by token from the prompt and settings in the toolbars."""
        if self.picking:
            self.pick_panel.focus()
            return
        req = self._read_request(False, "Training is using the CPU: the tokens are offered when training stops.")
        if req is None:
            return
        self._pick.start(self._begin(req, "picking"), req)
        self._update_status()
        self.refresh_bindings()

    def leave_pick(self, state: str = "picked") -> None:
        """Leave pick mode (the text stays); a step still running is ignored when it ends."""
        if not self._pick.leave():
            return
        self.state, self._tag = state, ""
        self.outputs[0].focus()
        self._update_status()
        self.refresh_bindings()

    def on_token_picked(self, message: TokenPicked) -> None:
        if self._claim(message.tag, message) and self.picking:
            token = self._pick.picked(message)
            if token is not None:
                self._append([[token]])
            self._update_status()

    def on_pick_failed(self, message: PickFailed) -> None:
        if self._claim(message.tag, message):
            self.leave_pick("failed")

    @on(PickPanel.Take)
    @on(PickPanel.Auto)
    def _pick_key(self, message: PickPanel.Take | PickPanel.Auto) -> None:
        message.stop()
        self._pick.take(self._tag, message.token_id if isinstance(message, PickPanel.Take) else None)

    def on_pick_panel_leave(self, message: PickPanel.Leave) -> None:
        message.stop()
        self.leave_pick()

    # ---------------------------------------------------------------------------------- actions

    def action_stop(self) -> None:
        if self.picking:
            self.leave_pick()
        elif self.streaming:
            self.stop_all()
            self._update_status(stopping=True)

    def action_temperature(self, direction: int) -> None:
        """Temperature up or down by 0.1, in the input and, while streaming, in the running sampler."""
        inp = self.query_one("#gen-temperature", Input)
        running = self._controls[len(self._controls) // 2].temperature if self.streaming and self._controls else None
        new = stepped_temperature(running, inp.value, direction)
        inp.value = fmt_temperature(new)
        if self.streaming and self._controls:
            for c, t in zip(self._controls, column_temperatures(new, len(self._controls))):
                c.temperature = t
            self._set_titles()
        self._update_status()

    def action_save(self) -> None:
        """Write the output to outputs/<run>-<timestamp>.txt in the working directory."""
        req = self._request
        if req is None:
            self._notify("nothing to save yet \u2014 generate some text first", "warning")
            return
        text = self.columns.saved_text([c.temperature for c in self._controls])
        path = self._save(Path.cwd() / "outputs", file_stem(req.run), ".txt", text, "save the output")
        if path is None:
            return
        self.saved_path = path
        self._notify(f"saved {len(text):,} characters to {path}")

    def action_toggle_copies(self) -> None:
        """Underline (or not) the spans of each sample found verbatim in the training text."""
        self.underline_copies = not self.underline_copies
        self.columns.mark_copied(self._copied, self.underline_copies)
        if self.underline_copies and not self._copied:
            self._notify("copied spans are underlined once a sample has ended")

    def action_toggle_colour(self) -> None:
        colour = not self.colour
        self.set_class(colour, "-colour")
        self.columns.set_colour(colour)

    def action_toggle_side_by_side(self) -> None:
        self.side_by_side = not self.side_by_side
        self.set_class(self.side_by_side, "-side-by-side")
        if self.side_by_side:
            self._notify("side by side: the next generation samples 3 temperatures (T-0.3, T, T+0.3) "
                         "with the same seed")
        self._set_titles()

    def action_focus_prompt(self) -> None:
        self.query_one("#gen-prompt", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_generate()

    # ----------------------------------------------------------------------------------- display

    def _set_titles(self) -> None:
        self.columns.set_titles([c.temperature for c in self._controls], self.side_by_side)

    def _update_status(self, stopping: bool = False) -> None:
        req = self._request
        run = self._selected_run()
        if req is not None and self.state in ("picking", "picked"):
            parts = pick_parts(self.picking, self.tokens_received, self._chars[0], req.cfg.temperature,
                               req.cfg.seed, req.run)
        elif req is not None:
            parts = generation_parts(self.state, self._done, self._chars, time.monotonic() - self._started,
                                     [c.temperature for c in self._controls], req.cfg.seed, req.run,
                                     self._error, stopping)
            if self._copied:
                parts.insert(2, copied_text([self._copied.get(i) for i in range(len(self._controls))]))
        else:
            parts = [self._run_status(run)] + (["ctrl+g or enter to generate"] if run is not None else [])
        self.query_one(StatusLine).show(parts, streaming=self.busy, failed=self.state == "failed")
