"""The rnnchat app: tabs for Corpus, Train, Generate, Runs, Chat, Inspect and Classify; the panes do the work."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

from textual.app import App, ComposeResult
from textual.command import Hit, Hits, Provider
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Footer, Header, TabbedContent

from rnnchat.errors import CheckpointError
from rnnchat.runs.kinds import kind_named
from rnnchat.runs.rundir import list_runs
from rnnchat.safetext import neutralise
from rnnchat.text.load import list_corpora
from rnnchat.tui import torch_thread
from rnnchat.tui.messages import CorpusChosen, OpenRun, ResumeRun, TrainingChanged
from rnnchat.tui.tabs import TABS, PaneTab, pane_class
from rnnchat.tui.widgets.confirm import ConfirmScreen

# What each pane follows of the app's state (data_bind): the pane's reactive -> the app's.
FOLLOWS = {"train": {"corpus": "current_corpus", "current_run": "current_run"},
           "generate": {"current_run": "current_run", "training": "training"},
           "runs": {"training_run": "training_run"}, "chat": {"training": "training"},
           "inspect": {"training": "training"}, "classify": {"training": "training"}}
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
            tab = app.tab_for(run.kind)
            if tab is not None:
                commands.append((f"Open {pane_class(tab).NOUN}: {run.name}",
                                 partial(app.open_run, run.name, run.kind), run.corpus))
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
        # Only the Corpus tab's pane is made now; each other tab's when it is first wanted (tabs.py).
        self._tabs = {tab: PaneTab(tab, self._make_pane, first=tab == "corpus") for tab in TABS}
        with TabbedContent(initial="corpus"):
            yield from self._tabs.values()
        yield Footer()

    def _make_pane(self, tab: str, cls: type[Widget]) -> Widget:
        with self._context():        # data_bind binds to the active message pump's reactives: the app's
            if tab == "corpus":
                return cls(self.current_corpus)
            return cls().data_bind(**{mine: getattr(RnnchatApp, its) for mine, its in FOLLOWS[tab].items()})

    def built(self, tab: str) -> Widget | None:
        """The pane of ``tab`` if it has been made (it may still be composing), else None."""
        return self._tabs[tab].pane

    async def pane(self, tab: str) -> Widget:
        """The pane of ``tab``, made and mounted first if the tab was never shown."""
        return await self._tabs[tab].build()

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every notification of the app, a pane's or a widget's: shown literally (sanitised, markup off), since
        most carry a path, a run name, corpus text or an error message, and '[/b]' in one must show as itself."""
        kwargs = {} if timeout is None else {"timeout": timeout}
        super().notify(neutralise(str(message)), title=neutralise(str(title)), severity=severity, markup=False,
                       **kwargs)

    def on_mount(self) -> None:
        runs = [r for r in list_runs() if r.kind == "lm"]   # Generate's; chat runs open in Chat
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
            self.call_later(call, *args, **kwargs)
            return
        try:
            self.call_from_thread(call, *args, **kwargs)
        except RuntimeError:       # the app closed meanwhile
            pass

    async def _engine_loaded(self, device: str) -> None:
        self.sub_title = f"{self.SUB_TITLE} · {device}"
        if self.built("train") is not None:     # a Train pane made later finds torch loaded
            (await self.pane("train")).torch_loaded()

    # ---- navigation ----------------------------------------------------------------------------

    async def action_show_tab(self, tab: str) -> None:
        pane = await self.pane(tab)
        tabs = self.query_one(TabbedContent)
        focused, old, changed = self.focused, tabs.active_pane, tabs.active != tab
        if changed and focused is not None and old is not None and old in focused.ancestors:
            # A focused widget in the pane being hidden would hand focus to a sibling in that same
            # pane (Textual's blur on hide), and TabbedContent would switch straight back to it.
            self.screen.set_focus(None)
        tabs.active = tab
        if tab == "runs":
            pane.action_refresh()
        if changed:
            # Now, not only on TabActivated: keys typed right after the tab's key are already queued before it.
            self._focus_pane(tab, pane)

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id
        pane = await self.pane(tab)          # a tab clicked for the first time is built here
        if tab == "runs":
            pane.action_refresh()
        self._focus_pane(tab, pane)

    @staticmethod
    def _focus_pane(tab: str, pane: Widget) -> None:
        """Focus where a shown tab's keys belong, so typing at once lands there."""
        if tab == "runs":
            pane.query_one("DataTable").focus()
        elif tab == "generate":
            pane.action_focus_prompt()
        elif tab == "chat":
            pane.focus_input()
        elif tab in ("inspect", "classify"):
            pane.action_focus_text()

    async def choose_corpus(self, spec: str) -> None:
        await self.action_show_tab("corpus")
        self.built("corpus").select(spec)

    def tab_for(self, kind: str) -> str | None:
        """The tab that opens runs of ``kind``: the one named by the kind's command; None for no kind."""
        try:
            tab = kind_named(kind).command
        except CheckpointError:
            return None
        return tab if tab in TABS else None

    async def open_run(self, run: str, kind: str) -> None:
        tab = self.tab_for(kind)
        if tab is None:
            self.notify(f"cannot open {run}: unknown model kind {kind!r}", severity="error", markup=False)
            return
        if tab == "generate":
            self.current_run = run
        await self.action_show_tab(tab)
        self.built(tab).open_run(run)

    async def on_open_run(self, message: OpenRun) -> None:
        await self.open_run(message.run, message.kind)

    async def on_resume_run(self, message: ResumeRun) -> None:
        await self.action_show_tab("train")
        self.built("train").action_resume(message.run)

    def on_corpus_chosen(self, message: CorpusChosen) -> None:
        self.current_corpus = message.spec

    def on_training_changed(self, message: TrainingChanged) -> None:
        self.training = message.active
        self.training_run = message.run if message.active else None
        if message.active and message.run:
            self.current_run = message.run

    # ---- actions -------------------------------------------------------------------------------

    async def action_start_training(self) -> None:
        await self.action_show_tab("train")
        self.built("train").action_start()

    def action_stop_training(self) -> None:
        pane = self.built("train")
        if pane is not None:                 # no Train pane, no training
            pane.action_stop()

    async def action_generate(self) -> None:
        await self.action_show_tab("generate")
        self.built("generate").action_generate()

    async def action_quit(self) -> None:
        pane = self.built("train")
        if pane is None or not pane.training:
            self._stop_sampling()
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify("Saving a checkpoint before quitting…", markup=False)
                pane.trainer.stop()
                self._stop_sampling()
                self.run_worker(self._exit_after_training(pane), group="quit")

        self.push_screen(ConfirmScreen("Training is running. Stop it, save a checkpoint and quit?",
                                       yes="Save and quit", no="Keep training"), answered)

    async def _exit_after_training(self, pane: Widget) -> None:
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
        pane = self.built("train")
        if pane is not None and pane.training:
            pane.trainer.stop()
        self._stop_sampling()

    def _stop_sampling(self) -> None:
        for tab in ("generate", "chat"):
            pane = self.built(tab)
            if pane is not None:
                pane.stop_all()


def run_app() -> int:
    """Run the app; its exit status is non-zero when it ended on an error (Textual prints it)."""
    app = RnnchatApp()
    app.run()
    return app.return_code or 0
