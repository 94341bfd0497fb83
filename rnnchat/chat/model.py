"""The chat model: an LSTM encoder reads the whole prompt, an LSTM decoder writes the reply with attention.

The reply starts only after the encoder has read every token of the input, as in RNN machine
translation. Attention is Luong's global attention computed after the decoder LSTM: at each reply
position the decoder output is scored against every encoder output ("general": h_dec . W h_enc;
"dot": h_dec . h_enc), the softmax-weighted sum of encoder outputs is the context, and
tanh(W_c [context; h_dec]) feeds the output head. Because attention sits after the recurrence (no
input feeding), a whole reference reply runs through the decoder LSTM in one call during training.

Token ids: the tokenizer's EOD id separates context turns in the encoder input, starts every reply
(the decoder's first input) and ends it (the last target). Padding uses UNK's id and is masked out
of attention and of the loss.

The encoder does not use packed sequences, which ran an order of magnitude slower on the CPU
(benchmarks/RESULTS.md). Instead each direction is its own single-layer LSTM per layer, and the backward
one reads every row reversed within its own length (pads last), so padding never reaches a valid position. The decoder
starts from a learned bridge of the encoder's summary (the forward output at the last real token and
the backward output at the first), with zero cell states.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnchat.chat.config import Seq2SeqConfig
from rnnchat.weights import Weights

State = tuple[torch.Tensor, torch.Tensor]


class Encoded:
    """What the decoder attends to: encoder outputs, their mask and (for "general") their projection."""

    __slots__ = ("memory", "keys", "mask")

    def __init__(self, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor):
        self.memory, self.keys, self.mask = memory, keys, mask

    def repeat(self, n: int) -> "Encoded":
        """Each batch row repeated n times (rows 0,0,..,1,1,..): the layout beam search uses."""
        return Encoded(*(t.repeat_interleave(n, dim=0) for t in (self.memory, self.keys, self.mask)))

    def select(self, rows: torch.Tensor) -> "Encoded":
        return Encoded(self.memory[rows], self.keys[rows], self.mask[rows])


class Seq2Seq(Weights, nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        cfg.validate()
        if cfg.vocab_size < 3:
            raise ValueError("vocab_size must be set from the tokenizer before building a model")
        if cfg.dropout is None:
            raise ValueError("dropout must be settled (chat.config.dropout_for) before building a model")
        self.cfg = cfg
        H, E, L = cfg.hidden, cfg.embed, cfg.layers
        drop = cfg.dropout if L > 1 else 0.0
        self.embed = nn.Embedding(cfg.vocab_size, E)          # shared: one vocabulary on both sides
        width = H // 2 if cfg.bidirectional else H
        self.enc_fwd = nn.ModuleList(nn.LSTM(E if i == 0 else H, width, batch_first=True) for i in range(L))
        self.enc_bwd = nn.ModuleList(nn.LSTM(E if i == 0 else H, width, batch_first=True) for i in range(L)) \
            if cfg.bidirectional else None
        self.enc_drop = nn.Dropout(drop)
        self.bridge = nn.Linear(H, L * H)
        self.decoder = nn.LSTM(E, H, L, batch_first=True, dropout=drop)
        self.attn = nn.Linear(H, H, bias=False) if cfg.attention == "general" else None
        self.combine = nn.Linear(2 * H, H)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(H, cfg.vocab_size)
        if cfg.tie:
            self.head.weight = self.embed.weight
        # PyTorch's own initialisation, as the LM's: it reached a better best held-out loss at equal steps
        # (benchmarks/chat_init.py, RESULTS.md). A tied head shares the embedding, so tied tables start small.
        if cfg.tie:
            nn.init.normal_(self.embed.weight, std=cfg.hidden ** -0.5)

    # ---- encoder --------------------------------------------------------------------------------

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[Encoded, State]:
        """src (B, S) padded ids, lengths (B,) >= 1 -> attention memory and the decoder's first state."""
        B, S = src.shape
        lengths = lengths.to(src.device)
        positions = torch.arange(S, device=src.device)[None, :]
        mask = positions < lengths[:, None]
        # Row b reversed within its length: t -> len_b - 1 - t for real tokens, pads stay in place.
        reverse = torch.where(mask, lengths[:, None] - 1 - positions, positions)
        x = self.drop(self.embed(src))
        for i in range(self.cfg.layers):
            if i:
                x = self.enc_drop(x)
            fwd, _ = self.enc_fwd[i](x)
            if self.enc_bwd is None:
                x = fwd
                continue
            flip = reverse[:, :, None].expand(-1, -1, x.shape[-1])
            bwd, _ = self.enc_bwd[i](x.gather(1, flip))
            x = torch.cat([fwd, bwd.gather(1, reverse[:, :, None].expand(-1, -1, bwd.shape[-1]))], dim=-1)
        memory = x
        last = (lengths - 1).clamp(min=0)[:, None, None]
        if self.enc_bwd is None:
            summary = memory.gather(1, last.expand(-1, 1, memory.shape[-1]))[:, 0]
        else:
            half = memory.shape[-1] // 2
            summary = torch.cat([memory[:, :, :half].gather(1, last.expand(-1, 1, half))[:, 0],
                                 memory[:, 0, half:]], dim=-1)
        L, H = self.cfg.layers, self.cfg.hidden
        h = torch.tanh(self.bridge(summary)).view(B, L, H).transpose(0, 1).contiguous()
        c = torch.zeros_like(h)
        keys = self.attn(memory) if self.attn is not None else memory
        return Encoded(memory, keys, mask), (h, c)

    # ---- decoder --------------------------------------------------------------------------------

    def decode(self, tgt_in: torch.Tensor, enc: Encoded, state: State,
               with_attention: bool = False) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """tgt_in (B, T) ids -> logits (B, T, V), the new state and (optionally) attention (B, T, S)."""
        out, state = self.decoder(self.drop(self.embed(tgt_in)), state)
        scores = torch.bmm(out, enc.keys.transpose(1, 2).to(out.dtype))
        scores = scores.float().masked_fill(~enc.mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights.to(enc.memory.dtype), enc.memory)
        mixed = torch.tanh(self.combine(torch.cat([context.to(out.dtype), out], dim=-1)))
        logits = self.head(self.drop(mixed))
        return logits, state, (weights if with_attention else None)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        enc, state = self.encode(src, lengths)
        return self.decode(tgt_in, enc, state)[0]
