"""Chunked, resumable uploads: one session per file, chunks appended at the offset the server
holds, and the decoding, hashing, dedup and thumbnails on the cpu queue.

The web request only writes bytes to a temp file under VAR_DIR/uploads (local disk even when
media lives in object storage: chunks are appended in place). When the last byte is in, finish
moves the file into media storage (`incoming/…`), so the cpu worker that processes it may run
on another host. Each request carries one chunk, so Django's files-per-request limit is never
reached however many files a user drops.
"""
from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from backend.core import events, outbox
from backend.core.errors import Conflict, DomainError, NotFound, PayloadTooLarge
from backend.core.files import save_finished_file
from backend.core.task_retry import DB_DOWN
from backend.core.text import drawn
from backend.projects.models import Project

from .models import Image, UploadSession, UploadStatus

logger = logging.getLogger("razmetka.uploads")

# The client's chunk size: large enough that per-request overhead is small, small enough that a
# dropped connection loses little and one request body stays far below Django's memory limits.
CHUNK_BYTES = 8 * 1024 * 1024
MAX_CHUNK_BYTES = 16 * 1024 * 1024
READ_BLOCK = 1024 * 1024
# Sessions that stop receiving are abandoned after this long (their temp file is deleted).
STALE_AFTER = timedelta(hours=24)
# Open uploads one person may have at once (the page sends 3 at a time): bounds the temp disk
# a single account can claim. Only recently active ones count, so abandoned ones never lock anyone out.
MAX_OPEN_SESSIONS = 32
OPEN_WINDOW = timedelta(minutes=30)
# Under READ COMMITTED two opens at once both counted 31 and both inserted (33 open): opens of
# one (project, user) take this transaction lock first, here and in hot_upload.
OPEN_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s, %s)"
OPEN_LOCK = 0x1A4D  # next to the exchange's EXPORT_START_LOCK (0x1A4C) and IMPORT_WRITE_LOCK (0x1A4B)


def open_lock_args(project_id: int, user_id: int) -> tuple[int, int]:
    """OPEN_LOCK_SQL's arguments: the pair folded into an int4 (two pairs that share one only wait
    for each other)."""
    return OPEN_LOCK, (project_id * 1_000_003 + user_id) % 2**31


# A session still "processing" this long after its last update lost its worker; a redelivered
# task may take it over (storing is idempotent: (project, sha256) is unique).
PROCESSING_LEASE = timedelta(minutes=15)
SHA256_FORM = re.compile(r"^[0-9a-f]{64}$")
# What the uploader reads when the part file or the stored file has vanished (a cleaned disk).
BYTES_GONE = "The uploaded bytes are gone from the server; upload the file again."


class OffsetMismatch(Conflict):
    """The chunk does not start where the server's copy ends; the client resumes from `expected`."""

    code = "offset_mismatch"

    def __init__(self, expected: int) -> None:
        super().__init__(
            f"This chunk starts at the wrong offset; the server has {expected} bytes. Resume from there.",
            extra={"received_bytes": expected},
        )
        self.expected = expected


def temp_dir() -> Path:
    path = Path(settings.VAR_DIR) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def temp_path(session: UploadSession) -> Path:
    return temp_path_of(session.pk)


def temp_path_of(session_id: int) -> Path:
    return temp_dir() / f"{session_id}.part"


def incoming_name(project_id: int, session_id: int) -> str:
    """Where a finished file waits in media storage for a cpu worker (on any host)."""
    return f"incoming/{project_id}/{session_id}.bin"


def _locked_session(project: Project, user, session_id: int) -> UploadSession:
    """The uploader's own session, row-locked for a write (call inside a transaction)."""
    # By id: the hot route (hot_upload.py) finishes with a Project that holds only its key.
    session = UploadSession.objects.select_for_update().filter(project_id=project.pk, pk=session_id, created_by_id=user.pk).first()
    if session is None:
        raise NotFound("Upload not found.")
    return session


# --------------------------------------------------------------------------- reads


def open_sessions(project: Project, user) -> list[UploadSession]:
    """The user's uploads still taking bytes in this project (those the cap counts), oldest first."""
    return list(UploadSession.objects.filter(
        project=project, created_by_id=user.pk, status=UploadStatus.RECEIVING,
        updated_at__gte=timezone.now() - OPEN_WINDOW,
    ).order_by("pk")[:MAX_OPEN_SESSIONS * 2])


def get_session(project: Project, session_id: int, user) -> UploadSession:
    """A session is its uploader's: other members cannot write into or read someone's upload."""
    session = UploadSession.objects.filter(project=project, pk=session_id, created_by_id=user.pk).first()
    if session is None:
        raise NotFound("Upload not found.")
    return session


# --------------------------------------------------------------------------- writes


def session_file_name(file_name: str) -> str:
    """The name a session keeps: a folder-relative path ("field/photo.jpg", as zips' entries are
    named) without ".." or "." parts, drive letters or leading slashes ("../../etc/passwd" and
    "C:\\x\\a.jpg" were stored and exported as sent)."""
    # Drawn characters only, as a plain upload's name (core/body_parsers): a right-to-left override
    # showed 'gpj.exe' as 'exe.jpg' here while the same file sent whole lost it (black-box round 17b).
    parts = [drawn(p).strip() for p in re.split(r"[/\\]", file_name or "")]
    parts = [p for p in parts if p not in ("", ".", "..") and not re.fullmatch(r"[A-Za-z]:", p)]
    return "/".join(parts)[-500:] or "upload"


def create_session(*, project: Project, user, file_name: str, size_bytes: int, sha256: str = "") -> UploadSession:
    """Open a session. When the client sent a hash that this project already holds, the file is
    reported as a duplicate at once and never sent (re-uploading a set costs nothing)."""
    name = session_file_name(file_name)
    if size_bytes <= 0:
        raise DomainError(f"{name}: the file is empty.")
    if size_bytes > settings.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"{name} is {size_bytes} bytes; the limit is {settings.MAX_UPLOAD_BYTES} bytes (MAX_UPLOAD_BYTES)."
        )
    sha256 = (sha256 or "").lower()
    if sha256 and not SHA256_FORM.match(sha256):
        raise DomainError("sha256 must be 64 hexadecimal characters.")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(OPEN_LOCK_SQL, open_lock_args(project.pk, user.pk))
        open_now = UploadSession.objects.filter(
            project=project, created_by_id=user.pk, status=UploadStatus.RECEIVING,
            updated_at__gte=timezone.now() - OPEN_WINDOW,
        ).count()
        if open_now >= MAX_OPEN_SESSIONS:
            raise DomainError(
                f"You have {open_now} uploads in progress in this project; finish or cancel some before starting more "
                f"(GET .../images/uploads/ lists them; an upload untouched for {int(OPEN_WINDOW.total_seconds() // 60)} "
                "minutes no longer counts).",
                extra={"code": "too_many_uploads"},
            )
        existing = (
            Image.objects.filter(project=project, sha256=sha256).values_list("pk", flat=True).first() if sha256 else None
        )
        if existing:
            return UploadSession.objects.create(
                project=project, created_by=user, file_name=name, size_bytes=size_bytes, sha256=sha256,
                status=UploadStatus.DONE, result={"created": [], "duplicates": [{"name": name, "existing_id": existing}], "errors": []},
            )
        session = UploadSession.objects.create(project=project, created_by=user, file_name=name, size_bytes=size_bytes, sha256=sha256)
    start_part_file(session.pk)
    return session


def start_part_file(session_id: int) -> None:
    """An empty part file for a new session (emptied, should one be left from a database that
    was since reset: its ids start again)."""
    temp_path_of(session_id).open("wb").close()


def chunk_refusal(status: str, received: int, size: int, offset: int, length: int, finish: bool) -> DomainError | None:
    """Why a chunk of `length` bytes at `offset` may not be written into a session in this state
    (None: it may). write_chunk raises it; the hot route (hot_upload.py) hands such a request to
    the view."""
    if status != UploadStatus.RECEIVING:
        return DomainError(f"This upload is {status}; it takes no more bytes.")
    if offset != received:
        return OffsetMismatch(received)
    if offset + length > size:
        return DomainError(f"The chunk ends at byte {offset + length}, past the declared size of {size} bytes.")
    if finish and offset + length != size:
        return DomainError(f"finish=1 goes with the last chunk; this one ends at byte {offset + length} of {size}.")
    return None


def write_at(path: Path, offset: int, blocks) -> None:
    """Write the blocks at `offset` and cut the file there (a retry overwrites what a dropped
    connection left after it). A part file gone from the disk is refused past offset 0: writing
    there would leave zeros where the earlier chunks were."""
    exists = path.exists()
    if not exists and offset > 0:
        raise DomainError(BYTES_GONE)
    with open(path, "r+b" if exists else "w+b") as fh:
        fh.seek(offset)
        for block in blocks:
            fh.write(block)
        fh.truncate()


def _blocks(stream, offset: int, length: int):
    remaining = length
    while remaining:
        block = stream.read(min(READ_BLOCK, remaining))
        if not block:
            raise DomainError(f"The connection ended after {length - remaining} of {length} bytes; resume from {offset}.")
        yield block
        remaining -= len(block)


def write_chunk(*, project: Project, user, session_id: int, offset: int, length: int, stream,
                finish: bool = False) -> UploadSession:
    """Write `length` bytes read from `stream` at `offset`, which must equal what the server holds.

    The row lock makes concurrent retries of the same chunk take turns; `received_bytes` only
    moves once the whole chunk is on disk, so a connection dropped mid-chunk leaves the offset
    where it was and the partial bytes are overwritten by the retry. `finish`: this is the last
    chunk; the file is handed to the worker in the same request (one request less per file)."""
    if length <= 0:
        raise DomainError("Send the chunk's bytes as the request body (with a Content-Length).")
    if length > MAX_CHUNK_BYTES:
        raise PayloadTooLarge(f"A chunk may be at most {MAX_CHUNK_BYTES} bytes; this one is {length}.")
    with transaction.atomic():
        session = _locked_session(project, user, session_id)
        refusal = chunk_refusal(session.status, session.received_bytes, session.size_bytes, offset, length, finish)
        if refusal is not None:
            raise refusal
        write_at(temp_path(session), offset, _blocks(stream, offset, length))
        session.received_bytes = offset + length
        session.save(update_fields=["received_bytes", "updated_at"])
    if finish:
        return finish_session(project=project, user=user, session_id=session_id)
    return session


def finish_session(*, project: Project, user, session_id: int) -> UploadSession:
    """All bytes are here: hand the file to the cpu worker (once; a repeated finish is a no-op)."""
    with transaction.atomic():
        session = _locked_session(project, user, session_id)
        if session.status != UploadStatus.RECEIVING:
            return session
        if session.received_bytes != session.size_bytes:
            raise DomainError(
                f"The upload has {session.received_bytes} of {session.size_bytes} bytes; send the rest first."
            )
        path = temp_path(session)
        if not path.exists():
            raise DomainError(BYTES_GONE)
        # Into media storage: the worker that processes it may be on another host.
        session.stored_name = save_finished_file(incoming_name(project.pk, session.pk), str(path))
        session.status = UploadStatus.QUEUED
        session.save(update_fields=["status", "stored_name", "updated_at"])
        outbox.send_on_commit(session)  # sent by the sweeper if the broker is down right now
    return session


def cancel_session(*, project: Project, user, session_id: int) -> None:
    with transaction.atomic():
        session = _locked_session(project, user, session_id)
        if session.status in {UploadStatus.QUEUED, UploadStatus.PROCESSING}:
            raise DomainError("This upload is being processed and can no longer be cancelled.")
        path = temp_path(session)
        session.delete()
    path.unlink(missing_ok=True)


def process_session(session_id: int, *, resume: bool = False) -> UploadSession | None:
    """Run by the cpu worker (and callable directly by scripts): validate, hash, dedup, store
    and thumbnail every image in the file through the same `upload_images` as the multipart API.

    A database error is raised, not recorded as the file's failure (the file is fine; the task
    tries again). `resume`: this is that retry, and the session its own earlier run left
    "processing" is taken back at once instead of after PROCESSING_LEASE."""
    from .services import upload_images

    now = timezone.now()
    lost = Q(status=UploadStatus.PROCESSING)
    if not resume:
        lost &= Q(updated_at__lt=now - PROCESSING_LEASE)
    claimed = UploadSession.objects.filter(Q(status=UploadStatus.QUEUED) | lost, pk=session_id).update(
        status=UploadStatus.PROCESSING, updated_at=now,
    )
    if not claimed:  # a redelivered task: another run has it, or it is finished
        return None
    session = UploadSession.objects.select_related("project", "created_by").filter(pk=session_id).first()
    if session is None:  # deleted with its project just after the claim
        logger.info("upload session %s went with its project before it was processed", session_id)
        return None
    try:
        result = _process_file(session, upload_images)
        status = UploadStatus.DONE
    except DB_DOWN:
        raise  # the database, not the file: the task runs again (images/tasks.py)
    except Exception as exc:  # the user sees the file's name and why; the traceback goes to the log
        if not Project.objects.filter(pk=session.project_id).exists():
            result, status = None, None  # the project was deleted while this ran: not the file's fault
        else:
            logger.exception("upload session %s failed", session_id)
            result = {"created": [], "duplicates": [], "errors": [{"name": session.file_name, "error": f"Processing failed: {exc}"}]}
            status = UploadStatus.FAILED
    # An UPDATE, not save(): a project deleted meanwhile took the row, and save() raised
    # "did not affect any rows" (a traceback per file) and left the file in incoming/.
    kept = status is not None and UploadSession.objects.filter(pk=session.pk).update(
        result=result, status=status, updated_at=timezone.now())
    if session.stored_name:
        default_storage.delete(session.stored_name)
    temp_path(session).unlink(missing_ok=True)
    if not kept:
        logger.info("upload session %s went with its project while it was processed", session_id)
        return None
    session.result, session.status = result, status
    events.emit(session.project_id, "upload.finished", upload=session.pk)
    return session


def _process_file(session: UploadSession, upload_images) -> dict:
    if not session.stored_name or not default_storage.exists(session.stored_name):
        return {"created": [], "duplicates": [], "errors": [{"name": session.file_name, "error": BYTES_GONE}]}
    import hashlib

    # Hashed first: a file the project already has is then reported without being decoded, and
    # the client's hash (when it sent one) is checked against the bytes that arrived.
    digest = hashlib.sha256()
    with default_storage.open(session.stored_name, "rb") as fh:
        for block in iter(lambda: fh.read(READ_BLOCK), b""):
            digest.update(block)
    if session.sha256 and digest.hexdigest() != session.sha256:
        return {"created": [], "duplicates": [], "errors": [{"name": session.file_name, "error": "The received bytes do not match the file's SHA-256; upload it again."}]}
    with default_storage.open(session.stored_name, "rb") as fh:
        report = upload_images(project=session.project, user=session.created_by, files=[File(fh, name=session.file_name)],
                               from_upload=session.pk, file_sha256=digest.hexdigest())
    return {
        "created": [image.pk for image in report.created],
        "duplicates": report.duplicates,
        "errors": report.errors,
    }


def sweep_stale_sessions() -> int:
    """Delete sessions nobody has written to for STALE_AFTER, and their temp files."""
    cutoff = timezone.now() - STALE_AFTER
    stale = list(UploadSession.objects.filter(status=UploadStatus.RECEIVING, updated_at__lt=cutoff).values_list("pk", flat=True))
    for pk in stale:
        (temp_dir() / f"{pk}.part").unlink(missing_ok=True)
    UploadSession.objects.filter(pk__in=stale).delete()
    return len(stale)
