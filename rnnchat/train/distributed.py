"""Training on several processes with DistributedDataParallel (``torchrun … -m rnnchat train …``).

torchrun starts one process per GPU (or per CPU slot) and tells each its place through the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT). Each process trains the same model on
different batches; DDP averages the gradients during ``backward``, so the weights stay identical.
Rank 0 alone creates the run directory, evaluates, prints and writes checkpoints; the others wait
for it at the next gradient exchange.

The ranks must take the same number of steps, so decisions that one process could make alone (stop
on Ctrl+C, the time budget, rolling back a bad step) are agreed first: ``Group.agree`` sums a few
numbers over all ranks.

A process that fails posts its error to torchrun's store (``FailureWatch``); every process polls it,
so the others stop within a second instead of waiting in a collective until the timeout, and rank 0
prints the failing process's line.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from rnnchat.errors import ConfigError, RnnchatError

_FAILED_KEY = "rnnchat/failed"
_POLL_SECONDS = 0.25


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
        _injected_failure(self.rank)
        t = torch.tensor(values, dtype=torch.float64 if device.type == "cpu" else torch.float32, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def share(self, obj):
        """Rank 0's ``obj`` on every rank (a small picklable value, such as a path string)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list | None:
        """Every rank's ``obj`` (small and picklable) on rank 0, in rank order; None on the others."""
        out = [None] * self.world if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def barrier(self) -> None:
        dist.barrier()


def current() -> Group | None:
    """The process group this process belongs to, or None when training alone."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


_agreements = 0


def _injected_failure(rank: int) -> None:
    """For tests of failures under torchrun: RNNCHAT_TEST_FAIL=RANK:N fails process RANK at its N-th agreement."""
    global _agreements
    spec = os.environ.get("RNNCHAT_TEST_FAIL")
    if not spec:
        return
    _agreements += 1
    if spec == f"{rank}:{_agreements}":
        raise RnnchatError(f"injected failure at agreement {_agreements} (RNNCHAT_TEST_FAIL)")


def backend(device_name: str) -> str:
    """NCCL when the processes train on GPUs, gloo on CPUs."""
    return "nccl" if device_name in ("auto", "cuda") and torch.cuda.is_available() else "gloo"


def init(device_name: str) -> Group:
    """Join the group torchrun set up: NCCL with one GPU per process, gloo on CPUs."""
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; train without torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = backend(device_name) == "nccl"
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


class FailureWatch:
    """The first failure of any process of the job, shared through torchrun's store.

    ``fail`` posts this process's failure (first one wins) and returns the job's first; a thread polls
    the store so that a process blocked in a collective (no signal can interrupt one) still exits:
    rank 0 calls ``report`` with the failing process's line first."""

    def __init__(self, group: Group, report: Callable[[str], None]):
        self.group, self.report = group, report
        self._reported = threading.Lock()
        self._closed = threading.Event()
        self.store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                   timeout=timedelta(seconds=10))
        self._thread = threading.Thread(target=self._poll, name="rnnchat-failure-watch", daemon=True)
        self._thread.start()

    def fail(self, code: int, line: str) -> tuple[int, int, str]:
        """Post this process's failure; returns the job's first failure as (rank, exit code, line)."""
        mine = f"{self.group.rank}\t{code}\t{line}"
        try:
            first = self.store.compare_set(_FAILED_KEY, "", mine).decode("utf-8", "replace")
        except (RuntimeError, OSError):   # the store is gone: torchrun is already ending the job
            first = mine
        return _parse_failure(first, self.group.rank, code, line)

    def announce(self, rank: int, line: str) -> None:
        """On rank 0, one line for the job's first failure (once, from whichever thread gets here first)."""
        if self.group.is_main and self._reported.acquire(blocking=False):
            self.report(line if rank == 0 else f"process {rank} of {self.group.world} failed: {line}")

    def close(self) -> None:
        self._closed.set()

    def _poll(self) -> None:
        while not self._closed.wait(_POLL_SECONDS):
            try:
                if not self.store.check([_FAILED_KEY]):
                    continue
                value = self.store.get(_FAILED_KEY).decode("utf-8", "replace")
            except (RuntimeError, OSError):
                return
            rank, code, line = _parse_failure(value, -1, 1, value)
            if rank == self.group.rank or self._closed.is_set():
                return
            self.announce(rank, line)
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(code)   # the main thread may be blocked in a collective that never returns


def _parse_failure(value: str, rank: int, code: int, line: str) -> tuple[int, int, str]:
    r, _, rest = value.partition("\t")
    c, _, text = rest.partition("\t")
    try:
        return int(r), int(c), text
    except ValueError:
        return rank, code, line


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
