"""Mask encodings: COCO RLE (pycocotools), polygons (OpenCV) and seed-000's
row-major uncompressed RLE. No hand-written run-length loops."""
from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as mask_utils


def _as_fortran_u8(mask: np.ndarray) -> np.ndarray:
    return np.asfortranarray(np.asarray(mask, dtype=np.uint8))


def encode_rle(mask: np.ndarray) -> dict:
    """Binary HxW mask -> COCO compressed RLE with ``counts`` as str (JSON-safe)."""
    rle = mask_utils.encode(_as_fortran_u8(mask))
    rle["counts"] = rle["counts"].decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"]}


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE (compressed str/bytes or uncompressed list counts) -> bool HxW."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed COCO (column-major) RLE
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, str):
        rle = {"size": [h, w], "counts": counts.encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def _column_major_counts(mask_fortran: np.ndarray) -> list[int]:
    """Uncompressed COCO runs (column-major, first run = zeros) of a mask.

    pycocotools does not expose uncompressed counts to Python (its RLEs object is
    opaque), so runs are found with vectorised numpy change points, and
    decoding goes through pycocotools (frPyObjects + decode); the tests check the
    two agree with pycocotools' own compressed encoding."""
    flat = np.asarray(mask_fortran, dtype=np.uint8).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds)
    if flat.size and flat[0] == 1:  # COCO runs always start with zeros
        counts = np.concatenate(([0], counts))
    return counts.astype(int).tolist()


def encode_native_rle(mask: np.ndarray) -> dict:
    """Seed-000 format: row-major uncompressed runs starting with a run of zeros.

    Row-major runs of M are the column-major (COCO) runs of M.T, so pycocotools
    encodes the transpose."""
    m = np.asarray(mask, dtype=np.uint8)
    h, w = m.shape
    counts = _column_major_counts(np.asfortranarray(m.T))
    return {"size": [int(h), int(w)], "counts": counts, "order": "row-major"}


def decode_native_rle(rle: dict) -> np.ndarray:
    h, w = rle["size"]
    if rle.get("order", "row-major") != "row-major":
        return decode_rle(rle)
    # Runs of M in row-major == COCO runs of M.T (shape W x H).
    t = mask_utils.decode(mask_utils.frPyObjects({"size": [w, h], "counts": list(rle["counts"])}, w, h))
    return t.T.astype(bool)


def bbox_from_mask(mask: np.ndarray) -> list[float] | None:
    """Tight [x1, y1, x2, y2] (exclusive max, pixel edges) or None for an empty mask."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return None
    ys = np.flatnonzero(m.any(axis=1))
    xs = np.flatnonzero(m.any(axis=0))
    return [float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)]


def mask_area(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))


def mask_to_polygons(mask: np.ndarray, min_points: int = 3) -> list[list[float]]:
    """OpenCV contours with RETR_CCOMP so holes are kept as their own rings.

    Returns flat [x1, y1, x2, y2, ...] rings (COCO polygon style); outer rings and
    hole rings alternate as OpenCV's two-level hierarchy yields them."""
    m = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) >= min_points:
            polys.append(c.reshape(-1).astype(float).tolist())
    return polys


def mask_to_polygons_with_holes(mask: np.ndarray) -> list[dict]:
    """[{"outer": ring, "holes": [ring, ...]}, ...] using the CCOMP hierarchy."""
    m = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8))
    contours, hier = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    out: list[dict] = []
    if hier is None:
        return out
    hier = hier[0]
    for i, c in enumerate(contours):
        if hier[i][3] != -1:  # a hole; attached to its parent below
            continue
        holes = []
        child = hier[i][2]
        while child != -1:
            holes.append(contours[child].reshape(-1).astype(float).tolist())
            child = hier[child][0]
        out.append({"outer": c.reshape(-1).astype(float).tolist(), "holes": holes})
    return out


def rle_to_polygons(rle: dict) -> list[dict]:
    """COCO or native RLE -> polygons with holes (see mask_to_polygons_with_holes)."""
    m = decode_native_rle(rle) if rle.get("order") == "row-major" else decode_rle(rle)
    return mask_to_polygons_with_holes(m)


def polygons_to_mask(polygons: list, height: int, width: int) -> np.ndarray:
    """Rasterise polygons. Accepts [{"outer", "holes"}] (holes cut out) or flat
    rings (filled with even-odd via a single fillPoly call, so nested rings are holes)."""
    m = np.zeros((height, width), dtype=np.uint8)
    rings: list[np.ndarray] = []
    for p in polygons:
        if isinstance(p, dict):
            rings.append(np.asarray(p["outer"], dtype=np.float64).reshape(-1, 2))
            rings.extend(np.asarray(h, dtype=np.float64).reshape(-1, 2) for h in p.get("holes", []))
        else:
            rings.append(np.asarray(p, dtype=np.float64).reshape(-1, 2))
    if rings:
        # fillPoly with several rings uses even-odd filling: a hole ring inside an
        # outer ring is left empty. OpenCV contour points are pixel centres.
        cv2.fillPoly(m, [np.round(r).astype(np.int32) for r in rings], 1)
    return m.astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else float(np.count_nonzero(a & b) / union)
