"""What the training loop needs to know about language modelling: data, model, batches, loss, eval.

The loop in ``rnnchat/train/loop.py`` is the same for every task; a task supplies the parts that differ.
This one trains ``RNNLM`` on windows of the tokenised corpus (see ``rnnchat/lm/data.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rnnchat.config import TrainConfig
from rnnchat.lm.config import ModelConfig
from rnnchat.lm.data import check_fits, eval_span, lane_batch, prepare, random_batch
from rnnchat.lm.evaluate import mean_loss
from rnnchat.lm.generate import sample_text
from rnnchat.lm.model import RNNLM, detach_state
from rnnchat.text.corpus import Corpus
from rnnchat.text.novelty import Novelty, training_index
from rnnchat.text.tokenizers import Tokenizer


class LMTask:
    kind = "lm"                   # run.json "kind"
    config_class = ModelConfig
    spike_check = True            # random windows have similar losses: a sudden jump means trouble

    def __init__(self, corpus: Corpus, cfg: TrainConfig, model_cfg: ModelConfig,
                 tokenizer: Tokenizer | None = None):
        self.cfg = cfg
        self.data = prepare(corpus, cfg.level, cfg.vocab_size, cfg.val_fraction, tokenizer)
        check_fits(self.data, cfg.seq_len)
        self.tokenizer = self.data.tokenizer
        self.train_tokens, self.val_tokens = len(self.data.train), len(self.data.val)
        self.chars_per_token = self.data.chars_per_token
        self.train_chars_per_token = self.data.train_chars_per_token
        self.eval_ids, self.eval_chars = eval_span(corpus, cfg.val_fraction, cfg.eval_chars, self.tokenizer)
        # Built (or read from the cache) now, while the corpus text is at hand: training drops it.
        self._index = training_index(corpus, cfg.val_fraction) if cfg.sample_length else None

    def warnings(self) -> list[str]:
        n = self.data.unknown
        return [f"{n} tokens of the corpus are unknown to the vocabulary"] if n else []

    def data_meta(self) -> dict:
        return {"train_tokens": self.train_tokens, "val_tokens": self.val_tokens,
                "chars_per_token": self.chars_per_token}

    def steps_per_epoch(self) -> float:
        return self.train_tokens / (self.cfg.batch_size * self.cfg.seq_len)

    def build_model(self, model_cfg: ModelConfig) -> RNNLM:
        return RNNLM(model_cfg)

    def batch(self, step: int, device: torch.device, rank: int = 0, world: int = 1):
        """Step ``step``'s batch for process ``rank`` of ``world`` (each process gets different windows)."""
        cfg = self.cfg
        if cfg.carry_state:   # world x batch lanes; this process reads its own block of them
            x, y, fresh = lane_batch(self.data.train, cfg.batch_size * world, cfg.seq_len, step)
            rows = slice(rank * cfg.batch_size, (rank + 1) * cfg.batch_size)
            x, y = x[rows], y[rows]
        else:
            x, y, fresh = (*random_batch(self.data.train, cfg.batch_size, cfg.seq_len, cfg.seed,
                                         step * world + rank), True)
        return _to(x, device), _to(y, device), fresh

    def loss(self, model: RNNLM, batch, carried):
        """(mean loss, state to carry to the next step, tokens in the batch)."""
        x, y, fresh = batch
        state = None if (fresh or not self.cfg.carry_state) else carried
        logits, new_state = model(x, state)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        return loss, (detach_state(new_state) if self.cfg.carry_state else None), y.numel()

    def evaluate(self, model: RNNLM, device: torch.device, precision: str) -> dict:
        """Validation loss on the fixed span of ``eval_chars`` characters, every token scored with its full
        lane context: nats per token, and bits per character of the span's own characters."""
        cfg = self.cfg
        loss, scored = mean_loss(model, self.eval_ids, len(self.eval_ids), max(cfg.batch_size, 32), cfg.seq_len,
                                 device, precision)
        return {"val_loss": loss, "bits_per_char": loss * scored / max(1, self.eval_chars) / math.log(2)}

    def sample(self, model: RNNLM) -> str:
        return sample_text(model, self.tokenizer, self.cfg.sample_length, self.cfg.sample_seed)

    def novelty(self, text: str) -> Novelty | None:
        """How much of a sample is copied from the training text."""
        return self._index.measure(text) if self._index is not None else None


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":  # pinned host memory lets the copy overlap with compute
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
