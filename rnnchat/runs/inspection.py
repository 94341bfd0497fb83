"""A run looked inside, for the Inspect tab and ``rnnchat inspect`` alike: which runs ``rnnchat.lm.inspect``
reads (a language model or a classifier: an embedding, then recurrent layers; a chat model is refused), a
text's trace with the units that track it and the gate saturation (``look_inside``), and the gradients
through time over a window of it (``measure``): a language model's of the last position's next-token loss,
a classifier's of its predicted label's loss (or a chosen label's), each direction of a bidirectional one
apart. A classifier that pools the mean or max of its states has no gradients through time to show."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rnnchat.errors import CheckpointError, ConfigError, RnnchatError
from rnnchat.lm import inspect as ins
from rnnchat.runs.meta import CorpusInfo, RunMeta
from rnnchat.runs.opened import OpenedRun, training_corpus
from rnnchat.safetext import neutralise

KINDS = ("lm", "classify")     # the runs whose layers lm.inspect reads
WINDOW = 102                   # tokens: lags 0..100, as benchmarks/gradients.py measures
MIN_TOKENS = 3                 # two lags at least, or there is no line to draw
_VAL_CHARS = WINDOW * 16       # enough characters for a window of subword tokens too


def inspectable(opened: OpenedRun) -> OpenedRun:
    """``opened`` when lm.inspect can read its layers; CheckpointError saying why not."""
    kind = opened.meta.kind
    if kind.name not in KINDS:
        raise CheckpointError(f"run '{opened.name}' is {kind.describe()}: inspect looks inside language models "
                              "and classifiers only")
    return opened


def is_classifier(opened: OpenedRun) -> bool:
    return opened.meta.kind.name == "classify"


def shown_kinds(cell: str) -> tuple[str, ...]:
    """What a unit's value can be shown of for this cell: "hidden", "cell" (LSTM) and the gates."""
    return ("hidden", *(("cell",) if cell == "lstm" else ()), *ins.GATES[cell])


@dataclass
class Inside:
    """A text's trace and what is computed from it."""

    trace: ins.Trace
    pieces: list[str]              # each position's token text
    units: list[ins.UnitMatch]     # the units that track the text, best first
    saturation: list[dict]         # per layer (and direction) and gate

    @property
    def kinds(self) -> tuple[str, ...]:
        return shown_kinds(self.trace.cell)


def look_inside(opened: OpenedRun, ids, top: int) -> Inside:
    """Trace ``ids`` through the run's model; the ``top`` units that track the text (none for 0) and the
    gate saturation."""
    tok = opened.tokenizer
    tr = ins.trace(opened.model, ids)
    positions = ins.char_positions(tok, ids) if tok.kind != "char" else tok.decode(ids)
    # A char run's decoded text has one character per position unless a token decodes to none (<unk>'s).
    units = ins.interesting_units(tr, positions, top) if top and len(positions) == len(ids) else []
    return Inside(tr, [tok.token_text(int(i)) for i in ids], units, ins.gate_saturation(tr))


# ------------------------------------------------------------------------------ gradients in time

@dataclass(frozen=True)
class Gradients:
    run: str
    cell: str
    source: str                # what the window is: "the text" or "validation text"
    tokens: int
    norms: np.ndarray          # by lag: 0 is the last position
    backward: np.ndarray | None = None   # a bidirectional model's right-to-left direction, by lag from the start
    label: str | None = None   # a classifier's: the label whose loss they follow

    def of(self, direction: str) -> np.ndarray:
        """The norms of one direction (a one-way model's only one, whichever is asked)."""
        return self.backward if direction == "backward" and self.backward is not None else self.norms

    def title(self, direction: str = "forward") -> str:
        which = f" \u00b7 {direction} direction" if self.backward is not None else ""
        return f"gradients through time \u00b7 {self.cell}{which} \u00b7 {self.tokens} tokens of {self.source}"


@lru_cache(maxsize=8)
def _validation_start(info: CorpusInfo, fraction: float) -> str:
    from rnnchat.text.split import split_spans

    corpus = training_corpus(info)           # the run's own text only, never whatever its run.json names
    _, val = split_spans(corpus, fraction)
    if not val:
        raise ConfigError("the run's corpus has no validation text")
    doc, start, end = val[0]
    return corpus.documents[doc].text[start:min(end, start + _VAL_CHARS)]


def validation_text(meta: RunMeta) -> str:
    """The start of the run's validation text (cached per run description); ConfigError when it cannot be read."""
    try:
        return _validation_start(meta.corpus, meta.train.val_fraction)
    except RnnchatError as exc:
        raise ConfigError(f"cannot read the run's validation text ({exc}); type a text to measure on instead") \
            from None


def gradients_refusal(opened: OpenedRun) -> str:
    """Why the run has no gradients through time to show ("" when it has)."""
    pooling = getattr(opened.model.cfg, "pooling", "last")
    if is_classifier(opened) and pooling != "last":   # its loss would depend on every state, not the last
        return (f"this classifier pools the {pooling} of its states; gradients through time follow a classifier "
                "that reads its last state")
    return ""


def label_index(opened: OpenedRun, label: str) -> int:
    """The output index of a classifier's ``label``; ConfigError naming the run's labels when it has none such."""
    labels = opened.model.cfg.labels
    if label not in labels:
        raise ConfigError(f"the run has no label {neutralise(label)!r}; its labels: "
                          f"{', '.join(neutralise(x) for x in labels)}")
    return labels.index(label)


def measure(opened: OpenedRun, text: str, label: str | None = None, too_short: str = "") -> Gradients:
    """The gradient norms over the first ``WINDOW`` tokens of ``text`` (empty: of the run's validation text);
    a classifier's follow ``label``'s loss (None: the label it predicts after the window). ConfigError when
    there are fewer than ``MIN_TOKENS`` (``too_short`` is added to that message) or the run has none."""
    source = "the text" if text else "validation text"
    classifier = is_classifier(opened)
    if classifier and not text:               # a labelled corpus has no running text to take a window of
        raise ConfigError("type a text: a classifier's gradients through time are measured on the text")
    refusal = gradients_refusal(opened)
    if refusal:
        raise ConfigError(refusal)
    if label is not None and not classifier:
        raise ConfigError("a language model's gradients follow the next token's loss, not a label's")
    ids = np.asarray(opened.tokenizer.encode(text or validation_text(opened.meta)), dtype=np.int64)[:WINDOW]
    if len(ids) < MIN_TOKENS:
        raise ConfigError(f"{source} is too short for gradients through time: it needs at least {MIN_TOKENS} "
                          f"tokens, this has {len(ids)}{too_short}")
    target = None
    if classifier:   # the predicted label's loss after the whole window, or the chosen one's
        target = (label_index(opened, label) if label is not None
                  else int(ins.trace(opened.model, ids).logits[-1].argmax()))
    norms = ins.gradients_by_direction(opened.model, ids, target)
    return Gradients(opened.name, opened.model.cfg.cell, source, len(ids), norms["forward"], norms.get("backward"),
                     opened.model.cfg.labels[target] if target is not None else None)
