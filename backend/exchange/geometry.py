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

from backend.core.geometry import MAX_RUN_CHARS, rle_string_counts


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


# Windows decoded together share one fill buffer; past this many pixels a new buffer starts,
# so a page of image-sized masks never needs more than ~this much memory at once.
WINDOW_BATCH_PIXELS = 4_000_000


def decode_windows(rles: list[dict]) -> list[tuple[np.ndarray, int, int]]:
    """decode_window() of many masks in one numpy pass over all their runs: a polygon export
    spent most of its time in per-object numpy calls on ~200-character RLE strings. Same
    windows as decode_window(); anything unusual (uncompressed counts, a string the gate would
    refuse) goes through decode_window(), which also raises its errors."""
    if not rles:
        return []
    strings = [r["counts"] for r in rles]
    if not all(isinstance(c, str) and c.isascii() for c in strings):
        return [decode_window(r) for r in rles]
    lengths = np.fromiter((len(c) for c in strings), np.int64, len(strings))
    raw = np.frombuffer("".join(strings).encode("ascii"), np.uint8).astype(np.int64) - 48
    char_starts = np.cumsum(lengths) - lengths
    last = char_starts + lengths - 1
    if (raw.size == 0 or raw.min() < 0 or raw.max() > 63 or (lengths == 0).any()
            or ((raw[last] & 0x20) != 0).any()):
        return [decode_window(r) for r in rles]
    ends = np.flatnonzero((raw & 0x20) == 0)  # the last character of every run
    starts = np.concatenate(([0], ends[:-1] + 1))
    run_chars = ends - starts + 1
    if run_chars.max() > MAX_RUN_CHARS:
        return [decode_window(r) for r in rles]
    # pycocotools' code, vectorised as in core.geometry.rle_string_counts, over all strings.
    position = np.arange(raw.size) - np.repeat(starts, run_chars)
    values = np.add.reduceat((raw & 0x1F) << (5 * position), starts)
    values = np.where((raw[ends] & 0x10) != 0, values - (np.int64(1) << (5 * run_chars)), values)
    owner = np.searchsorted(char_starts, starts, side="right") - 1  # run -> its string
    first_run = np.searchsorted(starts, char_starts)
    k = np.arange(starts.size) - first_run[owner]  # run index within its string
    # Runs after the second are differences from the run two places back: a cumulative sum
    # along each string's even runs (from the third) and odd runs (from the second).
    runs = values.copy()
    for parity in (0, 1):
        chain = np.flatnonzero((k >= 1) & (k % 2 == parity))
        runs[chain] = _segmented_cumsum(values[chain], owner[chain])
    run_ends = _segmented_cumsum(runs, owner)
    ones = np.flatnonzero((k % 2 == 1) & (runs > 0))
    out: list[tuple[np.ndarray, int, int]] = [(np.zeros((0, 0), np.uint8), 0, 0)] * len(rles)
    if ones.size == 0:
        return out
    s, e, who = run_ends[ones] - runs[ones], run_ends[ones], owner[ones]
    heights = np.array([int(r["size"][0]) for r in rles], np.int64)
    widths = np.array([int(r["size"][1]) for r in rles], np.int64)
    h = heights[who]
    col_s, col_e, row_s, row_e = s // h, (e - 1) // h, s % h, (e - 1) % h
    present, first = np.unique(who, return_index=True)
    last_one = np.append(first[1:], who.size) - 1
    hp, wp = heights[present], widths[present]
    c0 = np.maximum(col_s[first] - 1, 0)
    c1 = np.minimum(col_e[last_one] + 2, wp)
    crosses = np.maximum.reduceat((col_s != col_e).astype(np.int8), first) > 0
    r0 = np.where(crosses, 0, np.maximum(np.minimum.reduceat(row_s, first) - 1, 0))
    r1 = np.where(crosses, hp, np.minimum(np.maximum.reduceat(row_e, first) + 2, hp))
    rows, cols = r1 - r0, c1 - c0
    sizes = cols * rows + 1  # + a slot for the end of a run that reaches the window's end
    # Position of each run's first pixel and one past its last inside its window (column-major);
    # a run crossing columns has full-height windows, where this is its plain offset.
    per = np.repeat(np.arange(present.size), np.diff(np.append(first, who.size)))
    begin = (col_s - c0[per]) * rows[per] + (row_s - r0[per])
    finish = (col_e - c0[per]) * rows[per] + (row_e - r0[per]) + 1
    group_start = 0
    while group_start < present.size:
        group_end = group_start + 1
        total = int(sizes[group_start])
        while group_end < present.size and total + sizes[group_end] <= WINDOW_BATCH_PIXELS:
            total += int(sizes[group_end])
            group_end += 1
        bases = np.cumsum(sizes[group_start:group_end]) - sizes[group_start:group_end]
        lo, hi = first[group_start], (first[group_end] if group_end < present.size else who.size)
        base_of_run = bases[per[lo:hi] - group_start]
        flat = np.zeros(total, np.int8)
        flat[begin[lo:hi] + base_of_run] = 1  # starts are distinct, and so are ends
        flat[finish[lo:hi] + base_of_run] -= 1
        filled = np.cumsum(flat, dtype=np.int8).view(np.uint8)
        for j in range(group_start, group_end):
            b = int(bases[j - group_start])
            crop = filled[b:b + int(sizes[j]) - 1].reshape(int(cols[j]), int(rows[j])).T
            out[int(present[j])] = (crop, int(c0[j]), int(r0[j]))
        group_start = group_end
    return out


def _segmented_cumsum(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting wherever `segment` (sorted ids) changes."""
    total = np.cumsum(values)
    if total.size == 0:
        return total
    change = np.diff(segment) != 0
    new = np.flatnonzero(change) + 1
    offsets = np.concatenate(([0], total[new - 1]))
    return total - offsets[np.concatenate(([0], np.cumsum(change)))]


def _crop(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The mask's bounding box plus a 1-pixel margin (contours of a 50-pixel object should not
    cost a pass over a 12-megapixel image), and its offset."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return mask[:0, :0], 0, 0
    y0, x0 = max(int(rows[0]) - 1, 0), max(int(cols[0]) - 1, 0)
    return mask[y0:int(rows[-1]) + 2, x0:int(cols[-1]) + 2], x0, y0


def _contours(mask, scale: int = 1, mode: int = cv2.RETR_CCOMP):
    """`mask`: a full (h, w) array, or a (crop, x0, y0) window from decode_window."""
    crop, x0, y0 = mask if isinstance(mask, tuple) else _crop(mask)
    if crop.size == 0:
        return [], False
    crop = crop.astype(np.uint8)
    if scale > 1:
        crop = crop.repeat(scale, axis=0).repeat(scale, axis=1)
    contours, hierarchy = cv2.findContours(crop, mode, cv2.CHAIN_APPROX_SIMPLE)
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


def outermost_center_polygons(mask) -> list[np.ndarray]:
    """center_polygons() without the parts that lie in another part's hole: for a format that
    fills holes (YOLO) they add nothing, and joined into one polygon they would be cut out again
    by an even-odd fill."""
    return _contours(mask, mode=cv2.RETR_EXTERNAL)[0]


def join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One polygon through every part, for formats with one polygon per object (YOLO), the way
    Ultralytics' merge_multi_segment joins a COCO object's polygons: each part is entered and left
    at its point nearest the next part, over a bridge walked there and back (zero width), so the
    fill is the parts plus only the bridge lines. Parts are chained nearest first (by their
    centres) to keep the bridges short; Ultralytics takes them in file order."""
    if len(parts) <= 1:
        return parts[0] if parts else np.zeros((0, 2), np.int64)
    parts = [parts[i] for i in _nearest_chain(parts)]
    links = [_nearest_points(a, b) for a, b in zip(parts, parts[1:])]  # (exit of a, entry of b)
    entries = [links[0][0]] + [entry for _, entry in links]
    exits = [exit_ for exit_, _ in links]
    # Out along the chain over each part's first stretch, round the last part, and back over
    # each part's rest: every part is gone round exactly once, in its own direction.
    forward = [_walk(part, entries[i], exits[i], round_=False) for i, part in enumerate(parts[:-1])]
    last = _walk(parts[-1], entries[-1], entries[-1], round_=True)
    back = [_walk(part, exits[i], entries[i], round_=True) for i, part in reversed(list(enumerate(parts[:-1])))]
    return np.concatenate(forward + [last] + back)


def _walk(points: np.ndarray, start: int, stop: int, *, round_: bool) -> np.ndarray:
    """The contour's points from index `start` forward to `stop`, both included. When they are
    the same, once round (back to `start`) if `round_`, else that one point."""
    rolled = np.roll(points, -start, axis=0)
    steps = (stop - start) % len(points) or (len(points) if round_ else 0)
    return np.concatenate([rolled, rolled[:1]])[:steps + 1]


def _nearest_points(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Indices of a's and b's closest pair of points: all pairs for small parts (most islands are
    a few points), a k-d tree for big ones (the distance matrix of two 10,000-point contours
    would be 800 MB)."""
    if len(a) * len(b) <= 4096:
        distances = ((a[:, None, :].astype(np.int64) - b[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        return int(i), int(j)
    from scipy.spatial import cKDTree  # here: the web processes import this module too, never this

    distances, nearest = cKDTree(b).query(a)
    i = int(np.argmin(distances))
    return i, int(nearest[i])


# Up to this many parts the chain is built nearest first (k^2 work); past it (a noisy mask of
# thousands of islands took minutes) along a Z-order curve, which keeps near parts near.
GREEDY_CHAIN_PARTS = 500


def _nearest_chain(parts: list[np.ndarray]) -> list[int]:
    """An order of the parts: from the first, each followed by the remaining one whose centre is
    nearest (greedy: not the shortest chain, but far shorter than file order on scattered islands)."""
    centres = np.array([p.mean(axis=0) for p in parts], dtype=np.float64)
    if len(parts) > GREEDY_CHAIN_PARTS:
        return np.argsort(_z_order(centres), kind="stable").tolist()
    left = np.ones(len(parts), bool)
    order = [0]
    left[0] = False
    for _ in range(len(parts) - 1):
        distance = ((centres - centres[order[-1]]) ** 2).sum(axis=1)
        distance[~left] = np.inf
        order.append(int(np.argmin(distance)))
        left[order[-1]] = False
    return order


def _z_order(points: np.ndarray) -> np.ndarray:
    """Morton codes of (x, y) points scaled to 16 bits each: their bits interleaved."""
    span = np.maximum(points.max(axis=0) - points.min(axis=0), 1)
    scaled = ((points - points.min(axis=0)) / span * 65535).astype(np.uint64)

    def spread(v: np.ndarray) -> np.ndarray:  # 16 bits -> every other of 32
        for shift, keep in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
            v = (v | (v << np.uint64(shift))) & np.uint64(keep)
        return v

    return spread(scaled[:, 0]) | (spread(scaled[:, 1]) << np.uint64(1))


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


def corner_polygons_many(windows: list[tuple[np.ndarray, int, int]]) -> list[tuple[list[list[int]], bool]]:
    """corner_polygons() of many windows, as integer flat lists (corners are whole pixels): the
    clean-up of every contour runs as one numpy pass instead of a dozen calls per object."""
    traced, lengths = [], []
    holes = [False] * len(windows)
    for i, (crop, x0, y0) in enumerate(windows):
        if crop.size == 0:
            continue
        # 2x nearest-neighbour upscale, as corner_polygons() does with repeat(), in one C call.
        big = cv2.resize(np.ascontiguousarray(crop, dtype=np.uint8), None, fx=2, fy=2,
                         interpolation=cv2.INTER_NEAREST)
        contours, hierarchy = cv2.findContours(big, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        if hierarchy is None:
            continue
        parents = hierarchy[0][:, 3]
        holes[i] = bool((parents >= 0).any())
        offset = (2 * x0, 2 * y0)
        for contour, parent in zip(contours, parents):
            if parent < 0:
                traced.append(contour.reshape(-1, 2) + offset)
                lengths.append((i, len(contour)))
    out: list[tuple[list[list[int]], bool]] = [([], h) for h in holes]
    if not traced:
        return out
    points = (np.concatenate(traced) + 1) // 2
    sizes = np.array([n for _, n in lengths])
    first = np.cumsum(sizes) - sizes
    previous = np.roll(points, 1, axis=0)
    previous[first] = points[first + sizes - 1]  # each contour is a closed loop
    keep = (points != previous).any(axis=1)  # drop repeated corners
    kept = np.add.reduceat(keep, first)
    keep[first[kept == 0]] = True  # a contour that is one repeated point keeps one
    kept = np.maximum(kept, 1)
    flat = points[keep].reshape(-1).tolist()
    at = 0
    for (i, _), n in zip(lengths, kept.tolist()):
        if n >= 3:
            out[i][0].append(flat[at:at + 2 * n])
        at += 2 * n
    return out


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


def fill_yolo_polygons(polygons: list[list[tuple[float, float]]], height: int, width: int) -> np.ndarray:
    """Fill polygons the way Ultralytics does (cv2.fillPoly, whole-pixel points). It agrees with
    fill_center_polygons on a plain outline; on a joined multi-part line (join_parts) it draws the
    whole bridge where PIL's outline cancels the middle of a line walked there and back."""
    mask = np.zeros((height, width), dtype=np.uint8)
    points = [np.rint(np.asarray(p, dtype=np.float64)).astype(np.int32).reshape(-1, 2) for p in polygons if len(p)]
    cv2.fillPoly(mask, points, 1)
    return mask


def as_yolo_carries(rle: dict) -> dict:
    """The mask as a YOLO line brings it back (YoloWriter, then fill_yolo_polygons): holes filled,
    parts joined by bridge lines. A re-imported export is compared with this, not the original:
    a many-part small object gains enough bridge pixels to miss the duplicate test otherwise."""
    height, width = (int(v) for v in rle["size"])
    mask = np.zeros((height, width), dtype=np.uint8)
    parts = outermost_center_polygons(decode_window(rle))
    if parts:
        cv2.fillPoly(mask, [join_parts(parts).astype(np.int32).reshape(-1, 2)], 1)
    return encode(mask)


def fill_box(box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """A rectangle mask for [x0, y0, x1, y1] in continuous (edge) coordinates."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)] = 1
    return mask


def check_points_inside(points, height: int, width: int, *, tolerance: float = 0.5, image: tuple[int, int] | None = None) -> None:
    """`image`: the (width, height) a message names, when the bounds are not the image's own
    (pixel-center coordinates end at width - 1)."""
    arr = np.asarray(points, dtype=float).reshape(-1, 2)
    if arr.size == 0:
        raise GeometryError("the shape has no points")
    if not np.isfinite(arr).all():
        raise GeometryError("the shape has non-finite coordinates")
    xs, ys = arr[:, 0], arr[:, 1]
    if xs.min() < -tolerance or ys.min() < -tolerance or xs.max() > width + tolerance or ys.max() > height + tolerance:
        raise GeometryError(
            "the shape reaches outside the image ({}x{}): ".format(*(image or (width, height))) +
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
