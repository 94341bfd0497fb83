"""Files of run directories, which may come from elsewhere: bounded reads of regular files only (no
links, no devices), writes that reach the disk before they count, and the lock one trainer holds on a run."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.paths import open_regular

DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write_file(tmp, json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def write_file(path: Path, data: bytes) -> None:
    """A new file (never through a link left in its place) with ``data``, on disk before returning."""
    unlink_quietly(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def refuse_links(directory: Path) -> None:
    """One clear error for a link anywhere in a run directory (its own entries and its checkpoints')."""
    try:
        entries = list(os.scandir(directory))
        for entry in entries:
            if entry.is_symlink():
                raise CheckpointError(f"{entry.path} is a symbolic link; a run directory may hold only its own "
                                      "files (refusing to read it)")
            if entry.is_dir(follow_symlinks=False) and entry.name in ("last", "best", ".last.old", ".best.old"):
                refuse_links(Path(entry.path))
    except OSError as exc:
        raise CheckpointError(f"cannot read {directory}: {exc.strerror or exc}") from None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    fd = open_regular(path)
    try:
        while block := os.read(fd, 1 << 20):
            h.update(block)
    finally:
        os.close(fd)
    return h.hexdigest()


def entry_of(path: Path) -> dict:
    return {"sha256": sha256_of(path), "size": os.stat(path, follow_symlinks=False).st_size}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
