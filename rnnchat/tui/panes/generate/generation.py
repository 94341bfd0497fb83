"""What a generation in the Generate pane is: its request, the temperatures of its columns, and the
samplers that make it on the torch thread, side-by-side samples interleaved into one event stream.

Alternatives: every generation up to ``ALT_MAX_LENGTH`` tokens records the 5 most likely tokens at each
step, so colouring can be switched on afterwards. Measured on the 2-core dev machine: 2x256 LSTM
13-16k -> 11-13k chars/s, 1x32 LSTM 72-79k -> 44-53k chars/s; but a Token with 5 alternatives holds
~490 bytes instead of ~40, hence the cap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator, Sequence

from textual.message import Message

from rnnchat import events as ev
from rnnchat.errors import RnnchatError
from rnnchat.lm.config import SampleConfig
from rnnchat.tui.panes.base import RunPane, unknown_notice

if TYPE_CHECKING:
    from rnnchat.runs.opened import OpenedRun
    from rnnchat.sampling import LiveControls

TEMPERATURE_RANGE = (0.0, 5.0)         # what + and - move within
TEMPERATURE_STEP = 0.1
SIDE_BY_SIDE_OFFSETS = (-0.3, 0.0, 0.3)
ALTERNATIVES = 5
ALT_MAX_LENGTH = 50_000                # longer generations record no alternatives (memory, see above)


@dataclass(frozen=True)
class Request:
    run: str
    which: str
    prompt: str
    cfg: SampleConfig                  # seed always set (drawn when the seed field is blank)
    seed_fixed: bool
    temperatures: tuple[float, ...]

    @property
    def alternatives(self) -> int:
        return ALTERNATIVES if self.cfg.length <= ALT_MAX_LENGTH else 0

    def again(self, typed_temperature: str, columns: int) -> Request:
        """This request once more in ``columns`` columns: at the typed temperature when it is a valid one, with
        a new seed unless the seed was fixed."""
        cfg = self.cfg
        try:
            t = float(typed_temperature.strip())
            replace(cfg, temperature=t).validate()
            cfg = replace(cfg, temperature=t)
        except (ValueError, RnnchatError):
            pass
        if not self.seed_fixed:
            cfg = replace(cfg, seed=random.randrange(2**31))
        return replace(self, cfg=cfg, temperatures=column_temperatures(cfg.temperature, columns))


@dataclass(frozen=True)
class ColumnEvent(ev.Event):
    """An event of one of the side-by-side samples, tagged with its column."""
    kind: ClassVar[str] = "column"
    column: int
    event: ev.Event


def sample_columns(open_run: Callable[[str, str], OpenedRun], req: Request, controls: Sequence[LiveControls],
                   post: Callable[[Message], None]) -> Iterator[ev.Event]:
    """On the torch thread: open the run (``open_run(run, which)``) and start a sampler per column of
    ``req``, each with its controls, as one event stream that ends with how much of each column is copied
    from the training text; ``post`` takes the warnings."""
    from rnnchat.lm.generate import generate
    from rnnchat.runs.opened import copy_index

    opened = open_run(req.run, req.which)
    tok = opened.tokenizer
    if req.prompt:
        ids = tok.encode(req.prompt)
        unknown = tok.count_unknown(ids)
        if 0 < unknown < len(ids):
            post(unknown_notice(unknown, "the prompt"))
    streams = [generate(opened.model, tok, replace(req.cfg, temperature=c.temperature), req.prompt,
                        alternatives=req.alternatives, controls=c) for c in controls]
    index, note = copy_index(opened.meta)
    if note:
        post(RunPane.Notice(note, "warning"))
    events = streams[0] if len(streams) == 1 else interleave(streams)
    return with_copies(events, len(streams), index) if index is not None else events


def interleave(streams: Sequence[Iterator[ev.Event]]) -> Iterator[ColumnEvent]:
    """Round-robin over several event streams, one event from each in turn, until all are done."""
    active = list(enumerate(streams))
    while active:
        for item in list(active):
            column, stream = item
            event = next(stream, None)
            if event is None:
                active.remove(item)
            else:
                yield ColumnEvent(column, event)


def column_temperatures(t: float, columns: int) -> tuple[float, ...]:
    """The temperature of each column around ``t``: itself alone, or T-0.3 / T / T+0.3."""
    if columns == 1:
        return (t,)
    return tuple(max(0.0, round(t + d, 2)) for d in SIDE_BY_SIDE_OFFSETS)


def clamp_temperature(t: float) -> float:
    low, high = TEMPERATURE_RANGE
    return min(high, max(low, round(t, 2)))


def stepped_temperature(running: float | None, typed: str, direction: int) -> float:
    """One step up (``direction`` > 0) or down from the ``running`` generation's temperature or, with none,
    from the ``typed`` one (the default when it is no number), within TEMPERATURE_RANGE."""
    if running is None:
        try:
            running = float(typed)
        except ValueError:
            running = SampleConfig().temperature
    return clamp_temperature(running + TEMPERATURE_STEP * (1 if direction > 0 else -1))


def with_copies(events: Iterator[ev.Event], columns: int, index) -> Iterator[ev.Event]:
    """The events, then for each column how much of its text is copied from the training text (measured
    on the torch thread, where the stream is drained)."""
    pieces: list[list[str]] = [[] for _ in range(columns)]
    for event in events:
        inner, column = (event.event, event.column) if isinstance(event, ColumnEvent) else (event, 0)
        if isinstance(inner, ev.Token):
            pieces[column].append(inner.text)
        yield event
    for column, text in enumerate(pieces):
        n = index.measure("".join(text))
        copied = ev.Copied(n.longest_copy, n.copied_share, n.spans)
        yield copied if columns == 1 else ColumnEvent(column, copied)


def copies_of(events: Sequence[ev.Event]) -> dict[int, ev.Copied]:
    found = {}
    for event in events:
        column = 0
        if isinstance(event, ColumnEvent):
            column, event = event.column, event.event
        if isinstance(event, ev.Copied):
            found[column] = event
    return found


def by_column(events: Sequence[ev.Event], columns: int) -> tuple[list[list[ev.Token]], dict[int, ev.SampleDone]]:
    """The tokens of a batch of events, per column, and the columns that ended in it."""
    tokens: list[list[ev.Token]] = [[] for _ in range(columns)]
    done: dict[int, ev.SampleDone] = {}
    for event in events:
        column = 0
        if isinstance(event, ColumnEvent):
            column, event = event.column, event.event
        if isinstance(event, ev.Token):
            tokens[column].append(event)
        elif isinstance(event, ev.SampleDone):
            done[column] = event
    return tokens, done
