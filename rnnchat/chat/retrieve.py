"""Retrieval over training dialogue pairs, and the seq2seq score that reranks candidate replies.

``Retriever`` indexes the prompts of training pairs by character n-grams (2 to 4 characters of the
lowercased prompt with single spaces and a space at each end, so word starts and ends count), weighted
by TF-IDF with sublinear term frequency and L2-normalised, and finds the training prompts most similar
to a new one by cosine similarity. Character n-grams survive typos, inflections and unknown words that a
word index would miss. Everything is numpy: n-grams are 64-bit rolling hashes of code points, the index
is a term-sorted posting list, and a query is one ``bincount`` over the postings of its n-grams.

``score_replies`` orders candidate reply strings (retrieved replies and the model's own beams) by the
model's log p(reply | prompt) - λ log p(reply | no prompt), length-normalised as beam search ranks
(``chat.generate``), with two batched forward passes; ``retrieve_and_rerank`` puts both together, the
similarity first and the model's score among replies about as near.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

import numpy as np
import torch

from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.data import encode_source
from rnnchat.chat.generate import beam_search, reply_logprobs
from rnnchat.chat.model import Seq2Seq
from rnnchat.chat.pairs import Pair
from rnnchat.vocab import EOD

NGRAMS = (2, 3, 4)           # character n-gram lengths; 1-grams only add noise shared by every prompt
MAX_QUERY_CHARS = 1000       # a query is cut to this many characters: longer adds time, not matches
_MUL = np.uint64(0x9E3779B97F4A7C15)   # odd multiplier of the rolling hash (wraps mod 2**64)
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase, runs of whitespace as one space, a space at each end (so n-grams mark word edges)."""
    return f" {_SPACES.sub(' ', text).strip().lower()} "


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit reaches the high bits, which the index keeps."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def _ngram_keys(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(document index, n-gram hash), both uint64, of every character n-gram of every normalised text."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    codes = _codepoints("".join(texts)) + np.uint64(1)   # + 1: a code point 0 would add nothing to a hash
    owner = np.repeat(np.arange(len(texts), dtype=np.uint64), lengths)
    docs, keys = [], []
    h = codes
    with np.errstate(over="ignore"):
        for n in range(2, max(NGRAMS) + 1):
            m = len(codes) - n + 1
            if m <= 0:
                break
            h = h[:m] * _MUL + codes[n - 1:]                     # rolling: the (n-1)-gram's hash, one more
            if n in NGRAMS:
                inside = owner[:m] == owner[n - 1:]              # n-grams never span two texts
                docs.append(owner[:m][inside])
                keys.append(_mix(h[inside]))
    if not docs:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    return np.concatenate(docs), np.concatenate(keys)


class Retriever:
    """Character n-gram TF-IDF over the prompts of ``pairs``; cosine similarity finds the nearest ones."""

    def __init__(self, pairs: Sequence[Pair]):
        self.pairs = list(pairs)
        n = len(self.pairs)
        docs, keys = _ngram_keys([normalise(p.prompt) for p in self.pairs])
        # One sort of 64-bit words gives the vocabulary and the term-major posting list at once: each
        # word is the n-gram's hash with its low bits replaced by the document index (with 50,000 prompts
        # 48 bits of hash are left: a clash between two of their n-grams has odds of about 1 in 200,000).
        self._shift = np.uint64(max(1, (n - 1).bit_length()))
        low = (np.uint64(1) << self._shift) - np.uint64(1)
        words = np.sort((keys & ~low) | docs)
        del keys, docs
        new_entry = np.ones(len(words), dtype=bool)
        new_entry[1:] = words[1:] != words[:-1]
        at = np.flatnonzero(new_entry)                      # one entry per (term, document)
        tf = np.diff(np.append(at, len(words)))
        entries = words[at]
        keys, doc = entries >> self._shift, (entries & low).astype(np.int64)
        new_term = np.ones(len(keys), dtype=bool)
        new_term[1:] = keys[1:] != keys[:-1]
        term = np.cumsum(new_term) - 1
        self.vocab = keys[new_term]                          # sorted hashes: a query looks them up
        df = np.bincount(term, minlength=len(self.vocab))
        self.idf = np.log((1.0 + n) / (1.0 + df)) + 1.0     # smoothed: a term in every prompt keeps weight 1
        weight = (1.0 + np.log(tf)) * self.idf[term]
        norm = np.sqrt(np.bincount(doc, weights=weight ** 2, minlength=n))
        self.post_doc = doc
        self.post_weight = weight / np.maximum(norm[doc], 1e-12)
        self.post_start = np.concatenate([[0], np.cumsum(df)])

    def __len__(self) -> int:
        return len(self.pairs)

    def similarities(self, prompt: str) -> np.ndarray:
        """Cosine similarity of ``prompt`` to every indexed prompt (zeros when nothing is shared)."""
        scores = np.zeros(len(self.pairs))
        if not self.pairs or not isinstance(prompt, str) or not prompt.strip():
            return scores
        _, keys = _ngram_keys([normalise(prompt[:MAX_QUERY_CHARS])])
        if not len(keys) or not len(self.vocab):
            return scores
        uniq, tf = np.unique(keys >> self._shift, return_counts=True)
        where = np.minimum(np.searchsorted(self.vocab, uniq), len(self.vocab) - 1)
        known = self.vocab[where] == uniq
        # Unknown n-grams still count in the query's norm (as rarest terms): a prompt mostly unlike
        # every training prompt is scored low, not matched on its one familiar n-gram.
        unknown_idf = np.log(1.0 + len(self.pairs)) + 1.0
        qw = (1.0 + np.log(tf)) * np.where(known, self.idf[where], unknown_idf)
        qw /= max(np.sqrt(np.sum(qw ** 2)), 1e-12)
        t, w = where[known], qw[known]
        if not len(t):
            return scores
        starts, counts = self.post_start[t], self.post_start[t + 1] - self.post_start[t]
        # Indices of all postings of the query's terms, built without a Python loop.
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        idx = offsets + np.arange(int(counts.sum()))
        return np.bincount(self.post_doc[idx], weights=self.post_weight[idx] * np.repeat(w, counts),
                           minlength=len(self.pairs))

    def candidates(self, prompt: str, k: int = 8) -> list[str]:
        """Up to ``k`` distinct replies of the most similar training prompts, best first."""
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
    retrieved: bool = False      # a training reply (retrieve_and_rerank), not one only the model wrote


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


# Weight of the prompt's similarity to a candidate's training prompt, against the model's score in nats per
# token: similarity leads and the model settles near-ties (within ~0.1), since similarity predicted the
# held-out reply better than the model did (benchmarks/RESULTS.md, issue 14; at 1.0 replies collapsed).
SIMILARITY_WEIGHT = 30.0


def retrieve_and_rerank(model: Seq2Seq, tokenizer, retriever: Retriever, prompt: str,
                        context: Sequence[str] = (), k: int = 8,
                        cfg: DecodeConfig = DecodeConfig(beam=4, rerank=0.5),
                        similarity_weight: float = SIMILARITY_WEIGHT) -> list[Scored]:
    """Candidates: ``k`` distinct replies of the training prompts most like ``prompt`` and the model's own
    beam replies (``cfg.beam`` wide), ordered by ``similarity_weight`` times the cosine similarity of the
    most similar training prompt that candidate answers (0 for a reply only the model wrote) plus
    ``score_replies`` with λ = ``cfg.rerank``, best first: the nearest prompts' replies lead, the model
    orders those about as near, and its own replies win only where no training prompt is alike. Each says
    whether it is a retrieved training reply (a beam that wrote one word for word counts as retrieved)."""
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
