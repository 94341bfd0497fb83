"""run.json, the description of a run: written here and read only here, into a typed, validated ``RunMeta``.

A run directory may come from elsewhere (shared, downloaded, edited by hand), so every field is checked
for its type and bounds before anything uses it, and a bad one is one CheckpointError that names it.
A top-level key no version wrote is refused; settings this version no longer has are ignored, and runs
written by older versions read as before.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rnnchat import CHECKPOINT_FORMAT, __version__
from rnnchat.config import TrainConfig
from rnnchat.errors import CheckpointError, ConfigError, SaveError
from rnnchat.files import read_bounded, write_json_atomic
from rnnchat.runs.intact import refuse_links, save_failure
from rnnchat.runs.kinds import Kind, kind_named
from rnnchat.safetext import neutralise

MAX_TEXT = 4096               # characters of any one string field (names, sources, notes)
_KEYS = {"format", "kind", "model", "train", "tokenizer", "parameters", "corpus", "data", "versions", "created",
         "summary", "init_from", "preset"}     # every key any version of this format has written


@dataclass(frozen=True)
class CorpusInfo:
    """What run.json records of the corpus (the text itself is not kept once its tokens are on disk)."""
    name: str
    source: str
    hash: str
    chars: int

    @property
    def spec(self) -> str:
        """What ``text.load.load_corpus`` takes to read this corpus again."""
        return self.source.removeprefix("builtin:")


@dataclass(frozen=True)
class Summary:
    """The run's progress as of its last save, for run lists."""
    step: int = 0
    best_val_loss: float | None = None
    best_bits_per_char: float | None = None


@dataclass(frozen=True)
class Origin:
    """The run (and its checkpoint and step) a run's weights started from (``--init-from``)."""
    run: str
    checkpoint: str
    step: int

    def describe(self) -> str:
        return f"{self.run} ({self.checkpoint}, step {self.step:,})"


@dataclass(frozen=True)
class RunMeta:
    kind: Kind
    model: Any                    # the kind's model config, validated
    train: TrainConfig
    tokenizer: str                # the tokenizer's kind: char, bpe or unigram
    parameters: int
    corpus: CorpusInfo
    summary: Summary = Summary()
    data: dict = dataclasses.field(default_factory=dict)     # the task's counts (pairs, tokens), for people
    created: str = ""
    preset: str = ""              # what the auto preset chose, as Started said it
    init_from: Origin | None = None
    versions: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        meta = {"format": CHECKPOINT_FORMAT, "kind": self.kind.name, "model": dataclasses.asdict(self.model),
                "train": dataclasses.asdict(self.train), "tokenizer": self.tokenizer,
                "parameters": self.parameters, "corpus": dataclasses.asdict(self.corpus), "data": self.data,
                "versions": self.versions, "created": self.created, "summary": dataclasses.asdict(self.summary)}
        if self.init_from:
            meta["init_from"] = dataclasses.asdict(self.init_from)
        if self.preset:
            meta["preset"] = self.preset
        return meta


def new_meta(*, kind: Kind, model_cfg, train_cfg: TrainConfig, tokenizer: str, parameters: int,
             corpus: CorpusInfo, data: dict, summary: Summary, created: str = "", preset: str = "",
             init_from: Origin | None = None) -> RunMeta:
    """The description of a run this version is training now."""
    import torch  # only a run being trained needs torch's version; reading run.json does not

    return RunMeta(kind, model_cfg, train_cfg, tokenizer, parameters, corpus, summary, data,
                   created or datetime.now().isoformat(timespec="seconds"), preset, init_from,
                   {"rnnchat": __version__, "torch": torch.__version__})


def write_meta(run_dir: Path, meta: RunMeta) -> None:
    """Write run.json atomically."""
    try:
        write_json_atomic(run_dir / "run.json", meta.to_dict())
    except OSError as exc:
        raise SaveError(save_failure(run_dir, "run.json", exc)) from None


def read_meta(run_dir: Path) -> RunMeta:
    """The validated run.json of ``run_dir``; one CheckpointError naming the run and the field otherwise."""
    refuse_links(run_dir)
    path = run_dir / "run.json"
    try:
        raw = json.loads(read_bounded(path).decode("utf-8"))
    except CheckpointError:
        raise
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} is not a run description")
    fmt = raw.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise CheckpointError(f"{path} has no checkpoint format number")
    if fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"run '{neutralise(run_dir.name)}' uses checkpoint format {fmt}, newer than this rnnchat {__version__} "
            f"reads (format {CHECKPOINT_FORMAT}); upgrade rnnchat to open it")
    try:
        return parse_meta(raw)
    except CheckpointError as exc:
        raise CheckpointError(f"run '{neutralise(run_dir.name)}' has {exc}") from None


def parse_meta(raw: dict) -> RunMeta:
    """A RunMeta from a run.json object; CheckpointError("an unknown ..." / "a bad run.json field ...")."""
    unknown = sorted(k for k in raw if k not in _KEYS)
    if unknown:
        raise CheckpointError(f"a run.json field this rnnchat does not know: {neutralise(str(unknown[0]))[:80]!r}")
    try:
        kind = kind_named(raw.get("kind"))
    except CheckpointError as exc:
        raise CheckpointError(f"an {exc}") from None
    model = _model_config(kind, raw)
    train = _train_config(kind, raw)
    corpus = _obj(raw, "corpus")
    init = raw.get("init_from")
    summary = _obj(raw, "summary", required=False)
    return RunMeta(
        kind=kind, model=model, train=train,
        tokenizer=_str(raw, "tokenizer", choices=("char", "bpe", "unigram")),
        parameters=_int(raw, "parameters", 0, 10**13, default=0),
        corpus=CorpusInfo(_str(corpus, "name", "corpus."), _str(corpus, "source", "corpus.", default=""),
                          _str(corpus, "hash", "corpus.", default=""),
                          _int(corpus, "chars", 0, 10**15, "corpus.", default=0)),
        summary=Summary(_int(summary, "step", 0, 10**15, "summary.", default=0),
                        _num(summary, "best_val_loss", "summary."), _num(summary, "best_bits_per_char", "summary.")),
        data={k: v for k, v in _obj(raw, "data", required=False).items()
              if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)},
        created=_str(raw, "created", default=""), preset=_str(raw, "preset", default=""),
        init_from=None if init is None else Origin(
            _str(_obj(raw, "init_from"), "run", "init_from."),
            _str(init, "checkpoint", "init_from.", choices=("best", "last")),
            _int(init, "step", 0, 10**15, "init_from.")),
        versions={k: str(v)[:64] for k, v in _obj(raw, "versions", required=False).items() if isinstance(k, str)},
    )


def _model_config(kind: Kind, raw: dict):
    saved = dict(_obj(raw, "model"))
    # Older runs kept the kind's own training settings (the chat's context_turns, ...) under "train".
    old_train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    for name in kind.moved_from_train:
        if name not in saved and name in old_train:
            saved[name] = old_train[name]
    fields = {f.name for f in dataclasses.fields(kind.model_config)}
    try:
        cfg = kind.model_config(**{k: v for k, v in saved.items() if k in fields})
        cfg.validate()
    except ConfigError as exc:
        raise CheckpointError(f"a bad run.json field model.{exc.field}: {exc.detail}") from None
    except TypeError as exc:
        raise CheckpointError(f"a bad run.json model: {exc}") from None
    if getattr(cfg, "dropout", 0.0) is None:     # a new run settles it before run.json is written
        raise CheckpointError("a bad run.json field model.dropout: no dropout given")
    return cfg


def _train_config(kind: Kind, raw: dict) -> TrainConfig:
    saved = _obj(raw, "train")
    try:
        cfg = dataclasses.replace(TrainConfig.from_dict(saved), task=kind.name)
        cfg.validate()
    except ConfigError as exc:
        raise CheckpointError(f"a bad run.json field train.{exc.field}: {exc.detail}") from None
    except TypeError as exc:
        raise CheckpointError(f"a bad run.json training settings: {exc}") from None
    return cfg


def _obj(raw: dict, key: str, required: bool = True) -> dict:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise CheckpointError(f"a bad run.json field {key}: not an object")
    return value


def _str(raw: dict, key: str, where: str = "", default: str | None = None, choices: tuple = ()) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or len(value) > MAX_TEXT or (choices and value not in choices):
        raise CheckpointError(f"a bad run.json field {where}{key}: "
                              f"{'one of ' + ', '.join(choices) if choices else 'text'} expected")
    return value


def _int(raw: dict, key: str, low: int, high: int, where: str = "", default: int | None = None) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CheckpointError(f"a bad run.json field {where}{key}: a whole number from {low} to {high} expected")
    return value


def _num(raw: dict, key: str, where: str = "") -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CheckpointError(f"a bad run.json field {where}{key}: a finite number expected")
    return float(value)
