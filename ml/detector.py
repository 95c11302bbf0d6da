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
from ml.hub_guard import require_model_source
from ml.inputs import PromptTooLongError, check_image, frame_for_resize
from ml.types import Box

# The short side an image keeps, at least, after the detector's processor resizes it (see _max_aspect).
MIN_RESIZED_SIDE = 16


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


def _check_tokenizer(processor, cfg: DetectorConfig) -> None:
    """A folder without its tokenizer files loads with a 5-token stand-in: every prompt word read
    as [UNK], so every image had 0 detections and the run exit 0 (black-box round 16)."""
    tok = getattr(processor, "tokenizer", None)
    unk = getattr(tok, "unk_token_id", None)
    if tok is None or unk is None:
        return
    ids = tok(" ".join(cfg.prompts), add_special_tokens=False)["input_ids"]
    if ids and all(i == unk for i in ids):
        raise ModelLoadError("detector.model", cfg.model,
                             f"has no usable tokenizer: every word of {cfg.prompts!r} reads as {tok.unk_token!r} "
                             f"(its vocabulary has {len(tok)} tokens; are tokenizer.json / vocab.txt missing from "
                             "the folder?)")


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
        require_model_source("detector.model", cfg.model, src)
        try:
            processor = AutoProcessor.from_pretrained(src)
            model = AutoModelForZeroShotObjectDetection.from_pretrained(src)
        except Exception as e:  # hub miss, offline, corrupt files: all the same fix
            raise ModelLoadError("detector.model", cfg.model, f"cannot be loaded ({type(e).__name__}: {e})") from e
        _check_tokenizer(processor, cfg)
        return cls(model.to(device).eval(), processor, cfg, device, dtype)

    def _prompt(self, prompts: list[str] | None) -> _Prompt:
        phrases = [p.strip().lower().rstrip(".") for p in (prompts or self.cfg.prompts) if p.strip()]
        if not phrases:
            raise ValueError("detector: at least one text prompt is needed")
        return _Prompt(". ".join(phrases) + ".", phrases)

    def max_text_len(self) -> int | None:
        """The model's text window in tokens (GroundingDINO: 256; the tiny test model: 32)."""
        value = getattr(getattr(self.model, "config", None), "max_text_len", None)
        return int(value) if isinstance(value, int) and value > 0 else None

    def check_prompt_length(self, prompt: _Prompt) -> None:
        """Before any image is touched: prompts longer than the text window would fail every
        image with a tensor-size error deep in the model."""
        limit = self.max_text_len()
        if limit is None:
            return
        n_tokens = len(self.processor.tokenizer(prompt.text)["input_ids"])
        if n_tokens > limit:
            raise PromptTooLongError(n_tokens, limit, len(prompt.phrases))

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
        self.check_prompt_length(prompt)
        images = list(images)
        for im in images:
            check_image(im)
        # A long, thin image (65535 x 1) would be resized to a 0 px side: pad it (bottom/right,
        # so box coordinates keep their meaning) to the aspect the processor can still resize.
        max_aspect, longest = self._max_aspect()
        frames = [(im.shape[0], im.shape[1], 1.0) for im in images]  # original h, w; scale applied
        for i, im in enumerate(images):
            framed, scale = frame_for_resize(im, max_aspect, longest)
            if framed is not im:
                images[i] = framed  # a copy of the caller's list (below), never the caller's own
                frames[i] = (im.shape[0], im.shape[1], scale)
        results: list[list[Box] | None] = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault((im.shape[:2], frames[i]), []).append(i)
        bs = batching.resolve(self.cfg.batch_size, "detector", self.device)
        for idxs in groups.values():
            for s in range(0, len(idxs), bs):
                chunk = idxs[s:s + bs]
                for i, boxes in zip(chunk, self._forward([images[i] for i in chunk], prompt,
                                                         [frames[i] for i in chunk])):
                    results[i] = boxes
        return results  # type: ignore[return-value]

    def _max_aspect(self) -> tuple[float, int | None]:
        """(the longest long:short ratio whose short side keeps MIN_RESIZED_SIDE px after the
        processor's aspect-keeping resize, that resize's long side); (0, None) when the processor
        resizes to a fixed size, which takes any aspect."""
        size = getattr(getattr(self.processor, "image_processor", None), "size", None)
        get = (lambda k: size.get(k)) if isinstance(size, dict) else (lambda k: getattr(size, k, None))
        longest = get("longest_edge") or max(get("max_height") or 0, get("max_width") or 0)
        return (float(longest) / MIN_RESIZED_SIDE, int(longest)) if longest else (0.0, None)

    def _forward(self, images: list[np.ndarray], prompt: _Prompt,
                 frames: list[tuple[int, int, float]] | None = None) -> list[list[Box]]:
        """``frames``: each image's own (h, w, scale) when it was shrunk and padded for the
        processor (frame_for_resize); boxes come back in the image's own pixels."""
        # channels_last said outright: a 1 x 1 or 3 x 3 image is otherwise read as channels-first.
        inputs = self.processor(images=images, text=[prompt.text] * len(images), return_tensors="pt",
                                input_data_format="channels_last")
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
            ph, pw = im.shape[:2]
            h, w, scale = frames[b] if frames is not None else (ph, pw, 1.0)
            ph, pw = ph / scale, pw / scale  # the framed image in the original's pixels
            p = probs[b][:, valid] if len(valid) else np.zeros((probs.shape[1], 0))
            if p.shape[1] == 0:
                res.append([])
                continue
            best_tok = p.argmax(axis=1)
            scores = p.max(axis=1)
            phrase_idx = tok_map[valid][best_tok]
            keep = scores > self.cfg.box_threshold  # text_threshold picks the phrase, it cuts no box
            cx, cy, bw, bh = boxes_cxcywh[b].T
            xyxy = np.stack([(cx - bw / 2) * pw, (cy - bh / 2) * ph, (cx + bw / 2) * pw, (cy + bh / 2) * ph], 1)
            xyxy = np.clip(xyxy, 0, [w, h, w, h])
            if (ph, pw) != (h, w):  # framed: a box wholly on the padding is no box of the image
                keep &= (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
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
