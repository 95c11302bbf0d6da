from django.conf import settings

from .errors import DomainError, PayloadTooLarge


def check_upload_request(request, fields: tuple[str, ...] = ("files",)) -> list:
    """Refuse oversized requests before reading them; return the uploaded files. A form field the
    upload does not take is a 400: a gallery zip sent with `label_clas=3` was read as an
    ImageFolder zip and made a class of its folder."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The upload is {length} bytes; the limit is {settings.MAX_UPLOAD_BYTES} bytes (MAX_UPLOAD_BYTES)."
        )
    from .strict import single_form_fields

    single_form_fields(request)
    unknown = sorted(set(request.data.keys()) - set(fields))
    if unknown:
        raise DomainError(f"Unknown field '{unknown[0]}'. This upload takes: {', '.join(fields)}.")
    files = request.FILES.getlist("files")
    if not files:
        raise DomainError("Attach one or more image files (or a zip) in the 'files' field.")
    return files
