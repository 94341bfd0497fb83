"""Model bookkeeping both model kinds share: parameter count, the tensors a checkpoint stores, loading them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode


class Weights:
    """Mixed into an ``nn.Module`` whose ``cfg.tie`` may share ``head.weight`` with ``embed.weight``."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def weights(self) -> dict[str, torch.Tensor]:
        """The state dict to save: a tied head is stored once, under the embedding."""
        sd = {k: v.detach() for k, v in self.state_dict().items()}
        if self.cfg.tie:
            sd.pop("head.weight", None)
        return sd

    def load_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load what ``weights`` saved; every tensor must fit (strict)."""
        tensors = dict(tensors)
        if self.cfg.tie and "head.weight" not in tensors and "embed.weight" in tensors:
            tensors["head.weight"] = tensors["embed.weight"]
        self.load_state_dict(tensors, strict=True)


class _SkipMetaNormal(TorchFunctionMode):
    """Skips ``normal_`` on meta tensors: torch runs it in Python code that imports torch._dynamo, seconds
    at start-up for values a shape check never reads."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.normal_, torch.nn.init.normal_):
            tensor = args[0] if args else kwargs.get("tensor")
            if getattr(tensor, "is_meta", False):
                return tensor
        return func(*args, **kwargs)


@contextmanager
def shapes_only() -> Iterator[None]:
    """Modules built inside hold meta tensors: their shapes and parameter counts, no memory however large,
    and no torch._dynamo import for their initial values."""
    with torch.device("meta"), _SkipMetaNormal():
        yield
