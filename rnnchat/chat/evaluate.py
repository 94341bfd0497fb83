"""Evaluating a chat run: loss on held-out pairs, and how varied its replies are per decoding strategy.

Small seq2seq chatbots are known for generic replies and loops. For each strategy this reports
distinct-1 / distinct-2 (unique word unigrams / bigrams over all replies), the share of prompts that
got the single most common reply, and the mean reply length, so the remedy (anti-LM reranking of the
beam's N-best list) is measured against plain greedy and beam search on the same prompts.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.data import IGNORE, PairArrays, encode_source
from rnnchat.chat.generate import (
    beam_search,
    distinct_n,
    greedy_batch,
    rerank,
    sample_ids,
)
from rnnchat.chat.pairs import Pair, extract_pairs, split_pairs
from rnnchat.config import TrainConfig
from rnnchat.errors import CorpusError
from rnnchat.runs.checkpoints import OpenedRun
from rnnchat.stream import LiveControls
from rnnchat.text.corpus import Corpus
from rnnchat.text.load import load_corpus

STRATEGIES = {
    "sample 0.7 (default)": DecodeConfig(seed=0),
    "greedy": DecodeConfig(temperature=0.0),
    "beam 4": DecodeConfig(beam=4),
    "beam 4 + rerank 0.5": DecodeConfig(beam=4, rerank=0.5),
}


def held_out_pairs(run: OpenedRun, corpus: Corpus | None = None) -> list[Pair]:
    """The run's own validation pairs (rebuilt from its corpus with its settings), or all pairs of ``corpus``."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in run.meta.get("train", {}).items() if k in fields})
    if corpus is None:
        corpus = load_corpus(str(run.meta.get("corpus", {}).get("source", "")).removeprefix("builtin:"))
        report = extract_pairs(corpus, context_turns=cfg.context_turns, max_turn_chars=cfg.max_turn_chars,
                               max_context_chars=cfg.max_turn_chars)
        return split_pairs(report.pairs, cfg.val_fraction, cfg.seed)[1]
    report = extract_pairs(corpus, context_turns=cfg.context_turns, max_turn_chars=cfg.max_turn_chars,
                           max_context_chars=cfg.max_turn_chars)
    return list(report.pairs)


@torch.no_grad()
def pair_loss(run: OpenedRun, pairs: list[Pair], batch_size: int = 64) -> tuple[float, int, int]:
    """(mean loss per reply token, tokens, reply characters incl. one end-of-reply each)."""
    arrays = PairArrays(run.tokenizer, pairs)
    order = np.argsort(arrays.src_len + arrays.tgt_len, kind="stable")
    total, count = 0.0, 0
    for i in range(0, len(order), batch_size):
        src, lengths, tgt_in, tgt_out = arrays.batch(order[i:i + batch_size])
        logits = run.model(src, lengths, tgt_in)
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                                 ignore_index=IGNORE, reduction="sum").item()
        count += int((tgt_out != IGNORE).sum())
    return total / max(1, count), count, sum(len(p.reply) + 1 for p in pairs)


def strategy_replies(run: OpenedRun, pairs: list[Pair], cfg: DecodeConfig) -> list[str]:
    sources = [encode_source(run.tokenizer, p.context, p.prompt) for p in pairs]
    if cfg.beam == 1 and cfg.temperature <= 0:
        ids = greedy_batch(run.model, sources, cfg.max_length)
    elif cfg.beam == 1:
        rng = np.random.default_rng(cfg.seed)
        controls = LiveControls(cfg.temperature, cfg.top_k, cfg.top_p)
        ids = [[i for i, _ in sample_ids(run.model, src, cfg, controls, rng)] for src in sources]
    else:
        ids = []
        for src in sources:
            hyps = rerank(run.model, beam_search(run.model, src, cfg), cfg.rerank, cfg.length_penalty)
            ids.append(list(hyps[0].ids) if hyps else [])
    return [run.tokenizer.decode(r) for r in ids]


def evaluate_chat(run: OpenedRun, corpus: Corpus | None = None, prompts: int = 100) -> dict:
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
