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
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as to_safetensors

from rnnchat import CHECKPOINT_FORMAT
from rnnchat.errors import CheckpointError, ConfigError, SaveError
from rnnchat.files import entry_of, fsync_dir, read_bounded, sha256_of, unlink_quietly, write_file
from rnnchat.runs.intact import CKPT_FILES as _CKPT_FILES
from rnnchat.runs.intact import complete as _complete
from rnnchat.runs.intact import refuse_links, save_failure
from rnnchat.weights import shapes_only

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


def pid_alive(pid: int) -> bool:
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
        if int(pid) == os.getpid() or not pid_alive(int(pid)):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                unlink_quietly(Path(entry.path))


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
        write_file(tmp / "model.safetensors", to_safetensors(
            {k: v.detach().to("cpu").contiguous() for k, v in model_tensors.items()},
            metadata={"format": str(CHECKPOINT_FORMAT)}))
        write_file(tmp / "optimizer.safetensors", to_safetensors(
            {k: v.detach().to("cpu").contiguous() for k, v in optimizer_tensors.items()}))
        write_file(tmp / "trainer.json", json.dumps(trainer_state, indent=1).encode("utf-8"))
        manifest = {"format": CHECKPOINT_FORMAT, "saved": time.time(),
                    "files": {n: entry_of(tmp / n) for n in _CKPT_FILES},
                    "run_files": {n: entry_of(run_dir / n) for n in _TOKENIZER_FILES
                                  if os.path.lexists(run_dir / n)}}
        write_file(tmp / "manifest.json", json.dumps(manifest, indent=1).encode("utf-8"))
        fsync_dir(tmp)
        if os.path.lexists(final):
            if _complete(final):
                shutil.rmtree(old, ignore_errors=True)
                os.rename(final, old)
            else:               # a half-written copy; ``old`` is then the intact one and stays
                shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_dir(run_dir)
    except (OSError, CheckpointError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SaveError(save_failure(run_dir, f"checkpoint '{which}'", exc)) from None
    return final


@dataclass(frozen=True)
class LoadedCheckpoint:
    path: Path
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    trainer: dict
    note: str = ""        # set when the checkpoint failed its check and the previous copy was loaded


def load_checkpoint(run_dir: Path, which: str, with_optimizer: bool = False) -> LoadedCheckpoint:
    """Read and verify a checkpoint, or its previous copy when it fails; every failure is one CheckpointError."""
    refuse_links(run_dir)
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
        manifest = json.loads(read_bounded(path / "manifest.json"))
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
            if sha256_of(f) != entry["sha256"]:
                raise CheckpointError(f"checkpoint file {f} does not match its checksum (changed after saving)")
        model = load_file(str(path / "model.safetensors"), device="cpu")
        optimizer = load_file(str(path / "optimizer.safetensors"), device="cpu") if with_optimizer else {}
        trainer = json.loads(read_bounded(path / "trainer.json"))
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


def check_model_size(run_name: str, meta, loaded: LoadedCheckpoint) -> None:
    """Refuse a run.json (``meta``, a RunMeta) that describes a bigger model than its weights file holds,
    before any is built."""
    try:
        with shapes_only():                 # no memory, however large the config asks
            implied = sum(t.numel() for t in meta.kind.model(meta.model).weights().values())
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


