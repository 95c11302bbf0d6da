"""An image file's bytes as the RGB pixels every model stage reads: the workers' decoder and the
CLI's, one way (the CLI skipped a float32 TIFF the workers pre-annotated, black-box round 18)."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

# Stored images OpenCV decodes to the same pixels as Pillow, in two thirds of the time (a 12 MP
# JPEG: ~115 ms against ~170 ms here; Pillow's decode is followed by two full copies, convert()
# and asarray()). Both use libjpeg-turbo and libpng; tests/backend/test_decode_rgb.py holds them equal.
_OPENCV_FORMATS = {"JPEG", "MPO", "PNG"}  # MPO: a JPEG with more pictures after it; OpenCV reads the first
_OPENCV_MODES = {"RGB", "L"}  # not CMYK, 16-bit grey, palettes or alpha: those go through Pillow
_OPENCV_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # Pillow does not turn by EXIF either


def decode_rgb(data: bytes, *, exif_turn: bool = False) -> np.ndarray:
    """(h, w, 3) uint8 RGB pixels of an image file's bytes, as stored (no EXIF turn: uploads are
    stored upright; `exif_turn`: a camera's file as its EXIF orientation shows it, for the CLI).
    Transparent pixels are composited on the neutral background of masked crops."""
    with PILImage.open(io.BytesIO(data)) as opened:  # the header only: format, mode, size
        turned = exif_turn and opened.getexif().get(0x0112, 1) != 1
        img = ImageOps.exif_transpose(opened) if turned else opened
        if not turned and img.format in _OPENCV_FORMATS and img.mode in _OPENCV_MODES and "transparency" not in img.info:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), _OPENCV_FLAGS)
            if pixels is not None and pixels.shape[:2] == (img.height, img.width):
                return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)
        if img.mode.startswith("I") or img.mode == "F":
            # 16/32-bit grey: convert("RGB") clips every value above 255 to white; scale instead,
            # by the brightest value, as the thumbnail the user sees is (ml.inputs.to_uint8).
            from ml.inputs import to_uint8

            grey = to_uint8(np.asarray(img.convert("I") if img.mode.startswith("I;16") else img))
            return np.repeat(grey[:, :, None], 3, axis=2)
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            # Cut-out exemplars: composite on the same neutral background as masked crops.
            rgba = img.convert("RGBA")
            background = PILImage.new("RGBA", rgba.size, (124, 116, 104, 255))
            return np.asarray(PILImage.alpha_composite(background, rgba).convert("RGB"))
        return np.asarray(img.convert("RGB"))
