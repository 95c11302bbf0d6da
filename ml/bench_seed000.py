"""Seed 000's annotation loop, re-implemented for the bench (``python -m ml bench``).

Seed 000 (``annotate_gdino_sam2_dinov3_hf.py``) annotated one photo at a time: GroundingDINO on
the image, SAM 2 once per box, DINOv3 once per crop, similarities against every exemplar,
classes made unique per image, a debug folder per detection (crop, binary mask,
similarities.json, copies of the exemplars), a per-pixel Python row-major RLE loop for every
mask, then ``predictions.json`` and ``timings.csv``. This module does the same with OUR model
objects (the pipeline's detector, segmenter, embedder and matcher), so the bench compares the
method, not the weights. Visualisations (``SAVE_VIS``) are off, as a batch run would have them.
"""
from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from ml.embedders import EmbedOutput
from ml.embedders.crops import make_crop


def python_row_major_rle(mask: np.ndarray) -> dict:
    """Seed 000's encoder: walk every pixel in row-major order in Python, runs start with zeros.
    Same output as ``ml.masks.encode_native_rle`` (a test checks it), ~1 s per 12 MP mask."""
    h, w = mask.shape
    counts: list[int] = []
    prev, run = 0, 0
    for v in np.asarray(mask, dtype=np.uint8).flatten().tolist():
        if v == prev:
            run += 1
        else:
            counts.append(run)
            prev, run = v, 1
    counts.append(run)
    return {"size": [int(h), int(w)], "counts": counts, "order": "row-major"}


def save_exemplars(exemplars: list[np.ndarray], ids: list, folder: Path) -> dict:
    """The seed read its gallery from image files; the bench writes its exemplars once (untimed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ex, ex_id in zip(exemplars, ids):
        p = folder / f"exemplar_{ex_id}.png"
        cv2.imwrite(str(p), cv2.cvtColor(ex, cv2.COLOR_RGB2BGR))
        paths[ex_id] = p
    return paths


def annotate_seed000(pipe, images: list[np.ndarray], names: list[str], gallery, exemplar_files: dict,
                     out_dir: Path, prompts: list[str] | None = None) -> list[dict]:
    """One image at a time, as seed 000 did; writes debug/, predictions.json and timings.csv."""
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions, timings = [], []
    for name, im in zip(names, images):
        im = np.ascontiguousarray(im)
        t0 = time.perf_counter()
        boxes = pipe.detector.detect([im], prompts)[0]
        t1 = time.perf_counter()
        pipe.segmenter.set_image(im)
        masks = [pipe.segmenter.segment(im, [b.xyxy], set_image=False)[0] for b in boxes]
        t2 = time.perf_counter()
        feats, crops = [], []
        for m in masks:
            crop = pipe._crop(im, m)
            crops.append(crop)
            feats.append(pipe.embedder.embed([crop]).features)
        emb = EmbedOutput(np.concatenate(feats) if feats else np.zeros((0, pipe.embedder.dim), np.float32),
                          None, pipe.embedder.class_names)
        matches = pipe._match(emb, gallery)  # similarities to every exemplar + unique classes per image
        sims = emb.features @ gallery.embeddings.T if len(gallery) and len(emb.features) else None
        debug = out_dir / "debug" / Path(name).stem
        for k, (crop, m, match) in enumerate(zip(crops, masks, matches)):
            d = debug / f"det_{k:03d}"
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / "crop.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(d / "mask.png"), m.mask.astype(np.uint8) * 255)
            row = {} if sims is None else {str(e): float(s) for e, s in zip(gallery.exemplar_ids, sims[k])}
            (d / "similarities.json").write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
            for _, _, ex_id in match.ranked[:3]:
                if ex_id in exemplar_files:
                    shutil.copy(exemplar_files[ex_id], d / exemplar_files[ex_id].name)
        t3 = time.perf_counter()
        dets = []
        for b, m, match in zip(boxes, masks, matches):
            dets.append({
                "bbox_xyxy": [float(v) for v in m.bbox_xyxy], "class": match.label,
                "score_metric": float(match.score), "score_vlm": float(b.score), "vlm_class": b.phrase,
                "ranked": [{"name": c, "score": float(s)} for c, s, _ in match.ranked],
                "mask_rle": python_row_major_rle(m.mask),
            })
        t4 = time.perf_counter()
        predictions.append({"image": name, "width": int(im.shape[1]), "height": int(im.shape[0]), "detections": dets})
        timings.append([name, len(dets), *(round((b - a) * 1000, 1) for a, b in ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t0, t4)))])
    (out_dir / "predictions.json").write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")
    with open(out_dir / "timings.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "detections", "detect_ms", "sam_ms", "embed_match_debug_ms", "rle_ms", "total_ms"])
        w.writerows(timings)
    return predictions
