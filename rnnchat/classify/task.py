"""What the training loop needs to know about classification: labelled texts, the classifier, its loss and eval.

Evaluation reads the first held-out texts (in a fixed shuffled order, up to ``eval_chars`` characters) and
reports the loss per text, accuracy, macro-F1, each label's precision and recall and the confusion matrix,
beside the two baselines on the same split (computed once). The sample is a few held-out texts with their
true and predicted labels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from rnnchat.classify.config import ClassifierConfig
from rnnchat.classify.data import batch_rows, prepare
from rnnchat.classify.evaluate import figures, majority_baseline, ngram_baseline, score
from rnnchat.classify.model import Classifier
from rnnchat.config import TrainConfig
from rnnchat.safetext import neutralise
from rnnchat.text.corpus import Corpus
from rnnchat.text.tokenizers import Tokenizer

_SAMPLE_TEXTS = 3
_SAMPLE_CHARS = 80


class ClassifyTask:
    kind = "classify"
    config_class = ClassifierConfig
    spike_check = False           # batches of long texts and of rare labels legitimately score far above the mean

    def __init__(self, corpus: Corpus, cfg: TrainConfig, model_cfg: ClassifierConfig,
                 tokenizer: Tokenizer | None = None):
        self.cfg = cfg
        self.data = prepare(corpus, cfg, model_cfg, tokenizer)   # the labels reach the config by its settle()
        self.model_cfg = model_cfg
        self.tokenizer = self.data.tokenizer
        train, val = self.data.train, self.data.val
        self.train_tokens, self.val_tokens = train.tokens, val.tokens
        self.chars_per_token = self.data.chars_per_token
        self.train_chars_per_token = self.data.train_chars_per_token
        counts = np.bincount(train.labels, minlength=len(self.data.labels)).astype(np.float64)
        self.class_weights = torch.tensor(len(train) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32) \
            if model_cfg.balance else None
        order = np.random.default_rng([cfg.seed, 17]).permutation(len(val))
        chars = np.cumsum(val.chars[order])
        self._eval_rows = np.sort(order[:max(1, int(np.searchsorted(chars, cfg.eval_chars)) + 1)])
        self._baselines: dict | None = None

    def warnings(self) -> list[str]:
        out = list(self.data.read.notes)
        if self.data.train.cut:
            out.append(f"{self.data.train.cut:,} training texts are longer than --max-tokens "
                       f"{self.model_cfg.max_tokens} and were cut to their first {self.model_cfg.max_tokens} "
                       "tokens (held-out texts are read in full)")
        counts = np.bincount(self.data.train.labels, minlength=len(self.data.labels))
        if counts.max() > 1.5 * max(1, counts.min()) and self.model_cfg.balance:
            out.append(f"labels are unbalanced ({counts.min():,} to {counts.max():,} training texts): the loss "
                       "weights each label by its rarity")
        if self.data.train.unknown + self.data.val.unknown:
            out.append(f"{self.data.train.unknown + self.data.val.unknown} tokens of the texts are unknown to "
                       "the vocabulary")
        return out

    def data_meta(self) -> dict:
        meta = {"train_texts": len(self.data.train), "val_texts": len(self.data.val), "labels": len(self.data.labels),
                "train_tokens": self.train_tokens, "val_tokens": self.val_tokens,
                "chars_per_token": self.chars_per_token}
        for name, figs in self.baselines().items():
            meta[f"{name}_accuracy"], meta[f"{name}_macro_f1"] = figs["accuracy"], figs["macro_f1"]
        return meta

    def baselines(self) -> dict:
        """The majority label's and the character n-gram model's figures on the evaluated texts (once)."""
        if self._baselines is None:
            d, rows = self.data, self._eval_rows
            y = d.val.labels[rows]
            val_texts = [d.val_texts[i].text for i in rows]
            self._baselines = {
                "majority": majority_baseline(d.train.labels, y, d.labels),
                "ngram": ngram_baseline([t.text for t in d.train_texts], d.train.labels, val_texts, y, d.labels,
                                        self.cfg.seed)}
        return self._baselines

    def steps_per_epoch(self) -> float:
        return len(self.data.train) / self.cfg.batch_size

    def build_model(self, model_cfg: ClassifierConfig) -> Classifier:
        return Classifier(model_cfg)

    def batch(self, step: int, device: torch.device, rank: int = 0, world: int = 1):
        train = self.data.train
        rows = batch_rows(len(train), self.cfg.batch_size, self.cfg.seed, step * world + rank, train.lengths)
        ids, lengths, y = train.batch(rows)
        return ids.to(device), lengths, y.to(device), int(lengths.sum())

    def loss(self, model: Classifier, batch, carried):
        ids, lengths, y, tokens = batch
        weight = self.class_weights.to(y.device) if self.class_weights is not None else None
        loss = F.cross_entropy(model(ids, lengths).float(), y, weight=weight)
        return loss, None, tokens

    @torch.no_grad()
    def evaluate(self, model: Classifier, device: torch.device, precision: str) -> dict:
        """Loss per held-out text; bits per char is that loss in bits over the texts' characters (how much
        of its label the model still lacks, per character read)."""
        rows = self._eval_rows
        probs, total = score(model, self.data.val, device, precision, rows)
        chars = int(self.data.val.chars[rows].sum())
        out = {"val_loss": total / len(rows), "bits_per_char": total / max(1, chars) / math.log(2)}
        out.update(figures(self.data.val.labels[rows], probs.argmax(-1), self.data.labels))
        for name, figs in self.baselines().items():
            out[f"{name}_accuracy"], out[f"{name}_macro_f1"] = figs["accuracy"], figs["macro_f1"]
        return out

    def sample(self, model: Classifier) -> str:
        """A few held-out texts with their true and predicted labels."""
        rows = self._eval_rows[:_SAMPLE_TEXTS]
        probs, _ = score(model, self.data.val, torch.device("cpu") if not next(model.parameters()).is_cuda
                         else next(model.parameters()).device, "fp32", rows)
        lines = []
        for r, p in zip(rows, probs):
            text = " ".join(self.data.val_texts[r].text.split())
            short = text if len(text) <= _SAMPLE_CHARS else text[:_SAMPLE_CHARS - 1] + "…"
            guess, true = self.data.labels[int(p.argmax())], self.data.val_texts[r].label
            mark = "✓" if guess == true else "✗"
            lines.append(f"{mark} {neutralise(guess)} ({p.max():.0%}; true {neutralise(true)}): {neutralise(short)}")
        return "\n".join(lines)

    def novelty(self, text: str) -> None:
        return None                    # a label is not copied text
