"""gdino-sam2: GroundingDINO boxes from text prompts, then SAM 2 masks for all boxes of an
image in one decoder call. Today's path, unchanged: this only wraps Detector and Segmenter."""
from __future__ import annotations

import dataclasses

from ml.engines.base import Engine, EngineInfo, timed


class GdinoSam2Engine(Engine):
    info = EngineInfo.named("gdino-sam2")  # catalog.json: weights, hub ids, gated, what it can do

    def __init__(self, cfg, device, detector, segmenter):
        super().__init__(cfg, device, segmenter)
        self.detector = detector

    @classmethod
    def load(cls, cfg, device, with_detector: bool = True) -> "GdinoSam2Engine":
        from ml.detector import Detector
        from ml.segmenter import Segmenter

        det = Detector.load(cfg.detector, device, cfg.dtype) if with_detector else None
        return cls(cfg, device, det, Segmenter.load(cfg.segmenter, device, cfg.dtype))

    def configure(self, box_threshold=None, text_threshold=None, nms_iou=None) -> None:
        if self.detector is None:
            return
        given = {"box_threshold": box_threshold, "text_threshold": text_threshold, "nms_iou": nms_iou}
        self.detector.cfg = dataclasses.replace(self.detector.cfg, **{k: v for k, v in given.items() if v is not None})

    def check_prompts(self, prompts) -> None:
        if self.detector is not None:
            self.detector.check_prompt_length(self.detector._prompt(prompts))

    def propose(self, images, prompts, timings=None):
        t = {} if timings is None else timings
        if self.detector is None:
            raise ValueError("pipeline was built without a detector: pass boxes=")
        with timed(t, "detect"):
            boxes = self.detector.detect(images, prompts)
        with timed(t, "segment"):
            masks = self.segmenter.segment_batch(images, [[b.xyxy for b in bs] for bs in boxes])
        return [list(zip(bs, ms)) for bs, ms in zip(boxes, masks)]
