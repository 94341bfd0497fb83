"""Evaluating a chat run: loss on held-out pairs, and how varied its replies are per decoding strategy.

Small seq2seq chatbots are known for generic replies and loops. For each strategy this reports
distinct-1 / distinct-2 (unique word unigrams / bigrams over all replies), the share of prompts that
got the single most common reply, and the mean reply length, so the remedy (anti-LM reranking of the
beam's N-best list) is measured against plain greedy and beam search on the same prompts.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.data import IGNORE, PairArrays, encode_source, pairs_of, split_of
from rnnchat.chat.generate import beam_search, greedy_batch, rerank, sample_ids
from rnnchat.chat.pairs import Pair
from rnnchat.device import autocast
from rnnchat.errors import CorpusError
from rnnchat.sampling import LiveControls
from rnnchat.text.corpus import Corpus
from rnnchat.text.load import load_corpus

STRATEGIES = {
    "sample 0.7": DecodeConfig(seed=0),            # the model's own replies (--candidates model) as it samples them
    "greedy": DecodeConfig(temperature=0.0),
    "beam 4": DecodeConfig(beam=4),
    "beam 4 + rerank 0.5": DecodeConfig(beam=4, rerank=0.5),
}


def held_out_pairs(run, corpus: Corpus | None = None) -> list[Pair]:
    """The run's own validation pairs (rebuilt from its corpus with its settings), or all pairs of ``corpus``.
    ``run`` is an opened run (runs.checkpoints.OpenedRun: model, tokenizer, meta, name, which)."""
    if corpus is None:
        return split_of(load_corpus(run.meta.corpus.spec), run.meta.model, run.meta.train)[2]
    return list(pairs_of(corpus, run.meta.model).pairs)


@torch.no_grad()
def reply_loss(model, arrays: PairArrays, batch_size: int = 64, max_tokens: int | None = None,
               device: torch.device = torch.device("cpu"), precision: str = "fp32") -> tuple[float, int]:
    """(mean loss in nats per reply token, reply tokens scored) over pairs in length order (little
    padding), stopping once ``max_tokens`` are scored. Used by training's evaluation and ``rnnchat eval``."""
    was_training = model.training
    model.eval()
    order = np.argsort(arrays.src_len + arrays.tgt_len, kind="stable")
    total, count = 0.0, 0
    for i in range(0, len(order), batch_size):
        if max_tokens is not None and count >= max_tokens:
            break
        src, lengths, tgt_in, tgt_out = arrays.batch(order[i:i + batch_size])
        with autocast(device, precision):
            logits = model(src.to(device), lengths, tgt_in.to(device))
        tgt_out = tgt_out.to(device)
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                                 ignore_index=IGNORE, reduction="sum").item()
        count += int((tgt_out != IGNORE).sum())
    model.train(was_training)
    return total / max(1, count), count


def pair_loss(run, pairs: list[Pair], batch_size: int = 64) -> tuple[float, int, int]:
    """(mean loss per reply token, tokens, reply characters incl. one end-of-reply each)."""
    loss, count = reply_loss(run.model, PairArrays(run.tokenizer, pairs), batch_size)
    return loss, count, sum(len(p.reply) + 1 for p in pairs)


def strategy_replies(run, pairs: list[Pair], cfg: DecodeConfig) -> list[str]:
    sources = [encode_source(run.tokenizer, p.context, p.prompt) for p in pairs]
    if cfg.beam == 1 and cfg.temperature <= 0:
        ids = greedy_batch(run.model, sources, cfg.max_length)
    elif cfg.beam == 1:
        controls = LiveControls.of(cfg)
        ids = [[i for i, _ in sample_ids(run.model, src, dataclasses.replace(cfg, seed=cfg.seed + k), controls)]
               for k, src in enumerate(sources)]
    else:
        ids = []
        for src in sources:
            hyps = rerank(run.model, beam_search(run.model, src, cfg), cfg.rerank, cfg.length_penalty)
            ids.append(list(hyps[0].ids) if hyps else [])
    return [run.tokenizer.decode(r) for r in ids]


def evaluate_chat(run, corpus: Corpus | None = None, prompts: int = 100) -> dict:
    pairs = held_out_pairs(run, corpus)
    if not pairs:
        raise CorpusError("there are no dialogue pairs to evaluate on")
    loss, tokens, chars = pair_loss(run, pairs)
    out = {"run": run.name, "checkpoint": run.which, "pairs": len(pairs), "loss": loss,
           "perplexity": math.exp(min(loss, 50.0)), "bits_per_char": loss * tokens / chars / math.log(2),
           "strategies": {}}
    chosen = pairs[:prompts]
    for name, cfg in STRATEGIES.items():
        replies = strategy_replies(run, chosen, cfg)
        common = Counter(replies).most_common(1)[0][1] if replies else 0
        out["strategies"][name] = {
            "distinct1": distinct_n(replies, 1), "distinct2": distinct_n(replies, 2),
            "top_reply_share": common / max(1, len(replies)),
            "mean_chars": sum(map(len, replies)) / max(1, len(replies)),
            "examples": [[p.prompt, r] for p, r in zip(chosen[:3], replies[:3])],
        }
    return out


_WORD_RE = re.compile(r"\w+|[^\w\s]")


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n: unique word n-grams over all n-grams of the replies (0 when there are none)."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        words = _WORD_RE.findall(text.lower())
        grams.extend(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0
