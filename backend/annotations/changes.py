"""The one writer of annotations and their audit trail.

Every change to an Annotation — a person's edit or review, accept-all, a job's proposals,
re-scoring, an import, a restore — goes through `apply_changes`: it bumps versions, writes one
AnnotationEvent per changed object with its source and before/after, re-derives the review
status of the images it touched and announces the changes live, all in the caller's
transaction. Nothing outside this app writes Annotation or AnnotationEvent rows (a test holds
that line); deleting a whole project is a database cascade and needs no events.

Callers lock what they change first (the image row, then its annotations, in id order) and
decide *what* changes (permissions, claims, version checks live in services.py, jobs and the
importer); this module decides *how* a change is recorded.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from backend.core import events

from .models import Annotation, AnnotationEvent, ChangeSource
from .status import refresh_statuses

Action = AnnotationEvent.Action
# Above this many changes in one call, live clients get one "annotations.bulk" notice per
# image set instead of one event per object (an import of a million objects must not queue a
# million on-commit callbacks).
LIVE_EVENTS_MAX = 2_000


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


@dataclass
class Create:
    """A new object on `image_id` with these Annotation columns (project and image are set here)."""

    image_id: int
    fields: dict


@dataclass
class Update:
    """Set these columns on a locked annotation; `action` names the kind of change in the trail."""

    annotation: Annotation
    fields: dict
    action: str = Action.UPDATED


@dataclass
class Delete:
    annotation: Annotation


Change = Create | Update | Delete


@dataclass
class Applied:
    created: list[Annotation] = field(default_factory=list)
    updated: list[Annotation] = field(default_factory=list)  # only those that really changed
    deleted: list[int] = field(default_factory=list)

    @property
    def changed(self) -> list[Annotation]:
        return self.created + self.updated


def apply_changes(
    *, project_id: int, changes: Sequence[Change], actor, source: str, examined: Iterable[int] = (),
    claim_override: dict | None = None, extra_after: dict | None = None, refresh_status: bool = True,
    announce: bool = True,
) -> Applied:
    """Write `changes` as `actor` (None for jobs and re-scoring) from `source`.

    - An update that leaves the object as it was writes nothing (no version, no event).
    - A person's change (source human) stamps `updated_by`: from then on jobs keep the object and
      re-scoring leaves its class alone. Other sources never do.
    - `examined`: images a model looked at, even if it changed nothing on them (they leave "new").
    - `claim_override`: an admin wrote through someone else's claim; every event says whose.
    - `extra_after`: recorded with each event's after-state (e.g. the gallery version re-scoring used).
    - `refresh_status=False`: the caller re-derives image status itself once at the end
      (`status.refresh_statuses`), as a batched import does.
    - `announce=False`: no per-object live events; the caller announces the whole change once
      (a big import's import.finished).
    """
    if source not in ChangeSource.values:
        raise ValueError(f"unknown change source {source!r}")
    person = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    applied = Applied()
    trail: list[AnnotationEvent] = []

    creates = [c for c in changes if isinstance(c, Create)]
    if creates:
        rows = []
        for change in creates:
            row = Annotation(project_id=project_id, image_id=change.image_id, **change.fields)
            if source == ChangeSource.HUMAN:
                row.created_by = row.updated_by = person
            elif "created_by" not in change.fields:
                row.created_by = person
            rows.append(row)
        applied.created = Annotation.objects.bulk_create(rows)
        trail += [_event(a, person, Action.CREATED, source, None, snapshot(a), claim_override, extra_after)
                  for a in applied.created]

    for change in changes:
        if isinstance(change, Update):
            annotation = change.annotation
            before = snapshot(annotation)
            for name, value in change.fields.items():
                setattr(annotation, name, value)
            if snapshot(annotation) == before:
                continue
            annotation.version += 1
            columns = [*change.fields, "version", "updated_at"]
            if source == ChangeSource.HUMAN:
                annotation.updated_by = person
                columns.append("updated_by")
            annotation.save(update_fields=columns)
            applied.updated.append(annotation)
            trail.append(_event(annotation, person, change.action, source, before, snapshot(annotation),
                                claim_override, extra_after))
        elif isinstance(change, Delete):
            annotation = change.annotation
            trail.append(_event(annotation, person, Action.DELETED, source, snapshot(annotation), None,
                                claim_override, extra_after))
            applied.deleted.append(annotation.pk)
    if applied.deleted:
        Annotation.objects.filter(pk__in=applied.deleted).delete()
    AnnotationEvent.objects.bulk_create(trail)

    if announce:
        _announce(project_id, trail)
    touched = {e.image_id for e in trail} | set(examined)
    if refresh_status and touched:
        refresh_statuses(sorted(touched), examined=set(examined))
    return applied


def _event(annotation: Annotation, actor, action: str, source: str, before: dict | None, after: dict | None,
           claim_override: dict | None, extra_after: dict | None) -> AnnotationEvent:
    if after is not None and extra_after:
        after = {**after, **extra_after}
    if claim_override is not None:
        # Whose claim was overridden: in `after`, or in `before` for a deletion (no after).
        if after is not None:
            after = {**after, "claim_override": claim_override}
        else:
            before = {**(before or {}), "claim_override": claim_override}
    return AnnotationEvent(
        project_id=annotation.project_id, image_id=annotation.image_id, annotation_id=annotation.pk,
        actor=actor, action=action, source=source, before=before, after=after,
    )


def _announce(project_id: int, trail: list[AnnotationEvent]) -> None:
    if len(trail) <= LIVE_EVENTS_MAX:
        for e in trail:
            events.emit(
                project_id, "annotation.changed", image=e.image_id, annotation=e.annotation_id, action=e.action,
                source=e.source, version=None if e.after is None else e.after["version"],
            )
        return
    images = sorted({e.image_id for e in trail})
    for start in range(0, len(images), 1_000):
        events.emit(project_id, "annotations.bulk", images=images[start:start + 1_000], count=len(trail))
