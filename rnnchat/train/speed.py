"""Measuring how fast a model configuration trains on this machine, for the app's preset estimates.

A few real optimizer steps on random tokens give tokens per second; results are cached per machine,
torch version and configuration, so the estimate costs a second once and nothing afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import time

import torch
import torch.nn.functional as F

from rnnchat.config import TrainConfig
from rnnchat.device import autocast, cpu_model, pick_device, pick_precision
from rnnchat.lm.config import ModelConfig
from rnnchat.lm.model import RNNLM
from rnnchat.paths import cache_dir, make_private_dir
from rnnchat.train.optim import AdamW


def _machine() -> str:
    return f"{cpu_model()}|{torch.get_num_threads()}t|torch {torch.__version__}"


def measure_tokens_per_s(model_cfg: ModelConfig, train_cfg: TrainConfig, seconds: float = 1.0) -> float:
    """Training tokens per second for this configuration (uncached; takes a second or two)."""
    device = pick_device(train_cfg.device)
    precision = pick_precision(train_cfg.precision, device)
    gen = torch.Generator().manual_seed(0)
    model = RNNLM(model_cfg).to(device)
    opt = AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, model_cfg.vocab_size, (train_cfg.batch_size, train_cfg.seq_len + 1), generator=gen).to(device)

    def one_step() -> None:
        with autocast(device, precision):
            logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, model_cfg.vocab_size), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up: allocations, kernel selection, autocast caches
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds or steps < 3:
        one_step()
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * train_cfg.batch_size * train_cfg.seq_len / (time.perf_counter() - start)


def estimate_tokens_per_s(model_cfg: ModelConfig, train_cfg: TrainConfig) -> float:
    """Cached ``measure_tokens_per_s``."""
    key = json.dumps([_machine(), dataclasses.asdict(model_cfg), train_cfg.batch_size, train_cfg.seq_len,
                      train_cfg.device, train_cfg.precision], sort_keys=True)
    path = cache_dir() / "speed.json"
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return float(cache[key])
    value = measure_tokens_per_s(model_cfg, train_cfg)
    cache[key] = value
    try:
        make_private_dir(path.parent)
        tmp = path.with_name(".speed.json.tmp")
        tmp.write_text(json.dumps(cache), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
    return value
