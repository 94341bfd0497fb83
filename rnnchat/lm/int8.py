"""Int8 copies of the stepper's matrices, for models whose float32 weights do not fit the cores' L2 caches.

At batch 1 a step reads every weight once, so a model wider than the caches waits on memory: int8 weights
are a quarter of the bytes and stay in L2 between steps. The product runs in fbgemm (PyTorch's x86
quantized engine): weights int8 with one scale per output column, the hidden vector quantized per call,
int32 sums, the bias added in float32. benchmarks/RESULTS.md has its speed and what it costs in loss.
"""

from __future__ import annotations

import functools
import warnings

import torch

from rnnchat.device import cpu_flags

# fbgemm's kernels without VNNI add pairs of u8*s8 products in int16, which can saturate at full 8-bit
# range, so there the hidden vector gets 7 bits; with VNNI the sums go straight to int32.
_VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}
# A probe product farther than this (relative) from float32 means the engine is not doing what we expect.
_PROBE_TOLERANCE = 0.05


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """True where PyTorch's quantized engine is x86/fbgemm and a probe product comes out right."""
    engines = getattr(torch.backends.quantized, "supported_engines", ())
    if torch.backends.quantized.engine not in ("x86", "fbgemm") or not {"x86", "fbgemm"} & set(engines):
        return False
    try:
        g = torch.Generator().manual_seed(0)
        w = torch.randn(96, 64, generator=g) * 0.1
        b = torch.randn(96, generator=g) * 0.1
        h = torch.rand(1, 64, generator=g) * 2 - 1
        got = Int8Matrix(w, b).product(h)
    except (RuntimeError, AttributeError, NotImplementedError):
        return False
    want = h @ w.T + b
    return bool(torch.isfinite(got).all()) and float((got - want).norm() / want.norm()) < _PROBE_TOLERANCE


class Int8Matrix:
    """``h @ w.T + b`` for a (1, in) float32 ``h``, with ``w`` (out, in) held as int8 per output row."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor):
        w = w.detach().to("cpu", torch.float32).contiguous()
        b = b.detach().to("cpu", torch.float32).contiguous()
        scales = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # The eager quantization functions warn of their future removal; torch is pinned (constraints.txt).
            warnings.simplefilter("ignore")
            q = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(q, b)
        self._reduce_range = not (cpu_flags() & _VNNI_FLAGS)
        self.shape = tuple(w.shape)

    def product(self, h: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(h, self._packed, self._reduce_range)

    def into(self, h: torch.Tensor, out: torch.Tensor):
        """A zero-argument callable that writes the product of the current ``h`` into ``out`` (1, out)."""
        lin, packed, rr = torch.ops.quantized.linear_dynamic, self._packed, self._reduce_range

        def run() -> None:
            out.copy_(lin(h, packed, rr))

        return run
