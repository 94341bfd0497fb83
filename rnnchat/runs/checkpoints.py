"""Run directories on disk: atomic saves, validated loads, nothing that can execute code.

Layout (see README): ``<run>/run.json``, the tokenizer files, and ``last/`` and ``best/``, each with
``model.safetensors``, ``optimizer.safetensors``, ``trainer.json`` and ``manifest.json`` (sha256 and size
of every other file, and of the run's tokenizer files). A checkpoint directory is written and fsynced
under a temporary name and renamed into place; the one it replaces stays as ``.last.old`` / ``.best.old``,
so a kill at any moment leaves a loadable copy, and a copy that fails its checksum falls back to the
previous one. Run directories may come from elsewhere: links are refused, and every file is read only
when it is a regular file of a bounded size.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as to_safetensors

from rnnchat import CHECKPOINT_FORMAT, __version__
from rnnchat.errors import CheckpointError, ConfigError, SaveError
from rnnchat.paths import checkpoints_dir
from rnnchat.runs.kinds import KINDS, kind_of, model_config_of
from rnnchat.text.tokenizers import load_tokenizer

_CKPT_FILES = ("model.safetensors", "optimizer.safetensors", "trainer.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
_MAX_JSON_BYTES = 64 << 20         # run.json, manifest.json, trainer.json: far above any real one
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


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
    try:
        _write_file(tmp, json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def _write_file(path: Path, data: bytes) -> None:
    """A new file (never through a link left in its place) with ``data``, on disk before returning."""
    _unlink_quietly(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _open_regular(path: Path) -> int:
    """A read descriptor of ``path`` if it is a regular file and not a link (a FIFO never blocks here)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CheckpointError(f"{path} is a symbolic link; a run directory may hold only its own files") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"{path} is not a regular file")
    return fd


def _read_bounded(path: Path, limit: int = _MAX_JSON_BYTES) -> bytes:
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise CheckpointError(f"{path} is too large ({size:,} bytes; at most {limit:,} expected)")
        chunks, left = [], limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise CheckpointError(f"{path} is too large (more than {limit:,} bytes)")
    return data


def _refuse_links(directory: Path) -> None:
    """One clear error for a link anywhere in a run directory (its own entries and its checkpoints')."""
    try:
        entries = list(os.scandir(directory))
        for entry in entries:
            if entry.is_symlink():
                raise CheckpointError(f"{entry.path} is a symbolic link; a run directory may hold only its own "
                                      "files (refusing to read it)")
            if entry.is_dir(follow_symlinks=False) and entry.name in ("last", "best", ".last.old", ".best.old"):
                _refuse_links(Path(entry.path))
    except OSError as exc:
        raise CheckpointError(f"cannot read {directory}: {exc.strerror or exc}") from None


def read_run_meta(run_dir: Path) -> dict:
    _refuse_links(run_dir)
    try:
        meta = json.loads(_read_bounded(run_dir / "run.json").decode("utf-8"))
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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    fd = _open_regular(path)
    try:
        while block := os.read(fd, 1 << 20):
            h.update(block)
    finally:
        os.close(fd)
    return h.hexdigest()


def _entry(path: Path) -> dict:
    return {"sha256": _sha256(path), "size": os.stat(path, follow_symlinks=False).st_size}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(run_dir: Path) -> None:
    """Temporary files and folders of saves that died (their process is gone) or of this process."""
    for entry in os.scandir(run_dir):
        head, sep, pid = entry.name.rpartition(".tmp-")
        if not (sep and head.startswith(".") and pid.isdigit()):
            continue
        if int(pid) == os.getpid() or not _pid_alive(int(pid)):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                _unlink_quietly(Path(entry.path))


def _complete(path: Path) -> bool:
    """A checkpoint folder whose manifest reads and whose files all have their recorded sizes (no hashing)."""
    try:
        files = json.loads(_read_bounded(path / "manifest.json"))["files"]
        return all(os.stat(path / n, follow_symlinks=False).st_size == files[n]["size"] for n in _CKPT_FILES)
    except (CheckpointError, OSError, ValueError, KeyError, TypeError):
        return False


def save_checkpoint(run_dir: Path, which: str, model_tensors: dict[str, torch.Tensor],
                    optimizer_tensors: dict[str, torch.Tensor], trainer_state: dict) -> Path:
    """Write ``run_dir/which``: temp dir, fsync, then rename it in; the replaced copy stays as ``.which.old``.

    A complete copy exists at every moment: ``.which.old`` is removed only while ``which`` is complete,
    and ``which`` is renamed aside only once the new copy is on disk. A write that fails (a full disk)
    removes its temporary folder and raises SaveError naming the copy that is still intact.
    """
    final, old = run_dir / which, run_dir / f".{which}.old"
    tmp = run_dir / f".{which}.tmp-{os.getpid()}"
    try:
        _remove_stale_temps(run_dir)
        if _complete(final) and os.path.lexists(old):
            shutil.rmtree(old)      # free its space first: ``final`` is the intact copy meanwhile
        os.mkdir(tmp)
        _write_file(tmp / "model.safetensors", to_safetensors(
            {k: v.detach().to("cpu").contiguous() for k, v in model_tensors.items()},
            metadata={"format": str(CHECKPOINT_FORMAT)}))
        _write_file(tmp / "optimizer.safetensors", to_safetensors(
            {k: v.detach().to("cpu").contiguous() for k, v in optimizer_tensors.items()}))
        _write_file(tmp / "trainer.json", json.dumps(trainer_state, indent=1).encode("utf-8"))
        manifest = {"format": CHECKPOINT_FORMAT, "saved": time.time(),
                    "files": {n: _entry(tmp / n) for n in _CKPT_FILES},
                    "run_files": {n: _entry(run_dir / n) for n in _TOKENIZER_FILES
                                  if os.path.lexists(run_dir / n)}}
        _write_file(tmp / "manifest.json", json.dumps(manifest, indent=1).encode("utf-8"))
        _fsync_dir(tmp)
        if os.path.lexists(final):
            if _complete(final):
                shutil.rmtree(old, ignore_errors=True)
                os.rename(final, old)
            else:               # a half-written copy; ``old`` is then the intact one and stays
                shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(run_dir)
    except (OSError, CheckpointError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SaveError(save_failure(run_dir, f"checkpoint '{which}'", exc)) from None
    return final


def save_failure(run_dir: Path, what: str, exc: Exception) -> str:
    """One line for a failed write: why, and which checkpoint of the run is still intact."""
    reason = getattr(exc, "strerror", None) or str(exc)
    if getattr(exc, "errno", None) in _DISK_FULL:
        head = f"the disk is full ({reason}): could not save {what} of run '{run_dir.name}'"
    else:
        head = f"could not save {what} of run '{run_dir.name}' in {run_dir}: {reason}"
    for name in ("last", ".last.old", "best", ".best.old"):
        path = run_dir / name
        if _complete(path):
            try:
                step = json.loads(_read_bounded(path / "trainer.json"))["step"]
            except (CheckpointError, OSError, ValueError, KeyError, TypeError):
                continue
            return f"{head}; the checkpoint {path} (step {step}) is intact"
    return f"{head}; no checkpoint of this run is on disk yet"


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
    note: str = ""        # set when the checkpoint failed its check and the previous copy was loaded


def load_checkpoint(run_dir: Path, which: str, with_optimizer: bool = False) -> LoadedCheckpoint:
    """Read and verify a checkpoint, or its previous copy when it fails; every failure is one CheckpointError."""
    _refuse_links(run_dir)
    candidates = [p for p in (run_dir / which, run_dir / f".{which}.old") if os.path.lexists(p)]
    if not candidates:
        raise CheckpointError(f"run '{run_dir.name}' has no '{which}' checkpoint")
    first: CheckpointError | None = None
    for path in candidates:
        try:
            loaded = _load_one(run_dir, path, with_optimizer)
        except CheckpointError as exc:
            first = first or exc
            continue
        if first is None:
            return loaded
        note = (f"{first}; loaded the previous copy instead ({path.name}, step {loaded.trainer.get('step', '?')})")
        return dataclasses.replace(loaded, note=note)
    raise first


def _load_one(run_dir: Path, path: Path, with_optimizer: bool) -> LoadedCheckpoint:
    try:
        manifest = json.loads(_read_bounded(path / "manifest.json"))
        files = manifest["files"]
        if manifest.get("format", 0) > CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint {path} uses format {manifest['format']}, newer than this "
                                  f"rnnchat reads ({CHECKPOINT_FORMAT}); upgrade rnnchat")
        needed = ("model.safetensors", "trainer.json") + (("optimizer.safetensors",) if with_optimizer else ())
        # Runs saved before the tokenizer files were listed have no "run_files"; they load as before.
        checks = [(path / n, files[n]) for n in needed]
        checks += [(run_dir / n, e) for n, e in manifest.get("run_files", {}).items() if n in _TOKENIZER_FILES]
        for f, entry in checks:
            if not os.path.lexists(f):
                raise CheckpointError(f"checkpoint {path} is missing {f.name}")
            size = os.stat(f, follow_symlinks=False).st_size
            if size != entry["size"]:
                raise CheckpointError(f"checkpoint file {f} is truncated or changed "
                                      f"({size} bytes, expected {entry['size']})")
            if _sha256(f) != entry["sha256"]:
                raise CheckpointError(f"checkpoint file {f} does not match its checksum (changed after saving)")
        model = load_file(str(path / "model.safetensors"), device="cpu")
        optimizer = load_file(str(path / "optimizer.safetensors"), device="cpu") if with_optimizer else {}
        trainer = json.loads(_read_bounded(path / "trainer.json"))
        if not isinstance(trainer, dict):
            raise ValueError("trainer.json is not an object")
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    return LoadedCheckpoint(path, model, optimizer, trainer)


def held_parameters(weights_file: Path) -> int:
    """How many numbers a safetensors file holds, from its header alone (no tensor is read)."""
    try:
        with safe_open(str(weights_file), framework="pt") as f:
            return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read {weights_file}: {exc}") from None


def check_model_size(run_name: str, meta: dict, loaded: LoadedCheckpoint) -> None:
    """Refuse a run.json that describes a bigger model than its weights file holds, before any is built."""
    try:
        found, cfg = kind_of(meta), model_config_of(meta)
        with torch.device("meta"):      # shapes only: no memory, however large the config asks
            implied = sum(t.numel() for t in found.model(cfg).weights().values())
    except (CheckpointError, ConfigError, KeyError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(f"run '{run_name}' does not describe a loadable model: "
                              f"{str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}") from None
    held = held_parameters(loaded.path / "model.safetensors")
    if implied > held:
        raise CheckpointError(f"run '{run_name}' does not describe a loadable model: run.json asks for "
                              f"{implied:,} parameters but its weights file holds {held:,}")


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
