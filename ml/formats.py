"""Writers for the CLI: seed-000 native predictions.json and COCO results."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from ml.masks import decode_rle, encode_native_rle
from ml.types import STAGES, ImageResult


def _num(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def to_native(names: list[str], results: list[ImageResult]) -> list[dict]:
    """Seed 000 format: class/score_metric from the matcher, score_vlm/vlm_class
    from the detector, row-major uncompressed RLE starting with a run of zeros."""
    out = []
    for name, r in zip(names, results):
        dets = []
        for d in r.detections:
            mask = d.mask if d.mask is not None else decode_rle(d.mask_rle)
            dets.append({
                "bbox_xyxy": [float(v) for v in d.bbox_xyxy],
                "class": d.match.label,
                "score_metric": _num(d.match.score),
                "score_vlm": _num(d.det_score),
                "vlm_class": d.det_phrase,  # GroundingDINO's text_threshold phrase, as seed 000
                "ranked": [{"name": n, "score": _num(s)} for n, s, _ in d.match.ranked],
                "mask_rle": encode_native_rle(mask),
            })
        out.append({"image": name, "width": r.width, "height": r.height, "detections": dets})
    return out


def to_coco(names: list[str], results: list[ImageResult]) -> dict:
    """COCO dataset-style dict (images, categories, annotations) whose annotations
    are also valid COCO *results* (image_id, category_id, bbox xywh, score,
    compressed RLE segmentation): load with COCO() or COCO.loadRes(d["annotations"])."""
    cats: dict[str, int] = {}
    for r in results:
        for d in r.detections:
            cats.setdefault(d.match.label, len(cats) + 1)
    images, anns = [], []
    for i, (name, r) in enumerate(zip(names, results), start=1):
        images.append({"id": i, "file_name": name, "width": r.width, "height": r.height})
        for d in r.detections:
            x1, y1, x2, y2 = d.bbox_xyxy
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cats[d.match.label],
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": d.area, "iscrowd": 0,
                         "segmentation": d.mask_rle, "score": _num(d.match.score) or 0.0,
                         "det_score": _num(d.det_score), "det_label": d.det_label,
                         "mask_score": _num(d.mask_score)})
    return {"images": images, "annotations": anns,
            "categories": [{"id": v, "name": k} for k, v in cats.items()]}


def write_timings(path: Path, names: list[str], results: list[ImageResult]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "n_detections", *[f"{s}_ms" for s in STAGES], "total_ms"])
        for name, r in zip(names, results):
            t = [round(r.timings_ms.get(s, 0.0), 3) for s in STAGES]
            w.writerow([name, len(r.detections), *t, round(sum(t), 3)])
