"""Where rnnchat looks for corpora, runs and its token cache (each overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path


def corpora_dir() -> Path:
    return Path(os.environ.get("RNNCHAT_CORPORA", "corpora"))


def checkpoints_dir() -> Path:
    return Path(os.environ.get("RNNCHAT_CHECKPOINTS", "checkpoints"))


def cache_dir() -> Path:
    if "RNNCHAT_CACHE" in os.environ:
        return Path(os.environ["RNNCHAT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rnnchat"
