"""Seed-000 ``debug/`` folder: per image, what the embedder saw and why each class was chosen.

``<debug>/<stem>/``: ``crop_XX.png`` (the masked crop, padded and resized exactly as the embedder
gets it), ``mask_XX.png`` (the full-image binary mask), ``similarities.json`` and, under
``exemplars/``, copies of the best exemplar of every ranked class."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np

from ml.config import EmbedderConfig
from ml.embedders.crops import make_crop, square_resize
from ml.masks import decode_rle


def _num(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _copy_name(exemplar_id) -> str:
    return str(exemplar_id).replace("\\", "/").strip("/").replace("/", "__")


def dump_image(folder: str | Path, name: str, image_rgb: np.ndarray, detections, emb_cfg: EmbedderConfig,
               input_size: int, gallery=None, matcher_cfg=None) -> Path:
    """Write the debug folder of one image; returns the path of its similarities.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    copied: dict[str, str] = {}  # exemplar id -> its copy, once per image
    objects = []
    for i, d in enumerate(detections):
        mask = d.mask if d.mask is not None else decode_rle(d.mask_rle)
        crop = make_crop(image_rgb, d.bbox_xyxy, mask, emb_cfg.crop_mode, emb_cfg.background, emb_cfg.crop_padding)
        seen = square_resize(crop, input_size, emb_cfg.background)
        crop_f, mask_f = f"crop_{i:02d}.png", f"mask_{i:02d}.png"
        cv2.imwrite(str(folder / crop_f), cv2.cvtColor(seen, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(folder / mask_f), np.asarray(mask, bool).astype(np.uint8) * 255)
        top = []
        for cls, score, eid in d.match.ranked:
            src = gallery.exemplar_file(eid) if gallery is not None else None
            if src is not None and str(eid) not in copied:
                (folder / "exemplars").mkdir(exist_ok=True)
                dst = f"exemplars/{_copy_name(eid)}"
                shutil.copyfile(src, folder / dst)
                copied[str(eid)] = dst
            top.append({"class": cls, "score": _num(score), "exemplar_id": eid,
                        "exemplar_file": copied.get(str(eid))})
        best = next((t for t in top if t["class"] == d.match.label), top[0] if top else None)
        objects.append({
            "index": i, "crop": crop_f, "mask": mask_f, "bbox_xyxy": [float(v) for v in d.bbox_xyxy],
            "detector": {"label": d.det_label, "phrase": d.det_phrase, "score": _num(d.det_score)},
            "mask_score": _num(d.mask_score), "area": int(d.area),
            "decision": d.match.label, "score": _num(d.match.score), "margin": _num(d.match.margin),
            "top_k": top,
            "best_exemplar": None if best is None else {k: best[k] for k in ("class", "exemplar_id", "exemplar_file")},
        })
    doc = {"image": name, "width": int(image_rgb.shape[1]), "height": int(image_rgb.shape[0]),
           "embedder": {"crop_mode": emb_cfg.crop_mode, "input_size": int(input_size),
                        "background": list(emb_cfg.background), "crop_padding": emb_cfg.crop_padding},
           "matcher": None if matcher_cfg is None else {
               k: getattr(matcher_cfg, k) for k in ("unknown_threshold", "margin", "top_k", "unique_per_image")},
           "objects": objects}
    out = folder / "similarities.json"
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return out
