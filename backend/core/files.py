"""Serving private media: only through views that checked membership first."""
from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse

from .errors import NotFound


def private_file_response(name: str, content_type: str, download_name: str) -> FileResponse:
    try:
        fh = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise NotFound("The file is missing from storage.") from None
    response = FileResponse(fh, content_type=content_type)
    safe = "".join(c for c in download_name if c.isalnum() or c in "._- ")[:200] or "file"
    response["Content-Disposition"] = f'inline; filename="{safe}"'
    response["X-Content-Type-Options"] = "nosniff"
    # Even if a browser were fooled into rendering it, nothing in it may run.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def store_file(prefix: str, extension: str, data: bytes) -> str:
    """Save under an app-generated name; the uploader's file name never reaches the filesystem."""
    import uuid

    from django.core.files.base import ContentFile

    return default_storage.save(f"{prefix}/{uuid.uuid4().hex}.{extension}", ContentFile(data))


def create_with_file(prefix: str, extension: str, data: bytes, create):
    """Store the bytes, then create the row with `create(stored_name)` in its own transaction.

    When a unique constraint says the row already exists (the same bytes uploaded concurrently),
    the stored file is deleted again and None is returned: no orphan files, no duplicate rows."""
    from django.core.files.storage import default_storage
    from django.db import IntegrityError, transaction

    stored = store_file(prefix, extension, data)
    try:
        with transaction.atomic():
            return create(stored)
    except IntegrityError:
        default_storage.delete(stored)
        return None
