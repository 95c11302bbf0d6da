"""Serving private media: only through views that checked membership first.

Media is streamed through the app, never handed out as a signed object-storage URL: the membership
check then stays in one place (the view), a revoked member loses access at once instead of when a
URL expires, and the object store needs no public endpoint, CORS or clock agreement with browsers.
"""
from __future__ import annotations

import unicodedata
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.core.files import File
from django.core.files.storage import default_storage
from django.http import FileResponse

from .errors import NotFound
from .text import printable

BLOCK = 256 * 1024
_END = object()


class StreamedFile(FileResponse):
    """A FileResponse that streams under ASGI too, in blocks of BLOCK bytes."""

    block_size = BLOCK

    async def __aiter__(self):
        # Django's default reads a sync iterator whole (sync_to_async(list)) before sending the first
        # byte: a multi-GB export would sit in the web process's memory. Pull one block at a time.
        iterator = iter(self.streaming_content)
        while (part := await sync_to_async(next, thread_sensitive=False)(iterator, _END)) is not _END:
            yield part


def _open_stream(name: str):
    """(file-like, size or None) for a stored name; raises FileNotFoundError when it is gone."""
    fh = default_storage.open(name, "rb")
    obj = getattr(fh, "obj", None)  # django-storages' S3File: the object, already HEAD-checked
    if obj is None:
        return fh, None
    # S3File.read() would first download the whole object to a temp file; the GET body streams.
    fh.close()
    return obj.get()["Body"], obj.content_length


def private_file_response(name: str, content_type: str, download_name: str, *, attachment: bool = False) -> FileResponse:
    """`attachment`: the browser saves the file (an export) instead of showing it (an image)."""
    try:
        fh, size = _open_stream(name)
    except FileNotFoundError:
        raise NotFound("The file is missing from storage.") from None
    response = StreamedFile(fh, content_type=content_type)
    if size is not None:
        response["Content-Length"] = str(size)
    return _private(response, download_name, attachment)


def read_stored(name: str, size: int = -1) -> bytes:
    """The stored file's bytes (its first `size` bytes when size >= 0)."""
    try:
        with default_storage.open(name, "rb") as fh:
            return fh.read(size)
    except FileNotFoundError:
        raise NotFound("The file is missing from storage.") from None


_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґ",
    "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch _ y _ e yu ya i yi ye g".split(),
))


def _ascii_fallback(name: str) -> str:
    """An ASCII stand-in for `filename=` (clients that ignore `filename*`): Cyrillic
    transliterated, accents dropped, anything else left out; "file" when no letter is left."""
    out = []
    for char in name:
        latin = _CYRILLIC.get(char.lower())
        if latin is not None:
            latin = latin.strip("_")
            out.append(latin.capitalize() if char != char.lower() else latin)
        else:
            out.append(unicodedata.normalize("NFKD", char))
    text = "".join(c for c in "".join(out) if c.isascii() and (c.isalnum() or c in "._- "))
    stem, dot, extension = text.rpartition(".")
    if not dot:
        stem, extension = text, ""
    if not any(c.isalnum() for c in stem):
        stem = "file"
    return f"{stem}.{extension}" if dot else stem


def content_disposition(download_name: str, *, attachment: bool = False) -> str:
    """RFC 6266: `inline|attachment; filename="<ascii>"`, plus `filename*=UTF-8''<percent-encoded>`
    (RFC 5987) when the name is not plain ASCII. The value itself is always ASCII, so Django never
    MIME-encodes the whole header (which browsers do not understand)."""
    # Anything drawn but path and quoting characters; NFC, so a decomposed 'été' is not cut to 'ete'.
    # Emoji were dropped: '😀.png' downloaded as '.png' (black-box round 17).
    safe = "".join(c for c in unicodedata.normalize("NFC", download_name)
                   if printable(c) and c not in '";\\/').strip() or "file"
    if len(safe) > 200:  # cut from the stem: the extension is what opens the file (it was cut off)
        stem, dot, extension = safe.rpartition(".")
        safe = f"{stem[:199 - len(extension)]}.{extension}" if dot and stem and len(extension) <= 10 else safe[:200]
    fallback = _ascii_fallback(safe)
    value = f'{"attachment" if attachment else "inline"}; filename="{fallback}"'
    if fallback != safe:
        value += f"; filename*=UTF-8''{quote(safe, safe='')}"
    return value


def _private(response, download_name: str, attachment: bool = False):
    response["Content-Disposition"] = content_disposition(download_name, attachment=attachment)
    response["X-Content-Type-Options"] = "nosniff"
    # Even if a browser were fooled into rendering it, nothing in it may run.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def store_file(prefix: str, extension: str, data: bytes, source_path: str | None = None) -> str:
    """Save under an app-generated name; the uploader's file name never reaches the filesystem.

    `source_path`: a local file holding exactly `data`. On local media storage the new name is
    then a hard link to it (no second write of a 12 MP photo: ~6 ms of CPU here, and its pages);
    the source stays where it is, so a task that dies before its row commits can run again."""
    import os
    import uuid

    from django.core.files.base import ContentFile
    from django.core.files.storage import FileSystemStorage

    name = f"{prefix}/{uuid.uuid4().hex}.{extension}"
    if source_path and isinstance(default_storage, FileSystemStorage):
        target = default_storage.path(name)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(source_path, target)
            return name
        except OSError:  # another filesystem, no hard links: write the bytes as below
            pass
    return default_storage.save(name, ContentFile(data))


def create_with_file(prefix: str, extension: str, data: bytes, create, source_path: str | None = None):
    """Store the bytes, then create the row with `create(stored_name)` in its own transaction.

    When a unique constraint says the row already exists (the same bytes uploaded concurrently),
    the stored file is deleted again and None is returned: no orphan files, no duplicate rows."""
    from django.core.files.storage import default_storage
    from django.db import IntegrityError, transaction

    stored = store_file(prefix, extension, data, source_path)
    try:
        with transaction.atomic():
            return create(stored)
    except IntegrityError:
        default_storage.delete(stored)
        return None


class _FinishedTempFile(File):
    """A complete local temp file: FileSystemStorage moves it into place (no second copy),
    object storage uploads it (multipart for large ones)."""

    def temporary_file_path(self) -> str:
        return self.file.name


def save_finished_file(name: str, local_path: str) -> str:
    """Put a file built on local scratch space (an export zip) into storage; the stored name is
    returned. The local file is gone afterwards either way."""
    import os

    try:
        with open(local_path, "rb") as fh:
            return default_storage.save(name, _FinishedTempFile(fh, name=os.path.basename(name)))
    finally:
        if os.path.exists(local_path):
            os.remove(local_path)


def delete_stored(names) -> int:
    """Delete stored files by name, on disk or S3; a missing one is skipped, an error logged."""
    import logging

    count = 0
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except Exception:  # one file's trouble must not keep the others
            logging.getLogger("razmetka.files").warning("could not delete %s", name, exc_info=True)
        count += 1
    return count


def delete_later(names: list[str], chunk: int = 500) -> None:
    """Delete files after the commit, on the cpu queue (a project of 10,000 photos has 20,000
    files); here and now when the broker is unreachable."""
    from django.conf import settings

    from .outbox import publish
    from .tasks import delete_files

    names = [n for n in names if n]
    for start in range(0, len(names), chunk):
        part = names[start:start + chunk]
        if not publish(delete_files, args=[part], queue=settings.QUEUE_CPU):
            delete_stored(part)
