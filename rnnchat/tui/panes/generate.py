"""The Generate pane: pick a run, type a prompt, stream text from the model and play with it.

Layout (all sizes in the generate section of ``rnnchat.tcss``): two one-row toolbars (run, checkpoint,
length, seed / prompt, temperature, top-k, top-p), then the output, one ``ProbText`` or three side by
side, with the alternatives panel on the right while probability colouring is on, and a status line.

Streaming: a thread worker (group "generate", exclusive) hands the job to this pane's one model thread
(``_on_torch_thread``: loading and sampling always on the same OS thread, see there why), where
``generate`` runs and ``pump`` posts ``EventBatch`` messages to this pane about 4 times a second; each
batch is appended to the output in one go (one refresh per batch, not per token; appending costs
~0.5 us per token). The sampler reads a ``LiveControls`` per column at every token, so ``+``/``-``
change the temperature of the running generation and ``escape`` stops it.

Side by side: three samples with the same seed at the temperature -0.3 / +0 / +0.3, interleaved token by
token in ONE worker thread (so all three columns grow together; three threads would only fight over
the GIL and the two cores the sampler already uses).

Alternatives: every generation up to ``ALT_MAX_LENGTH`` tokens asks for the 5 most likely tokens at each
step, so colouring can be switched on after the fact. Measured on the 2-core dev machine (through
``generate``, main thread): 2x256 LSTM 13-16k -> 11-13k chars/s, 1x32 LSTM 72-79k -> 44-53k chars/s
(8-10 us per token), far faster than anyone reads; but a Token with 5 alternatives holds ~490 bytes
instead of ~40, hence the cap.

Everything the model or the user wrote is shown through ``neutralise`` as ``Text``, never as markup.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Callable, ClassVar, Iterator, Sequence, TypeVar

from rich.highlighter import Highlighter
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.events import DescendantFocus, Show
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from rnnchat import events as ev
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.lm.config import SampleConfig
from rnnchat.lm.generate import generate
from rnnchat.runs.checkpoints import (
    OpenedRun,
    list_runs,
    open_language_model,
    resolve_run,
)
from rnnchat.safetext import neutralise
from rnnchat.stream import LiveControls
from rnnchat.tui import torch_thread
from rnnchat.tui.bridge import EventBatch, StreamFailed, pump
from rnnchat.tui.widgets.alternatives import AlternativesPanel
from rnnchat.tui.widgets.probtext import ProbText

__all__ = ["GeneratePane", "ColumnEvent", "EMPTY_MESSAGE"]

EMPTY_MESSAGE = "No trained runs yet \u2014 train one in the Train tab"
TEMPERATURE_RANGE = (0.0, 5.0)         # what + and - move within
TEMPERATURE_STEP = 0.1
SIDE_BY_SIDE_OFFSETS = (-0.3, 0.0, 0.3)
ALTERNATIVES = 5
ALT_MAX_LENGTH = 50_000                # longer generations record no alternatives (memory, see above)
_DEFAULTS = SampleConfig()
T = TypeVar("T")


@dataclass(frozen=True)
class ColumnEvent(ev.Event):
    """An event of one of the side-by-side samples, tagged with its column."""
    kind: ClassVar[str] = "column"
    column: int
    event: ev.Event


def interleave(streams: Sequence[Iterator[ev.Event]]) -> Iterator[ColumnEvent]:
    """Round-robin over several event streams, one event from each in turn, until all are done."""
    active = list(enumerate(streams))
    while active:
        for item in list(active):
            column, stream = item
            event = next(stream, None)
            if event is None:
                active.remove(item)
            else:
                yield ColumnEvent(column, event)


@dataclass(frozen=True)
class _Request:
    run: str
    which: str
    prompt: str
    cfg: SampleConfig                  # seed always set (drawn when the seed field is blank)
    seed_fixed: bool
    temperatures: tuple[float, ...]


class _Notice(Message):
    def __init__(self, text: str, severity: str = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity


class _RunLoaded(Message):
    def __init__(self, key: tuple[str, str], description: str) -> None:
        super().__init__()
        self.key = key
        self.description = description


class _NeutralHighlighter(Highlighter):
    """Shows control characters in an Input as visible symbols (the value itself is left alone)."""

    def highlight(self, text: Text) -> None:
        plain = text.plain
        safe = neutralise(plain)
        if safe != plain:
            text.plain = safe


def _clamp_temperature(t: float) -> float:
    low, high = TEMPERATURE_RANGE
    return min(high, max(low, round(t, 2)))


def _fmt_temperature(t: float) -> str:
    return f"{round(t, 2):g}"


def _ui_message(exc: BaseException | str) -> str:
    """An error sentence for a notification: the command-line '--name' spelling becomes 'name'."""
    return re.sub(r"(?<![\w-])--(?=[a-z])", "", str(exc))


class GeneratePane(Container):
    """Stream text from a trained run (see the module docstring)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+g", "generate", "Generate"),
        Binding("escape", "stop", "Stop"),
        Binding("r", "regenerate", "Again"),
        Binding("plus,equals_sign", "temperature(1)", "Temp", key_display="+",
                group=Binding.Group("Temp", compact=True)),
        Binding("minus", "temperature(-1)", "Temp", key_display="-",
                group=Binding.Group("Temp", compact=True)),
        Binding("ctrl+s", "save", "Save"),
        Binding("p", "toggle_colour", "Colour"),
        Binding("t", "toggle_side_by_side", "3 temps"),
        Binding("slash", "focus_prompt", "Prompt", show=False),
        Binding("f5", "refresh_runs", "Refresh runs", show=False),
    ]

    def __init__(self, *, name: str | None = None, id: str | None = "generate-pane",
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._tag_prefix = f"generate-{id_(self)}-"
        self._gen = 0
        self._tag = ""
        self._request: _Request | None = None
        self._controls: list[LiveControls] = []
        self._done: list[ev.SampleDone | None] = []
        self._chars: list[int] = []
        self._started = 0.0
        self._error = ""
        self._option_values: list[str] = []
        self._extra_runs: list[str] = []      # runs opened by path, not under checkpoints/
        self._lock = threading.Lock()
        self._opened: OpenedRun | None = None
        self._opened_key: tuple | None = None
        self._run_info: dict[tuple[str, str], str] = {}
        self._alt_source: ProbText | None = None
        self.state = "idle"
        """idle, loading, streaming, done or failed."""
        self.batches_received = 0
        """EventBatch messages handled for the current generation (UI updates)."""
        self.tokens_received = 0
        self.status_text = ""
        """The status line as plain text."""
        self.colour = False
        self.side_by_side = False
        self.saved_path: Path | None = None
        """Where ctrl+s last wrote the output."""

    # ------------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(classes="gen-bar", id="gen-bar-run"):
            yield Label("Run", classes="gen-label")
            yield Select([], prompt="choose a run", id="gen-run", compact=True)
            yield Select([("best", "best"), ("last", "last")], value="best", allow_blank=False,
                         id="gen-which", compact=True)
            yield Label("Len", classes="gen-label")
            yield Input(str(_DEFAULTS.length), id="gen-length", compact=True, type="integer")
            yield Label("Seed", classes="gen-label")
            yield Input("", placeholder="random", id="gen-seed", compact=True, type="integer",
                        valid_empty=True)
        with Horizontal(classes="gen-bar", id="gen-bar-prompt"):
            yield Label("Prompt", classes="gen-label")
            yield Input("", placeholder="type a prompt, enter to generate", id="gen-prompt",
                        compact=True, highlighter=_NeutralHighlighter())
            yield Label("T", classes="gen-label")
            yield Input(_fmt_temperature(_DEFAULTS.temperature), id="gen-temperature", compact=True,
                        type="number")
            yield Label("top-k", classes="gen-label")
            yield Input(str(_DEFAULTS.top_k), id="gen-top-k", compact=True, type="integer")
            yield Label("top-p", classes="gen-label")
            yield Input(_fmt_temperature(_DEFAULTS.top_p), id="gen-top-p", compact=True, type="number")
        with Horizontal(id="gen-body"):
            with Horizontal(id="gen-columns"):
                yield ProbText(id="gen-out-0", classes="gen-out")
                yield ProbText(id="gen-out-1", classes="gen-out -extra")
                yield ProbText(id="gen-out-2", classes="gen-out -extra")
            yield AlternativesPanel(id="gen-alts")
        yield Static(Text(EMPTY_MESSAGE), id="gen-empty", classes="empty-state", markup=False)
        yield Static(Text(""), id="gen-status", markup=False)

    @property
    def outputs(self) -> list[ProbText]:
        """The three output columns (only the first is shown unless side by side)."""
        return list(self.query(ProbText).results(ProbText))

    def on_mount(self) -> None:
        outs = self.outputs
        outs[0].border_title = "Output"
        outs[0].border_subtitle = "/ edit prompt"
        for out in outs:
            out.clear("")
        self._alt_source = outs[0]
        self.query_one(AlternativesPanel).border_title = "Token"
        self._refresh_runs()
        if hasattr(self.app, "current_run"):
            self.watch(self.app, "current_run", self._on_run_changed, init=True)
        self._update_status()

    def on_unmount(self) -> None:
        self._stop_streams()

    def _on_torch_thread(self, fn: Callable[..., T], *args) -> T:
        """Run ``fn`` on the app's one torch thread and wait for it (call from a worker thread);
        see ``rnnchat.tui.torch_thread`` for why every load and sampling happens there."""
        return torch_thread.run(fn, *args)

    def on_show(self, event: Show) -> None:
        self._refresh_runs()

    # -------------------------------------------------------------------------------------- runs

    def _selected_run(self) -> str | None:
        return self.query_one("#gen-run", Select).selection

    def _selected_which(self) -> str:
        return self.query_one("#gen-which", Select).selection or "best"

    @staticmethod
    def _run_label(run) -> Text:
        parts = [run.name, run.level, f"step {run.step:,}"]
        if isinstance(run.best_bits_per_char, (int, float)):
            parts.append(f"{run.best_bits_per_char:.2f} bpc")
        return Text(neutralise(" \u00b7 ".join(parts)), no_wrap=True, overflow="ellipsis")

    def _refresh_runs(self) -> None:
        """Re-read checkpoints/; keeps the selection, selects the newest run when none is."""
        try:
            runs = list_runs()
        except OSError as exc:
            self._notify(f"cannot list runs: {exc}", "error")
            runs = []
        if any(r.kind != "lm" for r in runs):
            runs = [r for r in runs if r.kind == "lm"]
        options: list[tuple[Text, str]] = [(self._run_label(r), r.name) for r in runs]
        names = {r.name for r in runs}
        for extra in self._extra_runs:
            if extra not in names:
                options.append((Text(neutralise(f"{Path(extra).name} \u00b7 {extra}"), no_wrap=True,
                                     overflow="ellipsis"), extra))
        select = self.query_one("#gen-run", Select)
        values = [v for _, v in options]
        current = select.selection
        if values != self._option_values:
            self._option_values = values
            with select.prevent(Select.Changed):
                select.set_options(options)
                if current in values:
                    select.value = current
        self.set_class(not options, "-empty")
        select.prompt = "choose a run" if options else "no runs"
        if select.selection is None and options:
            select.value = options[0][1]             # -> Select.Changed -> preload

    def open_run(self, name: str, which: str = "best") -> None:
        """Select a run (a name under checkpoints/ or a path to a run directory) and load it."""
        if which not in ("best", "last"):
            self._notify(f"checkpoint must be 'best' or 'last'; got {which!r}", "error")
            return
        if name not in self._option_values:
            self._refresh_runs()
        if name not in self._option_values:
            try:
                resolve_run(name)
            except RnnchatError as exc:
                self._notify(str(exc), "error")
                return
            self._extra_runs.append(name)
            self._refresh_runs()
        with self.prevent(Select.Changed):
            self.query_one("#gen-which", Select).value = which
            self.query_one("#gen-run", Select).value = name
        self._preload()

    def _on_run_changed(self, name: str | None) -> None:
        if name:
            self.open_run(str(name))

    @on(Select.Changed, "#gen-run, #gen-which")
    def _run_selected(self, event: Select.Changed) -> None:
        event.stop()
        self._preload()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        widget = event.widget
        if isinstance(widget, Select) and widget.id == "gen-run":
            self._refresh_runs()
        elif isinstance(widget, ProbText) and widget is not self._alt_source:
            self._alt_source = widget
            self._show_alternatives()

    def _preload(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        self.run_worker(partial(self._load_worker, run, self._selected_which()), thread=True,
                        exclusive=True, group="generate-load", exit_on_error=False)
        self._update_status()

    def _load_worker(self, run: str, which: str) -> None:
        try:
            opened = self._on_torch_thread(self._load, run, which)
        except Exception as exc:  # noqa: BLE001 - a broken file must not take the app down
            text = str(exc) if isinstance(exc, RnnchatError) else \
                f"cannot open run {run!r}: {type(exc).__name__}: {exc}"
            self.post_message(_Notice(text, "error"))
            self.post_message(_RunLoaded((run, which), f"{Path(run).name} \u00b7 could not be opened"))
            return
        self.post_message(_RunLoaded((run, which), self._describe(opened)))

    def _load(self, run: str, which: str) -> OpenedRun:
        """The opened run, loaded again only when its checkpoints changed on disk (thread-safe)."""
        run_dir = resolve_run(run)
        stamp = []
        for w in ("best", "last"):
            try:
                stamp.append((run_dir / w / "manifest.json").stat().st_mtime_ns)
            except OSError:
                stamp.append(None)
        key = (str(run_dir.resolve()), which, tuple(stamp))
        with self._lock:
            if self._opened is not None and self._opened_key == key:
                return self._opened
            opened = open_language_model(run, which)
            self._opened, self._opened_key = opened, key
            return opened

    @staticmethod
    def _describe(opened: OpenedRun) -> str:
        summary = opened.meta.get("summary", {}) if isinstance(opened.meta, dict) else {}
        parts = [opened.name, opened.which]
        step = summary.get("step")
        if isinstance(step, int):
            parts.append(f"step {step:,}")
        bpc = summary.get("best_bits_per_char")
        if isinstance(bpc, (int, float)):
            parts.append(f"{bpc:.2f} bpc")
        return " \u00b7 ".join(parts)

    @on(_RunLoaded)
    def _run_loaded(self, message: _RunLoaded) -> None:
        message.stop()
        self._run_info[message.key] = message.description
        self._update_status()

    @on(_Notice)
    def _notice(self, message: _Notice) -> None:
        message.stop()
        self._notify(message.text, message.severity)

    def _notify(self, text: str, severity: str = "information") -> None:
        self.notify(neutralise(_ui_message(text)), severity=severity, markup=False)  # type: ignore[arg-type]

    # -------------------------------------------------------------------------------- generation

    def _read_settings(self) -> tuple[SampleConfig, bool]:
        """The sampling settings in the inputs, validated; (config, seed was given). Raises ConfigError."""
        def field(widget_id: str, label: str, kind: type):
            raw = self.query_one(f"#{widget_id}", Input).value.strip()
            try:
                return kind(raw)
            except ValueError:
                noun = "a whole number" if kind is int else "a number"
                raise ConfigError(f"{label} must be {noun}; got {raw!r}") from None

        temperature = field("gen-temperature", "temperature", float)
        top_k = field("gen-top-k", "top-k", int)
        top_p = field("gen-top-p", "top-p", float)
        length = field("gen-length", "length", int)
        seed_raw = self.query_one("#gen-seed", Input).value.strip()
        seed_fixed = bool(seed_raw)
        if seed_fixed:
            seed = field("gen-seed", "seed", int)
            if not 0 <= seed < 2**63:
                raise ConfigError(f"seed must be a whole number from 0 to {2**63 - 1}; got {seed}")
        else:
            seed = random.randrange(2**31)
        cfg = SampleConfig(length=length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        cfg.validate()
        return cfg, seed_fixed

    def _temperatures(self, t: float) -> tuple[float, ...]:
        if not self.side_by_side:
            return (t,)
        return tuple(max(0.0, round(t + d, 2)) for d in SIDE_BY_SIDE_OFFSETS)

    def action_generate(self) -> None:
        """Generate from what the inputs say now."""
        run = self._selected_run()
        if run is None:
            self._notify(EMPTY_MESSAGE if not self._option_values else "choose a run first", "error")
            return
        try:
            cfg, seed_fixed = self._read_settings()
        except RnnchatError as exc:
            self._notify(str(exc), "error")
            return
        prompt = self.query_one("#gen-prompt", Input).value
        if getattr(self.app, "training_run", lambda: None)():
            self._notify("Training is using the CPU: this generation starts when training stops "
                         "(ctrl+x stops it and saves).", "warning")
        self._start(_Request(run, self._selected_which(), prompt, cfg, seed_fixed,
                             self._temperatures(cfg.temperature)))

    def action_regenerate(self) -> None:
        """The last request again (run, prompt, settings) with a new seed unless the seed was fixed;
        the temperature is the one in the input (which + and - change)."""
        last = self._request
        if last is None:
            self.action_generate()
            return
        cfg = last.cfg
        raw = self.query_one("#gen-temperature", Input).value.strip()
        try:
            t = float(raw)
            replace(cfg, temperature=t).validate()
            cfg = replace(cfg, temperature=t)
        except (ValueError, RnnchatError):
            pass
        if not last.seed_fixed:
            cfg = replace(cfg, seed=random.randrange(2**31))
        self._start(replace(last, cfg=cfg, temperatures=self._temperatures(cfg.temperature)))

    def _start(self, req: _Request) -> None:
        self._stop_streams()
        self._gen += 1
        self._tag = tag = f"{self._tag_prefix}{self._gen}"
        self._request = req
        n = len(req.temperatures)
        self._controls = controls = [LiveControls(t, req.cfg.top_k, req.cfg.top_p) for t in req.temperatures]
        self._done = [None] * n
        self._chars = [0] * n
        self.batches_received = self.tokens_received = 0
        self._error = ""
        self._started = time.monotonic()
        self.state = "loading"
        for i, out in enumerate(self.outputs):
            out.clear(req.prompt if i < n else "")
        self._set_titles()
        self._show_alternatives()
        self._update_status()
        self.refresh_bindings()
        if self.app.focused not in self.outputs[:n]:
            self.outputs[0].focus()         # so + - escape r p t work at once
        self.run_worker(partial(self._generate_worker, tag, req, controls), thread=True, exclusive=True,
                        group="generate", name="generate", exit_on_error=False)

    def _generate_worker(self, tag: str, req: _Request, controls: list[LiveControls]) -> None:
        """In a thread worker: the generation job, on the pane's model thread."""
        try:
            self._on_torch_thread(self._generate_job, tag, req, controls)
        except Exception as exc:  # noqa: BLE001 - e.g. the pane went away while this waited
            self.post_message(StreamFailed(tag, f"internal error: {type(exc).__name__}: {exc}"))

    def _generate_job(self, tag: str, req: _Request, controls: list[LiveControls]) -> None:
        """Load the run, start the samplers and pump their events to the pane."""
        try:
            opened = self._load(req.run, req.which)
            tok = opened.tokenizer
            if req.prompt:
                ids = tok.encode(req.prompt)
                unknown = tok.count_unknown(ids)
                if 0 < unknown < len(ids):
                    self.post_message(_Notice(f"{unknown} character(s) of the prompt are unknown to the model "
                                              "and were read as <unk>", "warning"))
            alternatives = ALTERNATIVES if req.cfg.length <= ALT_MAX_LENGTH else 0
            streams = [generate(opened.model, tok, replace(req.cfg, temperature=c.temperature), req.prompt,
                                alternatives=alternatives, controls=c) for c in controls]
        except RnnchatError as exc:
            self.post_message(StreamFailed(tag, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001
            self.post_message(StreamFailed(tag, f"internal error: {type(exc).__name__}: {exc}"))
            return
        events = streams[0] if len(streams) == 1 else interleave(streams)
        pump(self, tag, events)

    def stop_all(self) -> None:
        """Ask every running generation to stop (the app calls this when quitting)."""
        self._stop_streams()

    def _stop_streams(self) -> None:
        for c in self._controls:
            c.stop_requested = True

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
        if not message.tag.startswith(self._tag_prefix):
            return
        message.stop()
        if message.tag != self._tag:
            return                                   # a stopped earlier generation still finishing
        self.batches_received += 1
        if self.state == "loading":
            self.state = "streaming"
        n = len(self._controls)
        per: list[list[ev.Token]] = [[] for _ in range(n)]
        for event in message.events:
            column = 0
            if isinstance(event, ColumnEvent):
                column, event = event.column, event.event
            if isinstance(event, ev.Token):
                per[column].append(event)
            elif isinstance(event, ev.SampleDone):
                self._done[column] = event
        outs = self.outputs
        for i, tokens in enumerate(per):
            if tokens:
                outs[i].append(tokens)
                self.tokens_received += len(tokens)
                self._chars[i] += sum(len(t.text) for t in tokens)
        if all(d is not None for d in self._done):
            self.state = "done"
            self.refresh_bindings()
        if self._alt_source is not None and self._alt_source.cursor is not None:
            self._show_alternatives()
        self._update_status()

    def on_stream_failed(self, message: StreamFailed) -> None:
        if not message.tag.startswith(self._tag_prefix):
            return
        message.stop()
        if message.tag != self._tag:
            return
        self.state = "failed"
        self._error = message.text
        self._notify(message.text, "error")
        self.refresh_bindings()
        self._update_status()

    # ---------------------------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.streaming        # escape is left to others when nothing streams
        return True

    def action_stop(self) -> None:
        if self.streaming:
            self._stop_streams()
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
        new = _clamp_temperature(base + delta)
        inp.value = _fmt_temperature(new)
        if self.streaming and self._controls:
            offsets = SIDE_BY_SIDE_OFFSETS if len(self._controls) == 3 else (0.0,)
            for c, d in zip(self._controls, offsets):
                c.temperature = max(0.0, round(new + d, 2))
            self._set_titles()
        self._update_status()

    def action_save(self) -> None:
        """Write the output to outputs/<run>-<timestamp>.txt in the working directory."""
        req = self._request
        if req is None:
            self._notify("nothing to save yet \u2014 generate some text first", "warning")
            return
        outs = self.outputs[:len(req.temperatures)]
        if len(outs) == 1:
            text = outs[0].raw_text
        else:
            text = "\n\n".join(f"--- temperature {c.temperature:g} ---\n{o.raw_text}"
                               for c, o in zip(self._controls, outs))
        stem = re.sub(r"[^\w.-]+", "_", Path(req.run).name).strip("._") or "run"
        folder = Path.cwd() / "outputs"
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{stem}-{stamp}.txt"
            n = 2
            while True:
                try:
                    with open(path, "x", encoding="utf-8", newline="") as f:
                        f.write(text)
                    break
                except FileExistsError:
                    path = folder / f"{stem}-{stamp}-{n}.txt"
                    n += 1
        except OSError as exc:
            self._notify(f"cannot save the output: {exc}", "error")
            return
        self.saved_path = path
        self._notify(f"saved {len(text):,} characters to {path}")

    def action_toggle_colour(self) -> None:
        self.colour = not self.colour
        self.set_class(self.colour, "-colour")
        for out in self.outputs:
            out.colour = self.colour
        self._show_alternatives()

    def action_toggle_side_by_side(self) -> None:
        self.side_by_side = not self.side_by_side
        self.set_class(self.side_by_side, "-side-by-side")
        if self.side_by_side:
            self._notify("side by side: the next generation samples 3 temperatures (T-0.3, T, T+0.3) "
                         "with the same seed")
        self._set_titles()

    def action_focus_prompt(self) -> None:
        self.query_one("#gen-prompt", Input).focus()

    def action_refresh_runs(self) -> None:
        self._refresh_runs()
        self._notify(f"{len(self._option_values)} run(s) found")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_generate()

    def on_prob_text_cursor_moved(self, message: ProbText.CursorMoved) -> None:
        message.stop()
        if message.probtext.has_focus or self._alt_source is None:
            self._alt_source = message.probtext
        if message.probtext is self._alt_source:
            self._show_alternatives()

    # ----------------------------------------------------------------------------------- display

    def _show_alternatives(self) -> None:
        if not self.colour:
            return
        source = self._alt_source or self.outputs[0]
        for out in self.outputs:
            out.set_class(out is source, "-inspected")
        self.query_one(AlternativesPanel).show_token(source, source.cursor)

    def _set_titles(self) -> None:
        outs = self.outputs
        temps = [c.temperature for c in self._controls] if self._controls else []
        if self.side_by_side or len(temps) > 1:
            for i, out in enumerate(outs):
                out.border_title = f"T {temps[i]:.2f}" if i < len(temps) else "\u2014"
        else:
            outs[0].border_title = f"T {temps[0]:.2f}" if temps else "Output"

    def _update_status(self, stopping: bool = False) -> None:
        parts: list[str] = []
        req = self._request
        if req is None:
            run = self._selected_run()
            if run is None:
                parts.append(EMPTY_MESSAGE if not self._option_values else "choose a run")
            else:
                info = self._run_info.get((run, self._selected_which()))
                parts.append(info or f"{Path(run).name} \u00b7 loading\u2026")
                parts.append("ctrl+g or enter to generate")
        else:
            chars = sum(d.chars if d is not None else c for d, c in zip(self._done, self._chars))
            if self.state == "done":
                reasons = sorted({d.reason for d in self._done if d is not None})
                seconds = max((d.seconds for d in self._done if d is not None), default=0.0)
                parts.append(f"\u25a0 done: {', '.join(reasons)}")
            elif self.state == "failed":
                seconds = time.monotonic() - self._started
                parts.append("\u2717 failed")
            else:
                seconds = time.monotonic() - self._started
                parts.append("\u25b6 stopping\u2026" if stopping else
                             ("\u25b6 loading\u2026" if self.state == "loading" else "\u25b6 streaming"))
            parts.append(f"{chars:,} chars")
            parts.append(rate_text(chars, seconds))
            temps = [c.temperature for c in self._controls]
            parts.append("T " + "/".join(f"{t:.2f}" for t in temps))
            parts.append(f"seed {req.cfg.seed}")
            parts.append(Path(req.run).name)
            if self.state == "failed" and self._error:
                parts.append(_ui_message(self._error))
        self.status_text = neutralise("  \u00b7  ".join(parts))
        status = self.query_one("#gen-status", Static)
        status.update(Text(self.status_text, no_wrap=True, overflow="ellipsis"))
        status.set_class(self.streaming, "-streaming")
        status.set_class(self.state == "failed", "-failed")


def rate_text(chars: int, seconds: float) -> str:
    """The speed shown in the status line."""
    return f"{chars / seconds if seconds > 0 else 0.0:,.0f} chars/s"


def id_(obj: object) -> str:
    return format(id(obj), "x")
