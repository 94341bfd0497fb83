"""Settings of the language model and of sampling from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rnnchat.config import check_float, check_int, check_recurrent, check_tie, check_top_p


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 0           # filled in from the tokenizer
    # The defaults won sweeps of 2- and 5-minute Shakespeare runs on 2 CPU cores (benchmarks/RESULTS.md).
    cell: str = "gru"             # learnt more per minute than the LSTM on both CPU classes
    layers: int = 2               # two layers beat one of the same parameter count on character text
    hidden: int = 256             # 2x384 matched it with twice the parameters and half the speed
    embed: int = 64               # characters need few dimensions; the recurrent layers do the work
    dropout: float = 0.0          # in minutes a model sees a corpus a few times: dropout only slowed learning
    tie: bool = False             # tying needs embed == hidden; it saves parameters for large vocabularies

    def validate(self) -> None:
        check_recurrent(self)
        check_tie(self.tie, self.embed, self.hidden)


# A language model sees its corpus many times within minutes: the 384 KB corpus of the small-corpus issue
# (1.9 parameters per training token) was best after 7 of the 19 passes a 5-minute run made, then memorised.
# Below this many training tokens per parameter a run would memorise within its budget, so it takes
# dropout and stops once held-out loss stalls (benchmarks/journal/2026-12-04-small-corpus.md).
SMALL_CORPUS_TOKENS_PER_PARAM = 2.0
SMALL_CORPUS_DROPOUT = 0.2
SMALL_CORPUS_PATIENCE = 3
# On such a corpus a run evaluates once a pass over its training text (not every 200 steps, which at 20 KB is
# 45 passes): it then stops within a few passes of its best (benchmarks/journal/2026-12-04-eval-per-pass.md).
SMALL_CORPUS_MIN_EVAL_EVERY = 20


def _parameters(cfg: ModelConfig, task) -> int:
    from rnnchat.weights import shapes_only

    with shapes_only():                     # counts parameters without allocating them
        return task.build_model(dataclasses.replace(cfg, dropout=0.0)).num_parameters()


def would_memorise(cfg: ModelConfig, task) -> bool:
    return _parameters(cfg, task) * SMALL_CORPUS_TOKENS_PER_PARAM > task.train_tokens


def _eval_every(train_cfg, task) -> int:
    """Steps between evaluations on a corpus the model would memorise: about one pass over its training text."""
    return min(train_cfg.eval_every, max(SMALL_CORPUS_MIN_EVAL_EVERY, round(task.steps_per_epoch())))


def _passes(steps: int, task) -> str:
    """How many passes over the training text ``steps`` steps read, in words ("1 pass", "4.4 passes")."""
    passes = steps / max(task.steps_per_epoch(), 1e-9)
    return "1 pass" if round(passes, 1) == 1 else f"{passes:.2g} passes"


def settle(cfg: ModelConfig, task) -> tuple[ModelConfig, str]:
    """The config a new run trains with once its corpus is read (``task``): on a corpus it would memorise,
    at least SMALL_CORPUS_DROPOUT, and a line saying so and why ("" when nothing changes)."""
    parameters = _parameters(cfg, task)
    if parameters * SMALL_CORPUS_TOKENS_PER_PARAM <= task.train_tokens:
        return cfg, ""
    dropout, every = max(cfg.dropout, SMALL_CORPUS_DROPOUT), _eval_every(task.cfg, task)
    return dataclasses.replace(cfg, dropout=dropout), (
        f"small corpus: dropout {dropout:g}, an evaluation every {every:,} steps ({_passes(every, task)} over the "
        f"text) and a stop after {SMALL_CORPUS_PATIENCE} evaluations without a better held-out loss "
        f"({parameters:,} parameters for {task.train_tokens:,} training tokens would memorise it; generate uses "
        "the best checkpoint)")


def settle_train(train_cfg, cfg: ModelConfig, task):
    """The training settings that wait for the corpus: a run that would memorise evaluates about once a pass
    and stops once held-out loss stalls (settings the user gave are put back by the caller)."""
    if not would_memorise(cfg, task):
        return train_cfg
    return dataclasses.replace(train_cfg, patience=train_cfg.patience or SMALL_CORPUS_PATIENCE,
                               eval_every=_eval_every(train_cfg, task))


def memorise_advice(cfg: ModelConfig) -> str:
    """What to try when the model would memorise its corpus; "" when its dropout already holds it back."""
    return "" if cfg.dropout >= SMALL_CORPUS_DROPOUT else "try a smaller preset"



@dataclass(frozen=True)
class SampleConfig:
    length: int = 500
    temperature: float = 0.8      # below 1 trades variety for coherence; 0 is greedy
    top_k: int = 0                # 0: off
    top_p: float = 1.0            # 1: off
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    exact: bool = False           # float32 weights even where the sampler's int8 copy would be faster

    @property
    def weights(self) -> str:
        """The FastStepper weights this asks for."""
        return "fp32" if self.exact else "auto"

    def validate(self) -> None:
        check_int("length", self.length, 0, 10_000_000)
        check_float("temperature", self.temperature, 0.0, 100.0)
        check_int("top_k", self.top_k, 0, 10_000_000)
        check_top_p(self.top_p)
