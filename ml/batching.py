"""Batch sizes per stage and device.

A stage's ``batch_size`` in the config is a positive int or ``"auto"`` (the default). ``auto``
takes the device's row of ``DEVICE_DEFAULTS``; ``python -m ml bench --calibrate`` measures
candidate sizes on the device at hand and writes ints into the config instead.

Why the CPU row is 1 for the image stages: on CPU one image already keeps every core busy, so a
4-image GroundingDINO / SAM-encoder forward is no faster per image and needs 4x the activations;
measured on the 2-core dev box, batching SAM's encoder made the whole batched path slower than
one image at a time (0.92x, docs/ml.md). The embedder's crops are small, so a few per forward
still pays a little on CPU. On a GPU batching removes per-call launch overhead.
"""
from __future__ import annotations

from dataclasses import replace

AUTO = "auto"
STAGES = ("detector", "segmenter", "embedder")
DEVICE_DEFAULTS: dict[str, dict[str, int]] = {
    "cpu": {"detector": 1, "segmenter": 1, "embedder": 8},
    "cuda": {"detector": 4, "segmenter": 4, "embedder": 32},
}


def valid(value) -> bool:
    return value == AUTO or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def resolve(value, stage: str, device) -> int:
    """An int batch size for ``stage`` on ``device`` (a torch.device, a str, or None = cpu)."""
    if value != AUTO:
        return max(1, int(value))
    kind = getattr(device, "type", None) or (str(device).split(":")[0] if device else "cpu")
    return DEVICE_DEFAULTS.get(kind, DEVICE_DEFAULTS["cpu"])[stage]


def resolved_config(cfg, device):
    """A copy of a PipelineConfig with every stage's batch size an int for ``device``."""
    return replace(cfg, **{s: replace(getattr(cfg, s), batch_size=resolve(getattr(cfg, s).batch_size, s, device))
                           for s in STAGES})
