"""The schedule of a run: its limits (steps, epochs, time) and the learning rate, linear warm-up then cosine
decay over steps or training time."""

from __future__ import annotations

import math
from dataclasses import dataclass


def learning_rate(peak: float, step: int, warmup: int, progress: float, min_ratio: float) -> float:
    """``progress`` in [0, 1] is how far through the run we are (by steps or by time budget);
    with no known end (progress < 0) the rate stays at its peak after warm-up."""
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    if progress < 0:
        return peak
    p = min(1.0, max(0.0, progress))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


@dataclass(frozen=True)
class Limits:
    max_steps: int                # 0: none (epochs are turned into steps)
    minutes: float                # 0: none
    by_epochs: bool = False       # max_steps came from --epochs alone

    def progress(self, step: int, elapsed: float) -> float:
        """How far through the run, by steps or time budget whichever is further; -1 with no limit."""
        parts = []
        if self.max_steps:
            parts.append(step / self.max_steps)
        if self.minutes:
            parts.append(elapsed / (self.minutes * 60))
        return max(parts) if parts else -1.0

    def eta(self, step: int, elapsed: float, seconds_per_step: float) -> float | None:
        etas = []
        if self.max_steps and seconds_per_step > 0:
            etas.append((self.max_steps - step) * seconds_per_step)
        if self.minutes:
            etas.append(max(0.0, self.minutes * 60 - elapsed))
        return min(etas) if etas else None

    def reached(self, step: int, elapsed: float) -> str:
        """The reason the run is over ("epochs", "max_steps", "time"), or ""."""
        if self.max_steps and step >= self.max_steps:
            return "epochs" if self.by_epochs else "max_steps"
        if self.minutes and elapsed >= self.minutes * 60:
            return "time"
        return ""
