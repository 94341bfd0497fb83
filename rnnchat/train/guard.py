"""The guard against NaN and exploding steps: vet a step's figures before they are applied, keep a
known-good copy of the model, roll back to it, and give up after too many bad steps."""

from __future__ import annotations

import copy
import math

_MAX_FAILURES = 5             # bad steps (NaN, inf, explosion) within _FAILURE_WINDOW before giving up
_FAILURE_WINDOW = 500


class Guard:
    def __init__(self, spike_check: bool, warmup_steps: int):
        self.spike_check = spike_check      # random LM windows have similar losses; chat batches do not
        self.warmup_steps = warmup_steps
        self.good: dict | None = None       # the last known-good snapshot
        self.failures: list[int] = []       # the steps of recent bad steps

    def badness(self, loss: float, norm: float, ema: float | None, step: int) -> str:
        """Why this loss or gradient norm must not be applied, or "" when it is fine."""
        if not math.isfinite(loss):
            return "non-finite loss"
        if not math.isfinite(norm):
            return "non-finite gradient"
        if self.spike_check and ema is not None and step > self.warmup_steps and loss > max(2 * ema, ema + 1.0):
            return f"loss spike to {loss:.2f}"
        return ""

    def keep(self, model, optimizer, step: int) -> None:
        self.good = {"model": copy.deepcopy(model.state_dict()), "opt": copy.deepcopy(optimizer.state_dict()),
                     "step": step}

    def roll_back(self, model, optimizer, step: int) -> tuple[int, bool]:
        """Back to the known-good state (the steps since are trained again); returns (its step, whether
        there were too many bad steps lately to go on)."""
        self.failures = [s for s in self.failures if step - s < _FAILURE_WINDOW] + [step]
        model.load_state_dict(self.good["model"])
        optimizer.load_state_dict(copy.deepcopy(self.good["opt"]))
        return self.good["step"], len(self.failures) >= _MAX_FAILURES

    def given_up(self, what: str) -> str:
        return (f"training diverged ({what}) {len(self.failures)} times in {_FAILURE_WINDOW} steps; "
                "try a lower --lr or --clip")
