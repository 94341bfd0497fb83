"""The files panes write (Generate's outputs, Chat's transcripts): named for the run and the time, never
written over a file that exists."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path


def save_stamped(folder: Path, name: str, suffix: str, text: str) -> Path:
    """Write ``text`` to a new file folder/<name>-<date>-<time><suffix> (``save_new``); OSError when it cannot."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return save_new(folder, f"{name}-{stamp}", suffix, text)


def save_new(folder: Path, name: str, suffix: str, text: str) -> Path:
    """Write ``text`` to a file that did not exist: folder/name.suffix, else name-2, name-3, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    path, n = folder / f"{name}{suffix}", 2
    while True:
        try:
            with open(path, "x", encoding="utf-8", newline="") as f:
                f.write(text)
            return path
        except FileExistsError:
            path, n = folder / f"{name}-{n}{suffix}", n + 1


def file_stem(run: str) -> str:
    """A run's name made safe for a file name."""
    return re.sub(r"[^\w.-]+", "_", Path(run).name).strip("._") or "run"
