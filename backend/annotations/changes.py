"""The one writer of annotations and their audit trail.

Every change to an Annotation — a person's edit or review, accept-all, a job's proposals,
re-scoring, an import, a restore — goes through `apply_changes`: it bumps versions, writes one
AnnotationEvent per changed object with its source and before/after, re-derives the review
status of the images it touched and announces the changes live, all in the caller's
transaction. Nothing outside this app writes Annotation or AnnotationEvent rows (a test holds
that line); deleting a whole project is a database cascade and needs no events.

The review hot route records the same rows in raw SQL on its own connection: record_review_raw
below, and fast_review's one-statement review (the plain case: the row and its event in one
autocommit statement); tests/backend/test_api_hot_paths.py compares both with this path.

Callers lock what they change first (the image row, then its annotations, in id order) and
decide *what* changes (permissions, claims, version checks live in services.py, jobs and the
importer); this module decides *how* a change is recorded.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from backend.core import events
from backend.core.bulk_sql import insert_many, update_many

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


# Where an object came from; no edit changes these. A deletion records them so that a restore
# (services._undelete, the workspace's undo) brings back the model's proposal as it was, not a
# person's drawing without its scores.
PROVENANCE = ("source", "det_score", "det_phrase", "mask_score", "class_margin", "job_id")


def provenance(annotation: Annotation) -> dict:
    return {name: getattr(annotation, name) for name in PROVENANCE}


@dataclass
class Create:
    """A new object on `image_id` with these Annotation columns (project and image are set here)."""

    image_id: int
    fields: dict
    action: str = Action.CREATED  # RESTORED: a deleted object brought back under its own id


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
        applied.created = insert_many(Annotation, rows)  # a job's or an import's many rows: binary COPY
        trail += [_event(a, person, change.action, source, None, snapshot(a), claim_override, extra_after)
                  for a, change in zip(applied.created, creates)]

    # Images whose status may have moved: any with a created or deleted object, and those where
    # an updated object's settled/started standing changed (else its counts, hence its status,
    # are what they were: a reviewer flipping accepted <-> rejected costs no status queries).
    restatus: set[int] = {a.image_id for a in applied.created}
    # Updated rows are written after the loop, one statement per set of columns (re-scoring
    # changes thousands at once); by pk, so an object changed twice is written once, as it ends.
    unsaved: dict[tuple[str, ...], dict[int, Annotation]] = {}
    for change in changes:
        if isinstance(change, Update):
            annotation = change.annotation
            before = snapshot(annotation)
            was = _standing(annotation)
            for name, value in change.fields.items():
                setattr(annotation, name, value)
            if snapshot(annotation) == before:
                continue
            annotation.version += 1
            columns = [*change.fields, "version", "updated_at"]
            if source == ChangeSource.HUMAN:
                annotation.updated_by = person
                columns.append("updated_by")
            if _standing(annotation) != was or {"image", "image_id"} & set(change.fields):
                restatus.add(annotation.image_id)
            unsaved.setdefault(tuple(columns), {})[annotation.pk] = annotation
            applied.updated.append(annotation)
            trail.append(_event(annotation, person, change.action, source, before, snapshot(annotation),
                                claim_override, extra_after))
        elif isinstance(change, Delete):
            annotation = change.annotation
            trail.append(_event(annotation, person, Action.DELETED, source,
                                {**snapshot(annotation), **provenance(annotation)}, None, claim_override, extra_after))
            applied.deleted.append(annotation.pk)
            restatus.add(annotation.image_id)
    for columns, rows in unsaved.items():
        update_many(Annotation, list(rows.values()), list(columns))
    if applied.deleted:
        Annotation.objects.filter(pk__in=applied.deleted).delete()
    insert_many(AnnotationEvent, trail, keys=False)  # nothing reads the events back here

    if announce:
        _announce(project_id, trail)
    touched = restatus | set(examined)
    if refresh_status and touched:
        refresh_statuses(sorted(touched), examined=set(examined))
    return applied


def _standing(annotation: Annotation) -> tuple[bool, bool]:
    return review_flags(annotation.class_review, annotation.mask_review, annotation.source, annotation.updated_by_id)


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
            # Who, when it went through someone's claim (an admin's forced edit): the holder is told.
            overrode = "claim_override" in (e.after or {}) or "claim_override" in (e.before or {})
            events.emit(
                project_id, "annotation.changed", image=e.image_id, annotation=e.annotation_id, action=e.action,
                source=e.source, version=None if e.after is None else e.after["version"],
                **({"by": e.actor.username} if overrode and e.actor_id else {}),
            )
        return
    images = sorted({e.image_id for e in trail})
    for start in range(0, len(images), 1_000):
        events.emit(project_id, "annotations.bulk", images=images[start:start + 1_000], count=len(trail))


# ------------------------------------------------------------------ one person's review, raw
#
# The review hot route (hot_routes.py, fast_review.py) records a decision on one locked row
# without the ORM: one UPDATE, one event INSERT, and the image status re-derived only when the
# row's settled/started standing changed. Same columns, same event, same live notices as
# apply_changes with one Update from a person.


def review_flags(class_review: str, mask_review: str, source: str, updated_by_id) -> tuple[bool, bool]:
    """(settled, started) of one row, as status.py counts them."""
    from .models import ReviewState, Source

    pending = ReviewState.PENDING
    settled = class_review != pending and mask_review != pending
    started = class_review != pending or mask_review != pending or source == Source.HUMAN or updated_by_id is not None
    return settled, started


async def record_review_raw(conn, *, project_id: int, row: dict, fields: dict, actor_id: int) -> tuple[dict, list]:
    """Write `fields` (class_review / mask_review) on the locked `row` (the snapshot columns plus
    image_id, source, updated_by_id) inside the caller's transaction on `conn`. Returns the
    after-state (version, updated_at) and the live notices to publish once committed."""
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from backend.images.models import Image
    from backend.images.versions import last_event_sql

    from .status import derive

    before = {k: row[k] for k in ("label_class", "mask_rle", "bbox", "area", "class_review", "mask_review",
                                  "class_score", "candidates", "version")}
    after = {**before, **fields, "version": row["version"] + 1}
    now = timezone.now()
    ann_t, event_t, image_t = Annotation._meta.db_table, AnnotationEvent._meta.db_table, Image._meta.db_table
    sets = ", ".join(f"{name} = %s" for name in fields)
    await conn.execute(
        f"UPDATE {ann_t} SET {sets}, version = %s, updated_at = %s, updated_by_id = %s WHERE id = %s",
        (*fields.values(), after["version"], now, actor_id, row["id"]),
    )
    await conn.execute(
        f"INSERT INTO {event_t} (project_id, image_id, annotation_id, actor_id, action, source, before, after, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (project_id, row["image_id"], row["id"], actor_id, Action.REVIEWED, ChangeSource.HUMAN, Jsonb(before),
         Jsonb(after), now),
    )
    notices = [reviewed_notice(row["image_id"], row["id"], after["version"])]
    was = review_flags(row["class_review"], row["mask_review"], row["source"], row["updated_by_id"])
    now_flags = review_flags(after["class_review"], after["mask_review"], row["source"], actor_id)
    if was != now_flags:  # otherwise the image's counts, hence its status, cannot have changed
        pending = "pending"
        counts = await (await conn.execute(
            f"SELECT i.status, count(a.id), count(a.id) FILTER (WHERE a.class_review <> %s AND a.mask_review <> %s), "
            f"count(a.id) FILTER (WHERE a.class_review <> %s OR a.mask_review <> %s OR a.source = 'human' "
            f"OR a.updated_by_id IS NOT NULL) FROM {image_t} i LEFT JOIN {ann_t} a ON a.image_id = i.id "
            "WHERE i.id = %s GROUP BY i.id",
            (pending, pending, pending, pending, row["image_id"]),
        )).fetchone()
        status = derive(counts[0], total=counts[1], settled=counts[2], started=counts[3])
        if status != counts[0]:
            moved = await (await conn.execute(
                f"UPDATE {image_t} SET status = %s, version = version + 1, updated_at = now() WHERE id = %s "
                f"RETURNING version + {last_event_sql(image_t + '.id')}",  # the API's version (images/versions.py)
                (status, row["image_id"]),
            )).fetchone()
            notices.append(("image.status", {"image": row["image_id"], "status": status, "version": moved[0]}))
    return {"version": after["version"], "updated_at": now, "updated_by_id": actor_id, **fields}, notices


def reviewed_notice(image_id: int, annotation_id: int, version: int) -> tuple[str, dict]:
    """The live notice of a person's review written by the hot route (as apply_changes sends it)."""
    return ("annotation.changed", {"image": image_id, "annotation": annotation_id, "action": Action.REVIEWED,
                                   "source": ChangeSource.HUMAN, "version": version})


def publish(project_id: int, notices: list) -> None:
    """Send what record_review_raw returned, after its transaction committed (events.emit's
    payloads, without Django's on_commit, which knows nothing of that connection)."""
    for event_type, data in notices:
        events._publish(project_id, {"type": event_type, "project": project_id, **data})
