"""Guards for the pixels the engines are given: extreme shapes (1 x 1, 65535 x 1) either go
through safely or fail with a message a user understands, never a tensor-shape error."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ml.errors import MLError

# Pads are the ImageNet mean, which every processor here normalizes to zero (what they pad with).
PAD_FILL = (124, 116, 104)


class ImageInputError(MLError, ValueError):
    """This image cannot be processed by a model (the message says why, in plain words)."""


class PromptTooLongError(MLError, ValueError):
    """The text prompts do not fit the detector's text window."""

    def __init__(self, n_tokens: int, limit: int, n_prompts: int, *, what: str | None = None,
                 model: str = "the detector", setting: str = "max_text_len"):
        self.n_tokens = n_tokens
        self.limit = limit
        what = what or f"the {n_prompts} prompt{'s' if n_prompts != 1 else ''}"
        super().__init__(f"{what} make{'s' if what.startswith('the prompt ') else ''} {n_tokens} text tokens, "
                         f"but {model} reads at most {limit} ({setting}): use fewer or shorter prompts")


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """8-bit pixels of a 16- or 32-bit image (int or float), scaled by the brightest value present
    when it is above 255 (a float image in 0..1 by 255), as the thumbnail and the review page make
    it (backend/core/pixels.eight_bit): the models then see what the user sees. A plain convert("RGB") clips a 16-bit scan to ~all white,
    and OpenCV's 8-bit read (value >> 8) turns a 12-bit scan in a 16-bit file almost black.
    Truncates like Pillow's point() does for the thumbnail."""
    if pixels.dtype == np.uint8:
        return pixels
    values = np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    high = values.max(initial=0.0)
    if high > 255:
        values *= 255 / high
    elif np.issubdtype(pixels.dtype, np.floating) and 0 < high <= 1:
        values *= 255  # a float image in 0..1 (the usual convention) was all black
    return np.clip(values, 0, 255).astype(np.uint8)


def too_thin(image: np.ndarray, what: str = "the detector") -> ImageInputError:
    h, w = image.shape[:2]
    return ImageInputError(f"this image is too small/too thin for {what} ({w}×{h} px)")


def check_image(image: np.ndarray) -> None:
    """An RGB HxWx3 array with both sides >= 1 px."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageInputError(f"expected RGB pixels (H x W x 3), got an array of shape {tuple(image.shape)}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise too_thin(image, "the models")


def pad_to_aspect(image: np.ndarray, max_aspect: float, fill=PAD_FILL) -> np.ndarray:
    """``image`` unchanged when its long side is at most ``max_aspect`` times its short side; else
    padded at the bottom or right (so pixel coordinates keep their meaning) to that aspect. A
    processor that resizes the long side to N px would otherwise round the short side to 0."""
    h, w = image.shape[:2]
    if max_aspect <= 0 or max(h, w) <= max_aspect * min(h, w):
        return image
    need = math.ceil(max(h, w) / max_aspect)
    shape = (need, w, 3) if h < w else (h, need, 3)
    out = np.empty(shape, dtype=image.dtype)
    out[...] = np.asarray(fill, dtype=image.dtype)
    out[:h, :w] = image
    return out


def frame_for_resize(image: np.ndarray, max_aspect: float, longest: int | None) -> tuple[np.ndarray, float]:
    """(pixels for a processor that resizes the long side to ``longest`` px, scale applied).
    An image within ``max_aspect`` is returned as is (scale 1). A thinner one is first shrunk
    to that long side, as the processor would (padding 65535 x 1 at full size would make 800 MB
    of pixels), then padded to ``max_aspect``: its coordinates divided by the scale are the
    original image's."""
    h, w = image.shape[:2]
    if max_aspect <= 0 or max(h, w) <= max_aspect * min(h, w):
        return image, 1.0
    scale = 1.0
    if longest and max(h, w) > longest:
        scale = longest / max(h, w)
        size = (max(1, min(longest, round(w * scale))), max(1, min(longest, round(h * scale))))
        image = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
    return pad_to_aspect(image, max_aspect), scale
