"""The run directory, its one owner: find a run by name, create a new one, hold it while training (the
lock), append its metrics, tell when its checkpoints changed, list and delete runs. What is inside it:
run.json (``meta``), the checkpoints (``checkpoints``, ``state``), a run's model opened (``opened``)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rnnchat import events as ev
from rnnchat.errors import CheckpointError, ConfigError, SaveError
from rnnchat.paths import BUILTIN_BASE, builtin_base_dir, check_run_name, checkpoints_dir
from rnnchat.runs.intact import save_failure
from rnnchat.runs.meta import read_meta


def resolve_run(name: str | os.PathLike) -> Path:
    """A run name under checkpoints/, a path to a run directory, or ``base``: the built-in base model (a run of
    the user's own called base, from before it existed, comes first)."""
    candidates = [Path(name)]
    if os.sep not in str(name):
        candidates.insert(0, checkpoints_dir() / str(name))
    if str(name) == BUILTIN_BASE:
        candidates.insert(1, builtin_base_dir())
    for path in candidates:
        if (path / "run.json").is_file():
            return path
    raise CheckpointError(f"run '{name}' not found (looked for run.json in {', '.join(str(c) for c in candidates)})")


def default_name(corpus: str, level: str, model_cfg) -> str:
    cell = getattr(model_cfg, "cell", "chat")
    return "{}-{}-{}{}x{}-{}".format(_slug(corpus), level, cell, model_cfg.layers, model_cfg.hidden,
                                     datetime.now().strftime("%Y%m%d-%H%M%S"))


def create(name: str, tokenizer, unique: bool = False) -> Path:
    """A new run folder under checkpoints/ holding the tokenizer; refuses unusable and existing names.

    The folder is made with an exclusive mkdir, so two runs never share one; with ``unique`` (a default
    name) a taken name gets the first free suffix -2, -3, ... instead."""
    check_run_name(name)
    if name == BUILTIN_BASE:
        raise ConfigError(f"'{BUILTIN_BASE}' names the built-in base model (--init-from {BUILTIN_BASE}); pick another "
                          "--name", "name")
    root = checkpoints_dir()
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000 if unique else 2):
        run_dir = root / (name if n == 1 else f"{name}-{n}")
        try:
            os.mkdir(run_dir)
        except FileExistsError:
            continue
        tokenizer.save(run_dir)
        return run_dir
    run_dir = root / name
    if os.path.lexists(run_dir / "run.json"):
        raise ConfigError(f"run '{name}' already exists; continue it with --resume {name} or pick another --name")
    raise ConfigError(f"folder {run_dir} already exists but holds no run (no run.json); remove it or pick "
                      "another --name")


def discard_unstarted(run_dir: Path) -> None:
    """Remove a run folder that ``create`` made when the run failed before its run.json was written (it would
    block its own name); a folder holding anything else is left as it is."""
    try:
        names = {e.name for e in os.scandir(run_dir)}
        if "run.json" in names or not names <= {"tokenizer.json", "tokenizer.model", ".lock"}:
            return
        for name in names:
            os.unlink(run_dir / name)
        os.rmdir(run_dir)
    except OSError:
        pass


def append_metrics(run_dir: Path, event: ev.Eval) -> None:
    """One line at the end of metrics.jsonl, never through a link or into anything but a regular file."""
    path = run_dir / "metrics.jsonl"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CheckpointError(f"{path} is a symbolic link; a run directory may hold only its own files") from None
        raise SaveError(save_failure(run_dir, "metrics.jsonl", exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointError(f"{path} is not a regular file")
        os.write(fd, (json.dumps(event.to_dict()) + "\n").encode("utf-8"))
    except OSError as exc:
        raise SaveError(save_failure(run_dir, "metrics.jsonl", exc)) from None
    finally:
        os.close(fd)


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
            meta = read_meta(d)
        except CheckpointError:
            continue
        runs.append(RunSummary(
            name=d.name, path=d, corpus=meta.corpus.name, level=meta.train.level, kind=meta.kind.name,
            parameters=meta.parameters, step=meta.summary.step,
            best_bits_per_char=meta.summary.best_bits_per_char, modified=(d / "run.json").stat().st_mtime))
    return sorted(runs, key=lambda r: r.modified, reverse=True)


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


class RunLock:
    """The exclusive hold of one run directory by one trainer (see ``lock``)."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.unlink(self.path)   # while still held: a waiter that opened it sees a new file and retries
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def lock(run_dir: Path) -> RunLock:
    """Hold ``run_dir`` for this process (flock: the kernel drops it when the process dies, however)."""
    path = run_dir / ".lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            what = "is a symbolic link" if exc.errno == errno.ELOOP else f"cannot be opened ({exc.strerror})"
            raise CheckpointError(f"the lock file {path} of run '{run_dir.name}' {what}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise CheckpointError(f"the lock file {path} of run '{run_dir.name}' is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                raise ConfigError(f"run '{run_dir.name}' is in use by another training"
                                  f"{f' (process {holder})' if holder.isdigit() else ''}; wait for it to finish "
                                  "or stop it") from None
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
            return RunLock(path, fd)
        os.close(fd)   # its holder removed it as we opened it: take the new one


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-")
    return out[:40] or "corpus"
