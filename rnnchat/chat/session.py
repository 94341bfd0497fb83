"""A conversation with a chat run: the history, the encoder input built from it, streamed replies.

Both front ends (``rnnchat chat`` and the app's Chat screen) hold one ``ChatSession``. The encoder
input for a message is built as in training: up to ``context_turns`` earlier turns (oldest dropped
first, the total kept within ``max_turn_chars``), then the message.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator

from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.data import encode_source
from rnnchat.chat.generate import decode_reply
from rnnchat.events import Beams, SampleDone, Token
from rnnchat.runs.checkpoints import OpenedRun, open_chat_model
from rnnchat.stream import LiveControls
from rnnchat.text.tokenizers import UNK


class ChatSession:
    def __init__(self, run: OpenedRun | str | os.PathLike, which: str = "best"):
        self.run = run if isinstance(run, OpenedRun) else open_chat_model(run, which)
        train = self.run.meta.get("train", {})
        self.context_turns = int(train.get("context_turns", 1))
        self.max_context_chars = int(train.get("max_turn_chars", 300))
        self.history: list[tuple[str, str]] = []      # (who, text): who is "you" or "bot"

    @property
    def tokenizer(self):
        return self.run.tokenizer

    def reset(self) -> None:
        self.history.clear()

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of ``text`` the model's vocabulary lacks (read as <unk>), in order of appearance."""
        if self.tokenizer.kind != "char":
            return []   # sentencepiece falls back to bytes: nothing is unknown
        ids = self.tokenizer.encode(text)
        return list(dict.fromkeys(c for c, i in zip(text, ids.tolist()) if i == UNK))

    def context(self) -> list[str]:
        turns = [text for _, text in self.history[-self.context_turns:]] if self.context_turns else []
        while turns and sum(len(t) + 1 for t in turns) > self.max_context_chars:
            if len(turns) == 1:
                turns[0] = turns[0][-self.max_context_chars:]
                break
            turns.pop(0)
        return turns

    def reply(self, message: str, cfg: DecodeConfig, controls: LiveControls | None = None,
              show_beams: bool = False) -> Iterator[Token | Beams | SampleDone]:
        """Stream the reply to ``message``; the exchange joins the history when the reply ends
        (a cancelled reply is kept as far as it got)."""
        cfg.validate()
        if cfg.seed is not None:   # a seeded chat is reproducible, but each turn draws afresh
            cfg = dataclasses.replace(cfg, seed=cfg.seed + len(self.history) // 2)
        source = encode_source(self.tokenizer, self.context(), message)
        pieces: list[str] = []
        for event in decode_reply(self.run.model, self.tokenizer, source, cfg, controls, show_beams):
            if isinstance(event, Token):
                pieces.append(event.text)
            yield event
        self.history.append(("you", message))
        self.history.append(("bot", "".join(pieces)))

    def transcript_markdown(self) -> str:
        """The conversation as Markdown: each turn as a quoted block under its speaker."""
        lines = [f"# Chat with {self.run.name}", ""]
        for who, text in self.history:
            lines.append(f"**{'You' if who == 'you' else self.run.name}:**")
            lines.extend("> " + ln for ln in (text.split("\n") or [""]))
            lines.append("")
        return "\n".join(lines)
