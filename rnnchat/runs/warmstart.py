"""Start a chat model from a language-model run (``--init-from RUN``): learn the genre's language first.

The chat run takes the language model's tokenizer and shape (layers, hidden, embed), and its
embedding, its LSTM (as the reply decoder) and its output head. The decoder's output reaches the head
through the attention mix tanh(W_c [context; h]); that mix starts as the identity on h, so on its first
step the new decoder predicts the next reply token as the language model would have. The encoder and
the attention start fresh; the shared embedding gives the encoder the language model's word sense.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch

from rnnchat.errors import ConfigError
from rnnchat.runs.opened import open_language_model

# The settings a chat run inherits from the language model it starts from.
INHERITED = ("level", "vocab_size", "layers", "hidden", "embed")


@dataclass(frozen=True)
class WarmStart:
    run: str                      # the language-model run's name
    checkpoint: str               # "best" or "last"
    step: int                     # the step that checkpoint was saved at
    tokenizer: Any
    weights: dict[str, torch.Tensor]
    shape: dict                   # layers, hidden, embed of the language model

    def record(self) -> dict:
        """What run.json keeps of where the chat model started."""
        return {"run": self.run, "checkpoint": self.checkpoint, "step": self.step}


def open_start(run: str | os.PathLike, which: str = "best") -> WarmStart:
    """The language model a chat run starts from; one clear error for a run that cannot be one."""
    opened = open_language_model(run, which)
    cfg = opened.model.cfg
    if cfg.cell != "lstm":
        raise ConfigError(f"run '{opened.name}' uses {cfg.cell.upper()} cells; a chat model's decoder is an "
                          "LSTM, so start it from an LSTM language model (rnnchat train ... --cell lstm)", "init_from")
    step = opened.meta.summary.step
    return WarmStart(opened.name, opened.which, step, opened.tokenizer, opened.model.weights(),
                     {"layers": cfg.layers, "hidden": cfg.hidden, "embed": cfg.embed})


def fit_configs(start: WarmStart, model_cfg, train_cfg):
    """The chat run's model and training configs with the language model's tokenizer and shape."""
    tok = start.tokenizer
    model_cfg = dataclasses.replace(model_cfg, vocab_size=tok.vocab_size, **start.shape)
    if model_cfg.tie and model_cfg.embed != model_cfg.hidden:
        model_cfg = dataclasses.replace(model_cfg, tie=False)
    model_cfg.validate()
    return model_cfg, dataclasses.replace(train_cfg, level=tok.kind, vocab_size=tok.vocab_size)


@torch.no_grad()
def apply(start: WarmStart, model) -> list[str]:
    """Copy the language model's weights into a fresh chat model; returns the chat weights set."""
    lm, own = start.weights, dict(model.named_parameters())
    copies = {"embed.weight": "embed.weight", "head.weight": "head.weight", "head.bias": "head.bias"}
    for name in lm:
        if name.startswith("rnn."):
            copies[name] = "decoder." + name.removeprefix("rnn.")
    done = []
    for src, dst in copies.items():
        if src not in lm or dst not in own:
            continue
        if own[dst].shape != lm[src].shape:
            raise ConfigError(f"run '{start.run}': {src} has shape {tuple(lm[src].shape)}, the chat model "
                              f"needs {tuple(own[dst].shape)}", "init_from")
        own[dst].copy_(lm[src].to(own[dst].dtype))
        done.append(dst)
    hidden = start.shape["hidden"]
    model.combine.weight[:, hidden:].copy_(torch.eye(hidden))   # the mix passes the decoder's output on
    model.combine.bias.zero_()
    done += ["combine.weight", "combine.bias"]
    return done
