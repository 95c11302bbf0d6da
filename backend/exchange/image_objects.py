"""What the project's images held before an import: the rows an image already has are dropped
(re-importing an export added every object again), and no image may pass MAX_OBJECTS_PER_IMAGE."""
from __future__ import annotations

import numpy as np

from backend.annotations.models import MAX_OBJECTS_PER_IMAGE, Annotation
from backend.images.models import Image


class TooManyObjects(Exception):
    """An image would hold more than MAX_OBJECTS_PER_IMAGE objects: the import writes nothing."""


DUPLICATE_IOU = 0.9  # same class and this much overlap: the object the image already has
TWINS_COMPARED = 16  # mask comparisons at most per imported row


class ImageObjects:
    """The objects each image held before this import. `without` drops the rows an image already
    has: same class, masks overlapping by DUPLICATE_IOU or more. Importing a project's own export
    back (or one file twice) added every object again; a polygon round trip changes a mask's edge
    pixels, so equality would not catch it. Only the objects an image had before this import
    count: each image's are read once, before any of its rows is written (the images are locked)."""

    def __init__(self, project_id: int, carried=None):
        self.project_id = project_id
        # rle -> rle: an object as the file's format brings it back (None: unchanged). A row is
        # also a twin of an object it matches only in that form (a YOLO line fills holes and
        # bridges parts), so importing the project's own export adds nothing.
        self.carried = carried
        self._carried: dict[int, dict] = {}  # id() of an object's rle -> its carried form
        # image id -> class id -> (boxes as x0, y0, x1, y1; areas; masks), the image's objects before
        self.before: dict[int, dict[int | None, tuple[np.ndarray, np.ndarray, list[dict]]]] = {}
        self.count: dict[int, int] = {}  # image id -> objects before
        self.added: dict[int, int] = {}
        self.skipped = 0

    def without(self, rows: list, classes: dict) -> list:
        self._load({row[0] for row in rows} - self.before.keys())
        kept = [row for row in rows if not self._present(row, classes[row[1]].pk)]
        self.skipped += len(rows) - len(kept)
        return kept

    def count_added(self, rows: list) -> None:
        """Refuses the import once an image would hold more than MAX_OBJECTS_PER_IMAGE objects
        (the transaction then writes nothing): such an image could never be accepted whole."""
        for row in rows:
            self.added[row[0]] = self.added.get(row[0], 0) + 1
        for image_id in {row[0] for row in rows}:
            if self.count[image_id] + self.added[image_id] > MAX_OBJECTS_PER_IMAGE:
                name = Image.objects.filter(pk=image_id).values_list("original_name", flat=True).first()
                raise TooManyObjects(
                    f"image {name!r} would hold more than {MAX_OBJECTS_PER_IMAGE} objects ({self.count[image_id]} "
                    f"already, {self.added[image_id]}+ from this file), the most one image holds; nothing was imported")

    def _load(self, image_ids: set[int]) -> None:
        if not image_ids:
            return
        found: dict[int, dict[int | None, list]] = {image_id: {} for image_id in image_ids}
        rows = (Annotation.objects.filter(project_id=self.project_id, image_id__in=image_ids)
                .values_list("image_id", "label_class_id", "area", "bbox", "mask_rle"))
        for image_id, class_id, area, (x, y, w, h), rle in rows:
            found[image_id].setdefault(class_id, []).append(((x, y, x + w, y + h), area, rle))
        for image_id, by_class in found.items():
            self.count[image_id] = sum(len(objs) for objs in by_class.values())
            self.before[image_id] = {
                class_id: (np.array([o[0] for o in objs], dtype=np.float64), np.array([o[1] for o in objs], dtype=np.float64),
                           [o[2] for o in objs])
                for class_id, objs in by_class.items()
            }

    def _present(self, row: list, class_id: int | None) -> bool:
        same = self.before[row[0]].get(class_id)
        if same is None:
            return False
        boxes, areas, masks = same
        rle, (x, y, w, h), area = row[2], row[3], row[4]
        # IoU >= t needs an intersection >= t x the larger area, and the masks' intersection is
        # inside their boxes': one vectorized test over the class's objects leaves the mask
        # comparison to the few possible twins (each row was compared with every object, one
        # mask IoU each: 1,000 rows onto 1,000 like boxes took 50 s under the images' locks).
        inter = (np.clip(np.minimum(boxes[:, 2], x + w) - np.maximum(boxes[:, 0], x), 0, None)
                 * np.clip(np.minimum(boxes[:, 3], y + h) - np.maximum(boxes[:, 1], y), 0, None))
        possible = np.nonzero(inter >= DUPLICATE_IOU * np.maximum(areas, area))[0]
        if len(possible) > TWINS_COMPARED:
            # Many objects in nearly the same box (a hostile file can make thousands): the likeliest
            # twins only (closest area, then most box overlap), so a row costs at most
            # TWINS_COMPARED mask comparisons. At worst a duplicate is added; nothing is lost.
            order = np.lexsort((-inter[possible], np.abs(areas[possible] - area)))
            possible = possible[order[:TWINS_COMPARED]]
        if not possible.size:
            return False
        twins = [masks[i] for i in possible]
        if _most_overlap(rle, twins) >= DUPLICATE_IOU:
            return True
        return self.carried is not None and _most_overlap(rle, [self._carried_form(m) for m in twins]) >= DUPLICATE_IOU

    def _carried_form(self, rle: dict) -> dict:
        key = id(rle)  # the rle dicts live as long as self.before
        if key not in self._carried:
            self._carried[key] = self.carried(rle)
        return self._carried[key]


def _most_overlap(rle: dict, others: list[dict]) -> float:
    """The highest mask IoU of `rle` with `others` (same image size), in one pycocotools call."""
    from pycocotools import mask as mask_utils

    as_coco = [{"size": m["size"], "counts": m["counts"].encode()} for m in (rle, *others)]
    return float(np.max(mask_utils.iou(as_coco[:1], as_coco[1:], [0] * len(others))))
