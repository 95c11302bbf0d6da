"""A trained projection head on top of a timm (DINOv3) backbone.

Checkpoint (torch.save dict) holds everything needed to rebuild it:
``backbone`` (timm id), ``backbone_kwargs``, ``global_pool``, ``input_size``,
``head_dims`` ([in, hidden..., out]), ``head_state_dict`` and optionally
``backbone_state_dict`` (a fine-tuned backbone; else timm weights per config).
"""
from __future__ import annotations

import json
import os

import torch
from torch import nn

from ml.config import EmbedderConfig
from ml.device import autocast
from ml.embedders.base import Embedder, file_fingerprint
from ml.embedders.timm_dinov3 import CropTensorizer, create_timm_backbone, mean_std
from ml.errors import ModelLoadError, missing_path


def make_head(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class ProjectionHeadEmbedder(Embedder):
    def __init__(self, backbone: nn.Module, head: nn.Module, cfg: EmbedderConfig, input_size: int,
                 device: torch.device, dtype: str = "float32"):
        self.backbone = backbone.to(device).eval()
        self.head = head.to(device).eval()
        self.cfg = cfg
        self.device = device
        self.dtype = dtype
        self.batch_size = cfg.batch_size
        self.dim = int(head[-1].out_features)
        mean, std = mean_std(backbone)
        self.tensorize = CropTensorizer(input_size, mean, std, cfg.background, device)
        self.version = "head:" + json.dumps(
            [file_fingerprint(cfg.model), file_fingerprint(cfg.checkpoint), input_size, cfg.crop_mode,
             cfg.background, cfg.crop_padding], sort_keys=True)

    @classmethod
    def load(cls, cfg: EmbedderConfig, device: torch.device, dtype: str = "float32") -> "ProjectionHeadEmbedder":
        if not os.path.isfile(cfg.model):
            raise ModelLoadError("embedder.model", cfg.model, f"{missing_path(cfg.model)} (projection head checkpoint .pt)")
        try:
            ck = torch.load(cfg.model, map_location="cpu", weights_only=True)
            dims = [int(d) for d in ck["head_dims"]]
            name = ck["backbone"]
        except Exception as e:
            raise ModelLoadError("embedder.model", cfg.model, f"is not a projection-head checkpoint ({e})") from e
        has_bb = "backbone_state_dict" in ck
        backbone = create_timm_backbone(name, None if has_bb else cfg.checkpoint,
                                        cfg.pretrained and not has_bb, ck.get("backbone_kwargs", {}),
                                        ck.get("global_pool", cfg.global_pool))
        try:
            if has_bb:
                backbone.load_state_dict(ck["backbone_state_dict"])
            head = make_head(dims)
            head.load_state_dict(ck["head_state_dict"])
        except Exception as e:
            raise ModelLoadError("embedder.model", cfg.model, f"weights do not fit ({e})") from e
        if int(backbone.num_features) != dims[0]:
            raise ModelLoadError("embedder.model", cfg.model,
                                 f"head expects {dims[0]}-d input, backbone {name!r} gives {backbone.num_features}")
        return cls(backbone, head, cfg, int(ck.get("input_size", cfg.input_size)), device, dtype)

    @torch.inference_mode()
    def _embed_batch(self, crops):
        x = self.tensorize(crops)
        with autocast(self.device, self.dtype):
            f = self.head(self.backbone(x))
        return f.float().cpu().numpy(), None
