"""Writes for annotations. Each one is atomic, version-checked and leaves one audit event.

Two rules hold here for every write, whoever calls: an image another person has claimed is
refused (`images.claims.guard_write`; a project admin may force it, and the event records the
overridden claim), and only reviewers approve: an annotator's edit leaves the changed part
pending review; a reviewer's or admin's edit is their decision and is accepted."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.core.errors import Conflict, DomainError, IdempotencyKeyReused, NotFound, PermissionDenied, VersionConflict
from backend.core.locking import check_version
from backend.core.masks import canonical_rle, mask_geometry, normalize_mask
from backend.gallery import learning
from backend.images.claims import guard_write
from backend.images.models import Image
from backend.images.versions import check_api_version
from backend.projects.access import ROLE_CAPABILITIES, Capability
from backend.projects.models import LabelClass, Membership, Project

from . import proposals
from .changes import PROVENANCE, Create, Delete, Update, apply_changes
from .models import MAX_OBJECTS_PER_IMAGE, Annotation, AnnotationEvent, ChangeSource, CreateKey, ReviewState, Source
from .status import refresh_statuses

UNSET = object()


def _class_in_project(project: Project, class_id: int | None) -> LabelClass | None:
    if class_id is None:
        return None
    label_class = LabelClass.objects.filter(project=project, pk=class_id).select_related("parent").first()
    if label_class is None:
        raise DomainError(f"Class {class_id} does not exist in this project.")
    if not label_class.active:
        raise DomainError(f"Class '{label_class.name}' is inactive.")
    if label_class.parent_id is not None and not label_class.parent.active:  # as jobs and the gallery drop it
        raise DomainError(f"Class '{label_class.name}' is an instance of the inactive type '{label_class.parent.name}'.")
    return label_class


def _locked(project: Project, annotation_id: int) -> Annotation:
    # The image (and its claimer) come along unlocked: a claim taken while this write runs
    # simply orders after it.
    annotation = (
        Annotation.objects.select_for_update(of=("self",)).select_related("image", "image__claimed_by", "label_class")
        .defer("embedding").filter(project=project, pk=annotation_id).first()
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


def _commit(annotation: Annotation, fields: dict, *, user, action: str, claim_override: dict | None) -> Annotation:
    """A person's change to one object; a no-op edit leaves no version and no event."""
    apply_changes(
        project_id=annotation.project_id, changes=[Update(annotation, fields, action)], actor=user,
        source=ChangeSource.HUMAN, claim_override=claim_override,
    )
    return annotation


@transaction.atomic
def create_annotation(
    *, project: Project, image_id: int, user, class_id: int | None, mask_rle: dict | None = None,
    polygons: list | None = None, force: bool = False, proposal: str | None = None, key: str | None = None,
) -> Annotation:
    """A person's new object starts pending review, whoever drew it: a reviewer accepts it like
    any other. `proposal`: a segment answer's token; its server-kept evidence for exactly this
    mask (candidates, and the scores if the proposed class was kept) goes on the object.
    `key`: the request's Idempotency-Key; a create sent again with it answers the object the first
    one made, as it is now, with `replayed` set on it (two copies were made, black-box round 17)."""
    image = Image.objects.select_for_update().filter(project=project, pk=image_id).first()  # no join: see claims._locked
    if image is None:
        raise DomainError(f"Image {image_id} does not exist in this project.")
    asked = _request_hash(image.pk, class_id, mask_rle, polygons, proposal) if key is not None else ""
    if key is not None:
        # Under the image's lock: the same create sent twice at once waits here for the first.
        earlier = _created_with(user, key, project=project, image=image, asked=asked)
        if earlier is not None:
            return earlier
    override = _may_write(image, user=user, caps=_capabilities(project, user), force=force)
    if Annotation.objects.filter(image_id=image.pk).count() >= MAX_OBJECTS_PER_IMAGE:  # the image row is locked
        raise DomainError(f"Image {image.pk} already has {MAX_OBJECTS_PER_IMAGE} objects, the most one image holds: "
                          "delete some first.")
    rle = normalize_mask(height=image.height, width=image.width, rle=mask_rle, polygons=polygons)
    bbox, area = mask_geometry(rle)
    fields = {"label_class": _class_in_project(project, class_id), "mask_rle": rle, "bbox": bbox, "area": area,
              "source": Source.HUMAN}
    if proposal:
        fields.update(proposals.take(proposal, project_id=project.pk, image_id=image.pk, user_id=getattr(user, "pk", None),
                                     mask_rle=rle, label_class_id=class_id))
    applied = apply_changes(
        project_id=project.pk, changes=[Create(image.pk, fields)], actor=user, source=ChangeSource.HUMAN,
        claim_override=override,
    )
    created = applied.created[0]
    if key is not None:
        CreateKey.objects.filter(user=user, created_at__lt=timezone.now() - timedelta(days=CreateKey.KEY_DAYS)).delete()
        try:
            with transaction.atomic():
                CreateKey.objects.create(user=user, project=project, key=key, image_id=image.pk,
                                         annotation_id=created.pk, request_hash=asked)
        except IntegrityError:  # the same key on another image at this very moment: this create is undone
            raise Conflict(KEY_ELSEWHERE) from None
    return created


KEY_ELSEWHERE = "This Idempotency-Key was already used for an object on another image: send a new key with each new object."


def _request_hash(image_id, class_id, mask_rle, polygons, proposal) -> str:
    asked = [image_id, class_id, mask_rle, polygons, proposal]
    return hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode()).hexdigest()


def _created_with(user, key: str, *, project: Project, image: Image, asked: str) -> Annotation | None:
    """The object a create with this key made, as it is now (`replayed` set); None for a new key.
    The key used for another image or object, or its object deleted since: a refusal saying so."""
    earlier = CreateKey.objects.filter(user=user, key=key).first()
    if earlier is None:
        return None
    if earlier.project_id != project.pk or earlier.image_id != image.pk:
        raise Conflict(KEY_ELSEWHERE)
    if earlier.request_hash != asked:
        raise IdempotencyKeyReused("This Idempotency-Key was sent before with another object (another class, mask "
                                   "or polygon): send a new key with each new object.")
    annotation = Annotation.objects.select_related("label_class").filter(pk=earlier.annotation_id).first()
    if annotation is None:
        raise Conflict(f"The object this Idempotency-Key made (#{earlier.annotation_id}) was deleted since; nothing "
                       "was created again. Send a new key to create it anew.")
    annotation.replayed = True
    return annotation


def _edited(caps: frozenset[Capability]) -> str:
    # A reviewer's edit is their decision; an annotator's edit waits for one (else it would
    # reach an approved-only export unreviewed).
    return ReviewState.ACCEPTED if Capability.REVIEW in caps else ReviewState.PENDING


@transaction.atomic
def update_annotation(
    *, project: Project, annotation_id: int, user, version: int | None, class_id=UNSET, mask_rle=UNSET, polygons=UNSET,
    force: bool = False,
) -> Annotation:
    annotation = _locked(project, annotation_id)
    caps = _capabilities(project, user)
    override = _may_write(annotation.image, user=user, caps=caps, force=force)
    check_version(annotation, version, current=_current)
    fields: dict = {}
    if class_id is not UNSET and class_id != annotation.label_class_id:
        fields["label_class"] = _class_in_project(project, class_id)
        fields["class_review"] = _edited(caps) if fields["label_class"] is not None else ReviewState.PENDING
    if mask_rle is not UNSET or polygons is not UNSET:
        image = annotation.image
        rle = normalize_mask(
            height=image.height, width=image.width,
            rle=None if mask_rle is UNSET else mask_rle, polygons=None if polygons is UNSET else polygons,
        )
        # The same mask sent back (a client saving the object as it read it) is no mask edit: it
        # approved a pending mask for a reviewer and sent an accepted one back to review for an
        # annotator (black-box round 16b).
        if rle != canonical_rle(annotation.mask_rle):
            fields["mask_rle"] = rle
            fields["bbox"], fields["area"] = mask_geometry(rle)
            fields["mask_review"] = _edited(caps)
    _commit(annotation, fields, user=user, action=AnnotationEvent.Action.UPDATED, claim_override=override)
    if "label_class" in fields:  # a reviewer's class fix can teach the gallery (gallery.learning)
        learning.class_changed(project=project, annotation=annotation, caps=caps)
    return annotation


@transaction.atomic
def review_annotation(
    *, project: Project, annotation_id: int, user, version: int | None, target: str, decision: str, force: bool = False,
) -> Annotation:
    # The review hot route repeats these rules in raw SQL (fast_review.py): change both together.
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
    fields = {}
    if target in {"class", "both"}:
        fields["class_review"] = decision
    if target in {"mask", "both"}:
        fields["mask_review"] = decision
    return _commit(annotation, fields, user=user, action=AnnotationEvent.Action.REVIEWED, claim_override=override)


@transaction.atomic
def delete_annotation(*, project: Project, annotation_id: int, user, version: int | None, force: bool = False) -> None:
    annotation = _locked(project, annotation_id)
    caps = _capabilities(project, user)
    override = _may_write(annotation.image, user=user, caps=caps, force=force)
    if Capability.REVIEW not in caps and ReviewState.ACCEPTED in (annotation.class_review, annotation.mask_review):
        # An annotator's edit sends an accepted object back to review; a deletion took it out of
        # the approved export with no review at all.
        raise PermissionDenied("This object was accepted in review: only a reviewer or admin can delete it. "
                               "Edit it instead (an edit sends it back to review).")
    check_version(annotation, version, current=_current)
    apply_changes(
        project_id=project.pk, changes=[Delete(annotation)], actor=user, source=ChangeSource.HUMAN,
        claim_override=override,
    )


@transaction.atomic
def restore_annotation(
    *, project: Project, annotation_id: int, event_id: int, user, version: int | None, force: bool = False,
) -> Annotation:
    """Bring an object's class and mask back to what they were after one of its audit events
    ("restore this version"). It is a new, audited change (action "restored"), never a rewrite
    of history, and it follows the review rule of any edit: restored parts are the reviewer's
    decision, or pending review when an annotator restores them."""
    try:
        annotation = _locked(project, annotation_id)
    except NotFound:
        return _undelete(project=project, annotation_id=annotation_id, event_id=event_id, user=user, version=version,
                         force=force)
    caps = _capabilities(project, user)
    override = _may_write(annotation.image, user=user, caps=caps, force=force)
    check_version(annotation, version, current=_current)
    event = AnnotationEvent.objects.filter(project=project, annotation_id=annotation.pk, pk=event_id).first()
    if event is None:
        raise NotFound(f"Event {event_id} is not in this object's history.")
    state = event.after if event.after is not None else event.before  # a deletion's last state
    fields: dict = {}
    if state["label_class"] != annotation.label_class_id:
        label_class = None if state["label_class"] is None else LabelClass.objects.filter(project=project, pk=state["label_class"]).first()
        if state["label_class"] is not None and label_class is None:
            raise DomainError("The class of that version has been deleted; it cannot be restored.")
        if label_class is not None and not label_class.active:  # as every other write refuses it
            raise DomainError(f"That version's class '{label_class.name}' is inactive; activate it first.")
        fields["label_class"] = label_class
        fields["class_review"] = _edited(caps) if label_class is not None else ReviewState.PENDING
    if state["mask_rle"] != annotation.mask_rle:
        image = annotation.image
        fields["mask_rle"] = normalize_mask(height=image.height, width=image.width, rle=state["mask_rle"], polygons=None)
        fields["bbox"], fields["area"] = mask_geometry(fields["mask_rle"])
        fields["mask_review"] = _edited(caps)
    if not fields:
        raise DomainError("The object already looks like that version; nothing to restore.")
    return _commit(annotation, fields, user=user, action=AnnotationEvent.Action.RESTORED, claim_override=override)


def _undelete(*, project: Project, annotation_id: int, event_id: int, user, version: int | None,
              force: bool) -> Annotation:
    """A deleted object back under its own id, as it was after one of its events (its deletion's
    last state, or an earlier one): its history stays one. The API answered 404 although the
    trail held every state; only the workspace's undo could re-create it, under a new id.
    `version`: one more than it had when it was deleted (the deletion's own version)."""
    deleted = (AnnotationEvent.objects.filter(project=project, annotation_id=annotation_id,
                                              action=AnnotationEvent.Action.DELETED).order_by("-pk").first())
    if deleted is None:
        raise NotFound("Annotation not found.")
    image = Image.objects.select_for_update().filter(project=project, pk=deleted.image_id).first()
    if image is None:
        raise NotFound("The object's image has been deleted; the object cannot be restored.")
    if Annotation.objects.filter(pk=annotation_id).exists():  # restored meanwhile (the image lock orders us)
        raise VersionConflict("This object was restored by someone else meanwhile. Reload it.")
    # A deletion is a change like any other: it moves the version on. A restore sent at the
    # version someone read before the deletion (to undo an edit) brought back an object another
    # person had deleted meanwhile, with no conflict; only one who knows of the deletion (the
    # undo of it, or a reload of the history) sends the deleted version.
    deleted_version = deleted.before["version"] + 1
    if version is None:
        raise DomainError(f"'version' is required: a deleted object is at version {deleted_version} "
                          "(one more than when it was deleted).")
    if version != deleted_version:
        who = f" by {deleted.actor.username}" if deleted.actor_id else ""
        raise VersionConflict(f"This object was deleted{who} (it is now at version {deleted_version}, not {version}); "
                              f"to bring it back, restore with version {deleted_version}.",
                              extra={"current_version": deleted_version, "deleted": True})
    caps = _capabilities(project, user)
    override = _may_write(image, user=user, caps=caps, force=force)
    event = AnnotationEvent.objects.filter(project=project, annotation_id=annotation_id, pk=event_id).first()
    if event is None:
        raise NotFound(f"Event {event_id} is not in this object's history.")
    state = event.after if event.after is not None else event.before
    label_class = None
    if state["label_class"] is not None:
        label_class = LabelClass.objects.filter(project=project, pk=state["label_class"]).first()
        if label_class is None:
            raise DomainError("The class of that version has been deleted; it cannot be restored.")
        if not label_class.active:
            raise DomainError(f"That version's class '{label_class.name}' is inactive; activate it first.")
    if Annotation.objects.filter(image_id=image.pk).count() >= MAX_OBJECTS_PER_IMAGE:
        raise DomainError(f"Image {image.pk} already has {MAX_OBJECTS_PER_IMAGE} objects, the most one image holds.")
    rle = normalize_mask(height=image.height, width=image.width, rle=state["mask_rle"], polygons=None)
    bbox, area = mask_geometry(rle)
    # Where it came from (a model's proposal keeps its scores and job), as its deletion recorded;
    # deletions recorded before that come back as a person's.
    origin = {name: deleted.before[name] for name in PROVENANCE if name in deleted.before}
    if origin.get("source") not in Source.values:
        origin = {}
    fields = {
        "source": Source.HUMAN, **origin,
        "id": annotation_id, "label_class": label_class, "mask_rle": rle, "bbox": bbox, "area": area,
        "class_score": state.get("class_score"), "candidates": state.get("candidates") or [],
        # restored parts are the restorer's decision, as any edit (pending for an annotator)
        "class_review": _edited(caps) if label_class is not None else ReviewState.PENDING,
        "mask_review": _edited(caps), "version": deleted_version + 1,
    }
    applied = apply_changes(
        project_id=project.pk, changes=[Create(image.pk, fields, action=AnnotationEvent.Action.RESTORED)], actor=user,
        source=ChangeSource.HUMAN, claim_override=override,
    )
    return applied.created[0]


@transaction.atomic
def accept_all(
    *, project: Project, image_id: int, user, image_version: int | None = None, force: bool = False,
    seen: dict[int, int] | None = None,
) -> list[Annotation]:
    """Accept every pending class and mask on an image (objects with no class are left pending).

    `seen` ({object id: version}, what the reviewer's screen showed): an object this would accept
    that is missing from it or at another version refuses the whole call (the image's version
    moves with its objects too, images/versions.py, but a client may not send it)."""
    caps = _capabilities(project, user)
    _require_review(caps)
    image = Image.objects.select_for_update().filter(project=project, pk=image_id).first()  # no join: see claims._locked
    if image is None:
        raise NotFound("Image not found.")
    override = _may_write(image, user=user, caps=caps, force=force)
    if image_version is not None:
        check_api_version(image, image_version)
    changes, unseen = [], []
    # No embeddings: nothing here reads them, and the ORM parses each from text (~0.5 ms).
    for annotation in image.annotations.select_for_update().defer("embedding").order_by("id"):
        fields = {}
        if annotation.class_review == ReviewState.PENDING and annotation.label_class_id is not None:
            fields["class_review"] = ReviewState.ACCEPTED
        if annotation.mask_review == ReviewState.PENDING:
            fields["mask_review"] = ReviewState.ACCEPTED
        if fields:
            if seen is not None and seen.get(annotation.pk) != annotation.version:
                unseen.append(annotation)
            changes.append(Update(annotation, fields, AnnotationEvent.Action.REVIEWED))
    if not changes and not unseen and not image.annotations.exists():
        # No objects at all: reviewed, nothing to label (it stayed pre-labeled and came back).
        refresh_statuses([image.pk], reviewed={image.pk})
    if unseen:
        raise VersionConflict(
            f"{len(unseen)} object{'s' if len(unseen) > 1 else ''} on this image changed or appeared since you loaded it; "
            "nothing was accepted. Look at them and accept again.",
            extra={"changed": [a.pk for a in unseen], "current": [_current(a) for a in unseen]},
        )
    applied = apply_changes(
        project_id=project.pk, changes=changes, actor=user, source=ChangeSource.HUMAN, claim_override=override,
    )
    return applied.updated
