"""Label Studio JSON tasks: [{"data": {"image": ...}, "annotations": [{"result": [...]}]}].

Export writes every mask as a `brushlabels` region in Label Studio's own RLE (lossless) with
from_name "tag" and to_name "image", and data.image = "images/<file>" (point Label Studio's
storage at the images/ folder, or rewrite the prefix). Import reads brushlabels,
rectanglelabels (boxes only), polygonlabels and ellipselabels (drawn as a 72-point polygon),
from the first non-cancelled annotation of a
task (or its first prediction when it has no annotation); any other labelled shape (keypoints,
polylines) is an item error, not left out.

Brush RLE: see brush.py. A brush region is decoded only when the import rasterizes it, after its
original_width/original_height were compared with the project's image: the RLE's header, read
from the file, decides how much the decoder allocates.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

from backend.core import geometry as gate

from . import jsonstream
from .base import (
    ExportContext, ExportImage, ItemError, JsonArraySpool, Parser, Record, Shape, SourceFile, Writer,
    finite_number, image_base_name, instance_from, open_entry,
)
from .brush import brush_decode, brush_encode  # noqa: F401 (brush_decode: the tests' and callers' name)

TASKS_PATH = "tasks.json"

# --------------------------------------------------------------------------- export


class LabelStudioWriter(Writer):
    def begin(self, ctx: ExportContext) -> None:
        self.spool = JsonArraySpool()

    def add(self, ctx: ExportContext, image: ExportImage) -> None:
        ctx.add_image(f"images/{image.file_name}", image)
        result = [{
            "id": f"r{obj.id}", "type": "brushlabels", "from_name": "tag", "to_name": "image",
            "original_width": image.width, "original_height": image.height, "image_rotation": 0,
            "value": {"format": "rle", "rle": brush_encode(obj.mask()), "brushlabels": [obj.class_name]},
            # The label is the type; an instance rides along as LabelMe's and COCO's do (Label Studio
            # keeps a result's extra keys), else a round trip turned it into its type.
            **({"attributes": obj.attributes()} if obj.instance_id is not None else {}),
        } for obj in image.objects]
        self.spool.append({"id": image.id, "data": {"image": f"images/{image.file_name}"},
                           "annotations": [{"result": result}], "predictions": []})

    def finish(self, ctx: ExportContext) -> None:
        with open_entry(ctx.zf, TASKS_PATH) as dst:
            self.spool.copy_into(dst)


# --------------------------------------------------------------------------- import

class LabelStudioParser(Parser):
    def parse(self, files: list[SourceFile]) -> Iterator[Record | ItemError]:
        documents = [f for f in files if f.name.lower().endswith(".json")]
        if not documents:
            yield ItemError("upload", "no Label Studio .json file found")
        for source in documents:
            yield from _parse_document(source)


def _parse_document(source: SourceFile) -> Iterator[Record | ItemError]:
    try:
        with jsonstream.json_stream(source) as (fh, first):
            # An export is a list of tasks: streamed task by task. A single task is small.
            tasks = jsonstream.items(fh, "item" if first == b"[" else "")
            for index, task in enumerate(tasks):
                yield from _parse_task(f"{source.name}: task {task.get('id', index) if isinstance(task, dict) else index}", task)
    except jsonstream.JSONError as exc:
        yield jsonstream.malformed(source, exc)


def _image_name(url) -> tuple[str | None, str | None]:
    if not isinstance(url, str):
        return None, "data.image is missing"
    try:
        path = unquote(urlparse(url).path) or url
    except ValueError:  # urlparse refuses some URLs ('http://[::1'): the task's error, not the job's
        return None, f"data.image {url[:200]!r} is not a valid URL"
    if "?d=" in url:  # local-files storage: /data/local-files/?d=dir/file.jpg
        path = unquote(url.split("?d=", 1)[1])
    name, why = image_base_name(path, allow_absolute=True)
    return name, why


def _json_type(value) -> str:
    """What a JSON value is, in the file's terms ('a number', 'true'), for messages."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    kinds = ((str, "a string"), (int, "a number"), (float, "a number"), (list, "a list"), (dict, "an object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def _parse_task(item: str, task) -> Iterator[Record | ItemError]:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        yield ItemError(item, "a task needs a 'data' object")
        return
    name, why = _image_name(task["data"].get("image"))
    if why:
        yield ItemError(item, why)
        return
    results, why = _chosen_result(task)
    if why:
        yield ItemError(item, why)
        return
    for number, region in enumerate(results):
        region_item = f"{item} region {region.get('id', number) if isinstance(region, dict) else number}"
        record = _region(region_item, name, region)
        if record is not None:
            yield record


def _chosen_result(task: dict) -> tuple[list, str | None]:
    """The 'result' list of the task's first non-cancelled annotation, else of its first
    prediction; or why the task's shape is wrong. A number or `true` where a list belongs was
    iterated and failed the whole import as an internal error, losing every other item's error."""
    for key in ("annotations", "completions", "predictions"):
        entries = task.get(key)
        if entries is not None and not isinstance(entries, list):
            return [], f"'{key}' must be a list, not {_json_type(entries)}"
        for index, entry in enumerate(entries or []):
            if not isinstance(entry, dict):
                return [], f"'{key}' entry {index} must be an object, not {_json_type(entry)}"
    annotations = [a for a in task.get("annotations") or task.get("completions") or [] if not a.get("was_cancelled")]
    chosen = annotations or task.get("predictions") or []
    if not chosen:
        return [], None
    results = chosen[0].get("result")
    if results is not None and not isinstance(results, list):
        return [], f"'result' must be a list, not {_json_type(results)}"
    return results or [], None


SUPPORTED = {"brushlabels", "rectanglelabels", "polygonlabels", "ellipselabels"}
# Label Studio's shape tools without a label in the same region (the label comes in another one).
_BARE_SHAPES = {"brush", "rectangle", "polygon", "ellipse", "keypoint", "polyline"}
ELLIPSE_POINTS = 72  # vertices of the polygon an ellipse is drawn as (5 degrees apart)
# No image is wider or taller; keeps the arithmetic on a file's sizes within float range.
MAX_SIDE = 1 << 31


def _ellipse(value: dict, h: int, w: int) -> tuple[Shape | None, str | None]:
    """Label Studio's ellipse (centre x, y and radii in percent of the image, rotation in degrees
    about the centre) as the polygon of its outline, in pixels."""
    numbers = [value.get(k) for k in ("x", "y", "radiusX", "radiusY")]
    rotation = value.get("rotation", 0) or 0
    if not all(finite_number(v) for v in numbers) or not finite_number(rotation) or numbers[2] <= 0 or numbers[3] <= 0:
        return None, "an ellipse needs numeric x, y and positive radiusX, radiusY (percent)"
    cx, cy, rx, ry = numbers[0] / 100 * w, numbers[1] / 100 * h, numbers[2] / 100 * w, numbers[3] / 100 * h
    turn = math.radians(rotation)
    points = []
    for step in range(ELLIPSE_POINTS):
        t = 2 * math.pi * step / ELLIPSE_POINTS
        ex, ey = rx * math.cos(t), ry * math.sin(t)
        points.append([cx + ex * math.cos(turn) - ey * math.sin(turn), cy + ex * math.sin(turn) + ey * math.cos(turn)])
    return Shape("center_polygons", [points]), None


def _region(item: str, name: str, region) -> Record | ItemError | None:
    if not isinstance(region, dict):
        return ItemError(item, "a region must be an object")
    kind = region.get("type")
    if kind is not None and not isinstance(kind, str):
        return ItemError(item, f"a region's 'type' must be a string, not {_json_type(kind)}")
    if kind not in SUPPORTED:
        if isinstance(kind, str) and kind in _BARE_SHAPES and f"{kind}labels" in SUPPORTED:
            # Label Studio's shape without its label (the label in a region of its own): no class.
            return ItemError(item, f"a {kind} region without a label is not supported: label it in the same region "
                                   f"({kind}labels)")
        if isinstance(kind, str) and (kind.endswith("labels") or kind in _BARE_SHAPES):
            # A shape we cannot make a mask of (keypoints, polylines...): the job said "done"
            # with these left out without a word.
            return ItemError(item, f"{kind} regions are not supported (brush, rectangle, polygon and ellipse "
                                   "labels are): remove them or convert them first")
        return None  # choices, text areas, relations (which have no value) etc. carry no object
    if not isinstance(region.get("value"), dict):
        return ItemError(item, "a region needs a 'value' object")
    value = region["value"]
    labels = value.get(kind)
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
        return ItemError(item, f"expected exactly one label in value.{kind}")
    h, w = region.get("original_height"), region.get("original_width")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < MAX_SIDE for v in (h, w)):
        return ItemError(item, "original_width and original_height are required (whole numbers of pixels)")
    if kind == "brushlabels":
        rle = value.get("rle")
        if value.get("format") != "rle" or not isinstance(rle, list):
            return ItemError(item, "brushlabels needs value.format 'rle' and a value.rle list")
        if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in rle):
            return ItemError(item, "value.rle must be a list of bytes (whole numbers 0-255)")
        # Decoded when rasterized, after (h, w) was compared with the image's real size: the
        # header's size is the file's word, and decoding first let a 205 KB file claim 1 G values.
        shape = Shape("brush", rle)
    elif kind == "rectanglelabels":
        box = [value.get(k) for k in ("x", "y", "width", "height")]
        if not all(finite_number(v) for v in box) or finite_number(value.get("rotation")) and value["rotation"]:
            return ItemError(item, "a rectangle needs numeric x, y, width, height (rotation unsupported)")
        x, y, bw, bh = (v / 100 for v in box)
        shape = Shape("box", [[x * w, y * h], [(x + bw) * w, (y + bh) * h]])
    elif kind == "ellipselabels":
        shape, why = _ellipse(value, h, w)
        if why:
            return ItemError(item, why)
    else:
        points = value.get("points")
        if isinstance(points, list) and len(points) > gate.MAX_VERTICES:  # the cap COCO polygons and the API have
            return ItemError(item, f"a polygon has more than {gate.MAX_VERTICES} vertices")
        if not isinstance(points, list) or len(points) < 3 or not all(
            isinstance(p, list) and len(p) == 2 and all(finite_number(v) for v in p) for p in points
        ):
            return ItemError(item, "a polygon needs 3+ [x, y] points (percent)")
        shape = Shape("center_polygons", [[[px / 100 * w, py / 100 * h] for px, py in points]])
    return Record(item=item, file_name=name, class_name=labels[0], shapes=[shape], size=(h, w),
                  instance_name=instance_from(region.get("attributes")))
