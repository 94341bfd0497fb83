"""The Chat tab: talk to a chat run (a seq2seq model trained with ``--task chat``).

A toolbar (run, temperature, beam width, rerank, max length, model or retrieval), the messages (``ChatLog``),
the input and a status line; only chat runs are offered, and with none the pane says how to train one. Enter sends (and
is ignored, the text kept, while a reply streams); escape stops a reply where it got to; ctrl+n starts a
new chat; ctrl+e exports it as Markdown; ctrl+r switches replies between the model and retrieval. A
temperature typed while a reply streams applies at once.

Replies come from retrieval by default. Where the run's training dialogue is not here, the default falls
back to the model's own replies with one notification (and the toolbar says "model" until another run is
chosen); retrieval chosen in the toolbar is an error there instead. Each reply's bubble says where it came
from ("retrieved" or "model", dim, on its lower edge). The replies are made on the torch thread
(``replies.py``).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterator

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Show
from textual.message import Message
from textual.widgets import Input, Select, Static

from rnnchat import events as ev
from rnnchat.chat.config import DecodeConfig
from rnnchat.errors import ConfigError
from rnnchat.runs.rundir import RunSummary
from rnnchat.tui import torch_thread
from rnnchat.tui.bridge import EventBatch, StreamFailed
from rnnchat.tui.panes.base import RunPane
from rnnchat.tui.panes.chat.replies import FellBack, ReplyEnded, Sessions, Unknown
from rnnchat.tui.panes.chat.source import ReplySource
from rnnchat.tui.panes.saving import file_stem
from rnnchat.tui.widgets.chatlog import ChatLog, ChatMessage
from rnnchat.tui.widgets.status import StatusLine, chat_parts, describe_chat
from rnnchat.tui.widgets.toolbars import chat_settings, chat_toolbar

if TYPE_CHECKING:
    from rnnchat.chat.session import ChatSession
    from rnnchat.sampling import LiveControls

__all__ = ["ChatPane"]

TRAIN_COMMAND = "rnnchat train dialogues --task chat"
_DEFAULTS = DecodeConfig()


class ChatPane(RunPane):
    """Chat with a chat run (see the module docstring)."""

    KIND = "chat"
    NOUN = "chat run"
    PREFIX = "chat"
    EMPTY_MESSAGE = ("No chat runs yet.\n\n"
                     "A chat run is a model trained on prompt / reply pairs. Train one with\n\n"
                     f"{TRAIN_COMMAND}\n\n"
                     "and it appears here (F5 looks again).")
    NO_RUNS = f"no chat runs yet: train one with  {TRAIN_COMMAND}"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop reply"),
        Binding("ctrl+n", "new_chat", "New chat", priority=True),
        Binding("ctrl+e", "export", "Export .md", priority=True),    # the input's ctrl+e (end) gives way
        Binding("ctrl+r", "candidates", "Model/retrieval", priority=True),
    ]

    def __init__(self, *, name: str | None = None, id: str | None = "chat-pane",
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._controls: LiveControls | None = None
        self._abandon: set[str] = set()           # tags of replies whose conversation has ended
        self._done: ev.SampleDone | None = None
        self._failed = ""
        self._cfg = _DEFAULTS
        self._source = ReplySource(lambda: self.query_one("#chat-candidates", Select), _DEFAULTS.candidates)
        self._shown = False
        self._loaded_for: str | None = None     # the run a load was last asked for
        self._sessions = Sessions(self.noted, self.post_message, self._phrase)
        self.conversation_run: str | None = None
        """The run the conversation in the log is with."""
        self.state = "idle"
        """idle, waiting (the job is queued or loading) or streaming."""
        self.exported_path: Path | None = None
        """Where ctrl+e last wrote the transcript."""

    # ------------------------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield chat_toolbar(_DEFAULTS)
        yield ChatLog(id="chat-log")
        empty = Text(self.EMPTY_MESSAGE)
        empty.highlight_words([TRAIN_COMMAND], style="bold")
        yield Static(empty, id="chat-empty", classes="empty-state", markup=False)
        yield Input("", placeholder="type a message \u00b7 enter sends \u00b7 esc stops a reply", id="chat-input")
        yield StatusLine(id="chat-status")

    @property
    def chat_log(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def messages(self) -> list[ChatMessage]:
        return self.chat_log.messages

    @property
    def _session(self) -> ChatSession | None:
        return self._sessions.current

    def on_show(self, event: Show) -> None:
        self._shown = True            # RunPane.on_show then refreshes the runs
        self._preload()

    def focus_input(self) -> None:
        """Focus the message input (the run picker while there is no chat run and so no input)."""
        if self.has_class("-empty"):
            self.run_select.focus()
        else:
            self.query_one("#chat-input", Input).focus()

    # -------------------------------------------------------------------------------------- runs

    def _label_parts(self, run: RunSummary) -> list[str]:
        return [run.name, run.corpus, f"step {run.step:,}"]

    def open_run(self, name: str) -> None:
        """Select a chat run (a name under checkpoints/ or a path to a run directory) and load it."""
        if not self._list_run(name):
            return
        select = self.run_select
        if select.selection != name:
            with select.prevent(Select.Changed):
                select.value = name
            self._selection_changed()
        self._preload()
        self.focus_input()

    def _selection_changed(self) -> None:
        """Another run is selected: the conversation with the previous one ends."""
        run = self._selected_run()
        if run is None or run == self.conversation_run:
            return
        had = self.conversation_run is not None and (self.messages or self.replying)
        self._end_conversation()
        self._source.new_run()
        if had:
            self._notify(f"new chat with {Path(run).name}")
        self.conversation_run = run
        self._preload()
        self._update_status()

    def _preload(self) -> None:
        """Load the selected run in the background (only once the tab has been shown)."""
        run = self._selected_run()
        if run is None or not self._shown or run == self._loaded_for:
            return
        self._loaded_for = run
        self._load((run,))

    def _load_job(self, run: str) -> str:
        session = self._sessions.open(run)
        return describe_chat(session.run.name, session.run.meta, session.tokenizer, session.context_turns)

    # ----------------------------------------------------------------------------------- settings

    def _read_settings(self) -> DecodeConfig:
        """The decoding settings in the toolbar, validated. Raises ConfigError naming the field."""
        return chat_settings(self._field, _DEFAULTS, str(self.query_one("#chat-candidates", Select).value))

    @on(Select.Changed, "#chat-candidates")
    def _candidates_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._source.changed(str(event.value))

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
        if self._checked(self._read_settings) is not None:
            self.focus_input()          # enter in a setting checks it, then goes back to the message

    # -------------------------------------------------------------------------------------- chat

    @property
    def replying(self) -> bool:
        return self.state != "idle"

    @property
    def busy(self) -> bool:
        return self.replying

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
        run = self._chosen_run()
        if run is None:
            return
        cfg = self._checked(self._read_settings)
        if cfg is None:
            return
        if run != self.conversation_run:
            self._selection_changed()
        if self.training:
            self._notify("Training is using the model thread: this reply starts when training stops "
                         "(ctrl+x stops it and saves).", "warning")
        inp.value = ""
        self.chat_log.start_exchange(text, Path(run).name)
        tag = self._new_tag()
        from rnnchat.sampling import LiveControls  # numpy's: loaded with torch, after the first screen

        self._controls = controls = LiveControls.of(cfg)
        self._done = None
        self._failed = ""
        self._cfg = cfg
        self.state = "waiting"
        self._shown = True
        self._preload()
        self.refresh_bindings()
        self._update_status()
        job = partial(self._reply_job, tag, run, text, cfg, controls, self._source.chosen)
        self.run_worker(partial(self._stream_worker, tag, job, ReplyEnded(tag)), thread=True, group="chat",
                        name="chat-reply", exit_on_error=False)

    def _reply_job(self, tag: str, run: str, text: str, cfg: DecodeConfig, controls: LiveControls,
                   chosen: bool) -> Iterator[ev.Event] | None:
        """On the torch thread: the reply (``Sessions.reply``), unless its conversation has ended."""
        if tag in self._abandon:
            self._abandon.discard(tag)
            return None                  # a new chat began (or another run) before this could start
        return self._sessions.reply(tag, run, text, cfg, controls, chosen)

    def _ours(self, tag: str, message: Message) -> bool:
        """Whether a message is for the reply now coming (stopping it when it is this pane's)."""
        return self._claim(tag, message) and self.replying

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
        done = self._done
        self.chat_log.grow_reply("".join(pieces), done.reason if done is not None else None,
                                 done.source if done is not None else "")
        self._update_status()

    def on_stream_failed(self, message: StreamFailed) -> None:
        if not self._ours(message.tag, message):
            return
        self._failed = message.text
        self._notify(message.text, "error")
        self.chat_log.end_reply("failed")
        self._update_status()

    @on(Unknown)
    def _unknown(self, message: Unknown) -> None:
        if not self._ours(message.tag, message):
            return
        self.chat_log.mark_unknown(message.chars)
        n = len(message.chars)
        shown = " ".join(repr(c) for c in message.chars[:10]) + (" \u2026" if n > 10 else "")
        self._notify(f"{n} character{'s' if n != 1 else ''} unknown to the model (read as <unk>, "
                     f"underlined in your message): {shown}", "warning")

    @on(FellBack)
    def _fell_back(self, message: FellBack) -> None:
        if not self._claim(message.tag, message):
            return
        self._source.put("model")
        self._cfg = replace(self._cfg, candidates="model")
        self._notify(f"{message.reason}; replying with the model's own replies instead (From: model)", "warning")

    @on(ReplyEnded)
    def _reply_ended(self, message: ReplyEnded) -> None:
        if self._ours(message.tag, message):
            self._finish_reply()

    def _finish_reply(self, ending: str | None = None) -> None:
        self.chat_log.end_reply(ending or (self._done.reason if self._done is not None else "failed"),
                                unless_ended=ending is None)
        self.state = "idle"
        self.refresh_bindings()
        self._update_status()

    def stop_all(self) -> None:
        """Stop a reply that is coming, and skip it if it has not started."""
        if self._controls is not None:
            self._controls.stop_requested = True
        if self.replying and self._tag:
            self._abandon.add(self._tag)

    def _end_conversation(self) -> None:
        """Stop any reply, forget its late events, clear the log and the model's memory of it."""
        self.stop_all()
        self._tag = ""
        self.state = "idle"
        self._done = None
        self.chat_log.clear_messages()
        if self._session is not None:
            torch_thread.submit(self._session.reset)   # after any reply still finishing, on the torch thread
        self.refresh_bindings()

    # ---------------------------------------------------------------------------------- actions

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

    def action_candidates(self) -> None:
        """Switch where the next replies come from: the model's own, or retrieved and reranked."""
        self._notify(f"replies from: {self._source.switch()}")

    def action_export(self) -> None:
        """Write the conversation as Markdown to chat-<run>-<time>.md in the working directory."""
        session = self._session
        if session is None or not session.history or not self.messages:
            self._notify("nothing to export yet \u2014 send a message first", "warning")
            return
        text = session.transcript_markdown()
        path = self._save(Path.cwd(), f"chat-{file_stem(session.run.name)}", ".md", text, "export the chat")
        if path is None:
            return
        self.exported_path = path
        turns = len(session.history) // 2
        extra = " (the reply still coming is not included)" if self.replying else ""
        self._notify(f"exported {turns} exchange{'s' if turns != 1 else ''} to {path}{extra}")

    # ----------------------------------------------------------------------------------- display

    def _update_status(self, stopping: bool = False) -> None:
        run, cfg, controls = self._selected_run(), self._cfg, self._controls
        parts = chat_parts(run, bool(self._option_values), self.state, self.chat_log.reply_chars, cfg.beam,
                           cfg.rerank, controls.temperature if controls is not None else None, self._done,
                           self._failed, self._run_info.get((run,)), stopping)
        self.query_one(StatusLine).show(parts, streaming=self.replying, failed=bool(self._failed) and not self.replying)
