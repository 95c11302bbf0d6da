import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ml.masks import (bbox_from_mask, decode_native_rle, decode_rle, encode_native_rle, encode_rle, mask_iou,
                      mask_to_polygons, polygons_to_mask, rle_to_polygons)


def ring_mask(h=40, w=50):
    m = np.zeros((h, w), bool)
    m[5:35, 8:42] = True
    m[15:25, 18:32] = False  # a hole
    return m


@pytest.mark.parametrize("seed", range(5))
def test_coco_rle_round_trip(seed):
    m = np.random.RandomState(seed).rand(23, 31) > 0.6
    rle = encode_rle(m)
    assert isinstance(rle["counts"], str) and rle["size"] == [23, 31]
    assert np.array_equal(decode_rle(rle), m)
    assert mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()}) == m.sum()


@pytest.mark.parametrize("seed", range(5))
def test_native_rle_is_row_major_and_round_trips(seed):
    m = np.random.RandomState(seed).rand(17, 29) > 0.5
    m[0, 0] = seed % 2 == 0  # both a leading zero run and a leading one run (counts[0] == 0)
    rle = encode_native_rle(m)
    assert rle["order"] == "row-major" and rle["size"] == [17, 29]
    counts = rle["counts"]
    assert sum(counts) == m.size
    # row-major semantics: expand the runs over the C-order flattening
    vals = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool)
    assert np.array_equal(vals.reshape(m.shape), m)
    if m[0, 0]:
        assert counts[0] == 0  # always starts with a run of zeros
    assert np.array_equal(decode_native_rle(rle), m)
    # the same runs are pycocotools' column-major runs of the transpose
    t = mask_utils.frPyObjects({"size": [29, 17], "counts": counts}, 29, 17)
    assert t["counts"] == mask_utils.encode(np.asfortranarray(m.T.astype(np.uint8)))["counts"]


def test_polygons_keep_holes():
    m = ring_mask()
    polys = rle_to_polygons(encode_rle(m))
    assert len(polys) == 1 and len(polys[0]["holes"]) == 1
    back = polygons_to_mask(polys, *m.shape)
    assert not back[20, 25]  # the hole stays a hole
    assert mask_iou(back, m) > 0.9
    flat = mask_to_polygons(m)
    assert len(flat) == 2  # outer ring + hole ring
    assert not polygons_to_mask(flat, *m.shape)[20, 25]


def test_bbox_from_mask():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert bbox_from_mask(m) == [3.0, 2.0, 9.0, 5.0]
    assert bbox_from_mask(np.zeros((4, 4), bool)) is None
