"""Device and precision helpers: one place decides CPU/CUDA and autocast."""
from __future__ import annotations

import contextlib

import torch

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, dtype: str = "float32"):
    """Mixed precision only on CUDA and only when asked: CPU stays float32 so the
    batched and reference paths give identical numbers."""
    if device.type != "cuda" or dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=_DTYPES[dtype])
