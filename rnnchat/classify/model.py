"""The classifier: embedding, recurrent layers, a summary of the text (final state, mean or max), a linear layer.

``forward(ids, lengths)`` reads a padded batch (batch, time) of texts of the given lengths and returns
logits (batch, labels). ``read(ids)`` reads one text and returns the logits after every token, for the
views that show a decision forming. Parameter names follow the language model's (``embed``, ``rnn``), so a
language model's layers load into it (``runs/warmstart.py``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnchat.classify.config import ClassifierConfig
from rnnchat.weights import Weights

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class Classifier(Weights, nn.Module):
    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        cfg.validate()
        if cfg.vocab_size < 2:
            raise ValueError("vocab_size must be set from the tokenizer before building a model")
        if len(cfg.labels) < 2:
            raise ValueError("labels must be set from the corpus before building a model")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        extra = {"nonlinearity": "tanh"} if cfg.cell == "rnn" else {}
        self.rnn = _CELLS[cfg.cell](cfg.embed, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                                    dropout=cfg.dropout if cfg.layers > 1 else 0.0,
                                    bidirectional=cfg.bidirectional, **extra)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden * cfg.directions, len(cfg.labels))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.embed(ids))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        if self.cfg.pooling == "last":
            h = state[0] if isinstance(state, tuple) else state           # (layers*dirs, batch, hidden)
            summary = torch.cat(list(h[-self.cfg.directions:]), dim=-1)   # the top layer, each direction
        else:
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
            mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths.to(ids.device)[:, None])
            mask = mask.unsqueeze(-1)
            if self.cfg.pooling == "mean":
                summary = (out * mask).sum(1) / mask.sum(1).clamp(min=1)
            else:
                summary = out.masked_fill(~mask, float("-inf")).max(1).values
        return self.head(self.drop(summary))

    @torch.no_grad()
    def read(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (time, labels) after each token of one text (1-D ids), as if the text ended there. A
        backward direction has read the whole text at every position, so its part is the full text's."""
        x = self.embed(ids[None])
        out, _ = self.rnn(x)                                   # (1, time, hidden * dirs)
        H, T = self.cfg.hidden, ids.shape[0]
        fwd = out[0, :, :H]
        if self.cfg.pooling == "mean":
            fwd = fwd.cumsum(0) / torch.arange(1, T + 1, device=ids.device)[:, None]
        elif self.cfg.pooling == "max":
            fwd = fwd.cummax(0).values
        parts = [fwd]
        if self.cfg.bidirectional:
            back = out[0, :, H:]
            pooled = {"last": back[0], "mean": back.mean(0), "max": back.max(0).values}[self.cfg.pooling]
            parts.append(pooled.expand(T, H))
        return self.head(torch.cat(parts, dim=-1))
