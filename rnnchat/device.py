"""Choosing the device and the numeric precision for training. The CPU's flags and caches read without torch;
the functions that ask torch import it when called, so the app can name the machine before torch loads."""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path
from typing import TYPE_CHECKING

from rnnchat.errors import ConfigError

if TYPE_CHECKING:
    import torch


def pick_device(name: str) -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("cuda was asked for, but PyTorch sees no CUDA GPU here", "device")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("mps was asked for, but this PyTorch has no Apple MPS support here", "device")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags where the OS lists them (Linux), else none."""
    if platform.system() != "Linux":
        return frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 arithmetic (AVX-512 BF16 or AMX), where autocast pays off."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_amx() -> bool:
    """True on CPUs with AMX tiles, where oneDNN's bf16 kernels (the fused LSTM among them) use them."""
    return "amx_bf16" in cpu_flags()


def cpu_features() -> str:
    """The flags that decide CPU training speed here, in words for a benchmark's machine line."""
    flags = cpu_flags()
    named = [name for flag, name in (("avx512f", "AVX-512"), ("avx512_bf16", "avx512_bf16"), ("amx_bf16", "AMX"))
             if flag in flags]
    return " + ".join(named) if named else "no AVX-512, bf16 or AMX"


_L2_FALLBACK = 1 << 20


@functools.lru_cache(maxsize=1)
def l2_cache_bytes() -> int:
    """One core's L2 cache in bytes where the OS tells it (Linux sysfs), else 1 MiB."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            if (index / "level").read_text().strip() != "2" or (index / "type").read_text().strip() == "Instruction":
                continue
            size = (index / "size").read_text().strip()
            if size[-1:].upper() in units and size[:-1].isdigit():
                return int(size[:-1]) * units[size[-1].upper()]
            if size.isdigit():
                return int(size)
    except OSError:
        pass
    return _L2_FALLBACK


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_type(name: str) -> str:
    """The type of device ``name`` picks ("cpu", "cuda", "mps"): "cpu" is known without importing torch."""
    return "cpu" if name == "cpu" else pick_device(name).type


def pick_precision(name: str, device: torch.device | str) -> str:
    device = _typed(device)
    if name == "auto":
        if device.type == "cuda":
            import torch

            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if device.type == "cpu":
            return "bf16" if cpu_has_native_bf16() else "fp32"
        return "fp32"
    if name == "bf16" and device.type == "mps":
        raise ConfigError("bf16 is not supported on MPS; use fp32", "precision")
    return name


# The classes of machine the auto preset has rows for (runs/auto.py): what decides which cell and size
# learn most per minute is whether the matmuls run in bf16, whether AMX tiles run them (oneDNN's fused
# LSTM runs about twice as fast with them) and whether a GPU runs them.
DEVICE_CLASSES = ("cpu-amx", "cpu-bf16", "cpu-fp32", "cuda")


def device_class(device: torch.device | str, precision: str) -> str:
    """The auto preset's class of a device (or a device type) at a precision ("auto", "fp32" or "bf16");
    an Apple GPU counts as "cpu-fp32", the nearest class with measured rows."""
    device = _typed(device)
    if device.type == "cuda":
        return "cuda"
    if device.type == "cpu" and cpu_has_native_bf16() and pick_precision(precision, device) == "bf16":
        return "cpu-amx" if cpu_has_amx() else "cpu-bf16"
    return "cpu-fp32"


class _Type:
    """A device type without torch.device: enough for the precision and class rules above."""

    def __init__(self, type_: str) -> None:
        self.type = type_


def _typed(device):
    return _Type(device) if isinstance(device, str) else device


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        import torch


        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n != 1 else ''})"
    return device.type
