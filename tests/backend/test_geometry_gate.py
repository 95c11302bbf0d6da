"""The geometry gate (backend/core/geometry.py) and the routes behind it that no HTTP request
reaches: imports and model results. Property-based: any input either raises GeometryError or
yields a mask pycocotools decodes to exactly the image's size. A crash here kills pytest."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pycocotools import mask as mask_utils

from backend.core.geometry import (
    GeometryError,
    mask_from,
    polygons_to_rle,
    rle_string_counts,
    validate_box,
    validate_polygons,
    validate_rle,
)
from backend.exchange import geometry as exchange_geometry
from backend.exchange.formats.base import Record, Shape, rasterize

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)

masks = st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**32 - 1)).map(
    lambda t: (np.random.default_rng(t[2]).random((t[0], t[1])) < (t[2] % 100) / 100).astype(np.uint8)
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**40), 10**40),
    st.sampled_from([1e12, -1e12, 1e8, 2**31, 2**32]), st.integers(-3, 45),
)
hostile_counts = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=200), max_size=60),
    st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=111), max_size=60),
    st.lists(st.integers(-(2**40), 2**40), max_size=20),
    st.lists(st.integers(0, 1200), max_size=20),
)


def _runs(mask: np.ndarray) -> list[int]:
    flat = mask.T.reshape(-1)
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]))
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


@PROPERTY
@given(mask=masks)
def test_string_runs_match_pycocotools(mask):
    encoded = mask_utils.encode(np.asfortranarray(mask))["counts"].decode()
    assert rle_string_counts(encoded).tolist() == _runs(mask)
    h, w = mask.shape
    if mask.any():
        rle = validate_rle({"size": [h, w], "counts": encoded}, height=h, width=w)
        assert (mask_utils.decode({"size": [h, w], "counts": rle["counts"].encode()}) == mask).all()
        listed = validate_rle({"size": [h, w], "counts": _runs(mask)}, height=h, width=w)
        assert listed["counts"] == encoded


@PROPERTY
@given(counts=hostile_counts, h=st.integers(1, 30), w=st.integers(1, 30))
def test_any_rle_is_refused_or_decodes_to_exactly_the_image(counts, h, w):
    try:
        rle = validate_rle({"size": [h, w], "counts": counts}, height=h, width=w)
    except GeometryError as exc:
        assert exc.field == "mask_rle" and exc.reason
        return
    decoded = mask_utils.decode({"size": [h, w], "counts": rle["counts"].encode()})
    runs = rle_string_counts(rle["counts"])
    assert decoded.shape == (h, w) and int(decoded.sum()) == int(runs[1::2].sum()) > 0


@PROPERTY
@given(polys=st.lists(st.lists(numbers, min_size=0, max_size=12), min_size=0, max_size=3))
def test_any_polygons_are_refused_or_clipped_inside_the_image(polys):
    try:
        clipped = validate_polygons(polys, height=30, width=40)
        rle = polygons_to_rle(clipped, height=30, width=40)
    except GeometryError as exc:
        assert exc.field.startswith("polygons")
        return
    for poly in clipped:
        xs, ys = poly[0::2], poly[1::2]
        assert 0 <= min(xs) and max(xs) <= 40 and 0 <= min(ys) and max(ys) <= 30
    assert mask_utils.decode({"size": [30, 40], "counts": rle["counts"].encode()}).any()


def _inside_part(poly: list[float], h: int, w: int) -> np.ndarray:
    """The polygon rasterised on a canvas large enough to hold it whole, then cropped to the image."""
    pad = 2000
    rle = mask_utils.merge(mask_utils.frPyObjects([[v + pad for v in poly]], h + 2 * pad, w + 2 * pad))
    return mask_utils.decode(rle)[pad:pad + h, pad:pad + w]


@pytest.mark.parametrize("poly", [
    [-30, 20, 30, -30, 60, 20, 30, 70],  # a diamond past two sides: 1436 px instead of 2518
    [1, 1, 1000, 1, 10, 10],  # a sliver past the right side: 279 px instead of 522
    [-10, -10, 100, -10, 100, 100, -10, 100],  # the whole image and more
    [10, -40, 50, 20, 10, 20],  # a triangle whose tip is above the image
])
def test_a_polygon_reaching_outside_keeps_exactly_its_part_inside(poly):
    """Each outside vertex was moved onto the border, which changed the shape."""
    h, w = 48, 64
    rle = polygons_to_rle(validate_polygons([poly], height=h, width=w), height=h, width=w)
    mask = mask_utils.decode({"size": [h, w], "counts": rle["counts"].encode()})
    expected = _inside_part(poly, h, w)
    assert abs(int(mask.sum()) - int(expected.sum())) <= 1 and int((mask != expected).sum()) <= 2, (mask.sum(), expected.sum())


def test_a_polygon_wholly_outside_the_image_is_refused():
    with pytest.raises(GeometryError, match="wholly outside the image"):
        validate_polygons([[100, 100, 200, 100, 200, 200]], height=48, width=64)


@PROPERTY
@given(box=st.lists(numbers, min_size=0, max_size=5))
def test_any_box_is_refused_or_inside_the_image(box):
    try:
        x0, y0, x1, y1 = validate_box(box, height=30, width=40)
    except GeometryError as exc:
        assert exc.field == "box"
        return
    assert 0 <= x0 < x1 <= 40 and 0 <= y0 < y1 <= 30


def test_the_messages_name_what_is_wrong():
    with pytest.raises(GeometryError, match="does not match the image size"):
        validate_rle({"size": [10, 10], "counts": "0"}, height=20, width=10)
    with pytest.raises(GeometryError, match="negative"):
        validate_rle({"size": [2, 2], "counts": "O5"}, height=2, width=2)  # "O" is a run of -1
    with pytest.raises(GeometryError, match=r"polygons\[1\]: coordinates must be finite"):
        validate_polygons([[0, 0, 5, 0, 5, 5], [0, 0, float("nan"), 0, 5, 5]], height=10, width=10)
    with pytest.raises(GeometryError, match="more than"):
        validate_polygons([[0.0, 0.0] * 110_000], height=10, width=10)
    with pytest.raises(GeometryError, match="outside the image"):
        validate_polygons([[0, 0, 11, 0, 5, 5]], height=10, width=10, clip=False)
    with pytest.raises(GeometryError, match="x0 < x1"):
        validate_box([5, 5, 1, 9], height=10, width=10)
    with pytest.raises(GeometryError, match="exactly one"):
        mask_from(height=10, width=10)
    with pytest.raises(GeometryError, match="cover no pixel"):
        polygons_to_rle(validate_polygons([[1, 1, 5, 1, 9, 1]], height=10, width=10), height=10, width=10)
    with pytest.raises(GeometryError, match="wholly outside"):
        validate_polygons([[-5, -5, -1, -5, -1, -1]], height=10, width=10)


@PROPERTY
@given(
    kind=st.sampled_from(["rle", "row_major", "coco_polygons"]),
    counts=hostile_counts, polys=st.lists(st.lists(numbers, max_size=10), max_size=3),
    size=st.one_of(st.just([30, 40]), st.lists(numbers, max_size=3)),
)
def test_imported_shapes_are_refused_or_rasterised_safely(kind, counts, polys, size):
    """The importer's shapes pass the same gate (each refusal becomes the item's error)."""
    data = polys if kind == "coco_polygons" else {"size": size, "counts": counts}
    record = Record(item="annotations[0]", file_name="a.png", class_name="hammer", shapes=[Shape(kind, data)])
    try:
        mask = rasterize(record, 30, 40)
    except exchange_geometry.GeometryError as exc:
        assert str(exc)
        return
    assert mask.shape == (30, 40) and mask.any()


@pytest.mark.django_db
def test_a_model_mask_of_the_wrong_size_fails_that_image_not_the_worker(django_user_model):
    """Job results pass the gate before pycocotools compares them with people's masks."""
    from backend.jobs import services
    from tests.backend.factories import make_image, make_project, make_user, rect_rle

    owner = make_user("owner")
    project = make_project(owner)
    image = make_image(project, width=64, height=48)
    job = services.start_job(project=project, user=owner, images="all")
    bad = {
        "label_class": None, "mask_rle": {"size": [4800, 6400], "counts": rect_rle(48, 64, 1, 1, 5, 5)["counts"]},
        "bbox": [1, 1, 4, 4], "area": 16, "det_score": 0.9, "mask_score": 0.9, "class_score": None,
        "class_margin": None, "candidates": [], "embedding": None, "embedder_version": "", "class_review": "pending",
        "mask_review": "pending",
    }
    with pytest.raises(GeometryError, match="does not match the image size"):
        services.write_image_result(job_id=job.pk, image_id=image.pk, detections=[bad], stage_ms={})
    assert not image.annotations.exists()
