"""One OS thread for all of the app's torch work: training, speed probes, loading and sampling.

Torch's OpenMP pool belongs to the thread that first uses it. While a second live thread owns a pool,
libgomp stops spin-waiting at its barriers and every parallel region pays a futex wake-up: measured
here, training the 2x256 LSTM on a Textual worker thread fell from 49k to 27k chars/s as soon as
another pool thread had merely loaded a model (GOMP_SPINCOUNT and OMP_WAIT_POLICY did not help).
So workers hand torch jobs to this one thread and wait; jobs run one after another.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def submit(fn: Callable[..., T], *args) -> Future:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnchat-torch")
        return _executor.submit(fn, *args)


def run(fn: Callable[..., T], *args) -> T:
    """Run ``fn(*args)`` on the torch thread and wait for its result (call from a worker thread)."""
    return submit(fn, *args).result()
