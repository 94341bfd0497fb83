"""The trainer's state in a checkpoint, beside the weights: its counters (``Progress``), the optimizer, every
process's RNG and the recurrent state it carries, so a resumed run follows the curve of one never stopped."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnchat.errors import CheckpointError
from rnnchat.runs import checkpoints as ckpt
from rnnchat.runs.meta import Summary


@dataclass
class Progress:
    """The trainer's counters, saved with every checkpoint and restored on resume."""
    step: int = 0
    elapsed: float = 0.0              # seconds of training time, across resumes
    best_val: float = math.inf
    best_bpc: float | None = None
    best_step: int = 0                # the step of best_val, for stopping when it stops improving
    lr_scale: float = 1.0             # halved by every rollback after a bad step

    def summary(self) -> Summary:
        return Summary(self.step, None if math.isinf(self.best_val) else self.best_val, self.best_bpc)


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
