"""Mask validation for the API: COCO RLE via pycocotools, never a hand-written RLE loop."""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from .errors import DomainError


def normalize_mask(*, height: int, width: int, rle: dict | None = None, polygons: list | None = None) -> dict:
    """Return a compressed COCO RLE ({"size": [h, w], "counts": str}) for the image's size.

    Accepts compressed RLE (counts as a string), uncompressed RLE (counts as a list), or
    polygons ([[x1, y1, x2, y2, ...], ...]). Raises DomainError with a clear message otherwise.
    """
    if (rle is None) == (polygons is None):
        raise DomainError("Give exactly one of mask_rle or polygons.")
    if polygons is not None:
        if not isinstance(polygons, list) or not polygons or not all(
            isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(isinstance(v, (int, float)) for v in p)
            for p in polygons
        ):
            raise DomainError("polygons must be a list of [x1, y1, x2, y2, x3, y3, ...] lists (3+ points each).")
        encoded = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    else:
        if not isinstance(rle, dict) or set(rle) - {"size", "counts"} or "size" not in rle or "counts" not in rle:
            raise DomainError('mask_rle must be {"size": [height, width], "counts": ...}.')
        if list(rle["size"]) != [height, width]:
            raise DomainError(f"mask_rle size {rle['size']} does not match the image size [{height}, {width}].")
        counts = rle["counts"]
        try:
            if isinstance(counts, list):
                if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
                    raise DomainError("Uncompressed mask_rle counts must be non-negative and sum to height*width.")
                encoded = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
            elif isinstance(counts, str):
                encoded = {"size": [height, width], "counts": counts.encode("ascii")}
                # Decoding proves the string is a well-formed RLE of exactly h*w pixels.
                decoded = mask_utils.decode(encoded)
                encoded = mask_utils.encode(np.asfortranarray(decoded))
            else:
                raise DomainError("mask_rle counts must be a string (compressed) or a list of integers.")
        except DomainError:
            raise
        except Exception as exc:
            raise DomainError(f"mask_rle could not be decoded: {exc}") from None
    if int(mask_utils.area(encoded)) == 0:
        raise DomainError("The mask is empty.")
    return {"size": [height, width], "counts": encoded["counts"].decode("ascii")}


def mask_geometry(rle: dict) -> tuple[list[float], int]:
    """Tight [x, y, w, h] box and pixel area of a compressed RLE."""
    encoded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return [float(v) for v in mask_utils.toBbox(encoded)], int(mask_utils.area(encoded))
