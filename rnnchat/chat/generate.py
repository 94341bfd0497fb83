"""Decoding replies from the seq2seq model: greedy, sampling, beam search, and anti-LM reranking.

``decode_reply`` streams ``Token`` events for one reply and ends with one ``SampleDone``; it is what
the chat command, the app's Chat screen and the trainer's samples use. Every strategy stops at the
end-of-reply id (EOD, never shown) or at ``max_length`` tokens, and never emits UNK.

* Temperature 0 is greedy. Otherwise tokens are sampled at the temperature after top-k and top-p
  (nucleus) filtering, from a private numpy Generator (``seed`` makes replies reproducible).
* ``beam`` > 1 runs beam search; hypotheses are ranked by log-probability / length**length_penalty
  and the best one is streamed when the search ends. ``show_beams`` also yields a ``Beams`` event
  per step with the live hypotheses.
* ``repetition_penalty`` (> 1) divides positive logits and multiplies negative ones of tokens already
  in the reply; ``no_repeat_ngram`` n forbids any token that would repeat an n-gram of the reply.
* ``rerank`` λ > 0 (beam only) re-scores the finished hypotheses by log p(reply | prompt) - λ log
  p(reply | no prompt): replies the model would give to anything ("I don't know") lose to replies
  that need this prompt. The "no prompt" model is the same network given an empty input.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.model import Encoded, Seq2Seq
from rnnchat.events import Beams, SampleDone, Token
from rnnchat.sampling import LiveControls, Stream, TokenFilter
from rnnchat.vocab import EOD, UNK

# Where a reply came from (SampleDone.source): written by the model, or a reply of its dialogue found by retrieval.
MODEL, RETRIEVED = "model", "retrieved"


@dataclass(frozen=True)
class Hypothesis:
    ids: tuple[int, ...]        # reply tokens, without the final EOD
    logprob: float              # log p(reply + EOD | source), or of the reply alone if unfinished
    finished: bool
    score: float                # what the beam ranks by (length-normalised, reranked)


def _encode(model: Seq2Seq, sources: Sequence[np.ndarray]) -> tuple[Encoded, tuple[torch.Tensor, torch.Tensor]]:
    lengths = torch.tensor([max(1, len(s)) for s in sources], dtype=torch.int64)
    src = torch.full((len(sources), int(lengths.max())), UNK, dtype=torch.int64)
    for i, s in enumerate(sources):
        src[i, :len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
        if len(s) == 0:
            src[i, 0] = EOD
    return model.encode(src.to(model.embed.weight.device), lengths)


def _step(model: Seq2Seq, tokens: torch.Tensor, enc: Encoded, state) -> tuple[torch.Tensor, tuple]:
    logits, state, _ = model.decode(tokens.view(-1, 1).to(model.embed.weight.device), enc, state)
    return logits[:, -1].float(), state


def _penalise(logits: np.ndarray, reply: list[int], cfg: DecodeConfig) -> None:
    """In place: UNK never; repetition penalty; no-repeat n-gram ban."""
    logits[UNK] = -np.inf
    if cfg.repetition_penalty > 1 and reply:
        seen = np.unique(np.asarray(reply))
        vals = logits[seen]
        logits[seen] = np.where(vals > 0, vals / cfg.repetition_penalty, vals * cfg.repetition_penalty)
    n = cfg.no_repeat_ngram
    if n and len(reply) >= n:
        prefix = tuple(reply[-(n - 1):]) if n > 1 else ()
        for i in range(len(reply) - n + 1):
            if tuple(reply[i:i + n - 1]) == prefix:
                logits[reply[i + n - 1]] = -np.inf


@torch.inference_mode()
def sample_ids(model: Seq2Seq, source: np.ndarray, cfg: DecodeConfig,
               controls: LiveControls) -> Iterator[tuple[int, float]]:
    """Greedy or sampled reply ids, one at a time, with the model's probability of each (temperature 1,
    after the repetition penalties), drawn by the shared token filter seeded with ``cfg.seed``."""
    enc, state = _encode(model, [source])
    token = torch.tensor([EOD])
    reply: list[int] = []
    pick = TokenFilter(model.cfg.vocab_size, cfg.seed)
    while len(reply) < cfg.max_length and not controls.stop_requested:
        logits, state = _step(model, token, enc, state)
        raw = logits[0].numpy().copy()
        _penalise(raw, reply, cfg)
        idx = pick.pick(raw, controls)
        if idx == EOD:
            return
        reply.append(idx)
        yield idx, pick.prob
        token = torch.tensor([idx])


@torch.inference_mode()
def beam_search(model: Seq2Seq, source: np.ndarray, cfg: DecodeConfig, controls: LiveControls | None = None,
                on_step=None) -> list[Hypothesis]:
    """The finished hypotheses, plus the live ones when the search reached ``max_length`` (or was stopped),
    best first. Every hypothesis is ranked by its log-probability over the tokens it scored (the end token
    included once it ended) / that count ** length_penalty. The search ends once W hypotheses have ended
    and the worst of the best W outranks every live beam."""
    W = cfg.beam
    enc, state = _encode(model, [source])
    enc = enc.repeat(W)
    state = tuple(s.repeat_interleave(W, dim=1) for s in state)
    beams: list[list[int]] = [[] for _ in range(W)]
    scores = torch.full((W,), -math.inf)
    scores[0] = 0.0                        # all beams start identical: expand only the first
    tokens = torch.full((W,), EOD, dtype=torch.int64)
    finished: list[Hypothesis] = []
    norm = lambda lp, n: lp / (n ** cfg.length_penalty) if cfg.length_penalty else lp  # noqa: E731
    searching = True
    for t in range(cfg.max_length):
        if controls is not None and controls.stop_requested:
            break
        logits, state = _step(model, tokens, enc, state)
        logp = torch.log_softmax(logits, dim=-1).numpy().copy()
        for b in range(W):
            _penalise(logp[b], beams[b], cfg)
        total = scores[:, None] + torch.from_numpy(logp)
        flat = total.view(-1)
        top = torch.topk(flat, min(2 * W, flat.numel()))
        new_beams, new_scores, rows, next_tokens = [], [], [], []
        for value, index in zip(top.values.tolist(), top.indices.tolist()):
            if value == -math.inf:
                break
            b, tok = divmod(index, logp.shape[1])
            if tok == EOD:
                finished.append(Hypothesis(tuple(beams[b]), value, True, norm(value, len(beams[b]) + 1)))
            else:
                new_beams.append(beams[b] + [tok])
                new_scores.append(value)
                rows.append(b)
                next_tokens.append(tok)
            if len(new_beams) == W:
                break
        if on_step is not None:
            on_step(t, new_beams, new_scores)
        best_live = max((norm(s, len(bm)) for s, bm in zip(new_scores, new_beams)), default=-math.inf)
        if not new_beams or (len(finished) >= W and sorted(h.score for h in finished)[-W] >= best_live):
            searching = False
            break
        while len(new_beams) < W:                  # keep the batch shape; padding beams are dead
            new_beams.append([])
            new_scores.append(-math.inf)
            rows.append(0)
            next_tokens.append(EOD)
        index = torch.tensor(rows)
        state = tuple(s[:, index] for s in state)
        beams, scores, tokens = new_beams, torch.tensor(new_scores), torch.tensor(next_tokens)
    if searching:       # cut off by max_length or a stop: the live beams are answers too
        finished += [Hypothesis(tuple(b), float(s), False, norm(float(s), max(1, len(b))))
                     for b, s in zip(beams, scores.tolist()) if s > -math.inf and b]
    return sorted(finished, key=lambda h: h.score, reverse=True)


@torch.inference_mode()
def reply_logprobs(model: Seq2Seq, source: np.ndarray, replies: Sequence[Sequence[int]],
                   ended: Sequence[bool] | None = None) -> list[float]:
    """log p(reply + EOD | source) for each reply, in one batch (teacher-forced); without the EOD term
    for replies whose ``ended`` is False (cut off at max length)."""
    if not replies:
        return []
    enc, state = _encode(model, [source] * len(replies))
    T = max(len(r) for r in replies) + 1
    tgt_in = torch.full((len(replies), T), UNK, dtype=torch.int64)
    tgt_out = torch.full((len(replies), T), -100, dtype=torch.int64)
    for i, r in enumerate(replies):
        ids = torch.as_tensor(list(r), dtype=torch.int64)
        tgt_in[i, 0] = EOD
        tgt_in[i, 1:len(r) + 1] = ids
        tgt_out[i, :len(r)] = ids
        if ended is None or ended[i]:
            tgt_out[i, len(r)] = EOD
    device = model.embed.weight.device
    logits, _, _ = model.decode(tgt_in.to(device), enc, state)
    logp = torch.log_softmax(logits.float(), dim=-1).cpu()
    picked = logp.gather(-1, tgt_out.clamp(min=0)[..., None])[..., 0] * (tgt_out >= 0)
    return picked.sum(dim=1).tolist()


def rerank(model: Seq2Seq, hyps: list[Hypothesis], weight: float, length_penalty: float) -> list[Hypothesis]:
    """Anti-language-model reranking: subtract weight * log p(reply | empty input), both terms over the
    same tokens (the end token only for replies that ended) and normalised by the same length."""
    if weight <= 0 or len(hyps) < 2:
        return hyps
    prior = reply_logprobs(model, np.array([EOD], dtype=np.int64), [h.ids for h in hyps],
                           [h.finished for h in hyps])
    out = []
    for h, lp in zip(hyps, prior):
        n = max(1, len(h.ids) + (1 if h.finished else 0))
        mmi = h.logprob - weight * lp
        out.append(Hypothesis(h.ids, h.logprob, h.finished, mmi / (n ** length_penalty) if length_penalty else mmi))
    return sorted(out, key=lambda h: h.score, reverse=True)


def decode_reply(model: Seq2Seq, tokenizer, source: np.ndarray, cfg: DecodeConfig,
                 controls: LiveControls | None = None, show_beams: bool = False) -> Stream:
    """Stream one reply to the encoder input ``source`` (see ``chat.data.encode_source``)."""
    cfg.validate()
    controls = controls or LiveControls.of(cfg)
    return Stream(_reply(model, tokenizer, source, cfg, controls, show_beams), controls)


def _reply(model: Seq2Seq, tokenizer, source: np.ndarray, cfg: DecodeConfig, controls: LiveControls,
           show_beams: bool) -> Iterator[Token | Beams | SampleDone]:
    t0 = time.perf_counter()
    if cfg.beam > 1:
        pending: list[Beams] = []

        def on_step(t, beams, scores):
            if show_beams:
                pending.append(Beams(t + 1, tuple(tokenizer.decode(b) for b in beams), tuple(scores)))

        hyps = beam_search(model, source, cfg, controls, on_step if show_beams else None)
        yield from pending
        hyps = rerank(model, hyps, cfg.rerank, cfg.length_penalty)
        yield from stream_ids(tokenizer, hyps[0].ids if hyps else (), controls, cfg.max_length, t0)
        return
    feed = tokenizer.decoder().feed
    n = chars = 0
    for idx, prob in sample_ids(model, source, cfg, controls):
        text = feed(idx)
        n += 1
        chars += len(text)
        yield Token(text, idx, prob)
    reason = "cancelled" if controls.stop_requested else ("length" if n >= cfg.max_length else "stop")
    yield SampleDone(n, chars, time.perf_counter() - t0, reason, source=MODEL)


@torch.inference_mode()
def greedy_batch(model: Seq2Seq, sources: Sequence[np.ndarray], max_length: int) -> list[list[int]]:
    """Greedy replies to many sources at once (for evaluation): one decoder call per position."""
    if not sources:
        return []
    enc, state = _encode(model, sources)
    B = len(sources)
    tokens = torch.full((B,), EOD, dtype=torch.int64, device=model.embed.weight.device)
    replies: list[list[int]] = [[] for _ in range(B)]
    alive = torch.ones(B, dtype=torch.bool)
    for _ in range(max_length):
        logits, state = _step(model, tokens, enc, state)
        logits[:, UNK] = -math.inf
        tokens = logits.argmax(dim=-1)
        picked = tokens.cpu()
        for b in torch.nonzero(alive & (picked != EOD)).flatten().tolist():
            replies[b].append(int(picked[b]))
        alive &= picked != EOD
        if not alive.any():
            break
    return replies


def stream_ids(tokenizer, ids, controls: LiveControls, max_length: int, t0: float,
               source: str = MODEL) -> Iterator[Token | SampleDone]:
    """A reply chosen whole (the best beam, a retrieved reply) streamed token by token, then its SampleDone
    saying where it came from (``source``: MODEL or RETRIEVED)."""
    feed = tokenizer.decoder().feed
    n = chars = 0
    for idx in ids:
        if controls.stop_requested:
            break
        text = feed(int(idx))
        n, chars = n + 1, chars + len(text)
        yield Token(text, int(idx), float("nan"))
    reason = "cancelled" if controls.stop_requested else ("length" if n >= max_length else "stop")
    yield SampleDone(n, chars, time.perf_counter() - t0, reason, source=source)
