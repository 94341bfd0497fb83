"""Training with DistributedDataParallel: the real ``rnnchat`` started by torchrun as 2 CPU processes (gloo)."""

import json
import os
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch.distributed as dist
from conftest import FAST, json_events
from safetensors.numpy import load_file

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="this PyTorch has no gloo backend")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, timeout=240, check=True, **env):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "rnnchat", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100", **env}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
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
    assert sorted(p.name for p in run.iterdir() if not p.name.endswith(".old")) == [
        "best", "last", "metrics.jsonl", "run.json", "tokenizer.json"]
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


def test_each_process_keeps_its_own_carried_state(play_file, isolated_paths):
    """Issue 11, item 5: with --carry-state every rank's recurrent state (and RNG) is saved, not rank 0's for all."""
    torchrun("train", str(play_file), *FAST, "--max-steps", "20", "--eval-every", "20", "--name", "lanes",
             "--carry-state", "--json")
    run = isolated_paths / "checkpoints" / "lanes"
    tensors = load_file(str(run / "last" / "optimizer.safetensors"))
    mine = sorted(k for k in tensors if k.startswith("carry.") and "rank" not in k)
    theirs = sorted(k for k in tensors if k.startswith("carry.rank1."))
    assert mine and len(theirs) == len(mine)
    assert not np.array_equal(tensors[mine[0]], tensors[theirs[0]]), "rank 1 reads other lanes than rank 0"
    assert len(json.loads((run / "last" / "trainer.json").read_text())["ranks"]) == 2

    # each process takes its own share back on resume
    import torch

    from rnnchat.runs.checkpoints import load_checkpoint
    from rnnchat.runs.state import restore
    loaded = load_checkpoint(run, "last", with_optimizer=True)
    model = SimpleNamespace(load_weights=lambda w: None)
    opt = SimpleNamespace(load_state_dict=lambda s: None)
    for rank, key in ((0, mine[0]), (1, theirs[0])):
        _, carried = restore(loaded, model, opt, torch.device("cpu"), "lanes", rank)
        first = carried[0] if isinstance(carried, tuple) else carried
        assert np.array_equal(first.numpy(), tensors[key])


def test_failure_on_another_process_is_reported_and_stops_every_process(play_file):
    """Issue 11, item 13: rank 1 fails mid-training; rank 0 prints its one line and both stop at once."""
    start = time.monotonic()
    proc = torchrun("train", str(play_file), *FAST, "--max-steps", "100000", "--eval-every", "100000",
                    "--name", "broken", check=False, timeout=120, RNNCHAT_TEST_FAIL="1:8")
    took = time.monotonic() - start
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("rnnchat:")]
    assert ours == ["rnnchat: error: process 1 of 2 failed: injected failure at agreement 8 (RNNCHAT_TEST_FAIL)"], \
        proc.stderr[-3000:]
    assert "internal error" not in proc.stderr      # (torchrun adds its own ChildFailedError report)
    assert took < 60, took     # startup included; waiting for a collective's timeout would take 30 minutes


def test_resume_under_torchrun_picks_the_backend_of_the_run_s_device(play_file, monkeypatch):
    """Issue 11, item 13: the backend follows the run's saved device, read before the process group starts."""
    from rnnchat.cli import train as cli_train
    from rnnchat.config import TrainConfig
    from rnnchat.lm.config import ModelConfig
    from rnnchat.train import distributed
    from rnnchat.train.loop import Trainer
    list(Trainer(str(play_file), ModelConfig(layers=1, hidden=16, embed=8),
                 TrainConfig(max_steps=2, eval_every=2, seq_len=16, batch_size=4, sample_length=0,
                             device="cpu", precision="fp32"), name="on-cpu").run())
    asked = []

    def fake_init(device_name):
        asked.append(device_name)
        raise SystemExit(0)

    monkeypatch.setattr(distributed, "launched", lambda: True)
    monkeypatch.setattr(distributed, "init", fake_init)
    monkeypatch.setattr(distributed.torch.cuda, "is_available", lambda: True)   # as on a GPU machine
    args = SimpleNamespace(resume="on-cpu", device=None)
    try:
        cli_train.cmd_train(args)
    except SystemExit:
        pass
    assert asked == ["cpu"]
    assert distributed.backend("cpu") == "gloo" and distributed.backend("auto") == "nccl"
