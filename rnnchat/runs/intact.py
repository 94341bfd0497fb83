"""Which checkpoint copies of a run directory are whole, read from their manifests without torch, so that
run.json, run lists and save errors need no tensors (the checkpoints themselves: ``checkpoints``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rnnchat.errors import CheckpointError
from rnnchat.files import DISK_FULL, read_bounded

CKPT_FILES = ("model.safetensors", "optimizer.safetensors", "trainer.json")


def refuse_links(directory: Path) -> None:
    """One clear error for a link anywhere in a run directory (its own entries and its checkpoints')."""
    try:
        for entry in list(os.scandir(directory)):
            if entry.is_symlink():
                raise CheckpointError(f"{entry.path} is a symbolic link; a run directory may hold only its own "
                                      "files (refusing to read it)")
            if entry.is_dir(follow_symlinks=False) and entry.name in ("last", "best", ".last.old", ".best.old"):
                refuse_links(Path(entry.path))
    except OSError as exc:
        raise CheckpointError(f"cannot read {directory}: {exc.strerror or exc}") from None


def complete(path: Path) -> bool:
    """A checkpoint folder whose manifest reads and whose files all have their recorded sizes (no hashing)."""
    try:
        files = json.loads(read_bounded(path / "manifest.json"))["files"]
        return all(os.stat(path / n, follow_symlinks=False).st_size == files[n]["size"] for n in CKPT_FILES)
    except (CheckpointError, OSError, ValueError, KeyError, TypeError):
        return False


def save_failure(run_dir: Path, what: str, exc: Exception) -> str:
    """One line for a failed write: why, and which checkpoint of the run is still intact."""
    reason = getattr(exc, "strerror", None) or str(exc)
    if getattr(exc, "errno", None) in DISK_FULL:
        head = f"the disk is full ({reason}): could not save {what} of run '{run_dir.name}'"
    else:
        head = f"could not save {what} of run '{run_dir.name}' in {run_dir}: {reason}"
    for name in ("last", ".last.old", "best", ".best.old"):
        path = run_dir / name
        if complete(path):
            try:
                step = json.loads(read_bounded(path / "trainer.json"))["step"]
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
