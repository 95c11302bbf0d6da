"""maskrcnn: torchvision Mask R-CNN, closed set (the checkpoint's classes, no text prompts).
Checkpoints are ml/maskrcnn_model.py folders, the format training (issue 15) writes. The
model's class goes into Box.label / phrase; the gallery matcher still classifies the crop."""
from __future__ import annotations

import os

import numpy as np

from ml import batching
from ml.engines.base import Engine, EngineInfo, mask_result, timed
from ml.errors import ModelLoadError, missing_path
from ml.types import Box


class MaskRCNNEngine(Engine):
    info = EngineInfo.named("maskrcnn")  # catalog.json: weights, hub ids, gated, what it can do

    def __init__(self, cfg, device, model, spec: dict):
        super().__init__(cfg, device)
        self.model = model
        self.class_names = list(spec.get("class_names") or [])
        self.score_threshold = cfg.maskrcnn.score_threshold
        self.model.roi_heads.score_thresh = self.score_threshold
        self.model.roi_heads.detections_per_img = cfg.maskrcnn.max_detections

    @classmethod
    def load(cls, cfg, device, with_detector: bool = True) -> "MaskRCNNEngine":
        from ml.maskrcnn_model import load_checkpoint

        path = os.path.expanduser(cfg.maskrcnn.model)
        if not os.path.isdir(path):
            raise ModelLoadError("maskrcnn.model", cfg.maskrcnn.model, missing_path(path, "folder"),
                                 hint="a Mask R-CNN checkpoint folder (maskrcnn.json + model.pt)")
        try:
            model, spec = load_checkpoint(path, device)
        except Exception as e:
            raise ModelLoadError("maskrcnn.model", cfg.maskrcnn.model, f"cannot be loaded ({type(e).__name__}: {e})",
                                 hint="a Mask R-CNN checkpoint folder (maskrcnn.json + model.pt)") from e
        return cls(cfg, device, model, spec)

    def label(self, index: int) -> str:
        return self.class_names[index - 1] if 0 < index <= len(self.class_names) else f"class_{index}"

    def propose(self, images, prompts, timings=None):
        """``prompts`` are ignored: the model finds its own classes."""
        import torch

        from ml.device import autocast

        t = {} if timings is None else timings
        for im in images:
            self._check_size(im)
        bs = batching.resolve(self.cfg.maskrcnn.batch_size, "detector", self.device)
        out = []
        with timed(t, "detect"), torch.inference_mode(), autocast(self.device, self.cfg.dtype):
            for s in range(0, len(images), bs):
                chunk = images[s:s + bs]
                x = [torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1).float() / 255.0
                     for im in chunk]
                for im, det in zip(chunk, self.model(x)):
                    out.append(self._image(det))
        return out

    def _check_size(self, image: np.ndarray) -> None:
        """torchvision's transform scales the short side to min_size, the long one to at most
        max_size; a long, thin image (65535 x 1) would come out 0 px high: say so plainly."""
        from ml.inputs import check_image, too_thin

        check_image(image)
        transform = getattr(self.model, "transform", None)
        if transform is None:
            return
        h, w = image.shape[:2]
        min_size = transform.min_size[-1] if isinstance(transform.min_size, (list, tuple)) else transform.min_size
        scale = min(float(min_size) / min(h, w), float(transform.max_size) / max(h, w))
        if int(min(h, w) * scale) < 1:
            raise too_thin(image, "the Mask R-CNN model")

    def _image(self, det: dict):
        boxes = det["boxes"].float().cpu().numpy()
        scores = det["scores"].float().cpu().numpy()
        labels = det["labels"].cpu().numpy()
        masks = (det["masks"][:, 0] > self.cfg.maskrcnn.mask_threshold).cpu().numpy()  # pasted to image size
        res = []
        for k in range(len(boxes)):
            name = self.label(int(labels[k]))
            box = Box([float(v) for v in boxes[k]], float(scores[k]), name, name)
            res.append((box, mask_result(masks[k], float(scores[k]), box.xyxy)))
        return res
