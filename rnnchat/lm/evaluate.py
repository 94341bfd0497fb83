"""Scoring text with a language model: loss per token, bits per character, perplexity."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rnnchat.device import autocast
from rnnchat.lm.data import eval_windows
from rnnchat.text.tokenizers import Tokenizer
from rnnchat.vocab import EOD


@torch.no_grad()
def mean_loss(model, tokens: np.ndarray, max_tokens: int, batch_size: int, seq_len: int,
              device: torch.device = torch.device("cpu"), precision: str = "fp32") -> tuple[float, int]:
    """Mean next-token loss in nats over the first ``max_tokens`` tokens, state carried along lanes,
    and how many tokens were scored."""
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y, tail in eval_windows(tokens, max_tokens, batch_size, seq_len):
        x, y = x.to(device), y.to(device)
        if tail and state is not None and x.shape[0] == 1:
            state = _last_row(state)
        with autocast(device, precision):
            logits, state = model(x, state)
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    return total / max(1, count), count


def _last_row(state):
    """The state of the last lane only (batch dimension 1 of (layers, batch, hidden) tensors)."""
    return tuple(s[:, -1:].contiguous() for s in state) if isinstance(state, tuple) else state[:, -1:].contiguous()


@dataclass(frozen=True)
class TextScore:
    loss: float              # nats per token
    bits_per_char: float
    perplexity: float        # per token
    tokens: int
    chars: int
    unknown: int             # tokens the vocabulary did not know

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def score_texts(model, tokenizer: Tokenizer, texts: list[str], seq_len: int = 256, batch_size: int = 32) -> TextScore:
    """Score documents as the model saw them in training: each starts after a boundary marker."""
    parts, unknown = [], 0
    for text in texts:
        ids = tokenizer.encode(text)
        unknown += tokenizer.count_unknown(ids)
        parts += [np.array([EOD], dtype=ids.dtype), ids]
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
    chars = sum(len(t) for t in texts)
    if len(tokens) < 2 or chars == 0:
        raise ValueError("there is no text to score")
    # Lanes lose context only at their starts: a negligible cost next to scoring one token at a time.
    loss, scored = mean_loss(model, tokens, len(tokens) - 1, batch_size, seq_len)
    chars_per_token = chars / (len(tokens) - 1)
    return TextScore(loss=loss, bits_per_char=loss / chars_per_token / math.log(2),
                     perplexity=math.exp(min(loss, 50.0)), tokens=scored, chars=chars, unknown=unknown)
