"""The Train tab: a settings form with presets, and live panels fed by the trainer's event stream."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Button, Input, Label, ProgressBar, Select, Static

from rnnchat import events as ev
from rnnchat.config import (
    CELLS,
    DEFAULT_MINUTES,
    DEFAULT_PRESET,
    DEVICES,
    LEVELS,
    PRECISIONS,
    PRESETS,
    TASKS,
    TrainConfig,
)
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.formatting import clock
from rnnchat.lm.model import RNNLM
from rnnchat.runs.kinds import KINDS, assemble
from rnnchat.safetext import neutralise
from rnnchat.tui import torch_thread
from rnnchat.tui.bridge import EventBatch, StreamFailed, pump
from rnnchat.tui.messages import TrainingChanged
from rnnchat.tui.widgets.plot import LossPlot

# (field, label, kind) for every setting on the form; kind is "int", "float" or a tuple of choices.
FIELDS: list[tuple[str, str, object]] = [
    ("task", "task", TASKS),
    ("level", "level", LEVELS),
    ("vocab_size", "vocab", "int"),
    ("cell", "cell", CELLS),
    ("layers", "layers", "int"),
    ("hidden", "hidden", "int"),
    ("embed", "embed", "int"),
    ("dropout", "dropout", "float"),
    ("seq_len", "window", "int"),
    ("batch_size", "batch", "int"),
    ("lr", "lr", "float"),
    ("minutes", "minutes", "float"),
    ("max_steps", "max steps", "int"),
    ("device", "device", DEVICES),
    ("precision", "precision", PRECISIONS),
]
LABELS = {name: label for name, label, _ in FIELDS}
LIMITS = ("minutes", "max_steps")          # blank: no such limit
_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_NOT_READ = {"chat": {"seq_len"}}          # a chat model reads whole turns, not windows


def phrase(exc: RnnchatError) -> str:
    """An error as one sentence, a setting called by its label on the form."""
    if isinstance(exc, ConfigError) and exc.field:
        return exc.phrased(LABELS.get(exc.field, exc.field.replace("_", " ")))
    return str(exc)


class TrainPane(Container):
    """Start, stop and resume training; every figure shown comes from the engine's events."""

    corpus: reactive[str | None] = reactive(None)
    """Bound to the app's current corpus: what Start trains on."""
    current_run: reactive[str | None] = reactive(None)
    """Bound to the app's current run: what Resume continues when this pane has trained none."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trainer = None
        self.worker = None
        self.last_done: ev.Done | None = None
        self.run_name: str | None = None
        self.started: ev.Started | None = None
        self.steps_seen = 0
        self.updates = 0          # EventBatch messages handled: the UI's update count
        self.last_step: ev.Step | None = None
        self.last_eval: ev.Eval | None = None

    # ---- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        model, train = assemble("lm", DEFAULT_PRESET)
        # The core's time budget: the defaults were tuned for runs of that length.
        defaults = {**dataclasses.asdict(model), **dataclasses.asdict(train), "minutes": DEFAULT_MINUTES}
        with Horizontal():
            with VerticalScroll(id="train-form"):
                yield Static(id="train-corpus", classes="pane-title")
                with Horizontal(classes="form-row"):
                    yield Label("preset", classes="form-label")
                    yield Select([(p, p) for p in PRESETS], value=DEFAULT_PRESET, allow_blank=False,
                                 compact=True, id="preset")
                yield Static("", id="preset-info", classes="muted")
                for name, label, kind in FIELDS:
                    with Horizontal(classes="form-row"):
                        yield Label(label, classes="form-label")
                        if isinstance(kind, tuple):
                            yield Select([(c, c) for c in kind], value=defaults[name], allow_blank=False,
                                         compact=True, id=f"f-{name}")
                        else:
                            value = defaults[name]
                            yield Input(str(value if value else ""), id=f"f-{name}", compact=True,
                                        type="integer" if kind == "int" else "number",
                                        placeholder="none" if name in LIMITS else "",
                                        valid_empty=name in LIMITS)
                with Horizontal(id="train-buttons"):
                    yield Button("Start", id="start", variant="success", compact=True)
                    yield Button("Stop", id="stop", variant="error", compact=True, disabled=True)
                    yield Button("Resume", id="resume", compact=True)
            with Vertical(id="train-panels"):
                yield Static(Text("Pick a corpus, choose a preset, press Start (ctrl+t).", style="dim"),
                             id="train-status")
                with Horizontal(id="train-progress-row"):
                    yield ProgressBar(total=1000, show_eta=False, id="train-progress")
                    yield Label("", id="train-eta")
                yield LossPlot(id="train-plot")
                yield Static(Text(""), id="train-sample")

    def on_mount(self) -> None:
        self.query_one("#train-sample").border_title = "sample"
        self.query_one("#train-plot").border_title = "loss (nats/token)"
        self._estimated = False

    def on_show(self) -> None:
        # The speed probe holds the torch thread for seconds: only once someone looks at this tab.
        if not self._estimated:
            self._estimated = True
            self._estimate_preset(str(self.query_one("#preset", Select).value))

    def watch_corpus(self, name: str | None) -> None:
        self.query_one("#train-corpus", Static).update(Text(f"corpus: {neutralise(name or '(none)')}"))

    # ---- presets -------------------------------------------------------------------------------

    @on(Select.Changed, "#f-task")
    def _task_changed(self, event: Select.Changed) -> None:
        """Each task starts from its own defaults (chat: subwords, a higher rate, smaller batches)."""
        task = str(event.value)
        kind, base = KINDS[task], TrainConfig()
        # Every key some task changes, so switching back restores the plain defaults; keys without a
        # field on the form are applied by read_form.
        for key in {k for other in KINDS.values() for k in other.train_defaults} & LABELS.keys():
            value = kind.train_defaults.get(key, getattr(base, key))
            widget = self.query_one(f"#f-{key}")
            widget.value = value if isinstance(widget, Select) else str(value)
        preset = PRESETS[str(self.query_one("#preset", Select).value)]
        for key in {k for other in KINDS.values() for k in other.keeps} & LABELS.keys():
            value = getattr(kind.model_config(), key) if key in kind.keeps else preset.get(key)
            self.query_one(f"#f-{key}", Input).value = str(value)
        used = _TRAIN_FIELDS | {f.name for f in dataclasses.fields(kind.model_config)}
        for name in LABELS:
            self.query_one(f"#f-{name}").disabled = name not in used or name in _NOT_READ.get(task, ())

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        preset = PRESETS[str(event.value)]
        keeps = KINDS[str(self.query_one("#f-task", Select).value)].keeps
        for key, value in preset.items():
            if key in LABELS and key not in keeps:
                self.query_one(f"#f-{key}", Input).value = str(value)
        self._estimate_preset(str(event.value))

    @work(thread=True, exclusive=True, group="estimate")
    def _estimate_preset(self, preset: str) -> None:
        from rnnchat.train.speed import estimate_tokens_per_s

        model_cfg = dataclasses.replace(assemble("lm", preset)[0], vocab_size=80)
        cfg = TrainConfig()
        params = torch_thread.run(lambda: RNNLM(model_cfg).num_parameters())
        self.app.call_from_thread(self._show_estimate, f"{params / 1e6:.2f}M parameters · measuring speed…")
        try:
            tok_s = torch_thread.run(estimate_tokens_per_s, model_cfg, cfg)
            text = f"{params / 1e6:.2f}M parameters · ≈{tok_s:,.0f} chars/s here"
        except Exception as exc:  # noqa: BLE001 - an estimate is optional
            text = f"{params / 1e6:.2f}M parameters (speed unknown: {exc})"
        self.app.call_from_thread(self._show_estimate, text)

    def _show_estimate(self, text: str) -> None:
        self.query_one("#preset-info", Static).update(Text(text))

    # ---- reading the form ----------------------------------------------------------------------

    def read_form(self) -> tuple:
        """(model config, TrainConfig) the form describes; RnnchatError naming the bad field (ConfigError
        names it by its config name: ``phrase`` gives the form's)."""
        values: dict[str, object] = {}
        for name, label, kind in FIELDS:
            if isinstance(kind, tuple):
                values[name] = self.query_one(f"#f-{name}", Select).value
                continue
            raw = self.query_one(f"#f-{name}", Input).value.strip()
            if not raw:
                if name not in LIMITS:
                    raise RnnchatError(f"{label}: a value is needed")
                values[name] = None           # unset: the default, no limit
                continue
            try:
                values[name] = int(raw) if kind == "int" else float(raw)
            except ValueError:
                raise RnnchatError(f"{label}: {raw!r} is not a {'whole ' if kind == 'int' else ''}number") from None
        task = str(values.pop("task"))
        model_fields = {f.name for f in dataclasses.fields(KINDS[task].model_config)}
        # vocab_size is the tokenizer's (a TrainConfig field); the model's is filled in from the tokenizer.
        train = {k: v for k, v in values.items() if k in _TRAIN_FIELDS}
        model = {k: v for k, v in values.items() if k in model_fields and k not in _TRAIN_FIELDS}
        model_cfg, train_cfg = assemble(task, str(self.query_one("#preset", Select).value), model,
                                        {**train, "log_every": 5})
        model_cfg.validate()
        train_cfg.validate()
        return model_cfg, train_cfg

    # ---- actions -------------------------------------------------------------------------------

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#resume")
    def _resume_pressed(self) -> None:
        self.action_resume()

    @on(Button.Pressed, "#stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    def action_start(self) -> None:
        if self.trainer is not None:
            self.notify("Training is already running; stop it first.", severity="warning")
            return
        corpus = self.corpus
        if not corpus:
            self.notify("Choose a corpus first (Corpus tab).", severity="error")
            return
        try:
            model, train = self.read_form()
        except RnnchatError as exc:
            self.notify(neutralise(phrase(exc)), severity="error", markup=False)
            return
        if not train.minutes and not train.max_steps:
            train = dataclasses.replace(train, minutes=DEFAULT_MINUTES)
        from rnnchat.train.loop import Trainer

        try:
            self._begin(Trainer(corpus, model, train))
        except RnnchatError as exc:
            self.notify(neutralise(phrase(exc)), severity="error", markup=False)

    def action_resume(self, run: str | None = None) -> None:
        if self.trainer is not None:
            self.notify("Training is already running.", severity="warning")
            return
        run = run or self.run_name or self.current_run
        if not run:
            self.notify("No run to resume: pick one in the Runs tab.", severity="error")
            return
        from rnnchat.train.loop import Trainer

        overrides = {}
        try:
            _, form = self.read_form()
            overrides = {"minutes": form.minutes or None, "max_steps": form.max_steps or None}
        except RnnchatError:
            pass
        self._begin(Trainer(resume=run, overrides=overrides), run)

    def action_stop(self) -> None:
        if self.trainer is None:
            return
        self.trainer.stop()
        self.query_one("#stop", Button).disabled = True
        self.notify("Stopping: saving a checkpoint…")

    @property
    def training(self) -> bool:
        return self.trainer is not None

    def _begin(self, trainer, run: str | None = None) -> None:
        self.trainer = trainer
        self.post_message(TrainingChanged(True, run))
        self.started = None
        self.last_step = None
        self.last_eval = None
        self.steps_seen = 0
        self.query_one(LossPlot).clear()
        self.query_one("#start", Button).disabled = True
        self.query_one("#resume", Button).disabled = True
        self.query_one("#stop", Button).disabled = False
        self._set_status(Text("preparing the corpus and the model…", style="dim"))
        self.worker = self._run_trainer(trainer)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def _run_trainer(self, trainer) -> None:
        # The worker only waits: the torch work itself runs on the app's one torch thread.
        torch_thread.run(pump, self, "train", trainer.run())

    def _finish(self) -> None:
        self.trainer = None
        self.post_message(TrainingChanged(False))
        self.query_one("#start", Button).disabled = False
        self.query_one("#resume", Button).disabled = False
        self.query_one("#stop", Button).disabled = True

    # ---- events → panels -----------------------------------------------------------------------

    def on_event_batch(self, message: EventBatch) -> None:
        if message.tag != "train":
            return
        message.stop()
        self.updates += 1
        last_step = None
        plot = self.query_one(LossPlot)
        for e in message.events:
            if isinstance(e, ev.Step):
                last_step = e
                plot.add("train", e.step, e.loss)
                self.steps_seen += 1
            elif isinstance(e, ev.Started):
                self._on_started(e)
            elif isinstance(e, ev.Eval):
                plot.add("val", e.step, e.val_loss)
                self.last_eval = e
                if e.distinct1 is not None:
                    self.query_one("#train-sample", Static).border_subtitle = (
                        f"distinct-1 {e.distinct1:.2f} · distinct-2 {e.distinct2:.2f}")
            elif isinstance(e, ev.Sample):
                box = self.query_one("#train-sample", Static)
                box.update(Text(neutralise(e.text)))
                box.border_title = f"sample at step {e.step:,} (same seed each time)"
                if e.longest_copy is not None:
                    box.border_subtitle = (f"longest copy {e.longest_copy} chars · "
                                           f"{100 * e.copied_share:.0f}% of 20-char windows in the training text")
            elif isinstance(e, ev.Warning):
                self.notify(neutralise(e.message), severity="warning", timeout=8)
            elif isinstance(e, ev.Done):
                self._on_done(e)
        if last_step is not None:
            self.last_step = last_step
        if self.last_step is not None:
            self._on_step(self.last_step)

    def on_stream_failed(self, message: StreamFailed) -> None:
        if message.tag != "train":
            return
        message.stop()
        self.notify(neutralise(message.text), severity="error", timeout=10)
        self._set_status(Text(f"stopped: {neutralise(message.text)}", style="red"))
        self._finish()

    def _on_started(self, e: ev.Started) -> None:
        self.started = e
        self.run_name = e.run
        self.post_message(TrainingChanged(True, e.run))
        self.query_one("#train-plot").border_title = f"loss (nats/token) · {neutralise(e.run)}"
        self._set_status(Text(f"{'resuming' if e.resumed else 'training'} {neutralise(e.run)} · "
                              f"{e.parameters:,} params · {e.device} · {e.precision}"))

    def _on_step(self, e: ev.Step) -> None:
        s = self.started
        val = self.last_eval
        val_text = (f"val {val.val_loss:.3f} · {val.bits_per_char:.3f} bits/char" if val else "val –")
        # One row for the run: a long name is cut short rather than push the speed row out of the three.
        width = max(20, self.query_one("#train-status").size.width)
        head = f"{neutralise(s.run)} · {s.device} · {s.precision}" if s else ""
        head = (head if len(head) <= width else head[:width - 1] + "\u2026") + "\n" if s else ""
        self._set_status(Text(
            f"{head}step {e.step:,} · loss {e.loss:.3f} · {val_text}\n"
            f"{e.chars_per_s:,.0f} chars/s · grad norm {e.grad_norm:.2f} · lr {e.lr:.2e}"))
        self.query_one("#train-progress", ProgressBar).update(progress=e.progress * 1000)
        self.query_one("#train-eta", Label).update(f" ETA {clock(e.eta)}")

    def _on_done(self, e: ev.Done) -> None:
        best = f"best {e.best_bits_per_char:.3f} bits/char" if e.best_bits_per_char is not None else "no eval yet"
        words = {"interrupted": "stopped and saved", "time": "time budget reached", "max_steps": "done",
                 "epochs": "done", "stalled": "stopped early (held-out loss stopped improving)", "failed": "failed"}
        self.notify(f"{words.get(e.reason, e.reason)} at step {e.step:,}; {best}",
                    severity="error" if e.reason == "failed" else "information", timeout=8)
        if e.message and e.reason == "failed":
            self.notify(neutralise(e.message), severity="error", timeout=12)
        if e.reason in ("time", "max_steps", "epochs"):
            self.query_one("#train-progress", ProgressBar).update(progress=1000)
        self.query_one("#train-eta", Label).update(f" {words.get(e.reason, e.reason)}")
        self.last_done = e
        self._finish()

    def _set_status(self, text: Text) -> None:
        self.query_one("#train-status", Static).update(text)
