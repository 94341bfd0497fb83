"""Training with DistributedDataParallel: the real ``rnnchat`` started by torchrun as 2 CPU processes (gloo)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch.distributed as dist
from safetensors.numpy import load_file
from test_cli import FAST, json_events

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="this PyTorch has no gloo backend")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "rnnchat", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_processes_train_one_run_and_resume(play_file, isolated_paths):
    proc = torchrun("train", str(play_file), *FAST, "--max-steps", "60", "--eval-every", "20", "--name", "ddp",
                    "--json")
    events = json_events(proc.stdout)
    # rank 0 alone prints: one started, one done
    assert [e["event"] for e in events].count("started") == 1 and events[-1]["event"] == "done"
    assert events[0]["processes"] == 2 and events[-1]["reason"] == "max_steps" and events[-1]["step"] == 60
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [20, 40, 60]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.2
    steps = [e for e in events if e["event"] == "step"]
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.5

    # One run directory, written by rank 0 alone: one checkpoint of each kind, one line per eval.
    assert sorted(p.name for p in (isolated_paths / "checkpoints").iterdir()) == ["ddp"]
    run = isolated_paths / "checkpoints" / "ddp"
    assert sorted(p.name for p in run.iterdir()) == ["best", "last", "metrics.jsonl", "run.json", "tokenizer.json"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    assert json.loads((run / "last" / "trainer.json").read_text())["step"] == 60
    assert json.loads((run / "run.json").read_text())["summary"]["step"] == 60
    weights = load_file(str(run / "last" / "model.safetensors"))
    assert weights and all(np.isfinite(w).all() for w in weights.values())

    # resume under torchrun continues from step 60, the same single run
    proc = torchrun("train", "--resume", "ddp", "--max-steps", "90", "--json")
    events = json_events(proc.stdout)
    assert events[0]["event"] == "started" and events[0]["step"] == 60 and events[0]["resumed"]
    assert events[-1]["reason"] == "max_steps" and events[-1]["step"] == 90
    assert json.loads((run / "run.json").read_text())["summary"]["step"] == 90
    assert sorted(p.name for p in (isolated_paths / "checkpoints").iterdir()) == ["ddp"]
