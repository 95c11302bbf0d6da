"""Celery tasks: thin wrappers that take ids and call services. Heavy work on the gpu queue."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from backend.annotations import selectors as annotation_selectors
from backend.core import outbox
from backend.core.task_retry import DB_DOWN, run_or_retry
from backend.core.unreadable import could_not_read
from backend.gallery.versions import pinned_version
from backend.images.models import Image
from backend.learning.models import ModelVersion
from backend.learning.selectors import maskrcnn_checkpoint

from . import leases, services
from .models import JobStatus
from .engine import get_pipeline, item_error, job_matcher, read_rgb
from .gallery_index import classification, ensure_exemplar_embeddings, load_gallery

logger = logging.getLogger("razmetka.jobs")


# Not a verdict on the images: re-raised through every "fail this image" handler below.
PASS_THROUGH = (*DB_DOWN, services.JobGone)


def _input_errors() -> tuple[type[Exception], ...]:
    """ml's errors about what it was given (an image too thin, prompts too long): said plainly to
    the user, not as a crash. Imported late: importing ml imports torch (seconds, web process)."""
    from ml.inputs import ImageInputError, PromptTooLongError

    return ImageInputError, PromptTooLongError


@shared_task(name="jobs.run_batch", acks_late=True, bind=True, max_retries=None)
def run_batch(self, job_id: int, image_ids: list[int]) -> dict:
    """Idempotent: items done, or held by a live worker, are skipped (redelivered or duplicate
    messages, the sweeper's re-queues); the heartbeat keeps this run's leases while it works."""
    owner = leases.new_owner()
    # A claim that meets a database outage sends the batch again: its items are still pending and
    # nothing else would send them (the chaos drill lost 48 of 60 images this way). Only the
    # claim: an outage later in the batch leaves its leases to lapse and the sweeper re-queues it.
    job, todo = run_or_retry(self, services.claim_items, job_id=job_id, image_ids=image_ids, owner=owner)
    if not todo:
        return {"processed": 0}
    with leases.Heartbeat(job_id=job_id, owner=owner):
        try:
            return _run_claimed(job, todo)
        except services.JobGone:
            # The project (and so the job) was deleted while this batch ran: nothing to write.
            logger.info("pre-annotation job %s was deleted while a batch of %s images ran; the batch ends",
                        job_id, len(todo))
            return {"gone": True}


def _run_claimed(job, todo: list[int]) -> dict:
    """The models on PRELABEL_CHUNK_SIZE images at a time; the results written once
    PRELABEL_WRITE_EVERY_S have passed since the last write, and at the end (settings/ml.py)."""
    job_id = job.pk
    try:
        pipeline = get_pipeline(engine=job.settings_snapshot.get("engine", "gdino-sam2"),
                                maskrcnn_model=_trained_maskrcnn(job.settings_snapshot))
    except Exception as exc:  # not configured, or a model that cannot be loaded: say which setting
        services.fail_items(job_id=job_id, image_ids=todo, error=str(exc))
        return {"failed": len(todo)}
    snapshot = job.settings_snapshot
    if job.kind != "boxes":
        # Prompts past the model's text window fail every image alike: fail the batch at once
        # with the limit (the API refuses what surely cannot fit; this counts exactly).
        try:
            pipeline.engine.check_prompts(snapshot.get("prompts"))
        except _input_errors() as exc:
            services.fail_items(job_id=job_id, image_ids=todo, error=str(exc))
            return {"failed": len(todo)}
    try:
        gallery = _job_gallery(job, pipeline)
        _configure_detector(pipeline, snapshot)
        # One matching pass, inside the pipeline (so stage_ms.match times it), with the settings
        # frozen when the job started: a later edit of the project does not reach this job.
        matcher = job_matcher(snapshot, pipeline.embedder_version)
        # The batch's files, original names (what an item error calls the image) and sizes, in one query.
        rows = list(Image.objects.filter(pk__in=todo).values_list("pk", "file", "original_name", "width", "height"))
        files = {pk: (file, name) for pk, file, name, _, _ in rows}
        pixels = {pk: width * height for pk, _, _, width, height in rows}
    except PASS_THROUGH:
        raise  # no verdict on the images: their leases lapse and the sweeper re-queues them
    except Exception as exc:
        _raise_if_gone(job_id)
        logger.exception("pre-annotation batch failed")
        services.fail_items(job_id=job_id, image_ids=todo, error=item_error(exc))
        return {"failed": len(todo)}
    chunks = chunked(todo, pixels, max(1, int(settings.PRELABEL_CHUNK_SIZE)), int(settings.PRELABEL_CHUNK_PIXELS))
    classes, pending = None, []
    processed = written = 0
    last_write = time.monotonic()

    def timed_out(index: int) -> dict:
        # What is computed is kept; the rest of the batch fails (the user can retry it).
        done = written + _write(job_id, pending)
        rest = [i for later in chunks[index:] for i in later]
        services.fail_items(job_id=job_id, image_ids=rest, error="timed out (CELERY_TASK_TIME_LIMIT)")
        return {"processed": processed, "annotations": done, "failed": len(rest)}

    # One thread reads and decodes the next chunk's files while the models run on this one: a
    # GPU would otherwise wait ~0.1 s per 12 MP photo (OpenCV and the storage read release the
    # GIL). Only one chunk ahead, so decoded photos never pile up.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"read-job-{job_id}") as reader:
        reading = reader.submit(_read_images, files, chunks[0])
        for index, ids in enumerate(chunks):
            read = None
            # One cheap query per chunk: a deleted job's images are not run; a cancelled one
            # stops here (its items are closed: nothing computed from now on would be written).
            status = services.job_status(job_id)
            if status is None:
                raise services.JobGone(f"prelabel job {job_id} no longer exists")
            if status == JobStatus.CANCELLED:
                return {"processed": processed, "annotations": written, "cancelled": True}
            try:
                read = reading.result()
                if index + 1 < len(chunks):
                    reading = reader.submit(_read_images, files, chunks[index + 1])
                ok_ids, results, given = _annotate(job, pipeline, gallery, matcher, read)
            except SoftTimeLimitExceeded:
                return timed_out(index)
            except PASS_THROUGH:
                raise  # as above
            except Exception as exc:
                _raise_if_gone(job_id)  # its images went with it: their failure is no news
                if read is None:  # not even read: the chunk fails, the batch goes on
                    logger.exception("reading images %s failed", ids)
                    services.fail_items(job_id=job_id, image_ids=ids, error=item_error(exc))
                    continue
                # The models failed on the chunk: each image again alone, so only a bad one fails.
                logger.exception("pre-annotation of images %s failed; trying them one by one", ids)
                try:
                    ok_ids, results, given = _annotate_each(job, pipeline, gallery, matcher, read)
                except SoftTimeLimitExceeded:
                    return timed_out(index)
            if classes is None:
                classes = services.classes_by_id(job.project_id)
            pending += _prepared(job_id, pipeline, classes, ok_ids, results, given)
            processed += len(ok_ids)
            if pending and time.monotonic() - last_write >= settings.PRELABEL_WRITE_EVERY_S:
                written += _write(job_id, pending)
                pending, last_write = [], time.monotonic()
    # The rest, also when the last chunk failed: its earlier chunks' results are kept.
    written += _write(job_id, pending)
    return {"processed": processed, "annotations": written}


def chunked(ids: list[int], pixels: dict[int, int], size: int, max_pixels: int) -> list[list[int]]:
    """`ids` in order, `size` at a time, a chunk ending early once the next image would take it
    past `max_pixels` (an image bigger than that is a chunk of its own)."""
    chunks, current, total = [], [], 0
    for image_id in ids:
        n = pixels.get(image_id, 0)
        if current and (len(current) == size or total + n > max_pixels):
            chunks.append(current)
            current, total = [], 0
        current.append(image_id)
        total += n
    if current:
        chunks.append(current)
    return chunks


def _raise_if_gone(job_id: int) -> None:
    if not services.job_exists(job_id):
        raise services.JobGone(f"prelabel job {job_id} no longer exists")


class Unreadable(Exception):
    """An image read_rgb could not read; the message names it by its original name and says why."""


def _read_images(files: dict[int, tuple[str, str]], ids: list[int]) -> list[tuple[int, object]]:
    """(image id, RGB pixels or an Unreadable), in id order; images deleted since the claim are
    left out. ``files``: id -> (storage name, original name). Runs in the reader thread: storage
    and decoding only, no database."""
    read = []
    for image_id in sorted(i for i in ids if i in files):
        file, original_name = files[image_id]
        try:
            read.append((image_id, read_rgb(file)))
        except Exception as exc:  # an unreadable image fails alone (in _annotate)
            logger.info("image %s (%s) cannot be read: %r", image_id, file, exc)  # the full story: log only
            read.append((image_id, Unreadable(could_not_read(original_name, exc))))
    return read


def _annotate_each(job, pipeline, gallery, matcher, read: list[tuple[int, object]]):
    """_annotate on each image alone, after the models failed on the chunk: one photo they cannot
    take (1x1 px, 60000x1 px) failed every image of its chunk with it. Only the images that fail
    alone fail, with a message that says so; the others' results come back as _annotate's."""
    ok_ids, results, given = [], [], None
    for one in read:
        try:
            ids, out, boxes = _annotate(job, pipeline, gallery, matcher, [one])
        except (SoftTimeLimitExceeded, *PASS_THROUGH):
            raise
        except _input_errors() as exc:  # 1 x 1, 65535 x 1: a plain reason, no traceback in the log
            logger.info("pre-annotation of image %s refused: %s", one[0], exc)
            services.fail_items(job_id=job.pk, image_ids=[one[0]], error=str(exc))
            continue
        except Exception as exc:
            logger.exception("pre-annotation of image %s failed", one[0])
            services.fail_items(job_id=job.pk, image_ids=[one[0]],
                                error=f"the models could not process this image ({item_error(exc)})")
            continue
        ok_ids += ids
        results += out
        if boxes is not None:
            given = (given or []) + boxes
    return ok_ids, results, given


def _annotate(job, pipeline, gallery, matcher, read: list[tuple[int, object]]):
    """The models on these images (``_read_images``' output); an unreadable image fails alone.
    Returns (ids read, their results, their given boxes)."""
    images, ok_ids = [], []
    for image_id, pixels in read:
        if isinstance(pixels, Exception):
            services.fail_items(job_id=job.pk, image_ids=[image_id], error=str(pixels))
        else:
            images.append(pixels)
            ok_ids.append(image_id)
    if not ok_ids:
        return [], [], None
    given = _import_boxes(ok_ids) if job.kind == "boxes" else None
    results = pipeline.annotate(
        images, gallery, prompts=job.settings_snapshot["prompts"], matcher=matcher,
        boxes=None if given is None else [[box for box, _ in rows] for rows in given],
    )
    return ok_ids, results, given


def _prepared(job_id: int, pipeline, classes: dict, ok_ids: list[int], results, given) -> list:
    """The images' results as rows to write; an image whose results cannot be prepared fails alone."""
    batch = []
    for index, (image_id, result) in enumerate(zip(ok_ids, results)):
        if settings.JOB_TEST_ITEM_DELAY_S:
            time.sleep(settings.JOB_TEST_ITEM_DELAY_S)  # tests: a batch that outlives its lease
        dets = result.detections
        prompts = given[index] if given is not None else [(None, None)] * len(dets)
        try:
            fields = [
                _with_prompt_box(_with_imported_class(
                    services.annotation_fields(d, classification(d.match, classes), pipeline.embedder_version), imported, classes), box)
                for d, (box, imported) in zip(dets, prompts)
            ]
        except Exception as exc:  # one bad image must not leave the job unfinished
            logger.exception("preparing results of image %s failed", image_id)
            services.fail_items(job_id=job_id, image_ids=[image_id], error=item_error(exc))
            continue
        batch.append(services.ItemResult(image_id, fields, result.timings_ms))
    return batch


# The last job's gallery in this worker, by job and embedder version. A job pins its
# gallery version at start, so every batch of it matches against the same exemplars; loading
# them once per job instead of per batch saves 4-5 queries per batch.
_gallery_cache: dict[tuple, object] = {}


def _trained_maskrcnn(snapshot: dict) -> str | None:
    """The Mask R-CNN an admin activated for the project when the job started (issue 15), as a
    local checkpoint folder; None = the worker config's maskrcnn.model."""
    version_id = snapshot.get("maskrcnn_version_id")
    if snapshot.get("engine") != "maskrcnn" or version_id is None:
        return None
    version = ModelVersion.objects.filter(pk=version_id).first()
    return None if version is None else str(maskrcnn_checkpoint(version))


def _job_gallery(job, pipeline):
    key = (job.pk, job.created_at, job.settings_snapshot.get("gallery_version_id"), pipeline.embedder_version)
    if key in _gallery_cache:
        return _gallery_cache[key]
    # The gallery version pinned at start: a later gallery change does not reach this job.
    pinned = pinned_version(job.project_id, job.settings_snapshot)
    exemplar_ids = pinned.exemplar_ids
    ensure_exemplar_embeddings(project_id=job.project_id, pipeline=pipeline, exemplar_ids=exemplar_ids)
    gallery = load_gallery(project_id=job.project_id, embedder_version=pipeline.embedder_version, exemplar_ids=exemplar_ids,
                           negative_ids=pinned.negative_ids)  # the hard negatives of the pinned version too
    _gallery_cache.clear()
    _gallery_cache[key] = gallery
    return gallery


def _write(job_id: int, batch: list) -> int:
    """The whole batch in one transaction; if that fails for a reason other than the database
    being down, each image is written on its own so only the bad one fails."""
    if not batch:
        return 0
    try:
        return sum(services.write_results(job_id=job_id, results=batch).values())
    except PASS_THROUGH:
        raise  # no verdict on the images: their leases lapse and the sweeper re-queues them
    except Exception:
        _raise_if_gone(job_id)
        logger.exception("writing a batch of %s images failed; writing them one by one", len(batch))
    created = 0
    for item in batch:
        try:
            created += services.write_image_result(
                job_id=job_id, image_id=item.image_id, detections=item.detections, stage_ms=item.stage_ms,
            )
        except PASS_THROUGH:
            raise  # as above: the sweeper re-queues what this run did not write
        except Exception as exc:  # one bad image must not leave the job unfinished
            _raise_if_gone(job_id)
            logger.exception("writing results of image %s failed", item.image_id)
            services.fail_items(job_id=job_id, image_ids=[item.image_id], error=item_error(exc))
    return created


def _with_prompt_box(fields: dict, box_xyxy: list | None) -> dict:
    """A boxes job's object keeps the box it was made from (Annotation.prompt_box, x y w h)."""
    if box_xyxy is None:
        return fields
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    return {**fields, "prompt_box": [x0, y0, x1 - x0, y1 - y0]}


def _with_imported_class(fields: dict, imported: tuple | None, classes: dict) -> dict:
    """A given box keeps the class it came with (still pending review); a box without a class
    (or whose class is gone) takes the matched class. The kept class leads the candidates with
    no exemplar: it is not a gallery match, so a gallery change does not re-label it (re-scoring
    skips candidates without an exemplar); the matched classes follow as alternatives."""
    if imported is None or imported[0] not in classes:
        return fields
    class_id, class_score = imported
    label = classes[class_id]
    given = {"class_id": label.pk, "name": label.name, "score": class_score, "exemplar_id": None}
    others = [c for c in fields["candidates"] if c["class_id"] != label.pk]
    return {**fields, "label_class": label, "class_score": class_score, "class_margin": None,
            "candidates": [given, *others]}


def _configure_detector(pipeline, snapshot: dict) -> None:
    """Project thresholds for this batch (the worker runs one task at a time: --pool solo). Every
    batch sets all three, so no earlier job's values leak through; each engine applies what it
    understands (GroundingDINO all three, SAM 3 the NMS IoU)."""
    pipeline.configure(box_threshold=snapshot["box_threshold"], text_threshold=snapshot["text_threshold"],
                       nms_iou=snapshot["nms_iou"])


def _import_boxes(image_ids: list[int]) -> list[list[tuple]]:
    """Box-prompt jobs: per image, the untouched annotations already on it (an import's boxes),
    as (xyxy box, (class id or None, class score)) in id order."""
    boxes = []
    for image_id in image_ids:
        rows = annotation_selectors.unreviewed_boxes(image_id)
        boxes.append([([x, y, x + w, y + h], (class_id, score)) for (x, y, w, h), class_id, score in rows])
    return boxes


@shared_task(name="jobs.embed_gallery", acks_late=True, bind=True, max_retries=None)
def embed_gallery(self, project_id: int) -> int:
    return run_or_retry(self, _embed_gallery, project_id)


def _embed_gallery(project_id: int) -> int:
    try:
        pipeline = get_pipeline()
    except Exception as exc:
        logger.warning("gallery of project %s not embedded: %s", project_id, exc)
        return 0
    added = ensure_exemplar_embeddings(project_id=project_id, pipeline=pipeline)
    rescore.apply_async(args=[project_id], kwargs={"after_embedding": True}, queue=settings.QUEUE_CPU)
    return added


@shared_task(name="jobs.rescore", acks_late=True, bind=True, max_retries=None)
def rescore(self, project_id: int, after_embedding: bool = False) -> int:
    """Re-score stored crop embeddings against the gallery: numpy only, no model pass. If new
    exemplars have no vector yet, the gpu worker embeds them first and calls this again. Both run
    again after a database outage (core/task_retry.py): re-scoring is a recomputation."""
    return run_or_retry(self, _rescore, project_id, after_embedding)


def _rescore(project_id: int, after_embedding: bool = False) -> int:
    from backend.projects.models import Project

    from .rescoring import exemplars_missing_vectors, rescore_project

    try:
        if not after_embedding and exemplars_missing_vectors(project_id=project_id):
            embed_gallery.apply_async(args=[project_id], queue=settings.QUEUE_GPU)
            return 0
        return rescore_project(project_id=project_id)
    except Project.DoesNotExist:  # deleted while this waited in the queue: nothing to re-score
        logger.info("project %s was deleted before its re-scoring ran", project_id)
        return 0


def schedule_gallery_refresh(project_id: int) -> None:
    """Gallery changed (called on commit): re-score, embedding new exemplars first if needed."""
    outbox.publish(rescore, args=[project_id], queue=settings.QUEUE_CPU)
