"""What the training loop needs to know about chat: dialogue pairs, the seq2seq model, its loss and eval.

Eval reports the loss per reply token on held-out pairs and, from greedy replies to the first
``_EVAL_PROMPTS`` held-out prompts, distinct-1 and distinct-2 (unique word unigrams / bigrams over
all of them): the figures that expose a model answering everything the same way. The sample shown
at each evaluation is the greedy reply to a few fixed held-out prompts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rnnchat.chat.config import Seq2SeqConfig
from rnnchat.chat.data import IGNORE, PAD, PairArrays, batch_rows, encode_source, prepare_chat
from rnnchat.chat.evaluate import distinct_n, reply_loss
from rnnchat.chat.generate import greedy_batch
from rnnchat.chat.model import Seq2Seq
from rnnchat.config import TrainConfig
from rnnchat.text.corpus import Corpus
from rnnchat.text.tokenizers import Tokenizer

_EVAL_PROMPTS = 48          # held-out prompts replied to at each eval, for distinct-1/2
_SAMPLE_PROMPTS = 3         # of those, shown as the sample
_EVAL_BATCH = 64


class ChatTask:
    kind = "chat"
    config_class = Seq2SeqConfig
    # Batches are length-bucketed, so a batch of long, rare replies can legitimately score twice the
    # running mean; only non-finite losses and gradients count as failures here.
    spike_check = False

    def __init__(self, corpus: Corpus, cfg: TrainConfig, model_cfg: Seq2SeqConfig,
                 tokenizer: Tokenizer | None = None):
        self.cfg, self.model_cfg = cfg, model_cfg
        self.data = prepare_chat(corpus, cfg, model_cfg, tokenizer)
        self.tokenizer = self.data.tokenizer
        self.train_tokens, self.val_tokens = self.data.train.tokens, self.data.val.tokens
        self.chars_per_token = self.data.chars_per_token
        self.train_chars_per_token = self.chars_per_token
        self._lengths = self.data.train.src_len + self.data.train.tgt_len
        # Evaluation scores the first validation pairs in source order up to eval_chars reply characters:
        # a fixed set, not the shortest pairs, converted to bits per character with its own count.
        chosen, chars = [], 0
        for pair in self.data.val_pairs:
            if chars >= cfg.eval_chars:
                break
            chosen.append(pair)
            chars += len(pair.reply) + 1           # the end-of-reply token counts as a character
        self._eval = PairArrays(self.tokenizer, chosen)
        self._eval_chars = chars

    def warnings(self) -> list[str]:
        r, out = self.data.report, []
        dropped = r.dropped_long + r.dropped_empty
        if dropped > 0.2 * max(1, r.found):
            out.append(f"{dropped:,} of {r.found:,} dialogue pairs dropped ({r.dropped_long:,} longer than "
                       f"--max-turn-chars {self.model_cfg.max_turn_chars}, {r.dropped_empty:,} empty)")
        if r.malformed:
            out.append(f"{r.malformed:,} malformed dialogue lines skipped"
                       + (f", e.g. {r.problems[0]}" if r.problems else ""))
        if self.data.unknown:
            out.append(f"{self.data.unknown} tokens of the dialogue are unknown to the vocabulary")
        return out

    def data_meta(self) -> dict:
        return {"train_pairs": len(self.data.train), "val_pairs": len(self.data.val),
                "train_tokens": self.train_tokens, "val_tokens": self.val_tokens,
                "chars_per_token": self.chars_per_token}

    def steps_per_epoch(self) -> float:
        return len(self.data.train) / self.cfg.batch_size

    def build_model(self, model_cfg: Seq2SeqConfig) -> Seq2Seq:
        return Seq2Seq(model_cfg)

    def batch(self, step: int, device: torch.device, rank: int = 0, world: int = 1):
        """Step ``step``'s batch for process ``rank`` of ``world`` (each process gets different pairs)."""
        rows = batch_rows(len(self.data.train), self.cfg.batch_size, self.cfg.seed, step * world + rank,
                          self._lengths)
        src, lengths, tgt_in, tgt_out = self.data.train.batch(rows)
        tokens = int(lengths.sum()) + int((tgt_out != IGNORE).sum())
        return src.to(device), lengths, tgt_in.to(device), tgt_out.to(device), tokens

    def loss(self, model: Seq2Seq, batch, carried):
        src, lengths, tgt_in, tgt_out, tokens = batch
        enc, state = model.encode(src, lengths)
        if self.model_cfg.teacher_forcing < 1.0 and model.training:
            tgt_in = self._mix_predictions(model, enc, state, tgt_in, tgt_out)
        logits, _, _ = model.decode(tgt_in, enc, state)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                               ignore_index=IGNORE)
        return loss, None, tokens

    def _mix_predictions(self, model, enc, state, tgt_in, tgt_out):
        """Scheduled sampling in parallel: a teacher-forced pass predicts every position, and a share
        (1 - teacher_forcing) of the decoder inputs is replaced by those predictions for the pass that
        is trained. One extra forward pass instead of a token-by-token loop."""
        with torch.no_grad():
            logits, _, _ = model.decode(tgt_in, enc, state)
            predicted = logits.argmax(dim=-1)
        swap = torch.rand(tgt_in.shape, device=tgt_in.device) >= self.model_cfg.teacher_forcing
        swap[:, 0] = False                                   # the start token stays
        shifted = torch.cat([tgt_in[:, :1], predicted[:, :-1]], dim=1)
        return torch.where(swap & (tgt_in != PAD), shifted, tgt_in)

    @torch.no_grad()
    def evaluate(self, model: Seq2Seq, device: torch.device, precision: str) -> dict:
        loss, scored = reply_loss(model, self._eval, _EVAL_BATCH, None, device, precision)
        replies = self.replies(model, _EVAL_PROMPTS)
        texts = [r for _, r in replies]
        return {"val_loss": loss, "bits_per_char": loss * scored / max(1, self._eval_chars) / math.log(2),
                "distinct1": distinct_n(texts, 1),
                "distinct2": distinct_n(texts, 2)}

    def replies(self, model: Seq2Seq, n: int) -> list[tuple[str, str]]:
        """(prompt, greedy reply) for the first n held-out pairs."""
        pairs = self.data.val_pairs[:n]
        sources = [encode_source(self.tokenizer, p.context, p.prompt) for p in pairs]
        max_len = max(8, min(self.cfg.sample_length or 200, 2 * self.model_cfg.max_turn_chars))
        was_training = model.training
        model.eval()
        ids = greedy_batch(model, sources, max_len)
        model.train(was_training)
        return [(p.prompt, self.tokenizer.decode(r)) for p, r in zip(pairs, ids)]

    def sample(self, model: Seq2Seq) -> str:
        return "\n".join(f"> {p}\n< {r}" for p, r in self.replies(model, _SAMPLE_PROMPTS))

    def novelty(self, text: str) -> None:
        return None                    # replies are measured by distinct-n, not against the corpus

