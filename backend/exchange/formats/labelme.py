"""LabelMe JSON: one <name>.json next to each image, imagePath relative, imageData null.

Each annotation is an instance with its own group_id (1, 2, ... per image), so LabelMe's own
shapes_to_label() keeps multi-part objects together. A mask without holes becomes one polygon
shape per outer contour (through boundary pixel centers, which LabelMe fills back to exactly
our pixels). LabelMe polygons cannot express holes, so a mask with holes (or with a part too
small for a 3-point polygon) becomes one `mask` shape: its box as two points plus a PNG of the
crop, which labelme 6 loads and draws natively. Nothing is lost either way.
"""
from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import numpy as np
from PIL import Image as PILImage

from backend.core import geometry as gate

from .. import geometry
from .base import (
    ExportContext, ExportImage, ItemError, Parser, Record, Shape, SourceFile, Writer, dumps, finite_number,
    image_base_name, image_path, instance_from, load_json,
)

LABELME_VERSION = "6.3.1"


class LabelmeWriter(Writer):
    stem_named = True  # <stem>.json next to the image: stems must not clash either

    def add(self, ctx: ExportContext, image: ExportImage) -> None:
        ctx.add_image(image.file_name, image)
        shapes = []
        for group_id, (obj, window) in enumerate(zip(image.objects, image.windows()), 1):
            parts = _shapes(window, obj.class_name, group_id)
            if obj.instance_id is not None:
                # label = the type; the instance rides along as an extra key, which labelme keeps
                # (LabelFile stores unknown shape keys as other_data and writes them back).
                for part in parts:
                    part["attributes"] = obj.attributes()
            shapes.extend(parts)
        doc = {
            "version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image.file_name,
            "imageData": None, "imageHeight": image.height, "imageWidth": image.width,
        }
        ctx.write_text(f"{image.file_name.rpartition('.')[0]}.json", dumps(doc))


def _shape(label: str, group_id: int, shape_type: str, points: list, mask: str | None = None) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": mask}


def _shapes(window: tuple[np.ndarray, int, int], label: str, group_id: int) -> list[dict]:
    polygons, has_holes = geometry.center_polygons(window)
    if polygons and not has_holes and all(len(p) >= 3 for p in polygons):
        return [_shape(label, group_id, "polygon", [[float(x), float(y)] for x, y in p]) for p in polygons]
    mask, ox, oy = window
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    crop = (mask[y0:y1 + 1, x0:x1 + 1] > 0).astype(np.uint8) * 255
    x0, y0, x1, y1 = x0 + ox, y0 + oy, x1 + ox, y1 + oy
    out = io.BytesIO()
    PILImage.fromarray(crop, mode="L").save(out, format="PNG")
    png = base64.b64encode(out.getvalue()).decode("ascii")
    return [_shape(label, group_id, "mask", [[float(x0), float(y0)], [float(x1), float(y1)]], png)]


class LabelmeParser(Parser):
    def parse(self, files: list[SourceFile]) -> Iterator[Record | ItemError]:
        documents = [f for f in files if f.name.lower().endswith(".json")]
        if not documents:
            yield ItemError("upload", "no LabelMe .json file found")
        for source in documents:
            yield from _parse_file(source)


def _parse_file(source: SourceFile) -> Iterator[Record | ItemError]:
    doc, error = load_json(source)
    if error:
        yield error
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        yield ItemError(source.name, "not a LabelMe file (needs a 'shapes' list)")
        return
    name, why = image_base_name(doc.get("imagePath"))
    if why:
        yield ItemError(source.name, why)
        return
    h, w = doc.get("imageHeight"), doc.get("imageWidth")
    size = (h, w) if isinstance(h, int) and isinstance(w, int) else None
    groups: dict[tuple, Record] = {}
    for index, raw in enumerate(doc["shapes"]):
        item = f"{source.name}: shape {index}"
        shape, why = _parse_shape(raw)
        if why:
            yield ItemError(item, why)
            continue
        group_id = raw.get("group_id")
        if group_id is not None and (isinstance(group_id, bool) or not isinstance(group_id, int)):
            # true was grouped with 1 (Python's True == 1); LabelMe writes a whole number or null
            yield ItemError(item, f"group_id must be a whole number or null, not {json.dumps(group_id)[:40]}")
            continue
        # Same label and group id = one object (LabelMe's own rule); no group id = alone.
        key = (raw["label"], group_id) if group_id is not None else ("", index)
        if key in groups:
            groups[key].shapes.append(shape)
        else:
            groups[key] = Record(item=item, file_name=name, class_name=raw["label"], shapes=[shape], size=size,
                                 instance_name=instance_from(raw.get("attributes")),
                                 file_path=image_path(doc.get("imagePath")), image_key=(source.name,))
    yield from groups.values()


def _parse_shape(raw) -> tuple[Shape | None, str | None]:
    if not isinstance(raw, dict) or not isinstance(raw.get("label"), str):
        return None, "a shape needs a string 'label'"
    points = raw.get("points")
    if isinstance(points, list) and len(points) > gate.MAX_VERTICES:  # the cap COCO polygons and the API have
        return None, f"has more than {gate.MAX_VERTICES} vertices"
    if not isinstance(points, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(finite_number(v) for v in p) for p in points
    ):
        return None, "points must be a list of [x, y]"
    kind = raw.get("shape_type") or "polygon"
    if kind == "polygon":
        if len(points) < 3:
            return None, "a polygon needs at least 3 points"
        return Shape("center_polygons", [points]), None
    if kind == "rectangle":
        if len(points) != 2:
            return None, "a rectangle needs 2 points"
        # LabelMe rectangles include both corner pixels: the edge box ends one pixel further.
        (xa, ya), (xb, yb) = points
        return Shape("box", [[min(xa, xb), min(ya, yb)], [max(xa, xb) + 1, max(ya, yb) + 1]]), None
    if kind == "mask":
        if len(points) != 2 or not isinstance(raw.get("mask"), str):
            return None, "a mask shape needs 2 points and a base64 PNG 'mask'"
        try:
            png = base64.b64decode(raw["mask"], validate=True)
        except ValueError:
            return None, "the shape's 'mask' is not base64 text"
        try:
            with PILImage.open(io.BytesIO(png)) as header:  # reads the header only, decodes nothing
                pw, ph = header.size
                kind_read, mode = header.format, header.mode
        except Exception:  # Pillow's message named a BytesIO object at a memory address
            return None, "the shape's 'mask' is not a PNG image"
        if kind_read != "PNG":
            return None, f"the shape's 'mask' is a {kind_read} image, not a PNG"
        if mode not in ("1", "L", "P"):
            # A mask is one band; a 16-bit RGBA one costs 8x the memory to decode for nothing.
            return None, f"the shape's 'mask' is a {mode} PNG: a mask has one band (1-bit, 8-bit grey or palette)"
        # LabelMe pastes the PNG into the box between its two points, both pixels included, at
        # whole pixels (int()); a PNG of another size is an error there, and was placed at the
        # PNG's own size here, past the box.
        (x0, y0), (x1, y1) = ((int(x), int(y)) for x, y in points)
        if (pw, ph) != (x1 - x0 + 1, y1 - y0 + 1):
            return None, (f"the mask PNG is {pw}x{ph} but its shape's box ({x0},{y0})-({x1},{y1}) is "
                          f"{x1 - x0 + 1}x{y1 - y0 + 1} pixels")
        # Decoded once the image's size is known, and only if the PNG's header fits in it
        # (base.py): a 13000x13000 mask in a 1 MB file must not cost gigabytes before its refusal.
        return Shape("crop_mask", (x0, y0, png)), None
    return None, f"shape_type '{kind}' is not supported (polygon, rectangle, mask)"
