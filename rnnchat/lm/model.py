"""The recurrent language model: embedding -> N recurrent layers -> dropout -> linear head."""

from __future__ import annotations

import torch
from torch import nn

from rnnchat.lm.config import ModelConfig
from rnnchat.weights import Weights

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


class RNNLM(Weights, nn.Module):
    """A character- or subword-level recurrent language model.

    ``forward(idx, state)`` takes token ids of shape (batch, time) and returns logits of shape
    (batch, time, vocab) and the final recurrent state, so callers can carry it onwards.
    For ``cell="rnn"`` the recurrence is the vanilla h_t = tanh(W_hh h_{t-1} + W_xh x_t + b).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        if cfg.vocab_size < 2:
            raise ValueError("vocab_size must be set from the tokenizer before building a model")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        extra = {"nonlinearity": "tanh"} if cfg.cell == "rnn" else {}
        self.rnn = _CELLS[cfg.cell](
            cfg.embed, cfg.hidden, num_layers=cfg.layers, batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0, **extra,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.vocab_size)
        if cfg.tie:
            self.head.weight = self.embed.weight
        self._init_weights()

    def _init_weights(self) -> None:
        # PyTorch's own initialisation: it beat a small embedding with forget-gate bias 1 at equal steps
        # (benchmarks/RESULTS.md). A tied head shares the embedding, so tied tables start small.
        if self.cfg.tie:
            nn.init.normal_(self.embed.weight, std=self.cfg.hidden ** -0.5)

    def forward(self, idx: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        x = self.drop(self.embed(idx))
        out, state = self.rnn(x, state)
        return self.head(self.drop(out)), state


def detach_state(state: State) -> State:
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()
