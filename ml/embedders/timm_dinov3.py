"""DINOv3 (or any timm backbone) embedder on object crops."""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from ml.config import EmbedderConfig
from ml.device import autocast
from ml.embedders.base import Embedder, file_fingerprint
from ml.embedders.crops import square_resize
from ml.errors import ConfigError, ModelLoadError, missing_path
from ml.hub_guard import WEIGHTS_FILES, require_hub_files


def create_timm_backbone(name: str, checkpoint: str | None, pretrained: bool, model_kwargs: dict,
                         global_pool: str, setting: str = "embedder") -> torch.nn.Module:
    """timm model with its classifier removed. Weights: a local ``checkpoint`` file
    (through timm's own loader, so upstream checkpoints get converted), else the hub
    when ``pretrained``, else random (bench / tests)."""
    import timm

    base = name.split(".")[0]
    if not timm.is_model(base):
        raise ModelLoadError(f"{setting}.model", name, "is not a timm model id")
    kwargs = dict(model_kwargs or {}, num_classes=0, global_pool=global_pool)
    if checkpoint:
        if not os.path.isfile(checkpoint):
            raise ModelLoadError(f"{setting}.checkpoint", checkpoint, missing_path(checkpoint))
        try:
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=checkpoint), **kwargs)
        except Exception as e:
            raise ModelLoadError(f"{setting}.checkpoint", checkpoint,
                                 f"does not fit {setting}.model {name!r} ({type(e).__name__}: {e})") from e
    if pretrained:
        hub_id = getattr(timm.models.get_pretrained_cfg(name), "hf_hub_id", None)
        if hub_id:  # timm fetches the weights from there
            require_hub_files(f"{setting}.model", name, hub_id, WEIGHTS_FILES)
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except Exception as e:
            raise ModelLoadError(f"{setting}.model", name, f"weights cannot be loaded ({type(e).__name__}: {e})") from e
    return timm.create_model(name, pretrained=False, **kwargs)


def check_input_size(model: torch.nn.Module, size: int, setting: str = "embedder.input_size") -> None:
    """A ViT takes sides that are a multiple of its patch: 518 (DINOv2's patch 14) on DINOv3's
    patch 16 failed the first crop with an AssertionError traceback (black-box round 16)."""
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    patch = patch[0] if isinstance(patch, (tuple, list)) else patch
    if isinstance(patch, int) and patch > 1 and size % patch:
        lower, upper = size - size % patch, size - size % patch + patch
        raise ConfigError(f"{setting}: {size} is not a multiple of the model's patch size {patch}; use "
                          f"{lower or upper} or {upper}")


def mean_std(model: torch.nn.Module) -> tuple[list[float], list[float]]:
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    return list(cfg.get("mean", (0.485, 0.456, 0.406))), list(cfg.get("std", (0.229, 0.224, 0.225)))


class CropTensorizer:
    """Square-resize crops and normalise them into one NCHW float batch."""

    def __init__(self, size: int, mean, std, background, device: torch.device):
        self.size = size
        self.background = background
        self.device = device
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, crops: list[np.ndarray]) -> torch.Tensor:
        arr = np.stack([square_resize(c, self.size, self.background) for c in crops])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
        return ((x - self.mean) / self.std).to(self.device)


class TimmEmbedder(Embedder):
    def __init__(self, model: torch.nn.Module, cfg: EmbedderConfig, device: torch.device, dtype: str = "float32"):
        self.model = model.to(device).eval()
        self.cfg = cfg
        self.device = device
        self.dtype = dtype
        self.batch_size = cfg.batch_size
        self.dim = int(model.num_features)
        mean, std = mean_std(model)
        self.tensorize = CropTensorizer(cfg.input_size, mean, std, cfg.background, device)
        self.version = "timm:" + json.dumps(
            [cfg.model, file_fingerprint(cfg.checkpoint), cfg.pretrained, cfg.model_kwargs, cfg.global_pool,
             cfg.input_size, cfg.crop_mode, cfg.background, cfg.crop_padding], sort_keys=True)

    @classmethod
    def load(cls, cfg: EmbedderConfig, device: torch.device, dtype: str = "float32") -> "TimmEmbedder":
        model = create_timm_backbone(cfg.model, cfg.checkpoint, cfg.pretrained, cfg.model_kwargs, cfg.global_pool)
        check_input_size(model, cfg.input_size)
        return cls(model, cfg, device, dtype)

    @torch.inference_mode()
    def _embed_batch(self, crops):
        x = self.tensorize(crops)
        with autocast(self.device, self.dtype):
            f = self.model(x)
        return f.float().cpu().numpy(), None
