"""GroundingDINO detector through transformers (zero-shot object detection)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ml import batching
from ml.config import DetectorConfig
from ml.device import autocast
from ml.errors import ModelLoadError
from ml.types import Box


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, prefer: str = "score") -> list[int]:
    """Class-agnostic greedy NMS. ``prefer="area"`` keeps the larger of two
    overlapping boxes (a whole tool over a part of it); ties go by score."""
    if len(boxes) == 0:
        return []
    b = np.asarray(boxes, dtype=np.float64)
    areas = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    if prefer == "area":
        order = np.lexsort((-np.asarray(scores), -areas))
    elif prefer == "score":
        order = np.lexsort((-areas, -np.asarray(scores)))
    else:
        raise ValueError(f"detector.nms_prefer must be 'score' or 'area', got {prefer!r}")
    keep: list[int] = []
    alive = np.ones(len(b), dtype=bool)
    for i in order:
        if not alive[i]:
            continue
        keep.append(int(i))
        xx1 = np.maximum(b[i, 0], b[:, 0])
        yy1 = np.maximum(b[i, 1], b[:, 1])
        xx2 = np.minimum(b[i, 2], b[:, 2])
        yy2 = np.minimum(b[i, 3], b[:, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        ious = inter / np.maximum(areas[i] + areas - inter, 1e-12)
        alive &= ious <= iou
    return keep


def _is_local(path: str) -> bool:
    return path.startswith((".", "/", "~")) or os.path.sep in path and os.path.exists(path)


@dataclass
class _Prompt:
    text: str  # "a. b." as GroundingDINO expects
    phrases: list[str]


class Detector:
    def __init__(self, model, processor, cfg: DetectorConfig, device: torch.device, dtype: str = "float32"):
        self.model = model
        self.processor = processor
        self.cfg = cfg
        self.device = device
        self.dtype = dtype

    @classmethod
    def load(cls, cfg: DetectorConfig, device: torch.device, dtype: str = "float32") -> "Detector":
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        src = os.path.expanduser(cfg.model)
        if _is_local(src) and not os.path.isdir(src):
            raise ModelLoadError("detector.model", cfg.model, "not found")
        try:
            processor = AutoProcessor.from_pretrained(src)
            model = AutoModelForZeroShotObjectDetection.from_pretrained(src)
        except Exception as e:  # hub miss, offline, corrupt files: all the same fix
            raise ModelLoadError("detector.model", cfg.model, f"cannot be loaded ({type(e).__name__}: {e})") from e
        return cls(model.to(device).eval(), processor, cfg, device, dtype)

    def _prompt(self, prompts: list[str] | None) -> _Prompt:
        phrases = [p.strip().lower().rstrip(".") for p in (prompts or self.cfg.prompts) if p.strip()]
        if not phrases:
            raise ValueError("detector: at least one text prompt is needed")
        return _Prompt(". ".join(phrases) + ".", phrases)

    def _phrase_token_map(self, input_ids: torch.Tensor, phrases: list[str]) -> np.ndarray:
        """Token index -> phrase index (-1 for [CLS]/[SEP]/'.'/padding)."""
        tok = self.processor.tokenizer
        ids = input_ids.tolist()
        special = set(tok.all_special_ids)
        dot = tok.convert_tokens_to_ids(".")
        out = np.full(len(ids), -1, dtype=np.int64)
        phrase = 0
        for t, tid in enumerate(ids):
            if tid == dot:
                phrase += 1
            elif tid not in special and phrase < len(phrases):
                out[t] = phrase
        return out

    @torch.inference_mode()
    def detect(self, images: list[np.ndarray], prompts: list[str] | None = None) -> list[list[Box]]:
        """Boxes per image. Images are batched only with images of the same size:
        the processor pads a mixed batch to its largest image, which changes the
        features of the smaller ones, so the batched path would not match one
        image at a time."""
        prompt = self._prompt(prompts)
        results: list[list[Box] | None] = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.shape[:2], []).append(i)
        bs = batching.resolve(self.cfg.batch_size, "detector", self.device)
        for idxs in groups.values():
            for s in range(0, len(idxs), bs):
                chunk = idxs[s:s + bs]
                for i, boxes in zip(chunk, self._forward([images[i] for i in chunk], prompt)):
                    results[i] = boxes
        return results  # type: ignore[return-value]

    def _forward(self, images: list[np.ndarray], prompt: _Prompt) -> list[list[Box]]:
        inputs = self.processor(images=images, text=[prompt.text] * len(images), return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with autocast(self.device, self.dtype):
            out = self.model(**inputs)
        probs = torch.sigmoid(out.logits.float()).cpu().numpy()  # [B, Q, T]
        boxes_cxcywh = out.pred_boxes.float().cpu().numpy()  # [B, Q, 4] relative
        input_ids = inputs["input_ids"][0].cpu()  # one prompt for the whole batch
        tok_map = self._phrase_token_map(input_ids, prompt.phrases)
        valid = np.flatnonzero(tok_map >= 0)
        valid_ids = input_ids.numpy()[valid]
        res = []
        for b, im in enumerate(images):
            h, w = im.shape[:2]
            p = probs[b][:, valid] if len(valid) else np.zeros((probs.shape[1], 0))
            if p.shape[1] == 0:
                res.append([])
                continue
            best_tok = p.argmax(axis=1)
            scores = p.max(axis=1)
            phrase_idx = tok_map[valid][best_tok]
            keep = scores > self.cfg.box_threshold  # text_threshold picks the phrase, it cuts no box
            cx, cy, bw, bh = boxes_cxcywh[b].T
            xyxy = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], 1)
            xyxy = np.clip(xyxy, 0, [w, h, w, h])
            idx = np.flatnonzero(keep)
            kept = nms(xyxy[idx], scores[idx], self.cfg.nms_iou, self.cfg.nms_prefer)
            idx = idx[kept][: self.cfg.max_detections]
            res.append([Box([float(v) for v in xyxy[i]], float(scores[i]), prompt.phrases[phrase_idx[i]],
                            self._phrase(valid_ids[p[i] > self.cfg.text_threshold]))
                        for i in idx])
        return res

    def _phrase(self, token_ids: np.ndarray) -> str:
        """GroundingDINO's label phrase: the prompt tokens scoring above text_threshold, decoded
        in prompt order ("" when none does). Separators and special tokens never count."""
        if not len(token_ids):
            return ""
        return self.processor.tokenizer.decode(token_ids.tolist(), skip_special_tokens=True).strip()
