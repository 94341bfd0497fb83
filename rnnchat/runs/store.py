"""Run directories as a whole: find one by name, read its run.json, list them, open a run's model and
tokenizer for sampling or chat, tell when its checkpoints changed, delete one."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnchat import CHECKPOINT_FORMAT, __version__
from rnnchat.errors import CheckpointError, ConfigError, RnnchatError
from rnnchat.paths import checkpoints_dir, read_bounded
from rnnchat.runs.checkpoints import check_model_size, checkpoint_dir, load_checkpoint
from rnnchat.runs.files import lock, refuse_links
from rnnchat.runs.kinds import KINDS, kind_of, model_config_of
from rnnchat.text.tokenizers import load_tokenizer


def resolve_run(name: str | os.PathLike) -> Path:
    """A run name under checkpoints/ or a path to a run directory."""
    candidates = [Path(name)]
    if os.sep not in str(name):
        candidates.insert(0, checkpoints_dir() / str(name))
    for path in candidates:
        if (path / "run.json").is_file():
            return path
    raise CheckpointError(f"run '{name}' not found (looked for run.json in {', '.join(str(c) for c in candidates)})")


def read_run_meta(run_dir: Path) -> dict:
    refuse_links(run_dir)
    try:
        meta = json.loads(read_bounded(run_dir / "run.json").decode("utf-8"))
    except CheckpointError:
        raise
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {run_dir / 'run.json'}: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{run_dir / 'run.json'} is not a run description")
    fmt = meta.get("format")
    if not isinstance(fmt, int):
        raise CheckpointError(f"{run_dir / 'run.json'} has no checkpoint format number")
    if fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"run '{run_dir.name}' uses checkpoint format {fmt}, newer than this rnnchat {__version__} "
            f"reads (format {CHECKPOINT_FORMAT}); upgrade rnnchat to open it")
    return meta


@dataclass(frozen=True)
class RunSummary:
    name: str
    path: Path
    corpus: str
    level: str
    kind: str
    parameters: int
    step: int
    best_bits_per_char: float | None
    modified: float


def list_runs(root: Path | None = None) -> list[RunSummary]:
    """Every readable run under checkpoints/, newest first; unreadable ones are skipped."""
    root = root or checkpoints_dir()
    runs = []
    if not root.is_dir():
        return runs
    for d in root.iterdir():
        if not (d / "run.json").is_file():
            continue
        try:
            meta = read_run_meta(d)
        except CheckpointError:
            continue
        summary = meta.get("summary", {})
        runs.append(RunSummary(
            name=d.name, path=d, corpus=str(meta.get("corpus", {}).get("name", "?")),
            level=str(meta.get("train", {}).get("level", "?")), kind=_kind_name(meta),
            parameters=int(meta.get("parameters", 0)), step=int(summary.get("step", 0)),
            best_bits_per_char=summary.get("best_bits_per_char"),
            modified=(d / "run.json").stat().st_mtime))
    return sorted(runs, key=lambda r: r.modified, reverse=True)


def _kind_name(meta: dict) -> str:
    try:
        return kind_of(meta).name
    except CheckpointError:
        return str(meta.get("kind", "?"))


@dataclass(frozen=True)
class OpenedRun:
    name: str
    path: Path
    which: str
    meta: dict
    model: Any        # RNNLM or Seq2Seq, in eval mode, on the CPU
    tokenizer: Any


def open_language_model(run: str | os.PathLike, which: str = "best") -> OpenedRun:
    """Load a run's language model and tokenizer for sampling or evaluation; ``best`` falls back to ``last``."""
    return open_run(run, which, "lm")


def open_chat_model(run: str | os.PathLike, which: str = "best") -> OpenedRun:
    """Load a chat run's seq2seq model and tokenizer; ``best`` falls back to ``last``."""
    return open_run(run, which, "chat")


def open_run(run: str | os.PathLike, which: str = "best", kind: str | None = None) -> OpenedRun:
    """Load a run's model (of ``kind``, when given) and tokenizer, in eval mode on the CPU."""
    run_dir = resolve_run(run)
    meta = read_run_meta(run_dir)
    try:
        found = kind_of(meta)
    except CheckpointError as exc:
        raise CheckpointError(f"run '{run_dir.name}' has an {exc}") from None
    if kind is not None and found.name != kind:
        raise CheckpointError(f"run '{run_dir.name}' is {found.describe()}, not {KINDS[kind].what}")
    if which == "best":
        try:
            checkpoint_dir(run_dir, "best")
        except CheckpointError:
            which = "last"
    loaded = load_checkpoint(run_dir, which)
    tokenizer = load_tokenizer(run_dir)
    check_model_size(run_dir.name, meta, loaded)
    try:
        cfg = model_config_of(meta)
        if cfg.vocab_size != tokenizer.vocab_size:
            raise ValueError(f"model vocabulary {cfg.vocab_size} != tokenizer vocabulary {tokenizer.vocab_size}")
        model = found.model(cfg)
        model.load_weights(loaded.model)
    except (CheckpointError, ConfigError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"run '{run_dir.name}' does not describe a loadable model: "
                              f"{str(exc).splitlines()[0][:300]}") from None
    model.eval()
    return OpenedRun(run_dir.name, run_dir, which, meta, model, tokenizer)


def copy_index(meta: dict):
    """(the copy index of a run's training text, a warning or ""): from the cache, or built once from the
    run's corpus; no index, with the reason, when the corpus is no longer there."""
    from rnnchat.text.load import load_corpus
    from rnnchat.text.novelty import NoveltyIndex, index_path, training_index

    corpus, fraction = meta.get("corpus", {}), float(meta.get("train", {}).get("val_fraction", 0.1))
    path = index_path(str(corpus.get("hash", "")), fraction)
    if NoveltyIndex.exists(path):
        return NoveltyIndex.open(path), ""
    try:
        loaded = load_corpus(str(corpus.get("source", "")).removeprefix("builtin:"))
    except RnnchatError as exc:
        return None, f"cannot tell how much is copied from the training text: {exc}"
    note = "" if loaded.content_hash() == corpus.get("hash") else \
        "the run's corpus has changed since training; copies are measured against today's text"
    return training_index(loaded, fraction), note


def checkpoint_stamp(run_dir: Path) -> tuple[int, ...]:
    """Changes whenever a checkpoint of the run is saved: a cached model is stale when this differs."""
    stamp = []
    for which in ("best", "last"):
        try:
            stamp.append((run_dir / which / "manifest.json").stat().st_mtime_ns)
        except OSError:
            stamp.append(0)
    return tuple(stamp)


def delete_run(run: str | os.PathLike) -> Path:
    """Remove a run directory and everything in it; refuses anything that is not a run, and a run that a
    training holds (its lock)."""
    run_dir = resolve_run(run)
    if run_dir.is_symlink():
        raise CheckpointError(f"'{run_dir}' is a link, not a run directory; remove it by hand")
    held = lock(run_dir)
    try:
        shutil.rmtree(run_dir)
    finally:
        held.release()
    return run_dir
