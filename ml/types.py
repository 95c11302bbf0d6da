"""Typed stage inputs/outputs shared by the pipeline, the CLI and the backend."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = ("detect", "segment", "embed", "match")


@dataclass
class Box:
    """An engine's detection: xyxy in image pixels, score, and ``label`` / ``phrase``: GroundingDINO's
    best prompt and its phrase (the prompt words scoring above text_threshold, may be ""); SAM 3's
    prompt (both); Mask R-CNN's class name (both)."""
    xyxy: list[float]
    score: float
    label: str
    phrase: str = ""


@dataclass
class MaskResult:
    """A segmenter output for one box prompt."""
    mask: np.ndarray  # bool HxW, full image size
    score: float  # SAM predicted IoU of the chosen mask
    bbox_xyxy: list[float]  # tight box from the mask (the prompt box if the mask is empty)
    area: int
    prompt_xyxy: list[float]


@dataclass
class MatchResult:
    label: str  # class name or "unknown"
    score: float  # score of `label` (or of the best class when unknown)
    margin: float  # score minus the best other class score
    ranked: list[tuple[str, float, Any]]  # [(class, score, best exemplar id), ...] best first


@dataclass
class Detection:
    bbox_xyxy: list[float]
    det_score: float
    det_label: str
    mask_rle: dict  # COCO compressed RLE, counts as str
    area: int
    mask_score: float
    embedding: np.ndarray  # float32 [D], L2-normalised
    match: MatchResult
    prompt_xyxy: list[float] = field(default_factory=list)
    det_phrase: str = ""  # Box.phrase (seed 000's vlm_class)
    mask: np.ndarray | None = field(default=None, repr=False)  # kept for export / refine


@dataclass
class ImageResult:
    width: int
    height: int
    detections: list[Detection]
    timings_ms: dict[str, float]  # detect / segment / embed / match (batched stages: per-image share)
    image_id: Any = None
