"""Settings for models, training and sampling: defaults with the reason for each, and validation.

Every value a user can set from the command line or the app passes through ``validate`` here, so a bad
value is refused with one clear sentence before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import ConfigError

CELLS = ("lstm", "gru", "rnn")
LEVELS = ("char", "bpe", "unigram")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")
TASKS = ("lm", "chat")
ATTENTIONS = ("general", "dot")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 0           # filled in from the tokenizer
    # Defaults chosen by sweeps of 2- and 5-minute Shakespeare runs on 2 CPU cores (benchmarks/RESULTS.md):
    # at 2 minutes the GRU reached 1.51 nats/char where the LSTM reached 1.60 (bf16 CPU, where the LSTM
    # runs twice the steps per second) and 1.55 (fp32 CPU).
    cell: str = "gru"
    layers: int = 2               # two layers beat one of the same parameter count on character text
    hidden: int = 256             # 2x384 matched it at 2 minutes with twice the parameters and half the speed
    embed: int = 64               # characters need few dimensions; the recurrent layers do the work
    dropout: float = 0.0          # in minutes a model sees a corpus a few times: dropout only slowed learning
                                  # (the best checkpoint is kept, so a later overfit loses nothing)
    tie: bool = False             # tying needs embed == hidden; it saves parameters for large vocabularies

    def validate(self) -> None:
        _choice("cell", self.cell, CELLS)
        _int_range("layers", self.layers, 1, 16)
        _int_range("hidden", self.hidden, 1, 8192)
        _int_range("embed", self.embed, 1, 8192)
        _float_range("dropout", self.dropout, 0.0, 0.95)
        if self.tie and self.embed != self.hidden:
            raise ConfigError(f"--tie needs --embed equal to --hidden (got {self.embed} and {self.hidden})")


# Presets the CLI and the app offer. "small" is the default.
PRESETS: dict[str, dict] = {
    "tiny": dict(layers=1, hidden=128, embed=32, dropout=0.0),
    "small": dict(layers=2, hidden=256, embed=64, dropout=0.0),
    "medium": dict(layers=3, hidden=512, embed=128, dropout=0.2),
}


@dataclass(frozen=True)
class Seq2SeqConfig:
    """The chat model: an LSTM encoder (bidirectional by default) and an LSTM decoder with attention."""
    vocab_size: int = 0           # filled in from the tokenizer
    layers: int = 2               # the same depth in the encoder and the decoder
    hidden: int = 256             # decoder width; a bidirectional encoder uses hidden/2 per direction
    embed: int = 64               # one embedding table, shared by the encoder and the decoder
    dropout: float = 0.1
    bidirectional: bool = True    # the encoder reads the whole prompt before the reply starts anyway
    attention: str = "general"    # Luong's score: h_dec . W h_enc ("general") or h_dec . h_enc ("dot")
    tie: bool = False             # output head shares the embedding (needs embed == hidden)

    def validate(self) -> None:
        _int_range("layers", self.layers, 1, 16)
        _int_range("hidden", self.hidden, 2, 8192)
        _int_range("embed", self.embed, 1, 8192)
        _float_range("dropout", self.dropout, 0.0, 0.95)
        _choice("attention", self.attention, ATTENTIONS)
        if self.bidirectional and self.hidden % 2:
            raise ConfigError(f"a bidirectional encoder needs an even --hidden (got {self.hidden})")
        if self.tie and self.embed != self.hidden:
            raise ConfigError(f"--tie needs --embed equal to --hidden (got {self.embed} and {self.hidden})")


@dataclass(frozen=True)
class TrainConfig:
    level: str = "char"           # characters need no tokenizer training and show learning most plainly
    vocab_size: int = 2000        # subword levels only; small corpora cannot fill a larger vocabulary
    seq_len: int = 128            # BPTT window: 64 learnt faster in 2-minute runs, but 128 was ahead at 3 minutes
                                  # (1.490 vs 1.507) and level at 5 (1.446 vs 1.447); runs default to 10 minutes
    batch_size: int = 64          # keeps both cores busy on CPU; 128 learnt less per second, 32 no more
    lr: float = 5e-3              # 5-minute sweep: 5e-3 reached 1.446 nats/char, 3e-3 1.467-1.476, 1e-2 1.481
                                  # (1e-2 won 2-minute runs; 2e-2 was unstable for the GRU)
    min_lr_ratio: float = 0.1     # cosine decay ends at 10% of the peak rate
    warmup_steps: int = 50        # a short ramp avoids the early gradient spikes of fresh recurrent nets
    weight_decay: float = 0.01
    clip: float = 5.0             # gradient-norm clipping; the norm is reported so explosions are visible
    max_steps: int = 0            # 0: no step limit
    epochs: float = 0.0           # 0: no epoch limit
    minutes: float = 0.0          # training-time budget; 0: none
    eval_every: int = 200         # steps between evaluations (and samples and checkpoints)
    eval_tokens: int = 100_000    # validation tokens per evaluation
    sample_length: int = 200      # characters of the sample shown at each evaluation
    sample_seed: int = 1234       # the same seed every evaluation, so the sample shows the model improving
    carry_state: bool = False     # carry hidden state across consecutive windows (stateful training)
    val_fraction: float = 0.1
    device: str = "auto"
    precision: str = "auto"
    seed: int = 1337
    log_every: int = 10           # steps between Step events
    task: str = "lm"              # "lm": a language model; "chat": a seq2seq model on dialogue pairs
    context_turns: int = 1        # chat: earlier turns read with the prompt (bounded by max_turn_chars)
    max_turn_chars: int = 300     # chat: longer prompts or replies are dropped, so a batch stays small
    teacher_forcing: float = 1.0  # chat: share of decoder inputs taken from the reference reply

    def validate(self) -> None:
        _choice("level", self.level, LEVELS)
        _choice("device", self.device, DEVICES)
        _choice("precision", self.precision, PRECISIONS)
        _int_range("vocab-size", self.vocab_size, 8, 1_000_000)
        _int_range("seq-len", self.seq_len, 2, 100_000)
        _int_range("batch-size", self.batch_size, 1, 1_000_000)
        _float_range("lr", self.lr, 1e-8, 10.0, low_open=False)
        _float_range("min-lr-ratio", self.min_lr_ratio, 0.0, 1.0)
        _int_range("warmup-steps", self.warmup_steps, 0, 10_000_000)
        _float_range("weight-decay", self.weight_decay, 0.0, 10.0)
        _float_range("clip", self.clip, 0.0, 1e6)
        _int_range("max-steps", self.max_steps, 0, 10**12)
        _float_range("epochs", self.epochs, 0.0, 1e6)
        _float_range("minutes", self.minutes, 0.0, 1e7)
        _int_range("eval-every", self.eval_every, 1, 10**12)
        _int_range("eval-tokens", self.eval_tokens, 1, 10**12)
        _int_range("sample-length", self.sample_length, 0, 100_000)
        _float_range("val-fraction", self.val_fraction, 0.001, 0.5)
        _int_range("log-every", self.log_every, 1, 10**9)
        _choice("task", self.task, TASKS)
        _int_range("context-turns", self.context_turns, 0, 16)
        _int_range("max-turn-chars", self.max_turn_chars, 8, 100_000)
        _float_range("teacher-forcing", self.teacher_forcing, 0.0, 1.0)


@dataclass(frozen=True)
class SampleConfig:
    length: int = 500
    temperature: float = 0.8      # below 1 trades variety for coherence; 0 is greedy
    top_k: int = 0                # 0: off
    top_p: float = 1.0            # 1: off
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)

    def validate(self) -> None:
        _int_range("length", self.length, 0, 10_000_000)
        _float_range("temperature", self.temperature, 0.0, 100.0)
        _int_range("top-k", self.top_k, 0, 10_000_000)
        if not (0.0 < self.top_p <= 1.0) or math.isnan(self.top_p):
            raise ConfigError(f"--top-p must be in (0, 1], got {self.top_p}")


# Training defaults for --task chat where they differ from the language model's. Measured on the
# built-in dialogues, 3 minutes on 2 CPU cores: characters reached 2.33 bits/char in 400 steps and
# replied with non-words; bpe-1000 pieces reached 1.44 in 1,436 steps with real words; a higher rate
# and smaller batches (more updates on a small corpus) reached 1.36 and answered greetings in kind
# (with clipping at 1, the language model's earlier default, kept here as measured).
CHAT_TRAIN_DEFAULTS = {"level": "bpe", "vocab_size": 1000, "lr": 6e-3, "batch_size": 32, "clip": 1.0}


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

    def validate(self) -> None:
        _float_range("temperature", self.temperature, 0.0, 100.0)
        _int_range("top-k", self.top_k, 0, 10_000_000)
        if not (0.0 < self.top_p <= 1.0) or math.isnan(self.top_p):
            raise ConfigError(f"--top-p must be in (0, 1], got {self.top_p}")
        _int_range("beam", self.beam, 1, 64)
        _float_range("length-penalty", self.length_penalty, 0.0, 10.0)
        _int_range("no-repeat-ngram", self.no_repeat_ngram, 0, 1000)
        _float_range("repetition-penalty", self.repetition_penalty, 1.0, 100.0)
        _float_range("rerank", self.rerank, 0.0, 5.0)
        _int_range("max-length", self.max_length, 1, 100_000)


def replace(cfg, **changes):
    """dataclasses.replace that ignores None values (unset command-line options)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"--{name} must be one of {', '.join(choices)}; got {value!r}")


def _int_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise ConfigError(f"--{name} must be a whole number from {low} to {high}; got {value!r}")


def _float_range(name: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or value > high or (low_open and value == low):
        raise ConfigError(f"--{name} must be a number from {low:g} to {high:g}; got {value!r}")
