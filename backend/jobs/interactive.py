"""Interactive SAM 2 for the browser: the request waits for the gpu worker, with a deadline.

The worker segments the drawn box and, like a pre-annotation job, embeds the new crop and
matches it against the project's current gallery, so a new object arrives with a proposed class
and its top-k evidence. An empty gallery (or an unsure match) proposes no class at all.

Click-refine (refine_now / jobs.refine_mask) reuses the worker process's cached SAM embedding of the
image (ml/embedding_cache.py). Tasks are not routed by image: with several gpu workers a click
that lands on another worker is answered correctly, only cold (that worker encodes the image once)."""
from __future__ import annotations

from celery import shared_task
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.db import connection

import logging
import math
import threading
import time

from backend.annotations import proposals
from backend.core.errors import Busy, DomainError, ImageUnreadable, NotFound
from backend.core.geometry import GeometryError, validate_box
from backend.images.claims import ClaimConflict, active_claimant

# A cold worker loads its models and may embed new exemplars first (~10 s alone, more on a
# busy machine); past this the request answers 503 and the task is revoked. The tasks go to the
# interactive queue (settings/redis.py), which its own worker and an idle gpu worker take.
SEGMENT_TIMEOUT_S = settings.INTERACTIVE_TIMEOUT_S
TASK_NAME = "jobs.segment_box_match"
REFINE_TASK_NAME = "jobs.refine_mask"
MAX_REFINE_POINTS = 64


class SegmentUnavailable(DomainError):
    status_code = 503
    code = "segment_unavailable"


class SegmentQueueFull(Busy):
    code = "segment_queue_full"


class _Unreadable(Exception):
    """Raised in the worker by _pixels; the task answers {"unreadable": why}."""


# Clicks of this process now waiting for a worker (settings.INTERACTIVE_MAX_WAITING at most).
_waiting = 0
_waiting_lock = threading.Lock()


def segment_box_now(*, image, box: list[float], user=None) -> dict:
    """{mask_rle, bbox, score, label_class, class_name, class_score, class_margin, candidates,
    proposal}: `proposal` is the token that lets the create call attach this evidence
    (annotations.proposals)."""
    x0, y0, x1, y1 = validate_box(box, height=image.height, width=image.width, field="box")
    _require_free(image, user, "segmenting")
    answer = _send_and_wait(segment_box_match, [image.pk, [x0, y0, x1, y1]], image.pk)
    answer["proposal"] = proposals.remember(
        project_id=image.project_id, image_id=image.pk, user_id=getattr(user, "pk", None), result=answer,
    )
    return answer


logger = logging.getLogger(__name__)
GONE = {"gone": True}  # the answer of a click whose image was deleted meanwhile (the web says 404)


def _unless_gone(image_id: int, work):
    """`work()`, or GONE when it failed because its image was deleted meanwhile: a worker traceback
    per click racing a deletion (black-box round 15) for what is no fault of the worker's."""
    from backend.images.models import Image

    try:
        return work()
    except _Unreadable as exc:
        logger.info("interactive segmentation of image %s: %s", image_id, exc)
        return {"unreadable": str(exc)}
    except Exception as exc:
        if Image.objects.filter(pk=image_id).exists():
            raise
        logger.info("interactive segmentation of image %s: the image was deleted meanwhile (%s)", image_id,
                    type(exc).__name__)
        return GONE


def _pixels(image):
    """The image's RGB pixels, or _Unreadable saying why as a job item says it (no path, no repr)."""
    from backend.core.unreadable import could_not_read

    from .engine import read_rgb

    try:
        return read_rgb(image.file.name)
    except Exception as exc:  # any unreadable file: a plain reason, not a crash
        raise _Unreadable(f"{could_not_read(image.original_name, exc)}. Upload it again (or delete it).") from exc


@shared_task(name=TASK_NAME, ignore_result=False)
def segment_box_match(image_id: int, box: list[float]) -> dict:
    """SAM 2 on one box, then embed + match the crop exactly as a boxes job does (same ROI
    margin, same crop, the project's live matcher settings, the newest gallery version)."""
    return _unless_gone(image_id, lambda: _segment_box_match(image_id, box))


def _segment_box_match(image_id: int, box: list[float]) -> dict:
    from backend.gallery.versions import current_version
    from backend.images.models import Image

    from .engine import get_pipeline
    from .gallery_index import classification, ensure_exemplar_embeddings, load_gallery, project_matcher
    from .services import classes_by_id

    pipeline = get_pipeline()
    image = Image.objects.select_related("project").get(pk=image_id)
    project = image.project
    exemplar_ids = current_version(project.pk).exemplar_ids
    ensure_exemplar_embeddings(project_id=project.pk, pipeline=pipeline, exemplar_ids=exemplar_ids)
    gallery = load_gallery(project_id=project.pk, embedder_version=pipeline.embedder_version, exemplar_ids=exemplar_ids)
    detection = pipeline.annotate([_pixels(image)], gallery, boxes=[[box]], matcher=project_matcher(project, embedder_version=pipeline.embedder_version))[0].detections[0]
    fields = classification(detection.match, classes_by_id(project.pk))
    chosen = fields["label_class"]
    x0, y0, x1, y1 = detection.bbox_xyxy
    return {
        "mask_rle": detection.mask_rle,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "score": float(detection.mask_score),
        "label_class": chosen.pk if chosen else None,
        "class_name": chosen.name if chosen else None,
        "class_score": fields["class_score"] if len(gallery) or chosen else None,
        "class_margin": fields["class_margin"] if len(gallery) or chosen else None,
        "candidates": fields["candidates"],
        "gallery_size": len(gallery),
    }


def _require_free(image, user, doing: str) -> None:
    """Another reviewer's claim refuses the click before the worker spends a SAM pass on it: the
    object it proposes could not be saved (a create on a held image is refused too)."""
    holder = active_claimant(image)
    if holder is not None and (user is None or holder.pk != user.pk):
        raise ClaimConflict(
            f"This image is held by {holder.username} until {image.claim_expires_at:%H:%M:%S} UTC; "
            f"{doing} needs it free. Try again when they have moved on.",
            extra={"claimed_by": holder.username, "expires_at": image.claim_expires_at.isoformat()},
        )


def _send_and_wait(task, args: list, image_id: int) -> dict:
    """Send the click to the interactive queue and wait for its answer, holding no database
    connection meanwhile. Each waiting click used to keep its pooled connection (8 per web process)
    for up to SEGMENT_TIMEOUT_S, so ~8 slow clicks made every other request of the process,
    /api/health/ included, time out on the pool and answer 503 "the database is restarting"."""
    global _waiting
    with _waiting_lock:
        if _waiting >= settings.INTERACTIVE_MAX_WAITING:
            # Refused before anything is sent: no task for a worker to run with nobody waiting on it.
            raise SegmentQueueFull(
                f"The segmentation queue is full ({_waiting} clicks are waiting for the worker); nothing was "
                "sent. Try again in a few seconds.")
        _waiting += 1
    try:
        result = task.apply_async(args=args, queue=settings.QUEUE_INTERACTIVE)
        # Every read this request needs is done: give the connection back to the pool (the next
        # query, if any, takes one again). Not inside a transaction (a test's), which must go on.
        if not connection.in_atomic_block:
            connection.close()
        return _wait(result, image_id)
    finally:
        with _waiting_lock:
            _waiting -= 1


def _wait(result, image_id: int) -> dict:
    try:
        answer = result.get(timeout=SEGMENT_TIMEOUT_S, propagate=True)
    except CeleryTimeout:
        result.revoke()
        raise SegmentUnavailable(f"No worker answered within {SEGMENT_TIMEOUT_S} s: is the interactive worker running "
                                 "(`manage.py serve` starts it; worker-interactive in docker compose)?") from None
    except Exception as exc:
        from backend.images.models import Image

        if not Image.objects.filter(pk=image_id).exists():  # deleted meanwhile: not the worker's fault (was a 503)
            raise NotFound("Image not found (it was deleted).") from None
        raise SegmentUnavailable(f"Segmentation failed: {exc}") from None
    if answer == GONE:
        raise NotFound("Image not found (it was deleted).")
    if "unreadable" in answer:
        raise ImageUnreadable(answer["unreadable"][:1].upper() + answer["unreadable"][1:])
    return answer


def validate_points(points, labels, *, height: int, width: int) -> tuple[list[list[float]], list[int]]:
    """Click prompts: at most MAX_REFINE_POINTS [x, y] inside the image, one 0/1 label each."""
    if not isinstance(points, list) or not isinstance(labels, list):
        raise GeometryError("points and labels must be lists", field="points")
    if len(points) > MAX_REFINE_POINTS:
        raise GeometryError(f"at most {MAX_REFINE_POINTS} points", field="points")
    if len(labels) != len(points):
        raise GeometryError("give one label per point", field="labels")
    if any(label not in (0, 1) or isinstance(label, bool) for label in labels):
        raise GeometryError("labels are 1 (object) or 0 (background)", field="labels")
    out = []
    for point in points:
        if not (isinstance(point, (list, tuple)) and len(point) == 2):
            raise GeometryError("each point is [x, y]", field="points")
        x, y = point
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and (isinstance(v, int) or math.isfinite(v))
                   for v in (x, y)):
            raise GeometryError("coordinates must be finite numbers", field="points")
        if not (0 <= x <= width and 0 <= y <= height):
            raise GeometryError(f"every point must lie inside the image (0..{width} x 0..{height})", field="points")
        out.append([float(x), float(y)])
    return out, list(labels)


def refine_now(*, image, user, points, labels, box=None, annotation_id: int | None = None) -> dict:
    """Click-refine a mask on the gpu worker, which keeps the image's SAM embedding between clicks.
    Nothing is written: the browser saves the answer through the usual versioned PATCH/POST, so
    undo, history and audit see an ordinary mask edit."""
    from backend.annotations.models import Annotation

    points, labels = validate_points(points, labels, height=image.height, width=image.width)
    if box is not None:
        box = validate_box(box, height=image.height, width=image.width, field="box")
    if not points and box is None:
        raise GeometryError("give at least one point or a box", field="points")
    if annotation_id is not None and not Annotation.objects.filter(pk=annotation_id, image=image).exists():
        raise NotFound("Annotation not found.")
    _require_free(image, user, "refining")
    started = time.perf_counter()
    answer = _send_and_wait(refine_mask, [image.pk, points, labels, box, annotation_id], image.pk)
    answer["round_trip_ms"] = round((time.perf_counter() - started) * 1000.0, 1)
    return answer


@shared_task(name=REFINE_TASK_NAME, ignore_result=False)
def refine_mask(image_id: int, points: list, labels: list, box: list | None, annotation_id: int | None) -> dict:
    """SAM 2 on the cached image embedding (encoded on the first click of an image in this worker
    process) with the clicks, the box and the object's current mask as SAM's mask prompt."""
    return _unless_gone(image_id, lambda: _refine_mask(image_id, points, labels, box, annotation_id))


def _refine_mask(image_id: int, points: list, labels: list, box: list | None, annotation_id: int | None) -> dict:
    from backend.annotations.models import Annotation
    from backend.images.models import Image
    from ml.masks import decode_rle, encode_rle

    from .engine import get_pipeline

    started = time.perf_counter()
    segmenter = get_pipeline().segmenter
    image = Image.objects.get(pk=image_id)
    mask = None
    if annotation_id is not None:
        rle = Annotation.objects.filter(pk=annotation_id, image_id=image_id).values_list("mask_rle", flat=True).first()
        mask = decode_rle(rle) if rle else None
    # The content hash keys the entry: a replaced file never meets an old embedding.
    key = ("sam2", image.pk, image.sha256, image.width, image.height)
    result, cached = segmenter.refine_cached(key, lambda: _pixels(image), points, labels, box=box, mask=mask)
    x0, y0, x1, y1 = result.bbox_xyxy
    return {
        "mask_rle": encode_rle(result.mask),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "score": float(result.score),
        "area": int(result.area),
        "cached": cached,
        "ms": round((time.perf_counter() - started) * 1000.0, 1),
        "encoder_runs": segmenter.embeddings.stats.encodes,
    }
