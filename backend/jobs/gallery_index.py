"""Gallery embeddings per embedder version (cached in pgvector) and the ml Gallery built from them."""
from __future__ import annotations

import numbers

import numpy as np

from backend.gallery.models import GalleryEmbedding, GalleryImage
from backend.gallery.versions import current_version
from backend.projects.models import LabelClass, Project

from .engine import read_rgb

EMBED_BATCH = 16


def ensure_exemplar_embeddings(*, project_id: int, pipeline, exemplar_ids: list[int] | None = None) -> int:
    """Embed every exemplar (of the live gallery, or these of a pinned version) that has no vector
    for this embedder yet; returns how many were added."""
    version = pipeline.embedder_version
    exemplars = GalleryImage.objects.filter(project_id=project_id)
    exemplars = exemplars.filter(removed_at__isnull=True) if exemplar_ids is None else exemplars.filter(pk__in=exemplar_ids)
    missing = list(
        exemplars
        .exclude(embeddings__embedder_version=version)
        .values_list("pk", "file")
    )
    added = 0
    for start in range(0, len(missing), EMBED_BATCH):
        chunk = missing[start:start + EMBED_BATCH]
        vectors = pipeline.embed_crops([read_rgb(name) for _, name in chunk])
        GalleryEmbedding.objects.bulk_create(
            [GalleryEmbedding(gallery_image_id=pk, embedder_version=version, vector=vec.tolist())
             for (pk, _), vec in zip(chunk, vectors)],
            ignore_conflicts=True,  # another worker embedded it meanwhile: same vector
        )
        added += len(chunk)
    return added


def load_gallery(*, project_id: int, embedder_version: str, exemplar_ids: list[int] | None = None):
    """The exemplars of one gallery version (gallery.versions; the newest one without ids);
    labels are class ids (as strings)."""
    from ml.gallery import Gallery

    if exemplar_ids is None:
        exemplar_ids = current_version(project_id).exemplar_ids

    rows = list(
        GalleryEmbedding.objects.filter(
            gallery_image__project_id=project_id, gallery_image_id__in=exemplar_ids,
            embedder_version=embedder_version,
        ).values_list("gallery_image_id", "gallery_image__label_class_id", "vector").order_by("gallery_image_id")
    )
    if not rows:
        gallery = Gallery(np.zeros((0, 0), np.float32), [], [], version=embedder_version)
    else:
        gallery = Gallery(
            np.stack([np.asarray(vec, np.float32) for _, _, vec in rows]),
            [str(class_id) for _, class_id, _ in rows],
            [pk for pk, _, _ in rows],
            version=embedder_version,
        )
    # Instance -> type, read by ml.matcher.Matcher.match: the type is decided with its instances'
    # exemplars too, then the instances are ranked within it.
    gallery.parents = {
        str(pk): str(parent) for pk, parent in LabelClass.objects.filter(
            project_id=project_id, parent__isnull=False).values_list("pk", "parent_id")
    }
    return gallery


def project_matcher(project: Project):
    from ml.matcher import Matcher

    return Matcher(
        unknown_threshold=project.unknown_threshold, margin=project.min_margin, top_k=project.top_k,
        unique_per_image=project.unique_classes_per_image, min_assign_score=project.unknown_threshold,
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
