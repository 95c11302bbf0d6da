"""A gallery that learns (issue 15, opt-in per project: Project.learn_from_reviews).

What counts: a person with the review role (reviewer or admin) changes an object's class to
another class (PATCH of label_class; their edit is their decision). Then the object's masked
crop joins the gallery as a learned exemplar of the new class, and the class they moved it
away from becomes a hard negative for that crop. What does not: an annotator's edit (pending,
nobody decided yet), accept / reject / accept-all (they keep the class), clearing a class
(it says what the object is not, but not what it is, and it may be no tool at all), restoring
an older version, jobs, imports and re-scoring.

The work runs after commit as a Celery task on the cpu queue. It reads the change from the
audit trail (the event whose after-state has that version), so it learns exactly the mask and
class the reviewer saw, even if the object changed again or was deleted since; the event id
makes it idempotent (a retried task adds nothing twice).
"""
from __future__ import annotations

import hashlib
import io

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.annotations.models import Annotation, AnnotationEvent
from backend.core import outbox
from backend.core.files import create_with_file
from backend.projects.access import ROLE_CAPABILITIES, Capability
from backend.projects.models import LabelClass, Membership, Project

from .models import ExemplarSource, GalleryEmbedding, GalleryImage, HardNegative

TASK_NAME = "gallery.learn_from_change"


def class_changed(*, project: Project, annotation: Annotation, caps) -> None:
    """Hook of annotations.services after a person changed an object's class (inside that
    transaction): queue the learning on commit when the project learns and the person reviews."""
    if not project.learn_from_reviews or Capability.REVIEW not in caps or annotation.label_class_id is None:
        return
    annotation_id, version = annotation.pk, annotation.version

    def send() -> None:
        from .tasks import learn_from_change

        outbox.publish(learn_from_change, args=[annotation_id, version], queue=settings.QUEUE_CPU)

    transaction.on_commit(send)


def learn_from_change(*, annotation_id: int, version: int) -> dict:
    """The learning itself; returns what it added (empty when there was nothing to learn)."""
    event = (
        AnnotationEvent.objects.select_related("image", "actor")
        .filter(annotation_id=annotation_id, after__version=version).exclude(action=AnnotationEvent.Action.DELETED)
        .first()
    )
    if event is None or _learned(event.pk):
        return {}
    project = Project.objects.get(pk=event.project_id)
    new_id, old_id = event.after.get("label_class"), (event.before or {}).get("label_class")
    if not project.learn_from_reviews or new_id is None or new_id == old_id or not _reviews(project, event.actor):
        return {}
    new_class = LabelClass.objects.filter(project=project, pk=new_id).first()
    old_class = LabelClass.objects.filter(project=project, pk=old_id).first() if old_id is not None else None
    if new_class is None:
        return {}
    png, width, height = crop_png(event.image, event.after["mask_rle"], event.after["bbox"])
    stored = _stored_embedding(annotation_id, event)
    with transaction.atomic():
        # One learner per project at a time: the idempotency check below then holds.
        Project.objects.select_for_update().only("pk").get(pk=project.pk)
        if _learned(event.pk):
            return {}
        exemplar, created = _exemplar(project, new_class, event, png, width, height)
        if stored is not None:
            GalleryEmbedding.objects.get_or_create(
                gallery_image=exemplar, embedder_version=stored[0], defaults={"vector": stored[1]})
        retracted = _retract(project, annotation_id, old_id=old_id, new_id=new_id)
        negative = _negative(project, old_class, exemplar, event) if old_class is not None else None
        if created or negative is not None or retracted:
            from backend.projects.services import gallery_changed

            gallery_changed(project.pk)  # one new gallery version per learned change; re-scores on commit
    return {"exemplar": exemplar.pk if created else None, "negative": negative.pk if negative else None,
            "retracted": retracted}


def _learned(event_id: int) -> bool:
    return (GalleryImage.objects.filter(learned_event_id=event_id).exists()
            or HardNegative.objects.filter(learned_event_id=event_id).exists())


def _reviews(project: Project, actor) -> bool:
    """The role is checked again here: the task learns only from someone who may decide."""
    role = Membership.objects.filter(project=project, user=actor).values_list("role", flat=True).first() if actor else None
    return Capability.REVIEW in ROLE_CAPABILITIES.get(role, frozenset())


def crop_png(image, mask_rle: dict, bbox: list) -> tuple[bytes, int, int]:
    """The object's masked crop with the jobs' recipe (ml make_crop with the embedder config's
    crop mode, background and padding), as PNG bytes."""
    from PIL import Image as PILImage

    from backend.jobs.engine import EngineNotConfigured, load_config, read_rgb
    from ml.config import EmbedderConfig
    from ml.embedders.crops import make_crop
    from ml.masks import decode_rle

    try:
        cfg = load_config().embedder
    except EngineNotConfigured:
        cfg = EmbedderConfig()  # the defaults the jobs would use; the crop is re-embedded anyway
    x, y, w, h = bbox
    crop = make_crop(read_rgb(image.file.name), [x, y, x + w, y + h], decode_rle(mask_rle),
                     cfg.crop_mode, cfg.background, cfg.crop_padding)
    out = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(crop)).save(out, format="PNG")
    return out.getvalue(), crop.shape[1], crop.shape[0]


def _stored_embedding(annotation_id: int, event: AnnotationEvent) -> tuple[str, list] | None:
    """The object's crop embedding from its job, if it still describes the learned mask: the
    embedding is of the model's mask, so a mask the reviewer redrew needs a new one (the gpu
    worker embeds the stored crop, like any exemplar without a vector)."""
    row = Annotation.objects.filter(pk=annotation_id).values("embedding", "embedder_version").first()
    if row is None or row["embedding"] is None or not row["embedder_version"]:
        return None
    created = AnnotationEvent.objects.filter(
        annotation_id=annotation_id, action=AnnotationEvent.Action.CREATED).values_list("after", flat=True).first()
    if created is None or created.get("mask_rle") != event.after.get("mask_rle"):
        return None
    return row["embedder_version"], [float(v) for v in row["embedding"]]


def _exemplar(project, label_class, event, png: bytes, width: int, height: int) -> tuple[GalleryImage, bool]:
    """The learned exemplar; the same crop already in the class (a fix made twice) is reused."""
    sha = hashlib.sha256(png).hexdigest()
    existing = GalleryImage.objects.filter(label_class=label_class, sha256=sha, removed_at__isnull=True).first()
    if existing is not None:
        return existing, False
    created = create_with_file(
        f"projects/{project.pk}/gallery", "png", png,
        lambda stored: GalleryImage.objects.create(
            project=project, label_class=label_class, file=stored, content_type="image/png", sha256=sha,
            original_name=f"learned/image-{event.image_id}-object-{event.annotation_id}.png",
            width=width, height=height, uploaded_by=event.actor, source=ExemplarSource.LEARNED,
            source_image_id=event.image_id, source_annotation_id=event.annotation_id, learned_event_id=event.pk,
        ),
    )
    if created is None:  # the same crop landed meanwhile (cannot under the project lock, but be safe)
        return GalleryImage.objects.get(label_class=label_class, sha256=sha, removed_at__isnull=True), False
    return created, True


def _negative(project, label_class, crop: GalleryImage, event) -> HardNegative | None:
    if HardNegative.objects.filter(label_class=label_class, crop=crop, removed_at__isnull=True).exists():
        return None
    return HardNegative.objects.create(
        project=project, label_class=label_class, crop=crop, reviewer=event.actor, source_image_id=event.image_id,
        source_annotation_id=event.annotation_id, learned_event_id=event.pk,
    )


def _retract(project, annotation_id: int, *, old_id: int | None, new_id: int) -> int:
    """The newest word on an object wins: what this object taught before and the reviewer now
    contradicts (it was learned as the class they moved it away from, or as not the class they
    chose) leaves the gallery."""
    now = timezone.now()
    removed = 0
    if old_id is not None:
        removed += GalleryImage.objects.filter(
            project=project, source=ExemplarSource.LEARNED, source_annotation_id=annotation_id, label_class_id=old_id,
            removed_at__isnull=True,
        ).update(removed_at=now)
    removed += HardNegative.objects.filter(
        project=project, source_annotation_id=annotation_id, label_class_id=new_id, removed_at__isnull=True,
    ).update(removed_at=now)
    return removed
