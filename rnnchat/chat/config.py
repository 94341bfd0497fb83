"""Settings of the chat model, its training defaults and reply decoding."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rnnchat.config import (
    ATTENTIONS,
    CANDIDATES,
    check_choice,
    check_float,
    check_int,
    check_tie,
    check_top_p,
    likely_memorises,
)
from rnnchat.errors import ConfigError


@dataclass(frozen=True)
class Seq2SeqConfig:
    """The chat model: an LSTM encoder (bidirectional by default) and an LSTM decoder with attention."""
    vocab_size: int = 0           # filled in from the tokenizer
    layers: int = 2               # the same depth in the encoder and the decoder
    hidden: int = 256             # decoder width; a bidirectional encoder uses hidden/2 per direction
    embed: int = 64               # one embedding table, shared by the encoder and the decoder
    dropout: float | None = None  # None: by the corpus's size when training starts (dropout_for)
    bidirectional: bool = True    # the encoder reads the whole prompt before the reply starts anyway
    attention: str = "general"    # Luong's score: h_dec . W h_enc ("general") or h_dec . h_enc ("dot")
    tie: bool = False             # output head shares the embedding (needs embed == hidden)
    # What the model reads and is trained on; replies read the same context the model was trained with.
    context_turns: int = 1        # earlier turns read with the prompt (bounded by max_turn_chars)
    max_turn_chars: int = 300     # longer prompts or replies are dropped from training, so a batch stays small
    teacher_forcing: float = 1.0  # share of decoder inputs taken from the reference reply while training

    def validate(self) -> None:
        check_int("layers", self.layers, 1, 16)
        check_int("hidden", self.hidden, 2, 8192)
        check_int("embed", self.embed, 1, 8192)
        if self.dropout is not None:
            check_float("dropout", self.dropout, 0.0, 0.95)
        check_choice("attention", self.attention, ATTENTIONS)
        if self.bidirectional and self.hidden % 2:
            raise ConfigError(f"must be even for a bidirectional encoder (got {self.hidden})", "hidden")
        check_tie(self.tie, self.embed, self.hidden)
        check_int("context_turns", self.context_turns, 0, 16)
        check_int("max_turn_chars", self.max_turn_chars, 8, 100_000)
        check_float("teacher_forcing", self.teacher_forcing, 0.0, 1.0)


# Dropout when none is given: a corpus the model would memorise (likely_memorises: the built-in dialogues)
# wants much, a large one (Shakespeare's pairs) little; each value won its corpus's 5-minute runs (RESULTS.md).
SMALL_CORPUS_DROPOUT = 0.5
LARGE_CORPUS_DROPOUT = 0.1


def settle(cfg: Seq2SeqConfig, task) -> tuple[Seq2SeqConfig, str]:
    """The config a new run trains with once its corpus is read (``task``: dropout, when none was given,
    by the corpus's size), and a line saying what was chosen and why ("" when nothing was)."""
    if cfg.dropout is not None:
        return cfg, ""
    from rnnchat.weights import shapes_only

    with shapes_only():                     # counts parameters without allocating them
        parameters = task.build_model(dataclasses.replace(cfg, dropout=0.0)).num_parameters()
    train_tokens = task.train_tokens
    small = likely_memorises(parameters, train_tokens)
    value = SMALL_CORPUS_DROPOUT if small else LARGE_CORPUS_DROPOUT
    return dataclasses.replace(cfg, dropout=value), (
        f"dropout {value:g}: {parameters:,} parameters for {train_tokens:,} training tokens, "
        f"{'a corpus it would memorise' if small else 'enough text not to memorise'}")


def memorise_advice(cfg: Seq2SeqConfig) -> str:
    """What to try when the model would memorise its corpus; "" when its dropout already holds it back
    (measured enough for chat)."""
    return "" if cfg.dropout >= SMALL_CORPUS_DROPOUT else f"try --dropout {SMALL_CORPUS_DROPOUT:g}"


# Training defaults for --task chat where they differ from the language model's: subwords give real
# words, more and smaller updates suit a small corpus (measured on the built-in dialogues; RESULTS.md).
# Patience: a long run stops once held-out loss has not improved for 4 evaluations (best is kept).
CHAT_TRAIN_DEFAULTS = {"level": "bpe", "vocab_size": 1000, "lr": 6e-3, "batch_size": 32, "clip": 1.0, "patience": 4}


@dataclass(frozen=True)
class DecodeConfig:
    """How chat replies are decoded. Temperature 0 is greedy; beam > 1 is beam search."""
    temperature: float = 0.7      # a little randomness avoids the same reply to everything
    top_k: int = 0
    top_p: float = 0.9           # nucleus sampling cuts the long tail of unlikely tokens
    beam: int = 1                 # beam width; > 1 searches instead of sampling
    length_penalty: float = 1.0   # beams are ranked by log-prob / length**penalty (0: raw log-prob)
    no_repeat_ngram: int = 0      # forbid repeating any n-gram of this many tokens (0: off)
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the reply less likely (1: off)
    rerank: float = 0.0           # beam: subtract this times the reply's log-prob without the prompt (anti-LM)
    max_length: int = 200         # tokens
    seed: int | None = None
    # "retrieval": replies of similar prompts in the run's dialogue and the model's beams, reranked; the default
    # since it answered held-out prompts better (chrF, benchmarks/RESULTS.md); "model": the model's own reply.
    candidates: str = "retrieval"


    def validate(self) -> None:
        check_float("temperature", self.temperature, 0.0, 100.0)
        check_int("top_k", self.top_k, 0, 10_000_000)
        check_top_p(self.top_p)
        check_int("beam", self.beam, 1, 64)
        check_float("length_penalty", self.length_penalty, 0.0, 10.0)
        check_int("no_repeat_ngram", self.no_repeat_ngram, 0, 1000)
        check_float("repetition_penalty", self.repetition_penalty, 1.0, 100.0)
        check_float("rerank", self.rerank, 0.0, 5.0)
        check_int("max_length", self.max_length, 1, 100_000)
        check_choice("candidates", self.candidates, CANDIDATES)
