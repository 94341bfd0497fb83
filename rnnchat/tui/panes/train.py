"""The Train tab: the settings form (widgets/train_form.py) and live panels fed by the trainer's event stream."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Button, Label, ProgressBar, Static

from rnnchat import events as ev
from rnnchat.config import DEFAULT_MINUTES
from rnnchat.errors import RnnchatError
from rnnchat.formatting import clock
from rnnchat.runs.kinds import INHERITED
from rnnchat.safetext import neutralise
from rnnchat.tui import torch_thread
from rnnchat.tui.bridge import EventBatch, StreamFailed, pump
from rnnchat.tui.messages import TrainingChanged
from rnnchat.tui.widgets.plot import LossPlot
from rnnchat.tui.widgets.train_form import TrainForm, phrase


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
        self._waiting: tuple | None = None    # (action, args) asked for before torch had loaded

    # ---- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield TrainForm(id="train-form")
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

    def on_show(self) -> None:
        self.query_one(TrainForm).tab_shown()

    def read_form(self) -> tuple:
        """(model config, TrainConfig) the form describes (``TrainForm.read_form``)."""
        return self.query_one(TrainForm).read_form()

    def watch_corpus(self, name: str | None) -> None:
        self.query_one("#train-corpus", Static).update(Text(f"corpus: {neutralise(name or '(none)')}"))

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

    def torch_loaded(self) -> None:
        """Torch has loaded (the app's first job): the form's auto row, and a Start or Resume that waited."""
        self.query_one(TrainForm).torch_loaded()
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting[0](*waiting[1])

    def _wait_for_torch(self, action, *args) -> bool:
        """True (and ``action`` kept for ``torch_loaded``) while torch is still loading: a trainer's imports
        would otherwise hold the UI thread until it has."""
        if torch_thread.loaded():
            return False
        self._waiting = (action, args)
        self.notify("Loading PyTorch: training starts as soon as it has loaded.", markup=False)
        return True

    def action_start(self) -> None:
        if self._wait_for_torch(self.action_start):
            return
        if self.trainer is not None:
            self.notify("Training is already running; stop it first.", severity="warning", markup=False)
            return
        corpus = self.corpus
        if not corpus:
            self.notify("Choose a corpus first (Corpus tab).", severity="error", markup=False)
            return
        try:
            model, train, note = self.query_one(TrainForm).read_plan()
        except RnnchatError as exc:
            self.notify(neutralise(phrase(exc)), severity="error", markup=False)
            return
        if not train.minutes and not train.max_steps:
            train = dataclasses.replace(train, minutes=DEFAULT_MINUTES)
        from rnnchat.train.loop import Trainer

        try:
            form = self.query_one(TrainForm)
            start = form.start_from()
            given = form.set_by_hand() - (set(INHERITED) if start else set())
            self._begin(Trainer(corpus, model, train, preset_note="" if start else note, given=given,
                                init_from=start))
        except RnnchatError as exc:
            self.notify(neutralise(phrase(exc)), severity="error", markup=False)

    def action_resume(self, run: str | None = None) -> None:
        if self._wait_for_torch(self.action_resume, run):
            return
        if self.trainer is not None:
            self.notify("Training is already running.", severity="warning", markup=False)
            return
        run = run or self.run_name or self.current_run
        if not run:
            self.notify("No run to resume: pick one in the Runs tab.", severity="error", markup=False)
            return
        from rnnchat.train.loop import Trainer

        try:                    # the run keeps its own limits unless the form's were changed
            overrides = self.query_one(TrainForm).edited_limits()
            trainer = Trainer(resume=run, overrides=overrides)
        except RnnchatError as exc:
            self.notify(neutralise(phrase(exc)), severity="error", markup=False)
            return
        self._begin(trainer, run)

    def action_stop(self) -> None:
        if self.trainer is None:
            return
        self.trainer.stop()
        self.query_one("#stop", Button).disabled = True
        self.notify("Stopping: saving a checkpoint…", markup=False)

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
                self.notify(neutralise(e.message), severity="warning", timeout=8, markup=False)
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
        self.notify(neutralise(message.text), severity="error", timeout=10, markup=False)
        self._set_status(Text(f"stopped: {neutralise(message.text)}", style="red"))
        self._finish()

    def _on_started(self, e: ev.Started) -> None:
        self.started = e
        self.run_name = e.run
        self.post_message(TrainingChanged(True, e.run))
        self.query_one("#train-plot").border_title = f"loss (nats/token) · {neutralise(e.run)}"
        self._set_status(Text(f"{'resuming' if e.resumed else 'training'} {neutralise(e.run)} · "
                              f"{e.parameters:,} params · {e.device} · {e.precision}"))
        if e.preset and not e.resumed:
            self.notify(neutralise(e.preset), timeout=8, markup=False)

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
        self.notify(f"{words.get(e.reason, e.reason)} at step {e.step:,}; {best}", markup=False,
                    severity="error" if e.reason == "failed" else "information", timeout=8)
        if e.message and e.reason == "failed":
            self.notify(neutralise(e.message), severity="error", timeout=12, markup=False)
        if e.reason in ("time", "max_steps", "epochs"):
            self.query_one("#train-progress", ProgressBar).update(progress=1000)
        self.query_one("#train-eta", Label).update(f" {words.get(e.reason, e.reason)}")
        self.last_done = e
        self._finish()

    def _set_status(self, text: Text) -> None:
        self.query_one("#train-status", Static).update(text)
