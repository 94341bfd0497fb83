"""What the panes over runs (Generate, Inspect, Chat) share: a picker over one kind of run and what it says
while there is none, loading the chosen run on the torch thread, reading settings from inputs,
notifications, and saving to a new file (``saving.py`` names and writes it)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, TypeVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.events import DescendantFocus, Show
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Select, Static

from rnnchat.config import CHECKPOINTS
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.events import Event
from rnnchat.runs.rundir import RunSummary, list_runs, resolve_run
from rnnchat.safetext import neutralise
from rnnchat.tui import torch_thread
from rnnchat.tui.bridge import StreamFailed, pump
from rnnchat.tui.panes.saving import save_stamped
from rnnchat.tui.torch_thread import RunCache
from rnnchat.tui.widgets.status import StatusLine, describe_lm

if TYPE_CHECKING:
    from rnnchat.runs.opened import OpenedRun

T = TypeVar("T")


class RunPane(Container):
    """A pane over the runs of one kind. Widget ids start with ``PREFIX``: ``#<PREFIX>-run`` is the run
    picker and ``#<PREFIX>-<field>`` the input of a setting."""

    KIND: ClassVar[str]                              # the runs offered: a key of rnnchat.runs.kinds.KINDS
    NOUN: ClassVar[str]                              # what the picker calls one of them ("chat run")
    PREFIX: ClassVar[str]
    EMPTY_MESSAGE: ClassVar[str]                     # what the pane shows in place of its body while it has no run
    NO_RUNS: ClassVar[str]                           # the same in one line, when an action needs a run
    FIELD_LABELS: ClassVar[dict[str, str]] = {}      # config field -> its name in this pane's messages

    BINDINGS: ClassVar[list[BindingType]] = [Binding("f5", "refresh_runs", "Refresh runs", show=False)]

    training: reactive[bool] = reactive(False)
    """Bound to the app's: a trainer holds the torch thread, so loads and samples wait for it."""

    class Notice(Message):
        def __init__(self, text: str, severity: str = "information") -> None:
            super().__init__()
            self.text = text
            self.severity = severity

    class RunLoaded(Message):
        def __init__(self, key: tuple, description: str) -> None:
            super().__init__()
            self.key = key
            self.description = description

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._tag_prefix = f"{self.PREFIX}-{id_of(self)}-"
        self._tag = ""                               # the stream now shown; older tags are ignored
        self._streams = 0                            # streams begun (each names its tag)
        self._option_values: list[str] = []
        self._extra_runs: list[str] = []             # runs opened by path, not under checkpoints/
        self._run_info: dict[tuple, str] = {}        # load key -> one line about the loaded run

    # ---------------------------------------------------------------------- what subclasses give

    @property
    def busy(self) -> bool:
        """Something is streaming (escape stops it)."""
        raise NotImplementedError

    def stop_all(self) -> None:
        """Ask whatever streams to stop (the app calls this when quitting)."""
        raise NotImplementedError

    def _label_parts(self, run: RunSummary) -> list[str]:
        """What the picker says of a run."""
        raise NotImplementedError

    def _offers(self, run: RunSummary) -> bool:
        """Whether the picker offers ``run`` (Inspect offers more than one kind)."""
        return run.kind == self.KIND

    def _selection_changed(self) -> None:
        """Another run is selected in the picker."""
        raise NotImplementedError

    def _load_job(self, *key) -> str:
        """On the torch thread: open the run the load key names; a line describing it."""
        raise NotImplementedError

    def _update_status(self, stopping: bool = False) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ runs

    def on_mount(self) -> None:
        self._refresh_runs()

    def on_unmount(self) -> None:
        self.stop_all()

    @property
    def status_text(self) -> str:
        """The status line as plain text."""
        return self.query_one(StatusLine).text

    @property
    def run_select(self) -> Select:
        return self.query_one(f"#{self.PREFIX}-run", Select)

    def _selected_run(self) -> str | None:
        return self.run_select.selection

    def _chosen_run(self) -> str | None:
        """The selected run for an action; None, after saying what to do, when there is none."""
        run = self._selected_run()
        if run is None:
            self._notify(self.NO_RUNS if not self._option_values else f"choose a {self.NOUN} first", "error")
        return run

    def _refresh_runs(self) -> None:
        """Re-read checkpoints/ (newest first); keeps the selection, selects the newest run when none is."""
        try:
            runs = [r for r in list_runs() if self._offers(r)]
        except OSError as exc:
            self._notify(f"cannot list runs: {exc}", "error")
            runs = []
        options = [(one_line(" \u00b7 ".join(self._label_parts(r))), r.name) for r in runs]
        names = {r.name for r in runs}
        for extra in self._extra_runs:
            if extra not in names:
                options.append((one_line(f"{Path(extra).name} \u00b7 {extra}"), extra))
        select = self.run_select
        values = [v for _, v in options]
        current = select.selection
        if values != self._option_values:
            self._option_values = values
            with select.prevent(Select.Changed):
                select.set_options(options)
                if current in values:
                    select.value = current
        self.set_class(not options, "-empty")
        select.prompt = f"choose a {self.NOUN}" if options else f"no {self.NOUN}s"
        if select.selection is None and options:
            with select.prevent(Select.Changed):
                select.value = options[0][1]
            self._selection_changed()
        self._update_status()

    def _list_run(self, name: str) -> bool:
        """Make ``name`` (a run under checkpoints/ or a path to a run directory) one of the picker's
        options; False, after saying why, when it is no run."""
        if name not in self._option_values:
            self._refresh_runs()
        if name not in self._option_values:
            try:
                resolve_run(name)
            except RnnchatError as exc:
                self._notify(self._phrase(exc), "error")
                return False
            self._extra_runs.append(name)
            self._refresh_runs()
        return True

    @on(Select.Changed)
    def _run_selected(self, event: Select.Changed) -> None:
        if event.select.id == f"{self.PREFIX}-run":
            event.stop()
            self._selection_changed()

    def on_show(self, event: Show) -> None:
        self._refresh_runs()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if event.widget is self.run_select:
            self._refresh_runs()

    def action_refresh_runs(self) -> None:
        self._refresh_runs()
        self._notify(f"{len(self._option_values)} {self.NOUN}(s) found")

    # ---------------------------------------------------------------------------------- loading

    def _load(self, key: tuple) -> None:
        """Open a run in the background; ``RunLoaded`` tells the status line about it."""
        self.run_worker(partial(self._load_worker, key), thread=True, exclusive=True,
                        group=f"{self.PREFIX}-load", exit_on_error=False)

    def _load_worker(self, key: tuple) -> None:
        run = key[0]
        description = torch_job(self.post_message, self._phrase, partial(self._load_job, *key), f"open run {run!r}")
        self.post_message(self.RunLoaded(key, description if description is not None else
                                         f"{Path(run).name} \u00b7 could not be opened"))

    @on(RunLoaded)
    def _run_loaded(self, message: RunLoaded) -> None:
        message.stop()
        self._run_info[message.key] = message.description
        self._update_status()

    # ---------------------------------------------------------------------- streams and messages

    def _stream_worker(self, tag: str, job: Callable[[], Iterable[Event] | None], then: Message | None = None) -> None:
        """In a thread worker: ``job`` on the torch thread, the events it returns pumped to this pane as
        ``tag``; a failure is a ``StreamFailed``. ``then`` is posted after the job returned."""
        def on_torch_thread() -> None:
            try:
                events = job()
            except RnnchatError as exc:
                self.post_message(StreamFailed(tag, self._phrase(exc)))
                return
            if events is not None:
                pump(self, tag, events)

        try:
            torch_thread.run(on_torch_thread)
        except Exception as exc:  # noqa: BLE001 - a bug, or the pane went away while this waited
            self.post_message(StreamFailed(tag, f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            if then is not None:
                self.post_message(then)

    def _new_tag(self) -> str:
        """Begin a stream: its tag is now the one shown."""
        self._streams += 1
        self._tag = f"{self._tag_prefix}{self._streams}"
        return self._tag

    def _claim(self, tag: str, message: Message) -> bool:
        """Whether a stream message is for the stream now shown (stopping it when it is this pane's)."""
        if not tag.startswith(self._tag_prefix):
            return False
        message.stop()
        return tag == self._tag

    @on(Notice)
    def _notice(self, message: Notice) -> None:
        message.stop()
        self._notify(message.text, message.severity)

    def _notify(self, text: str, severity: str = "information") -> None:
        self.notify(neutralise(text), severity=severity, markup=False)  # type: ignore[arg-type]

    def noted(self, opened: OpenedRun) -> OpenedRun:
        """``opened``, having said (a warning notification) when its checkpoint failed its check and the
        previous copy was loaded: never silently. Safe from the torch thread."""
        if opened.note:
            self.post_message(self.Notice(opened.note, "warning"))
        return opened

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.busy             # escape is left to others when nothing streams
        return True

    # --------------------------------------------------------------------------------- settings

    def _checked(self, read: Callable[[], T]) -> T | None:
        """What ``read()`` gives (settings, read and validated), or None after saying what is wrong."""
        try:
            return read()
        except RnnchatError as exc:
            self._notify(self._phrase(exc), "error")
            return None

    def _field(self, field: str, kind: type):
        """The value of a setting's input as ``kind``; ConfigError naming the field when it is not one."""
        raw = self.query_one(f"#{self.PREFIX}-{field.replace('_', '-')}", Input).value.strip()
        try:
            return kind(raw)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise ConfigError(f"must be {noun}; got {raw!r}", field) from None

    def _phrase(self, exc: BaseException) -> str:
        """An error as one sentence, a setting called what this pane calls it."""
        if isinstance(exc, ConfigError) and exc.field:
            return exc.phrased(self.FIELD_LABELS.get(exc.field, exc.field.replace("_", " ")))
        return str(exc)

    # ---------------------------------------------------------------------------------- saving

    def _save(self, folder: Path, name: str, suffix: str, text: str, what: str) -> Path | None:
        """Write ``text`` to a new file folder/<name>-<date>-<time><suffix>; None, after saying that it
        cannot ``what``, when the file cannot be written."""
        try:
            return save_stamped(folder, name, suffix, text)
        except OSError as exc:
            self._notify(f"cannot {what}: {exc}", "error")
            return None


class LMRunPane(RunPane):
    """A pane that opens language-model runs, with a best/last checkpoint picker (``#PREFIX-which``):
    Generate and Inspect. Subclasses create ``self._opened = RunCache()`` and the two selects."""

    EMPTY_MESSAGE = NO_RUNS = "No trained runs yet \u2014 train one in the Train tab"

    _opened: RunCache[OpenedRun]

    def _empty_state(self) -> Static:
        return Static(Text(self.EMPTY_MESSAGE), id=f"{self.PREFIX}-empty", classes="empty-state", markup=False)

    def _run_status(self, run: str | None) -> str:
        """The status line's part about the selected run: what loading it found (until then, that it loads);
        with none selected, that there are none or to choose one."""
        if run is None:
            return self.EMPTY_MESSAGE if not self._option_values else "choose a run"
        return self._run_info.get((run, self._selected_which())) or f"{Path(run).name} \u00b7 loading\u2026"

    def _selected_which(self) -> str:
        return self.query_one(f"#{self.PREFIX}-which", Select).selection or CHECKPOINTS[0]

    def _label_parts(self, run: RunSummary) -> list[str]:
        parts = [run.name, run.level, f"step {run.step:,}"]
        if isinstance(run.best_bits_per_char, (int, float)):
            parts.append(f"{run.best_bits_per_char:.2f} bpc")
        return parts

    def open_run(self, name: str, which: str = CHECKPOINTS[0]) -> None:
        """Select a run (a name under checkpoints/ or a path to a run directory) and load it."""
        if which not in CHECKPOINTS:
            self._notify(f"checkpoint must be 'best' or 'last'; got {which!r}", "error")
            return
        if not self._list_run(name):
            return
        with self.prevent(Select.Changed):
            self.query_one(f"#{self.PREFIX}-which", Select).value = which
            self.run_select.value = name
        self._preload()

    def _selection_changed(self) -> None:
        self._preload()

    @on(Select.Changed)
    def _which_selected(self, event: Select.Changed) -> None:
        if event.select.id == f"{self.PREFIX}-which":
            event.stop()
            self._preload()

    def _preload(self) -> None:
        run = self._selected_run()
        if run is not None:
            self._load((run, self._selected_which()))
        self._update_status()

    def _load_job(self, run: str, which: str) -> str:
        opened = self._open(run, which)
        return describe_lm(opened.name, opened.which, opened.meta)

    def _open(self, run: str, which: str) -> OpenedRun:
        """On the torch thread: the opened run, loaded again only when its checkpoints changed on disk."""
        from rnnchat.runs.opened import open_language_model

        return self._opened.get(run, lambda: self.noted(open_language_model(run, which)), which)[0]


def torch_job(post: Callable[[Message], None], phrase: Callable[[BaseException], str], job: Callable[[], T],
              doing: str) -> T | None:
    """In a thread worker: what ``job()`` returns on the torch thread; None, after posting a notice of why,
    when it fails (an unexpected error reads "cannot <doing>: ...")."""
    try:
        return torch_thread.run(job)
    except Exception as exc:  # noqa: BLE001 - a broken run or a bug must not take the app down
        post(RunPane.Notice(phrase(exc) if isinstance(exc, RnnchatError) else
                            f"cannot {doing}: {type(exc).__name__}: {exc}", "error"))
        return None


def unknown_notice(count: int, what: str) -> RunPane.Notice:
    """The warning that ``count`` characters of ``what`` ("the prompt") were read as <unk>."""
    return RunPane.Notice(f"{count} character(s) of {what} are unknown to the model and were read as <unk>",
                          "warning")


def id_of(obj: object) -> str:
    return format(id(obj), "x")


def one_line(text: str) -> Text:
    """``text`` made safe to show, on one line that ends in an ellipsis when it is cut."""
    return Text(neutralise(text), no_wrap=True, overflow="ellipsis")
