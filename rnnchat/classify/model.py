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
        if not self.cfg.bidirectional:
            return self.head(self.drop(self._read_by_chunks(x, lengths.to(ids.device))))
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

    def _read_by_chunks(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The pooled summary (batch, hidden) of a left-to-right reading of padded texts. Texts longest
        first, time is cut where the batch's lengths halve, and each stretch runs only the texts still
        going, padded: the work of packing without torch's packed RNN, whose CPU backward measured 5x
        slower than the padded batch (``benchmarks/journal/2026-12-04-classify.md``)."""
        order = torch.argsort(lengths, descending=True, stable=True)
        x, lengths = x[order], lengths[order]
        n_rows, L = len(lengths), lengths.tolist()
        ends = sorted({L[-1], *(L[n_rows >> k] for k in range(1, n_rows.bit_length()) if n_rows >> k), L[0]})
        state, parts, start = None, [], 0
        for end in ends:
            n = sum(1 for length in L if length > start)             # the texts still going: a prefix
            if state is not None:
                state = tuple(s[:, :n] for s in state) if isinstance(state, tuple) else state[:, :n]
            out, state = self.rnn(x[:n, start:end], state)
            t = torch.arange(start, end, device=x.device)
            if self.cfg.pooling == "last":
                done = [i for i in range(n) if start < L[i] <= end]  # the texts that end in this stretch
                parts.append(out[done, [L[i] - 1 - start for i in done]])
            else:
                mask = (t[None, :] < lengths[:n, None]).unsqueeze(-1)
                part = (out * mask).sum(1) if self.cfg.pooling == "mean" else \
                    out.masked_fill(~mask, float("-inf")).max(1).values
                parts.append(torch.nn.functional.pad(part, (0, 0, 0, n_rows - n),
                                                     value=0.0 if self.cfg.pooling == "mean" else float("-inf")))
            start = end
        if self.cfg.pooling == "last":
            summary = torch.cat(parts[::-1])        # the longest texts end last: back in longest-first order
        elif self.cfg.pooling == "mean":
            summary = torch.stack(parts).sum(0) / lengths[:, None].clamp(min=1)
        else:
            summary = torch.stack(parts).max(0).values
        return summary[torch.argsort(order)]

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
