"""Gallery embeddings per embedder version (cached in pgvector) and the ml Gallery built from them."""
from __future__ import annotations

import logging
import numbers

import numpy as np
from django.db import transaction

from backend.core.bulk_sql import read_vectors
from backend.gallery.models import GalleryEmbedding, GalleryImage, GalleryVersion, HardNegative
from backend.gallery.versions import current_version
from backend.learning.selectors import active_transform, transform_for
from backend.projects.models import LabelClass, Project

from backend.core.unreadable import unreadable_reason

from .engine import read_rgb

EMBED_BATCH = 16
logger = logging.getLogger(__name__)


def ensure_exemplar_embeddings(*, project_id: int, pipeline, exemplar_ids: list[int] | None = None) -> int:
    """Embed every exemplar (of the live gallery and the crops of its hard negatives, or these
    of a pinned version) that has no vector for this embedder yet; returns how many were added."""
    version = pipeline.embedder_version
    exemplars = GalleryImage.objects.filter(project_id=project_id)
    if exemplar_ids is None:
        exemplars = exemplars.filter(pk__in=live_embedded_ids(project_id))
    else:
        exemplars = exemplars.filter(pk__in=exemplar_ids)
    missing = list(
        exemplars
        .exclude(embeddings__embedder_version=version)
        .values_list("pk", "file", "original_name", "label_class__name")
    )
    added = 0
    for start in range(0, len(missing), EMBED_BATCH):
        chunk, crops = [], []
        for pk, name, original, class_name in missing[start:start + EMBED_BATCH]:
            # One exemplar whose stored file went bad failed every job and training of the project,
            # blaming each image (black-box round 15): it is left out of matching, named in the log.
            try:
                crops.append(read_rgb(name))
            except Exception as exc:  # noqa: BLE001 - any unreadable file: skipped, said why
                logger.warning("gallery exemplar #%s ('%s' of class '%s') cannot be read (%s): it is left out of "
                               "matching; remove or replace it", pk, original, class_name, unreadable_reason(exc))
                continue
            chunk.append((pk, name))
        if not chunk:
            continue
        vectors = pipeline.embed_crops(crops)
        added += _store_vectors(version, [pk for pk, _ in chunk], vectors)
    return added


def _store_vectors(version: str, ids: list[int], vectors) -> int:
    """The vectors of the exemplars that still exist. An exemplar deleted while it was embedded
    (its class deleted just after a job started) failed the job's batch with a foreign-key error
    on every image (black-box round 16): the rows are locked against deletion first (FOR NO KEY
    UPDATE lets the insert's key check through, and holds a DELETE until the commit), and the
    vectors of those gone are dropped, as the matcher drops their ids."""
    with transaction.atomic():
        alive = set(GalleryImage.objects.select_for_update(no_key=True).filter(pk__in=ids).values_list("pk", flat=True))
        GalleryEmbedding.objects.bulk_create(
            [GalleryEmbedding(gallery_image_id=pk, embedder_version=version, vector=vec.tolist())
             for pk, vec in zip(ids, vectors) if pk in alive],
            ignore_conflicts=True,  # another worker embedded it meanwhile: same vector
        )
    if len(alive) < len(ids):
        logger.info("gallery exemplars %s were deleted while they were embedded", sorted(set(ids) - alive))
    return len(alive)


def live_embedded_ids(project_id: int) -> list[int]:
    """Gallery images whose vectors the matcher needs now: live exemplars and the crops of live
    hard negatives (a pruned learned exemplar can still be a negative's crop)."""
    version = current_version(project_id)
    crops = HardNegative.objects.filter(pk__in=version.negative_ids).values_list("crop_id", flat=True)
    return sorted(set(version.exemplar_ids) | set(crops))


def load_gallery(*, project_id: int, embedder_version: str, exemplar_ids: list[int] | None = None,
                 negative_ids: list[int] | None = None):
    """The exemplars and hard negatives of one gallery version (gallery.versions; the newest one
    without ids); labels are class ids (as strings). Negatives ride on the gallery (``negatives``,
    read by ml.matcher.Matcher like ``parents``), so every caller's matcher applies them. Given
    exemplar ids alone, the negatives are those of the newest version with exactly those
    exemplars (a job should pass its pinned version's negative_ids)."""
    from ml.gallery import Gallery

    if exemplar_ids is None:
        newest = current_version(project_id)
        exemplar_ids, negative_ids = newest.exemplar_ids, newest.negative_ids
    elif negative_ids is None:
        negative_ids = (
            GalleryVersion.objects.filter(project_id=project_id, exemplar_ids=sorted(exemplar_ids))
            .order_by("-number").values_list("negative_ids", flat=True).first()
        ) or []

    rows = list(
        GalleryEmbedding.objects.filter(
            gallery_image__project_id=project_id, gallery_image_id__in=exemplar_ids,
            embedder_version=embedder_version,
        ).values_list("pk", "gallery_image_id", "gallery_image__label_class_id").order_by("gallery_image_id")
    )
    # In binary: the ORM parses each vector from text (~0.5 ms per 1024 floats, every job start).
    vectors = read_vectors(GalleryEmbedding, "vector", [pk for pk, _, _ in rows])
    if not rows:
        gallery = Gallery(np.zeros((0, 0), np.float32), [], [], version=embedder_version)
    else:
        gallery = Gallery(
            np.stack([vectors[pk] for pk, _, _ in rows]),
            [str(class_id) for _, _, class_id in rows],
            [exemplar for _, exemplar, _ in rows],
            version=embedder_version,
        )
    # Instance -> type, read by ml.matcher.Matcher.match: the type is decided with its instances'
    # exemplars too, then the instances are ranked within it.
    gallery.parents = {
        str(pk): str(parent) for pk, parent in LabelClass.objects.filter(
            project_id=project_id, parent__isnull=False).values_list("pk", "parent_id")
    }
    gallery.negatives = load_negatives(project_id=project_id, embedder_version=embedder_version, negative_ids=negative_ids)
    return gallery


def load_negatives(*, project_id: int, embedder_version: str, negative_ids: list[int]):
    """ml Negatives: the crop vectors of these hard negatives for this embedder (a negative
    whose crop has no vector yet is left out until the gpu worker embeds it)."""
    from ml.matcher import Negatives

    negatives = list(HardNegative.objects.filter(project_id=project_id, pk__in=negative_ids)
                     .order_by("id").values_list("label_class_id", "crop_id"))
    by_crop = dict(GalleryEmbedding.objects.filter(
        gallery_image_id__in={crop for _, crop in negatives}, embedder_version=embedder_version,
    ).values_list("gallery_image_id", "pk"))
    stored = read_vectors(GalleryEmbedding, "vector", list(by_crop.values()))
    vectors = {crop: stored[pk] for crop, pk in by_crop.items()}
    rows = [(class_id, vectors[crop]) for class_id, crop in negatives if crop in vectors]
    if not rows:
        return Negatives(np.zeros((0, 0), np.float32), [])
    return Negatives(np.stack([np.asarray(vec, np.float32) for _, vec in rows]), [str(c) for c, _ in rows])


def project_matcher(project: Project, embedder_version: str | None = None):
    """The project's live matcher settings, with its active projection head (issue 15) applied
    to crop and exemplar vectors alike when the head was trained on this embedder's vectors."""
    from ml.matcher import Matcher

    transform = transform_for(project.pk, embedder_version) if embedder_version else active_transform(project.pk)
    return Matcher(
        unknown_threshold=project.unknown_threshold, margin=project.min_margin, top_k=project.top_k,
        unique_per_image=project.unique_classes_per_image, min_assign_score=project.unknown_threshold,
        transform=transform,
    )


def classification(match, classes: dict[int, LabelClass]) -> dict:
    """Annotation fields from an ml MatchResult whose labels are class ids (or class names, for
    a classifier that names its classes itself). With instances the label is the instance when
    the matcher named one, else the type (ml.matcher.HierarchicalMatch)."""
    by_name = {c.name.lower(): c for c in classes.values()}

    def resolve(label: str) -> LabelClass | None:
        if label.isdigit():
            return classes.get(int(label))
        return by_name.get(label.lower())

    candidates = []
    for label, score, exemplar in match.ranked:
        resolved = resolve(str(label))
        candidates.append({
            "class_id": resolved.pk if resolved else None,
            "name": resolved.name if resolved else str(label),
            # Both levels in one list: an instance names its type, so review can show "type › instance".
            "kind": resolved.kind if resolved else LabelClass.Kind.CLASS,
            "parent_id": resolved.parent_id if resolved else None,
            "score": round(float(score), 5),
            "exemplar_id": int(exemplar) if isinstance(exemplar, numbers.Integral) else None,
        })
    chosen = None if match.label == "unknown" else resolve(str(match.label))
    return {
        "label_class": chosen,
        "class_score": float(match.score),
        "class_margin": float(match.margin),
        "candidates": candidates,
    }
