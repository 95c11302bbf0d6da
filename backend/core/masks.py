"""Annotation masks as stored: compressed COCO RLE for the image's size, via the geometry gate."""
from __future__ import annotations

from .geometry import mask_from, rle_geometry


def normalize_mask(*, height: int, width: int, rle: dict | None = None, polygons: list | None = None) -> dict:
    """Compressed COCO RLE ({"size": [h, w], "counts": str}) from exactly one of an RLE
    (compressed or uncompressed) or polygons; GeometryError (a 400 naming the field) otherwise."""
    return mask_from(height=height, width=width, rle=rle, polygons=polygons)


mask_geometry = rle_geometry
