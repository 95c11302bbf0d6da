"""Writes for exchange: start export/import jobs, and run them (called by the thin tasks)."""
from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
import zipfile

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from backend.core import events, outbox
from backend.core.errors import Conflict, DomainError, NotFound, storage_problem
from backend.core.files import save_finished_file
from backend.core.task_retry import DB_DOWN
from backend.core.zips import raised_reading_zip
from backend.projects.models import LabelClass, Project

from . import selectors
from .formats import writer_for
from .formats.base import ExportContext
from .models import ExchangeFormat, ExportJob, ImportJob, JobStatus

logger = logging.getLogger("razmetka.exchange")

SEGMENTATIONS = {"rle", "polygon"}

# An absolute file system path inside a message ('/srv/app/var/media/projects/4/images/x.png'):
# at least one folder, not part of a URL or of a relative path. A job's error shows only its last part.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")


def public_message(exc: BaseException) -> str:
    """The exception as a job's error may show it: never a path on the server (a file's
    absolute path names the server's layout), at most its base name; no NUL (PostgreSQL)."""
    if storage_problem(exc):
        return storage_problem(exc)
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.strerror}: '{os.path.basename(os.fsdecode(exc.filename))}'"
    else:
        text = str(exc)
    text = _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "…", text)
    return text.replace("\x00", "\\u0000")[:2000]


class ExportBusy(Conflict):
    """The project has an export queued or running already: one at a time per project."""

    code = "export_running"


class ExportGone(DomainError):
    """The export's file was deleted by retention (EXPORTS_KEPT_PER_PROJECT)."""

    status_code = 410
    code = "export_expired"


class ExportCancelled(Exception):
    """The export's job was deleted while it ran: the run stops and keeps nothing."""


# pg_advisory_xact_lock(EXPORT_START_LOCK, project id): one start_export of a project at a time, so
# two concurrent starts cannot both find no export running.
EXPORT_START_LOCK = 0x1A4C


def _check_format(fmt: str) -> None:
    if fmt not in ExchangeFormat.values:
        raise DomainError(f"Unknown format '{fmt}'. Allowed: {', '.join(ExchangeFormat.values)}.")


# --------------------------------------------------------------------------- export


@transaction.atomic
def _nothing_to_export(options: dict) -> str:
    """Said in words the export page's options use; the API's names follow in brackets."""
    narrowed = [what for key, what in (("image_ids", "images"), ("status", "statuses"), ("class_ids", "classes"))
                if options.get(key)]
    among = f" among the chosen {' and '.join(narrowed)}" if narrowed else ""
    if options["include_empty_images"]:
        return f"Nothing to export: there is no image{among}."
    if options["include_pending"]:
        return (f"Nothing to export: no image{among} has an approved or pending object with a class. Give the "
                "objects a class first, or also list images without objects (include_empty_images).")
    return (f"Nothing to export: no image{among} has an approved object with a class yet. Review some first, or "
            "also export objects still pending (include_pending) or images without objects (include_empty_images).")


def start_export(
    *, project: Project, user, format: str, segmentation: str = "rle", include_pending: bool = False,
    include_empty_images: bool = False, include_images: bool = False, image_ids: list[int] | None = None,
    status: list[str] | None = None, class_ids: list[int] | None = None,
) -> ExportJob:
    _check_format(format)
    if segmentation not in SEGMENTATIONS:
        raise DomainError("segmentation must be 'rle' or 'polygon'.")
    if image_ids:
        # Existence only: an image with nothing to export yet is still one of this project's.
        known = set(selectors.export_images(project, {"image_ids": image_ids, "include_empty_images": True})
                    .values_list("id", flat=True))
        missing = sorted(set(image_ids) - known)
        if missing:
            raise DomainError(f"Image {missing[0]} does not exist in this project.")
    if class_ids:
        known = set(LabelClass.objects.filter(project=project, pk__in=class_ids).values_list("id", flat=True))
        missing = sorted(set(class_ids) - known)
        if missing:
            raise DomainError(f"Class {missing[0]} does not exist in this project.")
    options = {
        "segmentation": segmentation, "include_pending": include_pending, "include_empty_images": include_empty_images,
        "include_images": include_images, "image_ids": sorted(set(image_ids or [])), "status": sorted(set(status or [])),
        "class_ids": sorted(set(class_ids or [])),
    }
    if not selectors.export_images(project, options).exists():
        # It ended "done" with an archive of no images and nothing said why (black-box round 16).
        raise DomainError(_nothing_to_export(options))
    # One queued-or-running export per project: each one can write gigabytes (include_images), so
    # a member may not pile them up; finished ones are bounded by retention (expire_old_exports).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [EXPORT_START_LOCK, project.pk])
    active = ExportJob.objects.filter(project=project, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]) \
        .order_by("id").values("pk", "status", "format").first()
    if active is not None:
        raise ExportBusy(
            f"Export {active['pk']} ({active['format']}) of this project is still {active['status']}: one export "
            f"at a time per project. Wait for it to finish, or delete it, then start this one.",
            extra={"export_id": active["pk"], "export_status": active["status"]},
        )
    job = ExportJob.objects.create(project=project, created_by=user, format=format, options=options)
    outbox.send_on_commit(job)  # sent by the sweeper if the broker is down right now
    return job


@transaction.atomic
def delete_export(*, project: Project, job_id: int) -> None:
    """Delete an export job and its file. A queued one is never run (its task finds no job); a
    running one stops at its next progress step (ExportCancelled) and keeps nothing, and should it
    finish first, it finds its row gone and deletes the file it just stored (_run_claimed_export)."""
    # FOR UPDATE: a worker finishing this export at this moment has committed its file name
    # before this reads it (or finds the row gone), so the file is never left behind.
    job = ExportJob.objects.select_for_update().filter(project=project, pk=job_id).first()
    if job is None:
        raise NotFound("Export not found.")
    name = job.result_file
    job.delete()
    if name:
        transaction.on_commit(lambda: _delete_stored(name))
    events.emit(project.pk, "export.deleted", job=job_id)


def _delete_stored(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception:  # storage outage: the row no longer points at it; log rather than fail the caller
        logger.exception("could not delete export file %s", name)


def expire_old_exports(project_id: int, *, keep: int | None = None) -> list[int]:
    """Retention: keep the files of the newest `keep` (EXPORTS_KEPT_PER_PROJECT, at least 1)
    finished exports of the project; delete the older ones' files and mark their rows expired
    (`expired_at`, `result_file` ""; a download then answers 410). The ids expired."""
    keep = max(1, settings.EXPORTS_KEPT_PER_PROJECT if keep is None else keep)
    stale = list(
        ExportJob.objects.filter(project_id=project_id, status=JobStatus.DONE).exclude(result_file="")
        .order_by("-finished_at", "-id").values_list("pk", "result_file")[keep:]
    )
    expired = []
    now = timezone.now()
    for pk, name in stale:
        # The row first (only if it still names that file), so it never points at a deleted file.
        if ExportJob.objects.filter(pk=pk, result_file=name).update(result_file="", expired_at=now):
            _delete_stored(name)
            expired.append(pk)
    if expired:
        events.emit(project_id, "export.expired", jobs=expired)
    return expired


def _claim(model, job_id: int, *, resume: bool = False):
    """Move a queued job to running exactly once (a redelivered task finds it taken). `resume`:
    the retry of a run that lost the database takes back the job that run left running."""
    states = [JobStatus.QUEUED, JobStatus.RUNNING] if resume else [JobStatus.QUEUED]
    updated = model.objects.filter(pk=job_id, status__in=states).update(
        status=JobStatus.RUNNING, started_at=timezone.now(),
    )
    return model.objects.select_related("project").get(pk=job_id) if updated else None


def _fail_running(model, job, exc: Exception) -> None:
    """The last resort of a run that raised unexpectedly: a job still running ends failed, with
    the reason, rather than running for ever."""
    logger.exception("%s %s failed", model._meta.model_name, job.pk)
    fail_if_running(model, job.pk, f"internal error: {public_message(exc)}"[:2000])


def fail_if_running(model, pk: int, message: str) -> bool:
    """End an export or import job that is still running as failed, with `message` (an import's
    as its one error), and tell the project; True if this call did. Also the liveness sweeper's
    (core/liveness.py) for a job whose worker died. Its own savepoint, so a failed write before it
    (in a caller's transaction) does not stop this one."""
    running = model.objects.filter(pk=pk, status=JobStatus.RUNNING)
    with transaction.atomic():
        row = running.values("project_id", "upload_name").first() if model is ImportJob else \
            running.values("project_id").first()
        if row is None:
            return False
        if model is ImportJob:
            fields = {"errors": [{"item": (row["upload_name"] or "upload").replace("\x00", ""), "error": message}],
                      "result": {"error_count": 1}}
        else:
            fields = {"error": message}
        changed = running.update(status=JobStatus.FAILED, finished_at=timezone.now(), **fields)
    if changed:
        kind = "import" if model is ImportJob else "export"
        events.emit(row["project_id"], f"{kind}.finished", job=pk, status=JobStatus.FAILED)
    return bool(changed)


def run_export(*, job_id: int, chunk: int = selectors.CHUNK, resume: bool = False) -> ExportJob | None:
    """`resume`: a retry after a database outage (exchange/tasks.py); an export is a read, so it
    simply runs again from the start."""
    job = _claim(ExportJob, job_id, resume=resume)
    if job is None:
        return None
    try:
        return _run_claimed_export(job, chunk)
    except DB_DOWN:
        raise
    except Exception as exc:  # whatever went wrong, the job does not stay "running"
        _fail_running(ExportJob, job, exc)
        return ExportJob.objects.filter(pk=job.pk).first()


def _run_claimed_export(job: ExportJob, chunk: int) -> ExportJob:
    job_id = job.pk
    # Built on this worker's scratch disk (zipfile needs to seek), then put into storage, which may be
    # object storage shared with web processes on other hosts.
    fd, path = tempfile.mkstemp(prefix="razmetka-export-", suffix=".zip", dir=settings.FILE_UPLOAD_TEMP_DIR)
    os.close(fd)
    try:
        result = write_export(job=job, path=path, chunk=chunk)
        size = os.path.getsize(path)
        name = save_finished_file(f"exports/{job.project_id}/{uuid.uuid4().hex}.zip", path)
    except ExportCancelled:  # deleted while it ran (delete_export): nothing to keep or report
        if os.path.exists(path):
            os.remove(path)
        return None
    except DB_DOWN:
        if os.path.exists(path):
            os.remove(path)
        raise  # not the export's fault: the task runs it again once the database is back
    except Exception as exc:  # the job records why; the worker stays healthy
        logger.exception("export %s failed", job_id)
        if os.path.exists(path):
            os.remove(path)
        ExportJob.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED, error=public_message(exc), finished_at=timezone.now(),
        )
        events.emit(job.project_id, "export.finished", job=job.pk, status=JobStatus.FAILED)
        return ExportJob.objects.filter(pk=job.pk).first()
    with transaction.atomic():  # a savepoint: should this write fail, run_export's _fail_running still can
        kept = ExportJob.objects.filter(pk=job.pk).update(
            status=JobStatus.DONE, result_file=name, result_size=size, result=result,
            finished_at=timezone.now(),
        )
    if not kept:
        # The job went with its project while it ran: the project's files were deleted without
        # this one, which would stay on disk, a deleted project's images and objects for good.
        default_storage.delete(name)
        return None
    events.emit(job.project_id, "export.finished", job=job.pk, status=JobStatus.DONE)
    try:
        expire_old_exports(job.project_id)
    except DB_DOWN:
        pass  # the export is done; the next finished one applies retention
    except Exception:
        logger.exception("export retention for project %s failed", job.project_id)
    return ExportJob.objects.filter(pk=job.pk).first()


def _export_progress(job: ExportJob, done: int, total: int) -> None:
    """Progress on the job row and live; a row that is gone was deleted (delete_export): stop."""
    if not ExportJob.objects.filter(pk=job.pk).update(progress_done=done, progress_total=total):
        raise ExportCancelled(job.pk)
    events.emit(job.project_id, "export.progress", job=job.pk, done=done, total=total)


def write_export(*, job: ExportJob, path: str, chunk: int = selectors.CHUNK) -> dict:
    """Stream the export into a zip on disk: images arrive in chunks, big JSON documents are
    spooled to temp files, so memory does not grow with the project."""
    options = job.options
    total = selectors.export_images(job.project, options).count()
    _export_progress(job, 0, total)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    counts = {"images": 0, "annotations": 0}
    writer = writer_for(job.format)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        ctx = ExportContext(
            zf=zf, classes=selectors.project_classes(job.project), segmentation=options.get("segmentation", "rle"),
            include_images=bool(options.get("include_images")), project_name=job.project.name,
        )
        writer.begin(ctx)
        for image in selectors.iter_export_images(job.project, options, chunk=chunk, by_stem=writer.stem_named):
            writer.add(ctx, image)
            counts["images"] += 1
            counts["annotations"] += len(image.objects)
            if counts["images"] % chunk == 0:
                _export_progress(job, counts["images"], total)
        writer.finish(ctx)
    _export_progress(job, counts["images"], max(total, counts["images"]))
    if ctx.missing_images:  # deleted while the export ran: in the documents, their files left out
        counts["missing_images"] = ctx.missing_images
    return counts


# --------------------------------------------------------------------------- import


@transaction.atomic
def start_import(
    *, project: Project, user, format: str, upload, as_accepted: bool = False, create_missing_classes: bool = False,
) -> ImportJob:
    _check_format(format)
    size = getattr(upload, "size", None) or 0
    if size > settings.MAX_UPLOAD_BYTES:
        raise DomainError(f"The file is larger than the limit of {settings.MAX_UPLOAD_BYTES} bytes (MAX_UPLOAD_BYTES).")
    upload.seek(0)
    head = upload.read(4)
    upload.seek(0)
    extension = "zip" if head.startswith(b"PK") else "json"
    # Saved chunk by chunk from the (spooled) upload: a big file is never one bytes object here.
    stored = default_storage.save(f"imports/{project.pk}/{uuid.uuid4().hex}.{extension}", File(upload))
    job = ImportJob.objects.create(
        project=project, created_by=user, format=format, upload_file=stored,
        upload_name=os.path.basename(getattr(upload, "name", "") or "upload")[:300],
        options={"as_accepted": as_accepted, "create_missing_classes": create_missing_classes},
    )
    outbox.send_on_commit(job)
    return job


class ImportProgress:
    """Reports an import's progress on its row and as a live `import.progress` event.

    Pass 2 writes in one long transaction, where an UPDATE of the job row and an on-commit
    event would only show once it is over. So while that transaction is open, progress goes
    through a database connection of its own (autocommit) and the event is sent at once: it
    describes no data, so nothing needs to wait for the commit. Callers already inside a
    transaction (a test's) cannot be seen from another connection; they report inline."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.outer = connection.in_atomic_block
        self.side = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        job = self.job
        if self.outer or not connection.in_atomic_block:
            ImportJob.objects.filter(pk=job.pk).update(progress_stage=stage, progress_done=done, progress_total=total)
            events.emit(job.project_id, "import.progress", job=job.pk, stage=stage, done=done, total=total)
            return
        if self.side is None:
            self.side = connections.create_connection(DEFAULT_DB_ALIAS)
        # SKIP LOCKED: a project delete holds the job row while its cascade waits for this import's
        # transaction, which waits here in Python for this UPDATE: a lock cycle PostgreSQL cannot
        # see, that hung the delete, the import and every worker that touched the project. A
        # progress figure can be skipped; the import then goes on and the delete meets it.
        table = ImportJob._meta.db_table
        with self.side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET progress_stage = %s, progress_done = %s, progress_total = %s "
                f"WHERE id = (SELECT id FROM {table} WHERE id = %s FOR UPDATE SKIP LOCKED)", [stage, done, total, job.pk],
            )
        events.emit_now(job.project_id, "import.progress", job=job.pk, stage=stage, done=done, total=total)

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def run_import(*, job_id: int, resume: bool = False) -> ImportJob | None:
    """`resume`: a retry after a database outage (exchange/tasks.py). It takes back the job its
    first run left running: the writes and the job's "done" commit in one transaction, so a job
    still running has nothing applied, and one that is done is not run again."""
    job = _claim(ImportJob, job_id, resume=resume)
    if job is None:
        return None
    try:
        return _run_claimed_import(job)
    except DB_DOWN:
        raise  # the database, not the file: the task runs again and takes the job back
    except Exception as exc:  # whatever went wrong (recording the errors too), the job does not stay "running"
        _fail_running(ImportJob, job, exc)
        return ImportJob.objects.filter(pk=job.pk).first()


def _run_claimed_import(job: ImportJob) -> ImportJob | None:
    from .importing import AlreadyApplied, apply_import

    job_id = job.pk
    progress = ImportProgress(job)
    try:
        errors, result = apply_import(job=job, progress=progress)
    except AlreadyApplied:
        return None  # another run of this import committed it
    except DB_DOWN:
        raise  # the database, not the file: the task runs again and takes the job back
    except Exception as exc:
        if raised_reading_zip(exc):  # the upload's fault (a corrupt entry), not ours: no traceback
            logger.info("import %s: the zip could not be read (%s)", job_id, exc)
            message = f"the zip could not be read: {public_message(exc)}; zip the files again"
        else:
            logger.exception("import %s failed", job_id)
            message = f"internal error: {public_message(exc)}"
        errors, result = [{"item": job.upload_name or "upload", "error": message[:2000]}], {}
    finally:
        progress.close()
    if errors:  # "done" committed with the writes; only a job still running can fail (not one
        # another run of it finished meanwhile)
        with transaction.atomic():  # a savepoint: should this write fail, _fail_running's still can
            ImportJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.FAILED, errors=errors, result=result, finished_at=timezone.now(),
            )
    ImportJob.objects.filter(pk=job.pk).update(upload_file="")
    job_now = ImportJob.objects.filter(pk=job.pk).first()  # None: deleted with its project meanwhile
    if job_now is not None:
        events.emit(job.project_id, "import.finished", job=job.pk, status=job_now.status)
    if job.upload_file:
        default_storage.delete(job.upload_file)  # the upload served its purpose; nothing needs it
    return job_now
