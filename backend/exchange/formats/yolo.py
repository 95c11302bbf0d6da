"""YOLO (Ultralytics) segmentation: data.yaml + labels/<stem>.txt + images/.

Class indices must be 0..n-1, so they follow the project's classes in id order; data.yaml
names them. One line per object: `<class> x1 y1 x2 y2 ...`, normalized, through boundary
pixel centers (cv2.fillPoly, which Ultralytics uses, fills them back to the same pixels). YOLO
has one polygon per line and no holes: holes are filled, and the parts of a multi-part mask are
joined into one polygon by zero-width bridges (geometry.join_parts, as Ultralytics' COCO
converter does), which fill back as the parts plus the bridge lines (a line per part was read
back as that many objects). An object of 1-2 pixels repeats its points to make the 3 a polygon needs.
Import reads segmentation lines and detection lines (`<class> cx cy w h`, boxes only), numbers
in plain ASCII only (Python's int()/float() also take '٣', '1_0' and '+1').
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import yaml

from backend.core import geometry as gate

from .. import geometry
from .base import ExportContext, ExportImage, ItemError, Parser, Record, Shape, SourceFile, Writer


class YoloWriter(Writer):
    stem_named = True  # labels/<stem>.txt: stems must not clash either

    def begin(self, ctx: ExportContext) -> None:
        self.index = {cid: i for i, (cid, _) in enumerate(ctx.classes)}

    def add(self, ctx: ExportContext, image: ExportImage) -> None:
        ctx.add_image(f"images/{image.file_name}", image)
        lines = []
        for obj, window in zip(image.objects, image.windows()):
            parts = geometry.outermost_center_polygons(window)
            if not parts:
                continue
            points = list(geometry.join_parts(parts))  # one object, one line
            while len(points) < 3:
                points.append(points[-1])
            coords = " ".join(f"{x / image.width:.6f} {y / image.height:.6f}" for x, y in points)
            lines.append(f"{self.index[obj.class_id]} {coords}")
        stem = image.file_name.rpartition(".")[0]
        ctx.write_text(f"labels/{stem}.txt", "".join(f"{line}\n" for line in lines))

    def finish(self, ctx: ExportContext) -> None:
        data = {"path": ".", "train": "images", "val": "images",
                "names": {i: name for i, (_, name) in enumerate(ctx.classes)}}
        ctx.write_text("data.yaml", yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


class YoloParser(Parser):
    def parse(self, files: list[SourceFile]) -> Iterator[Record | ItemError]:
        config = [f for f in files if f.name.lower().rsplit("/", 1)[-1] in {"data.yaml", "data.yml"}]
        if len(config) != 1:
            yield ItemError("data.yaml", "the zip needs exactly one data.yaml naming the classes")
            return
        names, why = _names(config[0])
        if why:
            yield ItemError(config[0].name, why)
            return
        labels = [f for f in files if f.name.lower().endswith(".txt")]
        if not labels:
            yield ItemError("upload", "no label .txt files found")
        for source in labels:
            yield from _parse_labels(source, names)


def _names(source: SourceFile) -> tuple[dict[int, str], str | None]:
    try:
        data = yaml.safe_load(source.data.decode("utf-8-sig"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        return {}, f"malformed YAML: {exc}"
    except RecursionError:  # PyYAML recurses once per nesting level
        return {}, "malformed YAML: nested too deep"
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        return {}, "data.yaml needs 'names' as a list or an {index: name} map"
    for key in names:
        # YAML's true is an int to Python (index 1) and -1 is no index a YOLO line may use.
        if isinstance(key, bool) or not isinstance(key, int) or key < 0:
            return {}, f"data.yaml 'names' key {key!r} is not a class index (a whole number, 0 or more)"
    return names, None


# Python's int() and float() also take other scripts' digits ('٣'), '_' between digits and a
# leading '+': a YOLO file holds plain ASCII numbers, anything else is a mistake to report.
_CLASS_INDEX = re.compile(r"[0-9]{1,18}")
_BLANKS = re.compile(r"[ \t\f\v]+")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _numbers(parts: list[str]) -> tuple[int, list[float], str | None]:
    """(class index, coordinates, None) of a line's tokens, or why they are not a YOLO line."""
    if not _CLASS_INDEX.fullmatch(parts[0]):
        return 0, [], f"the class index {parts[0][:40]!r} is not a whole number in ASCII digits"
    bad = next((v for v in parts[1:] if not _NUMBER.fullmatch(v)), None)
    if bad is not None:
        return 0, [], f"{bad[:40]!r} is not a plain decimal number (ASCII digits, '.', an exponent)"
    return int(parts[0]), [float(v) for v in parts[1:]], None


def _parse_labels(source: SourceFile, names: dict[int, str]) -> Iterator[Record | ItemError]:
    stem = source.name.rsplit("/", 1)[-1][:-4]
    try:
        text = source.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield ItemError(source.name, "not a UTF-8 text file")
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        item = f"{source.name}: line {number}"
        # At most MAX_VERTICES points (the cap COCO polygons and the API have), found without
        # splitting a hostile 3M-point line into millions of strings first.
        # Split on ASCII blanks only: str.split() also splits on NBSP and em spaces (round 12).
        parts = _BLANKS.split(line.strip(" \t\r\f\v"), 2 * gate.MAX_VERTICES + 1)
        if len(parts) > 2 * gate.MAX_VERTICES + 1:
            yield ItemError(item, f"has more than {gate.MAX_VERTICES} vertices")
            continue
        cls, values, why = _numbers(parts)
        if why:
            yield ItemError(item, f"expected '<class index> <numbers>': {why}")
            continue
        if cls not in names:
            yield ItemError(item, f"unknown class index {cls} (data.yaml names {len(names)} classes)")
            continue
        if len(values) == 4:
            cx, cy, w, h = values
            shape = Shape("box", [[cx - w / 2, cy - h / 2], [cx + w / 2, cy + h / 2]], normalized=True)
        elif len(values) >= 6 and len(values) % 2 == 0:
            shape = Shape("center_polygons", [values], normalized=True)
        else:
            yield ItemError(item, "expected 4 numbers (box) or 3+ x y pairs (polygon)")
            continue
        # YOLO names no image: the label file's stem is the image's, with any extension.
        # The label file is the image's entry: two (labels/x.txt, train/labels/x.txt) are ambiguous.
        yield Record(item=item, file_name=f"{stem}.*", class_name=names[cls], shapes=[shape], image_key=(source.name,))
