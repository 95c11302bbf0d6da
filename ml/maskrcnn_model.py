"""Mask R-CNN models (torchvision): build, save and load, shared by the `maskrcnn` engine and
training (issue 15). Django-free.

A checkpoint is a folder with ``maskrcnn.json`` (the spec below) and ``model.pt`` (state_dict):

    {"arch": "resnet50_fpn" | "tiny", "class_names": ["hammer", ...],   # index 0 = background
     "min_size": 800, "max_size": 1333, "weights": null | "torchvision-coco"}

``class_names`` excludes the background; the model has ``len(class_names) + 1`` outputs.
``"tiny"`` is a small random-weight backbone for tests and offline trials (meaningless output).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from ml import _torchvision_compat

SPEC_FILE = "maskrcnn.json"
WEIGHTS_FILE = "model.pt"
ARCHS = ("resnet50_fpn", "tiny")


def _tiny_backbone() -> torch.nn.Module:
    layers = []
    ch = 3
    for out in (8, 16, 32):
        layers += [torch.nn.Conv2d(ch, out, 3, stride=2, padding=1), torch.nn.ReLU(inplace=True)]
        ch = out
    body = torch.nn.Sequential(*layers)
    body.out_channels = ch  # MaskRCNN reads this
    return body


def _eager_roi_align() -> None:
    """Without torchvision's compiled ops, roi_align falls back to a pure-torch version wrapped in
    torchvision's ``lazy_compile``: torch.compile on first use (45-230 s of inductor per process
    on CPU, again on new shapes). Run the wrapped function eagerly instead. The module must come
    from sys.modules: ``import torchvision.ops.roi_align as m`` gives the *function* (the package
    re-exports it under the same name), which is why _torchvision_compat's own patch misses."""
    mod = sys.modules.get("torchvision.ops.roi_align")
    eager = getattr(getattr(mod, "_roi_align", None), "__wrapped__", None)
    if eager is not None:
        mod._roi_align = _bounded_sampling(eager)


def _bounded_sampling(eager):
    """The pure-torch roi_align with adaptive sampling (``sampling_ratio <= 0``) samples a grid as
    large as the whole input for every RoI (it cannot size it per RoI): Mask R-CNN's mask targets,
    cut from full-size ground-truth masks that way, asked 53 GB for one 1600x1200 photo and got the
    worker killed. A fixed 2x2 grid per bin, as torchvision's box and mask heads use, is bounded."""

    # No functools.wraps: a __wrapped__ here would read as torchvision's lazy-compile wrapper again.
    def roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
        if sampling_ratio <= 0:
            sampling_ratio = 2
        return eager(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)

    return roi_align


def build_model(spec: dict) -> torch.nn.Module:
    """A Mask R-CNN with ``len(spec['class_names']) + 1`` classes and random heads."""
    _torchvision_compat.install()
    import torchvision.ops  # noqa: F401  (loads torchvision.ops.roi_align into sys.modules)

    _eager_roi_align()
    from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    arch = spec.get("arch", "resnet50_fpn")
    num_classes = len(spec.get("class_names") or []) + 1
    min_size, max_size = int(spec.get("min_size", 800)), int(spec.get("max_size", 1333))
    if arch == "resnet50_fpn":
        return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes,
                                     min_size=min_size, max_size=max_size)
    if arch == "tiny":
        anchors = AnchorGenerator(sizes=((16, 32, 64, 128),), aspect_ratios=((0.5, 1.0, 2.0),))
        return MaskRCNN(
            _tiny_backbone(), num_classes=num_classes, min_size=min_size, max_size=max_size,
            rpn_anchor_generator=anchors,
            # fewer proposals than resnet50's 1000: runtime settings only (no weights change shape)
            rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=100,
            box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2), mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
        )
    raise ValueError(f"maskrcnn arch {arch!r} must be one of {ARCHS}")


def save_checkpoint(model: torch.nn.Module, spec: dict, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SPEC_FILE).write_text(json.dumps(spec, indent=2, ensure_ascii=False), encoding="utf-8")
    torch.save(model.state_dict(), out / WEIGHTS_FILE)
    return out


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """(model in eval mode on ``device``, spec) from a checkpoint folder."""
    root = Path(path)
    spec_file = root / SPEC_FILE
    if not spec_file.is_file():
        raise FileNotFoundError(f"{str(root)!r} is not a Mask R-CNN checkpoint (no {SPEC_FILE})")
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    model = build_model(spec)
    state = torch.load(root / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval(), spec
