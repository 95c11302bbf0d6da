"""Re-scoring stored crop embeddings against the newest gallery version: a matrix product, no model."""
from __future__ import annotations

from itertools import groupby

import numpy as np
from django.db import connection, transaction

from backend.annotations.changes import Update, apply_changes
from backend.annotations.models import Annotation, AnnotationEvent, ChangeSource, ReviewState, Source
from backend.core.bulk_sql import read_vectors
from backend.gallery.models import GalleryImage
from backend.gallery.versions import current_version
from backend.projects.models import Project

from .gallery_index import classification, live_embedded_ids, load_gallery, project_matcher
from .services import classes_by_id


def _pending(project_id: int):
    """Unreviewed model annotations whose class came from the gallery. A classifier's own
    probabilities (embedder.classify_with = "probs") do not depend on the gallery, so a gallery
    change must not re-label those: they are told apart by their candidates, which name an
    exemplar for every gallery match and none for a probability (ml Matcher.match_probs). An
    annotation with no candidates (the gallery was empty when it was made) is re-scored."""
    return Annotation.objects.filter(
        project_id=project_id, source=Source.MODEL, class_review=ReviewState.PENDING, embedding__isnull=False,
        updated_by__isnull=True,  # an annotator's edit is pending review too, but a person chose that class
    ).exclude(embedder_version="").exclude(candidates__contains=[{"exemplar_id": None}])


def exemplars_missing_vectors(*, project_id: int) -> bool:
    versions = set(_pending(project_id).values_list("embedder_version", flat=True).distinct())
    needed = live_embedded_ids(project_id)  # exemplars and the crops of hard negatives
    return any(
        GalleryImage.objects.filter(project_id=project_id, pk__in=needed)
        .exclude(embeddings__embedder_version=v).exists() for v in versions
    )


def rescore_project(*, project_id: int) -> int:
    """Every unreviewed gallery-classified model annotation gets fresh candidates; returns how
    many changed. With no exemplars for an embedder there is nothing to match against, so its
    annotations keep their class and candidates (still pending review) until a gallery exists.
    Each "rescored" event records the gallery version number it matched against."""
    project = Project.objects.get(pk=project_id)
    classes = classes_by_id(project_id)
    newest = current_version(project_id)
    changed = 0
    for version in set(_pending(project_id).values_list("embedder_version", flat=True).distinct()):
        gallery = load_gallery(project_id=project_id, embedder_version=version, exemplar_ids=newest.exemplar_ids,
                               negative_ids=newest.negative_ids)
        if not len(gallery):
            continue
        matcher = project_matcher(project, embedder_version=version)
        image_ids = list(_pending(project_id).filter(embedder_version=version).values_list("image_id", flat=True).distinct())
        for start in range(0, len(image_ids), 200):
            changed += _rescore_images(project_id, version, image_ids[start:start + 200], gallery, matcher, classes,
                                       newest.number)
    return changed


# pg_advisory_xact_lock(RESCORE_LOCK, project id): one re-score batch of a project at a time.
RESCORE_LOCK = 0x1A4E  # beside the exchange's and uploads' (0x1A4B-0x1A4D)


@transaction.atomic
def _rescore_images(project_id, version, image_ids, gallery, matcher, classes, gallery_version: int) -> int:
    # Two re-scores of a project ran at once on the cpu worker's two processes: the older one
    # (gallery 28) wrote last, and 50 objects kept a deactivated class though the gallery was at
    # 56. Batches now run one at a time, and one computed against a gallery that has since moved
    # on writes nothing: the change that moved it queued a re-score that writes the newest.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [RESCORE_LOCK, project_id])
    counter = Project.objects.filter(pk=project_id).values_list("gallery_version", flat=True).first()
    if counter is None or counter > gallery_version:
        return 0
    rows = list(
        _pending(project_id).filter(embedder_version=version, image_id__in=image_ids)
        .select_for_update(skip_locked=True).order_by("image_id", "id").defer("embedding")
    )
    # The vectors in binary, locked above with their rows (the ORM parsed each one's text).
    vectors = read_vectors(Annotation, "embedding", [a.pk for a in rows])
    changes = []
    for _, group in groupby(rows, key=lambda a: a.image_id):
        annotations = list(group)  # one image at a time: "one object per class" is per image
        matches = matcher.match(np.stack([vectors[a.pk] for a in annotations]), gallery)
        for annotation, match in zip(annotations, matches):
            fields = classification(match, classes)
            changes.append(Update(annotation, {
                "label_class": fields["label_class"], "class_score": fields["class_score"],
                "class_margin": fields["class_margin"], "candidates": fields["candidates"],
            }, AnnotationEvent.Action.RESCORED))
    applied = apply_changes(
        project_id=project_id, changes=changes, actor=None, source=ChangeSource.RESCORE,
        extra_after={"gallery_version": gallery_version},
    )
    return len(applied.updated)
