from django.conf import settings

from .errors import DomainError, PayloadTooLarge


def check_upload_request(request) -> list:
    """Refuse oversized requests before reading them; return the uploaded files."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The upload is {length} bytes; the limit is {settings.MAX_UPLOAD_BYTES} bytes (MAX_UPLOAD_BYTES)."
        )
    files = request.FILES.getlist("files")
    if not files:
        raise DomainError("Attach one or more image files (or a zip) in the 'files' field.")
    return files
