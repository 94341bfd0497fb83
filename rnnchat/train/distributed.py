"""Training on several processes with DistributedDataParallel (``torchrun … -m rnnchat train …``).

torchrun starts one process per GPU (or per CPU slot) and tells each its place through the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT). Each process trains the same model on
different batches; DDP averages the gradients during ``backward``, so the weights stay identical.
Rank 0 alone creates the run directory, evaluates, prints and writes checkpoints; the others wait
for it at the next gradient exchange.

The ranks must take the same number of steps, so decisions that one process could make alone (stop
on Ctrl+C, the time budget, rolling back a bad step) are agreed first: ``Group.agree`` sums a few
numbers over all ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from rnnchat.errors import ConfigError


def launched() -> bool:
    """True when this process was started by torchrun (or an equivalent launcher) with more than one rank."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


@dataclass(frozen=True)
class Group:
    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def agree(self, *values: float, device: torch.device) -> list[float]:
        """The sum of each value over all ranks (every rank gets the same numbers back)."""
        t = torch.tensor(values, dtype=torch.float64 if device.type == "cpu" else torch.float32, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def share(self, obj):
        """Rank 0's ``obj`` on every rank (a small picklable value, such as a path string)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        dist.barrier()


def current() -> Group | None:
    """The process group this process belongs to, or None when training alone."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def init(device_name: str) -> Group:
    """Join the group torchrun set up: NCCL with one GPU per process, gloo on CPUs."""
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; train without torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"process {local_rank} has no GPU of its own ({torch.cuda.device_count()} visible); "
                              "start no more processes per node than there are GPUs")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    group = current()
    if group is None:
        raise ConfigError("torchrun started a single process; drop torchrun or use --nproc_per_node 2 or more")
    return group


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class TaskStep(nn.Module):
    """One training step's forward pass (the task's loss) as a module, so DDP can wrap any task:
    DDP synchronises gradients for what runs inside ``forward``, and the chat task calls its model's
    encoder and decoder separately."""

    def __init__(self, task, model: nn.Module):
        super().__init__()
        self.task = task
        self.model = model

    def forward(self, batch, carried):
        return self.task.loss(self.model, batch, carried)


def wrap(task, model: nn.Module, device: torch.device) -> nn.Module:
    """``TaskStep`` in DistributedDataParallel (the parameters are broadcast from rank 0 here)."""
    step = TaskStep(task, model)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(step, device_ids=ids)
