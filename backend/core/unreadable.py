"""Why a stored image could not be read, as the project's members may read it: jobs, click-segment,
trainings and the display rendition all say it the same way."""
from __future__ import annotations

import cv2
from PIL import Image as PILImage


def unreadable_reason(exc: BaseException) -> str:
    """Why decoding a stored file failed: no path on the server ("[Errno 2] … '/srv/…/var/media/…'")
    and no object repr ("cannot identify image file <_io.BytesIO object at 0x…>")."""
    if isinstance(exc, FileNotFoundError):
        return "the stored file is missing"
    if isinstance(exc, PILImage.UnidentifiedImageError):
        return "the stored file is not a readable image"
    text = str(exc).lower()
    if "truncated" in text or isinstance(exc, EOFError):
        return "the stored file is truncated"
    if isinstance(exc, PILImage.DecompressionBombError):
        return "the image has too many pixels to decode"
    if isinstance(exc, (OSError, SyntaxError, ValueError, cv2.error)):
        # Pillow's decoders: "broken PNG file", "decoder error -2", …
        return "the stored file is damaged or not a readable image"
    if isinstance(exc, MemoryError):
        return "the image is too large to decode with this server's memory"
    return f"the stored file could not be read ({type(exc).__name__})"


def could_not_read(name: str, exc: BaseException) -> str:
    """"could not read the image 'x.png': <why>" (``name``: the image's original name, or how it is shown)."""
    return f"could not read the image '{name}': {unreadable_reason(exc)}"
