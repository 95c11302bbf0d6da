"""The fast polygon export path against the reference one: windows of many masks decoded in one
pass (decode_windows) are decode_window's, corner polygons traced per batch
(corner_polygons_many) are corner_polygons', and a COCO export's rows are what the per-object
json.dumps of the reference path wrote."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backend.annotations.models import Annotation, ReviewState, Source
from backend.core.masks import mask_geometry
from backend.exchange import geometry
from backend.exchange.formats import base

from .exchange.helpers import export
from .factories import make_class, make_image, make_project


@st.composite
def mask_lists(draw):
    """1-8 masks of different sizes: random pixels, empty, full, or one rectangle."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        h, w = draw(st.integers(1, 30)), draw(st.integers(1, 30))
        kind = draw(st.sampled_from(["random", "empty", "full", "box"]))
        if kind == "random":
            mask = draw(arrays(np.uint8, (h, w), elements=st.integers(0, 1)))
        else:
            mask = np.full((h, w), 1 if kind == "full" else 0, np.uint8)
            if kind == "box":
                y0, y1 = sorted(draw(st.lists(st.integers(0, h), min_size=2, max_size=2)))
                x0, x1 = sorted(draw(st.lists(st.integers(0, w), min_size=2, max_size=2)))
                mask[y0:y1, x0:x1] = 1
        out.append(mask)
    return out


@settings(max_examples=300, deadline=None)
@given(mask_lists(), st.integers(1, 3000))
def test_decode_windows_is_decode_window_of_each(masks, batch_pixels):
    rles = [geometry.encode(m) for m in masks]
    saved = geometry.WINDOW_BATCH_PIXELS
    geometry.WINDOW_BATCH_PIXELS = batch_pixels  # small values force several fill buffers
    try:
        windows = geometry.decode_windows(rles)
    finally:
        geometry.WINDOW_BATCH_PIXELS = saved
    assert len(windows) == len(rles)
    for rle, (crop, x0, y0) in zip(rles, windows):
        ref_crop, ref_x0, ref_y0 = geometry.decode_window(rle)
        assert (x0, y0) == (ref_x0, ref_y0)
        assert crop.shape == ref_crop.shape and np.array_equal(crop, ref_crop)


@settings(max_examples=300, deadline=None)
@given(mask_lists())
def test_corner_polygons_many_is_corner_polygons_of_each(masks):
    got = geometry.corner_polygons_many(geometry.decode_windows([geometry.encode(m) for m in masks]))
    for mask, (polygons, has_holes) in zip(masks, got):
        assert ([[float(v) for v in p] for p in polygons], has_holes) == geometry.corner_polygons(mask)


def test_decode_windows_falls_back_on_uncompressed_counts_and_refuses_bad_strings():
    mask = np.zeros((5, 6), np.uint8)
    mask[1:3, 2:5] = 1
    uncompressed = {"size": [5, 6], "counts": [7, 2, 3, 2, 3, 2, 11]}
    windows = geometry.decode_windows([geometry.encode(mask), uncompressed])
    assert all(np.array_equal(w[0], geometry.decode_window(geometry.encode(mask))[0]) for w in windows)
    with pytest.raises(Exception, match="counts"):
        geometry.decode_windows([geometry.encode(mask), {"size": [5, 6], "counts": "7\x7f"}])


def _reference_row(obj: base.ExportObject, image_id: int, segmentation: str) -> dict:
    """The row the per-object path wrote (decode the mask, trace it, json.dumps a dict)."""
    seg = obj.rle
    if segmentation == "polygon":
        polygons, has_holes = geometry.corner_polygons(geometry.decode(obj.rle))
        if polygons and not has_holes:
            seg = polygons
    row = {"id": obj.id, "image_id": image_id, "category_id": obj.class_id, "segmentation": seg,
           "area": obj.area, "bbox": obj.bbox, "iscrowd": 0}
    if obj.instance_id is not None:
        row["attributes"] = obj.attributes()
    return json.loads(base.dumps(row))


@pytest.mark.django_db
@pytest.mark.parametrize("segmentation", ["polygon", "rle"])
def test_coco_rows_are_the_reference_rows(admin_user, segmentation):
    project = make_project(admin_user, name="Perf")
    hammer = make_class(project, "hammer")
    instance = make_class(project, "hammer-7", kind="instance", parent=hammer)
    rng = np.random.default_rng(7)
    annotations = []
    for seed in range(3):
        image = make_image(project, width=40, height=30, seed=seed)
        for k in range(6):
            mask = np.zeros((30, 40), np.uint8)
            y, x = rng.integers(0, 25), rng.integers(0, 35)
            mask[y:y + rng.integers(1, 12), x:x + rng.integers(1, 15)] = 1
            if k % 3 == 0:  # ragged shapes, several parts
                mask |= (rng.random((30, 40)) < 0.05).astype(np.uint8)
            if k == 5:  # a ring: holes stay RLE
                mask[2:12, 2:12], mask[5:8, 5:8] = 1, 0
            rle = geometry.encode(mask)
            bbox, area = mask_geometry(rle)
            annotations.append(Annotation.objects.create(
                project=project, image=image, label_class=instance if k == 1 else hammer, mask_rle=rle, bbox=bbox,
                area=area, source=Source.HUMAN, class_review=ReviewState.ACCEPTED, mask_review=ReviewState.ACCEPTED,
            ))
    _, zf = export(project, admin_user, "coco", segmentation=segmentation)
    rows = {row["id"]: row for row in json.loads(zf.read("annotations/instances.json"))["annotations"]}
    assert set(rows) == {a.pk for a in annotations}
    for ann in annotations:
        level = {"class_id": hammer.pk, "class_name": "hammer"}
        if ann.label_class_id == instance.pk:
            level.update(instance_id=instance.pk, instance_name="hammer-7")
        obj = base.ExportObject(id=ann.pk, rle=ann.mask_rle, bbox=ann.bbox, area=ann.area, **level)
        assert rows[ann.pk] == _reference_row(obj, ann.image_id, segmentation)
    if segmentation == "polygon":
        assert any(isinstance(r["segmentation"], list) for r in rows.values())
        assert any(isinstance(r["segmentation"], dict) for r in rows.values())
