"""Run directories on disk: atomic saves, validated loads, nothing that can execute code.

Layout (see README): ``<run>/run.json``, the tokenizer files, and ``last/`` and ``best/``, each with
``model.safetensors``, ``optimizer.safetensors``, ``trainer.json`` and ``manifest.json`` (sha256 and size
of every other file). A checkpoint directory is written under a temporary name and renamed into place,
so a kill at any moment leaves the previous one loadable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rnnchat import CHECKPOINT_FORMAT, __version__
from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.paths import checkpoints_dir
from rnnchat.runs.kinds import KINDS, kind_of, model_config_of
from rnnchat.text.tokenizers import load_tokenizer

_CKPT_FILES = ("model.safetensors", "optimizer.safetensors", "trainer.json")


def resolve_run(name: str | os.PathLike) -> Path:
    """A run name under checkpoints/ or a path to a run directory."""
    candidates = [Path(name)]
    if os.sep not in str(name):
        candidates.insert(0, checkpoints_dir() / str(name))
    for path in candidates:
        if (path / "run.json").is_file():
            return path
    raise CheckpointError(f"run '{name}' not found (looked for run.json in {', '.join(str(c) for c in candidates)})")


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_run_meta(run_dir: Path) -> dict:
    try:
        meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(run_dir: Path, which: str, model_tensors: dict[str, torch.Tensor],
                    optimizer_tensors: dict[str, torch.Tensor], trainer_state: dict) -> Path:
    """Write ``run_dir/which`` atomically: temp dir → fsync → rename over the old one."""
    final = run_dir / which
    tmp = run_dir / f".{which}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().to("cpu").contiguous() for k, v in model_tensors.items()},
              str(tmp / "model.safetensors"), metadata={"format": str(CHECKPOINT_FORMAT)})
    save_file({k: v.detach().to("cpu").contiguous() for k, v in optimizer_tensors.items()},
              str(tmp / "optimizer.safetensors"))
    (tmp / "trainer.json").write_text(json.dumps(trainer_state, indent=1), encoding="utf-8")
    manifest = {"format": CHECKPOINT_FORMAT, "saved": time.time(),
                "files": {n: {"sha256": _sha256(tmp / n), "size": (tmp / n).stat().st_size} for n in _CKPT_FILES}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    for n in (*_CKPT_FILES, "manifest.json"):
        fd = os.open(tmp / n, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    old = run_dir / f".{which}.old"
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_dir(run_dir: Path, which: str) -> Path:
    """The directory of a checkpoint, recovering one left half-swapped by a kill during save."""
    final = run_dir / which
    if (final / "manifest.json").is_file():
        return final
    old = run_dir / f".{which}.old"
    if (old / "manifest.json").is_file():
        return old
    raise CheckpointError(f"run '{run_dir.name}' has no '{which}' checkpoint")


@dataclass(frozen=True)
class LoadedCheckpoint:
    path: Path
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    trainer: dict


def load_checkpoint(run_dir: Path, which: str, with_optimizer: bool = False) -> LoadedCheckpoint:
    """Read and verify a checkpoint; every failure becomes one CheckpointError sentence."""
    path = checkpoint_dir(run_dir, which)
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format", 0) > CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint {path} uses format {manifest['format']}, newer than this "
                                  f"rnnchat reads ({CHECKPOINT_FORMAT}); upgrade rnnchat")
        needed = ("model.safetensors", "trainer.json") + (("optimizer.safetensors",) if with_optimizer else ())
        for name in needed:
            entry = files[name]
            f = path / name
            if not f.is_file():
                raise CheckpointError(f"checkpoint {path} is missing {name}")
            if f.stat().st_size != entry["size"]:
                raise CheckpointError(f"checkpoint file {f} is truncated or changed "
                                      f"({f.stat().st_size} bytes, expected {entry['size']})")
            if _sha256(f) != entry["sha256"]:
                raise CheckpointError(f"checkpoint file {f} does not match its checksum (changed after saving)")
        model = load_file(str(path / "model.safetensors"), device="cpu")
        optimizer = load_file(str(path / "optimizer.safetensors"), device="cpu") if with_optimizer else {}
        trainer = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
        if not isinstance(trainer, dict):
            raise ValueError("trainer.json is not an object")
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    return LoadedCheckpoint(path, model, optimizer, trainer)


def optimizer_to_tensors(state: dict) -> tuple[dict[str, torch.Tensor], list]:
    """Flatten a torch optimizer state_dict into named tensors plus JSON-able param groups."""
    tensors = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{idx}.{key}"] = t
    return tensors, state["param_groups"]


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], param_groups: list) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        idx, _, key = name.partition(".")
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": param_groups}


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
    """Remove a run directory and everything in it; refuses anything that is not a run."""
    run_dir = resolve_run(run)
    if run_dir.is_symlink():
        raise CheckpointError(f"'{run_dir}' is a link, not a run directory; remove it by hand")
    shutil.rmtree(run_dir)
    return run_dir
