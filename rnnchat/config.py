"""Settings for models, training and sampling: defaults with the reason for each, and validation.

Every value a user can set from the command line or the app passes through a ``validate`` method, so a
bad value is refused with one clear sentence before any work starts. Errors name the config field; the
CLI turns it into its flag and the app into its form label. The model and decoding settings of each
task live in ``lm/config.py`` and ``chat/config.py``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from rnnchat.errors import ConfigError

CELLS = ("lstm", "gru", "rnn")
LEVELS = ("char", "bpe", "unigram")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")
TASKS = ("lm", "chat", "classify")   # the front ends' choices; runs/kinds.py holds what each is
ATTENTIONS = ("general", "dot")
CHECKPOINTS = ("best", "last")
CANDIDATES = ("model", "retrieval")   # chat replies: the model's own, or the dialogue's replies + beams reranked

# Training time when no step, epoch or time limit is given. The window of 128 was chosen for runs of
# this length (benchmarks/RESULTS.md); Ctrl+C (or ctrl+x in the app) stops early and saves.
DEFAULT_MINUTES = 10.0

# Model-size presets the CLI and the app offer, as overrides of a model config (the chat model takes the
# same shape settings). "auto", the default, picks settings measured for the device and the time budget
# (runs/auto.py); a chat model takes "small" for it.
PRESETS: dict[str, dict] = {
    "tiny": dict(layers=1, hidden=128, embed=32, dropout=0.0),
    "small": dict(layers=2, hidden=256, embed=64, dropout=0.0),
    "medium": dict(layers=3, hidden=512, embed=128, dropout=0.2),
}
AUTO_PRESET = "auto"
PRESET_NAMES = (AUTO_PRESET, *PRESETS)
DEFAULT_PRESET = AUTO_PRESET

# What a resumed run may change: its limits, its evaluation cadence and where it runs. Everything else
# shapes the data, the split or the model, which a run keeps from its run.json.
RESUMABLE = ("max_steps", "epochs", "minutes", "eval_every", "patience", "device", "precision")

# With more parameters than this many per training token a model memorises its corpus rather than
# learning its style.
MEMORISE_PARAMS_PER_TOKEN = 2


def likely_memorises(parameters: int, train_tokens: int) -> bool:
    return parameters > MEMORISE_PARAMS_PER_TOKEN * train_tokens


@dataclass(frozen=True)
class TrainConfig:
    level: str = "char"           # characters need no tokenizer training and show learning most plainly
    vocab_size: int = 2000        # subword levels only; small corpora cannot fill a larger vocabulary
    seq_len: int = 128            # BPTT window: 64 learns faster at first, 128 catches up by 3-5 minutes
    batch_size: int = 64          # keeps both cores busy on CPU; 128 learnt less per second, 32 no more
    lr: float = 5e-3              # won the 5-minute sweep (benchmarks/RESULTS.md); 2e-2 was unstable
    min_lr_ratio: float = 0.1     # cosine decay ends at 10% of the peak rate
    warmup_steps: int = 50        # a short ramp avoids the early gradient spikes of fresh recurrent nets
    weight_decay: float = 0.01
    clip: float = 5.0             # gradient-norm clipping; the norm is reported so explosions are visible
    max_steps: int = 0            # 0: no step limit
    epochs: float = 0.0           # 0: no epoch limit
    minutes: float = 0.0          # training-time budget; 0: none
    eval_every: int = 200         # steps between evaluations (and samples and checkpoints)
    patience: int = 0             # stop after this many evaluations without a better held-out loss (0: never)
    eval_chars: int = 100_000     # validation characters scored at each evaluation: the same text at every
                                  # level, so bits per character compare across char, bpe and unigram runs
    sample_length: int = 200      # characters of the sample shown at each evaluation
    sample_seed: int = 1234       # the same seed every evaluation, so the sample shows the model improving
    carry_state: bool = False     # carry hidden state across consecutive windows (stateful training); the
                                  # auto preset's CPU rows turn it on with windows of 64 (runs/auto.py)
    val_fraction: float = 0.1
    device: str = "auto"
    precision: str = "auto"
    seed: int = 1337
    log_every: int = 10           # steps between Step events
    task: str = "lm"              # the run's kind (runs/kinds.py): "lm", a language model; "chat", seq2seq

    @classmethod
    def from_dict(cls, saved: dict) -> "TrainConfig":
        """The config a run saved (its run.json "train"); fields this version does not know are ignored."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in fields})

    def validate(self) -> None:
        check_choice("level", self.level, LEVELS)
        check_choice("device", self.device, DEVICES)
        check_choice("precision", self.precision, PRECISIONS)
        check_int("vocab_size", self.vocab_size, 8, 1_000_000)
        check_int("seq_len", self.seq_len, 2, 100_000)
        check_int("batch_size", self.batch_size, 1, 1_000_000)
        check_float("lr", self.lr, 1e-8, 10.0)
        check_float("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_int("warmup_steps", self.warmup_steps, 0, 10_000_000)
        check_float("weight_decay", self.weight_decay, 0.0, 10.0)
        check_float("clip", self.clip, 0.0, 1e6)
        check_int("max_steps", self.max_steps, 0, 10**12)
        check_float("epochs", self.epochs, 0.0, 1e6)
        check_float("minutes", self.minutes, 0.0, 1e7)
        check_int("eval_every", self.eval_every, 1, 10**12)
        check_int("patience", self.patience, 0, 10**6)
        check_int("eval_chars", self.eval_chars, 1, 10**12)
        check_int("sample_length", self.sample_length, 0, 100_000)
        check_float("val_fraction", self.val_fraction, 0.001, 0.5)
        check_int("log_every", self.log_every, 1, 10**9)
        if not isinstance(self.task, str):
            raise ConfigError(f"must be the name of a model kind; got {self.task!r}", "task")


def replace(cfg, **changes):
    """dataclasses.replace that ignores None values (unset command-line options)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})


def check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}; got {value!r}", field)


def check_int(field: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise ConfigError(f"must be a whole number from {low} to {high}; got {value!r}", field)


def check_float(field: str, value: float, low: float, high: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or value > high:
        raise ConfigError(f"must be a number from {low:g} to {high:g}; got {value!r}", field)


def check_recurrent(cfg) -> None:
    """The recurrent shape a language model and a classifier share: cell, layers, width, embedding, dropout."""
    check_choice("cell", cfg.cell, CELLS)
    check_int("layers", cfg.layers, 1, 16)
    check_int("hidden", cfg.hidden, 1, 8192)
    check_int("embed", cfg.embed, 1, 8192)
    check_float("dropout", cfg.dropout, 0.0, 0.95)


def check_top_p(value: float) -> None:
    if not (0.0 < value <= 1.0) or math.isnan(value):
        raise ConfigError(f"must be in (0, 1], got {value}", "top_p")


def check_tie(tie: bool, embed: int, hidden: int) -> None:
    if tie and embed != hidden:
        raise ConfigError(f"needs embed equal to hidden (got {embed} and {hidden})", "tie")
