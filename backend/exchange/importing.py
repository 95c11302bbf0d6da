"""Applying an import in two streamed passes, so memory stays flat whatever the file's size.

Pass 1 (stage "checking") streams the upload through the format's parser, resolves each item's
image and class, validates its geometry and spools the planned row (compressed RLE, bbox, area,
scores) to a temp file on disk. It writes nothing to the database and keeps only the first
MAX_ERRORS errors plus a count. Pass 2 (stage "writing") runs only when pass 1 found no error:
it reads the spool back and bulk-inserts annotations and their audit events in batches, all in
one transaction, so any error anywhere still means nothing is applied.
"""
from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO

from django.db import IntegrityError, connection, reset_queries, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from backend.annotations.changes import LIVE_EVENTS_MAX, Create, apply_changes
from backend.annotations.models import Annotation, ChangeSource, ReviewState, Source
from backend.annotations.status import refresh_statuses
from backend.core import geometry as gate
from backend.core.masks import canonical_rle
from backend.images.models import Image
from backend.projects.colors import distinct_colors
from backend.projects.models import LabelClass
from backend.projects.serializers import clean_class_name

from . import geometry
from .image_objects import ImageObjects, TooManyObjects
from .formats import jsonstream, parser_for
from .formats.base import ItemError, Record, finite_number, rasterize
from .image_names import GENERATED_ERROR, entry_name, images_by_name, match_image
from .import_upload import UploadEntry, open_upload
from .models import ImportJob, JobStatus

MAX_ERRORS = 500  # errors kept on the job; the rest are only counted
MAX_NEW_CLASSES = 1_000
BATCH = 2_000  # rows per bulk insert, and items between progress reports
CHECKING, WRITING = "checking", "writing"

# How a format brings an object back, where that is not the object (image_objects.ImageObjects).
CARRIED = {"yolo": geometry.as_yolo_carries}

Progress = Callable[[str, int, int], None]  # (stage, done, total); total 0 = not known yet


class ImportAborted(Exception):
    """Pass 2 found the project changed under it (an image deleted); nothing was applied."""


# pg_advisory_xact_lock(IMPORT_WRITE_LOCK, job id): one import's pass 2 at a time.
IMPORT_WRITE_LOCK = 0x1A4B


class AlreadyApplied(Exception):
    """Another run of the same import committed it first (two messages for one job, both retried
    after a database outage, both took the job back); this run applies nothing."""


# --------------------------------------------------------------------------- errors


def without_nul(text) -> str:
    """PostgreSQL text and jsonb cannot hold U+0000 or a lone surrogate (a LabelMe file's
    "\\ud800"): an error that quotes a name from the file shows them as escapes ('\\u0000',
    '\\ud800'), else the job could not record its errors and failed as an internal error."""
    text = str(text).replace("\x00", "\\u0000")
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def stored_text(text: str) -> str:
    """Free text kept on a row: without what PostgreSQL cannot hold (NUL, lone surrogates)."""
    text = text.replace("\x00", "")
    return text if text.isascii() else text.encode("utf-8", "ignore").decode("utf-8")


class Errors:
    """The first `limit` errors, and how many there were: a file of 1M bad items costs 500."""

    def __init__(self, limit: int = MAX_ERRORS):
        self.limit, self.kept, self.count = limit, [], 0

    def add(self, item: str, error: str) -> None:
        self.count += 1
        if len(self.kept) < self.limit:
            self.kept.append({"item": without_nul(item), "error": without_nul(error)})

    def __bool__(self) -> bool:
        return self.count > 0

    def as_list(self) -> list[dict]:
        more = self.count - len(self.kept)
        return self.hints() + self.kept + ([{"item": "…", "error": f"and {more} more errors"}] if more else [])

    def hints(self) -> list[dict]:
        """What to do first, when the errors say it (a list of 24 "not in this project" lines said
        nothing of uploading the images, which an export zip holds, before its annotations)."""
        missing = [e for e in self.kept if e["error"].endswith("is not in this project")]
        if not missing:
            return []
        hints = [{"item": "hint", "error": f"{len(missing)} item{'s name images' if len(missing) > 1 else ' names an image'} "
                  "this project does not have. Imports add objects to the project's images, matched by file name: upload "
                  "the images first (an export zip with images can be uploaded as it is on the Upload page), then import "
                  "again."}]
        generated = next((m for e in missing if (m := GENERATED_ERROR.search(e["error"]))), None)
        if generated:
            # 'x_41.png' is how an export names one of two images called 'x.png' (a/x.png, b/x.png), by
            # its id in the project exported: another project has other ids (black-box round 15).
            stem, number, ext = generated.groups()
            hints.append({"item": "hint", "error": (
                f"Names like '{stem}_{number}.{ext}' are how an export names images that share one name ('{stem}.{ext}' "
                f"in two folders), by their ids in the project it came from ({number} there). Into another project, "
                "export with “Include the image files” and upload that zip (images and objects come together).")})
        return hints


# --------------------------------------------------------------------------- the import


def apply_import(*, job: ImportJob, progress: Progress, batch: int = BATCH) -> tuple[list[dict], dict]:
    """(errors, result): errors (at most MAX_ERRORS + 1 entries) mean nothing was applied."""
    errors = Errors()
    with tempfile.TemporaryFile("w+b") as spool:
        with open_upload(job) as (entries, upload_errors):
            for error in upload_errors:
                errors.add(error["item"], error["error"])
            kept = _shallow_entries(entries, errors)
            if entries and not kept:  # every document refused: a parser would only add "no file found"
                return errors.as_list(), {"error_count": errors.count}
            plan = _check(job, kept, errors, spool, progress, batch)
        if errors:
            return errors.as_list(), {"error_count": errors.count}
        try:
            result = _write(job, plan, spool, progress, batch)
        except (ImportAborted, TooManyObjects) as exc:
            return [{"item": job.upload_name or "upload", "error": str(exc)}], {"error_count": 1}
        except IntegrityError as exc:  # a row's class (or image) went away after it was checked:
            if not _foreign_key_violation(exc):  # the (deferred) foreign key refuses the commit
                raise
            names = {c.pk: c.name for c in plan.classes.values() if c.pk is not None}
            return [{"item": job.upload_name or "upload", "error": _vanished(exc, names)}], {"error_count": 1}
    progress(WRITING, plan.count, plan.count)
    return [], result


def _shallow_entries(entries: list[UploadEntry], errors: Errors) -> list[UploadEntry]:
    """The entries, less the JSON documents nested deeper than RAZMETKA_MAX_JSON_DEPTH (the
    API's limit), each refused with an error before any parser builds a Python object from it
    (ijson's memory grows with the square of the depth; json and PyYAML recurse per level)."""
    kept = []
    for entry in entries:
        problem = jsonstream.too_deep(entry) if entry.name.lower().endswith(".json") else None
        if problem:
            errors.add(problem.item, problem.error)
        else:
            kept.append(entry)
    return kept


@dataclass
class Plan:
    classes: dict[str, LabelClass]
    missing: dict[str, str]  # lowercased name -> name, classes to create
    image_ids: set[int]
    count: int = 0  # rows in the spool
    used: set[str] = field(default_factory=set)  # lowercased names of the classes the rows use
    # image id -> (the file's entry naming it, its file name), for records that say (Record.image_key)
    image_entries: dict[int, tuple[tuple, str]] = field(default_factory=dict)


def _check(job: ImportJob, entries: list[UploadEntry], errors: Errors, spool: IO[bytes], progress: Progress,
           batch: int) -> Plan:
    """Pass 1: validate every item, spool the valid rows; nothing is written to the database."""
    project = job.project
    images = images_by_name(project)
    plan = Plan(classes={c.name.lower(): c for c in LabelClass.objects.filter(project=project).select_related("parent")}, missing={},
                image_ids=set())
    create_missing = bool(job.options.get("create_missing_classes"))
    progress(CHECKING, 0, 0)
    seen = 0
    for item in parser_for(job.format).parse(entries):
        seen += 1
        if isinstance(item, ItemError):
            errors.add(item.item, item.error)
        else:
            row, problem = _plan(item, images, plan, create_missing)
            if problem:
                errors.add(item.item, problem)
            elif not errors:  # after the first error nothing will be written: stop spooling
                spool.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
                plan.image_ids.add(row[0])
                plan.used.add(row[1])
                plan.count += 1
        if seen % batch == 0:
            progress(CHECKING, seen, 0)
    if not seen and not errors:
        errors.add(job.upload_name or "upload", "the file contains no annotations")
    progress(CHECKING, seen, seen)
    return plan


def _plan(record: Record, images, plan: Plan, create_missing: bool) -> tuple[list | None, str | None]:
    """(spool row, None) or (None, why the item is refused)."""
    image, problem = match_image(record.file_name, images, record.file_path)
    if problem:
        return None, problem
    if record.image_key is not None:
        first = plan.image_entries.setdefault(image[0], (record.image_key, record.file_name))
        if first[0] != record.image_key:  # 'i.png' and 'I.PNG': which entry's objects are the image's?
            return None, (f"image '{record.file_name}' is ambiguous: it and the file's entry '{first[1]}' "
                          f"({entry_name(first[0])}) both name image {image[0]} of the project")
    name = (record.class_name or "").strip()
    if not name:
        return None, "the object has no class name"
    if "\x00" in name:  # PostgreSQL text cannot hold it; never a class of that name
        return None, f"class name '{without_nul(name)}' contains a NUL character (U+0000)"
    if stored_text(name) != name:
        return None, f"class name '{without_nul(name)}' contains an unpaired surrogate (\\ud800-\\udfff)"
    try:  # one spelling, as POST /classes/ and gallery folders fold it: "ｃａｔ" and "c\u200bat" are "cat"
        name = clean_class_name(name, new=False)  # a new class's letters are checked where it is planned
    except ValidationError as exc:
        why = str(exc.detail[0])
        return None, "the object has no class name" if why.endswith("needs a name.") else f"class name {name!r}: {why}"
    try:
        instance = clean_class_name(record.instance_name).lower() if record.instance_name else ""
    except ValidationError:
        instance = ""
    if instance and instance in plan.classes:
        # Exports name an instance as its type plus an attribute: an instance this project
        # has comes back as itself; an unknown one falls back to its type.
        name = plan.classes[instance].name
    key = name.lower()
    inactive = _inactive(plan.classes.get(key))
    if inactive:  # a person's create refuses such a class; an import (as accepted too) did not
        return None, inactive
    if key not in plan.classes and key not in plan.missing:
        if not create_missing:
            return None, f"unknown class '{name}': tick “Create missing classes” to create it"
        if len(name) > 120:
            return None, f"class name '{name[:40]}…' is longer than 120 characters"
        try:
            clean_class_name(name)  # as a person's new class: no word mixing look-alike alphabets
        except ValidationError as exc:
            return None, f"class name {name!r}: {exc.detail[0]}"
        if len(plan.missing) >= MAX_NEW_CLASSES:
            return None, f"more than {MAX_NEW_CLASSES} new classes; create the classes first"
        plan.missing[key] = name
    image_id, height, width = image
    try:
        rle = _encode(record, height, width)
        bbox, area = gate.rle_geometry(rle)
        rle = canonical_rle(rle)  # a padded RLE (empty runs) is stored as short as its mask allows
    except geometry.GeometryError as exc:
        return None, str(exc)
    except Exception as exc:  # pycocotools/PIL on a malformed mask
        return None, f"the mask could not be decoded: {exc}"
    if area == 0:
        return None, "the mask is empty"
    # Free text that is stored (text, jsonb) loses what PostgreSQL cannot hold.
    ranked = [{"name": stored_text(r.get("name")) if isinstance(r.get("name"), str) else r.get("name"),
               "score": r.get("score") if finite_number(r.get("score")) else None} for r in record.ranked]
    det_phrase = stored_text(record.det_phrase)
    return [image_id, key, rle, bbox, area, record.det_score, record.class_score, ranked, record.box_only,
            det_phrase[:Annotation._meta.get_field("det_phrase").max_length]], None


def _encode(record: Record, height: int, width: int) -> dict:
    """The record's mask as compressed RLE. A lone RLE or polygon shape (what big COCO files are
    made of) goes straight through the geometry gate to RLE, never decoding a full-size mask;
    everything else is rasterized as before."""
    if record.size is not None and tuple(record.size) != (height, width):
        raise geometry.GeometryError(
            f"the file says the image is {record.size[1]}x{record.size[0]}, the project's image is {width}x{height}"
        )
    shape = record.shapes[0] if len(record.shapes) == 1 else None
    try:
        if shape is not None and shape.kind == "rle":
            size = shape.data["size"]
            if size != [height, width]:  # the message the rasterizing path gives
                raise geometry.GeometryError(f"mask size {size} does not match the image size [{height}, {width}]")
            return gate.validate_rle(shape.data, height=height, width=width)
        if shape is not None and shape.kind == "coco_polygons":
            polygons = gate.validate_polygons(shape.data, height=height, width=width, clip=False, tolerance=0.0)
            return gate.polygons_to_rle(polygons, height=height, width=width)
    except gate.GeometryError as exc:  # the item's error names the shape's problem, not an API field
        raise geometry.GeometryError(exc.reason) from None
    return geometry.encode(rasterize(record, height, width))


# --------------------------------------------------------------------------- pass 2


@transaction.atomic
def _write(job: ImportJob, plan: Plan, spool: IO[bytes], progress: Progress, batch: int) -> dict:
    """Pass 2: create the classes, then the spooled rows and their audit events in batches."""
    project, user = job.project, job.created_by
    # Two runs of one import queue here, and the second finds it done. An advisory lock, not the
    # job row's: progress reports update that row from a connection of their own meanwhile.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [IMPORT_WRITE_LOCK, job.pk])
    if not ImportJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).exists():
        raise AlreadyApplied()
    classes = plan.classes
    # The project's classes the rows use, as pass 1 found them; one deleted since is named.
    existing = {classes[key].pk: classes[key].name for key in plan.used if key in classes}
    created_classes = []
    missing = sorted(plan.missing.items())
    for (key, name), color in zip(missing, distinct_colors(project.pk, len(missing))):
        classes[key] = LabelClass.objects.create(project=project, name=name, color=color)
        created_classes.append(name)
    image_ids = sorted(plan.image_ids)
    now = timezone.now()
    for chunk in _chunks(image_ids, 1000):  # in id order, like every writer that locks images
        rows = (Image.objects.select_for_update(of=("self",)).filter(project=project, pk__in=chunk)
                .values_list("id", "original_name", "claimed_by__username", "claimed_by_id", "claim_expires_at"))
        locked = {row[0]: row for row in rows}
        if len(locked) != len(chunk):
            gone = min(set(chunk) - set(locked))
            raise ImportAborted(f"image {gone} was deleted while the import ran; nothing was imported")
        # Someone else's claim holds the image, as for every annotation write (images/claims.py):
        # objects must not appear under a reviewer who is working on it.
        held = [row for row in locked.values() if row[3] and row[3] != getattr(user, "pk", None) and row[4] > now]
        if held:
            _, name, holder, _, until = min(held)
            raise ImportAborted(f"image {name!r} is held by {holder} until {until:%H:%M:%S} UTC (a claim: they are "
                                "working on it); nothing was imported. Import again once they release it.")
    _lock_classes(existing)
    accepted = bool(job.options.get("as_accepted"))
    review = ReviewState.ACCEPTED if accepted else ReviewState.PENDING
    source = Source.HUMAN if accepted else Source.MODEL
    # Per-object live events only for small imports; a big one announces itself once, at the
    # end (import.finished), instead of queueing a million on-commit callbacks.
    live = plan.count <= LIVE_EVENTS_MAX
    box_only, done, already = [], 0, ImageObjects(project.pk, carried=CARRIED.get(job.format))
    spool.seek(0)
    progress(WRITING, 0, plan.count)
    while read := [json.loads(line) for line in islice(spool, batch)]:
        done += len(read)
        rows = already.without(read, classes)
        already.count_added(rows)
        if not rows:
            progress(WRITING, done, plan.count)
            continue
        applied = apply_changes(
            project_id=project.pk, changes=[_create(row, classes, source, review, user) for row in rows],
            actor=user, source=ChangeSource.IMPORT, refresh_status=False, announce=live,
        )
        box_only += [a.pk for a, row in zip(applied.created, rows) if row[8]]
        progress(WRITING, done, plan.count)
        reset_queries()  # with DEBUG on, Django would keep every batch's SQL (megabytes each)
    refresh_statuses(image_ids)
    result = {"annotations": done - already.skipped, "images": len(image_ids), "classes_created": created_classes,
              "box_only": box_only, "already_present": already.skipped}
    # The job is marked done in the same transaction as its writes: a retry after a database
    # outage then knows whether they committed (still "running" = they did not), and never
    # applies them twice.
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, errors=[], result=result,
                                               finished_at=timezone.now())
    return result


def _inactive(label_class: LabelClass | None) -> str | None:
    """Why objects cannot be imported into `label_class` (deactivated, or an instance of a
    deactivated type), or None."""
    if label_class is None:
        return None
    if not label_class.active:
        return f"class '{label_class.name}' is inactive: activate it to import objects of it"
    if label_class.parent_id is not None and not label_class.parent.active:
        return (f"class '{label_class.name}' is an instance of the inactive type '{label_class.parent.name}': "
                "activate the type to import objects of it")
    return None


def _lock_classes(existing: dict[int, str]) -> None:
    """Key-share locks on the classes the rows use (what each row's foreign key would take), so
    none is deleted while the rows are written; one deleted since pass 1 aborts the import."""
    if not existing:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {LabelClass._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE",
            [sorted(existing)],
        )
        found = {row[0] for row in cursor.fetchall()}
    gone = sorted(set(existing) - found)
    if gone:
        raise ImportAborted(f"class '{existing[gone[0]]}' was deleted while the import ran; nothing was written. "
                            "Run the import again.")


def _foreign_key_violation(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return code == "23503" if code else "foreign key" in str(exc)


_FK_KEY = re.compile(r"Key \((\w+)\)=\((\d+)\)")


def _vanished(exc: IntegrityError, existing: dict[int, str]) -> str:
    """What a foreign-key failure of pass 2 means to the user, without the database's wording."""
    found = _FK_KEY.search(str(exc))
    column, pk = (found.group(1), int(found.group(2))) if found else (None, None)
    if column == "label_class_id" and pk in existing:
        what = f"class '{existing[pk]}'"
    elif column == "label_class_id":
        what = "a class"
    elif column == "image_id":
        what = f"image {pk}"
    else:
        what = "a class or an image"
    return f"{what} was deleted while the import ran; nothing was written. Run the import again."


def _create(row: list, classes: dict, source: str, review: str, user) -> Create:
    image_id, key, rle, bbox, area, det_score, class_score, ranked, _, det_phrase = row
    return Create(image_id, dict(
        label_class=classes[key], mask_rle=rle, bbox=bbox, area=area,
        source=source, det_score=det_score, det_phrase=det_phrase, class_score=class_score,
        candidates=_candidates(ranked, classes),
        class_review=review, mask_review=review, created_by=user,
        # updated_by means "a person decided on it": only objects imported as accepted are that;
        # pending ones stay proposals a job may replace and re-scoring may re-label.
        updated_by=user if review == ReviewState.ACCEPTED else None,
    ))


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _candidates(ranked: list[dict], classes: dict) -> list[dict]:
    out = []
    for entry in ranked:
        cls = classes.get(str(entry.get("name", "")).lower())
        out.append({"class_id": cls.pk if cls else None, "name": entry.get("name"), "score": entry.get("score")})
    return out
