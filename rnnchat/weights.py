"""Model bookkeeping both model kinds share: parameter count, the tensors a checkpoint stores, loading them."""

from __future__ import annotations

import torch


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
