"""What the review page can draw: browsers decode JPEG, PNG, WebP and BMP, not TIFF (which
uploads accept), and draw a 16-bit PNG by its high byte. Those are sent to the page as an 8-bit PNG
made on request; the stored file and every download stay the uploaded bytes."""
from __future__ import annotations

import io

from PIL import Image as PILImage

from backend.core import decode_budget
from backend.core.errors import Busy, ImageUnreadable
from backend.core.pixels import HIGH_BIT_MODES, eight_bit
from backend.core.unreadable import could_not_read

BROWSER_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp"}


# How much of the file needs_rendition looks at: an APNG's acTL comes before its first IDAT.
HEAD_BYTES = 4096


def needs_rendition(content_type: str, head: bytes = b"") -> bool:
    """A format browsers cannot draw, a 16-bit PNG (`head`: the file's first HEAD_BYTES), which
    they draw by its high byte: a 12-bit scan almost black where the models see it scaled, or an
    animation (APNG, animated WebP): a browser plays it while the masks and the models are of its
    first frame (black-box round 16). The rendition is that first frame."""
    if content_type not in BROWSER_TYPES:
        return True
    if content_type == "image/png":
        return _png_bit_depth(head) == 16 or _apng(head)
    if content_type == "image/webp":
        return _animated_webp(head)
    return False


def _apng(head: bytes) -> bool:
    at = head.find(b"acTL")
    return at != -1 and (head.find(b"IDAT") == -1 or at < head.find(b"IDAT"))


def _animated_webp(head: bytes) -> bool:
    # RIFF size WEBP, then the extended header "VP8X" whose flags byte carries the animation bit.
    return len(head) > 20 and head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x02)


def _png_bit_depth(head: bytes) -> int | None:
    # Signature (8), IHDR length (4) and type (4), width (4), height (4), then the bit depth.
    return head[24] if len(head) > 24 and head[12:16] == b"IHDR" else None


def png_rendition(data: bytes, name: str = "the image") -> bytes:
    """The image as a PNG of the same pixels (high-bit scans scaled to 8 bits as core/pixels.py
    says, transparency kept). A stored file that cannot be decoded (damaged, cut off) is a 422
    naming `name` and why (was an HTML 500 with a traceback, black-box round 16)."""
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            with decode_budget.budget.reserve(decode_budget.decode_cost(img)):
                return _png_of(img)
    except decode_budget.DecodeRefused as exc:
        raise Busy(str(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow's ways of saying "not decodable"
        said = could_not_read(name, exc)
        raise ImageUnreadable(f"{said[0].upper()}{said[1:]}.") from None


def _png_of(img: PILImage.Image) -> bytes:
    img.load()
    if img.mode in HIGH_BIT_MODES:
        img = eight_bit(img)  # as the thumbnail and the models see it
    elif img.mode not in {"RGB", "RGBA", "L", "LA"}:
        img = img.convert("RGBA" if "transparency" in img.info or img.mode in {"PA", "P"} else "RGB")
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)  # fast: it is made per request, not kept
    return out.getvalue()
