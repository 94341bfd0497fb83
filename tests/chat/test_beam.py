"""Beam search on a scripted model, whose next-token probabilities are a table keyed by the reply so far."""

import math

import numpy as np
import pytest
import torch

import rnnchat.chat.generate as generate
from rnnchat.chat.config import DecodeConfig
from rnnchat.chat.generate import beam_search
from rnnchat.vocab import EOD

A, B = 2, 3
V = 4
MAX = 8


class _Enc:
    def repeat(self, n):
        return self


def scripted(monkeypatch, table: dict[tuple[int, ...], dict[int, float]]):
    """Make beam_search read ``table``: reply prefix -> {token: probability} (the rest tiny)."""

    def encode(model, sources):
        return _Enc(), (torch.full((1, len(sources), MAX), -1.0),)

    def step(model, tokens, enc, state):
        history = state[0].clone()
        logits = torch.full((len(tokens), V), -30.0)
        for row, tok in enumerate(tokens.tolist()):
            past = [int(t) for t in history[0, row] if t >= 0]
            if tok != EOD or past:                 # the first input is the start token, not part of the reply
                past.append(tok)
                history[0, row, len(past) - 1] = tok
            for t, p in table.get(tuple(past), {}).items():
                logits[row, t] = math.log(p)
        return logits, (history,)

    monkeypatch.setattr(generate, "_encode", encode)
    monkeypatch.setattr(generate, "_step", step)


def test_live_beams_at_max_length_are_kept(monkeypatch):
    """Before: once anything had ended, the beams cut off by max_length were dropped, however likely."""
    scripted(monkeypatch, {(): {A: 0.9, EOD: 0.05, B: 0.05}, (A,): {A: 0.9, EOD: 0.05, B: 0.05},
                           (B,): {EOD: 0.9, A: 0.05, B: 0.05}})
    hyps = beam_search(None, np.array([EOD]), DecodeConfig(beam=2, max_length=2))
    assert hyps[0].ids == (A, A) and not hyps[0].finished
    assert any(h.finished for h in hyps)


def test_search_goes_on_while_a_live_beam_can_enter_the_top_w(monkeypatch):
    """Before: the search stopped as soon as the best ended hypothesis beat the best live one, so the
    second of the top two was the worse 'a' where 'a a' was still to come."""
    scripted(monkeypatch, {(): {EOD: 0.6, A: 0.3, B: 0.1}, (A,): {A: 0.6, EOD: 0.35, B: 0.05},
                           (B,): {EOD: 0.9, A: 0.05, B: 0.05}, (A, A): {EOD: 0.95, A: 0.03, B: 0.02}})
    hyps = beam_search(None, np.array([EOD]), DecodeConfig(beam=2, max_length=MAX))
    assert [h.ids for h in hyps[:2]] == [(), (A, A)]
    assert all(h.finished for h in hyps[:2])
    assert hyps[1].score == pytest.approx(math.log(0.3 * 0.6 * 0.95) / 3)


def test_finished_and_live_are_normalised_by_the_tokens_they_scored(monkeypatch):
    scripted(monkeypatch, {(): {A: 0.5, EOD: 0.5}, (A,): {A: 0.5, EOD: 0.5}, (A, A): {A: 0.5, EOD: 0.5}})
    hyps = beam_search(None, np.array([EOD]), DecodeConfig(beam=3, max_length=2, length_penalty=1.0))
    for h in hyps:
        scored = len(h.ids) + (1 if h.finished else 0)
        assert h.score == pytest.approx(h.logprob / scored)
