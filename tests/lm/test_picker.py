"""The Picker (pick each next token yourself) reads a prompt exactly as ``generate`` does: the same refusals,
the same primed state, whatever the prompt holds that the model does not know."""

from __future__ import annotations

import pytest
import torch

from rnnchat.errors import ConfigError
from rnnchat.lm.config import ModelConfig, SampleConfig
from rnnchat.lm.generate import Picker, generate
from rnnchat.lm.model import RNNLM
from rnnchat.text.tokenizers import CharTokenizer

TEXT = "the quick brown fox jumps over the lazy dog.\n"


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    return CharTokenizer.train([TEXT])


def make_model(vocab: int) -> RNNLM:
    torch.manual_seed(0)
    return RNNLM(ModelConfig(vocab_size=vocab, cell="gru", layers=1, hidden=24, embed=8))


def refusal(make) -> str | None:
    """The ConfigError message ``make()`` raises, or None when it raises nothing."""
    try:
        make()
    except ConfigError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("prompt", ["☃☃✓", "ZZZ", "☃"])
def test_an_all_unknown_prompt_is_refused_by_both_alike(tok, prompt):
    model, cfg = make_model(tok.vocab_size), SampleConfig(length=5, seed=1)
    by_generate = refusal(lambda: generate(model, tok, cfg, prompt))
    assert by_generate is not None and "no characters the model knows" in by_generate
    assert refusal(lambda: Picker(model, tok, cfg, prompt)) == by_generate


def test_a_tokenizer_of_another_vocabulary_is_refused_by_both_alike(tok):
    model, cfg = make_model(tok.vocab_size + 1), SampleConfig(length=5)
    by_generate = refusal(lambda: generate(model, tok, cfg, "the"))
    assert by_generate is not None and "tokens but the model was built for" in by_generate
    assert refusal(lambda: Picker(model, tok, cfg, "the")) == by_generate


@pytest.mark.parametrize("prompt", ["", "the", "☃ the ✓", "\x00dog"])
def test_a_partly_unknown_prompt_primes_both_alike(tok, prompt):
    model, cfg = make_model(tok.vocab_size), SampleConfig(length=1, seed=3)
    first = next(iter(generate(model, tok, cfg, prompt, alternatives=5)))
    offered = Picker(model, tok, cfg, prompt).options(5)
    assert [text for _, text, _ in offered] == [text for text, _ in first.alternatives]
    assert [p for _, _, p in offered] == pytest.approx([p for _, p in first.alternatives], rel=1e-5)
    assert Picker(model, tok, cfg, prompt).auto() == first.id   # the same seed samples the same token
