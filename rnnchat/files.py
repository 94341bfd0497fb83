"""Files that rnnchat did not necessarily write itself, read safely, and files it writes, written durably.

Reads take regular files only (no links, FIFOs or devices) and are bounded in size; writes go to a new
file (never through a link left in its place) and reach the disk before they count; a JSON file is
replaced atomically."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from rnnchat.errors import CheckpointError

MAX_READ_BYTES = 64 << 20      # run.json, manifests, trainer state: far above any real one
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def open_regular(path: Path) -> int:
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


def read_bounded(path: Path, limit: int = MAX_READ_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a link, FIFO or device) of at most ``limit`` bytes."""
    fd = open_regular(path)
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
    """A manifest entry: the file's checksum and size."""
    return {"sha256": sha256_of(path), "size": os.stat(path, follow_symlinks=False).st_size}


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
