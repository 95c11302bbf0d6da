"""Polygon exports decode only each object's window of its RLE: the same pixels, the same
polygons as decoding the whole mask (hypothesis draws the masks)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backend.exchange import geometry

masks = st.integers(1, 40).flatmap(lambda h: st.integers(1, 40).flatmap(
    lambda w: arrays(np.uint8, (h, w), elements=st.integers(0, 1))))


@st.composite
def boxes(draw):
    h, w = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    mask = np.zeros((h, w), np.uint8)
    y0, y1 = sorted(draw(st.lists(st.integers(0, h), min_size=2, max_size=2)))
    x0, x1 = sorted(draw(st.lists(st.integers(0, w), min_size=2, max_size=2)))
    mask[y0:y1, x0:x1] = 1
    return mask


def _check(mask: np.ndarray) -> None:
    rle = geometry.encode(mask)
    crop, x0, y0 = geometry.decode_window(rle)
    placed = np.zeros_like(mask)
    placed[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
    assert (placed == mask).all()
    assert crop.shape == geometry._crop(mask)[0].shape
    assert geometry.corner_polygons((crop, x0, y0)) == geometry.corner_polygons(mask)
    ours, theirs = geometry.center_polygons((crop, x0, y0)), geometry.center_polygons(mask)
    assert ours[1] == theirs[1] and len(ours[0]) == len(theirs[0])
    assert all((a == b).all() for a, b in zip(ours[0], theirs[0]))


@settings(max_examples=300, deadline=None)
@given(masks)
def test_window_of_random_masks(mask):
    _check(mask)


@settings(max_examples=300, deadline=None)
@given(boxes())
def test_window_of_boxes_including_empty_and_full(mask):
    _check(mask)


def test_window_of_an_object_on_a_12_mp_image_is_its_box():
    mask = np.zeros((3000, 4000), np.uint8)
    mask[1200:1300, 2500:2800] = 1
    crop, x0, y0 = geometry.decode_window(geometry.encode(mask))
    assert (x0, y0, crop.shape) == (2499, 1199, (102, 302))
