"""Running an engine event stream in a thread worker and delivering it to the UI in batches.

Training and sampling are iterators of events (``rnnchat.events``). ``pump`` drains one in a worker
thread and posts ``EventBatch`` messages to a widget at most a few times a second, except for rare
events that matter at once (evaluations, samples, warnings, the end). The UI never sees one message
per batch or per token, so it stays responsive while a model trains on every core.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from textual.message import Message
from textual.widget import Widget

from rnnchat import events as ev
from rnnchat.errors import RnnchatError

URGENT = (ev.Started, ev.Eval, ev.Sample, ev.Warning, ev.Done, ev.SampleDone)


class Tagged(Message):
    """A message about one stream or job of a widget, named by ``tag``: the widget drops those of a stream
    it no longer shows."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag


class EventBatch(Tagged):
    """Events from one stream, in order, gathered since the last delivery."""

    def __init__(self, tag: str, events: list[ev.Event]) -> None:
        super().__init__(tag)
        self.events = events


class StreamFailed(Tagged):
    """The stream stopped with an error; ``text`` is one sentence for a notification."""

    def __init__(self, tag: str, text: str) -> None:
        super().__init__(tag)
        self.text = text


@dataclass
class PumpStats:
    events: int = 0
    messages: int = 0


def pump(target: Widget, tag: str, events: Iterable[ev.Event], interval: float = 0.25) -> PumpStats:
    """Drain ``events`` (call this inside a thread worker), posting batches to ``target``."""
    stats = PumpStats()
    batch: list[ev.Event] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal batch, last
        if batch:
            target.post_message(EventBatch(tag, batch))
            stats.messages += 1
            batch = []
        last = time.monotonic()

    try:
        for event in events:
            batch.append(event)
            stats.events += 1
            if isinstance(event, URGENT) or time.monotonic() - last >= interval:
                flush()
    except RnnchatError as exc:
        flush()
        target.post_message(StreamFailed(tag, str(exc)))
    except Exception as exc:  # noqa: BLE001 - a bug in the engine must not kill the app silently
        flush()
        target.post_message(StreamFailed(tag, f"internal error: {type(exc).__name__}: {exc}"))
    flush()
    return stats
