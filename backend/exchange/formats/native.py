"""The pre-annotation script's predictions.json (seed 000): a list of
{"image", "detections": [{"bbox_xyxy", "class", "score_metric", "score_vlm", "vlm_class",
"ranked", "mask_rle"}]} (+ "instance_id", "instance" for an instance class), masks as uncompressed row-major RLE starting with a run of zeros.
"""
from __future__ import annotations

from collections.abc import Iterator

from .. import geometry
from . import jsonstream
from .base import (
    ExportContext, ExportImage, ItemError, JsonArraySpool, Parser, Record, Shape, SourceFile, Writer,
    finite_number, image_base_name, image_path, instance_from, open_entry,
)

PREDICTIONS_PATH = "predictions.json"


class NativeWriter(Writer):
    def begin(self, ctx: ExportContext) -> None:
        self.spool = JsonArraySpool()
        self.names = dict(ctx.classes)  # candidates keep the name they were scored under; a rename since

    def add(self, ctx: ExportContext, image: ExportImage) -> None:
        ctx.add_image(f"images/{image.file_name}", image)
        detections = []
        for obj in image.objects:
            x, y, w, h = obj.bbox
            detections.append({
                "bbox_xyxy": [x, y, x + w, y + h], "class": obj.class_name,
                "score_metric": obj.class_score, "score_vlm": obj.det_score,
                "vlm_class": obj.det_phrase or None,  # the detector's phrase; null on a drawn object
                "ranked": [{"name": self.names.get(c.get("class_id"), c.get("name")), "score": c.get("score")}
                           for c in obj.candidates],
                "mask_rle": {"size": [image.height, image.width], "counts": geometry.row_major_runs(obj.mask()),
                             "order": "row-major"},
            })
            if obj.instance_id is not None:  # "class" stays the type, as seed 000's consumers expect
                detections[-1].update(obj.attributes())
        self.spool.append({"image": image.file_name, "detections": detections})

    def finish(self, ctx: ExportContext) -> None:
        with open_entry(ctx.zf, PREDICTIONS_PATH) as dst:
            self.spool.copy_into(dst)


class NativeParser(Parser):
    def parse(self, files: list[SourceFile]) -> Iterator[Record | ItemError]:
        documents = [f for f in files if f.name.lower().endswith(".json")]
        if not documents:
            yield ItemError("upload", "no predictions .json file found")
        for source in documents:
            yield from _parse(source)


def _parse(source: SourceFile) -> Iterator[Record | ItemError]:
    try:
        with jsonstream.json_stream(source) as (fh, first):
            if first != b"[":
                jsonstream.check_well_formed(fh)
                yield ItemError(source.name, "predictions.json must be a list of {image, detections}")
                return
            for index, entry in enumerate(jsonstream.items(fh, "item")):  # streamed, entry by entry
                yield from _entry(source, index, entry)
    except jsonstream.JSONError as exc:
        yield jsonstream.malformed(source, exc)


def _entry(source: SourceFile, index: int, entry) -> Iterator[Record | ItemError]:
    item = f"{source.name}: entry {index}"
    if not isinstance(entry, dict) or not isinstance(entry.get("detections"), list):
        yield ItemError(item, "each entry needs 'image' and a 'detections' list")
        return
    name, why = image_base_name(entry.get("image"))
    if why:
        yield ItemError(item, why)
        return
    for number, det in enumerate(entry["detections"]):
        det_item = f"{source.name}: {name} detection {number}"
        shape, why = _shape(det)
        if why:
            yield ItemError(det_item, why)
            continue
        scores = {k: det.get(k) for k in ("score_metric", "score_vlm") if det.get(k) is not None}
        bad = next((k for k, v in scores.items() if not (finite_number(v) and 0 <= v <= 1)), None)
        if bad:  # 1e308 was stored and led the "most ambiguous first" order; "high" was dropped
            yield ItemError(det_item, f"{bad} must be a number from 0 to 1, got {str(scores[bad])[:40]!r}")
            continue
        ranked = det.get("ranked") if isinstance(det.get("ranked"), list) else []
        yield Record(
            item=det_item, file_name=name, class_name=det.get("class") if isinstance(det.get("class"), str) else None,
            shapes=[shape],
            class_score=det["score_metric"] if finite_number(det.get("score_metric")) else None,
            det_score=det["score_vlm"] if finite_number(det.get("score_vlm")) else None,
            det_phrase=det["vlm_class"] if isinstance(det.get("vlm_class"), str) else "",
            ranked=[r for r in ranked if isinstance(r, dict) and isinstance(r.get("name"), str)],
            instance_name=instance_from(det), file_path=image_path(entry.get("image")),
        )


def _shape(det) -> tuple[Shape | None, str | None]:
    if not isinstance(det, dict):
        return None, "a detection must be an object"
    rle = det.get("mask_rle")
    if rle is not None:
        if not isinstance(rle, dict) or rle.get("order", "row-major") != "row-major":
            return None, "mask_rle must be {size, counts, order: 'row-major'}"
        size, counts = rle.get("size"), rle.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            return None, "mask_rle needs 'size': [height, width]"
        if not isinstance(counts, list) or not all(isinstance(c, int) and c >= 0 for c in counts) \
                or sum(counts) != size[0] * size[1]:
            return None, "mask_rle counts must be non-negative integers summing to height*width"
        return Shape("row_major", {"size": size, "counts": counts}), None
    box = det.get("bbox_xyxy")
    if isinstance(box, list) and len(box) == 4 and all(finite_number(v) for v in box):
        return Shape("box", [box[:2], box[2:]]), None
    return None, "a detection needs mask_rle or bbox_xyxy"
