"""Applying an import: read the upload, parse, resolve images and classes, rasterize, and only
then write everything in one transaction. Any error anywhere means nothing is applied."""
from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction

from backend.annotations.models import Annotation, AnnotationEvent, ReviewState, Source
from backend.annotations.services import record_event, snapshot
from backend.core.masks import mask_geometry
from backend.core.zips import ZipRejected, iter_zip
from backend.images.models import Image
from backend.images.services import refresh_status
from backend.projects.models import LabelClass

from . import geometry
from .formats import parser_for
from .formats.base import ItemError, Record, SourceFile, image_base_name, rasterize
from .models import ImportJob

MAX_ERRORS = 500
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")  # Label Studio prefixes uploaded file names with a hash
# Entries of an uploaded zip each format reads; anything else (e.g. the images) is skipped.
READS = {
    "coco": (".json",), "labelme": (".json",), "native": (".json",), "labelstudio": (".json",),
    "yolo": (".txt", ".yaml", ".yml"),
}
PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#008080"]


@dataclass
class Planned:
    record: Record
    image_id: int
    class_key: str
    rle: dict


def read_upload(job: ImportJob) -> tuple[list[SourceFile], list[dict]]:
    with default_storage.open(job.upload_file, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        if not head.startswith(b"PK"):
            return [SourceFile(job.upload_name or "upload.json", fh.read())], []
        files, errors = [], _unsafe_entries(fh, job.upload_name)
        fh.seek(0)
        wanted = READS[job.format]
        try:
            for entry in iter_zip(fh):
                relevant = entry.name.lower().endswith(wanted)
                if entry.error and (relevant or "refused" in entry.error):
                    errors.append({"item": f"{job.upload_name}/{entry.name}", "error": entry.error})
                elif relevant and entry.data is not None:
                    files.append(SourceFile(entry.name, entry.data))
        except ZipRejected as exc:
            errors.append({"item": job.upload_name, "error": str(exc)})
        return files, errors


def _unsafe_entries(fh, upload_name: str) -> list[dict]:
    """iter_zip skips dot-entries as hidden files, '../x' among them; an import refuses them."""
    try:
        names = zipfile.ZipFile(fh).namelist()
    except (zipfile.BadZipFile, OSError):
        return []  # iter_zip reports the unreadable archive
    errors = []
    for name in names:
        _, why = image_base_name(name)
        if why and ("'..'" in why or "absolute" in why):
            errors.append({"item": f"{upload_name}/{name}", "error": why.replace("file name", "zip entry")})
    return errors


def apply_import(*, job: ImportJob, progress: Callable[[int, int], None]) -> tuple[list[dict], dict]:
    project = job.project
    files, errors = read_upload(job)
    records: list[Record] = []
    for item in parser_for(job.format).parse(files):
        if isinstance(item, ItemError):
            errors.append({"item": item.item, "error": item.error})
        else:
            records.append(item)
    if not records and not errors:
        errors.append({"item": job.upload_name or "upload", "error": "the file contains no annotations"})
    images = _images_by_name(project)
    classes = {c.name.lower(): c for c in LabelClass.objects.filter(project=project)}
    create_missing = bool(job.options.get("create_missing_classes"))
    missing: dict[str, str] = {}
    planned: list[Planned] = []
    progress(0, len(records))
    for index, record in enumerate(records, 1):
        problem = _plan(record, images, classes, create_missing, missing, planned)
        if problem:
            errors.append({"item": record.item, "error": problem})
        if index % 200 == 0:
            progress(index, len(records))
    if errors:
        if len(errors) > MAX_ERRORS:
            errors = errors[:MAX_ERRORS] + [{"item": "…", "error": f"and {len(errors) - MAX_ERRORS} more errors"}]
        return errors, {}
    result = _write(job, planned, classes, missing)
    progress(len(records), len(records))
    return [], result


def _images_by_name(project) -> dict[str, list[tuple[int, int, int]]]:
    found: dict[str, list[tuple[int, int, int]]] = {}
    for pk, name, width, height in Image.objects.filter(project=project).values_list("id", "original_name", "width", "height"):
        base = posixpath.basename(name.replace("\\", "/")).lower()
        found.setdefault(base, []).append((pk, height, width))
        # YOLO labels name only the stem ('<stem>.*').
        found.setdefault(f"{base.rpartition('.')[0] or base}.*", []).append((pk, height, width))
    return found


def _match_image(file_name: str, images) -> tuple[tuple | None, str | None]:
    candidates = images.get(file_name.lower())
    if not candidates and _UPLOAD_PREFIX.match(file_name):
        candidates = images.get(_UPLOAD_PREFIX.sub("", file_name).lower())
    if not candidates:
        # Exports rename clashing names to '<stem>_<image id>.<ext>': match that id, if its
        # own name is '<stem>.<ext>'.
        stem, dot, ext = file_name.rpartition(".")
        head, _, tail = stem.rpartition("_")
        if dot and head and tail.isdigit():
            for option in images.get(f"{head}.{ext}".lower(), []):
                if option[0] == int(tail):
                    return option, None
        return None, f"image '{file_name}' is not in this project"
    if len(candidates) > 1:
        return None, f"image '{file_name}' is ambiguous: images {', '.join(str(c[0]) for c in candidates)} share that name"
    return candidates[0], None


def _plan(record, images, classes, create_missing, missing, planned) -> str | None:
    image, problem = _match_image(record.file_name, images)
    if problem:
        return problem
    name = (record.class_name or "").strip()
    if not name:
        return "the object has no class name"
    key = name.lower()
    if key not in classes:
        if not create_missing:
            return f"unknown class '{name}' (enable create_missing_classes to create it)"
        if len(name) > 120:
            return f"class name '{name[:40]}…' is longer than 120 characters"
        missing.setdefault(key, name)
    image_id, height, width = image
    try:
        mask = rasterize(record, height, width)
    except geometry.GeometryError as exc:
        return str(exc)
    except Exception as exc:  # pycocotools/PIL on a malformed mask
        return f"the mask could not be decoded: {exc}"
    planned.append(Planned(record=record, image_id=image_id, class_key=key, rle=geometry.encode(mask)))
    return None


@transaction.atomic
def _write(job: ImportJob, planned: list[Planned], classes: dict, missing: dict[str, str]) -> dict:
    project, user = job.project, job.created_by
    created_classes = []
    for index, (key, name) in enumerate(sorted(missing.items())):
        classes[key] = LabelClass.objects.create(project=project, name=name, color=PALETTE[index % len(PALETTE)])
        created_classes.append(name)
    accepted = bool(job.options.get("as_accepted"))
    review = ReviewState.ACCEPTED if accepted else ReviewState.PENDING
    image_ids = sorted({p.image_id for p in planned})
    locked = {img.pk: img for img in Image.objects.select_for_update().filter(pk__in=image_ids).order_by("id")}
    box_only, created = [], 0
    for plan in planned:
        record = plan.record
        bbox, area = mask_geometry(plan.rle)
        annotation = Annotation.objects.create(
            project=project, image_id=plan.image_id, label_class=classes[plan.class_key], mask_rle=plan.rle,
            bbox=bbox, area=area, source=Source.HUMAN if accepted else Source.MODEL,
            det_score=record.det_score, class_score=record.class_score,
            candidates=_candidates(record, classes), class_review=review, mask_review=review,
            created_by=user, updated_by=user,
        )
        record_event(annotation=annotation, actor=user, action=AnnotationEvent.Action.CREATED, before=None,
                     after=snapshot(annotation))
        created += 1
        if record.box_only:
            box_only.append(annotation.pk)
    for image in locked.values():
        refresh_status(image=image)
    return {"annotations": created, "images": len(image_ids), "classes_created": created_classes, "box_only": box_only}


def _candidates(record: Record, classes: dict) -> list[dict]:
    out = []
    for entry in record.ranked:
        cls = classes.get(str(entry.get("name", "")).lower())
        out.append({"class_id": cls.pk if cls else None, "name": entry.get("name"), "score": entry.get("score")})
    return out
