"""Measured accuracy of an engine against approved objects (issue 15). Django-free.

Ground truth and predictions are plain dicts per image, masks as COCO RLE:

    gt:   {"image_id", "width", "height", "objects": [{"label", "mask_rle", "bbox_xywh"?}]}
    pred: {"image_id", "objects": [{"label" (or "unknown"), "score" (detection), "class_score",
                                     "mask_rle", "bbox_xywh"?}]}

Metrics:
- box / mask AP, AP50, AP75 with pycocotools' COCOeval: per class (the predicted class, so a
  wrong class is a false positive) and class-agnostic (detection + mask quality alone);
- class accuracy of the gallery match on predictions matched one-to-one to GT at mask IoU >= 0.5
  (greedy, highest detection score first, as COCO matches);
- per-class precision / recall of the final labels (unmatched predictions are false positives,
  unmatched GT false negatives);
- auto-accept @95%: the lowest class-score threshold whose matched predictions at or above it
  are >= 95% correct, and the fraction of GT objects those predictions cover.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils

UNKNOWN = "unknown"
MATCH_IOU = 0.5
AUTO_ACCEPT_PRECISION = 0.95


def _rle(obj: dict) -> dict:
    rle = dict(obj["mask_rle"])
    if isinstance(rle.get("counts"), str):
        rle["counts"] = rle["counts"].encode("ascii")
    return rle


def _bbox(obj: dict) -> list[float]:
    if obj.get("bbox_xywh") is not None:
        return [float(v) for v in obj["bbox_xywh"]]
    return [float(v) for v in mask_utils.toBbox(_rle(obj)).tolist()]


def _coco(gt: list[dict], preds: list[dict], labels: list[str]):
    """(COCO ground truth, COCO detections or None); categories are 1-based label indices and
    "unknown" predictions get category 0, which no GT has (a false positive when per class)."""
    from pycocotools.coco import COCO

    cat = {label: i + 1 for i, label in enumerate(labels)}
    images, anns = [], []
    for g in gt:
        images.append({"id": g["image_id"], "width": g["width"], "height": g["height"]})
        for o in g["objects"]:
            rle = _rle(o)
            anns.append({"id": len(anns) + 1, "image_id": g["image_id"], "category_id": cat[o["label"]],
                         "segmentation": rle, "area": float(mask_utils.area(rle)), "bbox": _bbox(o), "iscrowd": 0})
    coco_gt = COCO()
    coco_gt.dataset = {"images": images, "annotations": anns,
                       "categories": [{"id": 0, "name": UNKNOWN}] + [{"id": i, "name": n} for n, i in cat.items()]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
    dets = []
    for p in preds:
        for o in p["objects"]:
            dets.append({"image_id": p["image_id"], "category_id": cat.get(o["label"], 0), "segmentation": _rle(o),
                         "bbox": _bbox(o), "score": float(o["score"])})
    if not dets:
        return coco_gt, None
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(dets)
    return coco_gt, coco_dt


def coco_ap(gt: list[dict], preds: list[dict], labels: list[str]) -> dict:
    """{"box"|"mask": {"per_class"|"agnostic": {"ap", "ap50", "ap75"}}} from COCOeval (0..1)."""
    from pycocotools.cocoeval import COCOeval

    coco_gt, coco_dt = _coco(gt, preds, labels)
    out: dict = {}
    for iou_type, key in (("bbox", "box"), ("segm", "mask")):
        out[key] = {}
        for mode, use_cats in (("per_class", 1), ("agnostic", 0)):
            if coco_dt is None:
                out[key][mode] = {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
                continue
            ev = COCOeval(coco_gt, coco_dt, iou_type)
            ev.params.useCats = use_cats
            ev.params.catIds = sorted(coco_gt.getCatIds())
            ev.params.imgIds = [g["image_id"] for g in gt]
            with contextlib.redirect_stdout(io.StringIO()):
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
            # -1 means "no GT at all": report 0 rather than a negative AP.
            out[key][mode] = {name: max(0.0, float(ev.stats[i])) for i, name in ((0, "ap"), (1, "ap50"), (2, "ap75"))}
    return out


def match_objects(gt_objects: list[dict], pred_objects: list[dict], iou: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """One-to-one (gt index, pred index, IoU) pairs at mask IoU >= ``iou``: predictions in
    descending detection score each take the free GT they overlap most."""
    if not gt_objects or not pred_objects:
        return []
    ious = mask_utils.iou([_rle(p) for p in pred_objects], [_rle(g) for g in gt_objects],
                          [0] * len(gt_objects))
    ious = np.asarray(ious, np.float64).reshape(len(pred_objects), len(gt_objects))
    taken: set[int] = set()
    pairs = []
    for pi in sorted(range(len(pred_objects)), key=lambda i: -float(pred_objects[i]["score"])):
        free = [gi for gi in range(len(gt_objects)) if gi not in taken and ious[pi, gi] >= iou]
        if free:
            gi = max(free, key=lambda g: ious[pi, g])
            taken.add(gi)
            pairs.append((gi, pi, float(ious[pi, gi])))
    return pairs


def auto_accept(scores: list[float], correct: list[bool], n_gt: int, precision: float = AUTO_ACCEPT_PRECISION) -> dict:
    """The lowest class-score threshold at which accepting every matched prediction scoring at
    least that much is >= ``precision`` correct; cuts fall only between distinct scores."""
    result = {"precision_target": precision, "threshold": None, "fraction": 0.0, "accepted": 0, "precision": None}
    if not scores or n_gt == 0:
        return result
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    s = np.asarray(scores, np.float64)[order]
    c = np.asarray(correct, np.float64)[order]
    cum_prec = np.cumsum(c) / np.arange(1, len(c) + 1)
    best = None
    for k in range(len(s)):
        if k + 1 < len(s) and s[k + 1] == s[k]:
            continue  # a threshold cannot split equal scores
        if cum_prec[k] >= precision:
            best = k
    if best is None:
        return result
    n = best + 1
    return {"precision_target": precision, "threshold": float(s[best]), "fraction": n / n_gt, "accepted": int(n),
            "precision": float(cum_prec[best])}


def evaluate(gt: list[dict], preds: list[dict], parents: dict[str, str] | None = None) -> dict:
    """Every metric of the module docstring; ``parents`` (instance label -> type label) adds
    ``type_accuracy``, where naming the right type counts."""
    parents = parents or {}
    by_image = {p["image_id"]: p for p in preds}
    labels = sorted({o["label"] for g in gt for o in g["objects"]}
                    | {o["label"] for p in preds for o in p["objects"] if o["label"] != UNKNOWN})
    tp = dict.fromkeys(labels, 0)
    fp = dict.fromkeys(labels, 0)
    n_gt = dict.fromkeys(labels, 0)
    matched, correct, type_correct, scores = 0, 0, 0, []
    accept_scores, accept_correct = [], []
    n_gt_total = n_pred_total = 0
    for g in gt:
        pred_objects = by_image.get(g["image_id"], {"objects": []})["objects"]
        n_gt_total += len(g["objects"])
        n_pred_total += len(pred_objects)
        for o in g["objects"]:
            n_gt[o["label"]] += 1
        pairs = match_objects(g["objects"], pred_objects)
        paired_preds = {pi for _, pi, _ in pairs}
        for gi, pi, _ in pairs:
            want, got = g["objects"][gi]["label"], pred_objects[pi]["label"]
            ok = want == got
            matched += 1
            correct += ok
            type_correct += parents.get(want, want) == parents.get(got, got)
            if got != UNKNOWN:
                if ok:
                    tp[got] += 1
                else:
                    fp[got] += 1
                accept_scores.append(float(pred_objects[pi].get("class_score", pred_objects[pi]["score"])))
                accept_correct.append(ok)
        for pi, o in enumerate(pred_objects):
            if pi not in paired_preds and o["label"] != UNKNOWN:
                fp[o["label"]] += 1
        scores.extend(float(o["score"]) for o in pred_objects)
    per_class = {
        label: {"gt": n_gt[label], "tp": tp[label], "fp": fp[label],
                "precision": tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else None,
                "recall": tp[label] / n_gt[label] if n_gt[label] else None}
        for label in labels
    }
    return {
        "images": len(gt), "gt_objects": n_gt_total, "predictions": n_pred_total, "matched": matched,
        "ap": coco_ap(gt, preds, labels),
        "class_accuracy": correct / matched if matched else None,
        "type_accuracy": (type_correct / matched if matched else None) if parents else None,
        "per_class": per_class,
        "auto_accept": auto_accept(accept_scores, accept_correct, n_gt_total),
    }
