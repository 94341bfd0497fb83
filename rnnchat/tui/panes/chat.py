"""The Chat tab: talk to a chat run (a seq2seq model trained with ``--task chat``).

Layout (sizes in the chat section of ``rnnchat.tcss``): a one-row toolbar (run, temperature, beam
width, rerank, max length), the message list (``ChatLog``: yours on the right, the model's on the
left), the message input and a status line. Only chat runs are offered; with none, the pane says how
to train one.

Keys: enter sends; while a reply streams, enter is ignored (the text stays in the input, a
notification says why) and escape stops the reply, which stays as far as it got, marked [stopped];
ctrl+n starts a new chat; ctrl+e exports the conversation as Markdown to the working directory.
Changing the temperature while a reply streams changes it for the rest of that reply.

Characters of a message that the model does not know are read as <unk> by the model, underlined in
the message and named in one notification per message; nothing in a message can break the display.

Threads: the pane holds one ``ChatSession``, created, reset and replying only on the app's torch
thread (see ``rnnchat.tui.torch_thread``; export reads its history between replies): a thread worker
hands it the load, and each reply job runs ``session.reply`` there under ``pump``, which posts
``EventBatch`` messages ~4 times a second. Jobs run in order, so a "new chat" reset queued after a
reply always lands after that reply joined the history. The worker posts ``_ReplyEnded`` after the job
returned, i.e. after the history holds the exchange, so an export after a reply always includes it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.events import DescendantFocus, Show
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from rnnchat import events as ev
from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.session import ChatSession
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.runs.checkpoints import list_runs, resolve_run
from rnnchat.safetext import neutralise
from rnnchat.stream import LiveControls
from rnnchat.tui import torch_thread
from rnnchat.tui.bridge import EventBatch, StreamFailed, pump
from rnnchat.tui.widgets.chatlog import ChatLog, ChatMessage

__all__ = ["ChatPane", "EMPTY_MESSAGE"]

TRAIN_COMMAND = "rnnchat train dialogues --task chat"
EMPTY_MESSAGE = ("No chat runs yet.\n\n"
                 "A chat run is a model trained on prompt / reply pairs. Train one with\n\n"
                 f"{TRAIN_COMMAND}\n\n"
                 "and it appears here (F5 looks again).")
_DEFAULTS = DecodeConfig()


class _Notice(Message):
    def __init__(self, text: str, severity: str = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity


class _RunLoaded(Message):
    def __init__(self, run: str, description: str) -> None:
        super().__init__()
        self.run = run
        self.description = description


class _Unknown(Message):
    """Characters of the user's message that the model does not know (read as <unk>)."""

    def __init__(self, tag: str, chars: list[str]) -> None:
        super().__init__()
        self.tag = tag
        self.chars = chars


class _ReplyEnded(Message):
    """The reply job returned: the exchange is in the session's history."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag


def _ui_message(exc: BaseException | str) -> str:
    """An error sentence for a notification: the command-line '--name' spelling becomes 'name'."""
    return re.sub(r"(?<![\w-])--(?=[a-z])", "", str(exc))


class ChatPane(Container):
    """Chat with a chat run (see the module docstring)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop reply"),
        Binding("ctrl+n", "new_chat", "New chat", priority=True),
        Binding("ctrl+e", "export", "Export .md", priority=True),    # the input's ctrl+e (end) gives way
        Binding("f5", "refresh_runs", "Refresh runs", show=False),
    ]

    def __init__(self, *, name: str | None = None, id: str | None = "chat-pane",
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._tag_prefix = f"chat-{_id(self):x}-"     # ``id`` is the widget id here
        self._n = 0
        self._tag = ""
        self._controls: LiveControls | None = None
        self._abandon: set[str] = set()           # tags of replies whose conversation has ended
        self._done: ev.SampleDone | None = None
        self._failed = ""
        self._cfg = _DEFAULTS
        self._option_values: list[str] = []
        self._extra_runs: list[str] = []
        self._run_info: dict[str, str] = {}
        self._shown = False
        self._loaded_for: str | None = None     # the run a load was last asked for
        self._session: ChatSession | None = None  # torch thread only (export reads its history)
        self._session_key: tuple | None = None
        self._bot: ChatMessage | None = None
        self._user: ChatMessage | None = None
        self.conversation_run: str | None = None
        """The run the conversation in the log is with."""
        self.state = "idle"
        """idle, waiting (the job is queued or loading) or streaming."""
        self.status_text = ""
        self.exported_path: Path | None = None
        """Where ctrl+e last wrote the transcript."""

    # ------------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(classes="chat-bar", id="chat-bar"):
            yield Label("Run", classes="chat-label")
            yield Select([], prompt="choose a chat run", id="chat-run", compact=True)
            yield Label("T", classes="chat-label")
            yield Input(f"{_DEFAULTS.temperature:g}", id="chat-temperature", compact=True, type="number",
                        tooltip="temperature: 0 is greedy; changes a streaming reply at once")
            yield Label("Beam", classes="chat-label")
            yield Input(str(_DEFAULTS.beam), id="chat-beam", compact=True, type="integer",
                        tooltip="beam width: 1 samples, more searches (temperature is then unused)")
            yield Label("Rerank", classes="chat-label")
            yield Input(f"{_DEFAULTS.rerank:g}", id="chat-rerank", compact=True, type="number",
                        tooltip="beam search: penalise generic replies (0 off, up to 5)")
            yield Label("Len", classes="chat-label")
            yield Input(str(_DEFAULTS.max_length), id="chat-max-length", compact=True, type="integer",
                        tooltip="the longest reply, in tokens")
        yield ChatLog(id="chat-log")
        empty = Text(EMPTY_MESSAGE)
        empty.highlight_words([TRAIN_COMMAND], style="bold")
        yield Static(empty, id="chat-empty", classes="empty-state", markup=False)
        yield Input("", placeholder="type a message \u00b7 enter sends \u00b7 esc stops a reply", id="chat-input")
        yield Static(Text(""), id="chat-status", markup=False)

    @property
    def chat_log(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def messages(self) -> list[ChatMessage]:
        return self.chat_log.messages

    def on_mount(self) -> None:
        self._refresh_runs()
        self._update_status()

    def on_unmount(self) -> None:
        self.stop_all()

    def on_show(self, event: Show) -> None:
        self._shown = True
        self._refresh_runs()
        self._preload()

    def focus_input(self) -> None:
        """Focus the message input (the run picker while there is no chat run and so no input)."""
        if self.has_class("-empty"):
            self.query_one("#chat-run", Select).focus()
        else:
            self.query_one("#chat-input", Input).focus()

    # -------------------------------------------------------------------------------------- runs

    def _selected_run(self) -> str | None:
        return self.query_one("#chat-run", Select).selection

    @staticmethod
    def _run_label(run) -> Text:
        parts = [run.name, run.corpus, f"step {run.step:,}"]
        return Text(neutralise(" \u00b7 ".join(parts)), no_wrap=True, overflow="ellipsis")

    def _refresh_runs(self) -> None:
        """Re-read checkpoints/ for chat runs (newest first); keeps the selection."""
        try:
            runs = [r for r in list_runs() if r.kind == "chat"]
        except OSError as exc:
            self._notify(f"cannot list runs: {exc}", "error")
            runs = []
        options: list[tuple[Text, str]] = [(self._run_label(r), r.name) for r in runs]
        names = {r.name for r in runs}
        for extra in self._extra_runs:
            if extra not in names:
                options.append((Text(neutralise(f"{Path(extra).name} \u00b7 {extra}"), no_wrap=True,
                                     overflow="ellipsis"), extra))
        select = self.query_one("#chat-run", Select)
        values = [v for _, v in options]
        current = select.selection
        if values != self._option_values:
            self._option_values = values
            with select.prevent(Select.Changed):
                select.set_options(options)
                if current in values:
                    select.value = current
        self.set_class(not options, "-empty")
        select.prompt = "choose a chat run" if options else "no chat runs"
        if select.selection is None and options:
            with select.prevent(Select.Changed):
                select.value = options[0][1]
            self._run_changed()
        self._update_status()

    def open_run(self, name: str) -> None:
        """Select a chat run (a name under checkpoints/ or a path to a run directory) and load it."""
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
        select = self.query_one("#chat-run", Select)
        if select.selection != name:
            with select.prevent(Select.Changed):
                select.value = name
            self._run_changed()
        self._preload()
        self.focus_input()

    @on(Select.Changed, "#chat-run")
    def _run_selected(self, event: Select.Changed) -> None:
        event.stop()
        self._run_changed()

    def _run_changed(self) -> None:
        """Another run is selected: the conversation with the previous one ends."""
        run = self._selected_run()
        if run is None or run == self.conversation_run:
            return
        had = self.conversation_run is not None and (self.messages or self.replying)
        self._end_conversation()
        if had:
            self._notify(f"new chat with {Path(run).name}")
        self.conversation_run = run
        self._preload()
        self._update_status()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, Select) and event.widget.id == "chat-run":
            self._refresh_runs()

    def _preload(self) -> None:
        """Load the selected run in the background (only once the tab has been shown)."""
        run = self._selected_run()
        if run is None or not self._shown or run == self._loaded_for:
            return
        self._loaded_for = run
        self.run_worker(partial(self._load_worker, run), thread=True, exclusive=True, group="chat-load",
                        exit_on_error=False)

    def _load_worker(self, run: str) -> None:
        """In a thread worker: open the run on the torch thread."""
        try:
            description = torch_thread.run(self._load_job, run)
        except Exception as exc:  # noqa: BLE001 - a broken or non-chat run must not take the app down
            text = str(exc) if isinstance(exc, RnnchatError) else \
                f"cannot open run {run!r}: {type(exc).__name__}: {exc}"
            self.post_message(_Notice(text, "error"))
            self.post_message(_RunLoaded(run, f"{Path(run).name} \u00b7 could not be opened"))
            return
        self.post_message(_RunLoaded(run, description))

    def _load_job(self, run: str) -> str:
        session = self._session_for(run)
        meta = session.run.meta if isinstance(session.run.meta, dict) else {}
        parts = [session.run.name]
        step = meta.get("summary", {}).get("step")
        if isinstance(step, int):
            parts.append(f"step {step:,}")
        parts.append(f"{session.tokenizer.kind} vocab {session.tokenizer.vocab_size:,}")
        parts.append(f"context {session.context_turns} turn{'s' if session.context_turns != 1 else ''}")
        return " \u00b7 ".join(parts)

    def _session_for(self, run: str) -> ChatSession:
        """The session for ``run`` (torch thread only): opened again when its checkpoints changed on
        disk, keeping the conversation; a new one, with no history, for another run."""
        run_dir = resolve_run(run)
        stamp = []
        for which in ("best", "last"):
            try:
                stamp.append((run_dir / which / "manifest.json").stat().st_mtime_ns)
            except OSError:
                stamp.append(None)
        key = (run, str(run_dir.resolve()), tuple(stamp))
        old = self._session
        if old is not None and self._session_key == key:
            return old
        session = ChatSession(run)
        if old is not None and self._session_key is not None and self._session_key[:2] == key[:2]:
            session.history = old.history
        self._session, self._session_key = session, key
        return session

    @on(_RunLoaded)
    def _run_loaded(self, message: _RunLoaded) -> None:
        message.stop()
        self._run_info[message.run] = message.description
        self._update_status()

    @on(_Notice)
    def _notice(self, message: _Notice) -> None:
        message.stop()
        self._notify(message.text, message.severity)

    def _notify(self, text: str, severity: str = "information") -> None:
        self.notify(neutralise(_ui_message(text)), severity=severity, markup=False)  # type: ignore[arg-type]

    # ----------------------------------------------------------------------------------- settings

    def _read_settings(self) -> DecodeConfig:
        """The decoding settings in the toolbar, validated. Raises ConfigError (one sentence)."""
        def field(widget_id: str, label: str, kind: type):
            raw = self.query_one(f"#{widget_id}", Input).value.strip()
            try:
                return kind(raw)
            except ValueError:
                noun = "a whole number" if kind is int else "a number"
                raise ConfigError(f"{label} must be {noun}; got {raw!r}") from None

        cfg = replace(_DEFAULTS, temperature=field("chat-temperature", "temperature", float),
                      beam=field("chat-beam", "beam", int), rerank=field("chat-rerank", "rerank", float),
                      max_length=field("chat-max-length", "max length", int))
        cfg.validate()
        return cfg

    @on(Input.Changed, "#chat-temperature")
    def _temperature_changed(self, event: Input.Changed) -> None:
        """A streaming reply takes a valid new temperature at its next token."""
        event.stop()
        if self._controls is None or not self.replying:
            return
        try:
            t = float(event.value)
            replace(_DEFAULTS, temperature=t).validate()
        except (ValueError, ConfigError):
            return
        self._controls.temperature = t
        self._update_status()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "chat-input":
            self.action_send()
            return
        try:                                   # enter in a setting: check it, then back to the message
            self._read_settings()
        except ConfigError as exc:
            self._notify(str(exc), "error")
            return
        self.focus_input()

    # -------------------------------------------------------------------------------------- chat

    @property
    def replying(self) -> bool:
        return self.state != "idle"

    @property
    def controls(self) -> LiveControls | None:
        """The LiveControls of the current (or last) reply."""
        return self._controls

    @property
    def last_reason(self) -> str | None:
        """How the last reply ended ("stop", "length", "cancelled"), None while it streams or failed."""
        return self._done.reason if self._done is not None else None

    def action_send(self) -> None:
        inp = self.query_one("#chat-input", Input)
        text = inp.value
        if not text.strip():
            return
        if self.replying:
            self._notify("a reply is still coming: enter is ignored until it ends (esc stops it); "
                         "your message stays in the input", "warning")
            return
        run = self._selected_run()
        if run is None:
            self._notify(f"no chat runs yet: train one with  {TRAIN_COMMAND}"
                         if not self._option_values else "choose a chat run first", "error")
            return
        try:
            cfg = self._read_settings()
        except ConfigError as exc:
            self._notify(str(exc), "error")
            return
        if run != self.conversation_run:
            self._run_changed()
        if getattr(self.app, "training_run", lambda: None)():
            self._notify("Training is using the model thread: this reply starts when training stops "
                         "(ctrl+x stops it and saves).", "warning")
        inp.value = ""
        log = self.chat_log
        self._user = log.add("you", text, title="you")
        self._bot = log.add("bot", "", title=Path(run).name, pending=True)
        self._n += 1
        self._tag = tag = f"{self._tag_prefix}{self._n}"
        self._controls = controls = LiveControls(cfg.temperature, cfg.top_k, cfg.top_p)
        self._done = None
        self._failed = ""
        self._cfg = cfg
        self.state = "waiting"
        self._shown = True
        self._preload()
        self.refresh_bindings()
        self._update_status()
        self.run_worker(partial(self._reply_worker, tag, run, text, cfg, controls), thread=True,
                        group="chat", name="chat-reply", exit_on_error=False)

    def _reply_worker(self, tag: str, run: str, text: str, cfg: DecodeConfig, controls: LiveControls) -> None:
        """In a thread worker: the reply job, on the torch thread."""
        try:
            torch_thread.run(self._reply_job, tag, run, text, cfg, controls)
        except Exception as exc:  # noqa: BLE001 - e.g. the pane went away while this waited
            self.post_message(StreamFailed(tag, f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            self.post_message(_ReplyEnded(tag))

    def _reply_job(self, tag: str, run: str, text: str, cfg: DecodeConfig, controls: LiveControls) -> None:
        """On the torch thread: open the session if needed, mark unknown characters, stream the reply."""
        if tag in self._abandon:
            self._abandon.discard(tag)
            return                       # a new chat began (or another run) before this could start
        try:
            session = self._session_for(run)
            unknown = session.unknown_chars(text)
        except RnnchatError as exc:
            self.post_message(StreamFailed(tag, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001
            self.post_message(StreamFailed(tag, f"internal error: {type(exc).__name__}: {exc}"))
            return
        if unknown:
            self.post_message(_Unknown(tag, unknown))
        pump(self, tag, session.reply(text, cfg, controls))

    def _ours(self, tag: str, message: Message) -> bool:
        """Whether a message is for this pane's current reply (stopping it when it is this pane's)."""
        if not tag.startswith(self._tag_prefix):
            return False
        message.stop()
        return tag == self._tag and self.replying

    def on_event_batch(self, message: EventBatch) -> None:
        if not self._ours(message.tag, message):
            return
        if self.state == "waiting":
            self.state = "streaming"
        pieces = []
        for event in message.events:
            if isinstance(event, ev.Token):
                pieces.append(event.text)
            elif isinstance(event, ev.SampleDone):
                self._done = event
        if self._bot is not None:
            self._bot.pending = False
            self._bot.append("".join(pieces))
            if self._done is not None:
                self._bot.finish(self._done.reason)
        self._update_status()

    def on_stream_failed(self, message: StreamFailed) -> None:
        if not self._ours(message.tag, message):
            return
        self._failed = message.text
        self._notify(message.text, "error")
        if self._bot is not None:
            self._bot.finish("failed")
        self._update_status()

    @on(_Unknown)
    def _unknown(self, message: _Unknown) -> None:
        if not self._ours(message.tag, message):
            return
        if self._user is not None:
            self._user.mark_unknown(message.chars)
        n = len(message.chars)
        shown = " ".join(repr(c) for c in message.chars[:10]) + (" \u2026" if n > 10 else "")
        self._notify(f"{n} character{'s' if n != 1 else ''} unknown to the model (read as <unk>, "
                     f"underlined in your message): {shown}", "warning")

    @on(_ReplyEnded)
    def _reply_ended(self, message: _ReplyEnded) -> None:
        if not self._ours(message.tag, message):
            return
        self._finish_reply()

    def _finish_reply(self, ending: str | None = None) -> None:
        if self._bot is not None and (ending or not self._bot.ending):
            self._bot.finish(ending or (self._done.reason if self._done is not None else "failed"))
        self.state = "idle"
        self.refresh_bindings()
        self._update_status()

    def stop_all(self) -> None:
        """Stop a reply that is coming, and skip it if it has not started (the app calls this when
        quitting)."""
        if self._controls is not None:
            self._controls.stop_requested = True
        if self.replying and self._tag:
            self._abandon.add(self._tag)

    def _end_conversation(self) -> None:
        """Stop any reply, forget its late events, clear the log and the model's memory of it."""
        self.stop_all()
        self._tag = ""
        self.state = "idle"
        self._bot = self._user = None
        self._done = None
        self.chat_log.clear_messages()
        if self._session is not None:
            torch_thread.submit(self._reset_job)   # after any reply still finishing, on the torch thread
        self.refresh_bindings()

    # ---------------------------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.replying         # escape is left to others when no reply is coming
        return True

    def action_stop(self) -> None:
        if not self.replying or self._controls is None:
            return
        self._controls.stop_requested = True
        if self.state == "waiting":
            # Not started yet (e.g. training holds the torch thread): done here at once. The job still
            # runs when its turn comes and records the exchange with an empty reply, as the log shows.
            self._tag = ""
            self._finish_reply("cancelled")
        else:
            self._update_status(stopping=True)

    def action_new_chat(self) -> None:
        """Clear the log and the model's memory of the conversation."""
        self._end_conversation()
        self.conversation_run = self._selected_run()
        self._update_status()
        self._notify("new chat")
        self.focus_input()

    def _reset_job(self) -> None:
        if self._session is not None:
            self._session.reset()

    def action_export(self) -> None:
        """Write the conversation as Markdown to chat-<run>-<time>.md in the working directory."""
        session = self._session
        if session is None or not session.history or not self.messages:
            self._notify("nothing to export yet \u2014 send a message first", "warning")
            return
        text = session.transcript_markdown()
        stem = re.sub(r"[^\w.-]+", "_", session.run.name).strip("._") or "run"
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path.cwd()
        path = folder / f"chat-{stem}-{stamp}.md"
        n = 2
        try:
            while True:
                try:
                    with open(path, "x", encoding="utf-8", newline="") as f:
                        f.write(text)
                    break
                except FileExistsError:
                    path = folder / f"chat-{stem}-{stamp}-{n}.md"
                    n += 1
        except OSError as exc:
            self._notify(f"cannot export the chat: {exc}", "error")
            return
        self.exported_path = path
        turns = len(session.history) // 2
        extra = " (the reply still coming is not included)" if self.replying else ""
        self._notify(f"exported {turns} exchange{'s' if turns != 1 else ''} to {path}{extra}")

    def action_refresh_runs(self) -> None:
        self._refresh_runs()
        self._notify(f"{len(self._option_values)} chat run(s) found")

    # ----------------------------------------------------------------------------------- display

    def _update_status(self, stopping: bool = False) -> None:
        parts: list[str] = []
        run = self._selected_run()
        if run is None:
            parts.append("no chat runs" if not self._option_values else "choose a chat run")
        elif self.replying:
            chars = len(self._bot.text) if self._bot is not None else 0
            if stopping:
                parts.append("\u25b6 stopping\u2026")
            elif self.state == "waiting":
                parts.append("\u25b6 thinking\u2026")
            else:
                parts.append("\u25b6 replying")
            parts.append(f"{chars:,} chars")
            cfg = self._cfg
            if cfg.beam > 1:
                parts.append(f"beam {cfg.beam}" + (f" rerank {cfg.rerank:g}" if cfg.rerank else ""))
            elif self._controls is not None:
                parts.append("greedy" if self._controls.temperature <= 0 else f"T {self._controls.temperature:g}")
            parts.append("esc stops")
        else:
            if self._done is not None:
                d = self._done
                parts.append(f"\u25a0 {d.reason}: {d.chars:,} chars in {d.seconds:.2f} s")
            elif self._failed:
                parts.append(f"\u2717 {_ui_message(self._failed)}")
            parts.append(self._run_info.get(run) or f"{Path(run).name} \u00b7 loading\u2026")
        self.status_text = neutralise("  \u00b7  ".join(parts))
        status = self.query_one("#chat-status", Static)
        status.update(Text(self.status_text, no_wrap=True, overflow="ellipsis"))
        status.set_class(self.replying, "-streaming")
        status.set_class(bool(self._failed) and not self.replying, "-failed")


def _id(obj: object) -> int:
    return id(obj)
