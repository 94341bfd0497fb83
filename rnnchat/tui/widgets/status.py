"""The panes' one-row status lines (the widget and what the Generate and Chat panes put in it), and the
highlighter that keeps control characters visible in an Input."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Static

from rnnchat.events import Copied, SampleDone
from rnnchat.safetext import neutralise

SEPARATOR = "  \u00b7  "


class StatusLine(Static):
    """Parts joined by dots, shown literally; ``-streaming`` and ``-failed`` classes for the stylesheet."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), id=id, markup=False)
        self.text = ""
        """What the line shows, as plain text."""

    def show(self, parts: list[str], *, streaming: bool = False, failed: bool = False) -> None:
        self.text = neutralise(SEPARATOR.join(parts))
        self.update(Text(self.text, no_wrap=True, overflow="ellipsis"))
        self.set_class(streaming, "-streaming")
        self.set_class(failed, "-failed")


class NeutralHighlighter(Highlighter):
    """Shows control characters in an Input as visible symbols (the value itself is left alone)."""

    def highlight(self, text: Text) -> None:
        plain = text.plain
        safe = neutralise(plain)
        if safe != plain:
            text.plain = safe


def rate_text(chars: int, seconds: float) -> str:
    """The speed shown in the Generate pane's status line."""
    return f"{chars / seconds if seconds > 0 else 0.0:,.0f} chars/s"


def copied_text(copied: Sequence[Copied | None]) -> str:
    """How much of the sample(s) is copied from the training text, for the status line."""
    if len(copied) == 1 and copied[0] is not None:
        c = copied[0]
        return f"copied: longest {c.longest_copy} chars, {100 * c.copied_share:.0f}% of 20-char windows"
    return "copied " + "/".join(f"{100 * c.copied_share:.0f}%" if c is not None else "-" for c in copied)


def generation_parts(state: str, done: Sequence[SampleDone | None], chars: Sequence[int], elapsed: float,
                     temperatures: Sequence[float], seed: int | None, run: str, error: str = "",
                     stopping: bool = False) -> list[str]:
    """The Generate pane's status for a generation in ``state`` (loading, streaming, done or failed);
    ``chars`` per column so far, ``done`` per column once it ended."""
    total = sum(d.chars if d is not None else c for d, c in zip(done, chars))
    if state == "done":
        reasons = sorted({d.reason for d in done if d is not None})
        elapsed = max((d.seconds for d in done if d is not None), default=0.0)
        head = f"\u25a0 done: {', '.join(reasons)}"
    elif state == "failed":
        head = "\u2717 failed"
    elif stopping:
        head = "\u25b6 stopping\u2026"
    else:
        head = "\u25b6 loading\u2026" if state == "loading" else "\u25b6 streaming"
    parts = [head, f"{total:,} chars", rate_text(total, elapsed), "T " + "/".join(f"{t:.2f}" for t in temperatures),
             f"seed {seed}", Path(run).name]
    if any(d is not None and d.weights == "int8" for d in done):
        parts.append("int8 weights")            # a wide model sampled on its compact copy (lm/int8.py)
    if state == "failed" and error:
        parts.append(error)
    return parts


def pick_parts(picking: bool, tokens: int, chars: int, temperature: float, seed: int | None, run: str) -> list[str]:
    """The Generate pane's status while picking tokens one by one, or after."""
    head = "\u25c6 picking" if picking else "\u25a0 picked (ctrl+n picks again)"
    return [head, f"{tokens:,} tokens, {chars:,} chars", f"T {temperature:.2f}", f"seed {seed}", Path(run).name]


def chat_parts(run: str | None, has_runs: bool, state: str, reply_chars: int, beam: int, rerank: float,
               temperature: float | None, done: SampleDone | None, failed: str, info: str | None,
               stopping: bool = False) -> list[str]:
    """The Chat pane's status: while a reply is coming (``state`` waiting or streaming), else how the
    last one ended and the run."""
    if run is None:
        return ["no chat runs" if not has_runs else "choose a chat run"]
    if state == "idle":
        parts = []
        if done is not None:
            parts.append(f"\u25a0 {done.reason}: {done.chars:,} chars in {done.seconds:.2f} s")
        elif failed:
            parts.append(f"\u2717 {failed}")
        return parts + [info or f"{Path(run).name} \u00b7 loading\u2026"]
    if stopping:
        head = "\u25b6 stopping\u2026"
    else:
        head = "\u25b6 thinking\u2026" if state == "waiting" else "\u25b6 replying"
    parts = [head, f"{reply_chars:,} chars"]
    if beam > 1:
        parts.append(f"beam {beam}" + (f" rerank {rerank:g}" if rerank else ""))
    elif temperature is not None:
        parts.append("greedy" if temperature <= 0 else f"T {temperature:g}")
    parts.append("esc stops")
    return parts


def describe_lm(name: str, which: str, meta) -> str:
    """One line about an opened language model (``meta``: its runs.meta.RunMeta): name, checkpoint, step,
    best bits per character."""
    parts = [name, which, f"step {meta.summary.step:,}"]
    if meta.summary.best_bits_per_char is not None:
        parts.append(f"{meta.summary.best_bits_per_char:.2f} bpc")
    return " \u00b7 ".join(parts)


def describe_chat(name: str, meta, tokenizer, context_turns: int) -> str:
    """One line about an opened chat run: name, step, vocabulary, turns of context."""
    parts = [name, f"step {meta.summary.step:,}"]
    parts.append(f"{tokenizer.kind} vocab {tokenizer.vocab_size:,}")
    parts.append(f"context {context_turns} turn{'s' if context_turns != 1 else ''}")
    return " \u00b7 ".join(parts)
