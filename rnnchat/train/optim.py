"""The optimizer: torch's AdamW, the same numbers, without importing torch._dynamo.

torch wraps the optimizer's methods so that a compiled caller does not trace into them, and that wrapper
imports torch._dynamo at the first call: ~2 s of every train start on 2 CPU cores, for a loop that never
compiles (benchmarks/journal/2026-12-04-startup.md). This class calls the methods underneath the wrappers.
"""

from __future__ import annotations

import inspect

import torch

_BASE = torch.optim.AdamW
# unwrap follows functools' __wrapped__ through torch's dynamo and grad-mode wrappers to the methods themselves.
_ADD = inspect.unwrap(_BASE.add_param_group)
_ZERO = inspect.unwrap(_BASE.zero_grad)
_STATE = inspect.unwrap(_BASE.state_dict)
_LOAD = inspect.unwrap(_BASE.load_state_dict)
_STEP = inspect.unwrap(_BASE.step)


class AdamW(torch.optim.AdamW):
    """torch.optim.AdamW whose step, zero_grad, state_dict, load_state_dict and add_param_group do not
    import torch._dynamo (tests/train/test_optim.py: the same parameters and state, step for step)."""

    def add_param_group(self, param_group: dict) -> None:
        _ADD(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _ZERO(self, set_to_none)

    def state_dict(self) -> dict:
        return _STATE(self)

    def load_state_dict(self, state_dict: dict) -> None:
        _LOAD(self, state_dict)

    def step(self, closure=None):
        with torch.no_grad():               # what torch's wrapper does for a non-differentiable optimizer
            return _STEP(self, closure)
