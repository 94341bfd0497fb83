"""The rnnchat app: tabs for Corpus, Train, Generate, Runs, Chat, Inspect and Classify; the panes do the work."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

from textual.app import App, ComposeResult
from textual.command import Hit, Hits, Provider
from textual.reactive import reactive
from textual.widgets import Footer, Header, TabbedContent, TabPane

from rnnchat.errors import CheckpointError
from rnnchat.runs.kinds import kind_named
from rnnchat.runs.rundir import list_runs
from rnnchat.safetext import neutralise
from rnnchat.text.load import list_corpora
from rnnchat.tui import torch_thread
from rnnchat.tui.messages import CorpusChosen, OpenRun, ResumeRun, TrainingChanged
from rnnchat.tui.panes.base import RunPane
from rnnchat.tui.panes.chat import ChatPane
from rnnchat.tui.panes.classify import ClassifyPane
from rnnchat.tui.panes.corpus import CorpusPane
from rnnchat.tui.panes.generate.pane import GeneratePane
from rnnchat.tui.panes.inspect.pane import InspectPane
from rnnchat.tui.panes.runs import RunsPane
from rnnchat.tui.panes.train import TrainPane
from rnnchat.tui.widgets.confirm import ConfirmScreen

TABS = ("corpus", "train", "generate", "runs", "chat", "inspect", "classify")
# What the panes' torch jobs import: loaded on the torch thread once the first screen is drawn (torch alone
# is 2 s of a 2.6 s start on a 2-core CPU), so that no job or handler imports them on the UI thread.
ENGINE_MODULES = ("torch", "rnnchat.runs.opened", "rnnchat.lm.generate", "rnnchat.chat.session",
                  "rnnchat.runs.retrieval", "rnnchat.classify.predict", "rnnchat.runs.inspection",
                  "rnnchat.runs.warmstart", "rnnchat.train.loop", "rnnchat.train.speed")


class RnnchatCommands(Provider):
    """The main actions and every corpus and run, in the command palette (ctrl+p)."""

    async def search(self, query: str) -> Hits:
        app = self.app
        matcher = self.matcher(query)
        commands = [
            ("Start training", app.action_start_training, "train on the current corpus with the form's settings"),
            ("Stop training", app.action_stop_training, "save a checkpoint and stop"),
            ("Generate", app.action_generate, "stream text from the current run"),
        ] + [(f"Go to {t.title()}", partial(app.action_show_tab, t), "") for t in TABS]
        for entry in list_corpora():
            commands.append((f"Corpus: {entry.name}", partial(app.choose_corpus, entry.path or entry.name),
                             f"{entry.kind}"))
        for run in list_runs():
            pane = app.pane_for(run.kind)
            if pane is not None:
                commands.append((f"Open {pane.NOUN}: {run.name}", partial(app.open_run, run.name, run.kind),
                                 run.corpus))
        for text, callback, help_text in commands:
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


class RnnchatApp(App):
    CSS_PATH = Path(__file__).parent / "rnnchat.tcss"   # absolute, so subclasses elsewhere find it
    TITLE = "rnnchat"
    SUB_TITLE = "recurrent language models, trained on your text"
    COMMANDS = App.COMMANDS | {RnnchatCommands}
    BINDINGS = [
        ("ctrl+q", "quit", "Quit"),
        ("ctrl+t", "start_training", "Train"),
        ("ctrl+x", "stop_training", "Stop training"),
        *[(str(i + 1), f"show_tab('{t}')", t.title()) for i, t in enumerate(TABS)],
    ]

    current_corpus: reactive[str | None] = reactive("shakespeare")
    current_run: reactive[str | None] = reactive(None)
    """The language model Generate shows (and Resume continues when the Train tab has none)."""
    training: reactive[bool] = reactive(False)
    training_run: reactive[str | None] = reactive(None)
    """The run being trained, once its name is known."""

    def compose(self) -> ComposeResult:
        torch_thread.hold()          # until the first screen is drawn (on_mount: _load_engine)
        yield Header()
        with TabbedContent(initial="corpus"):
            with TabPane("1 Corpus", id="corpus"):
                yield CorpusPane(self.current_corpus)
            with TabPane("2 Train", id="train"):
                self.train_pane = TrainPane().data_bind(corpus=RnnchatApp.current_corpus,
                                                        current_run=RnnchatApp.current_run)
                yield self.train_pane
            with TabPane("3 Generate", id="generate"):
                self.generate_pane = GeneratePane().data_bind(RnnchatApp.current_run, RnnchatApp.training)
                yield self.generate_pane
            with TabPane("4 Runs", id="runs"):
                yield RunsPane().data_bind(RnnchatApp.training_run)
            with TabPane("5 Chat", id="chat"):
                self.chat_pane = ChatPane().data_bind(RnnchatApp.training)
                yield self.chat_pane
            with TabPane("6 Inspect", id="inspect"):
                self.inspect_pane = InspectPane().data_bind(RnnchatApp.training)
                yield self.inspect_pane
            with TabPane("7 Classify", id="classify"):    # the id is the classifier kind's command (pane_for)
                self.classify_pane = ClassifyPane().data_bind(RnnchatApp.training)
                yield self.classify_pane
        yield Footer()

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every notification of the app, a pane's or a widget's: shown literally (sanitised, markup off), since
        most carry a path, a run name, corpus text or an error message, and '[/b]' in one must show as itself."""
        kwargs = {} if timeout is None else {"timeout": timeout}
        super().notify(neutralise(str(message)), title=neutralise(str(title)), severity=severity, markup=False,
                       **kwargs)

    def on_mount(self) -> None:
        runs = [r for r in list_runs() if r.kind == GeneratePane.KIND]   # chat runs open in Chat
        if runs:
            self.current_run = runs[0].name
        self.sub_title = f"{self.SUB_TITLE} · loading PyTorch…"
        self.call_after_refresh(self._load_engine)

    def _load_engine(self) -> None:
        """Torch and the engine's modules imported on the torch thread, its first job; the header is told when
        done. Not from a thread worker: panes' workers waiting for the torch thread can fill Textual's worker
        threads, and a worker queued behind them would never release the jobs they wait for."""
        torch_thread.load(ENGINE_MODULES).add_done_callback(self._engine_done)

    def _engine_done(self, future) -> None:
        """Once the load has ended: on the torch thread, or on this one when it ended before the callback was set."""
        exc = future.exception()
        if exc is not None:        # a broken torch install is said, not a traceback
            call, args = self.notify, (f"PyTorch could not be loaded: {type(exc).__name__}: {exc}",)
            kwargs = {"severity": "error", "timeout": 30}
        else:
            call, args, kwargs = self._engine_loaded, (future.result(),), {}
        if threading.get_ident() == self._thread_id:
            call(*args, **kwargs)
            return
        try:
            self.call_from_thread(call, *args, **kwargs)
        except RuntimeError:       # the app closed meanwhile
            pass

    def _engine_loaded(self, device: str) -> None:
        self.sub_title = f"{self.SUB_TITLE} · {device}"
        self.train_pane.torch_loaded()

    # ---- navigation ----------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        focused, old = self.focused, tabs.active_pane
        if tabs.active != tab and focused is not None and old is not None and old in focused.ancestors:
            # A focused widget in the pane being hidden would hand focus to a sibling in that same
            # pane (Textual's blur on hide), and TabbedContent would switch straight back to it.
            self.screen.set_focus(None)
        tabs.active = tab
        if tab == "runs":
            self.query_one(RunsPane).action_refresh()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "runs":
            self.query_one(RunsPane).action_refresh()
            self.query_one(RunsPane).query_one("DataTable").focus()
        elif event.pane.id == "generate":
            self.generate_pane.action_focus_prompt()  # so the pane's keys work at once
        elif event.pane.id == "chat":
            self.chat_pane.focus_input()
        elif event.pane.id == "inspect":
            self.inspect_pane.action_focus_text()
        elif event.pane.id == "classify":
            self.classify_pane.action_focus_text()

    def choose_corpus(self, spec: str) -> None:
        self.action_show_tab("corpus")
        self.query_one(CorpusPane).select(spec)

    def pane_for(self, kind: str) -> RunPane | None:
        """The pane that opens runs of ``kind``: the one in the tab named by the kind's command."""
        try:
            tab = kind_named(kind).command
        except CheckpointError:
            return None
        return next((p for p in self.query(RunPane) if p.parent is not None and p.parent.id == tab), None)

    def open_run(self, run: str, kind: str) -> None:
        pane = self.pane_for(kind)
        if pane is None:
            self.notify(f"cannot open {run}: unknown model kind {kind!r}", severity="error", markup=False)
            return
        if pane is self.generate_pane:
            self.current_run = run
        self.action_show_tab(pane.parent.id)
        pane.open_run(run)

    def on_open_run(self, message: OpenRun) -> None:
        self.open_run(message.run, message.kind)

    def on_resume_run(self, message: ResumeRun) -> None:
        self.action_show_tab("train")
        self.train_pane.action_resume(message.run)

    def on_corpus_chosen(self, message: CorpusChosen) -> None:
        self.current_corpus = message.spec

    def on_training_changed(self, message: TrainingChanged) -> None:
        self.training = message.active
        self.training_run = message.run if message.active else None
        if message.active and message.run:
            self.current_run = message.run

    # ---- actions -------------------------------------------------------------------------------

    def action_start_training(self) -> None:
        self.action_show_tab("train")
        self.train_pane.action_start()

    def action_stop_training(self) -> None:
        self.train_pane.action_stop()

    def action_generate(self) -> None:
        self.action_show_tab("generate")
        self.generate_pane.action_generate()

    async def action_quit(self) -> None:
        pane = self.train_pane
        if not pane.training:
            self._stop_sampling()
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify("Saving a checkpoint before quitting…")
                pane.trainer.stop()
                self._stop_sampling()
                self.run_worker(self._exit_after_training(pane), group="quit")

        self.push_screen(ConfirmScreen("Training is running. Stop it, save a checkpoint and quit?",
                                       yes="Save and quit", no="Keep training"), answered)

    async def _exit_after_training(self, pane: TrainPane) -> None:
        worker = pane.worker
        if worker is not None:
            try:
                await worker.wait()
            except Exception:  # noqa: BLE001 - the pane has already reported the failure
                pass
        self.exit()

    def on_unmount(self) -> None:
        """However the app ends, a running trainer is told to save and stop: no thread trains on."""
        torch_thread.release()      # jobs queued by an app that closed before its first screen do not wait
        pane = self.train_pane
        if pane.training:
            pane.trainer.stop()
        self._stop_sampling()

    def _stop_sampling(self) -> None:
        for pane in (self.generate_pane, self.chat_pane):
            pane.stop_all()


def run_app() -> int:
    """Run the app; its exit status is non-zero when it ended on an error (Textual prints it)."""
    app = RnnchatApp()
    app.run()
    return app.return_code or 0
