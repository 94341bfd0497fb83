"""Learning-rate schedule: linear warm-up, then cosine decay over steps or training time."""

from __future__ import annotations

import math


def learning_rate(peak: float, step: int, warmup: int, progress: float, min_ratio: float) -> float:
    """``progress`` in [0, 1] is how far through the run we are (by steps or by time budget);
    with no known end (progress < 0) the rate stays at its peak after warm-up."""
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    if progress < 0:
        return peak
    p = min(1.0, max(0.0, progress))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))
