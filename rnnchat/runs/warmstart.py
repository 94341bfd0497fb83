"""Start a chat model or a classifier from a language-model run (``--init-from RUN``): learn the language first.

Either takes the language model's tokenizer and shape (layers, hidden, embed) and its embedding.
A chat model takes its LSTM as the reply decoder and its output head. The decoder's output reaches the head
through the attention mix tanh(W_c [context; h]); that mix starts as the identity on h, so on its first
step the new decoder predicts the next reply token as the language model would have. The encoder and
the attention start fresh; the shared embedding gives the encoder the language model's word sense.
A classifier takes its cell and recurrent layers as its encoder (a second, right-to-left direction starts
fresh); its output layer over the labels starts fresh. What each kind takes is its row in ``_TARGETS``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch

from rnnchat.errors import ConfigError
from rnnchat.runs.kinds import KINDS
from rnnchat.runs.opened import open_language_model

# The settings a run inherits from the language model it starts from (a classifier also its cell).
INHERITED = ("level", "vocab_size", "cell", "layers", "hidden", "embed")


@dataclass(frozen=True)
class _Target:
    rnn: str                      # where the language model's recurrent layers go ("decoder.", "rnn.")
    head: bool                    # the output head too (the same vocabulary)
    cell: str = ""                # the one cell this kind's recurrent layers have ("": any, inherited)


_TARGETS = {"chat": _Target("decoder.", True, cell="lstm"), "classify": _Target("rnn.", False)}


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

    def record(self) -> dict:
        """What run.json keeps of where the chat model started."""
        return {"run": self.run, "checkpoint": self.checkpoint, "step": self.step}


def open_start(run: str | os.PathLike, which: str = "best") -> WarmStart:
    """The language model a run starts from; one clear error for a run that cannot be one."""
    opened = open_language_model(run, which)
    cfg = opened.model.cfg
    step = opened.meta.summary.step
    return WarmStart(opened.name, opened.which, step, opened.tokenizer, opened.model.weights(),
                     {"layers": cfg.layers, "hidden": cfg.hidden, "embed": cfg.embed}, cfg.cell)


def fit_configs(start: WarmStart, model_cfg, train_cfg):
    """The new run's model and training configs with the language model's tokenizer and shape."""
    kind, target = _kind_of(model_cfg), _TARGETS[_kind_of(model_cfg)]
    if target.cell and start.cell != target.cell:
        raise ConfigError(f"run '{start.run}' uses {start.cell.upper()} cells; {KINDS[kind].what}'s recurrent "
                          f"layers are {target.cell.upper()}, so start it from a {target.cell.upper()} language "
                          f"model (rnnchat train ... --cell {target.cell})", "init_from")
    tok = start.tokenizer
    shape = {**start.shape, **({} if target.cell else {"cell": start.cell})}
    model_cfg = dataclasses.replace(model_cfg, vocab_size=tok.vocab_size, **shape)
    if model_cfg.tie and model_cfg.embed != model_cfg.hidden:
        model_cfg = dataclasses.replace(model_cfg, tie=False)
    model_cfg.validate()
    return model_cfg, dataclasses.replace(train_cfg, level=tok.kind, vocab_size=tok.vocab_size)


@torch.no_grad()
def apply(start: WarmStart, model) -> list[str]:
    """Copy the language model's weights into a fresh model; returns the names of the weights set."""
    kind = _kind_of(model)
    target = _TARGETS[kind]
    lm, own = start.weights, dict(model.named_parameters())
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
    model.combine.weight[:, hidden:].copy_(torch.eye(hidden))   # the mix passes the decoder's output on
    model.combine.bias.zero_()
    done += ["combine.weight", "combine.bias"]
    return done
