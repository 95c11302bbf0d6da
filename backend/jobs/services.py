"""Writes for pre-annotation jobs: start, cancel, retry, and the idempotent result writes."""
from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Q
from django.db.models.functions import Now
from django.utils import timezone
from pycocotools import mask as mask_utils

from backend.annotations.changes import Create, Delete, apply_changes
from backend.annotations.models import Annotation, ChangeSource, ReviewState, Source
from backend.annotations.selectors import images_with_unreviewed_boxes
from backend.core import events
from backend.core.errors import Conflict, DomainError, NotFound
from backend.core.geometry import validate_rle
from backend.gallery.versions import current_version_locked
from backend.images.models import Image, ImageStatus
from backend.learning.models import ModelKind
from backend.learning.selectors import active_ids, retired_maskrcnn_problem
from backend.projects.models import LabelClass, Project

from . import leases
from .models import FINAL_ITEM_STATES, FINAL_JOB_STATES, ItemStatus, JobStatus, PrelabelJob, PrelabelJobImage

MAX_ATTEMPTS = 3
# A new proposal that overlaps an annotation a person already handled is the same object: skip it.
DUPLICATE_IOU = 0.7


def job_payload(job: PrelabelJob) -> dict:
    from .serializers import PrelabelJobSerializer

    return PrelabelJobSerializer(job).data


def _emit_progress(job: PrelabelJob) -> None:
    events.emit(job.project_id, "job.progress", job=job_payload(job))


def _in_live_jobs(project: Project):
    """Items of this project's unfinished jobs that are still to run."""
    return (PrelabelJobImage.objects.filter(job__project=project).exclude(job__status__in=FINAL_JOB_STATES)
            .exclude(status__in=FINAL_ITEM_STATES))


def _select_images(project: Project, images) -> list[int]:
    queryset = Image.objects.filter(project=project)
    if images == "new":
        # An image waiting in a running job is still "new": two starts (a double click, two
        # admins) each took all of them and the models ran 2-4 times over the same images.
        queryset = queryset.filter(status=ImageStatus.NEW).exclude(pk__in=_in_live_jobs(project).values("image_id"))
    elif images == "all":
        pass
    elif isinstance(images, list) and images and all(isinstance(i, int) and not isinstance(i, bool) for i in images):
        found = set(queryset.filter(pk__in=images).values_list("pk", flat=True))
        missing = [i for i in images if i not in found]
        if missing:
            raise DomainError(f"Image(s) not in this project: {', '.join(map(str, missing[:10]))}.")
        queryset = queryset.filter(pk__in=images)
    else:
        raise DomainError("images must be 'new', 'all' or a non-empty list of image ids.")
    return list(queryset.order_by("id").values_list("pk", flat=True))


@transaction.atomic
def start_job(*, project: Project, user, images="new", kind: str = PrelabelJob.Kind.PRELABEL, overrides: dict | None = None) -> PrelabelJob:
    # The project row lock serialises concurrent starts, so two jobs never take the same number
    # (nor, with images "new", the same images). It is also the lock current_version takes: the
    # gallery counter comes with it.
    counter = Project.objects.select_for_update().filter(pk=project.pk).values_list("gallery_version", flat=True).get()
    image_ids = _select_images(project, images)
    if not image_ids:
        raise DomainError(_nothing_to_run(project, images))
    overrides = overrides or {}
    if kind == PrelabelJob.Kind.BOXES and not images_with_unreviewed_boxes(image_ids):
        # It ended "done" with 0 objects and no word of why.
        raise DomainError("None of these images has an unreviewed box to segment: import boxes (COCO, YOLO "
                          "detection lines, Label Studio rectangles) or run a pre-annotation job first.",
                          extra={"field": "images"})
    if kind != PrelabelJob.Kind.BOXES:  # a boxes job reads no prompts
        from .prompt_window import prompt_window_error

        problem = prompt_window_error(overrides.get("prompts") or project.prompts, project.engine)
        if problem:
            raise DomainError(problem, extra={"field": "prompts"})
    # The last number is read after the lock, in a statement of its own: a subquery beside the
    # lock would still see the snapshot from before a concurrent start committed.
    last = PrelabelJob.objects.filter(project=project).order_by("-number").values_list("number", flat=True).first()
    gallery = current_version_locked(project.pk, counter)
    active = active_ids(project.pk)
    if project.engine == "maskrcnn" and ModelKind.MASKRCNN not in active:
        problem = retired_maskrcnn_problem(project.pk)
        if problem:
            raise DomainError(problem, extra={"field": "engine"})
    _refuse_unrunnable(project.engine)
    snapshot_ = {
        "prompts": overrides.get("prompts") or project.prompts,
        "box_threshold": overrides.get("box_threshold", project.box_threshold),
        "text_threshold": overrides.get("text_threshold", project.text_threshold),
        "nms_iou": overrides.get("nms_iou", project.nms_iou),
        "unknown_threshold": project.unknown_threshold,
        "min_margin": project.min_margin,
        "top_k": project.top_k,
        "unique_classes_per_image": project.unique_classes_per_image,
        "engine": project.engine,
        "head_version_id": active.get(ModelKind.HEAD),  # the projection head active at start (issue 15)
        "maskrcnn_version_id": active.get(ModelKind.MASKRCNN),  # the trained Mask R-CNN active at start
        "gallery_version": gallery.number,
        "gallery_version_id": gallery.pk,  # run_batch matches against exactly this set of exemplars
        "ml_config": settings.RAZMETKA_ML_CONFIG,
        "device": settings.RAZMETKA_ML_DEVICE,
    }
    job = PrelabelJob.objects.create(
        project=project, kind=kind, number=(last or 0) + 1, created_by=user, settings_snapshot=snapshot_,
        total=len(image_ids),
    )
    PrelabelJobImage.objects.bulk_create([PrelabelJobImage(job=job, image_id=i) for i in image_ids])
    _enqueue(job, image_ids)
    _emit_progress(job)
    return job


def _refuse_unrunnable(engine: str) -> None:
    """A job the models surely cannot run is refused at its start (it was accepted and every image
    failed in the worker, while the engine list said 'configured', black-box round 18)."""
    from .engines_api import engine_problem

    problem = engine_problem(engine)
    if problem:
        raise DomainError(f"The '{engine}' engine can't run with this server's models: {problem}. Fix the pipeline "
                          "config (`make tiny-models` writes one for a trial); nothing was started.",
                          extra={"field": "engine"})


def _nothing_to_run(project: Project, images) -> str:
    if images == "all":
        return "No images to pre-annotate: this project has no images yet."
    waiting = sorted(set(_in_live_jobs(project).filter(image__status=ImageStatus.NEW).values_list("job__number", flat=True)))
    if images == "new" and waiting:
        names = ", ".join(f"#{n}" for n in waiting[:5])
        return (f"Every new image is already waiting in a running pre-annotation job ({names}); it pre-annotates "
                "them. Choose \"all\" or pick images to run them again.")
    return "No images to pre-annotate (no new images in this project)."


def _enqueue(job: PrelabelJob, image_ids: list[int]) -> None:
    """Send the items' batches once the transaction commits; what cannot be sent then (the broker
    is down) stays undispatched and the sweeper sends it later (dispatch.py)."""
    from .dispatch import send_batches

    transaction.on_commit(lambda: send_batches(job.pk, image_ids))


@transaction.atomic
def cancel_job(*, project: Project, job_id: int) -> PrelabelJob:
    job = PrelabelJob.objects.select_for_update().filter(project=project, pk=job_id).first()
    if job is None:
        raise NotFound("Job not found.")
    if job.status in FINAL_JOB_STATES:  # 409 as for a training or evaluation (a second click)
        raise Conflict(f"The job is already {job.status}; there is nothing to cancel.")
    # Running items too: a worker writes only items still open (write_results locks them), so
    # nothing lands after this answer; it stops at its next chunk. (Running items finished their
    # batch, and their proposals appeared for seconds after "cancelled".)
    job.items.filter(status__in=[ItemStatus.PENDING, ItemStatus.RUNNING]).update(status=ItemStatus.CANCELLED, error="cancelled")
    job.status = JobStatus.CANCELLED
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "finished_at"])
    _emit_progress(job)
    return job


@transaction.atomic
def retry_failed(*, project: Project, job_id: int, user) -> PrelabelJob:
    job = PrelabelJob.objects.select_for_update().filter(project=project, pk=job_id).first()
    if job is None:
        raise NotFound("Job not found.")
    if job.status not in FINAL_JOB_STATES:
        raise DomainError("The job is still running; retry its failed images when it has finished.")
    failed = list(job.items.filter(status=ItemStatus.FAILED).values_list("image_id", flat=True))
    if not failed:
        raise DomainError("The job has no failed images.")
    _refuse_unrunnable(job.settings_snapshot.get("engine", "gdino-sam2"))
    # The retry runs on the models configured now: the record says so (it named the config the
    # first run failed on, one that never produced these results).
    job.settings_snapshot = {**job.settings_snapshot, "ml_config": settings.RAZMETKA_ML_CONFIG,
                             "device": settings.RAZMETKA_ML_DEVICE}
    job.items.filter(status=ItemStatus.FAILED).update(
        status=ItemStatus.PENDING, error="", attempts=0, dispatched_at=None, updated_at=Now(),
    )
    job.status = JobStatus.QUEUED
    job.finished_at = None
    job.error = ""
    job.save(update_fields=["status", "finished_at", "error", "settings_snapshot"])
    _recount(job)  # from the items, not by arithmetic on counters that may have drifted
    job.refresh_from_db()
    _enqueue(job, failed)
    _emit_progress(job)
    return job


@transaction.atomic
def claim_items(*, job_id: int, image_ids: list[int], owner: str) -> tuple[PrelabelJob | None, list[int]]:
    """Lease this batch's unfinished items to `owner` and mark them running; returns the ones to
    process now. Items a live worker holds are skipped (a duplicate or redelivered message), so
    no image runs twice at once; a lapsed lease (its worker died) is taken over.

    Items that reach MAX_ATTEMPTS (the worker died on them each time) fail instead of looping."""
    job = PrelabelJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status == JobStatus.CANCELLED:
        return None, []
    items = list(
        job.items.select_for_update().filter(image_id__in=image_ids)
        .exclude(status__in=FINAL_ITEM_STATES).exclude(leases.live_lease())
    )
    todo = []
    for item in items:
        if item.attempts >= MAX_ATTEMPTS:
            _fail_item(job, item, _gave_up(item))
        else:
            todo.append(item)
    # One UPDATE for the whole batch (a statement per item was a round trip per image).
    PrelabelJobImage.objects.filter(pk__in=[item.pk for item in todo]).update(
        attempts=F("attempts") + 1, status=ItemStatus.RUNNING, lease_owner=owner,
        leased_until=leases.lease_expiry(), updated_at=timezone.now(),
    )
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])
    if not todo:  # items claimed now are running: the job cannot have finished
        _maybe_finish(job)
    return job, [item.image_id for item in todo]


def _gave_up(item: PrelabelJobImage) -> str:
    return f"gave up after {item.attempts} attempts (the worker stopped while processing it)"


@transaction.atomic
def requeue_lapsed(*, job_id: int) -> dict:
    """The sweeper's write: items of this job whose worker died (lease lapsed) go back to the gpu
    queue as a new message, or fail once they have killed MAX_ATTEMPTS workers; a cancelled
    job's are cancelled. SKIP LOCKED, job row first (as every writer here): several sweepers
    never handle the same item twice, and a job being written right now waits for the next sweep."""
    job = PrelabelJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
    if job is None:
        return {}
    items = list(job.items.select_for_update(skip_locked=True).filter(leases.lapsed_lease()))
    if not items:
        return {}
    counts = {"requeued": 0, "failed": 0, "cancelled": 0}
    if job.status in FINAL_JOB_STATES:
        job.items.filter(pk__in=[i.pk for i in items]).update(
            status=ItemStatus.CANCELLED, error="cancelled", lease_owner="", leased_until=None,
        )
        counts["cancelled"] = len(items)
    else:
        again = []
        for item in items:
            if item.attempts >= MAX_ATTEMPTS:
                _fail_item(job, item, _gave_up(item))
                counts["failed"] += 1
            else:
                again.append(item.image_id)
        job.items.filter(image_id__in=again).update(
            status=ItemStatus.PENDING, lease_owner="", leased_until=None, dispatched_at=None, updated_at=Now(),
        )
        counts["requeued"] = len(again)
        _maybe_finish(job)
        if again:
            _enqueue(job, again)
    _emit_progress(job)
    return counts


def _fail_item(job: PrelabelJob, item: PrelabelJobImage, error: str) -> None:
    item.status = ItemStatus.FAILED
    item.error = error[:2000]
    item.lease_owner, item.leased_until = "", None
    item.save(update_fields=["status", "error", "lease_owner", "leased_until", "updated_at"])
    PrelabelJob.objects.filter(pk=job.pk).update(processed=F("processed") + 1, failed=F("failed") + 1)
    job.refresh_from_db(fields=["processed", "failed"])


class JobGone(Exception):
    """The job was deleted (with its project) while a batch of it ran: nothing left to write."""


def _locked_job(job_id: int, queryset=None) -> PrelabelJob:
    job = (queryset if queryset is not None else PrelabelJob.objects.select_for_update()).filter(pk=job_id).first()
    if job is None:
        raise JobGone(f"prelabel job {job_id} no longer exists")
    return job


def job_exists(job_id: int) -> bool:
    return PrelabelJob.objects.filter(pk=job_id).exists()


def job_status(job_id: int) -> str | None:
    """The job's status, or None when it was deleted (one cheap query, between a batch's chunks)."""
    return PrelabelJob.objects.filter(pk=job_id).values_list("status", flat=True).first()


@transaction.atomic
def fail_items(*, job_id: int, image_ids: list[int], error: str) -> None:
    """Raises JobGone when the job was deleted meanwhile."""
    job = _locked_job(job_id)
    for item in job.items.select_for_update().filter(image_id__in=image_ids).exclude(status__in=FINAL_ITEM_STATES):
        _fail_item(job, item, error)
    _maybe_finish(job)
    _emit_progress(job)


@dataclass
class ItemResult:
    """One image's model output, ready to write: Annotation column dicts (``annotation_fields``)."""

    image_id: int
    detections: list[dict]
    stage_ms: dict


@transaction.atomic
def write_image_result(*, job_id: int, image_id: int, detections: list[dict], stage_ms: dict) -> int:
    """Replace the untouched model annotations of this image with this job's; keep what people
    touched. Idempotent: a finished item is never written twice. Returns annotations created.
    A bad detection raises (nothing of this image is written); ``write_results`` is the batched form."""
    outcome = write_results(job_id=job_id, results=[ItemResult(image_id, detections, stage_ms)], raise_errors=True)
    return outcome.get(image_id, 0)


@transaction.atomic
def write_results(*, job_id: int, results: list[ItemResult], raise_errors: bool = False) -> dict[int, int]:
    """Write several images' results in ONE transaction and one ``apply_changes`` call (one bulk
    INSERT of annotations with their embeddings, one of events, one status refresh), then the
    items in one UPDATE and the job's counters once. Per image, as ``write_image_result``:
    untouched model annotations are replaced, what people touched is kept, and a finished item
    is skipped (never written twice). An image whose detections fail validation fails alone
    (or raises, with ``raise_errors``); the others are written. Returns {image_id: created}."""
    # created_by comes along: the progress event's payload names it (one query less per batch).
    job = _locked_job(job_id, PrelabelJob.objects.select_for_update(of=("self",)).select_related("created_by"))
    ids = sorted(r.image_id for r in results)
    items = {i.image_id: i for i in job.items.select_for_update().filter(image_id__in=ids).order_by("image_id")}
    open_ids = [i for i in ids if i in items and items[i].status not in FINAL_ITEM_STATES]
    if not open_ids:
        return {}
    # Lock order as every annotation writer: the image rows, then their annotations, by id.
    images = {im.pk: im for im in Image.objects.select_for_update().filter(pk__in=open_ids).order_by("id")}
    olds: dict[int, list[Annotation]] = {}
    for old in Annotation.objects.filter(image_id__in=open_ids).select_for_update().defer("embedding").order_by("id"):
        olds.setdefault(old.image_id, []).append(old)
    by_image = {r.image_id: r for r in results}
    usable = _usable_class_ids(job.project_id)
    changes, written, failed = [], [], {}
    for image_id in open_ids:
        try:
            detections = [_without_retired_classes(det, usable) for det in by_image[image_id].detections]
            changes += _image_changes(job, images[image_id], olds.get(image_id, []), detections)
            written.append(image_id)
        except Exception as exc:  # a bad mask fails its image, not the batch
            if raise_errors:
                raise
            failed[image_id] = f"{type(exc).__name__}: {exc}"
    # The images count as pre-labelled even when the model found nothing on them. Live clients
    # get one notice naming the batch's changed images (they re-read an open one) instead of one
    # per object: a job writes many objects nobody is editing yet.
    created = apply_changes(
        project_id=job.project_id, changes=changes, actor=None, source=ChangeSource.MODEL, examined=written,
        announce=False,
    ).created if written else []
    if changes:
        changed = sorted({c.image_id if isinstance(c, Create) else c.annotation.image_id for c in changes})
        # The job's number: a reviewer with one of these images open is told which job rewrote it.
        events.emit(job.project_id, "annotations.bulk", images=changed, count=len(changes), job=job.number)
    per_image = {image_id: 0 for image_id in written}
    for annotation in created:
        per_image[annotation.image_id] += 1
    for image_id in written:
        stage_ms = by_image[image_id].stage_ms
        job.stage_ms = {k: round(job.stage_ms.get(k, 0.0) + v, 1) for k, v in stage_ms.items()} | {
            k: v for k, v in job.stage_ms.items() if k not in stage_ms
        }
    _finish_items(job.pk, {i: (by_image[i].stage_ms, per_image[i]) for i in written}, failed)
    job.processed += len(written) + len(failed)
    job.failed += len(failed)
    job.save(update_fields=["processed", "failed", "stage_ms"])
    _maybe_finish(job)
    _emit_progress(job)
    return per_image


def _usable_class_ids(project_id: int) -> set[int]:
    """Classes a proposal may carry now: active, and not an instance of an inactive type."""
    return set(LabelClass.objects.filter(project_id=project_id, active=True).exclude(parent__active=False)
               .values_list("pk", flat=True))


def _without_retired_classes(det: dict, usable: set[int]) -> dict:
    """A job matches against the gallery pinned at its start; a class deactivated (or deleted)
    since then was still written on its proposals, which no person could then choose or delete
    (black-box round 13). Such a class is dropped from the proposal, as a re-score drops it."""
    label_class = det.get("label_class")
    candidates = det.get("candidates") or []
    stale = label_class is not None and getattr(label_class, "pk", label_class) not in usable
    kept = [c for c in candidates if c.get("class_id") is None or c["class_id"] in usable]
    if not stale and len(kept) == len(candidates):
        return det
    det = {**det, "candidates": kept}
    if stale:
        det.update(label_class=None, class_score=None, class_margin=None)
    return det


def _finish_items(job_id: int, done: dict[int, tuple[dict, int]], failed: dict[int, str]) -> None:
    """Items done (with their stage times and detection counts) and failed (with their error),
    their leases released, in ONE statement over arrays: bulk_update's CASE per column per item
    cost ~10 ms of ORM work per batch of 4."""
    rows = [(i, ItemStatus.DONE, json.dumps(ms), n, None) for i, (ms, n) in done.items()]
    rows += [(i, ItemStatus.FAILED, None, None, error[:2000]) for i, error in failed.items()]
    if not rows:
        return
    image_ids, states, stage_ms, detections, errors = (list(column) for column in zip(*rows))
    table = PrelabelJobImage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS item SET status = v.status, stage_ms = COALESCE(v.stage_ms::jsonb, item.stage_ms), "
            "detections = COALESCE(v.detections, item.detections), error = COALESCE(v.error, item.error), "
            "lease_owner = '', leased_until = NULL, updated_at = %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[], %s::text[]) "
            "AS v(image_id, status, stage_ms, detections, error) "
            "WHERE item.job_id = %s AND item.image_id = v.image_id",
            [timezone.now(), image_ids, states, stage_ms, detections, errors, job_id],
        )


def _image_changes(job: PrelabelJob, image: Image, olds: list[Annotation], detections: list[dict]) -> list:
    """Delete this image's untouched model annotations; create the detections that are not
    empty and do not duplicate an object a person handled."""
    kept_rles, changes = [], []
    for old in olds:
        if old.touched_by_human:
            kept_rles.append(_coco(old.mask_rle))
        elif old.source == Source.MODEL:
            changes.append(Delete(old))
    for det in detections:
        if det["area"] == 0:
            continue  # SAM found nothing inside the box
        # A model's mask passes the same gate as a person's before pycocotools reads it.
        det = {**det, "mask_rle": validate_rle(det["mask_rle"], height=image.height, width=image.width)}
        if kept_rles and float(mask_utils.iou([_coco(det["mask_rle"])], kept_rles, [0] * len(kept_rles)).max()) >= DUPLICATE_IOU:
            continue
        changes.append(Create(image.pk, {**det, "source": Source.MODEL, "job_id": job.pk}))
    return changes


def _coco(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii") if isinstance(rle["counts"], str) else rle["counts"]}


def forget_deleted_images(job_ids) -> None:
    """In the transaction that deleted images, whose job items went with them (CASCADE): each
    unfinished job counts only the images it still has, and one left with nothing to run ends now.
    Before, such a job stayed "running" for ever (no batch would ever write it again), or ended
    "Every image failed. First error: None", and a finished one read 57/75.

    A finished job's counters follow its items too (a deleted image's item is gone, so it is no
    longer counted: "2 of 2, 1 failed" over one item read wrong, also after a retry), and so does
    its verdict: a job "failed" only while every image it still has failed."""
    jobs = PrelabelJob.objects.select_for_update().filter(pk__in=list(job_ids))
    for job in jobs.order_by("pk"):
        _recount(job)
        if job.status in (JobStatus.DONE, JobStatus.FAILED) and job.total:
            _refresh_verdict(job)
        _maybe_finish(job)
        _emit_progress(job)


def _recount(job: PrelabelJob) -> None:
    """total / processed / failed from the job's items (processed: done or failed; a cancelled
    item was never processed)."""
    counts = job.items.aggregate(
        total=Count("pk"), processed=Count("pk", filter=Q(status__in=[ItemStatus.DONE, ItemStatus.FAILED])),
        failed=Count("pk", filter=Q(status=ItemStatus.FAILED)),
    )
    for field, value in counts.items():
        setattr(job, field, value)
    job.save(update_fields=list(counts))


def _refresh_verdict(job: PrelabelJob) -> None:
    """A finished job's done/failed after some of its items went away."""
    if job.items.exclude(status=ItemStatus.FAILED).exists():
        status, error = JobStatus.DONE, ""
    else:
        first = job.items.filter(status=ItemStatus.FAILED).values_list("error", flat=True).first()
        status, error = JobStatus.FAILED, f"Every image failed. First error: {first}"
    if (job.status, job.error) != (status, error):
        job.status, job.error = status, error
        job.save(update_fields=["status", "error"])


def _maybe_finish(job: PrelabelJob) -> None:
    if job.status in FINAL_JOB_STATES:
        return
    # Both questions in one statement: this runs after every batch's write.
    unfinished, not_failed = PrelabelJob.objects.filter(pk=job.pk).values_list(
        Exists(PrelabelJobImage.objects.filter(job_id=job.pk).exclude(status__in=FINAL_ITEM_STATES)),
        Exists(PrelabelJobImage.objects.filter(job_id=job.pk).exclude(status=ItemStatus.FAILED)),
    ).get()
    if unfinished:
        return
    if not job.items.exists():  # every image of the job was deleted before it ran
        job.status, job.error = JobStatus.CANCELLED, "Every image of this job was deleted before it was processed."
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        return
    all_failed = not not_failed
    job.status = JobStatus.FAILED if all_failed else JobStatus.DONE
    if all_failed:
        first = job.items.filter(status=ItemStatus.FAILED).values_list("error", flat=True).first()
        job.error = f"Every image failed. First error: {first}"
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])


def annotation_fields(det, classification: dict, embedder_version: str) -> dict:
    """Annotation columns from an ml Detection plus its classification."""
    x0, y0, x1, y1 = det.bbox_xyxy
    return {
        "label_class": classification["label_class"],
        "mask_rle": det.mask_rle,
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        "area": int(det.area),
        "det_score": float(det.det_score),
        "det_phrase": det.det_phrase[:Annotation._meta.get_field("det_phrase").max_length],
        "mask_score": float(det.mask_score),
        "class_score": classification["class_score"],
        "class_margin": classification["class_margin"],
        "candidates": classification["candidates"],
        "embedding": det.embedding.tolist(),
        "embedder_version": embedder_version,
        "class_review": ReviewState.PENDING,
        "mask_review": ReviewState.PENDING,
    }


def classes_by_id(project_id: int) -> dict[int, LabelClass]:
    return {c.pk: c for c in LabelClass.objects.filter(project_id=project_id)}
