"""What every engine offers the pipeline: images (+ text prompts) -> boxes with masks, and
boxes-given segmentation. Model libraries (transformers, sam2, torchvision) are imported inside
methods, so listing engines loads no model code."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.types import Box, MaskResult

Proposal = tuple[Box, MaskResult]
# What each engine needs, as data: the web process reads this file directly (GET /api/engines/),
# because importing the ml package imports torch (seconds to tens of seconds on first use).
CATALOG = Path(__file__).with_name("catalog.json")


@dataclass(frozen=True)
class EngineInfo:
    """What ``python -m ml engines`` and ``GET /api/engines/`` show."""
    name: str
    title: str
    weights: str  # what the config must point at
    hub_ids: list[str] = field(default_factory=list)
    gated: bool = False  # the hub asks you to accept a licence before downloading
    text_prompts: bool = True  # uses the project's prompts (else closed-set classes)
    boxes_given: str = ""  # how imported / drawn boxes are segmented
    trainable: bool = False  # can be trained from approved annotations here
    config_section: str = ""
    model_setting: str = ""  # the config key of its main weights ("sam3.model")

    @classmethod
    def named(cls, name: str) -> "EngineInfo":
        rows = {r["name"]: r for r in json.loads(CATALOG.read_text(encoding="utf-8"))}
        return cls(**rows[name])

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "weights": self.weights, "hub_ids": list(self.hub_ids),
                "gated": self.gated, "text_prompts": self.text_prompts, "boxes_given": self.boxes_given,
                "trainable": self.trainable, "config_section": self.config_section,
                "model_setting": self.model_setting}


@contextmanager
def timed(acc: dict, key: str):
    t0 = time.perf_counter()
    yield
    acc[key] = acc.get(key, 0.0) + (time.perf_counter() - t0) * 1000.0


class Engine:
    """Subclasses set ``info`` and implement ``load`` and ``propose``.

    Boxes-given mode goes through the config's SAM 2 segmenter for every engine: the
    gdino-sam2 engine loads it at start, the others on the first boxes-given call, so a
    worker that only runs text prompts never loads SAM 2 next to SAM 3 / Mask R-CNN."""

    info: EngineInfo
    detector = None  # a GroundingDINO Detector (gdino-sam2 only): bench, job thresholds

    def __init__(self, cfg, device, segmenter=None):
        self.cfg = cfg  # the whole PipelineConfig
        self.device = device
        self._segmenter = segmenter

    @classmethod
    def describe(cls) -> dict:
        return cls.info.to_dict()

    @classmethod
    def load(cls, cfg, device, with_detector: bool = True) -> "Engine":
        raise NotImplementedError

    @property
    def segmenter(self):
        if self._segmenter is None:
            from ml.segmenter import Segmenter

            self._segmenter = Segmenter.load(self.cfg.segmenter, self.device, self.cfg.dtype)
        return self._segmenter

    def prompts(self, prompts: list[str] | None) -> list[str]:
        """The job's prompts, else the config's (``detector.prompts`` serves every text engine)."""
        phrases = [p.strip() for p in (prompts or self.cfg.detector.prompts) if p and p.strip()]
        if not phrases:
            raise ValueError(f"{self.info.name}: at least one text prompt is needed")
        return phrases

    def check_prompts(self, prompts: list[str] | None) -> None:
        """Raise ml.inputs.PromptTooLongError when the prompts cannot fit the model's text window
        (before any image: a job fails at once with the limit, not every image with a tensor
        error). Default: nothing to check (closed-set engines)."""

    def configure(self, box_threshold: float | None = None, text_threshold: float | None = None,
                  nms_iou: float | None = None) -> None:
        """A job's thresholds (project settings) for the next calls. Default: ignored."""

    def propose(self, images: list[np.ndarray], prompts: list[str] | None,
                timings: dict | None = None) -> list[list[Proposal]]:
        """Per image: (box, mask) pairs. ``timings`` gets ``detect`` / ``segment`` ms."""
        raise NotImplementedError

    def segment_given(self, images: list[np.ndarray], boxes: list[list], margin: float | None) -> list[list[MaskResult]]:
        """Boxes-given mode: SAM 2 on each box's ROI crop (``margin``), or on the whole image."""
        seg = self.segmenter
        if margin is None:
            return seg.segment_batch(images, boxes)
        return [seg.segment_rois(im, bs, margin) for im, bs in zip(images, boxes)]

    def segment_boxes(self, image: np.ndarray, boxes_xyxy, margin: float | None) -> list[MaskResult]:
        if margin is not None:
            return self.segmenter.segment_rois(image, boxes_xyxy, margin)
        return self.segmenter.segment(image, boxes_xyxy)


def mask_result(mask: np.ndarray, score: float, box_xyxy) -> MaskResult:
    from ml.masks import bbox_from_mask, mask_area

    prompt = [float(v) for v in box_xyxy]
    return MaskResult(mask=mask, score=float(score), bbox_xyxy=bbox_from_mask(mask) or prompt,
                      area=mask_area(mask), prompt_xyxy=prompt)
