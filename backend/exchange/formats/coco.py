"""COCO instances JSON (annotations/instances.json + images/).

Ids are ours so they stay stable across exports: image id = Image.id, category id = class id,
annotation id = Annotation.id. Segmentation is compressed RLE, or polygons along pixel edges
(which pycocotools fills back to exactly our pixels); a mask with holes stays RLE even in
polygon mode, because COCO polygons cannot express holes.
"""
from __future__ import annotations

import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator

import numpy as np

from .. import geometry
from . import jsonstream
from .base import (
    ExportContext, ExportImage, ItemError, JsonArraySpool, Parser, Record, Shape, SourceFile, Writer,
    dumps, finite_number, image_base_name, image_path, instance_from, open_entry,
)

ANNOTATIONS_PATH = "annotations/instances.json"


class CocoWriter(Writer):
    def begin(self, ctx: ExportContext) -> None:
        self.images = JsonArraySpool()
        self.annotations = JsonArraySpool()

    def add(self, ctx: ExportContext, image: ExportImage) -> None:
        ctx.add_image(f"images/{image.file_name}", image)
        self.images.append({"id": image.id, "file_name": image.file_name, "width": image.width, "height": image.height})
        if ctx.segmentation == "polygon":
            polygons = geometry.corner_polygons_many(image.windows())
        else:
            polygons = [([], False)] * len(image.objects)
        # Rows are formatted here rather than by json.dumps of a dict: the same bytes, at a
        # fraction of the cost per object (ids and areas are ints, bbox/RLE come from JSON).
        for obj, (parts, has_holes) in zip(image.objects, polygons):
            if parts and not has_holes:
                segmentation = _polygons_json(parts)
            else:
                segmentation = f'{{"size":{dumps(obj.rle["size"])},"counts":{dumps(obj.rle["counts"])}}}'
            row = (f'{{"id":{obj.id},"image_id":{image.id},"category_id":{obj.class_id},'
                   f'"segmentation":{segmentation},"area":{dumps(obj.area)},"bbox":{dumps(obj.bbox)},"iscrowd":0')
            if obj.instance_id is not None:  # category = the type; the instance as a CVAT-style attribute
                row += ',"attributes":' + dumps(obj.attributes())
            self.annotations.append_json(row + "}")

    def finish(self, ctx: ExportContext) -> None:
        categories = [{"id": cid, "name": name, "supercategory": ""} for cid, name in ctx.classes]
        with open_entry(ctx.zf, ANNOTATIONS_PATH) as dst:
            dst.write(('{"info":' + dumps({"description": ctx.project_name, "version": "1.0"})).encode())
            dst.write(b',"licenses":[],"categories":' + dumps(categories).encode())
            dst.write(b',"images":')
            self.images.copy_into(dst)
            dst.write(b',"annotations":')
            self.annotations.copy_into(dst)
            dst.write(b"}\n")


_FLOATS: list[str] = []  # _FLOATS[n] == "n.0", grown to the largest coordinate seen


def _polygons_json(parts: list[list[int]]) -> str:
    """Integer corner coordinates written as the floats COCO tools expect ("12.0"); looking
    the text up in a table is twice as fast as formatting a million numbers one by one."""
    top = max(max(part) for part in parts)
    if top >= len(_FLOATS):
        _FLOATS.extend(f"{n}.0" for n in range(len(_FLOATS), top + 1))
    text = _FLOATS.__getitem__
    return "[" + ",".join("[" + ",".join(map(text, part)) + "]" for part in parts) + "]"


class CocoParser(Parser):
    """Streams the document: the (small) categories and images first, then the annotations
    item by item, each a scan of its own; a 1M-annotation file never sits in memory."""

    def parse(self, files: list[SourceFile]) -> Iterator[Record | ItemError]:
        documents = [f for f in files if f.name.lower().endswith(".json")]
        if not documents:
            yield ItemError("upload", "no COCO .json file found")
            return
        for source in documents:
            yield from self._parse_document(source)

    def _parse_document(self, source: SourceFile) -> Iterator[Record | ItemError]:
        header: dict = {}
        try:
            yield from _header(source, header)
        except jsonstream.JSONError as exc:
            yield jsonstream.malformed(source, exc)
            return
        if not header["found"]:
            yield ItemError(source.name, "not a COCO instances file (needs 'images' and 'annotations' lists)")
            return
        images, categories = header["images"], header["categories"]
        ids = _AnnotationIds()
        try:
            with jsonstream.json_stream(source) as (fh, _):
                for index, ann in enumerate(jsonstream.items(fh, "annotations.item")):
                    if isinstance(ann, dict) and _integer(ann.get("id")):
                        ids.add(ann["id"])
                    yield _annotation(source, index, ann, images, categories)
        except jsonstream.JSONError as exc:
            yield jsonstream.malformed(source, exc)
            return
        for ann_id, count in ids.repeated():  # as a second image or category entry of one id is
            yield ItemError(f"{source.name}: annotation {ann_id}",
                            f"a second annotation with id {ann_id}" if count == 2 else f"{count} annotations have id {ann_id}")


def _integer(value) -> bool:
    """A JSON integer: not 7.0, "7" or true (Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


class _AnnotationIds:
    """The integer ids of a document's annotations, spooled to a temp file 8 bytes each while the
    stream runs (memory stays flat; a set of a million Python ints would cost ~60 MB), and which of
    them repeat, found by sorting them once the stream has ended."""

    BUFFER = 4096

    def __init__(self):
        self.spool = tempfile.TemporaryFile()
        self.buffer = array("q")
        self.big: list[int] = []  # beyond 64 bits: rare, kept as they are

    def add(self, value) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            if -(1 << 63) <= value < (1 << 63):
                self.buffer.append(value)
                if len(self.buffer) >= self.BUFFER:
                    self.buffer.tofile(self.spool)
                    self.buffer = array("q")
            else:
                self.big.append(value)

    def repeated(self) -> list[tuple[int, int]]:
        """(id, how many annotations have it) for every id held more than once, by id."""
        with self.spool:
            self.buffer.tofile(self.spool)
            self.spool.seek(0)
            ids = np.fromfile(self.spool, dtype=np.int64)
        out = []
        if ids.size > 1:
            ids.sort()
            dup = ids[1:][ids[1:] == ids[:-1]]  # each repeat once per extra occurrence
            if dup.size:
                values, extra = np.unique(dup, return_counts=True)
                out = [(int(v), int(c) + 1) for v, c in zip(values, extra)]
        out += [(v, c) for v, c in Counter(self.big).items() if c > 1]
        return sorted(out)


def _header(source: SourceFile, out: dict) -> Iterator[ItemError]:
    """Fill `out` with categories {id: name}, images {id: (base name, size)} and `found`
    (False when the document has neither: not COCO at all); yield the bad image entries."""
    out.update(categories={}, images={}, found=False)
    with jsonstream.json_stream(source) as (fh, first):
        if first != b"{":
            jsonstream.check_well_formed(fh)  # malformed JSON says so; well-formed is not COCO
            return
        # The categories list is small and usually comes first: stop reading once it is built.
        bad_categories, bad_ids, repeated = [], [], []
        for value in jsonstream.items(fh, "categories"):
            for cat in value if isinstance(value, list) else []:
                if isinstance(cat, dict) and _integer(cat.get("id")) and isinstance(cat.get("name"), str):
                    if cat["id"] in out["categories"]:  # the last one silently won
                        repeated.append((cat["id"], out["categories"][cat["id"]], cat["name"]))
                        continue
                    out["categories"][cat["id"]] = cat["name"]
                elif isinstance(cat, dict) and _integer(cat.get("id")):
                    bad_categories.append(cat["id"])
                else:  # its annotations would each say "unknown category_id"; 1.0 or "1" is no id
                    bad_ids.append(cat.get("id") if isinstance(cat, dict) else cat)
            out["found"] = True
            break
    for cat_id in bad_categories:  # else each of its annotations would say "unknown category_id"
        yield ItemError(f"{source.name}: category {cat_id}", "a category needs a 'name' string")
    for cat_id in bad_ids:
        yield ItemError(f"{source.name}: category {cat_id!r}", "a category needs an integer 'id' (a JSON integer)")
    for cat_id, first, second in repeated:  # which of the two would its annotations be?
        yield ItemError(f"{source.name}: category {cat_id}",
                        f"a second category with id {cat_id} ({second!r}; the first is {first!r})")
    with jsonstream.json_stream(source) as (fh, _):
        for index, img in enumerate(jsonstream.items(fh, "images.item")):
            out["found"] = True
            item = f"{source.name}: image {img.get('id', index) if isinstance(img, dict) else index}"
            if not isinstance(img, dict) or not _integer(img.get("id")):
                yield ItemError(item, "image entry needs an integer 'id'")
                continue
            name, why = image_base_name(img.get("file_name"))
            if why:
                yield ItemError(item, why)
                continue
            if img["id"] in out["images"]:  # which of the two would its annotations be on?
                yield ItemError(item, f"a second image entry with id {img['id']} (the first is {out['images'][img['id']][0]!r})")
                continue
            given = [img.get(k) for k in ("height", "width") if img.get(k) is not None]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in given):
                yield ItemError(item, "'width' and 'height' must be positive integers (pixels)")
                continue
            size = (img["height"], img["width"]) if len(given) == 2 else None
            out["images"][img["id"]] = (name, size, image_path(img.get("file_name")))


def _annotation(source: SourceFile, index: int, ann, images: dict, categories: dict) -> Record | ItemError:
    item = f"{source.name}: annotation {ann.get('id', index) if isinstance(ann, dict) else index}"
    if not isinstance(ann, dict):
        return ItemError(item, "annotation must be an object")
    if not _integer(ann.get("id")):  # 7 and 7.0 (or two without one) passed the repeated-id check
        return ItemError(item, f"an annotation needs an integer 'id' (a JSON integer), not {ann.get('id')!r}")
    image_id, category_id = ann.get("image_id"), ann.get("category_id")
    # (true is no image id, though Python takes it for 1; a list is not even hashable)
    if not _integer(image_id) or image_id not in images:
        return ItemError(item, f"image_id {image_id!r} is not in the file's images")
    if not _integer(category_id) or category_id not in categories:
        return ItemError(item, f"unknown category_id {category_id!r}")
    shape, why = _shape(ann)
    if why:
        return ItemError(item, why)
    name, size, path = images[image_id]
    score = ann.get("score")
    return Record(item=item, file_name=name, class_name=categories[category_id], shapes=[shape],
                  size=size, image_key=(source.name, image_id), det_score=score if finite_number(score) else None,
                  instance_name=instance_from(ann.get("attributes")), file_path=path)


def _shape(ann: dict) -> tuple[Shape | None, str | None]:
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        counts = seg.get("counts")
        size = seg.get("size")
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            return None, "RLE segmentation needs 'size': [height, width]"
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != size[0] * size[1]:
                return None, "uncompressed RLE counts must be non-negative integers summing to height*width"
        elif not isinstance(counts, str):
            return None, "RLE counts must be a string or a list of integers"
        elif not (counts.isascii() and all(48 <= ord(c) < 112 for c in counts)):
            return None, "RLE counts string has characters outside COCO's compressed RLE alphabet"
        return Shape("rle", {"size": size, "counts": counts}), None
    if isinstance(seg, list) and seg:
        if not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(finite_number(v) for v in p) for p in seg):
            return None, "polygons must be [x1, y1, x2, y2, x3, y3, ...] lists with 3+ points"
        return Shape("coco_polygons", seg), None
    if seg is not None and not isinstance(seg, list):  # 5, "x": not to be read as "box only"
        return None, "segmentation must be polygons (a list of lists) or an RLE object"
    bbox = ann.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and all(finite_number(v) for v in bbox) and bbox[2] > 0 and bbox[3] > 0:
        x, y, w, h = bbox
        return Shape("box", [[x, y], [x + w, y + h]]), None
    return None, "no segmentation and no valid bbox"
