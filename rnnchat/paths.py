"""Where rnnchat looks for corpora, runs and its token cache (each overridable by environment), and what a run
may be called."""

from __future__ import annotations

import os
from pathlib import Path

from rnnchat.errors import ConfigError
from rnnchat.safetext import neutralise

MAX_RUN_NAME = 120            # characters; file systems allow 255 bytes per name, suffixes need room
BUILTIN_BASE = "base"         # the run name of the base model shipped inside the package (rnnchat/base/)


def corpora_dir() -> Path:
    return Path(os.environ.get("RNNCHAT_CORPORA", "corpora"))


def checkpoints_dir() -> Path:
    return Path(os.environ.get("RNNCHAT_CHECKPOINTS", "checkpoints"))


def builtin_base_dir() -> Path:
    """The built-in base model's run directory, inside the installed package (read, never written)."""
    return Path(__file__).resolve().parent / "base"


def cache_dir() -> Path:
    if "RNNCHAT_CACHE" in os.environ:
        return Path(os.environ["RNNCHAT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rnnchat"


def make_private_dir(path: Path) -> None:
    """Make ``path`` and every missing folder above it readable by this user alone (0700): the cache holds
    text copied from corpora, which may be private."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass


def check_run_name(name: str) -> None:
    """Refuse a run name that cannot be a folder name or would not show as itself (one ConfigError line)."""
    if not name.strip() or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"{neutralise(name)!r} is not a usable run name (not empty, no slashes, not hidden)", "name")
    if neutralise(name) != name or any(c in name for c in "\t\n"):
        raise ConfigError(f"{neutralise(name)!r} has tabs, line breaks, control, bidi or invisible characters; "
                          "use plain text", "name")
    if len(name) > MAX_RUN_NAME or len(name.encode("utf-8", "surrogatepass")) > 200:
        raise ConfigError(f"is {len(name)} characters long; use at most {MAX_RUN_NAME}", "name")
