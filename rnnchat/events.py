"""Small frozen event objects: the one stream every view (CLI, JSON lines, the app) renders.

The training loop and the samplers are iterators of these. Each has a ``kind`` and ``to_dict()``
for JSON output; none holds a tensor or anything a view could mutate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {"event": self.kind, **d}


@dataclass(frozen=True)
class Started(Event):
    """Training is about to begin: what is being trained, where and how."""
    kind: ClassVar[str] = "started"
    run: str
    run_dir: str
    corpus: str
    level: str
    vocab_size: int
    parameters: int
    train_tokens: int
    val_tokens: int
    device: str
    precision: str
    step: int                     # the first step (non-zero when resuming)
    max_steps: int                # 0 when the run is limited by time only
    minutes: float
    resumed: bool
    processes: int = 1            # more than one when launched by torchrun (each trains its own batches)
    started_from: str = ""        # the language-model run a chat run started from (--init-from), if any
    preset: str = ""              # what the auto preset chose and why, in one line; "" for other presets


@dataclass(frozen=True)
class Step(Event):
    kind: ClassVar[str] = "step"
    step: int
    loss: float                   # nats per token, mean over the last log interval
    lr: float
    grad_norm: float              # before clipping
    tokens_per_s: float
    chars_per_s: float
    elapsed: float                # seconds of training time so far (across resumes)
    progress: float               # 0..1 by steps or time budget, whichever is further
    eta: float | None             # seconds left, when a limit is known


@dataclass(frozen=True)
class Eval(Event):
    kind: ClassVar[str] = "eval"
    step: int
    val_loss: float               # nats per token
    bits_per_char: float
    perplexity: float             # per token
    train_loss: float
    best: bool                    # the best validation loss so far
    distinct1: float | None = None  # chat: distinct-1/2 of greedy replies to held-out prompts
    distinct2: float | None = None
    figures: tuple[tuple[str, Any], ...] = ()   # a kind's own held-out figures beyond these (name, value)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "figures": dict(self.figures)}


@dataclass(frozen=True)
class Sample(Event):
    kind: ClassVar[str] = "sample"
    step: int
    text: str
    longest_copy: int | None = None     # characters of the longest span found verbatim in the training text
    copied_share: float | None = None   # share of its 20-character windows found there


@dataclass(frozen=True)
class Checkpoint(Event):
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str
    which: str                    # "last" or "best"


@dataclass(frozen=True)
class Warning(Event):  # noqa: A001 - the event is a warning; shadowing the builtin is local to this module
    kind: ClassVar[str] = "warning"
    message: str


@dataclass(frozen=True)
class Done(Event):
    kind: ClassVar[str] = "done"
    step: int
    reason: str                   # "max_steps", "epochs", "time", "stalled", "interrupted", "failed"
    best_val_loss: float | None
    best_bits_per_char: float | None
    elapsed: float
    run_dir: str
    message: str = ""


@dataclass(frozen=True)
class Token(Event):
    """One sampled token, with the text it adds and how likely the model thought it was."""
    kind: ClassVar[str] = "token"
    text: str
    id: int
    prob: float
    alternatives: tuple[tuple[str, float], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SampleDone(Event):
    kind: ClassVar[str] = "sample_done"
    tokens: int
    chars: int
    seconds: float
    reason: str                   # "length", "stop", "cancelled"
    weights: str = "fp32"         # the sampler's copy of the weights: "fp32" or "int8" (lm/stepper.py)
    source: str = ""              # a chat reply: "retrieved" (from the run's dialogue) or "model" (the model wrote it)


@dataclass(frozen=True)
class Copied(Event):
    """How much of a finished sample is found verbatim in the training text (after its SampleDone)."""
    kind: ClassVar[str] = "copied"
    longest_copy: int                   # characters of the longest span found verbatim
    copied_share: float                 # share of its 20-character windows found
    spans: tuple[tuple[int, int], ...] = ()   # (start, end) characters of the copied windows, merged


@dataclass(frozen=True)
class Beams(Event):
    """Beam search in progress (only when asked for): the live hypotheses after ``step`` tokens."""
    kind: ClassVar[str] = "beams"
    step: int
    texts: tuple[str, ...]
    scores: tuple[float, ...]     # summed log-probabilities
