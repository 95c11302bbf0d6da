"""The geometry gate: every mask, polygon and box that enters the app passes here first.

pycocotools and OpenCV trust their input: a polygon vertex at 1e12 makes frPyObjects allocate
tens of gigabytes and segfault the process, an RLE string whose runs sum to less than h*w
decodes into uninitialised memory, and area()/toBbox() believe whatever the runs claim. So
nothing reaches them before these checks: finite numbers, sizes equal to the image, runs that
are non-negative and sum to exactly h*w, vertices clipped to the image and bounded in count.
Errors name the field, and the API answers them with 400.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np
from pycocotools import mask as mask_utils

from .errors import DomainError

# A 12 MP image's most ragged mask has a few hundred thousand runs; these bounds only stop
# inputs built to exhaust memory or time.
MAX_RLE_RUNS = 4_000_000
MAX_RLE_CHARS = 16_000_000
MAX_POLYGONS = 1_000
MAX_VERTICES = 100_000  # over all polygons of one shape
MAX_RUN_CHARS = 7  # 7 x 5 bits covers any run length of an image we accept


class GeometryError(DomainError):
    """A shape that cannot become a mask on this image; `field` names what was wrong."""

    def __init__(self, message: str, *, field: str):
        super().__init__(f"{field}: {message}", extra={"field": field})
        self.field = field
        self.reason = message


def _number(value) -> bool:
    if not isinstance(value, Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int with hundreds of digits
        return False


def _check_size(height: int, width: int) -> None:
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise ValueError(f"image size must be positive integers, got {height}x{width}")


# --------------------------------------------------------------------------- RLE


def rle_string_counts(counts: str, *, field: str = "mask_rle") -> np.ndarray:
    """The runs of a COCO compressed RLE string (pycocotools' LEB128-like code), decoded with
    numpy so a hostile string is measured before pycocotools ever walks it."""
    if len(counts) > MAX_RLE_CHARS:
        raise GeometryError(f"counts is longer than {MAX_RLE_CHARS} characters", field=field)
    try:
        raw = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raise GeometryError("counts must be an ASCII COCO RLE string", field=field) from None
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    if raw.min() < 0 or raw.max() > 63:
        raise GeometryError("counts has characters outside the COCO RLE alphabet", field=field)
    ends = np.flatnonzero((raw & 0x20) == 0)
    if ends.size == 0 or ends[-1] != raw.size - 1:
        raise GeometryError("counts ends in the middle of a run", field=field)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > MAX_RUN_CHARS:
        raise GeometryError("counts has a run longer than any image", field=field)
    # Each character carries 5 bits, least significant first; the last one's 0x10 bit is the sign.
    position = np.arange(raw.size) - np.repeat(starts, lengths)
    values = np.add.reduceat((raw & 0x1F) << (5 * position), starts)
    negative = (raw[ends] & 0x10) != 0
    values = np.where(negative, values - (np.int64(1) << (5 * lengths)), values)
    # Runs after the second are stored as differences from the run two places back.
    runs = values.copy()
    if runs.size > 2:
        runs[2::2] = np.cumsum(values[2::2])
    if runs.size > 3:
        runs[1::2] = np.cumsum(values[1::2])
    return runs


def validate_rle(value, *, height: int, width: int, field: str = "mask_rle") -> dict:
    """A COCO RLE (compressed string or uncompressed list counts) for an image of this size,
    returned compressed: {"size": [h, w], "counts": str}. Checks size, runs and emptiness."""
    _check_size(height, width)
    if not isinstance(value, dict) or set(value) != {"size", "counts"}:
        raise GeometryError('must be {"size": [height, width], "counts": ...}', field=field)
    size = value["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)):
        raise GeometryError("size must be [height, width] as integers", field=field)
    if size != [height, width]:
        raise GeometryError(f"size {size} does not match the image size [{height}, {width}]", field=field)
    counts = value["counts"]
    if isinstance(counts, str):
        runs = rle_string_counts(counts, field=field)
    elif isinstance(counts, list):
        if len(counts) > MAX_RLE_RUNS:
            raise GeometryError(f"counts has more than {MAX_RLE_RUNS} runs", field=field)
        limit = height * width
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= limit for c in counts):
            raise GeometryError(f"uncompressed counts must be integers from 0 to {limit}", field=field)
        runs = np.asarray(counts, dtype=np.int64)
    else:
        raise GeometryError("counts must be a string (compressed) or a list of integers", field=field)
    if runs.size and runs.min() < 0:
        raise GeometryError("counts has a negative run", field=field)
    total = int(runs.sum())
    if total != height * width:
        raise GeometryError(f"the runs must sum to height*width = {height * width}, they sum to {total}", field=field)
    if isinstance(counts, list):
        encoded = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        compressed = encoded["counts"].decode("ascii")
    else:
        compressed = counts
    if not runs[1::2].any():
        raise GeometryError("the mask is empty", field=field)
    return {"size": [height, width], "counts": compressed}


def rle_from_runs_row_major(value, *, height: int, width: int, field: str = "mask_rle") -> np.ndarray:
    """Seed 000's row-major uncompressed runs → (h, w) uint8 mask, validated like validate_rle."""
    checked = validate_rle({"size": [width, height], "counts": value}, height=width, width=height, field=field)
    return np.ascontiguousarray(mask_utils.decode({"size": checked["size"], "counts": checked["counts"].encode("ascii")}).T)


# --------------------------------------------------------------------------- polygons and boxes


def validate_polygons(
    value, *, height: int, width: int, field: str = "polygons", clip: bool = True, tolerance: float = 0.0,
) -> list[list[float]]:
    """COCO flat polygons [[x1, y1, x2, y2, x3, y3, ...], ...] in pixel-edge coordinates.

    With clip, vertices outside the image are moved onto its border (a stroke that ran off the
    edge still means the part inside); without it, a vertex further out than `tolerance` is an
    error. Either way the result never makes pycocotools rasterise outside the image.
    """
    _check_size(height, width)
    if not isinstance(value, list) or not value:
        raise GeometryError("must be a non-empty list of [x1, y1, x2, y2, x3, y3, ...] lists", field=field)
    if len(value) > MAX_POLYGONS:
        raise GeometryError(f"has more than {MAX_POLYGONS} polygons", field=field)
    total = 0
    out = []
    for index, poly in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
            raise GeometryError("each polygon needs an even number of coordinates, 3 points or more", field=where)
        total += len(poly) // 2
        if total > MAX_VERTICES:
            raise GeometryError(f"has more than {MAX_VERTICES} vertices", field=field)
        if not all(_number(v) for v in poly):
            raise GeometryError("coordinates must be finite numbers", field=where)
        points = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        limits = np.array([width, height], dtype=np.float64)
        if clip:
            if (points < 0.0).any() or (points > limits).any():
                points = clip_polygon(points, width=width, height=height)
                if len(points) < 3:
                    continue  # wholly outside the image
        elif (points < -tolerance).any() or (points > limits + tolerance).any():
            xs, ys = points[:, 0], points[:, 1]
            raise GeometryError(
                f"reaches outside the image ({width}x{height}): x {xs.min():g}..{xs.max():g}, y {ys.min():g}..{ys.max():g}",
                field=where,
            )
        else:
            points = np.clip(points, 0.0, limits)
        out.append([float(v) for v in points.reshape(-1)])
    if not out:
        raise GeometryError(f"lies wholly outside the image ({width}x{height})", field=field)
    return out


# How far outside the image a vertex may lie and still be clipped in floating point. Further out,
# the polygon is first cut down to the image grown by FAR on each side, exactly (rational
# arithmetic, each cut point rounded once): in floats, 1e308 - (-1e308) overflowed to inf and a
# triangle covering the whole image came out empty, and the cut of an edge between two far
# vertices lost its image-sized part to rounding. Within FAR of the image nothing changes, and
# a float clip there is off by ~FAR * 2^-52 (2e-10 px) at most.
FAR = float(2**20)


def clip_polygon(points: np.ndarray, *, width: int, height: int) -> np.ndarray:
    """The part of a polygon (n x 2) inside [0, width] x [0, height] (Sutherland-Hodgman, one
    image side at a time, vectorised). Moving each outside vertex onto the border instead (as
    before) changed the shape: a diamond reaching past two sides lost 1,082 of its 2,518 pixels."""
    if (points < -FAR).any() or (points[:, 0] > width + FAR).any() or (points[:, 1] > height + FAR).any():
        points = _clip_sides(points, ((0, -FAR, False), (0, width + FAR, True), (1, -FAR, False), (1, height + FAR, True)),
                             exact=True)
    return _clip_sides(points, ((0, 0.0, False), (0, float(width), True), (1, 0.0, False), (1, float(height), True)))


def _exact_cut(p: np.ndarray, q: np.ndarray, axis: int, bound: float) -> float:
    """The other coordinate where segment p-q meets the line `axis` = bound, computed exactly
    and rounded once (it lies between p's and q's, so it cannot overflow)."""
    other = 1 - axis
    pa, qa, po, qo, b = (_fixed(v) for v in (p[axis], q[axis], p[other], q[other], bound))
    # po + (b - pa) (qo - po) / (qa - pa), all in units of 2^-1074; Python's int / int rounds once.
    return (po * (qa - pa) + (b - pa) * (qo - po)) / ((qa - pa) << _FIXED_BITS)


_FIXED_BITS = 1074  # every finite double is a whole multiple of 2^-1074


def _fixed(value) -> int:
    numerator, denominator = float(value).as_integer_ratio()  # denominator: a power of two
    return numerator << (_FIXED_BITS - denominator.bit_length() + 1)


def _clip_sides(points: np.ndarray, sides, *, exact: bool = False) -> np.ndarray:
    for axis, bound, keep_below in sides:
        if len(points) == 0:
            break
        nxt = np.roll(points, -1, axis=0)
        inside = points[:, axis] <= bound if keep_below else points[:, axis] >= bound
        inside_next = np.roll(inside, -1)
        crossing = inside != inside_next
        if exact:
            cut = points.copy()
            for i in np.flatnonzero(crossing):
                cut[i, 1 - axis] = _exact_cut(points[i], nxt[i], axis, bound)
        else:
            a, b = points[:, axis], nxt[:, axis]
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(crossing, (bound - a) / (b - a), 0.0)
            cut = points + t[:, None] * (nxt - points)
        cut[:, axis] = bound  # exactly on the side, not a rounding error off it
        # Each vertex gives itself if inside, then the crossing point if its edge crosses the side.
        slots = np.stack([points, cut], axis=1)
        keep = np.stack([inside, crossing], axis=1)
        points = slots[keep]
    return points


def polygons_to_rle(polygons: list[list[float]], *, height: int, width: int, field: str = "polygons") -> dict:
    """Validated, clipped polygons → compressed RLE; an empty result is an error."""
    encoded = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    if int(mask_utils.area(encoded)) == 0:
        raise GeometryError("the polygons cover no pixel of the image", field=field)
    return {"size": [height, width], "counts": encoded["counts"].decode("ascii")}


def validate_box(value, *, height: int, width: int, field: str = "box") -> list[float]:
    """[x0, y0, x1, y1] in pixel-edge coordinates, x0 < x1 and y0 < y1, clipped to the image;
    a box that does not overlap the image is an error."""
    _check_size(height, width)
    if not (isinstance(value, (list, tuple)) and len(value) == 4):
        raise GeometryError("must be [x0, y0, x1, y1]", field=field)
    if not all(_number(v) for v in value):
        raise GeometryError("coordinates must be finite numbers", field=field)
    x0, y0, x1, y1 = (float(v) for v in value)
    if not (x0 < x1 and y0 < y1):
        raise GeometryError("needs x0 < x1 and y0 < y1", field=field)
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    if not (cx0 < cx1 and cy0 < cy1):
        raise GeometryError(f"lies outside the image (0..{width} x 0..{height})", field=field)
    return [cx0, cy0, cx1, cy1]


def mask_from(*, height: int, width: int, rle=None, polygons=None) -> dict:
    """Exactly one of an RLE or polygons → validated compressed RLE (what annotations store)."""
    if (rle is None) == (polygons is None):
        raise GeometryError("give exactly one of mask_rle or polygons", field="mask_rle")
    if polygons is not None:
        return polygons_to_rle(validate_polygons(polygons, height=height, width=width), height=height, width=width)
    return validate_rle(rle, height=height, width=width)


def rle_geometry(rle: dict) -> tuple[list[float], int]:
    """Tight [x, y, w, h] box and pixel area of a validated compressed RLE."""
    encoded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return [float(v) for v in mask_utils.toBbox(encoded)], int(mask_utils.area(encoded))
