"""The one table of run kinds: what each task trains, with which configs, and how its settings are put
together ("task defaults, then preset, then overrides") for the CLI and the app alike."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rnnchat.chat.config import CHAT_TRAIN_DEFAULTS, Seq2SeqConfig
from rnnchat.chat.model import Seq2Seq
from rnnchat.chat.task import ChatTask
from rnnchat.config import AUTO_PRESET, DEFAULT_PRESET, PRESET_NAMES, PRESETS, TrainConfig, replace
from rnnchat.device import device_class, pick_device
from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.lm.config import ModelConfig
from rnnchat.lm.model import RNNLM
from rnnchat.lm.task import LMTask
from rnnchat.runs import auto


@dataclass(frozen=True)
class Kind:
    name: str                     # TrainConfig.task and run.json "kind"
    model_config: type            # ModelConfig or Seq2SeqConfig
    model: type                   # RNNLM or Seq2Seq
    task: type                    # LMTask or ChatTask: what the loop asks for data, loss and evaluation
    train_defaults: dict          # TrainConfig values of this task where they differ from the dataclass's
    what: str                     # "a language model": for messages
    command: str                  # the command that uses such a run
    label: str                    # the model column of run lists, given the run's tokenizer level
    keeps: tuple[str, ...] = ()   # model settings a size preset leaves at this kind's own default

    def describe(self) -> str:
        return f"{self.what} (use 'rnnchat {self.command}')"


KINDS: dict[str, Kind] = {
    "lm": Kind("lm", ModelConfig, RNNLM, LMTask, {}, "a language model", "generate", "{level}"),
    # A chat corpus is small and memorised within minutes: its dropout is its own (chat/config.py).
    "chat": Kind("chat", Seq2SeqConfig, Seq2Seq, ChatTask, CHAT_TRAIN_DEFAULTS, "a chat model", "chat",
                 "{level} chat", keeps=("dropout",)),
}
# Runs saved before the restructure wrote the chat kind as "seq2seq"; they load as chat runs.
_ALIASES = {"seq2seq": "chat"}


def kind_named(name: Any) -> Kind:
    """The kind of a run.json "kind" value (old names included); CheckpointError for anything else."""
    kind = KINDS.get(_ALIASES.get(name, name)) if isinstance(name, str) else None
    if kind is None:
        raise CheckpointError(f"unknown model kind {name!r}")
    return kind


def kind_of(meta: dict) -> Kind:
    return kind_named(meta.get("kind"))


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
    for name in model:
        if name not in fields:
            raise ConfigError(f"is not a setting of {kind.what}", name)
    train = {k: v for k, v in (train or {}).items() if v is not None}
    base = replace(replace(TrainConfig(), **kind.train_defaults), **train, task=task)
    settings, choice = preset_settings(kind, preset, model.get("cell"), base)
    shape = {k: v for k, v in settings.items() if k in fields and k not in kind.keeps}
    model_cfg = replace(replace(kind.model_config(), **shape), **model)
    schedule = {k: v for k, v in settings.items() if k in TRAIN_FIELDS and k not in train}
    return model_cfg, replace(base, **schedule), _note(preset, choice)


def _note(preset: str, choice: auto.Choice | None) -> str:
    return choice.describe() if choice else (_CHAT_AUTO if preset == AUTO_PRESET else "")


TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}   # the settings that are a TrainConfig's


_CHAT_AUTO = "auto preset: a chat model takes the small shape (the auto rows are measured on language models)"


def preset_settings(kind: Kind, preset: str, cell: str | None, train: TrainConfig) -> tuple[dict, auto.Choice | None]:
    """The settings a preset gives a run of this kind with these training settings, and the auto row they
    came from (None for a size preset). A chat model takes the small shape for "auto"."""
    if preset != AUTO_PRESET:
        return dict(PRESETS[preset]), None
    if kind.name != "lm":
        return dict(PRESETS["small"]), None
    train.validate()                     # a bad device or precision is named before it is looked for
    device = pick_device(train.device)
    choice = auto.choose(device_class(device, train.precision),
                         auto.budget_of(train.minutes, train.max_steps, train.epochs), cell)
    return choice.settings, choice


def train_config_of(meta: dict) -> TrainConfig:
    """A run's TrainConfig from its run.json (fields this version does not know are ignored)."""
    saved = meta.get("train", {})
    if not isinstance(saved, dict):
        raise CheckpointError("run.json has no training settings")
    try:
        return dataclasses.replace(TrainConfig.from_dict(saved), task=kind_of(meta).name)
    except TypeError as exc:
        raise CheckpointError(f"run.json training settings are not valid: {exc}") from None


def model_config_of(meta: dict) -> Any:
    """A run's model config from its run.json, validated."""
    kind = kind_of(meta)
    try:
        cfg = kind.model_config(**meta["model"])
        cfg.validate()
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"run.json model settings are not valid: {exc}") from None
    if getattr(cfg, "dropout", 0.0) is None:     # a new run settles it before run.json is written
        raise CheckpointError("run.json model settings are not valid: no dropout")
    return cfg
