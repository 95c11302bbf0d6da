"""Device and precision helpers: one place decides CPU/CUDA and autocast."""
from __future__ import annotations

import contextlib

import torch

from ml.errors import ConfigError

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device: {name!r} is not a device; use \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"") from None
    if device.type not in ("cpu", "cuda"):  # 'mps', 'xpu': a RuntimeError traceback at the first model load
        raise ConfigError(f"device: {name!r} is not supported here; use \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"")
    # Said here, by name: the first model load failed with "AssertionError: Torch not compiled with CUDA".
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r}, but this machine's torch cannot use CUDA (a CPU build or no GPU); "
                          "use \"auto\" or \"cpu\"")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device: {name!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def autocast(device: torch.device, dtype: str = "float32"):
    """Mixed precision only on CUDA and only when asked: CPU stays float32 so the
    batched and reference paths give identical numbers."""
    if device.type != "cuda" or dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=_DTYPES[dtype])
