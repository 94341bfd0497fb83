"""``rnnchat chat RUN``: a plain terminal chat, and a line-in, line-out filter when input is piped.

On a terminal each reply streams as it is decoded; Ctrl+C stops a reply (and at the prompt, or
Ctrl+D, ends the chat). With piped input every input line gets exactly one output line (a reply's
own line breaks become " / "; ``--json`` keeps the exact text), so scripts can pair them up.
Slash commands change the settings for the rest of the chat; their answers go to stderr.

Replies come from retrieval by default (the replies of similar prompts in the run's dialogue and the model's beams,
reranked); where the run's training dialogue is not here the default falls back to the model's own
replies with one warning, while retrieval asked for by name (``--candidates retrieval``, or ``--corpus``
saying where its dialogue is) is an error. Each reply says
where it came from: a dim "retrieved" or "model" after it on a terminal, ``"source"`` with ``--json``
(a piped plain reply line stays the reply alone, so scripts can pair lines up).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING, TextIO

from rnnchat.config import CANDIDATES
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.events import Beams, SampleDone, Token
from rnnchat.safetext import neutralise

if TYPE_CHECKING:  # the session loads torch; this module is imported for every command line
    from rnnchat.chat.config import DecodeConfig
    from rnnchat.chat.session import ChatSession

HELP = ("commands: /reset (forget the conversation), /temp F (0 = greedy), /beam N (1 = sample), "
        "/topk N, /topp F, /rerank F (beam: against generic replies), /norepeat N, "
        "/candidates model|retrieval (answer with the dialogue's replies to similar prompts too), /settings, /help, "
        "/quit")

# command -> (DecodeConfig field, type)
_SETTINGS = {"/temp": ("temperature", float), "/temperature": ("temperature", float), "/beam": ("beam", int),
             "/topk": ("top_k", int), "/topp": ("top_p", float), "/rerank": ("rerank", float),
             "/norepeat": ("no_repeat_ngram", int), "/penalty": ("repetition_penalty", float),
             "/maxlen": ("max_length", int), "/seed": ("seed", int)}
# DecodeConfig field -> the command that sets it (the first, for a field with two), to phrase its errors
_COMMAND_OF: dict[str, str] = {}
for _command, (_field, _) in _SETTINGS.items():
    _COMMAND_OF.setdefault(_field, _command)


def cmd_chat(args) -> int:
    from rnnchat.chat.config import DecodeConfig
    from rnnchat.chat.session import ChatSession
    from rnnchat.cli.console import open_run, warn
    from rnnchat.config import replace

    cfg = replace(DecodeConfig(), temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, beam=args.beam,
                  length_penalty=args.length_penalty, no_repeat_ngram=args.no_repeat_ngram,
                  repetition_penalty=args.repetition_penalty, rerank=args.rerank, max_length=args.max_length,
                  seed=args.seed, candidates=args.candidates)
    cfg.validate()
    session = ChatSession(open_run(args.run, args.checkpoint, "chat"))
    session.corpus = args.corpus
    if cfg.candidates == "retrieval":
        try:
            use_retrieval(session)
        except RnnchatError as exc:
            if args.candidates is not None or args.corpus:   # asked for by name: an error, as any bad input
                raise
            warn(f"{exc}; replying with the model's own replies instead (--candidates model)")
            cfg = dataclasses.replace(cfg, candidates="model")
    if hasattr(sys.stdin, "reconfigure"):   # bytes that are not UTF-8 are read as U+FFFD and answered
        sys.stdin.reconfigure(encoding="utf-8", errors="replace")
    return TerminalChat(session, cfg, json_lines=args.json, show_beams=args.show_beams).run()


def use_retrieval(session: ChatSession) -> None:
    """Give the session its run's dialogue pairs to retrieve from (read once, on first use)."""
    from rnnchat.runs.retrieval import open_retriever

    if session.retriever is None:
        session.retriever = open_retriever(session.run.meta, session.run.name, session.corpus)


class TerminalChat:
    def __init__(self, session: ChatSession, cfg: DecodeConfig, *, json_lines: bool = False,
                 show_beams: bool = False, stdin: TextIO | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None):
        self.session, self.cfg = session, cfg
        self.json_lines, self.show_beams = json_lines, show_beams
        self.stdin, self.stdout, self.stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
        self.tty = self.stdin.isatty() and self.stdout.isatty()

    def note(self, message: str) -> None:
        self.stderr.write(neutralise(message) + "\n")
        self.stderr.flush()

    def run(self) -> int:
        name = self.session.run.name
        if self.tty:
            self.note(f"chatting with {name} ({self.describe()}); /help for commands, Ctrl+D to leave")
        while True:
            try:
                if self.tty:
                    self.stdout.write("\x1b[1myou>\x1b[0m ")
                    self.stdout.flush()
                line = self.stdin.readline()
            except KeyboardInterrupt:
                self.stdout.write("\n")
                return 0
            if not line:
                if self.tty:
                    self.stdout.write("\n")
                return 0
            text = line.rstrip("\r\n")
            if text.strip().startswith("/"):
                if self.command(text.strip()) == "quit":
                    return 0
                continue
            if not text.strip():
                if not self.tty:            # keep input and output lines paired
                    self.emit_line(text, "")
                continue
            unknown = self.session.unknown_chars(text)
            if unknown:
                self.note(f"note: {len(unknown)} character(s) unknown to the model, read as <unk>: "
                          + " ".join(repr(c) for c in unknown[:10]))
            self.respond(text)

    def respond(self, text: str) -> None:
        from rnnchat.sampling import LiveControls

        controls = LiveControls.of(self.cfg)
        pieces: list[str] = []
        done = None
        if self.tty:
            self.stdout.write(f"\x1b[1;36m{neutralise(self.session.run.name)}>\x1b[0m ")
        stream = self.session.reply(text, self.cfg, controls, self.show_beams)
        try:
            for event in stream:
                if isinstance(event, Token):
                    pieces.append(event.text)
                    if self.tty:
                        self.stdout.write(neutralise(event.text))
                        self.stdout.flush()
                elif isinstance(event, Beams) and self.show_beams:
                    self.note(f"  beams @{event.step}: " + " | ".join(t[-40:] for t in event.texts))
                elif isinstance(event, SampleDone):
                    done = event
        except KeyboardInterrupt:
            controls.stop_requested = True
            stream.close()          # the exchange joins the history as far as the reply got
            self.note("\n[reply stopped]")
        reply = "".join(pieces)
        if self.tty:
            if done is not None and done.source:
                self.mark(done.source)
            self.stdout.write("\n")
            self.stdout.flush()
        else:
            self.emit_line(text, reply, done)

    def mark(self, source: str) -> None:
        """Where the reply on the terminal came from, one dim word after it: "retrieved" or "model"."""
        from rich.text import Text

        from rnnchat.cli.console import console

        console(self.stdout).print(Text(f"  {neutralise(source)}", style="dim"), end="")

    def emit_line(self, prompt: str, reply: str, done: SampleDone | None = None) -> None:
        if self.json_lines:
            record = {"prompt": prompt, "reply": reply}
            if done is not None:
                record.update(tokens=done.tokens, seconds=round(done.seconds, 4), reason=done.reason,
                              source=done.source)
            self.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            self.stdout.write(neutralise(reply.replace("\n", " / ")) + "\n")
        self.stdout.flush()

    def command(self, text: str) -> str:
        name, _, arg = text.partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in ("/quit", "/exit", "/q"):
            return "quit"
        if name == "/reset":
            self.session.reset()
            self.note("conversation cleared")
        elif name == "/help":
            self.note(HELP)
        elif name == "/settings":
            self.note(self.describe())
        elif name == "/candidates":
            if arg not in CANDIDATES:
                self.note(f"/candidates takes one of {', '.join(CANDIDATES)}, e.g. /candidates retrieval")
                return ""
            try:
                if arg == "retrieval":
                    use_retrieval(self.session)
            except RnnchatError as exc:
                self.note(str(exc))
                return ""
            self.cfg = dataclasses.replace(self.cfg, candidates=arg)
            self.note(self.describe())
        elif name in _SETTINGS:
            field, kind = _SETTINGS[name]
            try:
                value = kind(arg)
                cfg = dataclasses.replace(self.cfg, **{field: value})
                cfg.validate()
            except ValueError:
                self.note(f"{name} needs a {'whole number' if kind is int else 'number'}, e.g. {name} "
                          f"{'4' if kind is int else '0.7'}")
                return ""
            except ConfigError as exc:  # named as the command typed, or the one that sets the field at fault
                command = name if exc.field == field else _COMMAND_OF.get(exc.field or "")
                self.note(exc.phrased(command) if command else str(exc))
                return ""
            self.cfg = cfg
            self.note(self.describe())
        else:
            self.note(f"unknown command {name}; {HELP}")
        return ""

    def describe(self) -> str:
        c = self.cfg
        if c.beam > 1:
            how = f"beam {c.beam}, length penalty {c.length_penalty:g}" + (f", rerank {c.rerank:g}" if c.rerank else "")
        elif c.temperature <= 0:
            how = "greedy"
        else:
            how = f"temperature {c.temperature:g}, top-p {c.top_p:g}" + (f", top-k {c.top_k}" if c.top_k else "")
        extra = [f"no-repeat {c.no_repeat_ngram}"] if c.no_repeat_ngram else []
        extra += [f"repetition penalty {c.repetition_penalty:g}"] if c.repetition_penalty > 1 else []
        if c.candidates == "retrieval":
            how = f"retrieved replies and beam {max(c.beam, 4)}, reranked by the model (λ {c.rerank or 0.5:g})"
        return ", ".join([how, *extra, f"max {c.max_length} tokens"])
