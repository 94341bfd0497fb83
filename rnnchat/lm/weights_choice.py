"""Which copy of a model's weights (float32 or int8) samples faster on this machine: measured at the first
load of a shape, then read from a small JSON file in the cache folder.

Whether int8 pays depends on the CPU's kernels (fbgemm without VNNI adds in int16 and is slower), its caches
and the thread count, so no rule from the sizes alone holds everywhere: the stepper times both copies for a
few hundred steps (well under a second) and keeps the faster. The file is keyed by the CPU's flags, torch's
version and thread count and the shape; a file that cannot be read or does not parse is measured again,
never trusted and never a crash.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from rnnchat.device import cpu_flags
from rnnchat.errors import RnnchatError
from rnnchat.files import read_bounded, write_json_atomic
from rnnchat.paths import cache_dir

FILE_NAME = "sampling-weights.json"
_KINDS = ("fp32-blas", "fp32-split", "int8")   # stepper.KINDS (which imports this module)
FORMAT = 2                        # 2: the kinds of stepper.KINDS (1 timed fp32 products in torch)
_MAX_BYTES = 256 << 10            # a few hundred entries; anything bigger is not ours
_MAX_ENTRIES = 256
# A round's steps aim at this many seconds, so a wide model is timed in about as long as a small one.
_ROUND_SECONDS = 0.02
_ROUNDS = 5
_MAX_STEPS = 60                   # per round: 5 rounds of 60 are the "few hundred steps"

_lock = threading.Lock()
_decided: dict[tuple[str, str], str] = {}   # (file, key) -> answer: a stepper built again reads no file


def cache_path() -> Path:
    return cache_dir() / FILE_NAME


def shape_key(cell: str, layers: int, hidden: int, vocab: int) -> str:
    """The key of a model shape on this machine: CPU flags (hashed), torch version and threads, the shape."""
    flags = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:16]
    return f"cpu-{flags}/torch-{torch.__version__}/threads-{torch.get_num_threads()}/{cell}-{layers}x{hidden}-v{vocab}"


def time_steps(steps: Mapping[str, Callable[[int], object]], ids: Sequence[int]) -> dict[str, float]:
    """Seconds per step of each copy: rounds taken in turn (so a busy moment hits both alike), best round."""
    ids = list(ids) or [0]
    per_round: dict[str, int] = {}
    for name, step in steps.items():
        t0 = time.perf_counter()
        step(ids[0])                                   # a first step, also a warm-up of its caches
        one = max(time.perf_counter() - t0, 1e-7)
        per_round[name] = max(5, min(_MAX_STEPS, int(_ROUND_SECONDS / one)))
    best = {name: float("inf") for name in steps}
    for r in range(_ROUNDS):
        for name, step in steps.items():
            n = per_round[name]
            t0 = time.perf_counter()
            for i in range(n):
                step(ids[(r * n + i) % len(ids)])
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    return best


def choose(key: str, names: Sequence[str], measure: Callable[[], Mapping[str, float]]) -> str:
    """The faster of ``names`` for ``key``: remembered, else ``measure()`` (seconds per step by name) is run
    once and its answer written to the cache file. A single name needs no measurement."""
    names = list(names)
    if len(names) == 1:
        return names[0]
    memo = (str(cache_path()), key)
    with _lock:
        known = _decided.get(memo) or _read().get(key, {}).get("weights")
        if known in names:
            _decided[memo] = known
            return known
        seconds = measure()
        best = min(names, key=lambda n: seconds.get(n, float("inf")))
        _decided[memo] = best
        _remember(key, best, seconds)
        return best


def forget() -> None:
    """Drop this process's remembered answers (the file stays); tests and benchmarks measure afresh."""
    with _lock:
        _decided.clear()


def _read() -> dict[str, dict]:
    """The file's entries that look like ours; anything unreadable or malformed counts as no entries."""
    try:
        data = json.loads(read_bounded(cache_path(), _MAX_BYTES))
    except (OSError, RnnchatError, ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("choices"), dict):
        return {}
    return {k: v for k, v in data["choices"].items()
            if isinstance(k, str) and isinstance(v, dict) and v.get("weights") in _KINDS}


def _remember(key: str, weights: str, seconds: Mapping[str, float]) -> None:
    entries = _read()
    entries.pop(key, None)
    entries[key] = {"weights": weights, "us_per_step": {k: round(v * 1e6, 2) for k, v in seconds.items()
                                                        if v != float("inf")},
                    "measured": time.strftime("%Y-%m-%d")}
    entries = dict(list(entries.items())[-_MAX_ENTRIES:])          # the newest, in order of writing
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_path(), {"format": FORMAT, "choices": entries})
    except (OSError, RnnchatError):
        pass                       # a read-only or full disk: measured again next time, sampling goes on
