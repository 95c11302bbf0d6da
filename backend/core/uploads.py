"""Image upload validation: decoded by Pillow, allowlisted formats, bombs and polyglots refused.

The file's name and declared type are never trusted; what Pillow decodes is what we store.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from backend.core import decode_budget
from backend.core.pixels import eight_bit

ALLOWED_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "BMP": ("image/bmp", "bmp"),
    "TIFF": ("image/tiff", "tif"),
}
# Every extension a file of each stored type may carry (lowercase; the first is the one the
# stored file gets and the one an image's name is given when its own is not among these).
FORMAT_EXTENSIONS = {
    "jpg": ("jpg", "jpeg", "jpe", "jfif"),
    "png": ("png",),
    "webp": ("webp",),
    "bmp": ("bmp", "dib"),
    "tif": ("tif", "tiff"),
}
IMAGE_EXTENSIONS = frozenset(ext for exts in FORMAT_EXTENSIONS.values() for ext in exts)
_EXTENSION_OF_TYPE = dict(ALLOWED_FORMATS.values())  # content type -> canonical extension
MAX_NAME_LENGTH = 500  # Image.original_name

# Markup that a browser could execute if the file were ever sniffed as HTML/SVG.
_MARKUP = re.compile(rb"<\s*(svg|html|script|body|iframe|object|embed|!doctype|\?xml)\b", re.IGNORECASE)


_ORIENTATION = 0x0112


def _has_markup(data: bytes) -> bool:
    """Markup anywhere a browser or a parser could read it as text: headers, metadata, comments
    and bytes after the image's end. Compressed pixel data is skipped: in megabytes of entropy,
    strings like "<sVg" occur by chance (about one 4 MB photo in ten was refused before)."""
    return any(_MARKUP.search(data, start, end) for start, end in _text_ranges(data))


def _text_ranges(data: bytes):
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            yield from _png_ranges(data)
        elif data.startswith(b"\xff\xd8"):
            yield from _jpeg_ranges(data)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            yield from _webp_ranges(data)
        else:
            yield 0, len(data)
    except (IndexError, ValueError):
        yield 0, len(data)  # malformed structure: scan everything (the decoder refuses it anyway)


def _png_ranges(data: bytes):
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if kind not in (b"IDAT", b"fdAT"):
            yield pos, min(end, len(data))
        if kind == b"IEND":
            yield end, len(data)
            return
        pos = end
    yield min(pos, len(data)), len(data)


_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# In entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker; anything else ends it.
_JPEG_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")


def _jpeg_ranges(data: bytes):
    pos, size = 2, len(data)
    while pos + 1 < size:
        if data[pos] != 0xFF:
            yield pos, size
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image: whatever follows is someone's payload
            yield pos + 2, size
            return
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        yield pos, min(end, size)
        pos = end
        if marker == 0xDA:  # start of scan: skip entropy-coded data up to the next real marker
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                return
            pos = found.start()
    yield min(pos, size), size


def _webp_ranges(data: bytes):
    end_of_riff = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    pos = 12
    while pos + 8 <= end_of_riff:
        kind = data[pos:pos + 4]
        end = pos + 8 + int.from_bytes(data[pos + 4:pos + 8], "little")
        if kind not in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
            yield pos, min(end, len(data))
        pos = end + (end & 1)
    yield end_of_riff, len(data)


class UploadError(Exception):
    """The file cannot be accepted; the message is shown to the user next to the file name."""


@dataclass(frozen=True)
class ValidatedImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    sha256: str
    thumbnail: bytes | None = None  # JPEG, long side <= THUMBNAIL_SIZE; made from the pixels already decoded


THUMBNAIL_SIZE = 256
THUMBNAIL_EXTENSION = "jpg"
THUMBNAIL_CONTENT_TYPE = "image/jpeg"


def validate_image(data: bytes, *, with_thumbnail: bool = True, sha256: str | None = None) -> ValidatedImage:
    """`sha256`: the hash of `data` when the caller has it (used unless the pixels are re-encoded)."""
    if len(data) == 0:
        raise UploadError("The file is empty.")
    if len(data) > settings.MAX_IMAGE_BYTES:
        raise UploadError(f"The file is larger than the limit of {settings.MAX_IMAGE_BYTES // (1024 * 1024)} MiB (MAX_IMAGE_BYTES).")
    if _has_markup(data):
        raise UploadError("The file contains HTML/SVG markup; image/markup polyglots are refused.")
    PILImage.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
    fmt = None
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x the pixel limit; we refuse there too.
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as probe:
                # A JPEG with an MPF index (phones' gain-map / Ultra HDR photos, many cameras) is
                # "MPO" to Pillow: a JPEG whose first picture is the photo, as browsers show it.
                fmt = "JPEG" if probe.format == "MPO" else probe.format
                if fmt not in ALLOWED_FORMATS:
                    raise UploadError(f"Unsupported image format {fmt}; allowed: JPEG, PNG, WebP, BMP, TIFF.")
                check_shape(*probe.size)  # from the header: before any pixel is decoded
                probe.verify()
            with PILImage.open(io.BytesIO(data)) as img:
                width, height = img.size
                # exif_transpose returns a copy even when there is nothing to turn (Pillow >= 10),
                # so ask for the tag first: an upright file is stored byte for byte, unre-encoded.
                if fmt == "JPEG" and not _rotated(img):  # a JPEG's EXIF is in its header
                    # All of the entropy-coded data is still decoded (a corrupt or truncated file
                    # fails here as before); only the inverse DCT runs at up to 1/8 scale, since
                    # the original bytes are kept and pixels serve only the thumbnail: ~4x faster.
                    img.draft(None, (THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                with decode_budget.budget.reserve(decode_budget.decode_cost(img)):
                    # A PNG's eXIf chunk may follow its pixels: Pillow decodes them all to find it.
                    rotated = _rotated(img)
                    img.load()
                    transposed = ImageOps.exif_transpose(img) if rotated else img
                    thumbnail = make_thumbnail(transposed) if with_thumbnail else None
                    if rotated:
                        # EXIF said "rotate": store the pixels upright so masks and exports match
                        # what people see.
                        width, height = transposed.size
                        data = _encode(transposed, fmt)
                        transposed.close()
                    img.close()  # the pixels are freed before the budget is given back
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise UploadError(
            f"The image has more pixels than the limit of {settings.MAX_IMAGE_PIXELS} (MAX_IMAGE_PIXELS)."
        ) from None
    except UnidentifiedImageError:
        raise UploadError("The file is not an image in an allowed format (JPEG, PNG, WebP, BMP, TIFF).") from None
    except decode_budget.DecodeRefused as exc:
        raise UploadError(str(exc)) from None
    except UploadError:
        raise
    except Exception as exc:  # Pillow raises many types for truncated or corrupt files
        # "Truncated File Read" alone read as if the file were cut off: say what it means for it.
        kind = f"a {fmt} image" if fmt else "an image"
        raise UploadError(f"The image could not be decoded: it starts as {kind} but its data is damaged, cut off "
                          f"or not an image ({exc}).") from None
    content_type, extension = ALLOWED_FORMATS[fmt]
    return ValidatedImage(
        data=data,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        sha256=sha256 if sha256 is not None and not rotated else hashlib.sha256(data).hexdigest(),
        thumbnail=thumbnail,
    )


def _rotated(img: PILImage.Image) -> bool:
    return img.getexif().get(_ORIENTATION, 1) not in (1, None)


def check_shape(width: int, height: int) -> None:
    """Refuse an image no model can use: a side under MIN_IMAGE_SIDE px, or a long side more than
    MAX_IMAGE_ASPECT times the short one (65535 x 1 px kept a worker busy for 40 s a click)."""
    min_side, max_aspect = settings.MIN_IMAGE_SIDE, settings.MAX_IMAGE_ASPECT
    if min(width, height) < min_side:
        raise UploadError(f"The image is {width}×{height} px: each side must be at least {min_side} px (MIN_IMAGE_SIDE).")
    if max(width, height) > max_aspect * min(width, height):
        raise UploadError(f"The image is {width}×{height} px, a {max(width, height) / min(width, height):.0f}:1 strip: "
                          f"the long side may be at most {max_aspect} times the short one (MAX_IMAGE_ASPECT).")


def make_thumbnail(img: PILImage.Image) -> bytes:
    """A JPEG whose long side is at most THUMBNAIL_SIZE px, transparency flattened on white."""
    scale = THUMBNAIL_SIZE / max(img.size)
    thumb = _reducible(img)
    if scale < 1:
        # A cheap box reduce to ~3x the target first, then LANCZOS: same look, a fraction of the time.
        factor = int(1 / (scale * 3))
        if factor >= 2:
            thumb = thumb.reduce(factor)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        thumb = thumb.resize(size, PILImage.Resampling.LANCZOS)
    # 16-bit, 32-bit and float scans: scaled to 8 bits as the models and the review page see them
    # (a convert() clips a 16-bit scan to white).
    thumb = eight_bit(thumb)
    if thumb.mode in {"RGBA", "LA", "PA"} or (thumb.mode == "P" and "transparency" in thumb.info):
        rgba = thumb.convert("RGBA")
        thumb = PILImage.new("RGB", rgba.size, (255, 255, 255))
        thumb.paste(rgba, mask=rgba.getchannel("A"))
    elif thumb.mode not in {"RGB", "L"}:
        thumb = thumb.convert("RGB")
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=82, optimize=True)
    return out.getvalue()


def _reducible(img: PILImage.Image) -> PILImage.Image:
    """The pixels in a mode that Image.reduce() and a smooth resize handle: palette images as
    RGB(A) (averaging palette indices means nothing), 1-bit as greyscale, 16-bit as 32-bit "I"
    (reduce() refuses "P", "1" and "I;16*" with "image has wrong mode")."""
    if img.mode == "1":
        return img.convert("L")
    if img.mode == "PA" or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    if img.mode == "P":
        return img.convert("RGB")
    if img.mode.startswith("I;16"):
        return img.convert("I")
    return img


def thumbnail_from_stored(data: bytes) -> bytes:
    """For images stored before thumbnails existed (already validated and upright)."""
    PILImage.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
    with PILImage.open(io.BytesIO(data)) as img:
        # JPEG can decode at 1/2..1/8 scale directly: far less work for a 256 px result.
        img.draft("RGB", (THUMBNAIL_SIZE * 2, THUMBNAIL_SIZE * 2))
        with decode_budget.budget.reserve(decode_budget.decode_cost(img)):
            img.load()
            return make_thumbnail(img)


def _encode(img: PILImage.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    params = {"quality": 95} if fmt in {"JPEG", "WEBP"} else {}
    if fmt == "JPEG" and img.mode not in {"RGB", "L", "CMYK"}:
        img = img.convert("RGB")
    img.save(out, format=fmt, **params)
    return out.getvalue()


def has_format_extension(name: str, extension: str) -> bool:
    """Whether `name` ends with one of the extensions of the stored type whose canonical
    extension is `extension` ("jpg": .jpg, .jpeg, .jpe, .jfif; case-insensitive)."""
    stem, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in FORMAT_EXTENSIONS.get(extension, (extension,))


def with_format_extension(name: str, extension: str) -> str:
    """`name` with the stored type's extension appended unless it already ends with one of that
    type's extensions: PNG bytes sent as "a.json" are "a.json.png" (an export would otherwise
    write an image "a.json" next to LabelMe's label file "a.json", or an image "data.yaml")."""
    return name if has_format_extension(name, extension) else f"{name}.{extension}"


def image_file_name(name: str, content_type: str) -> str:
    """The name an uploaded image is stored under: the name as sent (a folder-relative path for
    zip entries and chunked uploads), its last part without trailing spaces and dots (Windows
    drops them, so "b.png." and "b.png" would be one file there), then ending with an extension
    of the format the bytes decoded as ("a.json" holding a PNG is "a.json.png"). At most
    MAX_NAME_LENGTH characters, cut at the front so the base name and extension are kept."""
    from .text import drawn

    # Drawn characters only, as plain and chunked uploads' names: a zip entry kept its right-to-left
    # override ('inv\u202egnp.exe' showed reversed here and in exports, black-box round 18).
    name = drawn(name)
    extension = _EXTENSION_OF_TYPE.get(content_type)
    cut = max(name.rfind("/"), name.rfind("\\"))
    head, base = name[:cut + 1], name[cut + 1:]
    base = base.rstrip(" .") or "image"
    if extension is not None:
        base = with_format_extension(base, extension)
    return (head + base)[-MAX_NAME_LENGTH:]


@dataclass(frozen=True)
class UploadItem:
    """One image from an upload: a plain file, or an entry of a zip (name = path inside it)."""

    name: str
    image: ValidatedImage | None = None
    error: str | None = None
    # The local file these exact bytes came from (a whole plain file, stored unchanged), so they
    # can be stored as a hard link instead of written again; None for zip entries and rewrites.
    source_path: str | None = None

    @property
    def stored_name(self) -> str:
        """The name the image is stored under (image_file_name): its extension is its format's."""
        return image_file_name(self.name, self.image.content_type) if self.image is not None else self.name


def iter_upload_items(files, *, file_sha256: str | None = None) -> Iterator[UploadItem]:
    """Validate every uploaded file; zips are opened and each entry validated on its own.
    `file_sha256`: the one file's SHA-256, already computed (not computed again)."""
    from .zips import ZipRejected, iter_zip

    for upload in files:
        name = getattr(upload, "name", "upload")
        upload.seek(0)
        head = upload.read(4)
        upload.seek(0)
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            try:
                for entry in iter_zip(upload):
                    if entry.error:
                        yield UploadItem(f"{name}/{entry.name}", error=entry.error)
                        continue
                    yield _validated(f"{name}/{entry.name}", entry.data)
            except ZipRejected as exc:
                yield UploadItem(name, error=str(exc))
            continue
        size = getattr(upload, "size", None)
        if size is not None and size > settings.MAX_IMAGE_BYTES:
            yield UploadItem(name, error=f"The file is larger than the limit of {settings.MAX_IMAGE_BYTES // (1024 * 1024)} MiB (MAX_IMAGE_BYTES).")
            continue
        data = upload.read()
        item = _validated(name, data, file_sha256)
        local = getattr(getattr(upload, "file", None), "name", None)
        if item.image is not None and item.image.data is data and isinstance(local, str) and os.path.isfile(local):
            item = dataclasses.replace(item, source_path=local)
        yield item


LABEL_FILE_SUFFIXES = (".json", ".txt", ".yaml", ".yml", ".xml", ".csv")


def _validated(name: str, data: bytes, sha256: str | None = None) -> UploadItem:
    try:
        return UploadItem(name, image=validate_image(data, sha256=sha256))
    except UploadError as exc:
        if name.lower().endswith(LABEL_FILE_SUFFIXES) and not _looks_like_image(data):
            # An export's annotations beside its images: not a broken image, a file for the Import page.
            # Said so it fits the gallery's upload too, where "import it after the images" made no sense.
            return UploadItem(name, error="Not an image but an annotation or text file: skipped (annotation files "
                                          "go to the Import page).")
        return UploadItem(name, error=str(exc))


def _looks_like_image(data: bytes) -> bool:
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data)):
            return True
    except Exception:
        return False
