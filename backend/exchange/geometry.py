"""Mask <-> polygon/box conversions shared by the formats.

Masks are COCO RLE via pycocotools; polygons come from OpenCV contours (RETR_CCOMP, so holes
are seen). Two polygon conventions exist and each format gets the one its own tools use:

- "corner" polygons follow pixel edges (pixel (r, c) is the square [c, c+1] x [r, r+1]); that is
  COCO's continuous space, and pycocotools rasterizes them back to exactly the same pixels.
- "center" polygons go through the centers of the boundary pixels (what cv2.findContours
  returns); LabelMe (PIL polygon with outline) and Ultralytics (cv2.fillPoly) fill them back to
  exactly the same pixels.
"""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw
from pycocotools import mask as mask_utils

from backend.core.geometry import rle_string_counts


class GeometryError(Exception):
    """The shape cannot become a mask on this image; the message is shown next to the item."""


def decode(rle: dict) -> np.ndarray:
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})


def encode(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": encoded["counts"].decode("ascii")}


def decode_window(rle: dict) -> tuple[np.ndarray, int, int]:
    """The mask's bounding box plus a 1-pixel margin, decoded straight from the RLE runs, and its
    (x, y) offset. A polygon export of 12 MP images spent its time decoding every full-size mask
    only to crop it; this touches only the object's columns. Same pixels as decode() then _crop()."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = rle_string_counts(counts) if isinstance(counts, str) else np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(runs)
    one_starts, one_ends = (ends - runs)[1::2], ends[1::2]
    nonempty = one_ends > one_starts
    one_starts, one_ends = one_starts[nonempty], one_ends[nonempty]
    if one_starts.size == 0:
        return np.zeros((0, 0), np.uint8), 0, 0
    # Column-major: pixel (r, c) is at c * height + r.
    c0 = max(int(one_starts[0]) // height - 1, 0)
    c1 = min(int(one_ends[-1] - 1) // height + 2, width)
    start_rows, end_rows = one_starts % height, (one_ends - 1) % height
    if np.array_equal(one_starts // height, (one_ends - 1) // height):  # no run crosses a column
        r0, r1 = max(int(start_rows.min()) - 1, 0), min(int(end_rows.max()) + 2, height)
    else:
        r0, r1 = 0, height
    rows = r1 - r0
    # Runs clipped to rows r0..r1 of their column (a run crossing columns covers whole columns
    # in between, and then r0..r1 is the full height, so clipping changes nothing).
    cols = one_starts // height - c0
    flat = np.zeros((c1 - c0) * rows + 1, np.int32)
    if r0 == 0 and r1 == height:
        np.add.at(flat, one_starts - c0 * height, 1)
        np.add.at(flat, one_ends - c0 * height, -1)
    else:
        np.add.at(flat, cols * rows + (start_rows - r0), 1)
        np.add.at(flat, cols * rows + (end_rows - r0) + 1, -1)
    crop = np.cumsum(flat[:-1]).astype(np.uint8).reshape(c1 - c0, rows).T
    return crop, c0, r0


def _crop(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The mask's bounding box plus a 1-pixel margin (contours of a 50-pixel object should not
    cost a pass over a 12-megapixel image), and its offset."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return mask[:0, :0], 0, 0
    y0, x0 = max(int(rows[0]) - 1, 0), max(int(cols[0]) - 1, 0)
    return mask[y0:int(rows[-1]) + 2, x0:int(cols[-1]) + 2], x0, y0


def _contours(mask, scale: int = 1):
    """`mask`: a full (h, w) array, or a (crop, x0, y0) window from decode_window."""
    crop, x0, y0 = mask if isinstance(mask, tuple) else _crop(mask)
    if crop.size == 0:
        return [], False
    crop = crop.astype(np.uint8)
    if scale > 1:
        crop = crop.repeat(scale, axis=0).repeat(scale, axis=1)
    contours, hierarchy = cv2.findContours(crop, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return [], False
    offset = np.array([x0 * scale, y0 * scale])
    outer = [c.reshape(-1, 2) + offset for c, h in zip(contours, hierarchy[0]) if h[3] < 0]
    has_holes = any(h[3] >= 0 for h in hierarchy[0])
    return outer, has_holes


def center_polygons(mask) -> tuple[list[np.ndarray], bool]:
    """Outer contours through boundary pixel centers ((N, 2) int arrays of x, y) and whether
    the mask has holes (which polygons cannot carry)."""
    return _contours(mask)


def corner_polygons(mask) -> tuple[list[list[float]], bool]:
    """Outer contours along pixel edges, as COCO flat [x1, y1, ...] lists.

    Tracing a 2x nearest-upscaled mask puts the contour on half-pixels; mapping u -> ceil(u/2)
    moves every point onto the pixel corner it belongs to (left/top halves map to the left/top
    edge, right/bottom halves to the right/bottom edge).
    """
    outer, has_holes = _contours(mask, scale=2)
    polygons = []
    for contour in outer:
        points = (contour + 1) // 2
        keep = np.any(points != np.roll(points, 1, axis=0), axis=1)  # drop repeated corners
        points = points[keep] if keep.any() else points[:1]
        if len(points) < 3:
            continue
        polygons.append(points.reshape(-1).astype(np.float64).tolist())
    return polygons, has_holes


def fill_coco_polygons(polygons: list, height: int, width: int) -> np.ndarray:
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)))


def fill_center_polygons(polygons: list[list[tuple[float, float]]], height: int, width: int) -> np.ndarray:
    """Fill polygons the way LabelMe does (PIL polygon with a 1-pixel outline)."""
    canvas = PILImage.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for points in polygons:
        xy = [(float(x), float(y)) for x, y in points]
        if len(xy) >= 3:
            draw.polygon(xy, outline=1, fill=1)
        elif len(xy) == 2:
            draw.line(xy, fill=1)
        elif xy:
            draw.point(xy, fill=1)
    return np.asarray(canvas, dtype=np.uint8)


def fill_box(box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """A rectangle mask for [x0, y0, x1, y1] in continuous (edge) coordinates."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)] = 1
    return mask


def check_points_inside(points, height: int, width: int, *, tolerance: float = 0.5) -> None:
    arr = np.asarray(points, dtype=float).reshape(-1, 2)
    if arr.size == 0:
        raise GeometryError("the shape has no points")
    if not np.isfinite(arr).all():
        raise GeometryError("the shape has non-finite coordinates")
    xs, ys = arr[:, 0], arr[:, 1]
    if xs.min() < -tolerance or ys.min() < -tolerance or xs.max() > width + tolerance or ys.max() > height + tolerance:
        raise GeometryError(
            f"the shape reaches outside the image ({width}x{height}): "
            f"x {xs.min():g}..{xs.max():g}, y {ys.min():g}..{ys.max():g}"
        )


def row_major_runs(mask: np.ndarray) -> list[int]:
    """Uncompressed row-major RLE counts (starting with a run of zeros), as seed 000 writes them."""
    flat = mask.reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def from_row_major(size: list, counts: list) -> np.ndarray:
    """Row-major runs of M are the column-major runs of M.T: decode M.T with pycocotools."""
    height, width = int(size[0]), int(size[1])
    transposed = mask_utils.frPyObjects({"size": [width, height], "counts": counts}, width, height)
    return np.ascontiguousarray(mask_utils.decode(transposed).T)
