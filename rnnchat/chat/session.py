"""A conversation with a chat run: the history, the encoder input built from it, streamed replies.

Both front ends (``rnnchat chat`` and the app's Chat screen) hold one ``ChatSession``. The encoder
input for a message is built exactly as in training, by ``chat.pairs.build_context``: the newest
``context_turns`` earlier turns that fit in ``max_turn_chars``, then the message.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator

from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.data import encode_source
from rnnchat.chat.generate import MODEL, RETRIEVED, decode_reply, stream_ids
from rnnchat.chat.pairs import build_context
from rnnchat.chat.retrieve import retrieve_and_rerank
from rnnchat.errors import ConfigError
from rnnchat.events import Beams, SampleDone, Token
from rnnchat.sampling import LiveControls, Stream
from rnnchat.vocab import UNK


class ChatSession:
    """``run`` is an opened chat run (``runs.checkpoints.open_chat_model``: model, tokenizer, meta, name)."""

    def __init__(self, run):
        self.run = run
        self.context_turns = run.meta.model.context_turns
        self.max_context_chars = run.meta.model.max_turn_chars
        self.history: list[tuple[str, str]] = []      # (who, text): who is "you" or "bot"
        self.retriever = None                          # a chat.retrieve.Retriever, for candidates "retrieval"
        self.corpus: str | None = None                 # where the run's training text is now, when not its source

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

    def context(self) -> tuple[str, ...]:
        return build_context([text for _, text in self.history], self.context_turns, self.max_context_chars)

    def reply(self, message: str, cfg: DecodeConfig, controls: LiveControls | None = None,
              show_beams: bool = False) -> Stream:
        """Stream the reply to ``message``; the exchange joins the history when the reply ends
        (a cancelled reply is kept as far as it got)."""
        cfg.validate()
        if cfg.seed is not None:   # a seeded chat is reproducible, but each turn draws afresh
            cfg = dataclasses.replace(cfg, seed=cfg.seed + len(self.history) // 2)
        if cfg.candidates == "retrieval":
            if self.retriever is None:
                raise ConfigError("retrieval needs the run's dialogue pairs (runs.retrieval.open_retriever); none "
                                  "were loaded, and candidates 'model' answers without them", "candidates")
            controls = controls or LiveControls.of(cfg)
            stream = Stream(self._retrieved(message, cfg, controls), controls)
        else:
            source = encode_source(self.tokenizer, self.context(), message)
            stream = decode_reply(self.run.model, self.tokenizer, source, cfg, controls, show_beams)
        return Stream(self._recorded(message, stream), stream.controls)

    def _retrieved(self, message: str, cfg: DecodeConfig, controls: LiveControls) -> Iterator[Token | SampleDone]:
        """The best of the dialogue's replies to similar prompts and the model's beams, by similarity and then
        the model's anti-LM score (beam at least 4 and λ 0.5 unless set), streamed token by token; its
        SampleDone says which kind won (RETRIEVED or MODEL)."""
        t0 = time.perf_counter()
        search = dataclasses.replace(cfg, beam=max(cfg.beam, 4), rerank=cfg.rerank or 0.5)
        ranked = retrieve_and_rerank(self.run.model, self.tokenizer, self.retriever, message, self.context(),
                                     k=8, cfg=search)
        best = ranked[0] if ranked else None
        ids = self.tokenizer.encode(best.text if best else "").tolist()[:cfg.max_length]
        source = RETRIEVED if best is not None and best.retrieved else MODEL
        yield from stream_ids(self.tokenizer, ids, controls, cfg.max_length, t0, source)

    def _recorded(self, message: str, stream: Stream) -> Iterator[Token | Beams | SampleDone]:
        try:
            yield from stream
        finally:                # ended, stopped or interrupted (Ctrl+C): the reply as far as it got
            self.history.append(("you", message))
            self.history.append(("bot", "".join(stream.pieces)))

    def transcript_markdown(self) -> str:
        """The conversation as Markdown: each turn as a quoted block under its speaker."""
        lines = [f"# Chat with {self.run.name}", ""]
        for who, text in self.history:
            lines.append(f"**{'You' if who == 'you' else self.run.name}:**")
            lines.extend("> " + ln for ln in (text.split("\n") or [""]))
            lines.append("")
        return "\n".join(lines)
