"""Seed-000 ``<stem>_ann.jpg``: masks, outlines, boxes and "class score" labels drawn into ONE
RGBA overlay, composited onto the image once (per-object blending of a 12 MP photo is slow)."""
from __future__ import annotations

import colorsys
import hashlib
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ml.masks import decode_rle

MASK_ALPHA = 0.45
UNKNOWN_COLOR = (160, 160, 160)
# Class names are often Cyrillic (seed 000): cv2.putText cannot draw them, a TrueType font can.
_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
          "/usr/share/fonts/dejavu/DejaVuSans.ttf", "/Library/Fonts/Arial Unicode.ttf", "C:/Windows/Fonts/arial.ttf")


def class_color(name: str, classes: list[str] | None = None) -> tuple[int, int, int]:
    """RGB colour of a class, the same in every image of a run. With the gallery's class list
    (stable, first-seen order) hues step by the golden ratio, so neighbours in the list never
    look alike; other names get a hue from md5 of the name (hash() is salted per process)."""
    if name == "unknown":
        return UNKNOWN_COLOR
    if classes and name in classes:
        i = classes.index(name)
        hue, sat, val = (i * 0.618033988749895) % 1.0, (0.85, 0.65)[i // 7 % 2], (0.95, 0.8)[i // 14 % 2]
    else:
        d = hashlib.md5(name.encode("utf-8")).digest()
        hue, sat, val = int.from_bytes(d[:2], "big") / 65536.0, 0.65 + d[2] % 30 / 100.0, 0.8 + d[3] % 20 / 100.0
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(hue, sat, val))


@lru_cache(maxsize=16)
def _font(size: int):
    from PIL import ImageFont

    candidates = list(_FONTS)
    try:
        import matplotlib

        candidates.append(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans-Bold.ttf"))
    except ImportError:
        pass
    for path in candidates:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _det_fields(d) -> tuple[list[float], str, float | None, np.ndarray | None]:
    """(bbox, class, score, mask) of a pipeline Detection or a native predictions.json record."""
    if isinstance(d, dict):
        from ml.masks import decode_native_rle

        mask = decode_native_rle(d["mask_rle"]) if d.get("mask_rle") else None
        return d["bbox_xyxy"], d["class"], d.get("score_metric"), mask
    mask = d.mask if d.mask is not None else (decode_rle(d.mask_rle) if d.mask_rle else None)
    return d.bbox_xyxy, d.match.label, d.match.score, mask


def render_overlay(height: int, width: int, detections, classes: list[str] | None = None) -> np.ndarray:
    """HxWx4 uint8 RGBA overlay: masks at MASK_ALPHA, opaque outlines, boxes and labels."""
    from PIL import Image, ImageDraw

    thick = max(2, round(max(height, width) / 600))
    fields = [_det_fields(d) for d in detections]
    regions = [_mask_region(m, height, width) for _, _, _, m in fields]
    # Fills first (outlines and boxes go on top): object numbers into one label map, then one
    # table lookup; writing RGBA through a boolean mask per object is several times slower.
    index = np.zeros((height, width), np.uint16)
    lut = np.zeros((len(fields) + 1, 4), np.uint8)
    for k, ((_, label, _, _), reg) in enumerate(zip(fields, regions), start=1):
        if reg is not None:
            (y0, x0), sub = reg
            np.putmask(index[y0:y0 + sub.shape[0], x0:x0 + sub.shape[1]], sub, k)
            lut[k] = (*class_color(label, classes), int(round(MASK_ALPHA * 255)))
    ov = lut[index]
    for (box, label, _, _), reg in zip(fields, regions):
        color = (*class_color(label, classes), 255)
        if reg is not None:
            (y0, x0), sub = reg
            contours, _ = cv2.findContours(sub.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                           offset=(x0, y0))
            cv2.drawContours(ov, contours, -1, color, thick)
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(ov, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, thick)
    font = _font(max(10, round(max(height, width) / 70)))
    im = Image.fromarray(ov, "RGBA")
    draw = ImageDraw.Draw(im)
    for box, label, score, _ in fields:
        text = label if score is None else f"{label} {float(score):.2f}"
        l, t, r, b = draw.textbbox((0, 0), text, font=font)
        pad = max(2, thick)
        tw, th = r - l + 2 * pad, b - t + 2 * pad
        x = int(min(max(0, float(box[0])), max(0, width - tw)))
        y = int(float(box[1])) - th
        y = y if y >= 0 else min(int(float(box[1])), max(0, height - th))  # inside the box at the top edge
        draw.rectangle((x, y, x + tw - 1, y + th - 1), fill=(*class_color(label, classes), 220))
        draw.text((x + pad - l, y + pad - t), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(im)


def _mask_region(mask, height: int, width: int):
    """((y0, x0), bool sub-mask) of the mask's bounding rectangle; None for no or an empty mask.
    Work on the object's rectangle, not the whole 12 MP frame, once per object."""
    if mask is None or mask.shape != (height, width):
        return None
    mask = np.asarray(mask, bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return (int(rows[0]), int(cols[0])), mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def composite(image_rgb: np.ndarray, overlay_rgba: np.ndarray) -> np.ndarray:
    """image * (1 - a) + overlay * a, per pixel, in one OpenCV call (alpha 0 leaves a pixel as it is)."""
    a = overlay_rgba[..., 3].astype(np.float32)
    return cv2.blendLinear(np.ascontiguousarray(image_rgb), np.ascontiguousarray(overlay_rgba[..., :3]), 255.0 - a, a)


def draw_annotations(image_rgb: np.ndarray, detections, classes: list[str] | None = None) -> np.ndarray:
    """RGB image with ``detections`` (pipeline Detections or native records) drawn on it;
    ``classes``: the gallery's class list, for well-separated stable colours."""
    h, w = image_rgb.shape[:2]
    return composite(image_rgb, render_overlay(h, w, detections, classes))


def save_visualization(path: str | Path, image_rgb: np.ndarray, detections, classes: list[str] | None = None,
                       quality: int = 90) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(draw_annotations(image_rgb, detections, classes), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"cannot write {str(path)!r}")
    return path
