"""One OS thread for all of the app's torch work: training, speed probes, loading and sampling; and
``RunCache``, what a pane keeps loaded there between its jobs.

Torch's OpenMP pool belongs to the thread that first uses it. While a second live thread owns a pool,
libgomp stops spin-waiting at its barriers and every parallel region pays a futex wake-up: measured
here, training the 2x256 LSTM on a Textual worker thread fell from 49k to 27k chars/s as soon as
another pool thread had merely loaded a model (GOMP_SPINCOUNT and OMP_WAIT_POLICY did not help).
So workers hand torch jobs to this one thread and wait; jobs run one after another.

The app draws its first screen before torch is imported (2 s of a 2.6 s start on a 2-core CPU): its first
job, ``load``, imports torch and the engine's modules after the first paint, so every later job, queued
behind it, finds them loaded, and no handler imports them on the UI thread.
"""

from __future__ import annotations

import importlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Generic, TypeVar

from rnnchat.runs.rundir import checkpoint_stamp, resolve_run

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_loaded = threading.Event()
_open = threading.Event()     # clear while the app draws its first screen: jobs wait, none imports torch
_open.set()


def submit(fn: Callable[..., T], *args) -> Future:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnchat-torch")
        return _executor.submit(_when_open, fn, *args)


def _when_open(fn: Callable[..., T], *args) -> T:
    _open.wait()
    return fn(*args)


def hold() -> None:
    """Jobs wait (queued in order) until ``load`` or ``release``: a pane's job submitted while the app composes
    would otherwise import torch on this thread, holding the GIL, before the first screen is drawn."""
    _open.clear()


def release() -> None:
    _open.set()


def run(fn: Callable[..., T], *args) -> T:
    """Run ``fn(*args)`` on the torch thread and wait for its result (call from a worker thread)."""
    return submit(fn, *args).result()


def load(modules: tuple[str, ...]) -> Future:
    """Import ``modules`` (torch's and the engine's) on the torch thread; the future's result is the
    device training takes by default, in words."""
    def job() -> str:
        for name in modules:
            importlib.import_module(name)
        from rnnchat.device import describe, pick_device

        _loaded.set()
        return describe(pick_device("auto"))

    future = submit(job)
    release()
    return future


def loaded() -> bool:
    """True once ``load`` has imported torch: the UI may then call what needs it without waiting."""
    return _loaded.is_set()


class RunCache(Generic[T]):
    """What was loaded from a run, kept until a checkpoint of the run is saved (torch thread only)."""

    def __init__(self) -> None:
        self.value: T | None = None
        self._key: tuple | None = None

    def get(self, run: str, load: Callable[[], T], *extra) -> tuple[T, T | None]:
        """The value for ``run`` (and ``extra``), loaded again when the run changed on disk; and the value
        it replaced when that came from the same run directory."""
        run_dir = resolve_run(run)
        key = (str(run_dir.resolve()), *extra, checkpoint_stamp(run_dir))
        old, old_key = self.value, self._key
        if old is not None and old_key == key:
            return old, None
        self.value, self._key = load(), key
        return self.value, old if old_key is not None and old_key[0] == key[0] else None
