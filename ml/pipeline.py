"""The pipeline: engine (detector -> segmenter, or one model) -> crop embedder -> matcher.

The engine is named by ``cfg.engine`` (ml/engines): gdino-sam2 (GroundingDINO then SAM 2),
sam3 (text -> masks in one model) or maskrcnn (closed set). Everything after the masks is
the same for every engine, so jobs, the CLI and the output formats do not know which ran.

Build it once per worker (``Pipeline.from_config``) and reuse it: every model is
loaded in the constructor. Two paths give the same result:
``annotate`` (batched: several images per detector / SAM-encoder forward, all
boxes of an image in one SAM call, all crops in embedder batches) and
``annotate_reference`` (seed-000 style: one image, one box, one crop at a time).

Matching runs once per image, inside the pipeline, with the ``matcher`` the caller
passes (a job's frozen settings) or else the config's; ``timings_ms["match"]`` times
that one pass.
"""
from __future__ import annotations

import numpy as np

from ml.config import PipelineConfig
from ml.detector import Detector
from ml.device import resolve_device
from ml.embedders import Embedder, EmbedOutput, load_embedder
from ml.embedders.crops import make_crop, square_resize
from ml.engines import Engine, load_engine
from ml.engines.base import timed as _timed
from ml.engines.gdino_sam2 import GdinoSam2Engine
from ml.gallery import Gallery
from ml.masks import encode_rle
from ml.matcher import Matcher
from ml.segmenter import Segmenter
from ml.types import STAGES, Box, Detection, ImageResult, MaskResult, MatchResult



class Pipeline:
    def __init__(self, cfg: PipelineConfig, detector: Detector | None, segmenter: Segmenter | None,
                 embedder: Embedder, matcher: Matcher, engine: Engine | None = None):
        self.cfg = cfg
        # detector/segmenter given (bench, tests): today's gdino-sam2 path around them
        self.engine = engine or GdinoSam2Engine(cfg, segmenter.device, detector, segmenter)
        self.embedder = embedder
        self.matcher = matcher

    @classmethod
    def from_config(cls, cfg: PipelineConfig, with_detector: bool = True,
                    embedder: Embedder | None = None) -> "Pipeline":
        """Load every model once (the engine named by ``cfg.engine``, the embedder).
        ``with_detector=False`` for boxes-given workers (gdino-sam2: no GroundingDINO);
        ``embedder``: reuse one already loaded from the same config (a worker running
        projects of several engines keeps one copy)."""
        device = resolve_device(cfg.device)
        engine = load_engine(cfg, device, with_detector)
        emb = embedder or load_embedder(cfg.embedder, device, cfg.dtype)
        return cls(cfg, None, None, emb, Matcher.from_config(cfg.matcher), engine=engine)

    @property
    def detector(self) -> Detector | None:
        """GroundingDINO (gdino-sam2 only; None for the other engines)."""
        return self.engine.detector

    @property
    def segmenter(self) -> Segmenter:
        """SAM 2 for boxes-given mode; engines other than gdino-sam2 load it on first use."""
        return self.engine.segmenter

    @property
    def device(self):
        return self.engine.device

    def configure(self, box_threshold: float | None = None, text_threshold: float | None = None,
                  nms_iou: float | None = None) -> None:
        """A job's thresholds for the next calls (the engine applies what it understands)."""
        self.engine.configure(box_threshold=box_threshold, text_threshold=text_threshold, nms_iou=nms_iou)

    # -- small public helpers -------------------------------------------------
    @property
    def embedder_version(self) -> str:
        return self.embedder.version

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """[N, D] float32 L2-normalised; crops are used as given (gallery exemplars)."""
        return self.embedder.embed([np.ascontiguousarray(c) for c in crops]).features

    def segment_boxes(self, image: np.ndarray, boxes_xyxy, roi_margin: float | None = None) -> list[MaskResult]:
        """Boxes-given mode (boxes from an import or drawn by hand, no detector)."""
        return self.engine.segment_boxes(image, boxes_xyxy, self._roi_margin(roi_margin))

    def _roi_margin(self, roi_margin: float | None) -> float | None:
        margin = self.cfg.segmenter.roi_margin if roi_margin is None else roi_margin
        return None if margin is None else float(margin)

    def _crop(self, image: np.ndarray, m: MaskResult) -> np.ndarray:
        e = self.cfg.embedder
        crop = make_crop(image, m.bbox_xyxy, m.mask, e.crop_mode, e.background, e.crop_padding)
        size = self.embedder.crop_size
        # Shrunk at once, as the embedder would (the same call: its own square_resize then finds a
        # square of its size and leaves it as is), so a chunk holds small crops, not full-size ones.
        return crop if size is None else square_resize(crop, size, e.background)

    def _match(self, emb: EmbedOutput, gallery: Gallery | None, matcher: Matcher | None = None) -> list[MatchResult]:
        matcher = self.matcher if matcher is None else matcher
        if self.cfg.embedder.classify_with == "probs":
            if emb.probs is None:
                raise ValueError("embedder.classify_with='probs' but the embedder has no class probabilities")
            return matcher.match_probs(emb.probs, emb.class_names)
        if gallery is None:
            gallery = Gallery(np.zeros((0, 0), np.float32), [], [])
        if len(gallery) and gallery.version and gallery.version != self.embedder_version:
            raise ValueError("gallery embeddings were computed with another embedder "
                             f"({gallery.version!r} != {self.embedder_version!r}); re-embed the gallery")
        return matcher.match(emb.features, gallery)

    @staticmethod
    def _detections(boxes: list[Box], masks: list[MaskResult], emb: EmbedOutput,
                    matches: list[MatchResult]) -> list[Detection]:
        return [Detection(bbox_xyxy=m.bbox_xyxy, det_score=b.score, det_label=b.label, mask_rle=encode_rle(m.mask),
                          area=m.area, mask_score=m.score, embedding=emb.features[i], match=matches[i],
                          prompt_xyxy=m.prompt_xyxy, mask=m.mask, det_phrase=b.phrase)
                for i, (b, m) in enumerate(zip(boxes, masks))]

    # -- batched path ---------------------------------------------------------
    def annotate(self, images: list[np.ndarray], gallery: Gallery | None, prompts: list[str] | None = None,
                 boxes: list[list] | None = None, matcher: Matcher | None = None,
                 roi_margin: float | None = None) -> list[ImageResult]:
        """Batched path. ``boxes`` (per image, xyxy) skips the detector; SAM then sees each
        box's ROI crop (``roi_margin``, else ``segmenter.roi_margin``; null = the whole image).
        ``matcher`` (default: the config's) classifies the crops, once per image. Stage
        timings of batched stages are split evenly over the images of the call."""
        images = [np.ascontiguousarray(im) for im in images]
        t: dict[str, float] = {}
        n = max(1, len(images))
        if boxes is None:
            proposals = self.engine.propose(images, prompts, t)
            det_boxes = [[b for b, _ in ps] for ps in proposals]
            masks = [[m for _, m in ps] for ps in proposals]
        else:
            det_boxes = [[Box([float(v) for v in b], 1.0, "") for b in bs] for bs in boxes]
            with _timed(t, "segment"):  # seed 003: a given box is segmented on its own crop, grown by the margin
                masks = self.engine.segment_given(images, [[b.xyxy for b in bs] for bs in det_boxes],
                                                  self._roi_margin(roi_margin))
        with _timed(t, "embed"):
            crops = [self._crop(im, m) for im, ms in zip(images, masks) for m in ms]
            emb_all = self.embedder.embed(crops)
        results = []
        offset = 0
        t_match = 0.0
        for im, bs, ms in zip(images, det_boxes, masks):
            k = len(ms)
            emb = EmbedOutput(emb_all.features[offset:offset + k],
                              None if emb_all.probs is None else emb_all.probs[offset:offset + k],
                              emb_all.class_names)
            offset += k
            tm: dict[str, float] = {}
            with _timed(tm, "match"):
                matches = self._match(emb, gallery, matcher)
            t_match += tm["match"]
            results.append(ImageResult(im.shape[1], im.shape[0], self._detections(bs, ms, emb, matches),
                                       {s: t.get(s, 0.0) / n for s in ("detect", "segment", "embed")} | tm))
        return results

    # -- reference path -------------------------------------------------------
    def annotate_reference(self, images: list[np.ndarray], gallery: Gallery | None,
                           prompts: list[str] | None = None, matcher: Matcher | None = None) -> list[ImageResult]:
        """Seed-000 style: one image per detector forward, SAM once per box, the
        embedder once per crop. Slow; the bench and tests compare it with annotate().
        gdino-sam2 only (the other engines have no separate detector and box prompts)."""
        if self.detector is None:
            raise ValueError(f"annotate_reference needs the gdino-sam2 engine, not {self.engine.info.name!r}")
        results = []
        for im in images:
            im = np.ascontiguousarray(im)
            t: dict[str, float] = {}
            with _timed(t, "detect"):
                bs = self.detector.detect([im], prompts)[0]
            with _timed(t, "segment"):
                self.segmenter.set_image(im)
                ms = [self.segmenter.segment(im, [b.xyxy], set_image=False)[0] for b in bs]
            with _timed(t, "embed"):
                outs = [self.embedder.embed([self._crop(im, m)]) for m in ms]
                feats = np.concatenate([o.features for o in outs]) if outs else \
                    np.zeros((0, self.embedder.dim), np.float32)
                probs = np.concatenate([o.probs for o in outs]) if outs and outs[0].probs is not None else None
                emb = EmbedOutput(feats, probs, self.embedder.class_names)
            with _timed(t, "match"):
                matches = self._match(emb, gallery, matcher)
            results.append(ImageResult(im.shape[1], im.shape[0], self._detections(bs, ms, emb, matches), t))
        return results
