"""Crop preparation shared by every embedder: masked crop on a neutral
background (or a plain bbox crop), pad to square, resize."""
from __future__ import annotations

import cv2
import numpy as np


def make_crop(image: np.ndarray, bbox_xyxy, mask: np.ndarray | None = None, mode: str = "masked",
              background=(124, 116, 104), padding: float = 0.0) -> np.ndarray:
    """RGB uint8 crop of the object. In "masked" mode pixels outside the mask are
    replaced by ``background`` so the embedding describes the object, not the table."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = [float(v) for v in bbox_xyxy]
    px, py = (x2 - x1) * padding, (y2 - y1) * padding
    x1, y1 = int(max(0, np.floor(x1 - px))), int(max(0, np.floor(y1 - py)))
    x2, y2 = int(min(w, np.ceil(x2 + px))), int(min(h, np.ceil(y2 + py)))
    if x2 <= x1 or y2 <= y1:  # degenerate box: one pixel so the batch shape stays valid
        x1, y1 = min(max(0, x1), w - 1), min(max(0, y1), h - 1)
        x2, y2 = x1 + 1, y1 + 1
    crop = image[y1:y2, x1:x2].copy()
    if mode == "masked" and mask is not None:
        m = np.asarray(mask, bool)[y1:y2, x1:x2]
        crop[~m] = np.asarray(background, dtype=np.uint8)
    elif mode not in ("masked", "bbox"):
        raise ValueError(f"embedder.crop_mode must be 'masked' or 'bbox', got {mode!r}")
    return crop


def pad_to_square(img: np.ndarray, fill=(124, 116, 104)) -> np.ndarray:
    h, w = img.shape[:2]
    s = max(h, w)
    top, left = (s - h) // 2, (s - w) // 2
    return cv2.copyMakeBorder(img, top, s - h - top, left, s - w - left, cv2.BORDER_CONSTANT,
                              value=tuple(int(v) for v in fill))


def square_resize(img: np.ndarray, size: int, fill=(124, 116, 104)) -> np.ndarray:
    """Pad to square (keeps the aspect ratio of long thin tools) then resize.

    The work stays bounded by the crop's own pixel count: padding a long, thin crop first would
    build a long-side x long-side square (65535 x 1 -> 65535 x 65535, 12 GiB and ~40 s of resize
    for one interactive click). When padding would more than double the pixels, the crop is shrunk
    to the target first (long side = ``size``, short side >= 1 px) and padded after; crops up to
    2:1 take the original pad-then-resize path unchanged, so their embeddings do not move."""
    img = np.ascontiguousarray(img)
    h, w = img.shape[:2]
    s = max(h, w)
    if s > size and s * s > 2 * h * w:
        scale = size / s
        img = cv2.resize(img, (min(size, max(1, round(w * scale))), min(size, max(1, round(h * scale)))),
                         interpolation=cv2.INTER_AREA)
    sq = pad_to_square(img, fill)
    interp = cv2.INTER_AREA if sq.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(sq, (size, size), interpolation=interp)


def composite_alpha(rgba: np.ndarray, background=(124, 116, 104)) -> np.ndarray:
    """RGBA exemplar (cut-out PNG) -> RGB on the same neutral background as crops."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = np.asarray(background, np.float32)
    return np.round(rgba[..., :3].astype(np.float32) * a + bg * (1 - a)).astype(np.uint8)
