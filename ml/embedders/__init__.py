"""Crop embedders: timm DINOv3, a projection head on DINOv3, or an ONNX model."""
from __future__ import annotations

import torch

from ml.config import EmbedderConfig
from ml.embedders.base import Embedder, EmbedOutput, l2_normalize
from ml.errors import ModelLoadError

__all__ = ["Embedder", "EmbedOutput", "l2_normalize", "load_embedder"]


def load_embedder(cfg: EmbedderConfig, device: torch.device, dtype: str = "float32") -> Embedder:
    if cfg.kind == "timm":
        from ml.embedders.timm_dinov3 import TimmEmbedder
        return TimmEmbedder.load(cfg, device, dtype)
    if cfg.kind == "projection_head":
        from ml.embedders.projection_head import ProjectionHeadEmbedder
        return ProjectionHeadEmbedder.load(cfg, device, dtype)
    if cfg.kind == "onnx":
        from ml.embedders.onnx_model import OnnxEmbedder
        return OnnxEmbedder.load(cfg, device, dtype)
    raise ModelLoadError("embedder.kind", cfg.kind, "is unknown", hint="timm, projection_head or onnx")
