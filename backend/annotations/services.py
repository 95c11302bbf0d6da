"""Writes for annotations. Each one is atomic, version-checked and leaves one audit event.

Two rules hold here for every write, whoever calls: an image another person has claimed is
refused (`images.claims.guard_write`; a project admin may force it, and the event records the
overridden claim), and only reviewers approve: an annotator's edit leaves the changed part
pending review; a reviewer's or admin's edit is their decision and is accepted."""
from __future__ import annotations

from django.db import transaction

from backend.core import events
from backend.core.errors import DomainError, NotFound, PermissionDenied
from backend.core.locking import check_version
from backend.core.masks import mask_geometry, normalize_mask
from backend.images.claims import guard_write
from backend.images.models import Image
from backend.images.services import refresh_status
from backend.projects.access import ROLE_CAPABILITIES, Capability
from backend.projects.models import LabelClass, Membership, Project

from .models import Annotation, AnnotationEvent, ReviewState, Source

UNSET = object()


def snapshot(annotation: Annotation) -> dict:
    """What the audit trail and live events record of an annotation."""
    return {
        "label_class": annotation.label_class_id,
        "mask_rle": annotation.mask_rle,
        "bbox": annotation.bbox,
        "area": annotation.area,
        "class_review": annotation.class_review,
        "mask_review": annotation.mask_review,
        "class_score": annotation.class_score,
        "candidates": annotation.candidates,
        "version": annotation.version,
    }


def record_event(
    *, annotation: Annotation, actor, action: str, before: dict | None, after: dict | None,
    claim_override: dict | None = None,
) -> None:
    if claim_override is not None:
        # An admin wrote through someone else's claim: the event says whose (in `after`, or in
        # `before` for a deletion, which has no after).
        if after is not None:
            after = {**after, "claim_override": claim_override}
        else:
            before = {**(before or {}), "claim_override": claim_override}
    AnnotationEvent.objects.create(
        project_id=annotation.project_id, image_id=annotation.image_id, annotation_id=annotation.pk,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action, before=before, after=after,
    )
    events.emit(
        annotation.project_id, "annotation.changed", image=annotation.image_id, annotation=annotation.pk,
        action=action, version=None if after is None else after["version"],
    )


def _class_in_project(project: Project, class_id: int | None) -> LabelClass | None:
    if class_id is None:
        return None
    label_class = LabelClass.objects.filter(project=project, pk=class_id).first()
    if label_class is None:
        raise DomainError(f"Class {class_id} does not exist in this project.")
    if not label_class.active:
        raise DomainError(f"Class '{label_class.name}' is inactive.")
    return label_class


def _locked(project: Project, annotation_id: int) -> Annotation:
    # The image (and its claimer) come along unlocked: a claim taken while this write runs
    # simply orders after it.
    annotation = (
        Annotation.objects.select_for_update(of=("self",)).select_related("image", "image__claimed_by")
        .filter(project=project, pk=annotation_id).first()
    )
    if annotation is None:
        raise NotFound("Annotation not found.")
    return annotation


def _capabilities(project: Project, user) -> frozenset[Capability]:
    """What the writer may do here, looked up by the service itself so no caller can skip it."""
    role = Membership.objects.filter(project=project, user_id=getattr(user, "pk", None)).values_list("role", flat=True).first()
    return ROLE_CAPABILITIES.get(role, frozenset())


def _may_write(image: Image, *, user, caps: frozenset[Capability], force: bool) -> dict | None:
    return guard_write(image, user=user, can_override=Capability.MANAGE in caps, force=force)


def _require_review(caps: frozenset[Capability]) -> None:
    if Capability.REVIEW not in caps:
        raise PermissionDenied("Only reviewers and project admins can accept or reject.")


def _current(annotation: Annotation) -> dict:
    from .serializers import AnnotationSerializer

    return AnnotationSerializer(annotation).data


def _commit_change(annotation: Annotation, *, user, action: str, before: dict, claim_override: dict | None = None) -> Annotation:
    """Save a person's change: new version, one audit event, the image's status. A no-op edit
    leaves no version and no event."""
    if snapshot(annotation) == before:
        return annotation
    annotation.version += 1
    annotation.updated_by = user
    annotation.save()
    record_event(annotation=annotation, actor=user, action=action, before=before, after=snapshot(annotation), claim_override=claim_override)
    refresh_status(image=annotation.image)
    return annotation


@transaction.atomic
def create_annotation(
    *, project: Project, image_id: int, user, class_id: int | None, mask_rle: dict | None = None,
    polygons: list | None = None, force: bool = False,
) -> Annotation:
    """A person's new object starts pending review, whoever drew it: a reviewer accepts it like
    any other."""
    image = Image.objects.select_for_update(of=("self",)).select_related("claimed_by").filter(project=project, pk=image_id).first()
    if image is None:
        raise DomainError(f"Image {image_id} does not exist in this project.")
    override = _may_write(image, user=user, caps=_capabilities(project, user), force=force)
    rle = normalize_mask(height=image.height, width=image.width, rle=mask_rle, polygons=polygons)
    bbox, area = mask_geometry(rle)
    annotation = Annotation.objects.create(
        project=project, image=image, label_class=_class_in_project(project, class_id), mask_rle=rle,
        bbox=bbox, area=area, source=Source.HUMAN, created_by=user, updated_by=user,
    )
    record_event(
        annotation=annotation, actor=user, action=AnnotationEvent.Action.CREATED, before=None, after=snapshot(annotation),
        claim_override=override,
    )
    refresh_status(image=image)
    return annotation


@transaction.atomic
def update_annotation(
    *, project: Project, annotation_id: int, user, version: int | None, class_id=UNSET, mask_rle=UNSET, polygons=UNSET,
    force: bool = False,
) -> Annotation:
    annotation = _locked(project, annotation_id)
    caps = _capabilities(project, user)
    override = _may_write(annotation.image, user=user, caps=caps, force=force)
    check_version(annotation, version, current=_current)
    before = snapshot(annotation)
    # A reviewer's edit is their decision; an annotator's edit waits for one (else it would
    # reach an approved-only export unreviewed).
    edited = ReviewState.ACCEPTED if Capability.REVIEW in caps else ReviewState.PENDING
    if class_id is not UNSET and class_id != annotation.label_class_id:
        annotation.label_class = _class_in_project(project, class_id)
        annotation.class_review = edited if annotation.label_class is not None else ReviewState.PENDING
    if mask_rle is not UNSET or polygons is not UNSET:
        image = annotation.image
        annotation.mask_rle = normalize_mask(
            height=image.height, width=image.width,
            rle=None if mask_rle is UNSET else mask_rle, polygons=None if polygons is UNSET else polygons,
        )
        annotation.bbox, annotation.area = mask_geometry(annotation.mask_rle)
        annotation.mask_review = edited
    return _commit_change(annotation, user=user, action=AnnotationEvent.Action.UPDATED, before=before, claim_override=override)


@transaction.atomic
def review_annotation(
    *, project: Project, annotation_id: int, user, version: int | None, target: str, decision: str, force: bool = False,
) -> Annotation:
    if target not in {"class", "mask", "both"}:
        raise DomainError("target must be 'class', 'mask' or 'both'.")
    if decision not in {ReviewState.ACCEPTED, ReviewState.REJECTED, ReviewState.PENDING}:
        raise DomainError("decision must be 'accepted', 'rejected' or 'pending'.")
    annotation = _locked(project, annotation_id)
    caps = _capabilities(project, user)
    _require_review(caps)
    override = _may_write(annotation.image, user=user, caps=caps, force=force)
    check_version(annotation, version, current=_current)
    if decision == ReviewState.ACCEPTED and target in {"class", "both"} and annotation.label_class_id is None:
        raise DomainError("Choose a class before accepting it.")
    before = snapshot(annotation)
    if target in {"class", "both"}:
        annotation.class_review = decision
    if target in {"mask", "both"}:
        annotation.mask_review = decision
    return _commit_change(annotation, user=user, action=AnnotationEvent.Action.REVIEWED, before=before, claim_override=override)


@transaction.atomic
def delete_annotation(*, project: Project, annotation_id: int, user, version: int | None, force: bool = False) -> None:
    annotation = _locked(project, annotation_id)
    override = _may_write(annotation.image, user=user, caps=_capabilities(project, user), force=force)
    check_version(annotation, version, current=_current)
    before = snapshot(annotation)
    image = annotation.image
    record_event(
        annotation=annotation, actor=user, action=AnnotationEvent.Action.DELETED, before=before, after=None,
        claim_override=override,
    )
    annotation.delete()
    refresh_status(image=image)


@transaction.atomic
def accept_all(
    *, project: Project, image_id: int, user, image_version: int | None = None, force: bool = False,
) -> list[Annotation]:
    """Accept every pending class and mask on an image (objects with no class are left pending)."""
    caps = _capabilities(project, user)
    _require_review(caps)
    image = Image.objects.select_for_update(of=("self",)).select_related("claimed_by").filter(project=project, pk=image_id).first()
    if image is None:
        raise NotFound("Image not found.")
    override = _may_write(image, user=user, caps=caps, force=force)
    if image_version is not None:
        check_version(image, image_version)
    changed = []
    for annotation in image.annotations.select_for_update().order_by("id"):
        before = snapshot(annotation)
        if annotation.class_review == ReviewState.PENDING and annotation.label_class_id is not None:
            annotation.class_review = ReviewState.ACCEPTED
        if annotation.mask_review == ReviewState.PENDING:
            annotation.mask_review = ReviewState.ACCEPTED
        if snapshot(annotation) == before:
            continue
        annotation.version += 1
        annotation.updated_by = user
        annotation.save()
        record_event(
            annotation=annotation, actor=user, action=AnnotationEvent.Action.REVIEWED, before=before, after=snapshot(annotation),
            claim_override=override,
        )
        changed.append(annotation)
    refresh_status(image=image)
    return changed
