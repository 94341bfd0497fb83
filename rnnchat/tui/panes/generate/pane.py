"""The Generate pane: pick a run, type a prompt, stream text from the model and play with it.

Layout (sizes in the generate section of ``rnnchat.tcss``): two one-row toolbars (run, checkpoint,
length, seed / prompt, temperature, top-k, top-p), the output (``SampleColumns``) and a status line.

Streaming: a thread worker hands the job to the app's torch thread (``rnnchat.tui.torch_thread``), where
``generate`` runs and ``pump`` posts ``EventBatch`` messages about 4 times a second; each batch is
appended in one go (one refresh per batch, not per token). The sampler reads a ``LiveControls`` per
column at every token, so ``+``/``-`` change the temperature of the running generation and ``escape``
stops it. Side by side, three samples with the same seed at T-0.3 / T / T+0.3 are interleaved token by
token in one job, so the columns grow together (three threads would only fight over the cores).
Alternatives are recorded as it streams, within limits (see ``sampling``). ctrl+n picks the text token by
token instead (``picking``).
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import ClassVar, Iterator

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import Input, Static

from rnnchat import events as ev
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.lm.config import SampleConfig
from rnnchat.lm.generate import generate
from rnnchat.runs.store import OpenedRun, copy_index
from rnnchat.sampling import LiveControls
from rnnchat.tui.bridge import EventBatch, StreamFailed
from rnnchat.tui.panes.base import LMRunPane, RunCache, file_stem
from rnnchat.tui.panes.picking import PickMode
from rnnchat.tui.panes.sampling import (
    TEMPERATURE_STEP,
    Request,
    by_column,
    clamp_temperature,
    column_temperatures,
    copies_of,
    interleave,
    with_copies,
)
from rnnchat.tui.widgets.columns import COLUMNS, SampleColumns
from rnnchat.tui.widgets.probtext import ProbText
from rnnchat.tui.widgets.status import StatusLine, copied_text, generation_parts
from rnnchat.tui.widgets.toolbars import fmt_temperature, generate_toolbars

__all__ = ["GeneratePane", "EMPTY_MESSAGE"]

EMPTY_MESSAGE = "No trained runs yet \u2014 train one in the Train tab"
_DEFAULTS = SampleConfig()


class GeneratePane(PickMode, LMRunPane):
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
        self._gen = 0
        self._request: Request | None = None
        self._controls: list[LiveControls] = []
        self._done: list[ev.SampleDone | None] = []
        self._copied: dict[int, ev.Copied] = {}
        self.underline_copies = False
        self._chars: list[int] = []
        self._started = 0.0
        self._error = ""
        self._opened: RunCache[OpenedRun] = RunCache()
        self.state = "idle"
        """idle, loading, streaming, done or failed."""
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
        yield Static(Text(EMPTY_MESSAGE), id="gen-empty", classes="empty-state", markup=False)
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

    def watch_current_run(self, name: str | None) -> None:
        if name:
            self.open_run(str(name))

    # -------------------------------------------------------------------------------- generation

    def _read_settings(self) -> tuple[SampleConfig, bool]:
        """The sampling settings in the inputs, validated; (config, seed was given). Raises ConfigError."""
        temperature = self._field("temperature", float)
        top_k = self._field("top_k", int)
        top_p = self._field("top_p", float)
        length = self._field("length", int)
        seed_fixed = bool(self.query_one("#gen-seed", Input).value.strip())
        if seed_fixed:
            seed = self._field("seed", int)
            if not 0 <= seed < 2**63:
                raise ConfigError(f"must be a whole number from 0 to {2**63 - 1}; got {seed}", "seed")
        else:
            seed = random.randrange(2**31)
        cfg = SampleConfig(length=length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        cfg.validate()
        return cfg, seed_fixed

    def _temperatures(self, t: float) -> tuple[float, ...]:
        return column_temperatures(t, COLUMNS if self.side_by_side else 1)

    def action_generate(self) -> None:
        """Generate from what the inputs say now."""
        run = self._selected_run()
        if run is None:
            self._notify(EMPTY_MESSAGE if not self._option_values else "choose a run first", "error")
            return
        try:
            cfg, seed_fixed = self._read_settings()
        except RnnchatError as exc:
            self._notify(self._phrase(exc), "error")
            return
        prompt = self.query_one("#gen-prompt", Input).value
        if self.training:
            self._notify("Training is using the CPU: this generation starts when training stops "
                         "(ctrl+x stops it and saves).", "warning")
        self._start(Request(run, self._selected_which(), prompt, cfg, seed_fixed,
                             self._temperatures(cfg.temperature)))

    def action_regenerate(self) -> None:
        """The last request again (run, prompt, settings) with a new seed unless the seed was fixed;
        the temperature is the one in the input (which + and - change)."""
        last = self._request
        if last is None:
            self.action_generate()
            return
        cfg = last.cfg
        try:
            t = float(self.query_one("#gen-temperature", Input).value.strip())
            replace(cfg, temperature=t).validate()
            cfg = replace(cfg, temperature=t)
        except (ValueError, RnnchatError):
            pass
        if not last.seed_fixed:
            cfg = replace(cfg, seed=random.randrange(2**31))
        self._start(replace(last, cfg=cfg, temperatures=self._temperatures(cfg.temperature)))

    def _start(self, req: Request) -> None:
        self.leave_pick()
        self.stop_all()
        self._gen += 1
        self._tag = tag = f"{self._tag_prefix}{self._gen}"
        self._request = req
        n = len(req.temperatures)
        self._controls = controls = [LiveControls.of(req.cfg, t) for t in req.temperatures]
        self._done = [None] * n
        self._copied = {}
        self._chars = [0] * n
        self.batches_received = self.tokens_received = 0
        self._error = ""
        self._started = time.monotonic()
        self.state = "loading"
        self.columns.start(req.prompt, n)
        self._set_titles()
        self._update_status()
        self.refresh_bindings()
        if self.app.focused not in self.outputs[:n]:
            self.outputs[0].focus()         # so + - escape r p t work at once
        self.run_worker(partial(self._stream_worker, tag, partial(self._generate_job, req, controls)),
                        thread=True, exclusive=True, group="generate", name="generate", exit_on_error=False)

    def _generate_job(self, req: Request, controls: list[LiveControls]) -> Iterator[ev.Event]:
        """On the torch thread: load the run and start a sampler per column."""
        opened = self._open(req.run, req.which)
        tok = opened.tokenizer
        if req.prompt:
            ids = tok.encode(req.prompt)
            unknown = tok.count_unknown(ids)
            if 0 < unknown < len(ids):
                self.post_message(self.Notice(f"{unknown} character(s) of the prompt are unknown to the model "
                                              "and were read as <unk>", "warning"))
        streams = [generate(opened.model, tok, replace(req.cfg, temperature=c.temperature), req.prompt,
                            alternatives=req.alternatives, controls=c) for c in controls]
        index, note = copy_index(opened.meta)
        if note:
            self.post_message(self.Notice(note, "warning"))
        events = streams[0] if len(streams) == 1 else interleave(streams)
        return with_copies(events, len(streams), index) if index is not None else events

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
        self.columns.append(per)
        for i, tokens in enumerate(per):
            self.tokens_received += len(tokens)
            self._chars[i] += sum(len(t.text) for t in tokens)
        if all(d is not None for d in self._done):
            self.state = "done"
            self.refresh_bindings()
        self._update_status()

    def on_stream_failed(self, message: StreamFailed) -> None:
        if not self._claim(message.tag, message):
            return
        self.state = "failed"
        self._error = message.text
        self._notify(message.text, "error")
        self.refresh_bindings()
        self._update_status()

    # ---------------------------------------------------------------------------------- actions

    def action_stop(self) -> None:
        if self.picking:
            self.leave_pick()
        elif self.streaming:
            self.stop_all()
            self._update_status(stopping=True)

    def action_temperature(self, direction: int) -> None:
        """Temperature up or down by 0.1, in the input and, while streaming, in the running sampler."""
        delta = TEMPERATURE_STEP * (1 if direction > 0 else -1)
        inp = self.query_one("#gen-temperature", Input)
        if self.streaming and self._controls:
            base = self._controls[len(self._controls) // 2].temperature
        else:
            try:
                base = float(inp.value)
            except ValueError:
                base = _DEFAULTS.temperature
        new = clamp_temperature(base + delta)
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
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            path = self.save_new(Path.cwd() / "outputs", f"{file_stem(req.run)}-{stamp}", ".txt", text)
        except OSError as exc:
            self._notify(f"cannot save the output: {exc}", "error")
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
            parts = self.pick_parts()
        elif req is not None:
            parts = generation_parts(self.state, self._done, self._chars, time.monotonic() - self._started,
                                     [c.temperature for c in self._controls], req.cfg.seed, req.run,
                                     self._error, stopping)
            if self._copied:
                parts.insert(2, copied_text([self._copied.get(i) for i in range(len(self._controls))]))
        elif run is None:
            parts = [EMPTY_MESSAGE if not self._option_values else "choose a run"]
        else:
            info = self._run_info.get((run, self._selected_which()))
            parts = [info or f"{Path(run).name} \u00b7 loading\u2026", "ctrl+g or enter to generate"]
        self.query_one(StatusLine).show(parts, streaming=self.busy, failed=self.state == "failed")
