"""A run directory as training writes it: a new run's name and folder, run.json, metrics.jsonl, and the
trainer state that goes into each checkpoint with the weights (see runs/checkpoints.py for the files)."""

from __future__ import annotations

import base64
import dataclasses
import errno
import json
import math
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from rnnchat import CHECKPOINT_FORMAT, __version__
from rnnchat import events as ev
from rnnchat.errors import CheckpointError, ConfigError, SaveError
from rnnchat.paths import check_run_name, checkpoints_dir
from rnnchat.runs import checkpoints as ckpt
from rnnchat.runs import files


@dataclass(frozen=True)
class CorpusInfo:
    """What run.json records of the corpus (the text itself is not kept once its tokens are on disk)."""
    name: str
    source: str
    hash: str
    chars: int


@dataclass
class Progress:
    """The trainer's counters, saved with every checkpoint and restored on resume."""
    step: int = 0
    elapsed: float = 0.0              # seconds of training time, across resumes
    best_val: float = math.inf
    best_bpc: float | None = None
    best_step: int = 0                # the step of best_val, for stopping when it stops improving
    lr_scale: float = 1.0             # halved by every rollback after a bad step

    def summary(self) -> dict:
        return {"step": self.step, "best_val_loss": None if math.isinf(self.best_val) else self.best_val,
                "best_bits_per_char": self.best_bpc}


def default_name(corpus: str, level: str, model_cfg) -> str:
    cell = getattr(model_cfg, "cell", "chat")
    return "{}-{}-{}{}x{}-{}".format(_slug(corpus), level, cell, model_cfg.layers, model_cfg.hidden,
                                     datetime.now().strftime("%Y%m%d-%H%M%S"))


def create(name: str, tokenizer, unique: bool = False) -> Path:
    """A new run folder under checkpoints/ holding the tokenizer; refuses unusable and existing names.

    The folder is made with an exclusive mkdir, so two runs never share one; with ``unique`` (a default
    name) a taken name gets the first free suffix -2, -3, ... instead."""
    check_run_name(name)
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


def write_meta(run_dir: Path, *, kind: str, model_cfg, train_cfg, tokenizer, parameters: int, corpus: CorpusInfo,
               data: dict, progress: Progress, created: str | None = None, init_from: dict | None = None,
               preset: str | None = None) -> dict:
    """Write run.json (atomically) and return what was written."""
    meta = {
        "format": CHECKPOINT_FORMAT, "kind": kind,
        "model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(train_cfg),
        "tokenizer": tokenizer.kind, "parameters": parameters,
        "corpus": dataclasses.asdict(corpus),
        "data": data,
        "versions": {"rnnchat": __version__, "torch": torch.__version__},
        "created": created or datetime.now().isoformat(timespec="seconds"),
        "summary": progress.summary(),
    }
    if init_from:
        meta["init_from"] = init_from
    if preset and isinstance(preset, str):
        meta["preset"] = preset                 # what the auto preset chose, as Started said it
    try:
        files.write_json_atomic(run_dir / "run.json", meta)
    except OSError as exc:
        raise SaveError(ckpt.save_failure(run_dir, "run.json", exc)) from None
    return meta


def append_metrics(run_dir: Path, event: ev.Eval) -> None:
    """One line at the end of metrics.jsonl, never through a link or into anything but a regular file."""
    path = run_dir / "metrics.jsonl"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CheckpointError(f"{path} is a symbolic link; a run directory may hold only its own files") from None
        raise SaveError(ckpt.save_failure(run_dir, "metrics.jsonl", exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointError(f"{path} is not a regular file")
        os.write(fd, (json.dumps(event.to_dict()) + "\n").encode("utf-8"))
    except OSError as exc:
        raise SaveError(ckpt.save_failure(run_dir, "metrics.jsonl", exc)) from None
    finally:
        os.close(fd)


def rank_state(carried) -> dict:
    """What one process must keep for an exact resume: its RNG states (CPU, and CUDA when in use) and the
    recurrent state it carries, as CPU tensors (picklable across processes)."""
    parts = () if carried is None else carried if isinstance(carried, tuple) else (carried,)
    return {"rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "carry": [p.detach().to("cpu") for p in parts]}


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _unb64(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def save(run_dir: Path, which: str, model, optimizer, progress: Progress, carried, epoch: float,
         ranks: list[dict] | None = None) -> Path:
    """One checkpoint: weights, optimizer state (with any carried recurrent state) and the trainer state.
    ``ranks``: every process's ``rank_state`` under torchrun (rank 0's is also this process's own)."""
    ranks = ranks or [rank_state(carried)]
    opt_tensors, groups = ckpt.optimizer_to_tensors(optimizer.state_dict())
    for r, share in enumerate(ranks):   # rank 0 keeps the names older runs used: carry.0, carry.1
        opt_tensors.update({f"carry.{i}" if r == 0 else f"carry.rank{r}.{i}": p for i, p in enumerate(share["carry"])})
    state = {
        "step": progress.step, "elapsed": progress.elapsed,
        "best_val": None if math.isinf(progress.best_val) else progress.best_val, "best_bpc": progress.best_bpc,
        "best_step": progress.best_step, "lr_scale": progress.lr_scale, "param_groups": groups,
        "rng": _b64(ranks[0]["rng"]), "cuda_rng": [_b64(s) for s in ranks[0]["cuda_rng"]],
        "epoch": epoch,
    }
    if len(ranks) > 1:
        state["ranks"] = [{"rng": _b64(s["rng"]), "cuda_rng": [_b64(c) for c in s["cuda_rng"]]} for s in ranks]
    return ckpt.save_checkpoint(run_dir, which, model.weights(), opt_tensors, state)


def restore(loaded: ckpt.LoadedCheckpoint, model, optimizer, device: torch.device, run_name: str,
            rank: int = 0):
    """Put a checkpoint back into the model and optimizer; returns (Progress, carried state or None).
    Process ``rank`` takes its own RNG and carried state; one the checkpoint lacks starts afresh."""
    try:
        model.load_weights(loaded.model)
        t = loaded.trainer
        optimizer.load_state_dict(ckpt.optimizer_from_tensors(
            {k: v for k, v in loaded.optimizer.items() if not k.startswith("carry.")}, t["param_groups"]))
        progress = Progress(step=int(t["step"]), elapsed=float(t["elapsed"]),
                            best_val=float(t["best_val"]) if t.get("best_val") is not None else math.inf,
                            best_bpc=t.get("best_bpc"), best_step=int(t.get("best_step", t["step"])),
                            lr_scale=float(t.get("lr_scale", 1.0)))
        ranks = t.get("ranks") or [t]
        own = ranks[rank] if rank < len(ranks) else t
        torch.set_rng_state(_unb64(own["rng"]))
        if device.type == "cuda" and own.get("cuda_rng"):
            for i, s in enumerate(own["cuda_rng"][:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(_unb64(s), i)
        prefix = "carry." if rank == 0 else f"carry.rank{rank}."
        names = [k for k in loaded.optimizer if k.startswith(prefix) and k[len(prefix):].isdigit()]
        carry = [loaded.optimizer[k].to(device) for k in sorted(names, key=lambda k: int(k[len(prefix):]))]
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint of '{run_name}' does not fit its run: {exc}") from None
    carried = (tuple(carry) if len(carry) == 2 else carry[0]) if carry else None
    return progress, carried


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-")
    return out[:40] or "corpus"
