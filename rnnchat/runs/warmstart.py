"""Start a chat model, a classifier or another language model from a language-model run (``--init-from RUN``):
learn the language first.

Each takes the language model's tokenizer and shape (layers, hidden, embed) and its embedding.
A language model fine-tuned on new text takes everything: cell, shape, tie and every weight. At character
level its vocabulary grows by the characters of the new text the base never saw (appended: every known
character keeps its id); their embedding rows start as the mean of the known ones and their output rows
predict them rarely (no weight, a bias below the rarest known character's), so the start predicts the
base's text as the base did. A subword vocabulary is kept as it is: its byte pieces spell any new character.
A chat model takes its LSTM as the reply decoder and its output head (a tied language model's head is its
embedding). The decoder starts from a zero state as the language model does (the bridge from the encoder
starts at zero), and its output reaches the head through the attention mix tanh(W_c [context; h]), which
starts as tanh(h): the context half at zero. So on its first step the new decoder predicts the next reply
token as the language model would have, up to that tanh. The encoder and the attention start fresh; the
shared embedding gives the encoder the language model's word sense.
A classifier takes its cell and recurrent layers as its encoder (a second, right-to-left direction starts
fresh); its output layer over the labels starts fresh. What each kind takes is its row in ``_TARGETS``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.paths import builtin_base_dir
from rnnchat.runs.kinds import KINDS
from rnnchat.runs.opened import open_language_model
from rnnchat.text.tokenizers import CharTokenizer, load_tokenizer
from rnnchat.vocab import EOD


@dataclass(frozen=True)
class _Target:
    rnn: str                      # where the language model's recurrent layers go ("decoder.", "rnn.")
    head: bool                    # the output head too (the same vocabulary)
    cell: str = ""                # the one cell this kind's recurrent layers have ("": any, inherited)
    same: bool = False            # the same model: tie inherited too, vocabulary grown by the new text


_TARGETS = {"chat": _Target("decoder.", True, cell="lstm"), "classify": _Target("rnn.", False),
            "lm": _Target("rnn.", True, same=True)}
# A new character's output row starts this far below the rarest known character's bias (a hundredth of its odds):
# rare, not a confident guess, and the base's own predictions keep nearly all their mass.
_NEW_ROW_MARGIN = math.log(100)
_VOCAB_ROWS = ("embed.weight", "head.weight", "head.bias")   # one row per token: these grow with the vocabulary
# The schedule a language model fine-tuned from another trains with, unless given: lr 5e-3 beat 2e-3 from the
# base at 5 minutes, and windows of 64 with the state carried beat 128 without (2.5x the steps; benchmarks/
# finetune.py, benchmarks/RESULTS.md); no warm-up, batch 32, and the lower layers slowed or frozen were no better.
FINE_TUNE = {"lr": 5e-3, "warmup_steps": 100, "seq_len": 64, "carry_state": True}
# A start that already knows the language needs less dropout on a small corpus than the rule's 0.2 for a run from
# scratch: 0.1 beat it on all four corpora fine-tuned from the base (journal 2026-12-05-base-second-leg.md).
FINE_TUNE_DROPOUT = 0.1


def _kind_of(obj) -> str:
    """The kind whose model config (or model) ``obj`` is."""
    for kind in KINDS.values():
        if isinstance(obj, (kind.model_config, kind.model)) and kind.name in _TARGETS:
            return kind.name
    raise ConfigError(f"a {type(obj).__name__} cannot start from a language model", "init_from")


@dataclass(frozen=True)
class WarmStart:
    run: str                      # the language-model run's name
    checkpoint: str               # "best" or "last"
    step: int                     # the step that checkpoint was saved at
    tokenizer: Any
    weights: dict[str, torch.Tensor]
    shape: dict                   # layers, hidden, embed of the language model
    cell: str = "lstm"            # its recurrent cell
    tie: bool = False             # its head shares the embedding

    def record(self) -> dict:
        """What run.json keeps of where the run started."""
        return {"run": self.run, "checkpoint": self.checkpoint, "step": self.step}


def open_start(run: str | os.PathLike, which: str = "best") -> WarmStart:
    """The language model a run starts from; one clear error for a run that cannot be one."""
    opened = open_language_model(run, which)
    cfg = opened.model.cfg
    step = opened.meta.summary.step
    return WarmStart(opened.name, opened.which, step, opened.tokenizer, opened.model.weights(),
                     {"layers": cfg.layers, "hidden": cfg.hidden, "embed": cfg.embed}, cfg.cell, cfg.tie)


def for_corpus(start: WarmStart, model_cfg, corpus) -> WarmStart:
    """``start`` with its character vocabulary grown by ``corpus``'s unseen characters, for a language model
    fine-tuned on it (other kinds, and subword vocabularies, keep the language model's as it is)."""
    if not _TARGETS[_kind_of(model_cfg)].same or not isinstance(start.tokenizer, CharTokenizer):
        return start
    return dataclasses.replace(start, tokenizer=start.tokenizer.grown(d.text for d in corpus.documents))


def fit_configs(start: WarmStart, model_cfg, train_cfg):
    """The new run's model and training configs with the language model's tokenizer and shape."""
    kind, target = _kind_of(model_cfg), _TARGETS[_kind_of(model_cfg)]
    if target.cell and start.cell != target.cell:
        raise ConfigError(f"run '{start.run}' uses {start.cell.upper()} cells; {KINDS[kind].what}'s recurrent "
                          f"layers are {target.cell.upper()}, so start it from a {target.cell.upper()} language "
                          f"model (rnnchat train ... --cell {target.cell})", "init_from")
    tok = start.tokenizer
    shape = {**start.shape, **({} if target.cell else {"cell": start.cell})}
    if target.same:
        shape["tie"] = start.tie
    model_cfg = dataclasses.replace(model_cfg, vocab_size=tok.vocab_size, **shape)
    if model_cfg.tie and model_cfg.embed != model_cfg.hidden:
        model_cfg = dataclasses.replace(model_cfg, tie=False)
    model_cfg.validate()
    return model_cfg, dataclasses.replace(train_cfg, level=tok.kind, vocab_size=tok.vocab_size)


# A small corpus from scratch is pointed at the base when the base spells it: at most this many of its characters
# are ones the base never read (a few symbols or accents; a script of its own has dozens).
_BASE_HINT_UNSEEN = 4


def base_hint(model_cfg, tokenizer) -> str:
    """For a character-level language model trained from scratch on a corpus it would memorise: a pointer to the
    built-in base when the base spells the corpus (it did better on 20-237 KB of English it never read;
    benchmarks/RESULTS.md); "" otherwise."""
    if not _TARGETS[_kind_of(model_cfg)].same or not isinstance(tokenizer, CharTokenizer):
        return ""
    try:
        known = load_tokenizer(builtin_base_dir())
    except (OSError, CheckpointError):   # a broken install still trains; `--init-from base` says what is wrong
        return ""
    if not isinstance(known, CharTokenizer):
        return ""
    unseen = set(tokenizer.chars) - set(known.chars)
    if len(unseen) > _BASE_HINT_UNSEEN:
        return ""
    return "from scratch: --init-from base (the built-in English model) usually does better on a corpus this small"


def fine_tune_schedule(start: WarmStart, model_cfg, train_cfg, given) -> tuple[Any, str]:
    """A language model fine-tuned from another takes FINE_TUNE's schedule (settings in ``given`` stay); other
    kinds keep theirs. Returns the training config and a line for the started note ("" when unchanged)."""
    if not _TARGETS[_kind_of(model_cfg)].same:
        return train_cfg, ""
    taken = {k: v for k, v in FINE_TUNE.items() if k not in given}
    shown = ", ".join(f"{k.replace('_', ' ')} {v:g}" if not isinstance(v, bool) else f"{k.replace('_', ' ')} "
                      f"{'on' if v else 'off'}" for k, v in taken.items())
    note = f"fine-tuning from '{start.run}' (step {start.step:,}): {shown}" if taken else ""
    return dataclasses.replace(train_cfg, **taken), note


def fine_tune_dropout(start: WarmStart | None, before, settled, given) -> tuple[Any, str]:
    """A language model fine-tuned from another takes FINE_TUNE_DROPOUT where settling raised its dropout above
    it for a small corpus (a dropout in ``given`` stays); returns the model config and a line for the started
    note ("" when unchanged)."""
    if (start is None or "dropout" in given or not _TARGETS[_kind_of(settled)].same
            or settled.dropout <= max(before.dropout, FINE_TUNE_DROPOUT)):
        return settled, ""
    return dataclasses.replace(settled, dropout=FINE_TUNE_DROPOUT), (
        f"fine-tuning takes dropout {FINE_TUNE_DROPOUT:g} instead (its start knows the language)")


@torch.no_grad()
def apply(start: WarmStart, model) -> list[str]:
    """Copy the language model's weights into a fresh model; returns the names of the weights set."""
    kind = _kind_of(model)
    target = _TARGETS[kind]
    lm, own = start.weights, dict(model.named_parameters())
    if target.head and "head.weight" not in lm and start.tie:
        lm = {**lm, "head.weight": lm["embed.weight"]}             # a tied head is its embedding
    copies = {"embed.weight": "embed.weight"}
    if target.head:
        copies.update({"head.weight": "head.weight", "head.bias": "head.bias"})
    for name in lm:
        if name.startswith("rnn."):
            copies[name] = target.rnn + name.removeprefix("rnn.")
    done = []
    for src, dst in copies.items():
        if src not in lm or dst not in own:
            continue
        if target.same and src in _VOCAB_ROWS and own[dst].shape[1:] == lm[src].shape[1:] \
                and len(own[dst]) > len(lm[src]):
            _grow(own[dst], lm[src].to(own[dst].dtype), src)      # the vocabulary grew by the new text
            done.append(dst)
            continue
        if own[dst].shape != lm[src].shape:
            raise ConfigError(f"run '{start.run}': {src} has shape {tuple(lm[src].shape)}, {KINDS[kind].what} "
                              f"needs {tuple(own[dst].shape)} for {dst}"
                              + (" (a bidirectional classifier's upper layers read both directions: drop "
                                 "--bidirectional or use one layer)" if kind == "classify" else ""), "init_from")
        own[dst].copy_(lm[src].to(own[dst].dtype))
        done.append(dst)
    if kind != "chat":
        return done
    hidden = start.shape["hidden"]
    model.combine.weight[:, :hidden].zero_()                    # the mix passes the decoder's output on
    model.combine.weight[:, hidden:].copy_(torch.eye(hidden))
    model.combine.bias.zero_()
    model.bridge.weight.zero_()                                 # the decoder starts from a zero state
    model.bridge.bias.zero_()
    done += ["combine.weight", "combine.bias", "bridge.weight", "bridge.bias"]
    return done


def _grow(own: torch.Tensor, base: torch.Tensor, name: str) -> None:
    """Rows of the grown vocabulary: the base's own first, unchanged; a new character's embedding the
    known characters' mean, its output row rare (no weight, a bias below the rarest known character's)."""
    n = len(base)
    own[:n].copy_(base)
    known = base[EOD + 1:] if n > EOD + 1 else base
    if name == "embed.weight":
        own[n:].copy_(known.mean(0))
    elif name == "head.weight":
        own[n:].zero_()
    else:
        own[n:].fill_(float(known.min()) - _NEW_ROW_MARGIN)
