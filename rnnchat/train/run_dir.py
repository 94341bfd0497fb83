"""A run directory as training writes it: a new run's name and folder, run.json, metrics.jsonl, and the
trainer state that goes into each checkpoint with the weights (see runs/checkpoints.py for the files)."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from rnnchat import CHECKPOINT_FORMAT, __version__
from rnnchat import events as ev
from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.paths import checkpoints_dir
from rnnchat.runs import checkpoints as ckpt


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
    lr_scale: float = 1.0             # halved by every rollback after a bad step

    def summary(self) -> dict:
        return {"step": self.step, "best_val_loss": None if math.isinf(self.best_val) else self.best_val,
                "best_bits_per_char": self.best_bpc}


def default_name(corpus: str, level: str, model_cfg) -> str:
    cell = getattr(model_cfg, "cell", "chat")
    return "{}-{}-{}{}x{}-{}".format(_slug(corpus), level, cell, model_cfg.layers, model_cfg.hidden,
                                     datetime.now().strftime("%Y%m%d-%H%M%S"))


def create(name: str, tokenizer) -> Path:
    """A new run folder under checkpoints/ holding the tokenizer; refuses unusable and existing names."""
    if "/" in name or name.startswith(".") or not name.strip():
        raise ConfigError(f"{name!r} is not a usable run name (no slashes, not hidden)", "name")
    run_dir = checkpoints_dir() / name
    if (run_dir / "run.json").exists():
        raise ConfigError(f"run '{name}' already exists; continue it with --resume {name} or pick another --name")
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(run_dir)
    return run_dir


def write_meta(run_dir: Path, *, kind: str, model_cfg, train_cfg, tokenizer, parameters: int, corpus: CorpusInfo,
               data: dict, progress: Progress, created: str | None = None) -> dict:
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
    ckpt.write_json_atomic(run_dir / "run.json", meta)
    return meta


def append_metrics(run_dir: Path, event: ev.Eval) -> None:
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(event.to_dict()) + "\n")


def save(run_dir: Path, which: str, model, optimizer, progress: Progress, carried, epoch: float) -> Path:
    """One checkpoint: weights, optimizer state (with any carried recurrent state) and the trainer state."""
    opt_tensors, groups = ckpt.optimizer_to_tensors(optimizer.state_dict())
    if carried is not None:
        parts = carried if isinstance(carried, tuple) else (carried,)
        opt_tensors.update({f"carry.{i}": p for i, p in enumerate(parts)})
    state = {
        "step": progress.step, "elapsed": progress.elapsed,
        "best_val": None if math.isinf(progress.best_val) else progress.best_val, "best_bpc": progress.best_bpc,
        "lr_scale": progress.lr_scale, "param_groups": groups,
        "rng": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
        "epoch": epoch,
    }
    return ckpt.save_checkpoint(run_dir, which, model.weights(), opt_tensors, state)


def restore(loaded: ckpt.LoadedCheckpoint, model, optimizer, device: torch.device, run_name: str):
    """Put a checkpoint back into the model and optimizer; returns (Progress, carried state or None)."""
    try:
        model.load_weights(loaded.model)
        t = loaded.trainer
        optimizer.load_state_dict(ckpt.optimizer_from_tensors(
            {k: v for k, v in loaded.optimizer.items() if not k.startswith("carry.")}, t["param_groups"]))
        progress = Progress(step=int(t["step"]), elapsed=float(t["elapsed"]),
                            best_val=float(t["best_val"]) if t.get("best_val") is not None else math.inf,
                            best_bpc=t.get("best_bpc"), lr_scale=float(t.get("lr_scale", 1.0)))
        torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(t["rng"])), dtype=torch.uint8))
        carry = [loaded.optimizer[k].to(device) for k in sorted(loaded.optimizer) if k.startswith("carry.")]
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint of '{run_name}' does not fit its run: {exc}") from None
    carried = (tuple(carry) if len(carry) == 2 else carry[0]) if carry else None
    return progress, carried


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-")
    return out[:40] or "corpus"
