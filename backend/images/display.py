"""What the review page can draw: browsers decode JPEG, PNG, WebP and BMP, not TIFF (which
uploads accept). A TIFF is sent to the page as a PNG made on request; the stored file and every
download stay the uploaded bytes."""
from __future__ import annotations

import io

from PIL import Image as PILImage

from backend.core import decode_budget
from backend.core.errors import Busy

BROWSER_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp"}


def needs_rendition(content_type: str) -> bool:
    return content_type not in BROWSER_TYPES


def png_rendition(data: bytes) -> bytes:
    """The image as a PNG of the same pixels (16-bit scans scaled to 8 bits, transparency kept)."""
    with PILImage.open(io.BytesIO(data)) as img:
        try:
            with decode_budget.budget.reserve(decode_budget.decode_cost(img)):
                return _png_of(img)
        except decode_budget.DecodeRefused as exc:
            raise Busy(str(exc)) from None


def _png_of(img: PILImage.Image) -> bytes:
    img.load()
    if img.mode in {"I;16", "I;16B", "I;16L", "I"}:
        img = img.point(lambda v: v / 256).convert("L")
    elif img.mode not in {"RGB", "RGBA", "L", "LA"}:
        img = img.convert("RGBA" if "transparency" in img.info or img.mode in {"PA", "P"} else "RGB")
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)  # fast: it is made per request, not kept
    return out.getvalue()
