"""Seed data for browser tests and the review benchmark: real rows through the ORM and services."""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from backend.annotations.models import Annotation, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.images.models import Image, ImageStatus
from tests.backend.factories import add_member, make_class, make_image, make_project, make_staff, make_user  # noqa: F401


def rle_of(mask: np.ndarray) -> dict:
    enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": enc["counts"].decode("ascii")}


def rect_mask(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def ellipse_mask(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.ogrid[:h, :w]
    return (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1).astype(np.uint8)


def add_prediction(image: Image, label_class, mask: np.ndarray, *, candidates=None, score=0.8, margin=0.3) -> Annotation:
    rle = rle_of(mask)
    bbox, area = mask_geometry(rle)
    return Annotation.objects.create(
        project=image.project, image=image, label_class=label_class, mask_rle=rle, bbox=bbox, area=area,
        source=Source.MODEL, det_score=0.9, mask_score=0.9, class_score=score, class_margin=margin,
        candidates=candidates or ([{"class_id": label_class.pk, "name": label_class.name, "score": score, "exemplar_id": None}] if label_class else []),
        class_review=ReviewState.PENDING, mask_review=ReviewState.PENDING,
    )


def mark_prelabeled(*images: Image) -> None:
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.PRELABELED)
