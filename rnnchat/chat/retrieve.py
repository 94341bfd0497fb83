"""Retrieval over dialogue pairs, and the seq2seq score that reranks candidate replies.

``Retriever`` finds the indexed prompts most like a new one: the cosine similarity of their normalised
words (``chat.match``: contractions opened, British spellings as American, plurals as singulars)
blended with that of their character n-grams (typos, inflections, scripts without spaces), each a TF-IDF
index. Which pairs it indexes is its caller's choice: a chat answers from every pair of its run's corpus
(``runs.retrieval``), a benchmark judging held-out pairs indexes the training pairs only.

``score_replies`` orders candidate reply strings (retrieved replies and the model's own beams) by the
model's log p(reply | prompt) - λ log p(reply | no prompt), length-normalised as beam search ranks
(``chat.generate``), with two batched forward passes; ``retrieve_and_rerank`` puts both together, the
similarity first and the model's score among replies about as near.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.data import encode_source
from rnnchat.chat.generate import beam_search, reply_logprobs
from rnnchat.chat.match import TfIdf, ngram_keys, normalise, word_keys
from rnnchat.chat.model import Seq2Seq
from rnnchat.chat.pairs import Pair
from rnnchat.vocab import EOD

__all__ = ["Retriever", "Scored", "normalise", "retrieve_and_rerank", "score_replies"]

MAX_QUERY_CHARS = 1000       # a query is cut to this many characters: longer adds time, not matches
# Share of the word similarity in a prompt's similarity, the rest the character n-grams' (measured in
# benchmarks/journal/2026-12-04-chat-replies.md).
WORD_SHARE = 0.5


class Retriever:
    """Word and character n-gram TF-IDF over the prompts of ``pairs``; a blend of their cosine similarities
    finds the nearest ones."""

    def __init__(self, pairs: Sequence[Pair], word_share: float = WORD_SHARE):
        self.pairs = list(pairs)
        self.word_share = word_share
        prompts = [p.prompt for p in self.pairs]
        self._chars = TfIdf(len(self.pairs), *ngram_keys(prompts))
        self._words = TfIdf(len(self.pairs), *word_keys(prompts))

    def __len__(self) -> int:
        return len(self.pairs)

    def similarities(self, prompt: str) -> np.ndarray:
        """Similarity of ``prompt`` to every indexed prompt, 0 to 1 (zeros when nothing is shared)."""
        if not self.pairs or not isinstance(prompt, str) or not prompt.strip():
            return np.zeros(len(self.pairs))
        prompt = prompt[:MAX_QUERY_CHARS]
        chars = self._chars.cosine(ngram_keys([prompt])[1])
        if not self.word_share:
            return chars
        by_words = self._words.cosine(word_keys([prompt])[1])
        return self.word_share * by_words + (1.0 - self.word_share) * chars

    def candidates(self, prompt: str, k: int = 8) -> list[str]:
        """Up to ``k`` distinct replies of the most similar indexed prompts, best first."""
        scores = self.similarities(prompt)
        out: dict[str, None] = {}
        want = max(0, k)
        while want and len(out) < k:
            rows = _top(scores, want)
            for r in rows:
                out.setdefault(self.pairs[r].reply)
                if len(out) == k:
                    break
            if len(rows) < want:                    # every match has been seen
                break
            want *= 2                               # many prompts repeat a reply: look further down
        return list(out)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` highest positive scores, highest first, ties in row order (deterministic)."""
    k = min(max(0, k), int(np.count_nonzero(scores > 0)))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    cut = np.partition(scores, len(scores) - k)[len(scores) - k]
    rows = np.flatnonzero(scores >= cut)
    return rows[np.lexsort((rows, -scores[rows]))][:k]


class Scored(NamedTuple):
    score: float                 # (log p(reply | prompt) - weight * log p(reply | no prompt)) / length**penalty
    text: str
    retrieved: bool = False      # an indexed pair's reply (retrieve_and_rerank), not one only the model wrote


@torch.inference_mode()
def score_replies(model: Seq2Seq, tokenizer, source: np.ndarray, replies: Sequence[str], weight: float = 0.5,
                  length_penalty: float = 1.0) -> list[Scored]:
    """Candidate replies to the encoder input ``source``, best first, scored by the model with the anti-LM
    term. Every reply counts as ended (its EOD is scored) and is normalised by its tokens + 1, as beam
    search normalises finished hypotheses. Empty and repeated candidates are dropped."""
    texts = list(dict.fromkeys(r for r in replies if isinstance(r, str) and r.strip()))
    if not texts:
        return []
    ids = [[int(i) for i in tokenizer.encode(t)] for t in texts]
    was_training = model.training
    model.eval()
    try:
        given = reply_logprobs(model, source, ids)
        prior = reply_logprobs(model, np.array([EOD], dtype=np.int64), ids) if weight > 0 else [0.0] * len(ids)
    finally:
        model.train(was_training)
    out = []
    for text, r, lp, lp0 in zip(texts, ids, given, prior):
        mmi = lp - weight * lp0
        out.append(Scored(mmi / ((len(r) + 1) ** length_penalty) if length_penalty else mmi, text))
    return sorted(out, key=lambda s: s.score, reverse=True)


# Weight of the prompt's similarity to a candidate's indexed prompt, against the model's score in nats per
# token: similarity leads and the model settles near-ties (within ~0.1), since similarity predicted the
# held-out reply better than the model did (benchmarks/RESULTS.md, issue 14; at 1.0 replies collapsed; with
# words in the similarity, 2026-12-04, it changed 3 of 30 everyday replies, none sensible either way).
SIMILARITY_WEIGHT = 30.0


def retrieve_and_rerank(model: Seq2Seq, tokenizer, retriever: Retriever, prompt: str,
                        context: Sequence[str] = (), k: int = 8,
                        cfg: DecodeConfig = DecodeConfig(beam=4, rerank=0.5),
                        similarity_weight: float = SIMILARITY_WEIGHT) -> list[Scored]:
    """Candidates: ``k`` distinct replies of the indexed prompts most like ``prompt`` and the model's own
    beam replies (``cfg.beam`` wide), ordered by ``similarity_weight`` times the similarity of the most
    similar indexed prompt that candidate answers (0 for a reply only the model wrote) plus
    ``score_replies`` with λ = ``cfg.rerank``, best first: the nearest prompts' replies lead, the model
    orders those about as near, and its own replies win only where no indexed prompt is alike. Each says
    whether it is a retrieved reply (a beam that wrote one word for word counts as retrieved)."""
    source = encode_source(tokenizer, context, prompt)
    was_training = model.training
    model.eval()
    try:
        beams = beam_search(model, source, cfg)             # width 1 is the greedy reply
    finally:
        model.train(was_training)
    retrieved = retriever.candidates(prompt, k)
    candidates = retrieved + [tokenizer.decode(h.ids) for h in beams]
    found = set(retrieved)
    scored = [s._replace(retrieved=s.text in found)
              for s in score_replies(model, tokenizer, source, candidates, cfg.rerank, cfg.length_penalty)]
    if not similarity_weight or not retrieved:
        return scored
    sims = retriever.similarities(prompt)
    best_sim: dict[str, float] = {}
    for row in np.flatnonzero(sims > 0).tolist():
        reply = retriever.pairs[row].reply
        best_sim[reply] = max(best_sim.get(reply, 0.0), float(sims[row]))
    ranked = [s._replace(score=s.score + similarity_weight * best_sim.get(s.text, 0.0)) for s in scored]
    return sorted(ranked, key=lambda s: s.score, reverse=True)
