"""Label Studio JSON tasks: [{"data": {"image": ...}, "annotations": [{"result": [...]}]}].

Export writes every mask as a `brushlabels` region in Label Studio's own RLE (lossless) with
from_name "tag" and to_name "image", and data.image = "images/<file>" (point Label Studio's
storage at the images/ folder, or rewrite the prefix). Import reads brushlabels,
rectanglelabels (boxes only), polygonlabels and ellipselabels (drawn as a 72-point polygon),
from the first non-cancelled annotation of a
task (or its first prediction when it has no annotation); any other labelled shape (keypoints,
polylines) is an item error, not left out.

Brush RLE, as label_studio_converter/brush.py does it: the RGBA image (alpha = mask * 255)
flattened, run-length coded into a bit stream: a 32-bit value count, 5 bits word size - 1,
four 4-bit run-length widths - 1 (3, 4, 8, 16), then blocks of 1 flag bit (1 = a run of one
value, 0 = literal values), 2 bits choosing the width, the count - 1, and the value(s).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

import numpy as np

from backend.core import geometry as gate

from . import jsonstream
from .base import (
    ExportContext, ExportImage, ItemError, JsonArraySpool, Parser, Record, Shape, SourceFile, Writer,
    finite_number, image_base_name, instance_from, open_entry,
)

TASKS_PATH = "tasks.json"
RLE_SIZES = (3, 4, 8, 16)
WORD = 8


# --------------------------------------------------------------------------- brush RLE


def brush_encode(mask: np.ndarray) -> list[int]:
    flat = (mask.reshape(-1) > 0).astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate(([0], edges))
    # Every pixel is 4 RGBA bytes of the same value, so pixel runs are 4x longer byte runs.
    lengths = np.diff(np.concatenate((starts, [flat.size]))) * 4
    bits = [f"{flat.size * 4:032b}", f"{WORD - 1:05b}", "".join(f"{s - 1:04b}" for s in RLE_SIZES)]
    limit = 1 << RLE_SIZES[-1]
    for start, length in zip(starts.tolist(), lengths.tolist()):
        value = f"{255 if flat[start] else 0:08b}"
        while length > 0:
            piece = min(length, limit)
            index = next(i for i, s in enumerate(RLE_SIZES) if piece - 1 < (1 << s))
            bits.append(f"1{index:02b}{piece - 1:0{RLE_SIZES[index]}b}{value}")
            length -= piece
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return np.packbits(np.frombuffer(stream.encode("ascii"), dtype=np.uint8) - ord("0")).tolist()


def brush_decode(rle: list[int], height: int, width: int) -> np.ndarray:
    bits = np.unpackbits(np.asarray(rle, dtype=np.uint8))
    weights = {n: 1 << np.arange(n - 1, -1, -1) for n in range(1, 33)}
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > bits.size:
            raise ValueError("the brush RLE ends early")
        value = int(bits[pos:pos + n] @ weights[n])
        pos += n
        return value

    num = read(32)
    if num != height * width * 4:
        raise ValueError(f"the brush RLE holds {num} values, a {width}x{height} RGBA image needs {height * width * 4}")
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint8)
    i = 0
    while i < num:
        repeat = read(1)
        j = min(i + 1 + read(sizes[read(2)]), num)
        if repeat:
            out[i:j] = read(word)
        else:
            out[i:j] = [read(word) for _ in range(j - i)]
        i = j
    return (out.reshape(height, width, 4)[:, :, 3] > 0).astype(np.uint8)


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
    path = unquote(urlparse(url).path) or url
    if "?d=" in url:  # local-files storage: /data/local-files/?d=dir/file.jpg
        path = unquote(url.split("?d=", 1)[1])
    name, why = image_base_name(path, allow_absolute=True)
    return name, why


def _parse_task(item: str, task) -> Iterator[Record | ItemError]:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        yield ItemError(item, "a task needs a 'data' object")
        return
    name, why = _image_name(task["data"].get("image"))
    if why:
        yield ItemError(item, why)
        return
    sets = [a for a in task.get("annotations") or task.get("completions") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    sets = sets or [p for p in task.get("predictions") or [] if isinstance(p, dict)]
    results = sets[0].get("result") if sets else []
    for number, region in enumerate(results if isinstance(results, list) else []):
        region_item = f"{item} region {region.get('id', number) if isinstance(region, dict) else number}"
        record = _region(region_item, name, region)
        if record is not None:
            yield record


SUPPORTED = {"brushlabels", "rectanglelabels", "polygonlabels", "ellipselabels"}
# Label Studio's shape tools without a label in the same region (the label comes in another one).
_BARE_SHAPES = {"brush", "rectangle", "polygon", "ellipse", "keypoint", "polyline"}
ELLIPSE_POINTS = 72  # vertices of the polygon an ellipse is drawn as (5 degrees apart)


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
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        return ItemError(item, "original_width and original_height are required")
    if kind == "brushlabels":
        if value.get("format") != "rle" or not isinstance(value.get("rle"), list):
            return ItemError(item, "brushlabels needs value.format 'rle' and a value.rle list")
        try:
            shape = Shape("array", brush_decode(value["rle"], h, w))
        except (ValueError, TypeError, OverflowError) as exc:
            return ItemError(item, f"the brush RLE could not be decoded: {exc}")
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
