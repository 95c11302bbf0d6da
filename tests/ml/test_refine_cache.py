"""Click-to-refine: the embedding LRU (count and bytes bounds) and a cached refine that equals
SAM 2's own predictor on the same embedding, without running the image encoder again."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.embedding_cache import EmbeddingCache, tensor_bytes


def feats(n_floats: int) -> dict:
    return {"image_embed": torch.zeros(n_floats), "high_res_feats": [torch.zeros(2)]}


def test_lru_evicts_by_count_oldest_first_and_get_refreshes():
    cache = EmbeddingCache(max_items=2, max_bytes=10**9)
    cache.put("a", feats(4), (10, 10))
    cache.put("b", feats(4), (10, 10))
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.put("c", feats(4), (10, 10))
    assert cache.keys() == ["a", "c"]
    assert cache.stats.evictions == 1
    assert cache.get("b") is None and cache.stats.misses == 1 and cache.stats.hits == 1


def test_lru_evicts_by_bytes_and_never_keeps_an_oversized_entry():
    one = tensor_bytes(feats(100))
    assert one == (100 + 2) * 4
    cache = EmbeddingCache(max_items=100, max_bytes=2 * one + 10)
    for k in "abc":
        cache.put(k, feats(100), (1, 1))
    assert cache.keys() == ["b", "c"] and cache.nbytes == 2 * one
    cache.put("huge", feats(10_000), (1, 1))
    assert "huge" not in cache and cache.keys() == ["b", "c"]
    # Replacing a key does not count its old bytes twice.
    cache.put("c", feats(100), (1, 1))
    assert cache.nbytes == 2 * one and len(cache) == 2


def test_bounds_must_be_sane():
    with pytest.raises(ValueError):
        EmbeddingCache(max_items=-1)


class EncoderCounter:
    """Counts forward passes of the real image encoder (a hook, not a stand-in)."""

    def __init__(self, segmenter):
        self.calls = 0
        self.handle = segmenter.predictor.model.image_encoder.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.calls += 1


@pytest.fixture
def segmenter(tiny_config):
    from ml.device import resolve_device
    from ml.segmenter import Segmenter

    seg = Segmenter.load(tiny_config.segmenter, resolve_device("cpu"))
    seg.embeddings = EmbeddingCache(max_items=2, max_bytes=10**9)
    return seg


def test_cached_refine_equals_the_predictor_and_skips_the_encoder(segmenter, images):
    image = images[0]
    counter = EncoderCounter(segmenter)
    points, labels = [[30.0, 30.0], [60.0, 40.0]], [1, 0]
    first, cached = segmenter.refine_cached(("img", 1), lambda: image, points, labels)
    assert not cached and counter.calls == 1 and segmenter.embeddings.stats.encodes == 1

    second, cached = segmenter.refine_cached(("img", 1), lambda: pytest.fail("a cached refine must not read the image"),
                                             points, labels)
    assert cached and counter.calls == 1  # no image-encoder pass
    assert np.array_equal(first.mask, second.mask) and first.score == pytest.approx(second.score)

    # The same prompts through SAM 2's own predictor on a fresh embedding of the same image.
    segmenter.predictor.set_image(image)
    masks, ious, _ = segmenter.predictor.predict(point_coords=np.array(points, np.float32), point_labels=np.array(labels),
                                                 multimask_output=False)
    best = int(np.argmax(ious))
    assert np.array_equal(second.mask, masks[best] > 0.5 if masks.dtype != bool else masks[best])
    assert second.score == pytest.approx(float(ious[best]), abs=1e-5)

    # One click: SAM's three outputs, the best kept; a box with clicks: the box corners go first.
    for pts, labs, box, multi in (([[40.0, 50.0]], [1], None, True), ([[30.0, 30.0], [50.0, 20.0]], [1, 0], [10, 5, 80, 60], False)):
        ours, cached = segmenter.refine_cached(("img", 1), lambda: image, pts, labs, box=box)
        masks, ious, _ = segmenter.predictor.predict(point_coords=np.array(pts, np.float32), point_labels=np.array(labs),
                                                     box=None if box is None else np.array(box, np.float32), multimask_output=multi)
        best = int(np.argmax(ious))
        assert cached and np.array_equal(ours.mask, masks[best] > 0.5) and ours.score == pytest.approx(float(ious[best]), abs=1e-5)
    assert counter.calls == 2  # the one set_image above; refines never encoded again
    counter.handle.remove()


def test_refine_after_other_images_reuses_the_right_embedding(segmenter, images):
    """Segmenting other images in between (a job on the same worker) leaves the cache valid."""
    a, _ = segmenter.refine_cached(("img", 0), lambda: images[0], [[20, 20]], [1])
    segmenter.segment(images[1], [[5, 5, 60, 60]])  # the predictor now holds image 1
    again, cached = segmenter.refine_cached(("img", 0), lambda: images[0], [[20, 20]], [1])
    assert cached and np.array_equal(a.mask, again.mask)


def test_box_and_mask_prompt_and_eviction(segmenter, images):
    h, w = images[0].shape[:2]
    mask = np.zeros((h, w), bool)
    mask[10:50, 20:70] = True
    prompt = segmenter.mask_prompt(mask)
    s = segmenter.predictor.model.image_size // 4
    assert prompt.shape == (1, s, s) and prompt.max() > 0 > prompt.min()
    res, _ = segmenter.refine_cached(("img", 0), lambda: images[0], [[40, 30]], [1], box=[10, 5, 80, 60], mask=mask)
    assert res.mask.shape == (h, w) and res.prompt_xyxy == [10.0, 5.0, 80.0, 60.0]
    # Two more images: the LRU (2 entries) drops image 0, whose next refine encodes again.
    for i in (1, 2):
        segmenter.refine_cached(("img", i), lambda i=i: images[i], [[20, 20]], [1])
    assert ("img", 0) not in segmenter.embeddings
    encodes = segmenter.embeddings.stats.encodes
    _, cached = segmenter.refine_cached(("img", 0), lambda: images[0], [[20, 20]], [1])
    assert not cached and segmenter.embeddings.stats.encodes == encodes + 1
