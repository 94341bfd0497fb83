"""Where rnnchat looks for corpora, runs and its token cache (each overridable by environment), what a run
may be called, and how files that rnnchat did not write itself are read (regular files only, bounded)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.safetext import neutralise

MAX_READ_BYTES = 64 << 20      # run.json, manifests, trainer state: far above any real one
MAX_RUN_NAME = 120            # characters; file systems allow 255 bytes per name, suffixes need room


def corpora_dir() -> Path:
    return Path(os.environ.get("RNNCHAT_CORPORA", "corpora"))


def checkpoints_dir() -> Path:
    return Path(os.environ.get("RNNCHAT_CHECKPOINTS", "checkpoints"))


def cache_dir() -> Path:
    if "RNNCHAT_CACHE" in os.environ:
        return Path(os.environ["RNNCHAT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rnnchat"


def check_run_name(name: str) -> None:
    """Refuse a run name that cannot be a folder name or would not show as itself (one ConfigError line)."""
    if not name.strip() or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"{neutralise(name)!r} is not a usable run name (not empty, no slashes, not hidden)", "name")
    if neutralise(name) != name or any(c in name for c in "\t\n"):
        raise ConfigError(f"{neutralise(name)!r} has tabs, line breaks, control, bidi or invisible characters; "
                          "use plain text", "name")
    if len(name) > MAX_RUN_NAME or len(name.encode("utf-8", "surrogatepass")) > 200:
        raise ConfigError(f"is {len(name)} characters long; use at most {MAX_RUN_NAME}", "name")


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
