"""The one table of run kinds: what each task trains, with which configs, and how its settings are put
together ("task defaults, then preset, then overrides") for the CLI and the app alike."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from rnnchat.chat import config as chat_config
from rnnchat.chat.config import CHAT_TRAIN_DEFAULTS, Seq2SeqConfig
from rnnchat.classify import config as classify_config
from rnnchat.classify.config import CLASSIFY_TRAIN_DEFAULTS, ClassifierConfig
from rnnchat.config import AUTO_PRESET, DEFAULT_PRESET, PRESET_NAMES, PRESETS, TrainConfig, replace
from rnnchat.device import device_class, device_type
from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.lm import config as lm_config
from rnnchat.lm.config import ModelConfig
from rnnchat.runs import auto


@dataclass(frozen=True)
class Kind:
    name: str                     # TrainConfig.task and run.json "kind"
    model_config: type            # ModelConfig or Seq2SeqConfig
    model_class: Callable[[], type]  # () -> RNNLM, Seq2Seq or Classifier: imported when a run is built or
                                  # opened, as the models import torch (the app draws before torch loads)
    task_class: Callable[[], type]  # () -> LMTask, ChatTask...: imported when a run trains, as the tasks
                                  # import the corpus readers (30-100 ms a command that only opens a run)
    train_defaults: dict          # TrainConfig values of this task where they differ from the dataclass's
    what: str                     # "a language model": for messages
    command: str                  # the command that uses such a run
    label: str                    # the model column of run lists, given the run's tokenizer level
    settle: Callable              # (model config, parameters, training tokens) -> (config, why): settings
                                  # that wait for the corpus (chat: dropout by its size)
    memorise_advice: Callable     # (model config) -> what to try when the model would memorise; "": nothing
    keeps: tuple[str, ...] = ()   # model settings a size preset leaves at this kind's own default
    starts_from: str = ""         # the kind of run --init-from takes for this kind ("": none)
    auto_rows: bool = False       # the auto preset's table (runs/auto.py) was measured on this kind
    moved_from_train: tuple[str, ...] = ()   # model settings older run.json files kept under "train"
    # (TrainConfig, settled model config, task) -> TrainConfig: training settings that wait for the corpus
    # (lm: stop once held-out loss stalls where it would memorise); settle returns only the model config.
    settle_train: Callable | None = None

    @property
    def model(self) -> type:
        """The model class of this kind's runs."""
        return self.model_class()

    @property
    def task(self) -> type:
        """What the loop asks for data, loss and evaluation."""
        return self.task_class()

    def describe(self) -> str:
        return f"{self.what} (use 'rnnchat {self.command}')"


def _lm_model() -> type:
    from rnnchat.lm.model import RNNLM

    return RNNLM


def _chat_model() -> type:
    from rnnchat.chat.model import Seq2Seq

    return Seq2Seq


def _classify_model() -> type:
    from rnnchat.classify.model import Classifier

    return Classifier


def _lm_task() -> type:
    from rnnchat.lm.task import LMTask

    return LMTask


def _chat_task() -> type:
    from rnnchat.chat.task import ChatTask

    return ChatTask


def _classify_task() -> type:
    from rnnchat.classify.task import ClassifyTask

    return ClassifyTask


KINDS: dict[str, Kind] = {
    "lm": Kind("lm", ModelConfig, _lm_model, _lm_task, {}, "a language model", "generate", "{level}",
               lm_config.settle, lm_config.memorise_advice, starts_from="lm", auto_rows=True,
               settle_train=lm_config.settle_train),
    # A chat corpus is small and memorised within minutes: its dropout is its own (chat/config.py).
    "chat": Kind("chat", Seq2SeqConfig, _chat_model, _chat_task, CHAT_TRAIN_DEFAULTS, "a chat model", "chat",
                 "{level} chat", chat_config.settle, chat_config.memorise_advice, keeps=("dropout",),
                 starts_from="lm", moved_from_train=("context_turns", "max_turn_chars", "teacher_forcing")),
    # Labelled texts are few and short beside a language model's corpus: dropout is the classifier's own.
    "classify": Kind("classify", ClassifierConfig, _classify_model, _classify_task, CLASSIFY_TRAIN_DEFAULTS,
                     "a classifier", "classify", "{level} classifier", classify_config.settle,
                     classify_config.memorise_advice, keeps=("dropout",), starts_from="lm"),
}
# The settings a run inherits from the language model it starts from (a classifier also its cell); the warm
# start itself is runs/warmstart.py, which imports torch.
INHERITED = ("level", "vocab_size", "cell", "layers", "hidden", "embed")
# Runs saved before the restructure wrote the chat kind as "seq2seq"; they load as chat runs.
_ALIASES = {"seq2seq": "chat"}


def kind_named(name: Any) -> Kind:
    """The kind of a run.json "kind" value (old names included); CheckpointError for anything else."""
    kind = KINDS.get(_ALIASES.get(name, name)) if isinstance(name, str) else None
    if kind is None:
        raise CheckpointError(f"unknown model kind {name!r}")
    return kind


def assemble(task: str = "lm", preset: str | None = None, model: dict | None = None,
             train: dict | None = None) -> tuple[Any, TrainConfig]:
    """(model config, TrainConfig) for a new run: the task's defaults, then the preset's settings, then
    the given overrides (None values are unset). Unknown presets and fields are refused by name."""
    model_cfg, train_cfg, _ = plan(task, preset, model, train)
    return model_cfg, train_cfg


def plan(task: str = "lm", preset: str | None = None, model: dict | None = None,
         train: dict | None = None) -> tuple[Any, TrainConfig, str]:
    """``assemble``'s configs and one line saying what the preset chose ("" for a size preset)."""
    kind = KINDS.get(task)
    if kind is None:
        raise ConfigError(f"must be one of {', '.join(KINDS)}; got {task!r}", "task")
    preset = preset or DEFAULT_PRESET
    if preset not in PRESET_NAMES:
        raise ConfigError(f"must be one of {', '.join(PRESET_NAMES)}; got {preset!r}", "preset")
    fields = {f.name for f in dataclasses.fields(kind.model_config)}
    model = {k: v for k, v in (model or {}).items() if v is not None}
    train = {k: v for k, v in (train or {}).items() if v is not None}
    # A kind's own training settings (the chat's context_turns, ...) live in its config, wherever given.
    model.update({k: train.pop(k) for k in list(train) if k not in TRAIN_FIELDS and k in fields})
    for name in (*model, *train):
        if name not in fields and name not in TRAIN_FIELDS:
            raise ConfigError(f"is not a setting of {kind.what}", name)
    base = replace(replace(TrainConfig(), **kind.train_defaults), **train, task=task)
    settings, choice = preset_settings(kind, preset, model.get("cell"), base)
    shape = {k: v for k, v in settings.items() if k in fields and k not in kind.keeps}
    model_cfg = replace(replace(kind.model_config(), **shape), **model)
    schedule = {k: v for k, v in settings.items() if k in TRAIN_FIELDS and k not in train}
    train_cfg = replace(base, **schedule)
    return model_cfg, train_cfg, _note(kind, preset, choice, {**dataclasses.asdict(model_cfg),
                                                              **dataclasses.asdict(train_cfg)})


def _note(kind: Kind, preset: str, choice: auto.Choice | None, final: dict) -> str:
    """What the preset chose, and every setting of its row the run does not use: the note describes the
    configuration that trains (run.json keeps it)."""
    if choice:
        changed = [f"{k} {_shown(final[k])} (the row's {_shown(v)})" for k, v in choice.settings.items()
                   if k in final and final[k] != v]
        return choice.describe() + (f"; set by hand: {', '.join(changed)}" if changed else "")
    return (f"auto preset: {kind.what} takes the small shape (the auto rows are measured on language models)"
            if preset == AUTO_PRESET else "")


TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}   # the settings that are a TrainConfig's


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def preset_settings(kind: Kind, preset: str, cell: str | None, train: TrainConfig) -> tuple[dict, auto.Choice | None]:
    """The settings a preset gives a run of this kind with these training settings, and the auto row they
    came from (None for a size preset). A kind without measured auto rows takes the small shape for it."""
    if preset != AUTO_PRESET:
        return dict(PRESETS[preset]), None
    if not kind.auto_rows:
        return dict(PRESETS["small"]), None
    train.validate()                     # a bad device or precision is named before it is looked for
    choice = auto.choose(device_class(device_type(train.device), train.precision),
                         auto.budget_of(train.minutes, train.max_steps, train.epochs), cell)
    return choice.settings, choice
