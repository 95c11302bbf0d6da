"""The project's approved objects as ml.evaluation / ml.training inputs (reads only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Exists, OuterRef, Q

from backend.annotations.models import Annotation, ReviewState
from backend.core.bulk_sql import read_vectors
from backend.images.models import Image
from backend.projects.models import LabelClass


def approved_objects(project_id: int):
    """Both reviews accepted and a class: what an approved-only export writes (exchange.selectors)."""
    return Annotation.objects.filter(
        project_id=project_id, class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED,
        label_class__isnull=False,
    )


def reviewed_image_ids(project_id: int) -> list[int]:
    """Images fit to score an engine on: at least one approved object and none still pending,
    so every object on them is known (a pending one would turn a right guess into a false positive)."""
    pending = Annotation.objects.filter(
        Q(class_review=ReviewState.PENDING) | Q(mask_review=ReviewState.PENDING), image_id=OuterRef("pk"))
    return list(
        Image.objects.filter(project_id=project_id)
        .filter(Exists(approved_objects(project_id).filter(image_id=OuterRef("pk"))))
        .exclude(Exists(pending)).order_by("id").values_list("pk", flat=True)
    )


def ground_truth(project_id: int, image_ids: list[int]) -> list[dict]:
    """ml.evaluation ground truth of the images that still exist; labels are class ids as strings
    (as the matcher names them)."""
    by_image: dict[int, list[dict]] = {i: [] for i in image_ids}
    rows = approved_objects(project_id).filter(image_id__in=image_ids).values_list("image_id", "label_class_id", "mask_rle", "bbox")
    for image_id, class_id, rle, bbox in rows:
        by_image[image_id].append({"label": str(class_id), "mask_rle": rle, "bbox_xywh": bbox})
    sizes = {pk: (w, h) for pk, w, h in Image.objects.filter(pk__in=image_ids).values_list("pk", "width", "height")}
    # An image deleted meanwhile is left out (its objects went with it).
    return [{"image_id": i, "width": sizes[i][0], "height": sizes[i][1], "objects": by_image[i]}
            for i in image_ids if i in sizes]


def class_parents(project_id: int) -> dict[str, str]:
    return {str(pk): str(parent) for pk, parent in
            LabelClass.objects.filter(project_id=project_id, parent__isnull=False).values_list("pk", "parent_id")}


def class_names(project_id: int) -> dict[str, str]:
    return {str(pk): name for pk, name in LabelClass.objects.filter(project_id=project_id).values_list("pk", "name")}


@dataclass
class ApprovedObject:
    id: int
    image_id: int
    label: str  # class id as a string
    mask_rle: dict
    bbox: list
    embedding: np.ndarray | None
    embedder_version: str


def approved_for_training(project_id: int) -> list[ApprovedObject]:
    rows = list(approved_objects(project_id).order_by("id").values_list(
        "id", "image_id", "label_class_id", "mask_rle", "bbox", "embedder_version"))
    # In binary: the ORM parses each 1024-float vector from text (~0.5 ms an object).
    vectors = read_vectors(Annotation, "embedding", [row[0] for row in rows])
    return [ApprovedObject(pk, image, str(cls), rle, bbox, vectors.get(pk), ver) for pk, image, cls, rle, bbox, ver in rows]
